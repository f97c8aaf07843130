/*
 * test_edit.c — image edits (img_edit_plan, img_edit_apply) and cover
 * crops around a focal point.
 *
 * Fixtures are generated: a picture made of 8x8 blocks of flat colour
 * (grey, with a red, green, blue and yellow corner and a magenta marker off
 * the centre), so every JPEG block holds a DC coefficient only and its
 * decoded pixels do not depend on the IDCT's direction.  On such a picture
 * "decode the lossless result" must equal "decode the base, then move the
 * pixels" exactly: that is the lossless check.  (On a photo the integer
 * IDCT's rounding differs by up to a few levels between a block and its
 * transpose, and 4:2:0 chroma upsampling differs next to a crop's cut, so
 * there the coefficients are kept but the decoded pixels are not identical;
 * identity chains, which restore the coefficients, are exact there too.)
 */
#include "test.h"
#include "imgcore.h"
#include "codec.h"
#include "jpeg_builder.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ fixtures */

static const uint8_t C_GREY[3] = {128, 128, 128};
static const uint8_t C_RED[3] = {220, 30, 30};
static const uint8_t C_GREEN[3] = {30, 200, 30};
static const uint8_t C_BLUE[3] = {30, 30, 220};
static const uint8_t C_YELLOW[3] = {230, 220, 30};
static const uint8_t C_MAGENTA[3] = {210, 30, 210};

/*
 * 8x8-block picture: corners 16x16 (top-left red, top-right green,
 * bottom-left blue, bottom-right yellow) snapped to blocks, magenta marker
 * 8x8 at block (1, 1) from the top-left red corner's inner edge.  For sizes
 * that are not multiples of 8 the right/bottom blocks are partial.
 */
static void
block_pixel(uint8_t *p, uint32_t x, uint32_t y, uint32_t w, uint32_t h, const void *arg)
{
	uint32_t	bx = x / 8,
				by = y / 8;
	uint32_t	nbx = (w + 7) / 8,
				nby = (h + 7) / 8;
	const uint8_t *c = C_GREY;

	(void) arg;
	if (bx < 2 && by < 2)
		c = C_RED;
	else if (bx + 2 >= nbx && by < 2)
		c = C_GREEN;
	else if (bx < 2 && by + 2 >= nby)
		c = C_BLUE;
	else if (bx + 2 >= nbx && by + 2 >= nby)
		c = C_YELLOW;
	else if (bx == 2 && by == 2)
		c = C_MAGENTA;
	memcpy(p, c, 3);
}

/* Noisy picture (for the lossy chain and the round trips on real content). */
static void
noisy_pixel(uint8_t *p, uint32_t x, uint32_t y, uint32_t w, uint32_t h, const void *arg)
{
	uint32_t	v = x * 2654435761u ^ y * 40503u;

	(void) arg;
	block_pixel(p, x, y, w, h, NULL);
	for (int c = 0; c < 3; c++)
	{
		int			s = p[c] + (int) ((v >> (c * 5)) % 31) - 15 + (int) ((x + y) % 17);

		p[c] = (uint8_t) (s < 0 ? 0 : s > 255 ? 255 : s);
	}
}

/* quality >= 90 encodes 4:4:4, lower 4:2:0 (img_encode_jpeg). */
static bool
make_jpeg(uint32_t w, uint32_t h, int quality, bool noisy, jb_buf *out)
{
	img_raster	r;
	bool		ok;

	if (!jb_make_raster(&r, w, h, noisy ? noisy_pixel : block_pixel, NULL))
		return false;
	ok = jb_encode(&r, quality, out);
	img_raster_free(&r);
	return ok;
}

static bool
decode(const uint8_t *data, size_t len, img_raster *out)
{
	img_error	err = {0};

	if (jb_load(data, len, 0, 0, out, NULL, &err) != IMG_OK)
	{
		CHECK(false, "decode: %s", err.message);
		return false;
	}
	return true;
}

static img_edit_op
op_rotate(int degrees)
{
	return (img_edit_op) {.kind = IMG_EDIT_ROTATE, .degrees = degrees};
}

static img_edit_op
op_flip(bool vertical)
{
	return (img_edit_op) {.kind = IMG_EDIT_FLIP, .vertical = vertical};
}

static img_edit_op
op_crop(double x, double y, double w, double h, bool ratio)
{
	return (img_edit_op) {.kind = IMG_EDIT_CROP, .x = x, .y = y, .width = w, .height = h,
	.ratio = ratio};
}

static img_edit_op
op_pad(uint32_t aw, uint32_t ah, uint8_t r, uint8_t g, uint8_t b)
{
	return (img_edit_op) {.kind = IMG_EDIT_PAD, .aspect_w = aw, .aspect_h = ah,
	.background = {r, g, b}};
}

static img_edit_op
op_focus(double x, double y, bool ratio)
{
	return (img_edit_op) {.kind = IMG_EDIT_FOCUS, .x = x, .y = y, .ratio = ratio};
}

/*
 * The reference: ops applied to a decoded raster with the simplest code
 * that can be right (a per-pixel source lookup).
 */
