/*
 * test_resize.c — placement arithmetic and the Lanczos-3 resampler.
 *
 * Geometry is checked number by number.  The resampler is checked on
 * inputs whose correct output is known without a reference implementation:
 * flat colour stays exactly flat, a ramp stays a monotonic ramp with the
 * same mean, a one-pixel checkerboard shrinks to grey (anti-aliasing), a
 * smooth image survives a round trip, and unscaled crops are exact copies.
 */
#include "test.h"
#include "imgcore.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ geometry */

static img_placement
place(uint32_t sw, uint32_t sh, uint32_t bw, uint32_t bh, img_fit fit, bool up)
{
	img_geometry g = {bw, bh, fit, up};
	img_placement p;

	img_geometry_place(sw, sh, &g, &p);
	return p;
}

#define CHECK_OUT(p, w, h) \
	CHECK((p).out_width == (w) && (p).out_height == (h), \
		  "out %ux%u, expected %ux%u", (p).out_width, (p).out_height, (w), (h))
#define CHECK_DST(p, x, y, w, h) \
	CHECK((p).dst_x == (x) && (p).dst_y == (y) && (p).dst_w == (w) && (p).dst_h == (h), \
		  "dst %ux%u+%u+%u, expected %ux%u+%u+%u", (p).dst_w, (p).dst_h, \
		  (p).dst_x, (p).dst_y, (w), (h), (x), (y))
#define CHECK_SRC(p, x, y, w, h) \
	CHECK(fabs((p).src_x - (x)) < 1e-9 && fabs((p).src_y - (y)) < 1e-9 && \
		  fabs((p).src_w - (w)) < 1e-9 && fabs((p).src_h - (h)) < 1e-9, \
		  "src %gx%g+%g+%g, expected %gx%g+%g+%g", (p).src_w, (p).src_h, \
		  (p).src_x, (p).src_y, (double) (w), (double) (h), (double) (x), (double) (y))

TEST_SUITE(geometry_contain)
{
	img_placement p;

	p = place(4000, 3000, 1000, 1000, IMG_FIT_CONTAIN, false);	/* landscape */
	CHECK_OUT(p, 1000, 750);
	CHECK_SRC(p, 0, 0, 4000, 3000);
	CHECK_DST(p, 0, 0, 1000, 750);
	p = place(3000, 4000, 1000, 1000, IMG_FIT_CONTAIN, false);	/* portrait */
	CHECK_OUT(p, 750, 1000);
	p = place(2000, 2000, 1000, 600, IMG_FIT_CONTAIN, false);	/* square */
	CHECK_OUT(p, 600, 600);

	/* one side free, both free */
	p = place(4000, 3000, 800, 0, IMG_FIT_CONTAIN, false);
	CHECK_OUT(p, 800, 600);
	p = place(4000, 3000, 0, 300, IMG_FIT_CONTAIN, false);
	CHECK_OUT(p, 400, 300);
	p = place(4000, 3000, 0, 0, IMG_FIT_CONTAIN, false);
	CHECK_OUT(p, 4000, 3000);

	/* never upscale unless allowed */
	p = place(500, 400, 1000, 1000, IMG_FIT_CONTAIN, false);
	CHECK_OUT(p, 500, 400);
	p = place(500, 400, 1000, 1000, IMG_FIT_CONTAIN, true);
	CHECK_OUT(p, 1000, 800);
	p = place(500, 400, 2000, 0, IMG_FIT_CONTAIN, false);
	CHECK_OUT(p, 500, 400);
	p = place(500, 400, 1000, 400, IMG_FIT_CONTAIN, false);	/* exactly fits */
	CHECK_OUT(p, 500, 400);

	/* rounding: nearest, halves up, at least 1, never over the box */
	p = place(4, 3, 2, 0, IMG_FIT_CONTAIN, false);	/* 1.5 */
	CHECK_OUT(p, 2, 2);
	p = place(1001, 1000, 500, 500, IMG_FIT_CONTAIN, false);	/* 499.50 */
	CHECK_OUT(p, 500, 500);
	p = place(1003, 1000, 500, 500, IMG_FIT_CONTAIN, false);	/* 498.50 */
	CHECK_OUT(p, 500, 499);
	p = place(10000, 10, 100, 100, IMG_FIT_CONTAIN, false);	/* 0.1 */
	CHECK_OUT(p, 100, 1);
	p = place(1, 1, 100, 100, IMG_FIT_CONTAIN, true);
	CHECK_OUT(p, 100, 100);
	p = place(1, 1, 100, 100, IMG_FIT_CONTAIN, false);
	CHECK_OUT(p, 1, 1);
	p = place(UINT32_MAX, 3, 7, 0, IMG_FIT_CONTAIN, false);	/* no overflow */
	CHECK_OUT(p, 7, 1);
}

