/*
 * fuzz_edit.c — libFuzzer target for image edits, img_edit_plan and
 * img_edit_apply, limits lowered to 4 megapixels.
 *
 * The first bytes choose up to IMG_EDIT_MAX_OPS + 1 ops (kind, degrees,
 * flip axis, ratio or pixels, coordinates, aspect, colour), 12 bytes an op;
 * a flag byte says whether they apply to a small fixed 4:2:0 JPEG made at
 * start-up (40x24: neither side a whole number of 16-pixel MCUs) or to the
 * rest of the input as a JPEG.
 *
 * Invariants: img_edit_plan and img_edit_apply agree on the size and on
 * whether the ops are acceptable (for the fixed JPEG, whose size is
 * known); on success the master is a JPEG (SOI ... EOI) within the limits
 * and a focal point is within 0..1; on failure nothing is left behind.
 */
#include "fuzz_limits.h"
#include "imgcore.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OP_BYTES 12
#define FIXED_W 40
#define FIXED_H 24

static img_buffer fixed;

static const img_buffer *
fixed_jpeg(void)
{
	img_raster	r;
	img_error	err;

	if (fixed.data != NULL)
		return &fixed;
	if (img_raster_init(&r, FIXED_W, FIXED_H, 3, &err) != IMG_OK)
		__builtin_trap();
	for (uint32_t y = 0; y < FIXED_H; y++)
		for (uint32_t x = 0; x < FIXED_W; x++)
		{
			uint8_t    *p = r.pixels + y * r.stride + x * 3;

			p[0] = (uint8_t) (x * 6);
			p[1] = (uint8_t) (y * 10);
			p[2] = (uint8_t) ((x ^ y) * 4);
		}
	if (img_encode_jpeg(&r, 80, &fixed, &err) != IMG_OK)
		__builtin_trap();
	img_raster_free(&r);
	return &fixed;
}

/* A coordinate from two bytes: mostly small values, some hostile ones. */
static double
coordinate(uint8_t sel, uint8_t v, bool ratio)
{
	static const double odd[] = {NAN, INFINITY, -INFINITY, -1.0, 1e300, -0.0, 4294967296.0, 0.5};

	if (sel % 16 == 0)
		return odd[v % 8];
	return ratio ? v / 200.0 : (double) v / (sel % 4 == 0 ? 3.0 : 1.0);
}

static void
decode_op(const uint8_t *b, img_edit_op *op)
{
	memset(op, 0, sizeof(*op));
	op->kind = (img_edit_kind) (b[0] % 6);	/* 5: an unknown kind */
	op->degrees = (int) (b[1] % 5) * 90 - (b[1] & 0x80 ? 45 : 0);
	op->vertical = b[1] & 1;
	op->ratio = b[2] & 1;
	op->x = coordinate(b[2], b[3], op->ratio);
	op->y = coordinate(b[2] >> 1, b[4], op->ratio);
	op->width = coordinate(b[2] >> 2, b[5], op->ratio);
	op->height = coordinate(b[2] >> 3, b[6], op->ratio);
	op->aspect_w = b[7] % 17;
	op->aspect_h = b[8] % 17;
	memcpy(op->background, b + 9, 3);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	img_edit_op ops[IMG_EDIT_MAX_OPS + 1];
	img_limits	lim;
	img_edit_result res;
	img_error	err;
	size_t		n;
	bool		use_fixed;
	const uint8_t *jpeg;
	size_t		len;
	img_status	st;

	if (size < 2)
		return 0;
	fuzz_limits(&lim);
	n = data[0] % (IMG_EDIT_MAX_OPS + 2);
	use_fixed = data[1] & 1;
	data += 2;
	size -= 2;
	if (n * OP_BYTES > size)
		n = size / OP_BYTES;
	for (size_t i = 0; i < n; i++)
		decode_op(data + i * OP_BYTES, &ops[i]);
	data += n * OP_BYTES;
	size -= n * OP_BYTES;
	if (use_fixed)
	{
		jpeg = fixed_jpeg()->data;
		len = fixed_jpeg()->len;
	}
	else
	{
		jpeg = data;
		len = size;
	}

	st = img_edit_apply(jpeg, len, &lim, ops, n, 85, &res, &err);
	if (use_fixed)
	{
		uint32_t	w = 0,
					h = 0;
		int			bad;
		img_error	perr;
		img_status	pst = img_edit_plan(FIXED_W, FIXED_H, ops, n, &lim, &w, &h, &bad, &perr);

		if ((pst == IMG_OK && st != IMG_OK) || (pst != IMG_OK && st != pst) ||
			(pst != IMG_OK && (bad < -1 || bad > IMG_EDIT_MAX_OPS)) ||
			(st == IMG_OK && (res.width != w || res.height != h)))
			__builtin_trap();
	}
	if (st == IMG_OK)
	{
		const uint8_t *m = res.master.data;
		size_t		mlen = res.master.len;

		if (m == NULL || mlen < 4 || m[0] != 0xFF || m[1] != 0xD8 ||
			m[mlen - 2] != 0xFF || m[mlen - 1] != 0xD9)
			__builtin_trap();
		if (res.width == 0 || res.height == 0 || res.width > lim.max_side || res.height > lim.max_side ||
			(uint64_t) res.width * res.height > lim.max_pixels)
			__builtin_trap();
		if (res.has_focus && !(res.focus_x >= 0 && res.focus_x <= 1 && res.focus_y >= 0 && res.focus_y <= 1))
			__builtin_trap();
		if (res.method != IMG_MASTER_LOSSLESS && res.method != IMG_MASTER_REENCODED)
			__builtin_trap();
	}
	else if (res.master.data != NULL)
		__builtin_trap();
	img_edit_result_free(&res);
	return 0;
}
