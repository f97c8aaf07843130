/*
 * test_render.c — img_render_variants: one decode, many variant JPEGs.
 *
 * The variant sizes are computed here from the geometry rules (contain takes
 * the constraining side exactly and rounds the free side to nearest; cover
 * fills the box; pad contains and centres on the box; nothing is enlarged
 * unless allowed) and compared with what the renderer produced.  Every
 * output must decode to its reported size, a solid-colour source must give
 * solid-colour outputs and pad borders must be the background, results must
 * follow the order of the specs whatever order the renderer works in, and a
 * source that fails to probe or decode must leave no result behind.
 */
#include "test.h"
#include "imgcore.h"

#include <stdlib.h>
#include <string.h>

typedef struct expect
{
	img_fit		fit;
	uint32_t	bw,
				bh;
	bool		upscale;
	uint32_t	want_w,
				want_h;
} expect;

static bool
encode_raster(const img_raster *r, int quality, img_buffer *out)
{
	img_error	err;

	return img_encode_jpeg(r, quality, out, &err) == IMG_OK;
}

/* A diagonal colour ramp: every region differs, so crops and scales show. */
static bool
ramp_jpeg(uint32_t w, uint32_t h, img_buffer *out)
{
	img_raster	r;
	img_error	err;
	bool		ok;

	if (img_raster_init(&r, w, h, 3, &err) != IMG_OK)
		return false;
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++)
		{
			uint8_t    *p = r.pixels + y * r.stride + x * 3;

			p[0] = (uint8_t) (x * 255 / (w - 1));
			p[1] = (uint8_t) (y * 255 / (h - 1));
			p[2] = (uint8_t) ((x + y) & 0xFF);
		}
	ok = encode_raster(&r, 80, out);
	img_raster_free(&r);
	return ok;
}

static bool
solid_jpeg(uint32_t w, uint32_t h, const uint8_t rgb[3], img_buffer *out)
{
	img_raster	r;
	img_error	err;
	bool		ok;

	if (img_raster_init(&r, w, h, 3, &err) != IMG_OK)
		return false;
	for (size_t i = 0; i < (size_t) w * h; i++)
		memcpy(r.pixels + i * 3, rgb, 3);
	ok = encode_raster(&r, 90, out);
	img_raster_free(&r);
	return ok;
}

static img_status
render(const img_buffer *src, const expect *ex, size_t n, const uint8_t bg[3],
	   img_variant_result *results, img_error *err)
{
	img_limits	lim;
	img_variant_spec specs[16] = {0};

	img_limits_default(&lim);
	for (size_t i = 0; i < n; i++)
	{
		specs[i].geometry.box_width = ex[i].bw;
		specs[i].geometry.box_height = ex[i].bh;
		specs[i].geometry.fit = ex[i].fit;
		specs[i].geometry.allow_upscale = ex[i].upscale;
		specs[i].quality = 85;
	}
	return img_render_variants(src->data, src->len, &lim, specs, n, bg, results, err);
}

static img_status
decode(const img_buffer *b, img_raster *out, img_error *err)
{
	img_limits	lim;
	img_load_options opt;

	img_limits_default(&lim);
	img_load_options_default(&opt);
	return img_load(b->data, b->len, &lim, &opt, out, NULL, err);
}

/* Check sizes and that each variant decodes at its reported size. */
static void
check_results(const char *what, const expect *ex, const img_variant_result *res, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		img_raster	r;
		img_error	err = {0};

		CHECK(res[i].status == IMG_OK, "%s #%zu: status %s", what, i, img_status_name(res[i].status));
		CHECK(res[i].width == ex[i].want_w && res[i].height == ex[i].want_h,
			  "%s #%zu (%s %ux%u%s): expected %ux%u, got %ux%u", what, i, img_fit_name(ex[i].fit),
			  ex[i].bw, ex[i].bh, ex[i].upscale ? " upscale" : "", ex[i].want_w, ex[i].want_h,
			  res[i].width, res[i].height);
		if (res[i].jpeg.data == NULL)
		{
			CHECK(false, "%s #%zu has no jpeg", what, i);
			continue;
		}
		if (decode(&res[i].jpeg, &r, &err) == IMG_OK)
		{
			CHECK(r.width == res[i].width && r.height == res[i].height,
				  "%s #%zu decodes at %ux%u, reported %ux%u", what, i, r.width, r.height,
				  res[i].width, res[i].height);
			img_raster_free(&r);
		}
		else
			CHECK(false, "%s #%zu decodes: %s", what, i, err.message);
	}
}

