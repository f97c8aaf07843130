/*
 * test_orient.c — img_orient against an independent model of the eight
 * EXIF orientations.
 *
 * The model maps every source pixel forward to where a viewer shows it
 * (img_orient itself maps destination pixels back to the source), so the
 * two are written from opposite directions and a shared mistake is
 * unlikely.  Rasters wider and taller than a transpose tile exercise the
 * tiled path for 5..8.
 */
#include "test.h"
#include "imgcore.h"

#include <string.h>

/* Where source pixel (x, y) of a w x h raster lands for tag n. */
static void
forward(int n, uint32_t w, uint32_t h, uint32_t x, uint32_t y,
		uint32_t *ox, uint32_t *oy)
{
	switch (n)
	{
		case 2:					/* mirror left-right */
			*ox = w - 1 - x;
			*oy = y;
			break;
		case 3:					/* rotate 180 */
			*ox = w - 1 - x;
			*oy = h - 1 - y;
			break;
		case 4:					/* mirror top-bottom */
			*ox = x;
			*oy = h - 1 - y;
			break;
		case 5:					/* transpose */
			*ox = y;
			*oy = x;
			break;
		case 6:					/* 90 clockwise: the left column becomes the top row */
			*ox = h - 1 - y;
			*oy = x;
			break;
		case 7:					/* transverse */
			*ox = h - 1 - y;
			*oy = w - 1 - x;
			break;
		case 8:					/* 90 counter-clockwise: the top row becomes the left column */
			*ox = y;
			*oy = w - 1 - x;
			break;
		default:
			*ox = x;
			*oy = y;
			break;
	}
}

/* Every pixel distinct (as a whole), with a different value per channel. */
static bool
make_raster(img_raster *r, uint32_t w, uint32_t h, uint32_t ch)
{
	img_error	err;

	if (img_raster_init(r, w, h, ch, &err) != IMG_OK)
		return false;
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++)
		{
			uint32_t	i = y * w + x;
			uint8_t    *p = r->pixels + y * r->stride + x * ch;

			p[0] = (uint8_t) i;
			p[1] = (uint8_t) (i >> 8);
			p[2] = (uint8_t) (i * 7 + 3);
			if (ch == 4)
				p[3] = (uint8_t) (255 - i);
		}
	return true;
}

/* Count pixels of out that differ from the model applied to src. */
static uint32_t
mismatches(const img_raster *src, int n, const img_raster *out)
{
	uint32_t	bad = 0;
	uint32_t	ch = src->channels;

	for (uint32_t y = 0; y < src->height; y++)
		for (uint32_t x = 0; x < src->width; x++)
		{
			uint32_t	ox,
						oy;

			forward(n, src->width, src->height, x, y, &ox, &oy);
			if (ox >= out->width || oy >= out->height ||
				memcmp(src->pixels + y * src->stride + x * ch,
					   out->pixels + oy * out->stride + ox * ch, ch) != 0)
				bad++;
		}
	return bad;
}

static bool
same_raster(const img_raster *a, const img_raster *b)
{
	if (a->width != b->width || a->height != b->height || a->channels != b->channels)
		return false;
	for (uint32_t y = 0; y < a->height; y++)
		if (memcmp(a->pixels + y * a->stride, b->pixels + y * b->stride,
				   (size_t) a->width * a->channels) != 0)
			return false;
	return true;
}

static void
check_all_tags(uint32_t w, uint32_t h, uint32_t ch)
{
	img_raster	src;
	img_error	err;

	CHECK(make_raster(&src, w, h, ch), "raster %ux%ux%u allocates", w, h, ch);
	if (src.pixels == NULL)
		return;
	for (int n = 1; n <= 8; n++)
	{
		img_raster	out;
		img_status	st = img_orient(&src, n, &out, &err);
		uint32_t	ew = n >= 5 ? h : w;
		uint32_t	eh = n >= 5 ? w : h;

		CHECK(st == IMG_OK, "orient %d of %ux%ux%u succeeds", n, w, h, ch);
		if (st != IMG_OK)
			continue;
		CHECK(out.width == ew && out.height == eh && out.channels == ch,
			  "orient %d of %ux%u gives %ux%u, got %ux%ux%u", n, w, h, ew, eh,
			  out.width, out.height, out.channels);
		if (out.width == ew && out.height == eh)
		{
			uint32_t	bad = mismatches(&src, n, &out);

			CHECK(bad == 0, "orient %d of %ux%ux%u: %u pixels misplaced", n, w, h, ch, bad);
		}
		img_raster_free(&out);
	}
	img_raster_free(&src);
}