TEST_SUITE(geometry_cover)
{
	img_placement p;

	p = place(4000, 3000, 1000, 1000, IMG_FIT_COVER, false);
	CHECK_OUT(p, 1000, 1000);
	CHECK_SRC(p, 500, 0, 3000, 3000);
	CHECK_DST(p, 0, 0, 1000, 1000);
	p = place(3000, 4000, 1000, 1000, IMG_FIT_COVER, false);
	CHECK_SRC(p, 0, 500, 3000, 3000);
	p = place(2000, 2000, 1000, 500, IMG_FIT_COVER, false);
	CHECK_OUT(p, 1000, 500);
	CHECK_SRC(p, 0, 500, 2000, 1000);

	/* fractional crop: 16:9 box on a source that is not quite 16:9 */
	p = place(2262, 1272, 1920, 1080, IMG_FIT_COVER, false);
	CHECK_OUT(p, 1920, 1080);
	CHECK_SRC(p, (2262 - 1272.0 * 1920 / 1080) / 2, 0, 1272.0 * 1920 / 1080, 1272);

	/* no upscale: the box's aspect cut from the source, unscaled, whole pixels */
	p = place(300, 200, 400, 400, IMG_FIT_COVER, false);
	CHECK_OUT(p, 200, 200);
	CHECK_SRC(p, 50, 0, 200, 200);
	p = place(1000, 200, 500, 500, IMG_FIT_COVER, false);	/* one side smaller */
	CHECK_OUT(p, 200, 200);
	CHECK_SRC(p, 400, 0, 200, 200);
	p = place(301, 200, 400, 400, IMG_FIT_COVER, false);	/* odd leftover: floor */
	CHECK_SRC(p, 50, 0, 200, 200);
	p = place(300, 200, 400, 400, IMG_FIT_COVER, true);
	CHECK_OUT(p, 400, 400);
	CHECK_SRC(p, 50, 0, 200, 200);

	/* a free side makes it contain */
	p = place(4000, 3000, 1000, 0, IMG_FIT_COVER, false);
	CHECK_OUT(p, 1000, 750);
	CHECK_SRC(p, 0, 0, 4000, 3000);
}

TEST_SUITE(geometry_pad)
{
	img_placement p;

	p = place(4000, 3000, 1000, 1000, IMG_FIT_PAD, false);
	CHECK_OUT(p, 1000, 1000);
	CHECK_DST(p, 0, 125, 1000, 750);
	CHECK_SRC(p, 0, 0, 4000, 3000);
	p = place(3000, 4000, 1000, 1000, IMG_FIT_PAD, false);
	CHECK_DST(p, 125, 0, 750, 1000);
	p = place(2000, 2000, 1000, 1000, IMG_FIT_PAD, false);
	CHECK_DST(p, 0, 0, 1000, 1000);

	/* odd leftover goes right/bottom */
	p = place(4000, 3000, 1000, 753, IMG_FIT_PAD, false);
	CHECK_OUT(p, 1000, 753);
	CHECK_DST(p, 0, 1, 1000, 750);

	/* no upscale: the source as is, centred on the box */
	p = place(300, 200, 400, 400, IMG_FIT_PAD, false);
	CHECK_OUT(p, 400, 400);
	CHECK_DST(p, 50, 100, 300, 200);
	p = place(300, 200, 400, 400, IMG_FIT_PAD, true);
	CHECK_DST(p, 0, 66, 400, 267);

	/* a free side makes it contain */
	p = place(4000, 3000, 0, 300, IMG_FIT_PAD, false);
	CHECK_OUT(p, 400, 300);
	CHECK_DST(p, 0, 0, 400, 300);
}

/* ------------------------------------------------------------ resampling */

