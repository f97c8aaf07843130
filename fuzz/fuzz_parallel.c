/*
 * fuzz_parallel.c — differential libFuzzer target for the JPEG decode in
 * bands: whatever the bytes, decoding on three threads must give exactly
 * what one thread gives — the same status and message, and on success the
 * same pixels — at full size and shrunk on load.  The split threshold is
 * lowered to one pixel so that the fuzzer's small inputs are split too.
 */
#include "fuzz_limits.h"
#include "imgcore.h"
#include "codec.h"

#include <stdlib.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
compare(const uint8_t *data, size_t size, const img_limits *lim, uint32_t min_w, uint32_t min_h)
{
	img_load_options opt;
	img_raster	one;
	img_raster	many;
	img_error	one_err = {0};
	img_error	many_err = {0};
	img_status	st1;
	img_status	st3;

	img_load_options_default(&opt);
	opt.min_width = min_w;
	opt.min_height = min_h;
	opt.threads = 1;
	st1 = img_load(data, size, lim, &opt, &one, NULL, &one_err);
	opt.threads = 3;
	st3 = img_load(data, size, lim, &opt, &many, NULL, &many_err);
	if (st1 != st3)
		__builtin_trap();
	if (st1 != IMG_OK)
	{
		if (strcmp(one_err.message, many_err.message) != 0 || many.pixels != NULL)
			__builtin_trap();
		return;
	}
	if (one.width != many.width || one.height != many.height || one.channels != many.channels)
		__builtin_trap();
	for (uint32_t y = 0; y < one.height; y++)
		if (memcmp(one.pixels + (size_t) y * one.stride, many.pixels + (size_t) y * many.stride,
				   (size_t) one.width * one.channels) != 0)
			__builtin_trap();
	img_raster_free(&one);
	img_raster_free(&many);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	img_limits	lim;
	img_info	info;
	img_error	err;

	img_parallel_decode_min_pixels = 1;
	fuzz_limits(&lim);
	if (img_probe(data, size, &lim, &info, &err) != IMG_OK || info.format != IMG_FORMAT_JPEG)
		return 0;
	compare(data, size, &lim, 0, 0);
	/* shrunk on load: DCT scaling, no fancy upsampling */
	compare(data, size, &lim, (info.width + 2) / 3, (info.height + 2) / 3);
	return 0;
}