static bool
reference_apply(const img_raster *src, const img_edit_op *ops, size_t n, img_raster *out)
{
	img_raster	cur;
	img_error	err;

	if (img_raster_init(&cur, src->width, src->height, 3, &err) != IMG_OK)
		return false;
	memcpy(cur.pixels, src->pixels, cur.stride * cur.height);
	for (size_t i = 0; i < n; i++)
	{
		const img_edit_op *op = &ops[i];
		uint32_t	W = cur.width,
					H = cur.height;
		uint32_t	nw = W,
					nh = H,
					ox = 0,
					oy = 0,
					cx = 0,
					cy = 0;
		img_raster	next;

		if (op->kind == IMG_EDIT_FOCUS)
			continue;
		if (op->kind == IMG_EDIT_ROTATE && op->degrees != 180)
		{
			nw = H;
			nh = W;
		}
		if (op->kind == IMG_EDIT_CROP)
		{
			double		fx = op->ratio ? W : 1,
						fy = op->ratio ? H : 1;

			cx = (uint32_t) floor(op->x * fx + 0.5);
			cy = (uint32_t) floor(op->y * fy + 0.5);
			nw = (uint32_t) floor(op->x * fx + op->width * fx + 0.5) - cx;
			nh = (uint32_t) floor(op->y * fy + op->height * fy + 0.5) - cy;
		}
		if (op->kind == IMG_EDIT_PAD)
		{
			if ((uint64_t) W * op->aspect_h > (uint64_t) H * op->aspect_w)
				nh = (uint32_t) floor((double) W * op->aspect_h / op->aspect_w + 0.5);
			else
				nw = (uint32_t) floor((double) H * op->aspect_w / op->aspect_h + 0.5);
			ox = (nw - W) / 2;
			oy = (nh - H) / 2;
		}
		if (img_raster_init(&next, nw, nh, 3, &err) != IMG_OK)
		{
			img_raster_free(&cur);
			return false;
		}
		for (uint32_t y = 0; y < nh; y++)
			for (uint32_t x = 0; x < nw; x++)
			{
				uint32_t	sx = x,
							sy = y;
				uint8_t    *d = next.pixels + y * next.stride + x * 3;

				switch (op->kind)
				{
					case IMG_EDIT_ROTATE:
						if (op->degrees == 90)
						{
							sx = y;
							sy = H - 1 - x;
						}
						else if (op->degrees == 180)
						{
							sx = W - 1 - x;
							sy = H - 1 - y;
						}
						else
						{
							sx = W - 1 - y;
							sy = x;
						}
						break;
					case IMG_EDIT_FLIP:
						if (op->vertical)
							sy = H - 1 - y;
						else
							sx = W - 1 - x;
						break;
					case IMG_EDIT_CROP:
						sx = x + cx;
						sy = y + cy;
						break;
					case IMG_EDIT_PAD:
						if (x < ox || y < oy || x >= ox + W || y >= oy + H)
						{
							memcpy(d, op->background, 3);
							continue;
						}
						sx = x - ox;
						sy = y - oy;
						break;
					default:
						break;
				}
				memcpy(d, cur.pixels + sy * cur.stride + sx * 3, 3);
			}
		img_raster_free(&cur);
		cur = next;
	}
	*out = cur;
	return true;
}

/* Largest per-sample difference; -1 when the sizes differ. */
static int
max_diff(const img_raster *a, const img_raster *b)
{
	int			m = 0;

	if (a->width != b->width || a->height != b->height)
		return -1;
	for (uint32_t y = 0; y < a->height; y++)
		for (uint32_t x = 0; x < a->width * 3; x++)
		{
			int			d = abs(a->pixels[y * a->stride + x] - b->pixels[y * b->stride + x]);

			if (d > m)
				m = d;
		}
	return m;
}

static double
psnr(const img_raster *a, const img_raster *b)
{
	double		se = 0;
	size_t		count = 0;

	if (a->width != b->width || a->height != b->height)
		return 0;
	for (uint32_t y = 0; y < a->height; y++)
		for (uint32_t x = 0; x < a->width * 3; x++)
		{
			double		d = (double) a->pixels[y * a->stride + x] - b->pixels[y * b->stride + x];

			se += d * d;
			count++;
		}
	if (se == 0)
		return 99.0;
	return 10.0 * log10(255.0 * 255.0 / (se / count));
}

/* Whether pixel (x, y) is within tol of colour c on every channel. */
static bool
pixel_is(const img_raster *r, uint32_t x, uint32_t y, const uint8_t c[3], int tol)
{
	const uint8_t *p;

	if (x >= r->width || y >= r->height)
		return false;
	p = r->pixels + y * r->stride + x * 3;
	return abs(p[0] - c[0]) <= tol && abs(p[1] - c[1]) <= tol && abs(p[2] - c[2]) <= tol;
}

static img_status
apply(const jb_buf *src, const img_edit_op *ops, size_t n, img_edit_result *res)
{
	img_error	err = {0};
	img_status	st = img_edit_apply(src->data, src->len, NULL, ops, n, 92, res, &err);

	if (st != IMG_OK)
		CHECK(false, "img_edit_apply: %s (%s)", img_status_name(st), err.message);
	return st;
}

/*
 * Apply ops to src and compare with the reference on the decoded base:
 * exact (tol 0) for lossless, within tol for re-encoded.  Returns the
 * decoded result in *out when out is not NULL.
 */
static void
check_against_reference(const char *what, const jb_buf *src, const img_edit_op *ops, size_t n,
						img_master_method want_method, int tol, img_raster *out)
{
	img_edit_result res;
	img_raster	base,
				got,
				want;
	int			d;

	if (apply(src, ops, n, &res) != IMG_OK)
		return;
	CHECK(res.method == want_method, "%s: method %s, expected %s", what,
		  img_master_method_name(res.method), img_master_method_name(want_method));
	if (decode(src->data, src->len, &base) && decode(res.master.data, res.master.len, &got))
	{
		CHECK(got.width == res.width && got.height == res.height, "%s: decodes at %ux%u, reported %ux%u",
			  what, got.width, got.height, res.width, res.height);
		if (reference_apply(&base, ops, n, &want))
		{
			d = max_diff(&got, &want);
			CHECK(d >= 0 && d <= tol, "%s: %ux%u vs reference %ux%u, max difference %d (allowed %d)",
				  what, got.width, got.height, want.width, want.height, d, tol);
			img_raster_free(&want);
		}
		if (out)
			*out = got;
		else
			img_raster_free(&got);
		img_raster_free(&base);
	}
	img_edit_result_free(&res);
}

