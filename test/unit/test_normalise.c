/*
 * test_normalise.c — the upload path: img_normalise must produce an upright,
 * metadata-free, sRGB JPEG master.
 *
 * An asymmetric picture (red block top-left, blue block top-right) is
 * stored the way a camera stores it for each EXIF orientation 1..8 (the
 * inverse of the tag's transform applied to the pixels), tagged, wrapped in
 * every kind of metadata carrying a canary string, followed by a ZIP
 * polyglot tail, and normalised.  The master must decode upright at the
 * right size through either route (lossless coefficient transform when the
 * size is a whole number of MCUs, re-encode otherwise), and its bytes must
 * hold no APP1/APP2/APP13/COM segment, no canary and nothing after EOI.
 * Wide-gamut input must be colour-converted, not passed through.
 */
#include "test.h"
#include "imgcore.h"
#include "jpeg_builder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lcms2.h>

/* ------------------------------------------------------------ helpers */

static const char zip_tail[] =
"PK\x03\x04\x14\x00\x00\x00\x00\x00payload.html<script>alert(1)</script>IMGMOD-CANARY-ZIP";

#define RED_R 220
#define BLUE_B 220
#define BLOCK 48

static void
marked_pixel(uint8_t *p, uint32_t x, uint32_t y, uint32_t w, uint32_t h, const void *arg)
{
	(void) h;
	(void) arg;
	p[0] = p[1] = p[2] = 128;
	if (y < BLOCK && x < BLOCK)
	{
		p[0] = RED_R;
		p[1] = 20;
		p[2] = 20;
	}
	else if (y < BLOCK && x >= w - BLOCK)
	{
		p[0] = 20;
		p[1] = 20;
		p[2] = BLUE_B;
	}
}

/* Grey picture, red block top-left, blue block top-right. */
static bool
make_marked(img_raster *r, uint32_t w, uint32_t h)
{
	return jb_make_raster(r, w, h, marked_pixel, NULL);
}

static int
inverse_orientation(int n)
{
	return n == 6 ? 8 : n == 8 ? 6 : n;
}

/* Everything a master must satisfy, whatever it came from. */
static void
check_master_bytes(const char *what, const img_buffer *m)
{
	int			counts[256];
	bool		sound = jb_walk_markers(m->data, m->len, counts);

	CHECK(sound, "%s: master is a well-formed JPEG that ends with its EOI", what);
	CHECK(m->len >= 4 && m->data[m->len - 2] == 0xFF && m->data[m->len - 1] == 0xD9,
		  "%s: master ends with FFD9", what);
	CHECK(counts[0xE1] == 0 && counts[0xE2] == 0 && counts[0xED] == 0 && counts[0xFE] == 0,
		  "%s: no APP1 (%d), APP2 (%d), APP13 (%d) or COM (%d) segment", what,
		  counts[0xE1], counts[0xE2], counts[0xED], counts[0xFE]);
	CHECK(counts[0xD9] == 1 && counts[0xD8] == 1, "%s: one SOI and one EOI", what);
	CHECK(!jb_memfind(m->data, m->len, "IMGMOD-CANARY", 13), "%s: no IMGMOD-CANARY byte string", what);
	CHECK(!jb_memfind(m->data, m->len, "PK\x03\x04", 4), "%s: no PK\\x03\\x04", what);
	CHECK(!jb_memfind(m->data, m->len, "alert(", 6), "%s: no alert(", what);
	CHECK(!jb_memfind(m->data, m->len, "Exif\0\0", 6) && !jb_memfind(m->data, m->len, "ICC_PROFILE", 11) &&
		  !jb_memfind(m->data, m->len, "Photoshop 3.0", 13) &&
		  !jb_memfind(m->data, m->len, "http://ns.adobe.com/xap", 23),
		  "%s: no metadata signature anywhere", what);
}

static bool
is_red(const double m[3])
{
	return m[0] > 180 && m[1] < 70 && m[2] < 70;
}

static bool
is_blue(const double m[3])
{
	return m[2] > 180 && m[0] < 70 && m[1] < 70;
}

