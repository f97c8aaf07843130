/*
 * fuzz_bmp.c — libFuzzer target for imgmod's own BMP reader, the one codec
 * the core hand-writes rather than takes from a library.
 *
 * Every input is made a BMP: the first two bytes become the "BM" signature
 * and bytes 14..17, unless they already hold one, one of the info header
 * sizes the reader knows (chosen by the input's own byte 14), so that no
 * run is spent on the sniffer and each reaches the header parser, the mask
 * and palette bounds and the pixel loop.  The bytes are copied into a buffer of exactly their length,
 * so AddressSanitizer sees any read past the end.  Invariants: a probe that
 * accepts reports a BMP within the limits and the decode it allows either
 * succeeds with exactly the probed size or fails with no raster left.
 */
#include "fuzz_limits.h"
#include "imgcore.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t header_sizes[] = {12, 16, 40, 52, 56, 64, 108, 124};
	img_limits	lim;
	img_load_options opt;
	img_info	info;
	img_raster	raster;
	img_error	err;
	img_status	st;
	uint8_t    *bmp;

	if (size < 2)
		return 0;
	bmp = malloc(size);
	if (bmp == NULL)
		return 0;
	memcpy(bmp, data, size);
	bmp[0] = 'B';
	bmp[1] = 'M';
	if (size >= 18)
	{
		bool		known = false;

		for (size_t i = 0; i < sizeof(header_sizes); i++)
			known |= bmp[14] == header_sizes[i];
		if (!known || bmp[15] != 0 || bmp[16] != 0 || bmp[17] != 0)
		{
			bmp[14] = header_sizes[bmp[14] % sizeof(header_sizes)];
			bmp[15] = bmp[16] = bmp[17] = 0;
		}
	}

	fuzz_limits(&lim);
	img_load_options_default(&opt);
	st = img_probe(bmp, size, &lim, &info, &err);
	if (st == IMG_OK &&
		(info.format != IMG_FORMAT_BMP || info.width == 0 || info.height == 0 ||
		 info.width > lim.max_side || info.height > lim.max_side ||
		 (uint64_t) info.width * info.height > lim.max_pixels))
		__builtin_trap();

	st = img_load(bmp, size, &lim, &opt, &raster, NULL, &err);
	if (st == IMG_OK)
	{
		if (raster.pixels == NULL || raster.channels != 3 ||
			raster.width != info.width || raster.height != info.height)
			__builtin_trap();
		img_raster_free(&raster);
	}
	else if (raster.pixels != NULL)
		__builtin_trap();
	free(bmp);
	return 0;
}