/* --------------------------------------------------------------- suites */

/*
 * Every op alone, on a 64x48 4:4:4 JPEG (MCU 8x8): rotations, flips and
 * block-aligned crops are lossless and decode exactly as the reference; an
 * unaligned crop and a pad re-encode and stay close.  The corner colours
 * land where the geometry says.
 */
TEST_SUITE(edit_each_op)
{
	jb_buf		src = {0};
	img_raster	r;

	if (!make_jpeg(64, 48, 95, false, &src))
	{
		CHECK(false, "fixture");
		return;
	}
	{
		img_edit_op o = op_rotate(90);

		check_against_reference("rotate 90", &src, &o, 1, IMG_MASTER_LOSSLESS, 0, &r);
		/* top-left red goes top-right; bottom-left blue goes top-left */
		CHECK(r.width == 48 && r.height == 64, "rotate 90: 48x64");
		CHECK(pixel_is(&r, 47 - 4, 4, C_RED, 3), "rotate 90: red top-right");
		CHECK(pixel_is(&r, 4, 4, C_BLUE, 3), "rotate 90: blue top-left");
		CHECK(pixel_is(&r, 47 - 20, 20, C_MAGENTA, 3), "rotate 90: marker follows");
		img_raster_free(&r);
	}
	{
		img_edit_op o = op_rotate(180);

		check_against_reference("rotate 180", &src, &o, 1, IMG_MASTER_LOSSLESS, 0, &r);
		CHECK(pixel_is(&r, 60, 44, C_RED, 3) && pixel_is(&r, 3, 3, C_YELLOW, 3), "rotate 180: corners");
		img_raster_free(&r);
	}
	{
		img_edit_op o = op_rotate(270);

		check_against_reference("rotate 270", &src, &o, 1, IMG_MASTER_LOSSLESS, 0, &r);
		CHECK(pixel_is(&r, 3, 60, C_RED, 3) && pixel_is(&r, 3, 3, C_GREEN, 3), "rotate 270: corners");
		img_raster_free(&r);
	}
	{
		img_edit_op o = op_flip(false);

		check_against_reference("flip horizontal", &src, &o, 1, IMG_MASTER_LOSSLESS, 0, &r);
		CHECK(pixel_is(&r, 60, 3, C_RED, 3) && pixel_is(&r, 3, 3, C_GREEN, 3), "hflip: corners");
		img_raster_free(&r);
	}
	{
		img_edit_op o = op_flip(true);

		check_against_reference("flip vertical", &src, &o, 1, IMG_MASTER_LOSSLESS, 0, &r);
		CHECK(pixel_is(&r, 3, 44, C_RED, 3) && pixel_is(&r, 3, 3, C_BLUE, 3), "vflip: corners");
		img_raster_free(&r);
	}
	{
		/* aligned origin, free size (ends inside the image, not on a block) */
		img_edit_op o = op_crop(16, 8, 37, 29, false);

		check_against_reference("crop 37x29+16+8", &src, &o, 1, IMG_MASTER_LOSSLESS, 0, &r);
		CHECK(pixel_is(&r, 4, 12, C_MAGENTA, 3), "aligned crop: marker at 4,12");
		img_raster_free(&r);
	}
	{
		/* aligned origin reaching the right/bottom edge */
		img_edit_op o = op_crop(0.25, 1.0 / 3, 0.75, 2.0 / 3, true);

		check_against_reference("crop ratio to the edge", &src, &o, 1, IMG_MASTER_LOSSLESS, 0, &r);
		CHECK(r.width == 48 && r.height == 32, "ratio crop: 48x32, got %ux%u", r.width, r.height);
		CHECK(pixel_is(&r, 44, 28, C_YELLOW, 3), "ratio crop: yellow bottom-right");
		img_raster_free(&r);
	}
	{
		/* unaligned origin: re-encoded; 8x8 flat blocks make JPEG error small */
		img_edit_op o = op_crop(13, 5, 40, 30, false);

		check_against_reference("crop 40x30+13+5", &src, &o, 1, IMG_MASTER_REENCODED, 24, &r);
		CHECK(pixel_is(&r, 7, 15, C_MAGENTA, 12), "unaligned crop: marker at 7,15");
		img_raster_free(&r);
	}
	{
		img_edit_op o = op_pad(1, 1, 0, 0, 0);

		check_against_reference("pad 1:1", &src, &o, 1, IMG_MASTER_REENCODED, 24, &r);
		CHECK(r.width == 64 && r.height == 64, "pad 1:1 of 64x48: 64x64");
		CHECK(pixel_is(&r, 32, 2, (const uint8_t[3]) {0, 0, 0}, 6) &&
			  pixel_is(&r, 32, 61, (const uint8_t[3]) {0, 0, 0}, 6), "pad: black bands top and bottom");
		CHECK(pixel_is(&r, 3, 8 + 3, C_RED, 12), "pad: red corner moved down by 8");
		img_raster_free(&r);
	}
	{
		img_edit_op o = op_pad(3, 4, 255, 255, 255);	/* 48 tall * 3/4 = 36 < 64: 64 x 85.33 -> 85 */
		img_edit_result res;

		if (apply(&src, &o, 1, &res) == IMG_OK)
		{
			CHECK(res.width == 64 && res.height == 85, "pad 3:4 of 64x48: 64x85, got %ux%u", res.width,
				  res.height);
			img_edit_result_free(&res);
		}
	}
	jb_free(&src);
}