static bool
is_grey(const double m[3])
{
	return m[0] > 110 && m[0] < 146 && m[1] > 110 && m[1] < 146 && m[2] > 110 && m[2] < 146;
}

/* Decode a master and check it is upright: red top-left, blue top-right, grey below. */
static void
check_upright(const char *what, const img_buffer *master, uint32_t w, uint32_t h)
{
	img_raster	r;
	img_info	info;
	img_error	err = {0};
	double		tl[3],
				tr[3],
				bl[3],
				br[3];

	if (jb_load(master->data, master->len, 0, 0, &r, &info, &err) != IMG_OK)
	{
		CHECK(false, "%s: master decodes: %s", what, err.message);
		return;
	}
	CHECK(r.width == w && r.height == h, "%s: master is %ux%u, expected %ux%u", what,
		  r.width, r.height, w, h);
	CHECK(info.orientation == 1 && !info.has_exif && !info.has_xmp && !info.has_icc &&
		  !info.has_iptc && !info.has_comment && !info.has_trailing_data,
		  "%s: master's own probe finds no metadata and orientation 1", what);
	if (r.width == w && r.height == h)
	{
		/* inside the blocks, away from their edges (chroma bleeds by a few px) */
		jb_mean_rgb(&r, 8, 8, BLOCK - 16, BLOCK - 16, tl);
		jb_mean_rgb(&r, w - BLOCK + 8, 8, BLOCK - 16, BLOCK - 16, tr);
		jb_mean_rgb(&r, 8, h - BLOCK + 8, BLOCK - 16, BLOCK - 16, bl);
		jb_mean_rgb(&r, w - BLOCK + 8, h - BLOCK + 8, BLOCK - 16, BLOCK - 16, br);
		CHECK(is_red(tl), "%s: top-left is red, got (%.0f,%.0f,%.0f)", what, tl[0], tl[1], tl[2]);
		CHECK(is_blue(tr), "%s: top-right is blue, got (%.0f,%.0f,%.0f)", what, tr[0], tr[1], tr[2]);
		CHECK(is_grey(bl), "%s: bottom-left is grey, got (%.0f,%.0f,%.0f)", what, bl[0], bl[1], bl[2]);
		CHECK(is_grey(br), "%s: bottom-right is grey, got (%.0f,%.0f,%.0f)", what, br[0], br[1], br[2]);
	}
	img_raster_free(&r);
}

/*
 * Build the camera-style file for tag n: the upright picture transformed
 * by the inverse of n, encoded at q85 (4:2:0, 16x16 MCUs), then EXIF with
 * the tag (and GPS and a canary), XMP, an sRGB ICC profile, Photoshop IPTC
 * and a COM segment spliced in, and a ZIP appended after EOI.
 */
static bool
camera_file(uint32_t w, uint32_t h, int n, jb_buf *out)
{
	img_raster	upright;
	img_raster	stored;
	img_error	err;
	jb_buf		j;
	jb_buf		seg = {0};
	bool		ok = false;

	if (!make_marked(&upright, w, h))
		return false;
	if (img_orient(&upright, inverse_orientation(n), &stored, &err) == IMG_OK)
	{
		if (jb_encode(&stored, 85, &j))
		{
			jb_add_camera_metadata(&seg, n % 2 == 1, n);
			*out = jb_splice(&j, &seg, zip_tail, sizeof(zip_tail) - 1);
			ok = out->data != NULL;
			jb_free(&seg);
			jb_free(&j);
		}
		img_raster_free(&stored);
	}
	img_raster_free(&upright);
	return ok;
}

/* ------------------------------------------------------------- suites */