TEST_SUITE(render_sizes_3000x2000)
{
	img_buffer	src;
	img_variant_result res[10];
	img_error	err = {0};
	img_status	st;
	static const uint8_t white[3] = {255, 255, 255};

	/*
	 * Mixed on purpose: neither largest- nor smallest-first, so results in
	 * spec order prove the renderer puts them back where they belong.
	 * 2000 * 1024 / 3000 = 682.67 -> 683; * 512 -> 341.33 -> 341;
	 * * 256 -> 170.67 -> 171.  Pad 800x200: the height constrains,
	 * 3000 * 200 / 2000 = 300 wide, centred on 800.
	 */
	static const expect ex[] = {
		{IMG_FIT_CONTAIN, 256, 0, false, 256, 171},
		{IMG_FIT_CONTAIN, 1920, 0, false, 1920, 1280},
		{IMG_FIT_COVER, 256, 256, false, 256, 256},
		{IMG_FIT_CONTAIN, 512, 0, false, 512, 341},
		{IMG_FIT_PAD, 800, 200, false, 800, 200},
		{IMG_FIT_CONTAIN, 1024, 0, false, 1024, 683},
		{IMG_FIT_CONTAIN, 0, 500, false, 750, 500},
		{IMG_FIT_CONTAIN, 1000, 1000, false, 1000, 667},
		{IMG_FIT_COVER, 300, 600, false, 300, 600},
		{IMG_FIT_CONTAIN, 0, 0, false, 3000, 2000},
	};
	size_t		n = sizeof(ex) / sizeof(ex[0]);

	if (!ramp_jpeg(3000, 2000, &src))
	{
		CHECK(false, "could not encode the 3000x2000 source");
		return;
	}
	st = render(&src, ex, n, white, res, &err);
	CHECK(st == IMG_OK, "render 3000x2000: %s (%s)", img_status_name(st), err.message);
	if (st == IMG_OK)
	{
		check_results("3000x2000", ex, res, n);

		/* the scaled variants keep the ramp: left edge dark red, right edge bright red */
		{
			img_raster	r;

			if (decode(&res[3].jpeg, &r, &err) == IMG_OK)
			{
				uint8_t		left = r.pixels[(r.height / 2) * r.stride];
				uint8_t		right = r.pixels[(r.height / 2) * r.stride + (r.width - 1) * 3];

				CHECK(left < 20 && right > 235, "512-wide variant spans the red ramp (%u..%u)", left, right);
				img_raster_free(&r);
			}
		}
		/* cover 300x600 of a landscape crops the middle third horizontally */
		{
			img_raster	r;

			if (decode(&res[8].jpeg, &r, &err) == IMG_OK)
			{
				uint8_t		left = r.pixels[(r.height / 2) * r.stride];
				uint8_t		right = r.pixels[(r.height / 2) * r.stride + (r.width - 1) * 3];

				/* crop is 1000 px wide centred: source x 1000..2000, red 85..170 */
				CHECK(left > 75 && left < 95 && right > 160 && right < 180,
					  "cover crop is centred (red %u..%u, expected ~85..~170)", left, right);
				img_raster_free(&r);
			}
		}
	}
	img_variant_results_free(res, n);
	for (size_t i = 0; i < n; i++)
		CHECK(res[i].jpeg.data == NULL && res[i].jpeg.len == 0, "results_free clears #%zu", i);
	img_buffer_free(&src);
}