/* A chain of every kind, on aligned and unaligned sizes, 4:4:4 and 4:2:0. */
TEST_SUITE(edit_chains)
{
	static const struct
	{
		uint32_t	w,
					h;
		int			quality;
	}			sizes[] = {{64, 48, 95}, {61, 45, 95}, {64, 48, 80}};

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
	{
		jb_buf		src = {0};
		char		what[96];
		img_edit_op lossless[] = {
			op_rotate(90), op_flip(false), op_crop(16, 16, 16, 32, false), op_rotate(180),
			op_flip(true),
		};
		img_edit_op mixed[] = {
			op_rotate(270), op_crop(3, 5, 40, 31, false), op_flip(true), op_pad(1, 1, 255, 255, 255),
			op_rotate(90), op_crop(0.1, 0.1, 0.8, 0.8, true),
		};

		if (!make_jpeg(sizes[k].w, sizes[k].h, sizes[k].quality, false, &src))
			continue;
		snprintf(what, sizeof(what), "lossless chain on %ux%u q%d", sizes[k].w, sizes[k].h, sizes[k].quality);
		/*
		 * rotate 90 + flip is a transpose (perfect at any size), the crop
		 * is MCU-aligned and the final flip is on 16 columns: lossless
		 * everywhere; exact on 4:4:4, while on 4:2:0 the chroma upsampling
		 * differs next to the crop's cuts.
		 */
		check_against_reference(what, &src, lossless, 5, IMG_MASTER_LOSSLESS,
								sizes[k].quality >= 90 ? 0 : 60, NULL);

		/* the mixed chain: ratio crop on the padded 40x40 (0.1 * 40 = 4 px) */
		snprintf(what, sizeof(what), "mixed chain on %ux%u", sizes[k].w, sizes[k].h);
		{
			img_edit_result res;

			if (apply(&src, mixed, 6, &res) == IMG_OK)
			{
				CHECK(res.method == IMG_MASTER_REENCODED, "%s: re-encoded", what);
				CHECK(res.width == 32 && res.height == 32, "%s: 32x32, got %ux%u", what, res.width,
					  res.height);
				img_edit_result_free(&res);
			}
			check_against_reference(what, &src, mixed, 6, IMG_MASTER_REENCODED,
									sizes[k].quality >= 90 ? 40 : 60, NULL);
		}
		jb_free(&src);
	}
}

/*
 * Chains that restore the coefficients are exact on any content: four
 * quarter turns (no step at all: the base's bytes come back), and ten
 * lossless ops that compose to the identity around an aligned crop.
 */
TEST_SUITE(edit_lossless_round_trips)
{
	static const int qualities[] = {95, 80};

	for (size_t q = 0; q < 2; q++)
	{
		jb_buf		src = {0};
		img_edit_op four[4] = {op_rotate(90), op_rotate(90), op_rotate(90), op_rotate(90)};
		img_edit_op ten[10] = {
			op_rotate(90), op_flip(false), op_rotate(270), op_flip(true), op_crop(0, 0, 64, 32, false),
			op_rotate(180), op_flip(true), op_flip(false), op_rotate(90), op_rotate(270),
		};
		img_edit_result res;
		img_raster	base,
					got;

		if (!make_jpeg(64, 48, qualities[q], true, &src) || !decode(src.data, src.len, &base))
			continue;
		if (apply(&src, four, 4, &res) == IMG_OK)
		{
			CHECK(res.method == IMG_MASTER_LOSSLESS, "4 x rotate 90 q%d: lossless", qualities[q]);
			CHECK(res.master.len == src.len && memcmp(res.master.data, src.data, src.len) == 0,
				  "4 x rotate 90 q%d: the base's bytes", qualities[q]);
			if (decode(res.master.data, res.master.len, &got))
			{
				CHECK(max_diff(&got, &base) == 0, "4 x rotate 90 q%d: pixels equal", qualities[q]);
				img_raster_free(&got);
			}
			img_edit_result_free(&res);
		}
		/* each quarter turn as its own step still comes back exact */
		{
			jb_buf		cur = {.data = malloc(src.len), .len = src.len};
			bool		ok = true;

			memcpy(cur.data, src.data, src.len);
			for (int i = 0; i < 4 && ok; i++)
			{
				ok = apply(&cur, four, 1, &res) == IMG_OK;
				if (!ok)
					break;
				CHECK(res.method == IMG_MASTER_LOSSLESS, "rotate 90 step %d lossless", i);
				jb_free(&cur);
				cur.data = malloc(res.master.len);
				memcpy(cur.data, res.master.data, res.master.len);
				cur.len = res.master.len;
				img_edit_result_free(&res);
			}
			if (ok && decode(cur.data, cur.len, &got))
			{
				CHECK(max_diff(&got, &base) == 0, "4 separate rotate 90 q%d: pixels equal", qualities[q]);
				img_raster_free(&got);
			}
			jb_free(&cur);
		}
		if (apply(&src, ten, 10, &res) == IMG_OK)
		{
			/* net effect: the top half, as the crop took it */
			img_edit_op top = op_crop(0, 0, 64, 32, false);
			img_edit_result want;

			CHECK(res.method == IMG_MASTER_LOSSLESS, "ten lossless ops q%d: lossless", qualities[q]);
			CHECK(res.width == 64 && res.height == 32, "ten ops: 64x32, got %ux%u", res.width, res.height);
			if (apply(&src, &top, 1, &want) == IMG_OK)
			{
				img_raster	w;

				if (decode(res.master.data, res.master.len, &got))
				{
					if (decode(want.master.data, want.master.len, &w))
					{
						CHECK(max_diff(&got, &w) == 0, "ten ops q%d: pixels equal the crop alone (max %d)",
							  qualities[q], max_diff(&got, &w));
						img_raster_free(&w);
					}
					img_raster_free(&got);
				}
				img_edit_result_free(&want);
			}
			img_edit_result_free(&res);
		}
		img_raster_free(&base);
		jb_free(&src);
	}
}

/*
 * A crop on whole MCUs followed by a rotation or flip is one transform
 * (the crop carried into the transformed image), and gives exactly the
 * pixels of the two steps run one after the other — also on a base whose
 * sides are not whole MCUs, where the whole image could not be turned
 * perfectly (what jpegtran -trim is asked for: crop to whole MCUs, then
 * rotate).
 */
