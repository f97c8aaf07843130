/*
 * test_jpeg.c — the JPEG codec: header probe, decode, shrink-on-load,
 * metadata detection, limits and damaged input.
 *
 * Every JPEG here is generated in the test with img_encode_jpeg from a
 * synthetic raster, so the expected dimensions and pixels are known exactly,
 * and metadata segments are spliced in byte by byte (EXIF in both byte
 * orders, XMP, ICC, Photoshop/IPTC, COM, data after EOI) so each detection
 * flag is checked on its own.  The JPEG probe walks markers by hand and the
 * decoder turns every libjpeg warning into an error; the truncation and
 * bit-flip suites check that no damaged input is ever reported as a good
 * image and that none crashes.  The few fixtures used (progressive, CMYK,
 * grey, arithmetic) are the same 1200x672 picture, which lets the colour
 * conversions be compared with each other.
 */
#include "test.h"
#include "imgcore.h"
#include "jpeg_builder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

/* ------------------------------------------------------------ helpers */

static img_status
probe(const jb_buf *b, img_info *info, img_error *err)
{
	img_limits	lim;

	img_limits_default(&lim);
	return img_probe(b->data, b->len, &lim, info, err);
}

/* Offset of the first byte of entropy-coded data (after the first SOS header). */
static size_t
entropy_start(const jb_buf *b)
{
	size_t		pos = 2;

	while (pos + 4 <= b->len && b->data[pos] == 0xFF)
	{
		uint8_t		m = b->data[pos + 1];
		size_t		l = ((size_t) b->data[pos + 2] << 8) | b->data[pos + 3];

		if (m == 0xDA)
			return pos + 2 + l;
		pos += 2 + l;
	}
	return 0;
}