TEST_SUITE(normalise_orientations)
{
	static const struct
	{
		uint32_t	w,
					h;
	}			sizes[] = {
		{320, 192},				/* whole 16x16 MCUs */
		{330, 200},				/* partial MCUs on the right and bottom */
	};

	for (size_t s = 0; s < 2; s++)
		for (int n = 1; n <= 8; n++)
		{
			uint32_t	w = sizes[s].w;
			uint32_t	h = sizes[s].h;
			bool		whole = w % 16 == 0 && h % 16 == 0;
			jb_buf		f;
			img_normalised out;
			img_error	err = {0};
			img_status	st;
			char		what[64];
			img_master_method want;

			snprintf(what, sizeof(what), "%ux%u orientation %d", w, h, n);
			if (!camera_file(w, h, n, &f))
			{
				CHECK(false, "%s: could not build the input", what);
				continue;
			}
			st = jb_normalise(f.data, f.len, &out, &err);
			CHECK(st == IMG_OK, "%s: normalise %s (%s)", what, img_status_name(st), err.message);
			if (st == IMG_OK)
			{
				CHECK(out.info.orientation == n, "%s: probe read orientation %u", what, out.info.orientation);
				CHECK(out.info.has_exif && out.info.has_gps && out.info.has_xmp && out.info.has_icc &&
					  out.info.has_iptc && out.info.has_comment && out.info.has_trailing_data,
					  "%s: the source's metadata was seen", what);
				CHECK(out.width == w && out.height == h, "%s: upright size %ux%u, got %ux%u",
					  what, w, h, out.width, out.height);

				/*
				 * Lossless unless the transform would have to move partial
				 * edge MCUs: 1 needs nothing and 5 (transpose) keeps the
				 * top-left corner fixed, so both stay lossless at any size.
				 */
				want = (whole || n == 1 || n == 5) ? IMG_MASTER_LOSSLESS : IMG_MASTER_REENCODED;
				CHECK(out.method == want, "%s: method %s, expected %s", what,
					  img_master_method_name(out.method), img_master_method_name(want));
				check_master_bytes(what, &out.master);
				check_upright(what, &out.master, w, h);
			}
			img_normalised_free(&out);
			jb_free(&f);
		}
}

TEST_SUITE(normalise_polyglot_and_plain)
{
	img_raster	r;
	jb_buf		j;
	jb_buf		p;
	img_normalised out;
	img_error	err = {0};
	img_status	st;

	if (!make_marked(&r, 160, 96))
		return;
	if (!jb_encode(&r, 80, &j))
	{
		img_raster_free(&r);
		return;
	}

	/* no metadata at all: lossless, same size, bytes re-written */
	st = jb_normalise(j.data, j.len, &out, &err);
	CHECK(st == IMG_OK && out.method == IMG_MASTER_LOSSLESS, "plain jpeg: %s, method %s",
		  img_status_name(st), st == IMG_OK ? img_master_method_name(out.method) : "-");
	if (st == IMG_OK)
	{
		check_master_bytes("plain", &out.master);
		check_upright("plain", &out.master, 160, 96);
	}
	img_normalised_free(&out);

	/* ZIP appended after EOI: accepted, the tail is gone */
	p = jb_splice(&j, NULL, zip_tail, sizeof(zip_tail) - 1);
	st = jb_normalise(p.data, p.len, &out, &err);
	CHECK(st == IMG_OK, "jpeg+zip polyglot is accepted: %s", err.message);
	if (st == IMG_OK)
	{
		CHECK(out.info.has_trailing_data, "probe saw the trailing data");
		check_master_bytes("polyglot", &out.master);
	}
	img_normalised_free(&out);
	jb_free(&p);

	/* a second JPEG after EOI (a hidden image) is dropped too */
	{
		jb_buf		twice = jb_splice(&j, NULL, j.data, j.len);
		int			counts[256];

		st = jb_normalise(twice.data, twice.len, &out, &err);
		CHECK(st == IMG_OK, "jpeg followed by a jpeg: %s", err.message);
		if (st == IMG_OK)
		{
			CHECK(jb_walk_markers(out.master.data, out.master.len, counts) && counts[0xD8] == 1,
				  "master holds exactly one image");
			check_upright("double", &out.master, 160, 96);
		}
		img_normalised_free(&out);
		jb_free(&twice);
	}

	/* the master itself normalises to itself's size, idempotently lossless */
	st = jb_normalise(j.data, j.len, &out, &err);
	if (st == IMG_OK)
	{
		img_normalised again;

		st = jb_normalise(out.master.data, out.master.len, &again, &err);
		CHECK(st == IMG_OK && again.method == IMG_MASTER_LOSSLESS && again.width == 160 &&
			  again.height == 96, "a master normalises again losslessly");
		img_normalised_free(&again);
	}
	img_normalised_free(&out);

	jb_free(&j);
	img_raster_free(&r);
}