TEST_SUITE(edit_crop_then_turn)
{
	static const int qualities[] = {80, 95};	/* 4:2:0 (16x16 MCUs), 4:4:4 (8x8) */
	const img_edit_op turns[][2] = {
		{op_rotate(90)}, {op_rotate(180)}, {op_rotate(270)}, {op_flip(false)}, {op_flip(true)},
		{op_rotate(90), op_flip(false)}, {op_rotate(90), op_flip(true)},
	};
	const size_t nturn[] = {1, 1, 1, 1, 1, 2, 2};
	int			compared = 0;

	for (size_t q = 0; q < 2; q++)
	{
		uint32_t	m = qualities[q] >= 90 ? 8 : 16;
		jb_buf		src = {0};
		/* inside, and up to the last whole MCU of a 1001 x 797 base */
		const double crops[][4] = {
			{m, 2 * m, 40 * m, 30 * m},
			{0, 0, 1001 - 1001 % m, 797 - 797 % m},
			{3 * m, m, 1001 - 1001 % m - 3 * m, 20 * m},
		};

		if (!make_jpeg(1001, 797, qualities[q], true, &src))
			continue;
		for (size_t c = 0; c < sizeof(crops) / sizeof(crops[0]); c++)
		{
			img_edit_op crop = op_crop(crops[c][0], crops[c][1], crops[c][2], crops[c][3], false);
			img_edit_result cropped;

			if (apply(&src, &crop, 1, &cropped) != IMG_OK)
				continue;
			for (size_t t = 0; t < sizeof(turns) / sizeof(turns[0]); t++)
			{
				img_edit_op ops[3] = {crop, turns[t][0], turns[t][1]};
				jb_buf		mid = {cropped.master.data, cropped.master.len};
				img_edit_result folded,
							stepwise;
				unsigned long before = img_jpeg_transforms_run();
				img_raster	a,
							b;

				if (apply(&src, ops, 1 + nturn[t], &folded) != IMG_OK)
					continue;
				CHECK(img_jpeg_transforms_run() - before == 1,
					  "q%d crop %zu turn %zu: one transform, ran %lu", qualities[q], c, t,
					  img_jpeg_transforms_run() - before);
				CHECK(folded.method == IMG_MASTER_LOSSLESS, "q%d crop %zu turn %zu: lossless", qualities[q], c, t);
				if (apply(&mid, turns[t], nturn[t], &stepwise) == IMG_OK)
				{
					CHECK(folded.width == stepwise.width && folded.height == stepwise.height,
						  "q%d crop %zu turn %zu: %ux%u, two steps %ux%u", qualities[q], c, t,
						  folded.width, folded.height, stepwise.width, stepwise.height);
					if (decode(folded.master.data, folded.master.len, &a))
					{
						if (decode(stepwise.master.data, stepwise.master.len, &b))
						{
							CHECK(max_diff(&a, &b) == 0, "q%d crop %zu turn %zu: the two steps' pixels (max %d)",
								  qualities[q], c, t, max_diff(&a, &b));
							compared++;
							img_raster_free(&b);
						}
						img_raster_free(&a);
					}
					img_edit_result_free(&stepwise);
				}
				img_edit_result_free(&folded);
			}
			img_edit_result_free(&cropped);
		}
		jb_free(&src);
	}
	CHECK(compared == 2 * 3 * 7, "%d crop-then-turn edits compared", compared);
}

/*
 * Ten edits, each its own img_edit_apply on the previous master, against
 * one img_edit_apply of the whole chain; a non-aligned crop forces
 * re-encoding.  Both are compared with the exact geometry applied to the
 * decoded base (PSNR printed).
 */
TEST_SUITE(edit_lossy_chain)
{
	jb_buf		src = {0};
	img_edit_op chain[10] = {
		op_crop(3, 5, 250, 180, false), op_rotate(90), op_flip(false), op_crop(7, 1, 170, 240, false),
		op_rotate(180), op_flip(true), op_crop(0.02, 0.03, 0.9, 0.9, true), op_rotate(270),
		op_pad(4, 3, 255, 255, 255), op_crop(5, 3, 200, 150, false),
	};
	img_edit_result whole;
	img_raster	ref_base,
				ref,
				one,
				many;
	jb_buf		cur;
	bool		ok = true;

	if (!make_jpeg(256, 192, 92, true, &src) || apply(&src, chain, 10, &whole) != IMG_OK)
		return;
	CHECK(whole.method == IMG_MASTER_REENCODED, "lossy chain re-encodes");
	cur.data = malloc(src.len);
	cur.len = src.len;
	memcpy(cur.data, src.data, src.len);
	for (int i = 0; i < 10 && ok; i++)
	{
		img_edit_result step;

		ok = apply(&cur, &chain[i], 1, &step) == IMG_OK;
		if (!ok)
			break;
		jb_free(&cur);
		cur.data = malloc(step.master.len);
		memcpy(cur.data, step.master.data, step.master.len);
		cur.len = step.master.len;
		img_edit_result_free(&step);
	}
	if (ok && decode(src.data, src.len, &ref_base) && reference_apply(&ref_base, chain, 10, &ref))
	{
		if (decode(whole.master.data, whole.master.len, &one))
		{
			if (decode(cur.data, cur.len, &many))
			{
				double		p_one = psnr(&one, &ref);
				double		p_many = psnr(&many, &ref);

				printf("edit_lossy_chain: PSNR vs exact geometry: one call %.2f dB, ten calls %.2f dB (difference %.2f dB)\n",
					   p_one, p_many, p_one - p_many);
				CHECK(one.width == many.width && one.height == many.height, "same size %ux%u vs %ux%u",
					  one.width, one.height, many.width, many.height);
				/*
				 * Measured (256x192 noise over blocks, q92): one call 33.4 dB,
				 * ten calls 23.0 dB.  Eight of the ten separate calls must
				 * re-encode (unaligned crops and rotations of sizes that are
				 * not whole MCUs shift the block grid), and each generation
				 * re-quantises the noise anew: about 1 dB a generation, at
				 * q90 to q98 alike.  0.5 dB is out of reach for separate
				 * calls; one call is what keeps the loss to one generation.
				 */
				CHECK(p_one >= 30.0, "one call stays close to the exact geometry (%.2f dB)", p_one);
				CHECK(p_one > p_many && p_many >= 20.0,
					  "ten calls lose generations but stay an image of the same picture (%.2f vs %.2f dB)",
					  p_many, p_one);
				img_raster_free(&many);
			}
			img_raster_free(&one);
		}
		img_raster_free(&ref);
		img_raster_free(&ref_base);
	}
	jb_free(&cur);
	img_edit_result_free(&whole);
	jb_free(&src);
}