static bool
make(img_raster *r, uint32_t w, uint32_t h, uint32_t ch)
{
	img_error	err;

	return img_raster_init(r, w, h, ch, &err) == IMG_OK;
}

static uint8_t *
px(const img_raster *r, uint32_t x, uint32_t y)
{
	return r->pixels + (size_t) y * r->stride + (size_t) x * r->channels;
}

static void
fill(img_raster *r, const uint8_t *colour)
{
	for (uint32_t y = 0; y < r->height; y++)
		for (uint32_t x = 0; x < r->width; x++)
			memcpy(px(r, x, y), colour, r->channels);
}

/* number of samples that differ from colour */
static uint64_t
off_colour(const img_raster *r, const uint8_t *colour)
{
	uint64_t	bad = 0;

	for (uint32_t y = 0; y < r->height; y++)
		for (uint32_t x = 0; x < r->width; x++)
			bad += memcmp(px(r, x, y), colour, r->channels) != 0;
	return bad;
}

static double
mean(const img_raster *r, uint32_t c)
{
	double		sum = 0;

	for (uint32_t y = 0; y < r->height; y++)
		for (uint32_t x = 0; x < r->width; x++)
			sum += px(r, x, y)[c];
	return sum / ((double) r->width * r->height);
}

TEST_SUITE(resize_flat)
{
	static const uint8_t rgb[4] = {11, 200, 77, 255};
	static const uint8_t rgba[4] = {250, 3, 128, 90};
	static const struct
	{
		double		x,
					y,
					w,
					h;
		uint32_t	dw,
					dh;
	}			cases[] = {
		{0, 0, 37, 23, 17, 9},	/* shrink */
		{0, 0, 37, 23, 80, 50},	/* enlarge */
		{0, 0, 37, 23, 100, 5},	/* enlarge one axis, shrink the other */
		{0, 0, 37, 23, 1, 1},
		{0, 0, 37, 23, 1, 23},	/* one pixel wide */
		{0, 0, 37, 23, 37, 1},
		{2.5, 1.25, 20.3, 10.7, 13, 7},	/* fractional crop */
		{30.5, 20, 6.5, 3, 4, 2},	/* crop touching right and bottom */
		{0, 0, 37, 23, 37, 23},	/* unscaled */
		{0.5, 0, 36, 23, 36, 23},	/* unscaled, half-pixel shift */
	};

	/* 3 and 4 channels are the contract; 1 and 2 share the code */
	for (uint32_t ch = 1; ch <= 4; ch++)
	{
		const uint8_t *colour = ch == 3 ? rgb : rgba;
		img_raster	src;
		img_error	err;

		if (!make(&src, 37, 23, ch))
		{
			CHECK(false, "raster allocates");
			return;
		}
		fill(&src, colour);
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		{
			img_raster	dst;
			img_status	st = img_resize(&src, cases[i].x, cases[i].y, cases[i].w, cases[i].h,
										cases[i].dw, cases[i].dh, &dst, &err);

			CHECK(st == IMG_OK, "case %zu (%u ch) succeeds: %s", i, ch,
				  st == IMG_OK ? "" : err.message);
			if (st != IMG_OK)
				continue;
			CHECK(dst.width == cases[i].dw && dst.height == cases[i].dh && dst.channels == ch,
				  "case %zu: size %ux%ux%u", i, dst.width, dst.height, dst.channels);
			CHECK(off_colour(&dst, colour) == 0,
				  "case %zu (%u ch): flat colour stays exactly flat, %llu pixels differ",
				  i, ch, (unsigned long long) off_colour(&dst, colour));
			img_raster_free(&dst);
		}
		img_raster_free(&src);
	}

	/* a 1x1 source to anything */
	{
		img_raster	one,
					dst;
		img_error	err;

		if (make(&one, 1, 1, 3))
		{
			fill(&one, rgb);
			CHECK(img_resize(&one, 0, 0, 1, 1, 5, 3, &dst, &err) == IMG_OK, "1x1 -> 5x3");
			CHECK(dst.pixels && off_colour(&dst, rgb) == 0, "1x1 -> 5x3 is flat");
			img_raster_free(&dst);
			CHECK(img_resize(&one, 0, 0, 1, 1, 1, 1, &dst, &err) == IMG_OK, "1x1 -> 1x1");
			CHECK(dst.pixels && off_colour(&dst, rgb) == 0, "1x1 -> 1x1 is a copy");
			img_raster_free(&dst);
			CHECK(img_resize(&one, 0.25, 0.25, 0.5, 0.5, 2, 2, &dst, &err) == IMG_OK,
				  "sub-pixel crop of 1x1");
			CHECK(dst.pixels && off_colour(&dst, rgb) == 0, "sub-pixel crop is flat");
			img_raster_free(&dst);
			img_raster_free(&one);
		}
	}
}