/* Copy of a JPEG without its APP2 segments: the same pixels, no profile. */
static jb_buf
strip_app2(const uint8_t *d, size_t len)
{
	jb_buf		out = {malloc(len), 0};
	size_t		pos = 2;

	if (out.data == NULL)
		return out;
	memcpy(out.data, d, 2);
	out.len = 2;
	while (pos + 4 <= len && d[pos] == 0xFF && d[pos + 1] != 0xDA)
	{
		size_t		l = 2 + (((size_t) d[pos + 2] << 8) | d[pos + 3]);

		if (pos + l > len)
			break;
		if (d[pos + 1] != 0xE2)
		{
			memcpy(out.data + out.len, d + pos, l);
			out.len += l;
		}
		pos += l;
	}
	memcpy(out.data + out.len, d + pos, len - pos);
	out.len += len - pos;
	return out;
}

/* Mean distance of each pixel from its own grey: a saturation measure. */
static double
chroma(const img_raster *r)
{
	double		s = 0;

	for (uint32_t y = 0; y < r->height; y++)
		for (uint32_t x = 0; x < r->width; x++)
		{
			const uint8_t *p = r->pixels + y * r->stride + x * 3;
			int			mx = p[0] > p[1] ? (p[0] > p[2] ? p[0] : p[2]) : (p[1] > p[2] ? p[1] : p[2]);
			int			mn = p[0] < p[1] ? (p[0] < p[2] ? p[0] : p[2]) : (p[1] < p[2] ? p[1] : p[2]);

			s += mx - mn;
		}
	return s / ((double) r->width * r->height);
}

TEST_SUITE(normalise_icc_adobergb)
{
	size_t		len;
	uint8_t    *d = read_fixture("exif/icc_adobergb.jpg", &len);
	img_normalised out;
	img_error	err = {0};
	img_status	st;

	CHECK(d != NULL, "fixture exif/icc_adobergb.jpg readable");
	if (d == NULL)
		return;
	st = jb_normalise(d, len, &out, &err);
	CHECK(st == IMG_OK, "adobergb normalises: %s", err.message);
	if (st == IMG_OK)
	{
		jb_buf		naive_src = strip_app2(d, len);
		img_raster	master;
		img_raster	naive;
		img_info	info;

		CHECK(out.info.has_icc, "the source's profile was seen");
		CHECK(strstr(out.info.icc_description, "Adobe RGB") != NULL, "profile named Adobe RGB: \"%s\"",
			  out.info.icc_description);
		CHECK(out.method == IMG_MASTER_REENCODED, "wide gamut is re-encoded, got %s",
			  img_master_method_name(out.method));
		CHECK(out.width == 1200 && out.height == 672, "1200x672, got %ux%u", out.width, out.height);
		check_master_bytes("adobergb", &out.master);
		if (jb_load(out.master.data, out.master.len, 0, 0, &master, &info, &err) == IMG_OK)
		{
			if (jb_load(naive_src.data, naive_src.len, 0, 0, &naive, &info, &err) == IMG_OK)
			{
				double		diff = jb_mean_abs_diff(&master, &naive);
				double		cm = chroma(&master);
				double		cn = chroma(&naive);

				CHECK(!info.has_icc, "the stripped copy has no profile");
				/* Adobe RGB numbers shown as sRGB look washed out: the master must not */
				CHECK(diff > 3.0, "master differs from the naive decode: mean |diff| %.2f > 3", diff);
				CHECK(cm > cn * 1.1, "master is more saturated than the naive decode (%.2f vs %.2f)", cm, cn);
				img_raster_free(&naive);
			}
			else
				CHECK(false, "naive copy loads: %s", err.message);
			img_raster_free(&master);
		}
		else
			CHECK(false, "adobergb master loads: %s", err.message);
		jb_free(&naive_src);
	}
	img_normalised_free(&out);
	free(d);
}