/* The focal point follows the ops and decides where cover crops. */
TEST_SUITE(edit_focus)
{
	jb_buf		src = {0};
	img_edit_result res;
	img_edit_op only = op_focus(0.75, 0.25, true);
	img_edit_op moved[] = {op_focus(48, 12, false), op_rotate(90), op_crop(8, 16, 32, 48, false),
	op_flip(false)};

	if (!make_jpeg(64, 48, 95, false, &src))
		return;
	if (apply(&src, &only, 1, &res) == IMG_OK)
	{
		CHECK(res.method == IMG_MASTER_LOSSLESS && res.master.len == src.len &&
			  memcmp(res.master.data, src.data, src.len) == 0, "focus alone: the base's bytes, lossless");
		CHECK(res.has_focus && res.focus_x == 0.75 && res.focus_y == 0.25, "focus alone: 0.75, 0.25 (%g, %g)",
			  res.focus_x, res.focus_y);
		img_edit_result_free(&res);
	}
	/*
	 * (48, 12) in 64x48; rotate 90 -> (48 - 12, 48) = (36, 48) in 48x64;
	 * crop at 8,16 -> (28, 32) in 32x48; hflip -> (4, 32): 0.125, 0.6667.
	 */
	if (apply(&src, moved, 4, &res) == IMG_OK)
	{
		CHECK(res.has_focus && fabs(res.focus_x - 0.125) < 1e-9 && fabs(res.focus_y - 32.0 / 48) < 1e-9,
			  "focus moved by rotate, crop, flip: (%g, %g)", res.focus_x, res.focus_y);
		CHECK(res.method == IMG_MASTER_LOSSLESS, "rotate, aligned crop, hflip of width 32: lossless");
		img_edit_result_free(&res);
	}
	jb_free(&src);

	/* cover 100x100 of a 400x100 picture: the focus picks the right end */
	{
		img_raster	r;
		img_variant_spec spec = {{100, 100, IMG_FIT_COVER, false}, 90, "square"};
		img_variant_result out;
		img_error	err = {0};
		img_focus	right = {0.97, 0.5};
		img_raster	got;
		img_placement pl;

		if (!jb_make_solid(&r, 400, 100, 128, 128, 128))
			return;
		for (uint32_t y = 40; y < 60; y++)
			for (uint32_t x = 360; x < 390; x++)
				memcpy(r.pixels + y * r.stride + x * 3, C_MAGENTA, 3);
		for (uint32_t y = 40; y < 60; y++)
			for (uint32_t x = 190; x < 210; x++)
				memcpy(r.pixels + y * r.stride + x * 3, C_GREEN, 3);
		if (!jb_encode(&r, 95, &src))
		{
			img_raster_free(&r);
			return;
		}
		img_raster_free(&r);

		img_geometry_place_focus(400, 100, &spec.geometry, &right, &pl);
		CHECK(pl.src_x == 300 && pl.src_w == 100, "focus at 0.97 clamps the window to x 300 (got %g)", pl.src_x);
		img_geometry_place_focus(400, 100, &spec.geometry, NULL, &pl);
		CHECK(pl.src_x == 150, "no focus: centred at x 150 (got %g)", pl.src_x);

		{
			img_limits	lim;

			img_limits_default(&lim);
			CHECK(img_render_variants_focus(src.data, src.len, &lim, &spec, 1, C_GREY, &right, &out, &err) == IMG_OK,
				  "render with focus: %s", err.message);
			if (out.jpeg.data && decode(out.jpeg.data, out.jpeg.len, &got))
			{
				CHECK(pixel_is(&got, 75, 50, C_MAGENTA, 12), "focus right: the right marker at 75,50");
				CHECK(!pixel_is(&got, 50, 50, C_GREEN, 40), "focus right: not the centre's green");
				img_raster_free(&got);
			}
			img_variant_results_free(&out, 1);
			CHECK(img_render_variants(src.data, src.len, &lim, &spec, 1, C_GREY, &out, &err) == IMG_OK,
				  "render without focus: %s", err.message);
			if (out.jpeg.data && decode(out.jpeg.data, out.jpeg.len, &got))
			{
				CHECK(pixel_is(&got, 50, 50, C_GREEN, 12), "no focus: the centre's green at 50,50");
				CHECK(!pixel_is(&got, 75, 50, C_MAGENTA, 40), "no focus: no right marker");
				img_raster_free(&got);
			}
			img_variant_results_free(&out, 1);
		}
		jb_free(&src);
	}
}