TEST_SUITE(render_upscale)
{
	img_buffer	src;
	img_variant_result res[8];
	img_error	err = {0};
	img_status	st;
	static const uint8_t black[3] = {0, 0, 0};

	/*
	 * 300x200 source.  Without upscale nothing grows: contain keeps
	 * 300x200, cover cuts the box's aspect from the source at scale 1
	 * (400x400 -> 200x200), pad puts 300x200 on the 800x250 canvas.
	 */
	static const expect ex[] = {
		{IMG_FIT_CONTAIN, 600, 0, false, 300, 200},
		{IMG_FIT_CONTAIN, 600, 0, true, 600, 400},
		{IMG_FIT_COVER, 400, 400, false, 200, 200},
		{IMG_FIT_COVER, 400, 400, true, 400, 400},
		{IMG_FIT_PAD, 800, 250, false, 800, 250},
		{IMG_FIT_PAD, 800, 250, true, 800, 250},
		{IMG_FIT_CONTAIN, 0, 300, true, 450, 300},
		{IMG_FIT_CONTAIN, 150, 0, false, 150, 100},
	};
	size_t		n = sizeof(ex) / sizeof(ex[0]);

	if (!ramp_jpeg(300, 200, &src))
		return;
	st = render(&src, ex, n, black, res, &err);
	CHECK(st == IMG_OK, "render 300x200: %s (%s)", img_status_name(st), err.message);
	if (st == IMG_OK)
	{
		check_results("300x200", ex, res, n);
		/* pad without upscale: 300 wide image at x = 250, black either side */
		{
			img_raster	r;

			if (decode(&res[4].jpeg, &r, &err) == IMG_OK)
			{
				const uint8_t *mid = r.pixels + (r.height / 2) * r.stride;

				CHECK(mid[100 * 3] < 4 && mid[100 * 3 + 1] < 4 && mid[100 * 3 + 2] < 4,
					  "left pad is black: %u %u %u", mid[300], mid[301], mid[302]);
				CHECK(mid[700 * 3] < 4 && mid[700 * 3 + 1] < 4 && mid[700 * 3 + 2] < 4,
					  "right pad is black");
				CHECK(mid[400 * 3 + 1] > 90, "image in the middle (green %u)", mid[400 * 3 + 1]);
				img_raster_free(&r);
			}
		}
	}
	img_variant_results_free(res, n);
	img_buffer_free(&src);
}

TEST_SUITE(render_solid_and_pad)
{
	static const uint8_t colour[3] = {30, 140, 210};
	static const uint8_t bg[3] = {250, 200, 0};
	img_buffer	src;
	img_raster	srcdec;
	img_variant_result res[6];
	img_error	err = {0};
	img_status	st;
	static const expect ex[] = {
		{IMG_FIT_CONTAIN, 640, 0, false, 640, 427},
		{IMG_FIT_COVER, 256, 256, false, 256, 256},
		{IMG_FIT_PAD, 800, 200, false, 800, 200},
		{IMG_FIT_CONTAIN, 0, 90, false, 135, 90},
		{IMG_FIT_PAD, 300, 900, false, 300, 900},
		{IMG_FIT_CONTAIN, 64, 64, false, 64, 43},
	};
	size_t		n = sizeof(ex) / sizeof(ex[0]);

	if (!solid_jpeg(1200, 800, colour, &src))
		return;
	if (decode(&src, &srcdec, &err) != IMG_OK)
	{
		img_buffer_free(&src);
		return;
	}
	st = render(&src, ex, n, bg, res, &err);
	CHECK(st == IMG_OK, "render solid: %s", err.message);
	if (st == IMG_OK)
	{
		check_results("solid", ex, res, n);
		for (size_t i = 0; i < n; i++)
		{
			img_raster	r;
			img_placement pl;
			img_geometry g = {ex[i].bw, ex[i].bh, ex[i].fit, ex[i].upscale};
			int			maxd = 0;
			int			maxbg = 0;

			if (res[i].jpeg.data == NULL || decode(&res[i].jpeg, &r, &err) != IMG_OK)
				continue;
			img_geometry_place(1200, 800, &g, &pl);
			for (uint32_t y = 0; y < r.height; y++)
				for (uint32_t x = 0; x < r.width; x++)
				{
					const uint8_t *p = r.pixels + y * r.stride + x * 3;
					/* margins round the image edge: JPEG blocks and chroma subsampling blend it */
					bool		inside = x >= pl.dst_x + 8 && x + 8 < pl.dst_x + pl.dst_w &&
						y >= pl.dst_y + 8 && y + 8 < pl.dst_y + pl.dst_h;
					bool		outside = x + 16 < pl.dst_x || x >= pl.dst_x + pl.dst_w + 16 ||
						y + 16 < pl.dst_y || y >= pl.dst_y + pl.dst_h + 16;

					for (int c = 0; c < 3; c++)
					{
						if (inside && abs(p[c] - srcdec.pixels[c]) > maxd)
							maxd = abs(p[c] - srcdec.pixels[c]);
						if (outside && abs(p[c] - bg[c]) > maxbg)
							maxbg = abs(p[c] - bg[c]);
					}
				}
			CHECK(maxd <= 2, "solid variant #%zu stays within 2 levels of the source colour (max %d)",
				  i, maxd);
			CHECK(maxbg <= 2, "pad of variant #%zu is the background within 2 levels (max %d)", i, maxbg);
			if (ex[i].fit == IMG_FIT_PAD)
				CHECK(pl.dst_w < pl.out_width || pl.dst_h < pl.out_height, "pad #%zu has a border", i);
			img_raster_free(&r);
		}
	}
	img_variant_results_free(res, n);
	img_raster_free(&srcdec);
	img_buffer_free(&src);
}

