/*
 * fuzz_fast_path.c — libFuzzer target for the upload fast path
 * (img_jpeg_copy_master), differential against the lossless transform it
 * stands in for, under the fuzz limits (4 megapixels, 4096 px a side).
 *
 * Every input the probe accepts as a JPEG is copied (single-scan files,
 * then multi-scan ones too) and transformed (img_jpeg_transform, no op:
 * the upload path before the copy).  The copy may only take a file the
 * transform accepts: it leaves every other file to the transform, so no
 * verdict can change.  A copy must be SOI ... EOI with no APPn or COM
 * segment, no longer than the input, and, where the upload path copies
 * (upright, no colour change), decode (img_load) to exactly the input's
 * pixels.  A copy that declines leaves nothing behind.  Leaks are caught
 * by LeakSanitizer.
 */
#include "fuzz_limits.h"
#include "codec.h"

#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* SOI, then only segments that are not APPn or COM, then EOI at the very end. */
static bool
bare_structure(const uint8_t *m, size_t len)
{
	size_t		pos = 2;

	if (len < 4 || m[0] != 0xFF || m[1] != 0xD8 || m[len - 2] != 0xFF || m[len - 1] != 0xD9)
		return false;
	while (pos + 2 <= len)
	{
		uint8_t		marker;
		size_t		seglen;

		if (m[pos] != 0xFF)
			return false;
		marker = m[pos + 1];
		if (marker == 0xD9)
			return pos + 2 == len;
		if ((marker >= 0xE0 && marker <= 0xEF) || marker == 0xFE || pos + 4 > len)
			return false;
		seglen = ((size_t) m[pos + 2] << 8) | m[pos + 3];
		pos += 2 + seglen;
		/* entropy-coded data: to the marker that is not RSTn nor a stuffed byte, fill bytes and all */
		while (marker == 0xDA && pos + 1 < len)
		{
			size_t		next = pos + 1;

			if (m[pos] != 0xFF)
			{
				pos++;
				continue;
			}
			while (next < len && m[next] == 0xFF)
				next++;
			if (next < len && m[next] != 0x00 && (m[next] < 0xD0 || m[next] > 0xD7))
			{
				pos = next - 1;
				break;
			}
			pos = next;
		}
	}
	return false;
}

/* a and b load to the same raster (img_raster_init packs rows: stride is width * channels) */
static bool
same_pixels(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, const img_limits *lim)
{
	img_load_options opt;
	img_raster	r[2] = {{0}, {0}};
	img_error	err;
	bool		same;

	img_load_options_default(&opt);
	same = img_load(a, alen, lim, &opt, &r[0], NULL, &err) == IMG_OK &&
		img_load(b, blen, lim, &opt, &r[1], NULL, &err) == IMG_OK &&
		r[0].width == r[1].width && r[0].height == r[1].height && r[0].stride == r[1].stride &&
		memcmp(r[0].pixels, r[1].pixels, r[0].stride * r[0].height) == 0;
	img_raster_free(&r[0]);
	img_raster_free(&r[1]);
	return same;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	img_limits	lim;
	img_info	info;
	img_error	err;
	img_error	old_err = {0};
	img_jpeg_xform xform = {0};
	img_buffer	old;
	img_status	old_st;
	bool		imperfect;

	fuzz_limits(&lim);
	/* the upload path copies only what the probe let through */
	if (img_probe(data, size, &lim, &info, &err) != IMG_OK || info.format != IMG_FORMAT_JPEG)
		return 0;

	xform.op = TJXOP_NONE;
	old_st = img_jpeg_transform(data, size, &xform, &old, &imperfect, &old_err);
	if ((old_st == IMG_OK) != (old.data != NULL))
		__builtin_trap();

	for (int multi_scan = 0; multi_scan < 2; multi_scan++)
	{
		img_buffer	copy;
		bool		unsuitable;
		img_status	st;

		memset(&err, 0, sizeof(err));
		st = img_jpeg_copy_master(data, size, multi_scan, &copy, &unsuitable, &err);
		if (unsuitable)
		{
			if (st != IMG_OK || copy.data != NULL)
				__builtin_trap();
			continue;
		}
		/* no hook and no allocation failure here: a taken file is a copy */
		if (st != IMG_OK || old_st != IMG_OK)
			__builtin_trap();
		if (copy.data == NULL || copy.len > size || !bare_structure(copy.data, copy.len))
			__builtin_trap();
		/* where the upload path copies: upright, no colour change */
		if (info.orientation == 1 && !img_jpeg_needs_colour_change(&info) &&
			!same_pixels(copy.data, copy.len, data, size, &lim))
			__builtin_trap();
		img_buffer_free(&copy);
	}
	img_buffer_free(&old);
	return 0;
}