/* Plan errors name the op's index and the reason. */
TEST_SUITE(edit_plan_errors)
{
	static const struct
	{
		img_edit_op ops[3];
		size_t		n;
		img_status	status;
		int			index;
		const char *words;
	}			cases[] = {
		{{{.kind = IMG_EDIT_ROTATE, .degrees = 90}, {.kind = IMG_EDIT_CROP, .x = 10, .y = 10, .width = 100, .height = 10}}, 2,
		IMG_ERR_BAD_EDIT, 1, "reaches outside"},
		{{{.kind = IMG_EDIT_CROP, .x = 10, .y = 10, .width = 0, .height = 10}}, 1, IMG_ERR_BAD_EDIT, 0, "empty"},
		{{{.kind = IMG_EDIT_CROP, .x = 10, .y = 10, .width = 0.3, .height = 10}}, 1, IMG_ERR_BAD_EDIT, 0, "empty once rounded"},
		{{{.kind = IMG_EDIT_CROP, .x = -1, .y = 0, .width = 5, .height = 5}}, 1, IMG_ERR_BAD_EDIT, 0, "negative"},
		{{{.kind = IMG_EDIT_CROP, .ratio = true, .x = 0.5, .y = 0, .width = 0.6, .height = 1}}, 1, IMG_ERR_BAD_EDIT, 0, "outside"},
		{{{.kind = IMG_EDIT_FLIP}, {.kind = IMG_EDIT_ROTATE, .degrees = 45}}, 2, IMG_ERR_BAD_EDIT, 1, "90, 180 or 270"},
		{{{.kind = IMG_EDIT_ROTATE, .degrees = 0}}, 1, IMG_ERR_BAD_EDIT, 0, "degrees"},
		{{{.kind = IMG_EDIT_ROTATE, .degrees = 360}}, 1, IMG_ERR_BAD_EDIT, 0, "degrees"},
		{{{.kind = IMG_EDIT_ROTATE, .degrees = -90}}, 1, IMG_ERR_BAD_EDIT, 0, "degrees"},
		{{{.kind = IMG_EDIT_FLIP}, {.kind = IMG_EDIT_FLIP}, {.kind = IMG_EDIT_PAD, .aspect_w = 0, .aspect_h = 1}}, 3,
		IMG_ERR_BAD_EDIT, 2, "bad aspect"},
		{{{.kind = IMG_EDIT_PAD, .aspect_w = 1, .aspect_h = 10001}}, 1, IMG_ERR_BAD_EDIT, 0, "bad aspect"},
		{{{.kind = IMG_EDIT_PAD, .aspect_w = 1, .aspect_h = 300}}, 1, IMG_ERR_BAD_DIMENSIONS, 0, "max_side"},
		{{{.kind = IMG_EDIT_PAD, .aspect_w = 1, .aspect_h = 3}}, 1, IMG_ERR_TOO_MANY_PIXELS, 0, "max_megapixels"},
		{{{.kind = IMG_EDIT_FOCUS, .x = 101, .y = 0}}, 1, IMG_ERR_BAD_EDIT, 0, "outside"},
		{{{.kind = IMG_EDIT_FOCUS, .ratio = true, .x = 0.5, .y = 1.5}}, 1, IMG_ERR_BAD_EDIT, 0, "outside"},
		{{{.kind = IMG_EDIT_FLIP}, {.kind = (img_edit_kind) 42}}, 2, IMG_ERR_BAD_EDIT, 1, "unknown"},
	};
	img_limits	lim;

	img_limits_default(&lim);
	lim.max_side = 20000;
	lim.max_pixels = 20000;		/* a 100x100 base: 10000 px */
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
	{
		img_error	err = {0};
		int			bad = 99;
		char		want[16];
		img_status	st = img_edit_plan(100, 100, cases[k].ops, cases[k].n, &lim, NULL, NULL, &bad, &err);

		snprintf(want, sizeof(want), "edit op %d", cases[k].index);
		CHECK(st == cases[k].status && bad == cases[k].index,
			  "case %zu: %s at %d, expected %s at %d (%s)", k, img_status_name(st), bad,
			  img_status_name(cases[k].status), cases[k].index, err.message);
		CHECK(strstr(err.message, want) != NULL && strstr(err.message, cases[k].words) != NULL,
			  "case %zu: message names the op and \"%s\": %s", k, cases[k].words, err.message);
	}

	/* sizes: rotate swaps, ratio crop rounds edges, pad centres */
	{
		img_edit_op ops[] = {op_rotate(90), op_crop(0.1, 0.1, 0.5, 0.5, true), op_pad(16, 9, 0, 0, 0)};
		uint32_t	w = 0,
					h = 0;
		int			bad = 99;
		img_error	err = {0};
		img_status	st = img_edit_plan(61, 45, ops, 3, NULL, &w, &h, &bad, &err);

		/* 45x61: x 4.5 -> 5 .. 27 -> 27 (22), y 6.1 -> 6 .. 36.6 -> 37 (31); 22x31 to 16:9: 55x31 */
		CHECK(st == IMG_OK && bad == -1 && w == 55 && h == 31, "plan 61x45: 55x31, got %s %ux%u (%s)",
			  img_status_name(st), w, h, err.message);
	}
	/* a crop that cuts the focal point away keeps the nearest point inside: no error */
	{
		img_edit_op keep[] = {{.kind = IMG_EDIT_FOCUS, .x = 90, .y = 10}, {.kind = IMG_EDIT_CROP, .width = 50, .height = 50}};
		img_error	e2 = {0};
		int			bad2 = 99;
		uint32_t	w2 = 0,
					h2 = 0;

		CHECK(img_edit_plan(100, 100, keep, 2, &lim, &w2, &h2, &bad2, &e2) == IMG_OK && bad2 == -1 && w2 == 50 && h2 == 50,
			  "a crop that cuts the focal point away plans: %s", e2.message);
	}
}