/* A non-sRGB profile built with lcms2 whose description carries a canary. */
static size_t
build_wide_icc_app2(uint8_t *buf, size_t cap)
{
	cmsCIExyY	wp = {0.3127, 0.3290, 1.0};
	cmsCIExyYTRIPLE prim = {{0.7347, 0.2653, 1.0}, {0.1596, 0.8404, 1.0}, {0.0366, 0.0001, 1.0}};
	cmsToneCurve *g = cmsBuildGamma(NULL, 2.2);
	cmsToneCurve *curves[3] = {g, g, g};
	cmsHPROFILE p;
	cmsMLU	   *mlu;
	cmsUInt32Number n = 0;
	size_t		total = 0;

	if (g == NULL)
		return 0;
	p = cmsCreateRGBProfile(&wp, &prim, curves);
	cmsFreeToneCurve(g);
	if (p == NULL)
		return 0;
	mlu = cmsMLUalloc(NULL, 1);
	if (mlu)
	{
		cmsMLUsetASCII(mlu, "en", "US", "Wide test IMGMOD-CANARY-ICC");
		cmsWriteTag(p, cmsSigProfileDescriptionTag, mlu);
		cmsMLUfree(mlu);
	}
	if (cmsSaveProfileToMem(p, NULL, &n) && n + 14 <= cap && cmsSaveProfileToMem(p, buf + 14, &n))
	{
		memcpy(buf, "ICC_PROFILE\0\1\1", 14);
		total = 14 + n;
	}
	cmsCloseProfile(p);
	return total;
}

TEST_SUITE(normalise_metadata_fixtures)
{
	size_t		len;
	uint8_t    *d = read_fixture("exif/rich_metadata_littleendian.jpg", &len);
	img_normalised out;
	img_error	err = {0};
	img_status	st;

	CHECK(d != NULL, "fixture exif/rich_metadata_littleendian.jpg readable");
	if (d)
	{
		CHECK(jb_memfind(d, len, "IMGMOD-CANARY", 13), "the fixture does carry canaries");
		st = jb_normalise(d, len, &out, &err);
		CHECK(st == IMG_OK, "rich metadata normalises: %s", err.message);
		if (st == IMG_OK)
		{
			CHECK(out.info.has_exif && out.info.has_gps && out.info.has_xmp && out.info.has_icc &&
				  out.info.has_iptc && out.info.has_comment, "all its metadata was seen");
			CHECK(out.width == 1200 && out.height == 672, "1200x672, got %ux%u", out.width, out.height);
			/* its profile is sRGB, so the coefficients can be kept */
			CHECK(out.method == IMG_MASTER_LOSSLESS, "sRGB-tagged jpeg stays lossless, got %s",
				  img_master_method_name(out.method));
			check_master_bytes("rich_metadata_littleendian", &out.master);
		}
		img_normalised_free(&out);
		free(d);
	}

	/* a generated picture tagged with a wide-gamut profile: converted, profile gone */
	{
		img_raster	r;
		jb_buf		j;
		jb_buf		seg = {0};
		jb_buf		s;
		uint8_t		buf[4096];
		size_t		n = build_wide_icc_app2(buf, sizeof(buf));

		CHECK(n > 0, "lcms2 built a wide-gamut profile");
		if (n > 0 && make_marked(&r, 128, 112))
		{
			if (jb_encode(&r, 90, &j))
			{
				jb_add_segment(&seg, 0xE2, buf, n);
				s = jb_splice(&j, &seg, NULL, 0);
				st = jb_normalise(s.data, s.len, &out, &err);
				CHECK(st == IMG_OK, "wide-gamut jpeg normalises: %s", err.message);
				if (st == IMG_OK)
				{
					CHECK(strstr(out.info.icc_description, "Wide test") != NULL,
						  "profile description read: \"%s\"", out.info.icc_description);
					CHECK(out.method == IMG_MASTER_REENCODED, "wide-gamut is re-encoded, got %s",
						  img_master_method_name(out.method));
					check_master_bytes("wide gamut", &out.master);
					check_upright("wide gamut", &out.master, 128, 112);
				}
				img_normalised_free(&out);
				jb_free(&s);
				jb_free(&seg);
				jb_free(&j);
			}
			img_raster_free(&r);
		}
	}
}