/* horizontal ramp value(x) = x * 255 / (w - 1), same in every row and channel */
static bool
make_ramp(img_raster *r, uint32_t w, uint32_t h, uint32_t ch)
{
	if (!make(r, w, h, ch))
		return false;
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++)
			memset(px(r, x, y), (int) ((x * 255 + (w - 1) / 2) / (w - 1)), ch);
	return true;
}

TEST_SUITE(resize_ramp)
{
	static const uint32_t widths[] = {100, 255, 600, 31};	/* shrink, shrink, enlarge, shrink */

	for (size_t i = 0; i < sizeof(widths) / sizeof(widths[0]); i++)
	{
		img_raster	src,
					dst;
		img_error	err;
		uint32_t	dw = widths[i];
		uint32_t	non_monotonic = 0;

		if (!make_ramp(&src, 256, 6, 3))
		{
			CHECK(false, "raster allocates");
			return;
		}
		CHECK(img_resize(&src, 0, 0, 256, 6, dw, 4, &dst, &err) == IMG_OK, "ramp -> %u", dw);
		if (dst.pixels == NULL)
		{
			img_raster_free(&src);
			continue;
		}
		for (uint32_t y = 0; y < dst.height; y++)
			for (uint32_t x = 1; x < dst.width; x++)
				for (uint32_t c = 0; c < 3; c++)
					non_monotonic += px(&dst, x, y)[c] < px(&dst, x - 1, y)[c];
		CHECK(non_monotonic == 0, "ramp -> %u stays monotonic (%u steps down)", dw, non_monotonic);
		for (uint32_t c = 0; c < 3; c++)
			CHECK(fabs(mean(&dst, c) - mean(&src, c)) <= 1.0,
				  "ramp -> %u keeps the mean: %.3f vs %.3f", dw, mean(&dst, c), mean(&src, c));
		/* the ends sit where the ramp is at the first and last output centres */
		{
			double		first = (0.5 * 256 / dw - 0.5) * 255 / 255;
			double		last = ((dw - 0.5) * 256 / dw - 0.5) * 255 / 255;

			if (first < 0)
				first = 0;
			if (last > 255)
				last = 255;
			CHECK(fabs(px(&dst, 0, 0)[0] - first) <= 1.5 &&
				  fabs(px(&dst, dw - 1, 0)[0] - last) <= 1.5,
				  "ramp -> %u ends: %u..%u, expected about %.1f..%.1f", dw,
				  px(&dst, 0, 0)[0], px(&dst, dw - 1, 0)[0], first, last);
		}
		img_raster_free(&dst);
		img_raster_free(&src);
	}
}