/* Hostile input never crashes and always says why. */
TEST_SUITE(edit_hostile)
{
	img_edit_op many[IMG_EDIT_MAX_OPS + 1];
	img_edit_op flip = op_flip(false);
	img_error	err = {0};
	int			bad = 99;
	img_status	st;
	jb_buf		src = {0};
	img_edit_result res;
	static const double nasty[] = {NAN, INFINITY, -INFINITY, -1.0, 1e300, -1e300, 4294967296.0, 1e-300};

	st = img_edit_plan(64, 48, &flip, 0, NULL, NULL, NULL, &bad, &err);
	CHECK(st == IMG_ERR_BAD_EDIT && bad == -1, "n = 0 refused: %s %d", img_status_name(st), bad);
	st = img_edit_plan(64, 48, NULL, 3, NULL, NULL, NULL, &bad, &err);
	CHECK(st == IMG_ERR_BAD_EDIT, "ops NULL refused: %s", img_status_name(st));
	for (int i = 0; i <= IMG_EDIT_MAX_OPS; i++)
		many[i] = op_flip(i % 2);
	st = img_edit_plan(64, 48, many, IMG_EDIT_MAX_OPS + 1, NULL, NULL, NULL, &bad, &err);
	CHECK(st == IMG_ERR_BAD_EDIT && bad == IMG_EDIT_MAX_OPS && strstr(err.message, "at most 64") != NULL,
		  "65 ops refused at index 64: %s %d %s", img_status_name(st), bad, err.message);
	st = img_edit_plan(64, 48, many, IMG_EDIT_MAX_OPS, NULL, NULL, NULL, &bad, &err);
	CHECK(st == IMG_OK, "64 ops accepted: %s", err.message);
	st = img_edit_plan(0, 48, &flip, 1, NULL, NULL, NULL, &bad, &err);
	CHECK(st == IMG_ERR_BAD_DIMENSIONS, "a zero base refused: %s", img_status_name(st));

	for (size_t k = 0; k < sizeof(nasty) / sizeof(nasty[0]); k++)
		for (int field = 0; field < 4; field++)
		{
			img_edit_op crop = op_crop(1, 1, 10, 10, false);
			img_edit_op focus = op_focus(1, 1, field >= 2);
			double	   *f = field == 0 ? &crop.x : field == 1 ? &crop.y : field == 2 ? &crop.width : &crop.height;
			double	   *g = field % 2 ? &focus.y : &focus.x;

			*f = nasty[k];
			*g = nasty[k];
			st = img_edit_plan(64, 48, &crop, 1, NULL, NULL, NULL, &bad, &err);
			/* a tiny positive origin rounds to 0: a valid crop */
			CHECK(nasty[k] == 1e-300 && field < 2 ? st == IMG_OK : (st == IMG_ERR_BAD_EDIT && bad == 0),
				  "crop with %g in field %d: %s (%s)", nasty[k], field, img_status_name(st), err.message);
			st = img_edit_plan(64, 48, &focus, 1, NULL, NULL, NULL, &bad, &err);
			CHECK(st == (nasty[k] == 1e-300 ? IMG_OK : IMG_ERR_BAD_EDIT),
				  "focus with %g: %s (%s)", nasty[k], img_status_name(st), err.message);
		}
	/* the largest sides a pad can ask for, in 64 bits */
	{
		img_edit_op pad = op_pad(1, IMG_EDIT_MAX_ASPECT, 0, 0, 0);

		st = img_edit_plan(UINT32_MAX, UINT32_MAX - 1, &pad, 1, NULL, NULL, NULL, &bad, &err);
		CHECK(st == IMG_ERR_BAD_DIMENSIONS && bad == 0, "pad of a 4G side: %s (%s)", img_status_name(st),
			  err.message);
	}

	if (!make_jpeg(64, 48, 95, false, &src))
		return;
	/* truncated input at every length class: an error, nothing left behind */
	for (size_t cut = 0; cut < src.len; cut += cut < 64 ? 7 : 97)
	{
		st = img_edit_apply(src.data, cut, NULL, &flip, 1, 90, &res, &err);
		CHECK(st != IMG_OK && res.master.data == NULL, "cut at %zu: refused (%s)", cut, img_status_name(st));
		img_edit_result_free(&res);
	}
	{
		/* entropy data cut short but the header intact, with an EOI */
		uint8_t    *t = malloc(src.len);
		size_t		cut = src.len / 2;
		img_edit_op pad = op_pad(1, 1, 0, 0, 0);

		memcpy(t, src.data, cut);
		t[cut] = 0xFF;
		t[cut + 1] = 0xD9;
		st = img_edit_apply(t, cut + 2, NULL, &flip, 1, 90, &res, &err);
		CHECK((st == IMG_ERR_TRUNCATED || st == IMG_ERR_CORRUPT) && res.master.data == NULL,
			  "cut entropy data, lossless route: %s (%s)", img_status_name(st), err.message);
		st = img_edit_apply(t, cut + 2, NULL, &pad, 1, 90, &res, &err);
		CHECK((st == IMG_ERR_TRUNCATED || st == IMG_ERR_CORRUPT) && res.master.data == NULL,
			  "cut entropy data, pixel route: %s (%s)", img_status_name(st), err.message);
		free(t);
	}
	{
		static const uint8_t garbage[] = {1, 2, 3, 4, 5, 6, 7, 8};
		img_edit_op bad_crop = op_crop(0, 0, 1e300, 5, false);

		st = img_edit_apply(garbage, sizeof(garbage), NULL, &flip, 1, 90, &res, &err);
		CHECK(st == IMG_ERR_UNKNOWN_FORMAT && res.master.data == NULL, "garbage: %s", img_status_name(st));
		st = img_edit_apply(NULL, 0, NULL, &flip, 1, 90, &res, &err);
		CHECK(st == IMG_ERR_EMPTY, "no bytes: %s", img_status_name(st));
		st = img_edit_apply(src.data, src.len, NULL, &bad_crop, 1, 90, &res, &err);
		CHECK(st == IMG_ERR_BAD_EDIT && res.master.data == NULL && strstr(err.message, "edit op 0") != NULL,
			  "apply refuses a bad plan: %s (%s)", img_status_name(st), err.message);
	}
	jb_free(&src);
}
