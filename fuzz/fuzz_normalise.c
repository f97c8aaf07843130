/*
 * fuzz_normalise.c — libFuzzer target for the upload path, img_normalise,
 * with limits lowered to 4 megapixels (and 4096 px a side, 16 MiB input)
 * so that each run stays fast and within the RSS limit.
 *
 * Invariants checked on success: the master is a JPEG (SOI ... EOI) whose
 * reported size is upright (swapped for orientations 5..8) and within the
 * limits.  A failure must leave no master behind.  Leaks are caught by
 * LeakSanitizer.
 */
#include "fuzz_limits.h"
#include "imgcore.h"

#include <stdlib.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	img_limits	lim;
	img_normalise_options opt;
	img_normalised out;
	img_error	err;
	img_status	st;

	fuzz_limits(&lim);
	opt.master_quality = 85;
	opt.background[0] = opt.background[1] = opt.background[2] = 255;

	st = img_normalise(data, size, &lim, &opt, &out, &err);
	if (st == IMG_OK)
	{
		const uint8_t *m = out.master.data;
		size_t		len = out.master.len;
		uint32_t	w = out.info.orientation >= 5 ? out.info.height : out.info.width;
		uint32_t	h = out.info.orientation >= 5 ? out.info.width : out.info.height;

		if (m == NULL || len < 4 || m[0] != 0xFF || m[1] != 0xD8 ||
			m[len - 2] != 0xFF || m[len - 1] != 0xD9)
			__builtin_trap();
		if (out.width != w || out.height != h ||
			(uint64_t) out.width * out.height > lim.max_pixels)
			__builtin_trap();
	}
	else if (out.master.data != NULL)
		__builtin_trap();
	img_normalised_free(&out);
	return 0;
}