TEST_SUITE(resize_antialias)
{
	/* a one-pixel checkerboard is pure Nyquist: halving it must give grey */
	for (uint32_t ch = 3; ch <= 4; ch++)
	{
		img_raster	src,
					dst;
		img_error	err;
		int			lo = 255,
					hi = 0;

		if (!make(&src, 64, 48, ch))
		{
			CHECK(false, "raster allocates");
			return;
		}
		for (uint32_t y = 0; y < 48; y++)
			for (uint32_t x = 0; x < 64; x++)
				memset(px(&src, x, y), ((x + y) & 1) ? 255 : 0, ch);
		CHECK(img_resize(&src, 0, 0, 64, 48, 32, 24, &dst, &err) == IMG_OK, "checkerboard / 2");
		if (dst.pixels != NULL)
		{
			int			clo = 255,
						chi = 0;

			/*
			 * Within +-2 everywhere but the four corner pixels, where the
			 * kernel is cut on two sides at once and the renormalised
			 * weights no longer cancel the pattern exactly (+-4 there).
			 */
			for (uint32_t y = 0; y < dst.height; y++)
				for (uint32_t x = 0; x < dst.width; x++)
					for (uint32_t c = 0; c < ch; c++)
					{
						int			v = px(&dst, x, y)[c];
						bool		corner = (x == 0 || x == dst.width - 1) &&
							(y == 0 || y == dst.height - 1);

						if (corner)
						{
							clo = v < clo ? v : clo;
							chi = v > chi ? v : chi;
						}
						else
						{
							lo = v < lo ? v : lo;
							hi = v > hi ? v : hi;
						}
					}
			CHECK(lo >= 126 && hi <= 129, "checkerboard / 2 (%u ch) is grey: %d..%d", ch, lo, hi);
			CHECK(clo >= 124 && chi <= 131, "checkerboard / 2 (%u ch) corners: %d..%d", ch, clo, chi);
		}
		img_raster_free(&dst);

		/* same for a non-integer factor, away from the borders */
		CHECK(img_resize(&src, 0, 0, 64, 48, 23, 17, &dst, &err) == IMG_OK, "checkerboard / 2.8");
		if (dst.pixels != NULL)
		{
			lo = 255;
			hi = 0;
			for (uint32_t y = 3; y + 3 < dst.height; y++)
				for (uint32_t x = 3; x + 3 < dst.width; x++)
				{
					int			v = px(&dst, x, y)[0];

					lo = v < lo ? v : lo;
					hi = v > hi ? v : hi;
				}
			CHECK(lo >= 120 && hi <= 135, "checkerboard / 2.8 is grey: %d..%d", lo, hi);
		}
		img_raster_free(&dst);
		img_raster_free(&src);
	}
}

TEST_SUITE(resize_round_trip)
{
	img_raster	src,
				big,
				back;
	img_error	err;
	double		sum = 0;
	int			worst = 0;

	if (!make(&src, 60, 40, 3))
	{
		CHECK(false, "raster allocates");
		return;
	}
	for (uint32_t y = 0; y < 40; y++)
		for (uint32_t x = 0; x < 60; x++)
		{
			uint8_t    *p = px(&src, x, y);

			p[0] = (uint8_t) lrint(128 + 100 * sin(x * 0.15) * cos(y * 0.1));
			p[1] = (uint8_t) lrint(128 + 90 * cos(x * 0.07 + y * 0.05));
			p[2] = (uint8_t) (x * 2 + y);
		}
	CHECK(img_resize(&src, 0, 0, 60, 40, 120, 80, &big, &err) == IMG_OK, "2x up");
	CHECK(big.pixels && img_resize(&big, 0, 0, 120, 80, 60, 40, &back, &err) == IMG_OK, "2x down");
	if (back.pixels != NULL)
	{
		for (uint32_t y = 0; y < 40; y++)
			for (uint32_t x = 0; x < 60; x++)
				for (uint32_t c = 0; c < 3; c++)
				{
					int			d = abs((int) px(&src, x, y)[c] - (int) px(&back, x, y)[c]);

					sum += d;
					worst = d > worst ? d : worst;
				}
		CHECK(sum / (60 * 40 * 3) < 0.75, "round trip mean error %.3f", sum / (60 * 40 * 3));
		CHECK(worst <= 6, "round trip worst error %d", worst);
	}
	img_raster_free(&big);
	img_raster_free(&back);
	img_raster_free(&src);
}