TEST_SUITE(orient_mapping)
{
	/* small asymmetric rasters, both channel counts */
	check_all_tags(5, 3, 3);
	check_all_tags(5, 3, 4);
	check_all_tags(3, 5, 3);
	/* degenerate shapes */
	check_all_tags(1, 1, 3);
	check_all_tags(1, 7, 3);
	check_all_tags(7, 1, 4);
	/* larger than one transpose tile in both directions, ragged edges */
	check_all_tags(131, 70, 3);
	check_all_tags(70, 131, 4);
	check_all_tags(129, 129, 3);
}

TEST_SUITE(orient_corners)
{
	/*
	 * The marked corpus images in miniature: red top-left, blue top-right
	 * after orientation, from each orientation's stored form.
	 */
	static const uint32_t red = 0xff0000,
				blue = 0x0000ff;
	img_raster	up;
	img_error	err;

	if (img_raster_init(&up, 6, 4, 3, &err) != IMG_OK)
	{
		CHECK(false, "raster allocates");
		return;
	}
	memset(up.pixels, 128, up.stride * up.height);
	up.pixels[0] = 255;			/* (0, 0) red */
	up.pixels[5 * 3 + 2] = 255; /* (5, 0) blue */

	for (int n = 1; n <= 8; n++)
	{
		/* the stored form is the inverse transform of the upright picture */
		static const int inverse[9] = {0, 1, 2, 3, 4, 5, 8, 7, 6};
		img_raster	stored,
					back;

		CHECK(img_orient(&up, inverse[n], &stored, &err) == IMG_OK, "inverse of %d", n);
		CHECK(img_orient(&stored, n, &back, &err) == IMG_OK, "orient %d", n);
		if (back.pixels != NULL)
		{
			const uint8_t *tl = back.pixels;
			const uint8_t *tr = back.pixels + (back.width - 1) * 3;
			uint32_t	ctl = (uint32_t) tl[0] << 16 | tl[1] << 8 | tl[2];
			uint32_t	ctr = (uint32_t) tr[0] << 16 | tr[1] << 8 | tr[2];

			CHECK(back.width == 6 && back.height == 4, "orient %d restores 6x4, got %ux%u",
				  n, back.width, back.height);
			CHECK(ctl == (red | 0x8080) && ctr == (blue | 0x808000),
				  "orient %d: top-left %06x top-right %06x", n, ctl, ctr);
			CHECK(same_raster(&up, &back), "orient %d undoes its stored form exactly", n);
		}
		if (n >= 5)
			CHECK(stored.width == 4 && stored.height == 6,
				  "stored form of %d is portrait, got %ux%u", n, stored.width, stored.height);
		img_raster_free(&stored);
		img_raster_free(&back);
	}
	img_raster_free(&up);
}

TEST_SUITE(orient_edge_cases)
{
	img_raster	src,
				out;
	img_error	err;
	int			odd[] = {0, -1, 9, 255};

	CHECK(make_raster(&src, 4, 2, 3), "raster allocates");
	/* values outside 1..8 mean "as stored" */
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++)
	{
		CHECK(img_orient(&src, odd[i], &out, &err) == IMG_OK, "orientation %d accepted", odd[i]);
		CHECK(out.pixels != NULL && same_raster(&src, &out), "orientation %d is a copy", odd[i]);
		CHECK(out.pixels != src.pixels, "orientation %d returns a new buffer", odd[i]);
		img_raster_free(&out);
	}

	/* a bad source fails cleanly and leaves dst empty */
	memset(&err, 0, sizeof(err));
	CHECK(img_orient(NULL, 6, &out, &err) == IMG_ERR_INTERNAL, "NULL source refused");
	CHECK(out.pixels == NULL && out.width == 0, "dst cleared on failure");
	CHECK(err.status == IMG_ERR_INTERNAL && err.message[0] != '\0', "error recorded: %s", err.message);
	{
		img_raster	bad = src;

		bad.channels = 5;
		CHECK(img_orient(&bad, 6, &out, &err) != IMG_OK, "5 channels refused");
		CHECK(out.pixels == NULL, "dst cleared on failure");
	}
	img_raster_free(&src);
}