TEST_SUITE(render_oriented_source)
{
	img_raster	r;
	img_raster	stored;
	img_buffer	j;
	img_error	err = {0};
	static const uint8_t white[3] = {255, 255, 255};
	static const expect ex[] = {
		{IMG_FIT_CONTAIN, 100, 0, false, 100, 150},
		{IMG_FIT_CONTAIN, 0, 0, false, 200, 300},
	};
	img_variant_result res[2];
	uint8_t    *spliced;
	/* APP1 Exif, big-endian TIFF, IFD0 with Orientation = 6 */
	static const uint8_t app1[] = {
		0xFF, 0xE1, 0x00, 0x22, 'E', 'x', 'i', 'f', 0, 0,
		'M', 'M', 0, 42, 0, 0, 0, 8,
		0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0,
		0, 0, 0, 0,
	};

	/* upright 200x300 portrait, top half red; stored rotated for tag 6 */
	if (img_raster_init(&r, 200, 300, 3, &err) != IMG_OK)
		return;
	for (uint32_t y = 0; y < 300; y++)
		for (uint32_t x = 0; x < 200; x++)
		{
			uint8_t    *p = r.pixels + y * r.stride + x * 3;

			p[0] = y < 150 ? 230 : 20;
			p[1] = 20;
			p[2] = y < 150 ? 20 : 230;
		}
	if (img_orient(&r, 8, &stored, &err) != IMG_OK || !encode_raster(&stored, 90, &j))
	{
		img_raster_free(&r);
		return;
	}
	spliced = malloc(j.len + sizeof(app1));
	memcpy(spliced, j.data, 2);
	memcpy(spliced + 2, app1, sizeof(app1));
	memcpy(spliced + 2 + sizeof(app1), j.data + 2, j.len - 2);
	{
		img_limits	lim;
		img_variant_spec specs[2] = {0};
		img_status	st;

		img_limits_default(&lim);
		for (int i = 0; i < 2; i++)
		{
			specs[i].geometry = (img_geometry) {ex[i].bw, ex[i].bh, ex[i].fit, ex[i].upscale};
			specs[i].quality = 90;
		}
		st = img_render_variants(spliced, j.len + sizeof(app1), &lim, specs, 2, white, res, &err);
		CHECK(st == IMG_OK, "render oriented: %s", err.message);
		if (st == IMG_OK)
		{
			img_raster	o;

			check_results("orientation 6", ex, res, 2);
			if (decode(&res[0].jpeg, &o, &err) == IMG_OK)
			{
				const uint8_t *top = o.pixels + 10 * o.stride + 50 * 3;
				const uint8_t *bottom = o.pixels + 140 * o.stride + 50 * 3;

				CHECK(top[0] > 200 && top[2] < 60, "variant is upright: top red (%u,%u,%u)",
					  top[0], top[1], top[2]);
				CHECK(bottom[2] > 200 && bottom[0] < 60, "variant is upright: bottom blue");
				img_raster_free(&o);
			}
		}
		img_variant_results_free(res, 2);
	}
	free(spliced);
	img_buffer_free(&j);
	img_raster_free(&stored);
	img_raster_free(&r);
}