/* A progressive JPEG written with libjpeg directly (the core writes baseline only). */
static bool
progressive_jpeg(const img_raster *r, bool grey, jb_buf *out)
{
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr jerr;
	unsigned char *mem = NULL;
	unsigned long memlen = 0;
	uint8_t    *row = malloc((size_t) r->width * 3);

	if (row == NULL)
		return false;
	c.err = jpeg_std_error(&jerr);
	jpeg_create_compress(&c);
	jpeg_mem_dest(&c, &mem, &memlen);
	c.image_width = r->width;
	c.image_height = r->height;
	c.input_components = grey ? 1 : 3;
	c.in_color_space = grey ? JCS_GRAYSCALE : JCS_RGB;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, 85, TRUE);
	jpeg_simple_progression(&c);
	jpeg_start_compress(&c, TRUE);
	while (c.next_scanline < c.image_height)
	{
		const uint8_t *src = r->pixels + (size_t) c.next_scanline * r->stride;
		JSAMPROW	rp = row;

		if (grey)
			for (uint32_t x = 0; x < r->width; x++)
				row[x] = (uint8_t) ((src[3 * x] * 77 + src[3 * x + 1] * 150 + src[3 * x + 2] * 29) >> 8);
		else
			rp = (JSAMPROW) src;
		jpeg_write_scanlines(&c, &rp, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	free(row);
	return jb_take(out, mem, memlen);
}

/* ------------------------------------------------------------- suites */

TEST_SUITE(jpeg_probe_generated)
{
	static const struct
	{
		uint32_t	w,
					h;
		int			q;
	}			cases[] = {
		{64, 48, 85}, {333, 217, 95}, {1, 1, 50}, {17, 1000, 75}, {1000, 3, 100},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		jb_buf		j;
		img_info	info;
		img_error	err = {0};
		img_status	st;

		if (!jb_gradient_jpeg(cases[i].w, cases[i].h, cases[i].q, &j))
		{
			CHECK(false, "could not encode %ux%u", cases[i].w, cases[i].h);
			continue;
		}
		CHECK(j.len > 4 && j.data[0] == 0xFF && j.data[1] == 0xD8 &&
			  j.data[j.len - 2] == 0xFF && j.data[j.len - 1] == 0xD9,
			  "encoder output starts with SOI and ends with EOI");
		CHECK(j.data[2] == 0xFF && j.data[3] != 0xE0, "no JFIF APP0 is written (got marker %02X)", j.data[3]);
		st = probe(&j, &info, &err);
		CHECK(st == IMG_OK, "probe of generated %ux%u: %s (%s)", cases[i].w, cases[i].h,
			  img_status_name(st), err.message);
		CHECK(info.format == IMG_FORMAT_JPEG, "format jpeg, got %s", img_format_name(info.format));
		CHECK(info.width == cases[i].w && info.height == cases[i].h, "size %ux%u, got %ux%u",
			  cases[i].w, cases[i].h, info.width, info.height);
		CHECK(info.frames == 1, "frames 1, got %u", info.frames);
		CHECK(info.bit_depth == 8, "bit depth 8, got %u", info.bit_depth);
		CHECK(!info.progressive, "baseline is not progressive");
		CHECK(info.scans == 1, "one scan, got %u", info.scans);
		CHECK(info.colour == IMG_COLOUR_YCBCR, "colour ycbcr, got %s", img_colour_model_name(info.colour));
		CHECK(info.orientation == 1, "orientation 1, got %u", info.orientation);
		CHECK(!info.has_alpha, "no alpha");
		CHECK(!info.has_exif && !info.has_gps && !info.has_xmp && !info.has_icc &&
			  !info.has_iptc && !info.has_comment && !info.has_trailing_data,
			  "the core encoder writes no metadata (exif %d gps %d xmp %d icc %d iptc %d com %d trail %d)",
			  info.has_exif, info.has_gps, info.has_xmp, info.has_icc, info.has_iptc,
			  info.has_comment, info.has_trailing_data);
		CHECK(info.icc_bytes == 0 && info.icc_description[0] == '\0', "no ICC bytes");
		jb_free(&j);
	}
}

TEST_SUITE(jpeg_load_pixels)
{
	static const uint8_t colours[][3] = {
		{0, 0, 0}, {255, 255, 255}, {200, 100, 50}, {12, 200, 240}, {128, 128, 128}, {255, 0, 0},
	};
	static const int qualities[] = {75, 92};

	for (size_t c = 0; c < sizeof(colours) / sizeof(colours[0]); c++)
		for (size_t qi = 0; qi < 2; qi++)
		{
			img_raster	src;
			img_raster	out;
			img_error	err = {0};
			jb_buf		j;
			int			maxdiff = 0;
			img_status	st;

			if (!jb_make_solid(&src, 40, 30, colours[c][0], colours[c][1], colours[c][2]))
				continue;
			if (!jb_encode(&src, qualities[qi], &j))
			{
				CHECK(false, "encode failed");
				img_raster_free(&src);
				continue;
			}
			st = jb_load(j.data, j.len, 0, 0, &out, NULL, &err);
			CHECK(st == IMG_OK, "load solid: %s", err.message);
			if (st == IMG_OK)
			{
				CHECK(out.width == 40 && out.height == 30 && out.channels == 3,
					  "40x30x3, got %ux%ux%u", out.width, out.height, out.channels);
				for (uint32_t y = 0; y < out.height; y++)
					for (uint32_t x = 0; x < out.width; x++)
						for (int k = 0; k < 3; k++)
						{
							int			d = abs(out.pixels[y * out.stride + x * 3 + k] - colours[c][k]);

							if (d > maxdiff)
								maxdiff = d;
						}
				CHECK(maxdiff <= 3, "solid (%u,%u,%u) q%d round-trips within 3 levels, max diff %d",
					  colours[c][0], colours[c][1], colours[c][2], qualities[qi], maxdiff);
				img_raster_free(&out);
			}
			jb_free(&j);
			img_raster_free(&src);
		}

	/* a gradient comes back close everywhere */
	{
		img_raster	src;
		img_raster	out;
		img_error	err = {0};
		jb_buf		j;

		if (jb_make_gradient(&src, 256, 96) && jb_encode(&src, 95, &j))
		{
			if (jb_load(j.data, j.len, 0, 0, &out, NULL, &err) == IMG_OK)
			{
				double		sum = 0;
				int			maxd = 0;

				for (size_t i = 0; i < (size_t) out.height * out.stride; i++)
				{
					int			d = abs(out.pixels[i] - src.pixels[i]);

					sum += d;
					if (d > maxd)
						maxd = d;
				}
				sum /= (double) out.height * out.stride;
				CHECK(sum < 1.5, "gradient q95 mean abs error %.3f < 1.5", sum);
				CHECK(maxd <= 8, "gradient q95 max error %d <= 8", maxd);
				/* corners: red ramp 0..255 left to right, green 0..255 top to bottom */
				CHECK(out.pixels[0] < 6 && out.pixels[1] < 6, "top-left is (0,0,128)-ish: %u %u %u",
					  out.pixels[0], out.pixels[1], out.pixels[2]);
				CHECK(out.pixels[255 * 3] > 249, "top-right red is ~255: %u", out.pixels[255 * 3]);
				CHECK(out.pixels[95 * out.stride + 1] > 249, "bottom-left green is ~255: %u",
					  out.pixels[95 * out.stride + 1]);
				img_raster_free(&out);
			}
			else
				CHECK(false, "gradient load failed: %s", err.message);
			jb_free(&j);
		}
		img_raster_free(&src);
	}
}

/* ceil(side * m / 8): libjpeg's output size for DCT scale m/8 */
static uint32_t
scaled_side(uint32_t side, unsigned m)
{
	return (uint32_t) (((uint64_t) side * m + 7) / 8);
}

/*
 * Shrink-on-load contract: the result is one DCT scale m/8 of the stored
 * size (both sides with the same m), never below the minimum, and reduced
 * whenever a reduction can meet the minimum.  Which m a decoder picks among
 * those that fit (every eighth, or only the SIMD-accelerated 1, 2, 4, 8) is
 * its own business, so besides the contract only the cases every sensible
 * choice agrees on (an exact power-of-two fit, or no fit at all) pin sizes.
 */
TEST_SUITE(jpeg_shrink_on_load)
{
	static const struct
	{
		uint32_t	w,
					h;			/* stored size */
		uint32_t	min_w,
					min_h;		/* requested minimum */
		uint32_t	want_w,
					want_h;		/* exact result, or 0 when only the contract applies */
	}			cases[] = {
		{1024, 768, 0, 0, 1024, 768},	/* no minimum: full size */
		{1024, 768, 1, 0, 128, 96},	/* 1/8 */
		{1024, 768, 128, 0, 128, 96},	/* exactly 1/8 */
		{1024, 768, 129, 0, 256, 192},	/* one over: 2/8 */
		{1024, 768, 256, 0, 256, 192},
		{1024, 768, 300, 0, 0, 0},	/* 3/8 or 4/8 */
		{1024, 768, 512, 0, 512, 384},	/* 3/8 is too small, 4/8 fits exactly */
		{1024, 768, 513, 0, 0, 0},	/* 5/8 .. 8/8 */
		{1024, 768, 897, 0, 1024, 768},	/* 7/8 is 896: only full size fits */
		{1024, 768, 2000, 0, 1024, 768},	/* never upscales */
		{1024, 768, 0, 100, 256, 192},	/* height decides: 96 < 100 */
		{1024, 768, 100, 200, 0, 0},	/* the larger need wins */
		{1001, 601, 100, 0, 126, 76},	/* ceil(1001/8), ceil(601/8) */
		{1001, 601, 127, 0, 251, 151},	/* ceil(1001*2/8), ceil(601*2/8) */
		{17, 9, 1, 1, 3, 2},	/* tiny images shrink too */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		jb_buf		j;
		img_raster	out;
		img_error	err = {0};
		img_status	st;

		if (!jb_gradient_jpeg(cases[i].w, cases[i].h, 80, &j))
			continue;
		st = jb_load(j.data, j.len, cases[i].min_w, cases[i].min_h, &out, NULL, &err);
		CHECK(st == IMG_OK, "load: %s", err.message);
		if (st == IMG_OK)
		{
			unsigned	m = 0;
			unsigned	smallest_fit = 0;

			for (unsigned k = 1; k <= 8; k++)
			{
				if (out.width == scaled_side(cases[i].w, k) &&
					out.height == scaled_side(cases[i].h, k))
					m = k;
				if (smallest_fit == 0 && scaled_side(cases[i].w, k) >= cases[i].min_w &&
					scaled_side(cases[i].h, k) >= cases[i].min_h)
					smallest_fit = k;
			}
			CHECK(m != 0, "%ux%u min %ux%u: %ux%u is a DCT scale m/8 of the stored size",
				  cases[i].w, cases[i].h, cases[i].min_w, cases[i].min_h, out.width, out.height);
			CHECK(out.width >= cases[i].min_w || out.width == cases[i].w,
				  "%ux%u min %ux%u: width %u is not below the minimum", cases[i].w, cases[i].h,
				  cases[i].min_w, cases[i].min_h, out.width);
			CHECK(out.height >= cases[i].min_h || out.height == cases[i].h,
				  "%ux%u min %ux%u: height %u is not below the minimum", cases[i].w, cases[i].h,
				  cases[i].min_w, cases[i].min_h, out.height);
			/* reduced when possible: at most the next power of two above the smallest fit */
			if (smallest_fit != 0 && m != 0 && (cases[i].min_w || cases[i].min_h))
			{
				unsigned	pow2 = 1;

				while (pow2 < smallest_fit)
					pow2 *= 2;
				CHECK(m >= smallest_fit && m <= pow2,
					  "%ux%u min %ux%u: scale %u/8, expected between %u/8 and %u/8",
					  cases[i].w, cases[i].h, cases[i].min_w, cases[i].min_h, m, smallest_fit, pow2);
			}
			if (cases[i].want_w)
				CHECK(out.width == cases[i].want_w && out.height == cases[i].want_h,
					  "%ux%u with min %ux%u: expected %ux%u, got %ux%u", cases[i].w, cases[i].h,
					  cases[i].min_w, cases[i].min_h, cases[i].want_w, cases[i].want_h,
					  out.width, out.height);
			/* the scaled image still looks like the gradient: right column is red */
			CHECK(out.pixels[(out.width - 1) * 3] > 200, "right edge red %u > 200",
				  out.pixels[(out.width - 1) * 3]);
			img_raster_free(&out);
		}
		jb_free(&j);
	}

	/* the minimum is upright: orientation 6 stores 768x1024 shown as 1024x768 */
	{
		jb_buf		j;
		jb_buf		seg = {0};
		jb_buf		spliced;
		uint8_t		exif[256];
		img_raster	out;
		img_error	err = {0};

		if (jb_gradient_jpeg(768, 1024, 80, &j))
		{
			jb_add_segment(&seg, 0xE1, exif, jb_build_exif(exif, true, 6, false, NULL));
			spliced = jb_splice(&j, &seg, NULL, 0);
			if (jb_load(spliced.data, spliced.len, 256, 0, &out, NULL, &err) == IMG_OK)
			{
				CHECK(out.width == 256 && out.height == 192,
					  "orientation 6, upright min width 256: expected 256x192, got %ux%u",
					  out.width, out.height);
				img_raster_free(&out);
			}
			else
				CHECK(false, "load oriented: %s", err.message);
			if (jb_load(spliced.data, spliced.len, 0, 384, &out, NULL, &err) == IMG_OK)
			{
				CHECK(out.width == 512 && out.height == 384,
					  "orientation 6, upright min height 384: expected 512x384, got %ux%u",
					  out.width, out.height);
				img_raster_free(&out);
			}
			else
				CHECK(false, "load oriented: %s", err.message);
			jb_free(&spliced);
			jb_free(&seg);
			jb_free(&j);
		}
	}
}

static void
check_flags(const char *what, const jb_buf *b, bool exif, bool gps, bool xmp, bool icc,
			bool iptc, bool com, bool trail, int orientation)
{
	img_info	info;
	img_error	err = {0};
	img_status	st = probe(b, &info, &err);

	CHECK(st == IMG_OK, "%s: probe %s (%s)", what, img_status_name(st), err.message);
	CHECK(info.has_exif == exif, "%s: has_exif %d, expected %d", what, info.has_exif, exif);
	CHECK(info.has_gps == gps, "%s: has_gps %d, expected %d", what, info.has_gps, gps);
	CHECK(info.has_xmp == xmp, "%s: has_xmp %d, expected %d", what, info.has_xmp, xmp);
	CHECK(info.has_icc == icc, "%s: has_icc %d, expected %d", what, info.has_icc, icc);
	CHECK(info.has_iptc == iptc, "%s: has_iptc %d, expected %d", what, info.has_iptc, iptc);
	CHECK(info.has_comment == com, "%s: has_comment %d, expected %d", what, info.has_comment, com);
	CHECK(info.has_trailing_data == trail, "%s: has_trailing_data %d, expected %d", what,
		  info.has_trailing_data, trail);
	CHECK(info.orientation == orientation, "%s: orientation %u, expected %d", what,
		  info.orientation, orientation);
	CHECK(info.width == 64 && info.height == 48, "%s: metadata does not change the size (%ux%u)",
		  what, info.width, info.height);
}

TEST_SUITE(jpeg_metadata)
{
	jb_buf		j;
	uint8_t		buf[4096];
	size_t		n;
	char		what[64];

	if (!jb_gradient_jpeg(64, 48, 85, &j))
	{
		CHECK(false, "encode failed");
		return;
	}

	/* EXIF orientation in both byte orders, with and without GPS */
	for (int be = 0; be <= 1; be++)
		for (int o = 1; o <= 8; o++)
		{
			jb_buf		seg = {0};
			jb_buf		s;

			n = jb_build_exif(buf, be, o, o == 3, o == 5 ? "IMGMOD-CANARY-EXIF" : NULL);
			jb_add_segment(&seg, 0xE1, buf, n);
			s = jb_splice(&j, &seg, NULL, 0);
			snprintf(what, sizeof(what), "exif %s orientation %d", be ? "MM" : "II", o);
			check_flags(what, &s, true, o == 3, false, false, false, false, false, o);
			jb_free(&s);
			jb_free(&seg);
		}

	/* out-of-range and absent orientation mean "as stored" */
	{
		static const int bogus[] = {0, 9, 255, 65535, -1};

		for (size_t i = 0; i < sizeof(bogus) / sizeof(bogus[0]); i++)
		{
			jb_buf		seg = {0};
			jb_buf		s;

			n = jb_build_exif(buf, i & 1, bogus[i], false, "x");
			jb_add_segment(&seg, 0xE1, buf, n);
			s = jb_splice(&j, &seg, NULL, 0);
			snprintf(what, sizeof(what), "exif orientation %d", bogus[i]);
			check_flags(what, &s, true, false, false, false, false, false, false, 1);
			jb_free(&s);
			jb_free(&seg);
		}
	}

	/* EXIF whose TIFF block is garbage: present, orientation 1 */
	{
		jb_buf		seg = {0};
		jb_buf		s;

		memcpy(buf, "Exif\0\0MM\0*\xFF\xFF\xFF\xF0garbage-garbage", 29);
		jb_add_segment(&seg, 0xE1, buf, 29);
		s = jb_splice(&j, &seg, NULL, 0);
		check_flags("exif with a wild IFD offset", &s, true, false, false, false, false, false, false, 1);
		jb_free(&s);
		jb_free(&seg);
	}

	/* XMP */
	{
		jb_buf		seg = {0};
		jb_buf		s;

		jb_add_segment(&seg, 0xE1, jb_xmp_packet, jb_xmp_packet_len);
		s = jb_splice(&j, &seg, NULL, 0);
		check_flags("xmp", &s, false, false, true, false, false, false, false, 1);
		jb_free(&s);
		jb_free(&seg);
	}

	/* an APP1 that is neither EXIF nor XMP */
	{
		jb_buf		seg = {0};
		jb_buf		s;

		jb_add_segment(&seg, 0xE1, "SomethingElse\0\1\2\3", 17);
		s = jb_splice(&j, &seg, NULL, 0);
		check_flags("unknown app1", &s, false, false, false, false, false, false, false, 1);
		jb_free(&s);
		jb_free(&seg);
	}

	/* ICC profile in one APP2 chunk: flagged, sized and named */
	{
		jb_buf		seg = {0};
		jb_buf		s;
		size_t		plen;
		img_info	info;
		img_error	err = {0};

		n = jb_build_icc_app2(buf, sizeof(buf), &plen);
		CHECK(n > 0, "lcms2 built an sRGB profile");
		jb_add_segment(&seg, 0xE2, buf, n);
		s = jb_splice(&j, &seg, NULL, 0);
		check_flags("icc", &s, false, false, false, true, false, false, false, 1);
		if (probe(&s, &info, &err) == IMG_OK)
		{
			CHECK(info.icc_bytes == plen, "icc_bytes %zu, expected %zu", info.icc_bytes, plen);
			CHECK(strcmp(info.icc_description, "sRGB built-in") == 0,
				  "icc description \"%s\", expected \"sRGB built-in\"", info.icc_description);
		}
		/* the same profile is too large for a 100-byte metadata limit */
		{
			img_limits	lim;
			img_status	st;

			img_limits_default(&lim);
			lim.max_metadata_bytes = 100;
			st = img_probe(s.data, s.len, &lim, &info, &err);
			CHECK(st == IMG_ERR_METADATA_TOO_LARGE, "ICC over max_metadata_bytes: got %s",
				  img_status_name(st));
		}
		jb_free(&s);
		jb_free(&seg);
	}

	/* Photoshop APP13 (IPTC) */
	{
		jb_buf		seg = {0};
		jb_buf		s;

		n = jb_build_app13(buf);
		jb_add_segment(&seg, 0xED, buf, n);
		s = jb_splice(&j, &seg, NULL, 0);
		check_flags("app13", &s, false, false, false, false, true, false, false, 1);
		jb_free(&s);
		jb_free(&seg);
	}

	/* COM */
	{
		jb_buf		seg = {0};
		jb_buf		s;

		jb_add_segment(&seg, 0xFE, "IMGMOD-CANARY-COM", 17);
		s = jb_splice(&j, &seg, NULL, 0);
		check_flags("com", &s, false, false, false, false, false, true, false, 1);
		jb_free(&s);
		jb_free(&seg);
	}

	/* bytes after EOI */
	{
		jb_buf		s = jb_splice(&j, NULL, "PK\x03\x04trailing", 12);

		check_flags("trailer", &s, false, false, false, false, false, false, true, 1);
		jb_free(&s);
	}
	/* a single byte after EOI counts too */
	{
		jb_buf		s = jb_splice(&j, NULL, "\0", 1);

		check_flags("one trailing byte", &s, false, false, false, false, false, false, true, 1);
		jb_free(&s);
	}

	/* everything at once, LE EXIF orientation 8, and the pixels still load upright */
	{
		jb_buf		seg = {0};
		jb_buf		s;
		img_raster	out;
		img_error	err = {0};

		jb_add_camera_metadata(&seg, false, 8);
		s = jb_splice(&j, &seg, "IMGMOD-CANARY-TRAIL", 19);
		check_flags("all metadata", &s, true, true, true, true, true, true, true, 8);
		if (jb_load(s.data, s.len, 0, 0, &out, NULL, &err) == IMG_OK)
		{
			CHECK(out.width == 48 && out.height == 64, "orientation 8 loads as 48x64, got %ux%u",
				  out.width, out.height);
			/*
			 * Tag 8 rotates the stored image 90 degrees counter-clockwise:
			 * the stored right column (red ~255) becomes the top row.
			 */
			CHECK(out.pixels[0] > 230 && out.pixels[(out.width - 1) * 3] > 230,
				  "top row is the stored right edge (red): %u %u", out.pixels[0],
				  out.pixels[(out.width - 1) * 3]);
			img_raster_free(&out);
		}
		else
			CHECK(false, "load with all metadata: %s", err.message);
		jb_free(&s);
		jb_free(&seg);
	}
	jb_free(&j);
}

TEST_SUITE(jpeg_truncation)
{
	jb_buf		j;
	jb_buf		seg = {0};
	jb_buf		s;
	uint8_t		exif[256];
	size_t		start;
	int			bad = 0;

	if (!jb_gradient_jpeg(96, 64, 85, &j))
		return;
	jb_add_segment(&seg, 0xE1, exif, jb_build_exif(exif, true, 6, true, "IMGMOD-CANARY"));
	jb_add_segment(&seg, 0xFE, "a comment", 9);
	s = jb_splice(&j, &seg, NULL, 0);
	jb_free(&seg);
	jb_free(&j);

	/*
	 * Every proper prefix.  From 3 bytes on the data sniffs as JPEG and the
	 * refusal must say truncated or corrupt; the 1- and 2-byte prefixes are
	 * not even JPEG, and only have to be refused.
	 */
	for (size_t len = 0; len < s.len; len++)
	{
		img_raster	out;
		img_error	err = {0};
		img_status	st = jb_load(s.data, len, 0, 0, &out, NULL, &err);

		if (st == IMG_OK)
		{
			img_raster_free(&out);
			if (bad++ < 5)
				CHECK(false, "prefix of %zu of %zu bytes was accepted", len, s.len);
		}
		else if (len >= 3 && st != IMG_ERR_TRUNCATED && st != IMG_ERR_CORRUPT)
		{
			if (bad++ < 5)
				CHECK(false, "prefix of %zu bytes: %s (%s), expected truncated or corrupt",
					  len, img_status_name(st), err.message);
		}
	}
	CHECK(bad == 0, "%d of %zu prefixes were mishandled", bad, s.len);

	/*
	 * Cut the entropy-coded data and close the file with an EOI: the header
	 * walk is satisfied, so the decoder itself must notice the missing data
	 * (libjpeg only warns and pads grey).  Both the decode path and the
	 * lossless normalise path are checked.
	 */
	start = entropy_start(&s);
	CHECK(start > 0 && start < s.len, "found the entropy-coded data");
	for (int pct = 5; pct <= 95 && start > 0; pct += 10)
	{
		size_t		cut = start + (s.len - 2 - start) * (size_t) pct / 100;
		uint8_t    *t = malloc(cut + 2);
		img_raster	out;
		img_normalised norm;
		img_normalise_options nopt = {90, {255, 255, 255}};
		img_limits	lim;
		img_error	err = {0};
		img_status	st;

		if (t == NULL)
			break;
		memcpy(t, s.data, cut);
		t[cut] = 0xFF;
		t[cut + 1] = 0xD9;
		st = jb_load(t, cut + 2, 0, 0, &out, NULL, &err);
		CHECK(st == IMG_ERR_TRUNCATED || st == IMG_ERR_CORRUPT,
			  "entropy data cut at %d%% then EOI: load gave %s, expected truncated/corrupt",
			  pct, img_status_name(st));
		if (st == IMG_OK)
			img_raster_free(&out);
		img_limits_default(&lim);
		st = img_normalise(t, cut + 2, &lim, &nopt, &norm, &err);
		CHECK(st == IMG_ERR_TRUNCATED || st == IMG_ERR_CORRUPT,
			  "entropy data cut at %d%% then EOI: normalise gave %s, expected truncated/corrupt",
			  pct, img_status_name(st));
		img_normalised_free(&norm);
		free(t);
	}
	jb_free(&s);
}

TEST_SUITE(jpeg_bit_flips)
{
	jb_buf		j;
	size_t		start;
	int			ok_count = 0;
	int			err_count = 0;
	static const uint8_t masks[] = {0x01, 0x10, 0x80, 0xFF};

	if (!jb_gradient_jpeg(96, 64, 85, &j))
		return;
	start = entropy_start(&j);
	CHECK(start > 0, "found the entropy-coded data");
	for (int k = 0; k < 60 && start > 0; k++)
	{
		size_t		pos = start + (j.len - 2 - start) * (size_t) k / 60;

		for (size_t m = 0; m < sizeof(masks); m++)
		{
			img_raster	out;
			img_error	err = {0};
			img_status	st;

			j.data[pos] ^= masks[m];
			st = jb_load(j.data, j.len, 0, 0, &out, NULL, &err);
			if (st == IMG_OK)
			{
				CHECK(out.width == 96 && out.height == 64, "a damaged file that decodes keeps its size");
				img_raster_free(&out);
				ok_count++;
			}
			else
			{
				CHECK(st == IMG_ERR_CORRUPT || st == IMG_ERR_TRUNCATED,
					  "flip at %zu: %s (%s)", pos, img_status_name(st), err.message);
				CHECK(err.message[0] != '\0', "an error has a message");
				err_count++;
			}
			/* the lossless path reads the same damaged coefficients */
			if (k % 4 == 0)
			{
				img_normalised norm;
				img_normalise_options nopt = {90, {255, 255, 255}};
				img_limits	lim;

				img_limits_default(&lim);
				st = img_normalise(j.data, j.len, &lim, &nopt, &norm, &err);
				if (st == IMG_OK)
					CHECK(norm.master.len > 0 && norm.width == 96 && norm.height == 64,
						  "normalised damaged file has a master");
				img_normalised_free(&norm);
			}
			j.data[pos] ^= masks[m];
		}
	}
	CHECK(ok_count + err_count == 240, "all 240 damaged variants ran (%d ok, %d refused)",
		  ok_count, err_count);
	jb_free(&j);
}

TEST_SUITE(jpeg_scans_and_limits)
{
	size_t		len;
	uint8_t    *fx = read_fixture("formats/jpeg_progressive_420.jpg", &len);
	img_limits	lim;
	img_info	info;
	img_error	err = {0};
	img_status	st;

	CHECK(fx != NULL, "fixture formats/jpeg_progressive_420.jpg is readable");
	if (fx)
	{
		img_limits_default(&lim);
		st = img_probe(fx, len, &lim, &info, &err);
		CHECK(st == IMG_OK, "progressive fixture probes: %s", err.message);
		CHECK(info.progressive, "progressive flag set");
		CHECK(info.scans == 10, "libjpeg's default progression has 10 scans, got %u", info.scans);
		CHECK(info.width == 1200 && info.height == 672, "1200x672, got %ux%u", info.width, info.height);

		lim.max_scans = 1;
		st = img_probe(fx, len, &lim, &info, &err);
		CHECK(st == IMG_ERR_TOO_MANY_SCANS, "max_scans 1: got %s", img_status_name(st));
		CHECK(strstr(err.message, "scans") != NULL, "message names scans: %s", err.message);
		lim.max_scans = 9;
		st = img_probe(fx, len, &lim, &info, &err);
		CHECK(st == IMG_ERR_TOO_MANY_SCANS, "max_scans 9: got %s", img_status_name(st));
		lim.max_scans = 10;
		st = img_probe(fx, len, &lim, &info, &err);
		CHECK(st == IMG_OK, "max_scans 10 (= scans): got %s", img_status_name(st));
		free(fx);
	}

	/* a progressive file built here, colour and grey */
	for (int grey = 0; grey <= 1; grey++)
	{
		img_raster	r;
		jb_buf		p;
		img_raster	out;
		img_load_options opt;

		if (!jb_make_gradient(&r, 200, 120))
			continue;
		if (progressive_jpeg(&r, grey, &p))
		{
			img_limits_default(&lim);
			st = img_probe(p.data, p.len, &lim, &info, &err);
			CHECK(st == IMG_OK, "generated progressive probes: %s", err.message);
			CHECK(info.progressive, "generated progressive is progressive");
			CHECK(info.scans == (grey ? 6u : 10u), "%s progressive: %u scans, expected %u",
				  grey ? "grey" : "colour", info.scans, grey ? 6u : 10u);
			CHECK(info.colour == (grey ? IMG_COLOUR_GRAY : IMG_COLOUR_YCBCR), "colour model %s",
				  img_colour_model_name(info.colour));
			lim.max_scans = 1;
			img_load_options_default(&opt);
			st = img_load(p.data, p.len, &lim, &opt, &out, NULL, &err);
			CHECK(st == IMG_ERR_TOO_MANY_SCANS, "load with max_scans 1: %s", img_status_name(st));
			if (jb_load(p.data, p.len, 0, 0, &out, NULL, &err) == IMG_OK)
			{
				CHECK(out.width == 200 && out.height == 120, "progressive decodes at 200x120");
				if (!grey)
					CHECK(out.pixels[199 * 3] > 240 && out.pixels[0] < 15, "red ramp survives");
				img_raster_free(&out);
			}
			else
				CHECK(false, "progressive load: %s", err.message);
			jb_free(&p);
		}
		img_raster_free(&r);
	}

	/* size limits on a generated 300x200 */
	{
		jb_buf		j;

		if (jb_gradient_jpeg(300, 200, 80, &j))
		{
			img_limits_default(&lim);
			lim.max_pixels = 300 * 200 - 1;
			st = img_probe(j.data, j.len, &lim, &info, &err);
			CHECK(st == IMG_ERR_TOO_MANY_PIXELS, "max_pixels one under: %s", img_status_name(st));
			lim.max_pixels = 300 * 200;
			st = img_probe(j.data, j.len, &lim, &info, &err);
			CHECK(st == IMG_OK, "max_pixels exact: %s", img_status_name(st));
			lim.max_side = 299;
			st = img_probe(j.data, j.len, &lim, &info, &err);
			CHECK(st == IMG_ERR_BAD_DIMENSIONS, "max_side 299: %s", img_status_name(st));
			img_limits_default(&lim);
			lim.max_bytes = j.len - 1;
			st = img_probe(j.data, j.len, &lim, &info, &err);
			CHECK(st == IMG_ERR_TOO_MANY_BYTES, "max_bytes one under: %s", img_status_name(st));
			jb_free(&j);
		}
	}
}

/* Mean colour of a 6x4 grid of cells, to compare two decodes of one picture. */
static void
cell_means(const img_raster *r, double cells[24][3])
{
	uint32_t	cw = r->width / 6;
	uint32_t	ch = r->height / 4;

	for (int gy = 0; gy < 4; gy++)
		for (int gx = 0; gx < 6; gx++)
			jb_mean_rgb(r, gx * cw, gy * ch, cw, ch, cells[gy * 6 + gx]);
}

TEST_SUITE(jpeg_colour_fixtures)
{
	size_t		len;
	uint8_t    *base = read_fixture("formats/jpeg_progressive_420.jpg", &len);
	img_raster	ref;
	img_error	err = {0};
	double		ref_mean[3];
	double		ref_cells[24][3];
	static const struct
	{
		const char *name;
		img_colour_model colour;
		bool		grey;
		double		tol_mean;	/* per channel, levels */
		double		tol_cell;
	}			fixtures[] = {
		{"formats/jpeg_cmyk_ycck_adobe.jpg", IMG_COLOUR_YCCK, false, 2.0, 6.0},
		{"formats/jpeg_gray.jpg", IMG_COLOUR_GRAY, true, 1.5, 3.0},
		{"formats/jpeg_arithmetic_420.jpg", IMG_COLOUR_YCBCR, false, 0.5, 1.0},
	};

	CHECK(base != NULL, "baseline fixture readable");
	if (base == NULL)
		return;
	if (jb_load(base, len, 0, 0, &ref, NULL, &err) != IMG_OK)
	{
		CHECK(false, "baseline fixture loads: %s", err.message);
		free(base);
		return;
	}
	free(base);
	jb_mean_rgb(&ref, 0, 0, ref.width, ref.height, ref_mean);
	cell_means(&ref, ref_cells);
	/* the picture is a brownish landscape: red > green > blue */
	CHECK(ref_mean[0] > ref_mean[1] && ref_mean[1] > ref_mean[2],
		  "reference mean (%.1f %.1f %.1f) is red > green > blue", ref_mean[0], ref_mean[1], ref_mean[2]);

	for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++)
	{
		uint8_t    *d = read_fixture(fixtures[i].name, &len);
		img_limits	lim;
		img_info	info;
		img_raster	out;
		img_load_options opt;
		img_status	st;

		CHECK(d != NULL, "%s readable", fixtures[i].name);
		if (d == NULL)
			continue;
		img_limits_default(&lim);
		img_load_options_default(&opt);
		st = img_load(d, len, &lim, &opt, &out, &info, &err);
		CHECK(st == IMG_OK, "%s loads: %s", fixtures[i].name, err.message);
		CHECK(info.colour == fixtures[i].colour, "%s: colour model %s, expected %s",
			  fixtures[i].name, img_colour_model_name(info.colour),
			  img_colour_model_name(fixtures[i].colour));
		if (st == IMG_OK)
		{
			double		m[3];
			double		cells[24][3];
			double		worst = 0;

			CHECK(out.width == 1200 && out.height == 672 && out.channels == 3,
				  "%s decodes to 1200x672 RGB, got %ux%ux%u", fixtures[i].name,
				  out.width, out.height, out.channels);
			jb_mean_rgb(&out, 0, 0, out.width, out.height, m);
			cell_means(&out, cells);
			for (int c = 0; c < 3; c++)
			{
				double		want = ref_mean[c];

				if (fixtures[i].grey)
					want = 0.299 * ref_mean[0] + 0.587 * ref_mean[1] + 0.114 * ref_mean[2];
				CHECK(m[c] > want - fixtures[i].tol_mean && m[c] < want + fixtures[i].tol_mean,
					  "%s: mean channel %d is %.2f, reference %.2f +- %.1f", fixtures[i].name,
					  c, m[c], want, fixtures[i].tol_mean);
			}
			for (int k = 0; k < 24; k++)
				for (int c = 0; c < 3; c++)
				{
					double		want = fixtures[i].grey ?
						0.299 * ref_cells[k][0] + 0.587 * ref_cells[k][1] + 0.114 * ref_cells[k][2] :
						ref_cells[k][c];
					double		dd = cells[k][c] - want;

					if (dd < 0)
						dd = -dd;
					if (dd > worst)
						worst = dd;
				}
			CHECK(worst < fixtures[i].tol_cell, "%s: worst cell mean differs by %.2f (< %.1f)",
				  fixtures[i].name, worst, fixtures[i].tol_cell);
			img_raster_free(&out);
		}
		free(d);
	}
	img_raster_free(&ref);
}