TEST_SUITE(resize_copy_and_crop)
{
	img_raster	src,
				dst;
	img_error	err;
	uint64_t	bad = 0;

	if (!make(&src, 53, 31, 4))
	{
		CHECK(false, "raster allocates");
		return;
	}
	srand(7);
	for (size_t i = 0; i < src.stride * src.height; i++)
		src.pixels[i] = (uint8_t) rand();

	/* whole image, unchanged size: byte-identical */
	CHECK(img_resize(&src, 0, 0, 53, 31, 53, 31, &dst, &err) == IMG_OK, "identity");
	for (uint32_t y = 0; dst.pixels && y < 31; y++)
		bad += memcmp(px(&src, 0, y), px(&dst, 0, y), 53 * 4) != 0;
	CHECK(dst.pixels && bad == 0, "identity is a copy");
	img_raster_free(&dst);

	/* whole-pixel crop at the bottom-right corner, unscaled: exact */
	bad = 0;
	CHECK(img_resize(&src, 43, 26, 10, 5, 10, 5, &dst, &err) == IMG_OK, "corner crop");
	for (uint32_t y = 0; dst.pixels && y < 5; y++)
		bad += memcmp(px(&src, 43, y + 26), px(&dst, 0, y), 10 * 4) != 0;
	CHECK(dst.pixels && bad == 0, "corner crop is exact");
	img_raster_free(&dst);

	/* fractional crop at the left/top border and at the right/bottom border */
	CHECK(img_resize(&src, 0, 0, 7.5, 4.5, 5, 3, &dst, &err) == IMG_OK, "top-left crop");
	img_raster_free(&dst);
	CHECK(img_resize(&src, 53 - 7.5, 31 - 4.5, 7.5, 4.5, 5, 3, &dst, &err) == IMG_OK,
		  "bottom-right crop");
	img_raster_free(&dst);
	/* float noise at the edge is tolerated */
	CHECK(img_resize(&src, 0.1, 0, 53 - 0.1 + 1e-9, 31, 20, 10, &dst, &err) == IMG_OK,
		  "crop ending a hair past the edge");
	img_raster_free(&dst);

	/* 1-pixel outputs of a random image stay in range and succeed */
	CHECK(img_resize(&src, 0, 0, 53, 31, 1, 31, &dst, &err) == IMG_OK, "1 wide");
	img_raster_free(&dst);
	CHECK(img_resize(&src, 0, 0, 53, 31, 53, 1, &dst, &err) == IMG_OK, "1 high");
	img_raster_free(&dst);

	/* refusals leave dst empty */
	memset(&err, 0, sizeof(err));
	CHECK(img_resize(&src, -1, 0, 10, 10, 5, 5, &dst, &err) == IMG_ERR_INTERNAL, "crop left of 0");
	CHECK(dst.pixels == NULL && err.message[0] != '\0', "dst empty, message: %s", err.message);
	CHECK(img_resize(&src, 50, 0, 10, 10, 5, 5, &dst, &err) != IMG_OK, "crop past the right");
	CHECK(img_resize(&src, 0, 0, 0, 10, 5, 5, &dst, &err) != IMG_OK, "empty crop");
	CHECK(img_resize(&src, 0, 0, NAN, 10, 5, 5, &dst, &err) != IMG_OK, "NaN crop");
	CHECK(img_resize(&src, 0, 0, 10, 10, 0, 5, &dst, &err) != IMG_OK, "zero width");
	CHECK(img_resize(NULL, 0, 0, 10, 10, 5, 5, &dst, &err) != IMG_OK, "no source");
	CHECK(dst.pixels == NULL, "dst empty");
	img_raster_free(&src);
}