TEST_SUITE(render_invalid_source)
{
	img_variant_result res[3];
	img_error	err = {0};
	img_status	st;
	img_buffer	good;
	static const uint8_t white[3] = {255, 255, 255};
	static const expect ex[] = {
		{IMG_FIT_CONTAIN, 64, 0, false, 64, 43},
		{IMG_FIT_COVER, 32, 32, false, 32, 32},
		{IMG_FIT_PAD, 100, 20, false, 100, 20},
	};
	static const uint8_t garbage[] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x0E};
	static const char svg[] = "<svg xmlns='http://www.w3.org/2000/svg'/>";

	/* not an image: the probe's status, results zeroed */
	memset(res, 0xA5, sizeof(res));
	st = img_render_variants(garbage, sizeof(garbage), &(img_limits) {0}, NULL, 0, white, res, &err);
	CHECK(st == IMG_OK, "zero specs is a no-op, got %s", img_status_name(st));
	{
		img_limits	lim;
		img_variant_spec specs[3] = {0};

		img_limits_default(&lim);
		for (int i = 0; i < 3; i++)
		{
			specs[i].geometry = (img_geometry) {ex[i].bw, ex[i].bh, ex[i].fit, ex[i].upscale};
			specs[i].quality = 80;
		}
		memset(res, 0xA5, sizeof(res));
		st = img_render_variants(garbage, sizeof(garbage), &lim, specs, 3, white, res, &err);
		CHECK(st == IMG_ERR_UNKNOWN_FORMAT, "binary garbage: %s", img_status_name(st));
		for (int i = 0; i < 3; i++)
			CHECK(res[i].jpeg.data == NULL && res[i].jpeg.len == 0 && res[i].width == 0 &&
				  res[i].height == 0 && res[i].status == IMG_OK, "garbage: result %d zeroed", i);

		st = img_render_variants((const uint8_t *) svg, sizeof(svg) - 1, &lim, specs, 3, white, res, &err);
		CHECK(st == IMG_ERR_UNSUPPORTED_FORMAT, "svg: %s", img_status_name(st));
		st = img_render_variants(NULL, 0, &lim, specs, 3, white, res, &err);
		CHECK(st == IMG_ERR_EMPTY, "empty: %s", img_status_name(st));

		/* a JPEG that probes fine but whose entropy data is cut short */
		if (ramp_jpeg(96, 64, &good))
		{
			uint8_t    *t = malloc(good.len);
			size_t		cut = good.len / 2;

			memcpy(t, good.data, cut);
			t[cut] = 0xFF;
			t[cut + 1] = 0xD9;
			memset(res, 0xA5, sizeof(res));
			st = img_render_variants(t, cut + 2, &lim, specs, 3, white, res, &err);
			CHECK(st == IMG_ERR_CORRUPT || st == IMG_ERR_TRUNCATED, "cut entropy data: %s",
				  img_status_name(st));
			for (int i = 0; i < 3; i++)
				CHECK(res[i].jpeg.data == NULL && res[i].jpeg.len == 0, "cut: result %d freed", i);

			/* a limit breach is the probe's error too */
			lim.max_pixels = 96 * 64 - 1;
			st = img_render_variants(good.data, good.len, &lim, specs, 3, white, res, &err);
			CHECK(st == IMG_ERR_TOO_MANY_PIXELS, "over max_pixels: %s", img_status_name(st));
			for (int i = 0; i < 3; i++)
				CHECK(res[i].jpeg.data == NULL, "limit: result %d empty", i);
			free(t);
			img_buffer_free(&good);
		}
	}
}

/* ------------------------------------------ output size planned before use */

static size_t largest_request;

static void *
recording_alloc(size_t size, void *ctx)
{
	(void) ctx;
	if (size > largest_request)
		largest_request = size;
	return malloc(size);
}