TEST_SUITE(render_geometry)
{
	static const uint8_t red[3] = {255, 0, 0};
	static const uint8_t blue[3] = {0, 0, 255};
	img_raster	src,
				dst;
	img_error	err;
	img_placement p;

	/* pad: 40x20 red in a 30x30 blue box -> image 30x15 at y 7 */
	if (!make(&src, 40, 20, 3))
	{
		CHECK(false, "raster allocates");
		return;
	}
	fill(&src, red);
	p = place(40, 20, 30, 30, IMG_FIT_PAD, false);
	CHECK_DST(p, 0, 7, 30, 15);
	CHECK(img_render_geometry(&src, &p, blue, &dst, &err) == IMG_OK, "pad renders");
	if (dst.pixels != NULL)
	{
		uint32_t	bad = 0;

		CHECK(dst.width == 30 && dst.height == 30, "pad canvas %ux%u", dst.width, dst.height);
		for (uint32_t y = 0; y < 30; y++)
			for (uint32_t x = 0; x < 30; x++)
				bad += memcmp(px(&dst, x, y), (y >= 7 && y < 22) ? red : blue, 3) != 0;
		CHECK(bad == 0, "pad: image on the background with sharp borders, %u wrong", bad);
	}
	img_raster_free(&dst);

	/* contain at the same size: a copy */
	p = place(40, 20, 0, 0, IMG_FIT_CONTAIN, false);
	CHECK(img_render_geometry(&src, &p, blue, &dst, &err) == IMG_OK, "identity renders");
	CHECK(dst.pixels && dst.width == 40 && dst.height == 20 && off_colour(&dst, red) == 0,
		  "identity is a copy");
	img_raster_free(&dst);

	/* cover */
	p = place(40, 20, 10, 10, IMG_FIT_COVER, false);
	CHECK(img_render_geometry(&src, &p, blue, &dst, &err) == IMG_OK, "cover renders");
	CHECK(dst.pixels && dst.width == 10 && dst.height == 10 && off_colour(&dst, red) == 0,
		  "cover 10x10, flat");
	img_raster_free(&dst);
	img_raster_free(&src);

	/* pad with alpha: background is opaque, the image keeps its alpha */
	{
		static const uint8_t half[4] = {10, 20, 30, 128};
		static const uint8_t bg4[4] = {0, 0, 255, 255};

		if (make(&src, 10, 40, 4))
		{
			fill(&src, half);
			p = place(10, 40, 20, 20, IMG_FIT_PAD, false);
			CHECK_DST(p, 7, 0, 5, 20);
			CHECK(img_render_geometry(&src, &p, blue, &dst, &err) == IMG_OK, "RGBA pad renders");
			if (dst.pixels != NULL)
			{
				CHECK(memcmp(px(&dst, 0, 0), bg4, 4) == 0 && memcmp(px(&dst, 19, 19), bg4, 4) == 0,
					  "RGBA background opaque");
				CHECK(memcmp(px(&dst, 7, 0), half, 4) == 0 && memcmp(px(&dst, 11, 19), half, 4) == 0,
					  "RGBA image keeps its alpha");
			}
			img_raster_free(&dst);
			img_raster_free(&src);
		}
	}

	/* invalid placements are refused */
	if (make(&src, 4, 4, 3))
	{
		img_placement bad = place(4, 4, 8, 8, IMG_FIT_PAD, false);

		bad.dst_x = 6;			/* 4 wide at 6 in an 8-wide canvas */
		CHECK(img_render_geometry(&src, &bad, blue, &dst, &err) != IMG_OK, "overflowing pad refused");
		CHECK(dst.pixels == NULL, "dst empty");
		img_raster_free(&src);
	}
}

/* ------------------------------------------------- allocation failures */

static int	alloc_budget;

static void *
failing_alloc(size_t size, void *ctx)
{
	(void) ctx;
	if (alloc_budget-- <= 0)
		return NULL;
	return malloc(size);
}

static void *
failing_realloc(void *ptr, size_t size, void *ctx)
{
	(void) ctx;
	if (alloc_budget-- <= 0)
		return NULL;
	return realloc(ptr, size);
}

static void
plain_free(void *ptr, void *ctx)
{
	(void) ctx;
	free(ptr);
}

TEST_SUITE(resize_alloc_failure)
{
	/*
	 * Fail the n-th allocation for every n until the call succeeds: each
	 * failure must report out_of_memory and leak nothing (the sanitizer and
	 * valgrind runs catch leaks).  Both pass orders and pad are covered.
	 */
	static const img_allocator failing = {failing_alloc, failing_realloc, plain_free, NULL};
	img_raster	src;
	img_error	err;

	if (!make(&src, 30, 20, 3))
	{
		CHECK(false, "raster allocates");
		return;
	}
	memset(src.pixels, 99, src.stride * src.height);

	for (int mode = 0; mode < 4; mode++)
	{
		int			n;
		bool		done = false;

		for (n = 0; n < 40 && !done; n++)
		{
			img_raster	dst;
			img_status	st;

			img_set_allocator(&failing);
			alloc_budget = n;
			if (mode == 0)
				st = img_resize(&src, 0, 0, 30, 20, 11, 7, &dst, &err);
			else if (mode == 1)
				st = img_resize(&src, 0, 0, 30, 20, 70, 50, &dst, &err);
			else if (mode == 2)
			{
				img_placement p = place(30, 20, 50, 50, IMG_FIT_PAD, true);

				st = img_render_geometry(&src, &p, NULL, &dst, &err);
			}
			else
				st = img_orient(&src, 6, &dst, &err);
			img_set_allocator(NULL);
			if (st == IMG_OK)
			{
				done = true;
				img_raster_free(&dst);
			}
			else
				CHECK(st == IMG_ERR_NO_MEMORY && dst.pixels == NULL,
					  "mode %d, allocation %d fails cleanly: %s", mode, n, err.message);
		}
		CHECK(done, "mode %d eventually succeeds", mode);
	}
	img_raster_free(&src);
}