static void *
recording_realloc(void *ptr, size_t size, void *ctx)
{
	(void) ctx;
	if (size > largest_request)
		largest_request = size;
	return realloc(ptr, size);
}

static void
recording_free(void *ptr, void *ctx)
{
	(void) ctx;
	free(ptr);
}

/*
 * An upscaling preset with a free side on a 2x20000 source asks for a
 * 10000x100000000 canvas.  The renderer must refuse it from the plan,
 * naming the preset and the size, before allocating anything of that size
 * (the allocator hook records the largest request), and leave no result.
 */
TEST_SUITE(render_output_bounds)
{
	static const uint8_t white[3] = {255, 255, 255};
	const img_allocator recording = {recording_alloc, recording_realloc, recording_free, NULL};
	img_variant_result res[2];
	img_variant_spec specs[2] = {0};
	img_limits	lim;
	img_error	err = {0};
	img_buffer	thin;
	img_status	st;

	img_limits_default(&lim);
	CHECK(ramp_jpeg(2, 20000, &thin), "a 2x20000 JPEG can be made");
	if (thin.data == NULL)
		return;
	specs[0] = (img_variant_spec) {{256, 256, IMG_FIT_COVER, false}, 80, "thumb"};
	specs[1] = (img_variant_spec) {{10000, 0, IMG_FIT_CONTAIN, true}, 80, "wide"};

	largest_request = 0;
	img_set_allocator(&recording);
	st = img_render_variants(thin.data, thin.len, &lim, specs, 2, white, res, &err);
	img_set_allocator(NULL);
	CHECK(st == IMG_ERR_BAD_DIMENSIONS, "10000 wide, free height, upscaled: bad_dimensions, got %s (%s)",
		  img_status_name(st), err.message);
	CHECK(strstr(err.message, "preset \"wide\"") != NULL && strstr(err.message, "10000x100000000") != NULL &&
		  strstr(err.message, "imgmod.max_side") != NULL,
		  "the message names the preset, the size and the limit: %s", err.message);
	CHECK(largest_request < 1024 * 1024, "nothing sized by the refused canvas was allocated (largest request %zu bytes)",
		  largest_request);
	CHECK(res[1].status == IMG_ERR_BAD_DIMENSIONS, "the refused preset's result carries the status");
	for (int i = 0; i < 2; i++)
		CHECK(res[i].jpeg.data == NULL && res[i].jpeg.len == 0, "refused plan: result %d empty", i);

	/* a cover box within max_side whose area is over max_pixels */
	specs[1] = (img_variant_spec) {{20000, 20000, IMG_FIT_COVER, true}, 80, NULL};
	largest_request = 0;
	img_set_allocator(&recording);
	st = img_render_variants(thin.data, thin.len, &lim, specs, 2, white, res, &err);
	img_set_allocator(NULL);
	CHECK(st == IMG_ERR_TOO_MANY_PIXELS, "20000x20000 cover: too_many_pixels, got %s (%s)",
		  img_status_name(st), err.message);
	CHECK(strstr(err.message, "variant 2 would render 20000x20000 = 400.0 megapixels") != NULL &&
		  strstr(err.message, "imgmod.max_megapixels") != NULL,
		  "an unnamed variant is named by its position: %s", err.message);
	CHECK(largest_request < 1024 * 1024, "nothing sized by the refused canvas was allocated (largest request %zu bytes)",
		  largest_request);

	/* an upscale within the limits still renders */
	specs[1] = (img_variant_spec) {{4, 0, IMG_FIT_CONTAIN, true}, 80, "double"};
	lim.max_side = 40000;
	st = img_render_variants(thin.data, thin.len, &lim, specs, 2, white, res, &err);
	CHECK(st == IMG_OK && res[1].width == 4 && res[1].height == 40000,
		  "4 wide, upscaled, max_side 40000: 4x40000, got %s %ux%u (%s)", img_status_name(st),
		  res[1].width, res[1].height, err.message);
	if (st == IMG_OK)
		img_variant_results_free(res, 2);
	img_buffer_free(&thin);
}
