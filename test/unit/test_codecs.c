/*
 * test_codecs.c — the non-JPEG codecs: PNG, GIF, WebP, HEIF/AVIF, TIFF, BMP.
 *
 * Small images are generated here with each format's own encoder (libpng,
 * giflib, libwebp, libtiff) or by hand (BMP, chunk-level PNG/WebP edits), so
 * the tests can assert exact pixels at known positions.  Hostile inputs come
 * from test/fixtures/bad, from equivalents built here (CRC damage, zlib
 * bombs, cut LZW data, every truncation point), and from the shared corpus
 * when it is present next to the checkout.
 */
#include "test.h"

#include "codec.h"

#include <dirent.h>
#include <gif_lib.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
#include <unistd.h>
#include <webp/encode.h>
#include <zlib.h>

/* ------------------------------------------------------------ helpers */

typedef struct membuf
{
	uint8_t    *data;
	size_t		len;
	size_t		cap;
} membuf;

static void
mb_put(membuf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap)
	{
		size_t		cap = b->cap ? b->cap : 256;

		while (cap < b->len + n)
			cap *= 2;
		b->data = realloc(b->data, cap);
		if (b->data == NULL)
			abort();
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void
mb_be32(membuf *b, uint32_t v)
{
	uint8_t		x[4] = {(uint8_t) (v >> 24), (uint8_t) (v >> 16), (uint8_t) (v >> 8), (uint8_t) v};

	mb_put(b, x, 4);
}

static void
mb_le32(membuf *b, uint32_t v)
{
	uint8_t		x[4] = {(uint8_t) v, (uint8_t) (v >> 8), (uint8_t) (v >> 16), (uint8_t) (v >> 24)};

	mb_put(b, x, 4);
}

static void
mb_le16(membuf *b, uint16_t v)
{
	uint8_t		x[2] = {(uint8_t) v, (uint8_t) (v >> 8)};

	mb_put(b, x, 2);
}

static img_limits
default_limits(void)
{
	img_limits	l;

	img_limits_default(&l);
	return l;
}

/*
 * img_probe, then the codec's decode (so the raw layout and ICC can be
 * checked).  On IMG_OK dec must be freed by the caller.
 */
static img_status
probe_decode(const uint8_t *data, size_t len, const img_limits *limits,
			 img_info *info, img_decoded *dec, img_error *err)
{
	img_status	st;
	const img_codec *codec;

	memset(dec, 0, sizeof(*dec));
	st = img_probe(data, len, limits, info, err);
	if (st != IMG_OK)
		return st;
	codec = img_codec_for(info->format);
	if (codec == NULL)
		return IMG_ERR_INTERNAL;
	return codec->decode(data, len, limits, info, 0, 0, dec, err);
}

/* Status of probe + decode, freeing whatever was decoded. */
static img_status
load_status(const uint8_t *data, size_t len, const img_limits *limits, img_error *err)
{
	img_info	info;
	img_decoded dec;
	img_status	st = probe_decode(data, len, limits, &info, &dec, err);

	if (st == IMG_OK)
		img_decoded_free(&dec);
	return st;
}

static const uint8_t *
px_at(const img_decoded *d, uint32_t x, uint32_t y)
{
	return d->raster.pixels + (size_t) y * d->raster.stride + (size_t) x * d->raster.channels;
}

static bool
px_eq(const img_decoded *d, uint32_t x, uint32_t y, int r, int g, int b, int a)
{
	const uint8_t *p = px_at(d, x, y);

	if (p[0] != r || p[1] != g || p[2] != b)
		return false;
	if (a >= 0 && (d->raster.channels != 4 || p[3] != a))
		return false;
	return true;
}

/*
 * Every strict prefix of a valid file must be refused (probe or decode);
 * returns the number of prefixes that were accepted.
 */
static int
accepted_prefixes(const uint8_t *data, size_t len, size_t from, size_t step)
{
	img_limits	lim = default_limits();
	img_error	err;
	int			accepted = 0;

	for (size_t n = from; n < len; n += step)
		if (load_status(data, n, &lim, &err) == IMG_OK)
			accepted++;
	return accepted;
}

static img_status
fixture_status(const char *name, img_info *info, img_error *err)
{
	img_limits	lim = default_limits();
	size_t		len;
	uint8_t    *data = read_fixture(name, &len);
	img_decoded dec;
	img_status	st;

	if (data == NULL)
	{
		CHECK(false, "fixture %s is readable", name);
		return IMG_ERR_INTERNAL;
	}
	st = probe_decode(data, len, &lim, info, &dec, err);
	if (st == IMG_OK)
		img_decoded_free(&dec);
	free(data);
	return st;
}

/* A 26-byte big-endian TIFF block: IFD0 with one Orientation entry. */
static void
exif_tiff_block(membuf *b, uint16_t orientation)
{
	static const uint8_t head[] = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1};

	mb_put(b, head, sizeof(head));
	mb_put(b, (uint8_t[]) {(uint8_t) (orientation >> 8), (uint8_t) orientation, 0, 0}, 4);
	mb_be32(b, 0);
}

/* A fake (unparseable but well-sized) ICC profile of n bytes. */
static void
fake_icc(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t) (i * 7);
	p[0] = (uint8_t) (n >> 24);
	p[1] = (uint8_t) (n >> 16);
	p[2] = (uint8_t) (n >> 8);
	p[3] = (uint8_t) n;
}

/* ---------------------------------------------------------------- PNG */

static void
png_write_cb(png_structp png, png_bytep d, size_t n)
{
	mb_put(png_get_io_ptr(png), d, n);
}

static void
png_flush_cb(png_structp png)
{
	(void) png;
}

/* Encode rows (packed, rowbytes each) with libpng; NULL on failure. */
static uint8_t *
make_png(uint32_t w, uint32_t h, int ctype, int depth, bool interlace,
		 const uint8_t *pixels, size_t rowbytes, const png_color *pal, int npal,
		 const png_byte *trns, int ntrns, size_t *len)
{
	membuf		out = {0};
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop	info = png ? png_create_info_struct(png) : NULL;

	if (info == NULL)
		return NULL;
	if (setjmp(png_jmpbuf(png)))
	{
		png_destroy_write_struct(&png, &info);
		free(out.data);
		return NULL;
	}
	png_set_write_fn(png, &out, png_write_cb, png_flush_cb);
	png_set_IHDR(png, info, w, h, depth, ctype,
				 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
				 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	if (pal)
		png_set_PLTE(png, info, pal, npal);
	if (trns)
		png_set_tRNS(png, info, trns, ntrns, NULL);
	png_write_info(png, info);
	{
		int			passes = png_set_interlace_handling(png);

		for (int p = 0; p < passes; p++)
			for (uint32_t y = 0; y < h; y++)
				png_write_row(png, pixels + (size_t) y * rowbytes);
	}
	png_write_end(png, info);
	png_destroy_write_struct(&png, &info);
	*len = out.len;
	return out.data;
}

static void
png_chunk(membuf *b, const char *type, const uint8_t *body, size_t n)
{
	uLong		crc = crc32(0, (const Bytef *) type, 4);

	mb_be32(b, (uint32_t) n);
	mb_put(b, type, 4);
	if (n)
		mb_put(b, body, n);
	crc = crc32(crc, body, (uInt) n);
	mb_be32(b, (uint32_t) crc);
}

/* Copy signature+IHDR of base, then extra (ready-made chunks), then the rest. */
static uint8_t *
png_splice(const uint8_t *base, size_t base_len, const membuf *extra,
		   const char *trailer, size_t *len)
{
	membuf		b = {0};

	mb_put(&b, base, 33);
	mb_put(&b, extra->data, extra->len);
	mb_put(&b, base + 33, base_len - 33);
	if (trailer)
		mb_put(&b, trailer, strlen(trailer));
	*len = b.len;
	return b.data;
}

/* A zlib stream of prefix followed by n zero bytes, fed in 64 KiB steps. */
static void
zlib_zeros(membuf *b, size_t n, const uint8_t *prefix, size_t prefix_len)
{
	static const uint8_t zeros[1 << 16];
	uint8_t		out[1 << 16];
	z_stream	zs;

	memset(&zs, 0, sizeof(zs));
	deflateInit(&zs, 9);
	zs.next_in = (Bytef *) prefix;
	zs.avail_in = (uInt) prefix_len;
	for (;;)
	{
		bool		last;
		int			ret;

		if (zs.avail_in == 0 && n > 0)
		{
			size_t		take = n > sizeof(zeros) ? sizeof(zeros) : n;

			zs.next_in = (Bytef *) zeros;
			zs.avail_in = (uInt) take;
			n -= take;
		}
		last = n == 0;
		do
		{
			zs.next_out = out;
			zs.avail_out = sizeof(out);
			ret = deflate(&zs, last ? Z_FINISH : Z_NO_FLUSH);
			mb_put(b, out, sizeof(out) - zs.avail_out);
		} while (zs.avail_out == 0 || (last && ret != Z_STREAM_END));
		if (last)
			break;
	}
	deflateEnd(&zs);
}

/* RGBA 5x3 test pattern: distinct value at every position. */
static void
rgba_pattern(uint8_t *p, uint32_t w, uint32_t h)
{
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++)
		{
			uint8_t    *q = p + ((size_t) y * w + x) * 4;

			q[0] = (uint8_t) (x * 50 + 1);
			q[1] = (uint8_t) (y * 80 + 2);
			q[2] = (uint8_t) (x * 10 + y * 30 + 3);
			q[3] = (uint8_t) (255 - x * 20 - y * 40);
		}
}

TEST_SUITE(codec_png)
{
	img_limits	lim = default_limits();
	img_info	info;
	img_decoded dec;
	img_error	err;
	uint8_t		rgba[5 * 3 * 4];
	uint8_t    *png;
	size_t		len;
	img_status	st;

	/* RGBA 8-bit: exact pixels, alpha kept straight */
	rgba_pattern(rgba, 5, 3);
	png = make_png(5, 3, PNG_COLOR_TYPE_RGBA, 8, false, rgba, 20, NULL, 0, NULL, 0, &len);
	CHECK(png != NULL, "libpng wrote the rgba test image");
	st = probe_decode(png, len, &lim, &info, &dec, &err);
	CHECK(st == IMG_OK, "rgba png decodes: %s", err.message);
	if (st == IMG_OK)
	{
		CHECK(info.format == IMG_FORMAT_PNG && info.width == 5 && info.height == 3,
			  "probe 5x3 png, got %ux%u", info.width, info.height);
		CHECK(info.has_alpha && info.colour == IMG_COLOUR_RGB && info.bit_depth == 8 && !info.progressive,
			  "rgba png: alpha, rgb, 8 bit, not interlaced");
		CHECK(dec.layout == IMG_LAYOUT_RGBA && dec.raster.channels == 4 &&
			  dec.raster.width == 5 && dec.raster.height == 3, "rgba layout 5x3x4");
		CHECK(memcmp(dec.raster.pixels, rgba, sizeof(rgba)) == 0, "rgba pixels identical");
		CHECK(px_eq(&dec, 4, 2, 201, 162, 103, 255 - 80 - 80), "pixel (4,2)");
		CHECK(dec.icc == NULL && dec.orientation == 1, "no icc, orientation 1");
		img_decoded_free(&dec);
	}

	/* every truncation point of it is refused */
	CHECK(accepted_prefixes(png, len, 1, 1) == 0, "no strict prefix of a png is accepted");
	for (size_t n = 33; n < len; n++)
	{
		st = load_status(png, n, &lim, &err);
		if (st != IMG_ERR_TRUNCATED)
		{
			CHECK(false, "prefix of %zu bytes is truncated, got %s", n, img_status_name(st));
			break;
		}
	}

	/* damaged IDAT CRC (generated equivalent of png_bad_idat_crc.png) */
	{
		uint8_t    *bad = malloc(len);
		size_t		pos = 33;

		memcpy(bad, png, len);
		while (pos + 8 < len && memcmp(bad + pos + 4, "IDAT", 4) != 0)
			pos += 12 + img_be32(bad + pos);
		bad[pos + 8 + img_be32(bad + pos) + 3] ^= 0x55;
		st = load_status(bad, len, &lim, &err);
		CHECK(st == IMG_ERR_CORRUPT, "png with a bad IDAT CRC is corrupt, got %s", img_status_name(st));
		CHECK(strstr(err.message, "CRC") != NULL, "message names the CRC: %s", err.message);
		/* a flipped bit inside the compressed data */
		memcpy(bad, png, len);
		bad[pos + 10] ^= 0x01;
		{
			uLong		crc = crc32(0, bad + pos + 4, 4 + img_be32(bad + pos));
			uint8_t    *c = bad + pos + 8 + img_be32(bad + pos);

			c[0] = (uint8_t) (crc >> 24);
			c[1] = (uint8_t) (crc >> 16);
			c[2] = (uint8_t) (crc >> 8);
			c[3] = (uint8_t) crc;
		}
		st = load_status(bad, len, &lim, &err);
		CHECK(st == IMG_ERR_CORRUPT, "png with damaged zlib data is corrupt, got %s", img_status_name(st));
		free(bad);
	}

	/* metadata chunks: eXIf orientation 6, iTXt XMP, tEXt, iCCP, trailing bytes */
	{
		membuf		extra = {0};
		membuf		body = {0};
		uint8_t		icc[200];
		uint8_t    *meta;
		size_t		mlen;

		fake_icc(icc, sizeof(icc));
		mb_put(&body, "ICC\0\0", 5);
		zlib_zeros(&body, 0, icc, sizeof(icc));
		png_chunk(&extra, "iCCP", body.data, body.len);
		body.len = 0;
		exif_tiff_block(&body, 6);
		png_chunk(&extra, "eXIf", body.data, body.len);
		body.len = 0;
		{
			/* keyword, NUL, flag, method, empty language and translation */
			static const char itxt[] = "XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta xmlns:x='adobe:ns:meta/'/>";

			mb_put(&body, itxt, sizeof(itxt) - 1);
		}
		png_chunk(&extra, "iTXt", body.data, body.len);
		png_chunk(&extra, "tEXt", (const uint8_t *) "Comment\0hello", 13);
		meta = png_splice(png, len, &extra, "TRAILING", &mlen);
		st = probe_decode(meta, mlen, &lim, &info, &dec, &err);
		CHECK(st == IMG_OK, "png with metadata decodes: %s", err.message);
		if (st == IMG_OK)
		{
			CHECK(info.has_exif && info.orientation == 6, "eXIf orientation 6, got %u", info.orientation);
			CHECK(info.has_xmp && info.has_comment, "iTXt XMP and tEXt found");
			CHECK(info.has_icc && info.icc_bytes == sizeof(icc), "iCCP found, %zu bytes", info.icc_bytes);
			CHECK(info.has_trailing_data, "bytes after IEND reported");
			CHECK(dec.orientation == 6, "decoded orientation 6, got %u", dec.orientation);
			CHECK(dec.icc_len == sizeof(icc) && dec.icc && memcmp(dec.icc, icc, sizeof(icc)) == 0,
				  "iCCP profile handed back intact");
			CHECK(memcmp(dec.raster.pixels, rgba, sizeof(rgba)) == 0, "pixels unaffected by metadata");
			img_decoded_free(&dec);
		}
		free(meta);

		/* zTXt that inflates to 64 MiB: never inflated, image still decodes */
		extra.len = 0;
		body.len = 0;
		mb_put(&body, "Comment\0\0", 9);
		zlib_zeros(&body, (size_t) 64 << 20, NULL, 0);
		png_chunk(&extra, "zTXt", body.data, body.len);
		meta = png_splice(png, len, &extra, NULL, &mlen);
		st = probe_decode(meta, mlen, &lim, &info, &dec, &err);
		CHECK(st == IMG_OK, "png with a zTXt bomb decodes (text ignored): %s", err.message);
		if (st == IMG_OK)
		{
			CHECK(info.has_comment, "zTXt reported as a comment");
			CHECK(memcmp(dec.raster.pixels, rgba, sizeof(rgba)) == 0, "pixels intact");
			img_decoded_free(&dec);
		}
		free(meta);

		/* iCCP declaring a 64 MiB profile: refused before inflating it */
		extra.len = 0;
		body.len = 0;
		mb_put(&body, "ICC\0\0", 5);
		{
			uint8_t		hdr[128] = {0x04, 0, 0, 0};

			zlib_zeros(&body, (size_t) 1 << 20, hdr, sizeof(hdr));
		}
		png_chunk(&extra, "iCCP", body.data, body.len);
		meta = png_splice(png, len, &extra, NULL, &mlen);
		st = load_status(meta, mlen, &lim, &err);
		CHECK(st == IMG_ERR_METADATA_TOO_LARGE, "64 MiB iCCP is metadata_too_large, got %s",
			  img_status_name(st));
		free(meta);

		/* iCCP of zeros (like huge_iccp_256MiB.png): ignored, image decodes */
		extra.len = 0;
		body.len = 0;
		mb_put(&body, "ICC\0\0", 5);
		zlib_zeros(&body, (size_t) 16 << 20, NULL, 0);
		png_chunk(&extra, "iCCP", body.data, body.len);
		meta = png_splice(png, len, &extra, NULL, &mlen);
		st = probe_decode(meta, mlen, &lim, &info, &dec, &err);
		CHECK(st == IMG_OK, "png with a zero iCCP decodes: %s", err.message);
		if (st == IMG_OK)
		{
			CHECK(info.has_icc && info.icc_bytes == 0 && dec.icc == NULL, "unreadable profile ignored");
			img_decoded_free(&dec);
		}
		free(meta);

		/* a damaged ancillary chunk CRC is still an error */
		extra.len = 0;
		png_chunk(&extra, "tEXt", (const uint8_t *) "Comment\0hello", 13);
		extra.data[extra.len - 1] ^= 1;
		meta = png_splice(png, len, &extra, NULL, &mlen);
		st = load_status(meta, mlen, &lim, &err);
		CHECK(st == IMG_ERR_CORRUPT, "bad tEXt CRC is corrupt, got %s", img_status_name(st));
		free(meta);

		free(extra.data);
		free(body.data);
	}
	free(png);

	/* palette + tRNS → RGBA; 2-bit palette expands */
	{
		png_color	pal[3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
		png_byte	trns[3] = {255, 128, 0};
		/* 4x2, 2 bits per pixel: indices 0 1 2 0 / 2 2 1 0 */
		uint8_t		rows[2] = {0x18, 0xA4};

		png = make_png(4, 2, PNG_COLOR_TYPE_PALETTE, 2, false, rows, 1, pal, 3, trns, 3, &len);
		st = probe_decode(png, len, &lim, &info, &dec, &err);
		CHECK(st == IMG_OK, "palette png decodes: %s", err.message);
		if (st == IMG_OK)
		{
			CHECK(info.colour == IMG_COLOUR_PALETTE && info.has_alpha && info.bit_depth == 2,
				  "palette, tRNS alpha, 2-bit");
			CHECK(dec.layout == IMG_LAYOUT_RGBA, "tRNS expands to RGBA");
			CHECK(px_eq(&dec, 0, 0, 255, 0, 0, 255) && px_eq(&dec, 1, 0, 0, 255, 0, 128) &&
				  px_eq(&dec, 2, 0, 0, 0, 255, 0) && px_eq(&dec, 3, 0, 255, 0, 0, 255) &&
				  px_eq(&dec, 2, 1, 0, 255, 0, 128), "palette pixels");
			img_decoded_free(&dec);
		}
		free(png);
	}

	/* 16-bit grey → 8-bit RGB */
	{
		uint8_t		rows[2][4] = {{0xFF, 0xFF, 0x00, 0x00}, {0x80, 0x80, 0x12, 0x34}};

		png = make_png(2, 2, PNG_COLOR_TYPE_GRAY, 16, false, &rows[0][0], 4, NULL, 0, NULL, 0, &len);
		st = probe_decode(png, len, &lim, &info, &dec, &err);
		CHECK(st == IMG_OK, "grey16 png decodes: %s", err.message);
		if (st == IMG_OK)
		{
			CHECK(info.colour == IMG_COLOUR_GRAY && info.bit_depth == 16 && !info.has_alpha,
				  "grey 16-bit, no alpha");
			CHECK(dec.layout == IMG_LAYOUT_RGB && dec.raster.channels == 3, "grey → RGB");
			CHECK(px_eq(&dec, 0, 0, 255, 255, 255, -1) && px_eq(&dec, 1, 0, 0, 0, 0, -1) &&
				  px_eq(&dec, 0, 1, 128, 128, 128, -1) && px_eq(&dec, 1, 1, 18, 18, 18, -1),
				  "16→8 bit scaling");
			img_decoded_free(&dec);
		}
		free(png);
	}

	/* Adam7: progressive, same pixels */
	{
		uint8_t		rgb[9 * 9 * 3];

		for (size_t i = 0; i < sizeof(rgb); i++)
			rgb[i] = (uint8_t) (i * 13);
		png = make_png(9, 9, PNG_COLOR_TYPE_RGB, 8, true, rgb, 27, NULL, 0, NULL, 0, &len);
		st = probe_decode(png, len, &lim, &info, &dec, &err);
		CHECK(st == IMG_OK, "interlaced png decodes: %s", err.message);
		if (st == IMG_OK)
		{
			CHECK(info.progressive, "Adam7 reported as progressive");
			CHECK(dec.layout == IMG_LAYOUT_RGB && memcmp(dec.raster.pixels, rgb, sizeof(rgb)) == 0,
				  "interlaced pixels identical");
			img_decoded_free(&dec);
		}
		free(png);
	}

	/* committed hostile fixtures, through img_probe + decode */
	CHECK(fixture_status("bad/truncated_mid_idat.png", &info, &err) == IMG_ERR_TRUNCATED,
		  "truncated_mid_idat.png is truncated: %s", err.message);
	CHECK(fixture_status("bad/truncated_after_ihdr.png", &info, &err) == IMG_ERR_TRUNCATED,
		  "truncated_after_ihdr.png is truncated: %s", err.message);
	CHECK(info.width == 1200 && info.height == 672, "IHDR still read: %ux%u", info.width, info.height);
	CHECK(fixture_status("bad/png_zero_width.png", &info, &err) == IMG_ERR_BAD_DIMENSIONS,
		  "png_zero_width.png is bad_dimensions: %s", err.message);
	CHECK(fixture_status("bad/pixel_flood_65000x65000.png", &info, &err) == IMG_ERR_BAD_DIMENSIONS,
		  "pixel_flood_65000x65000.png is bad_dimensions: %s", err.message);
	CHECK(info.width == 65000 && info.height == 65000, "flood dims reported");
	CHECK(fixture_status("bad/bomb_20000x20000_1bit.png", &info, &err) == IMG_ERR_TOO_MANY_PIXELS,
		  "bomb_20000x20000_1bit.png is too_many_pixels: %s", err.message);

}

/* ---------------------------------------------------------------- GIF */

static int
gif_write_cb(GifFileType *g, const GifByteType *d, int n)
{
	mb_put(g->UserData, d, (size_t) n);
	return n;
}

typedef struct gif_frame
{
	int			left,
				top,
				w,
				h;
	bool		interlace;
	int			transparent;	/* -1: no GCE transparency */
	const uint8_t *indices;		/* w*h, top-down */
} gif_frame;

static const GifColorType gif_colours[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {9, 8, 7}};

static uint8_t *
make_gif(int sw, int sh, const gif_frame *frames, int nframes, size_t *len)
{
	membuf		out = {0};
	int			error;
	GifFileType *g = EGifOpen(&out, gif_write_cb, &error);
	ColorMapObject *cmap = GifMakeMapObject(4, gif_colours);

	EGifSetGifVersion(g, true);
	EGifPutScreenDesc(g, sw, sh, 2, 0, cmap);
	for (int f = 0; f < nframes; f++)
	{
		const gif_frame *fr = &frames[f];
		static const int start[4] = {0, 4, 2, 1};
		static const int step[4] = {8, 8, 4, 2};

		if (fr->transparent >= 0)
		{
			GifByteType gce[4] = {1, 0, 0, (GifByteType) fr->transparent};

			EGifPutExtension(g, GRAPHICS_EXT_FUNC_CODE, 4, gce);
		}
		EGifPutImageDesc(g, fr->left, fr->top, fr->w, fr->h, fr->interlace, NULL);
		for (int p = fr->interlace ? 0 : 3; p < 4; p++)
			for (int y = fr->interlace ? start[p] : 0; y < fr->h; y += fr->interlace ? step[p] : 1)
				EGifPutLine(g, (GifPixelType *) fr->indices + (size_t) y * fr->w, fr->w);
	}
	EGifCloseFile(g, &error);
	GifFreeMapObject(cmap);
	*len = out.len;
	return out.data;
}

TEST_SUITE(codec_gif)
{
	img_limits	lim = default_limits();
	img_info	info;
	img_decoded dec;
	img_error	err;
	uint8_t		idx[12] = {0, 1, 2, 3, 3, 2, 1, 0, 1, 1, 2, 2};
	gif_frame	fr = {0, 0, 4, 3, false, -1, idx};
	uint8_t    *gif;
	size_t		len;
	img_status	st;

	/* opaque full frame → RGB */
	gif = make_gif(4, 3, &fr, 1, &len);
	st = probe_decode(gif, len, &lim, &info, &dec, &err);
	CHECK(st == IMG_OK, "gif decodes: %s", err.message);
	if (st == IMG_OK)
	{
		CHECK(info.width == 4 && info.height == 3 && info.frames == 1 && !info.has_alpha &&
			  info.colour == IMG_COLOUR_PALETTE, "gif 4x3, 1 frame, palette, opaque");
		CHECK(dec.layout == IMG_LAYOUT_RGB, "opaque gif → RGB");
		CHECK(px_eq(&dec, 0, 0, 255, 0, 0, -1) && px_eq(&dec, 3, 0, 9, 8, 7, -1) &&
			  px_eq(&dec, 1, 1, 0, 0, 255, -1) && px_eq(&dec, 3, 2, 0, 0, 255, -1),
			  "gif pixels from the colour table");
		img_decoded_free(&dec);
	}
	CHECK(accepted_prefixes(gif, len, 1, 1) == 0, "no strict prefix of a gif is accepted");
	/* missing trailer only */
	st = load_status(gif, len - 1, &lim, &err);
	CHECK(st == IMG_ERR_TRUNCATED, "gif without trailer is truncated, got %s", img_status_name(st));
	free(gif);

	/* transparent index → RGBA alpha 0 */
	fr.transparent = 3;
	gif = make_gif(4, 3, &fr, 1, &len);
	st = probe_decode(gif, len, &lim, &info, &dec, &err);
	CHECK(st == IMG_OK, "transparent gif decodes: %s", err.message);
	if (st == IMG_OK)
	{
		CHECK(info.has_alpha && dec.layout == IMG_LAYOUT_RGBA, "transparency → RGBA");
		CHECK(px_eq(&dec, 3, 0, 0, 0, 0, 0) && px_eq(&dec, 0, 1, 0, 0, 0, 0) &&
			  px_eq(&dec, 0, 0, 255, 0, 0, 255), "transparent index has alpha 0");
		img_decoded_free(&dec);
	}
	free(gif);

	/* frame smaller than the canvas; interlaced; second frame counted */
	{
		uint8_t		tall[2 * 9];
		gif_frame	frames[2] = {
			{1, 0, 2, 9, true, -1, tall},
			{0, 0, 4, 3, false, -1, idx},
		};

		for (int i = 0; i < 18; i++)
			tall[i] = (uint8_t) ((i / 2) % 3);	/* row y has index y % 3 */
		gif = make_gif(5, 10, frames, 2, &len);
		st = probe_decode(gif, len, &lim, &info, &dec, &err);
		CHECK(st == IMG_OK, "interlaced partial gif decodes: %s", err.message);
		if (st == IMG_OK)
		{
			CHECK(info.frames == 2 && info.progressive && info.has_alpha, "2 frames, interlaced, alpha");
			CHECK(dec.raster.width == 5 && dec.raster.height == 10 && dec.layout == IMG_LAYOUT_RGBA,
				  "logical screen canvas 5x10 RGBA");
			CHECK(px_eq(&dec, 0, 0, 0, 0, 0, 0) && px_eq(&dec, 4, 4, 0, 0, 0, 0) &&
				  px_eq(&dec, 1, 9, 0, 0, 0, 0), "uncovered canvas is transparent");
			CHECK(px_eq(&dec, 1, 0, 255, 0, 0, 255) && px_eq(&dec, 2, 1, 0, 255, 0, 255) &&
				  px_eq(&dec, 1, 5, 0, 0, 255, 255) && px_eq(&dec, 2, 8, 0, 0, 255, 255),
				  "interlaced rows land in place");
			img_decoded_free(&dec);
		}
		lim.max_frames = 1;
		st = load_status(gif, len, &lim, &err);
		CHECK(st == IMG_ERR_TOO_MANY_FRAMES, "2 frames over max_frames=1, got %s", img_status_name(st));
		lim = default_limits();
		free(gif);
	}

	/* LZW data that ends (EOI) before the frame is complete */
	{
		static const uint8_t short_lzw[] = {
			'G', 'I', 'F', '8', '9', 'a', 4, 0, 3, 0, 0x81, 0, 0,
			255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 8, 7,
			0x2C, 0, 0, 0, 0, 4, 0, 3, 0, 0,
			2, 1, 0x2C, 0, 0x3B
		};

		st = load_status(short_lzw, sizeof(short_lzw), &lim, &err);
		CHECK(st == IMG_ERR_TRUNCATED || st == IMG_ERR_CORRUPT,
			  "gif whose LZW data stops early is refused, got %s", img_status_name(st));
	}

	CHECK(fixture_status("bad/pixel_flood_65535x65535.gif", &info, &err) == IMG_ERR_BAD_DIMENSIONS,
		  "pixel_flood_65535x65535.gif is bad_dimensions: %s", err.message);
	CHECK(info.width == 65535 && info.height == 65535, "flood dims reported");
	st = fixture_status("bad/polyglot_gif_js.gif", &info, &err);
	CHECK(st == IMG_OK, "polyglot_gif_js.gif decodes (to be re-encoded): %s", err.message);
	CHECK(info.width == 10799 && info.height == 10 && info.has_comment,
		  "polyglot is 10799x10 with a comment block");
	{
		size_t		n;
		uint8_t    *data = read_fixture("bad/polyglot_gif_js.gif", &n);
		img_raster	r;
		img_load_options opt;

		img_load_options_default(&opt);
		CHECK(data != NULL, "bad/polyglot_gif_js.gif is readable");
		if (data)
		{
			st = img_load(data, n, &lim, &opt, &r, &info, &err);
			CHECK(st == IMG_OK && r.width == 10799 && r.height == 10 && r.channels == 3,
				  "img_load of the polyglot gives a 10799x10 RGB raster: %s", err.message);
			if (st == IMG_OK)
				img_raster_free(&r);
			free(data);
		}
	}
}

/* --------------------------------------------------------------- WebP */

static void
riff_chunk(membuf *b, const char *fourcc, const uint8_t *body, size_t n)
{
	mb_put(b, fourcc, 4);
	mb_le32(b, (uint32_t) n);
	mb_put(b, body, n);
	if (n & 1)
		mb_put(b, "", 1);
}

TEST_SUITE(codec_webp)
{
	img_limits	lim = default_limits();
	img_info	info;
	img_decoded dec;
	img_error	err;
	uint8_t		rgba[5 * 3 * 4];
	uint8_t    *webp = NULL;
	size_t		len;
	img_status	st;

	/* lossless RGBA (no fully transparent pixel, so RGB is exact) */
	rgba_pattern(rgba, 5, 3);
	len = WebPEncodeLosslessRGBA(rgba, 5, 3, 20, &webp);
	CHECK(len > 0, "libwebp encoded the test image");
	st = probe_decode(webp, len, &lim, &info, &dec, &err);
	CHECK(st == IMG_OK, "lossless webp decodes: %s", err.message);
	if (st == IMG_OK)
	{
		CHECK(info.format == IMG_FORMAT_WEBP && info.width == 5 && info.height == 3 &&
			  info.has_alpha && info.frames == 1, "webp 5x3 with alpha");
		CHECK(dec.layout == IMG_LAYOUT_RGBA && memcmp(dec.raster.pixels, rgba, sizeof(rgba)) == 0,
			  "lossless pixels identical");
		img_decoded_free(&dec);
	}
	CHECK(accepted_prefixes(webp, len, 1, 1) == 0, "no strict prefix of a webp is accepted");

	/* trailing bytes after the RIFF payload are reported, not fatal */
	{
		uint8_t    *t = malloc(len + 6);

		memcpy(t, webp, len);
		memcpy(t + len, "EXTRA!", 6);
		st = probe_decode(t, len + 6, &lim, &info, &dec, &err);
		CHECK(st == IMG_OK && info.has_trailing_data, "trailing data reported: %s", err.message);
		if (st == IMG_OK)
			img_decoded_free(&dec);
		free(t);
	}

	/* VP8X with ICCP, EXIF (orientation 3) and XMP around the VP8L chunk */
	{
		membuf		b = {0};
		membuf		exif = {0};
		uint8_t		vp8x[10] = {0x20 | 0x10 | 0x08 | 0x04, 0, 0, 0, 4, 0, 0, 2, 0, 0};
		uint8_t		icc[300];
		const char *xmp = "<x:xmpmeta xmlns:x='adobe:ns:meta/'></x:xmpmeta>";

		fake_icc(icc, sizeof(icc));
		exif_tiff_block(&exif, 3);
		mb_put(&b, "RIFF\0\0\0\0WEBP", 12);
		riff_chunk(&b, "VP8X", vp8x, sizeof(vp8x));
		riff_chunk(&b, "ICCP", icc, sizeof(icc));
		mb_put(&b, webp + 12, len - 12);	/* the VP8L chunk */
		riff_chunk(&b, "EXIF", exif.data, exif.len);
		riff_chunk(&b, "XMP ", (const uint8_t *) xmp, strlen(xmp));
		b.data[4] = (uint8_t) (b.len - 8);
		b.data[5] = (uint8_t) ((b.len - 8) >> 8);
		st = probe_decode(b.data, b.len, &lim, &info, &dec, &err);
		CHECK(st == IMG_OK, "VP8X webp decodes: %s", err.message);
		if (st == IMG_OK)
		{
			CHECK(info.has_icc && info.icc_bytes == sizeof(icc), "ICCP found (%zu bytes)", info.icc_bytes);
			CHECK(info.has_exif && info.orientation == 3, "EXIF orientation 3, got %u", info.orientation);
			CHECK(info.has_xmp && !info.has_trailing_data, "XMP found, no trailing data");
			CHECK(dec.orientation == 3 && dec.icc_len == sizeof(icc) &&
				  memcmp(dec.icc, icc, sizeof(icc)) == 0, "decode hands back orientation and ICC");
			CHECK(memcmp(dec.raster.pixels, rgba, sizeof(rgba)) == 0, "pixels identical");
			img_decoded_free(&dec);
		}
		/* ICC over the metadata limit */
		lim.max_metadata_bytes = 100;
		st = load_status(b.data, b.len, &lim, &err);
		CHECK(st == IMG_ERR_METADATA_TOO_LARGE, "ICCP over the limit, got %s", img_status_name(st));
		lim = default_limits();
		/* RIFF size larger than the data */
		b.data[5] = (uint8_t) (b.data[5] + 1);
		st = load_status(b.data, b.len, &lim, &err);
		CHECK(st == IMG_ERR_TRUNCATED, "RIFF size past the end is truncated, got %s", img_status_name(st));
		free(b.data);
		free(exif.data);
	}
	WebPFree(webp);

	/* opaque lossless → RGB layout */
	{
		uint8_t		rgb[4 * 2 * 4];

		for (int i = 0; i < 8; i++)
		{
			rgb[i * 4] = (uint8_t) (i * 30);
			rgb[i * 4 + 1] = (uint8_t) (200 - i);
			rgb[i * 4 + 2] = 7;
			rgb[i * 4 + 3] = 255;
		}
		webp = NULL;
		len = WebPEncodeLosslessRGBA(rgb, 4, 2, 16, &webp);
		st = probe_decode(webp, len, &lim, &info, &dec, &err);
		CHECK(st == IMG_OK && !info.has_alpha && dec.layout == IMG_LAYOUT_RGB,
			  "opaque webp decodes to RGB: %s", err.message);
		if (st == IMG_OK)
		{
			CHECK(px_eq(&dec, 3, 1, 210, 193, 7, -1) && px_eq(&dec, 0, 0, 0, 200, 7, -1),
				  "opaque webp pixels");
			img_decoded_free(&dec);
		}
		WebPFree(webp);
	}

	st = fixture_status("bad/webp_truncated.webp", &info, &err);
	CHECK(st == IMG_ERR_TRUNCATED, "webp_truncated.webp is truncated, got %s: %s",
		  img_status_name(st), err.message);
	st = fixture_status("formats/webp_lossy.webp", &info, &err);
	CHECK(st == IMG_OK && info.width == 1200 && info.height == 672 && !info.has_alpha,
		  "webp_lossy.webp 1200x672: %s", err.message);
	st = fixture_status("formats/webp_lossy_alpha.webp", &info, &err);
	CHECK(st == IMG_OK && info.has_alpha, "webp_lossy_alpha.webp has alpha: %s", err.message);
	st = fixture_status("formats/webp_exif_xmp_icc.webp", &info, &err);
	CHECK(st == IMG_OK && info.has_exif && info.has_gps && info.has_xmp && info.has_icc,
		  "webp_exif_xmp_icc.webp metadata found: %s", err.message);
}

/* ---------------------------------------------------------- HEIF/AVIF */

TEST_SUITE(codec_heif)
{
	static const struct
	{
		const char *file;
		img_format	format;
		bool		alpha;
	}			cases[] = {
		{"formats/heic_x265.heic", IMG_FORMAT_HEIF, false},
		{"formats/avif_aom.avif", IMG_FORMAT_AVIF, false},
		{"formats/avif_alpha.avif", IMG_FORMAT_AVIF, true},
	};
	img_limits	lim = default_limits();
	img_info	info;
	img_decoded dec;
	img_error	err;
	img_status	st;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		size_t		len;
		uint8_t    *data = read_fixture(cases[i].file, &len);

		CHECK(data != NULL, "fixture %s present", cases[i].file);
		if (data == NULL)
			continue;
		st = probe_decode(data, len, &lim, &info, &dec, &err);
		CHECK(st == IMG_OK, "%s decodes: %s", cases[i].file, err.message);
		if (st == IMG_OK)
		{
			uint64_t	sum = 0;
			bool		some_transparent = false;

			CHECK(info.format == cases[i].format && info.width == 1200 && info.height == 672 &&
				  info.frames == 1 && info.has_alpha == cases[i].alpha,
				  "%s: format, 1200x672, alpha %d", cases[i].file, cases[i].alpha);
			CHECK(dec.raster.width == 1200 && dec.raster.height == 672 &&
				  dec.layout == (cases[i].alpha ? IMG_LAYOUT_RGBA : IMG_LAYOUT_RGB) &&
				  dec.orientation == 1, "%s: decoded 1200x672, layout, orientation 1", cases[i].file);
			for (uint32_t y = 0; y < dec.raster.height; y += 7)
				for (uint32_t x = 0; x < dec.raster.width; x += 7)
				{
					const uint8_t *p = px_at(&dec, x, y);

					sum += p[0] + p[1] + p[2];
					if (dec.raster.channels == 4 && p[3] < 255)
						some_transparent = true;
				}
			CHECK(sum > 0, "%s: decoded picture is not black", cases[i].file);
			CHECK(some_transparent == cases[i].alpha, "%s: transparency as declared", cases[i].file);
			img_decoded_free(&dec);
		}
		/* a file cut in half, and one cut after its first kilobyte */
		CHECK(load_status(data, len / 2, &lim, &err) != IMG_OK, "%s cut in half is refused", cases[i].file);
		CHECK(load_status(data, 1024, &lim, &err) != IMG_OK, "%s cut to 1 KiB is refused", cases[i].file);
		/* a smaller side limit is applied by libheif's context limit and by us */
		lim.max_side = 1000;
		st = load_status(data, len, &lim, &err);
		CHECK(st == IMG_ERR_BAD_DIMENSIONS, "%s over max_side=1000, got %s", cases[i].file,
			  img_status_name(st));
		lim = default_limits();
		free(data);
	}
}

/* --------------------------------------------------------------- TIFF */

typedef struct tiff_spec
{
	uint32_t	w,
				h;
	uint16_t	spp;
	uint16_t	photometric;
	uint16_t	orientation;	/* 0: no tag */
	bool		alpha;			/* last sample is unassociated alpha */
	const uint8_t *pixels;		/* contiguous, w*spp bytes a row */
	const uint8_t *icc;
	uint32_t	icc_len;
	bool		xmp_iptc;
	int			pages;
} tiff_spec;

static uint8_t *
make_tiff(const tiff_spec *s, size_t *len)
{
	char		path[] = "/tmp/imgmod_test_XXXXXX";
	int			fd = mkstemp(path);
	TIFF	   *tif;
	uint8_t    *data;

	if (fd < 0)
		return NULL;
	close(fd);
	tif = TIFFOpen(path, "w");
	for (int page = 0; tif && page < (s->pages ? s->pages : 1); page++)
	{
		TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, s->w);
		TIFFSetField(tif, TIFFTAG_IMAGELENGTH, s->h);
		TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 8);
		TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, s->spp);
		TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, s->photometric);
		TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
		TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_LZW);
		TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, 2);
		if (s->photometric == PHOTOMETRIC_SEPARATED)
			TIFFSetField(tif, TIFFTAG_INKSET, INKSET_CMYK);
		if (s->orientation)
			TIFFSetField(tif, TIFFTAG_ORIENTATION, s->orientation);
		if (s->alpha)
		{
			uint16_t	extra[1] = {EXTRASAMPLE_UNASSALPHA};

			TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, 1, extra);
		}
		if (s->icc)
			TIFFSetField(tif, TIFFTAG_ICCPROFILE, s->icc_len, s->icc);
		if (s->xmp_iptc)
		{
			static const char xmp[] = "<x:xmpmeta xmlns:x='adobe:ns:meta/'/>";
			static const uint32_t iptc[2] = {0x1c020000, 0};

			TIFFSetField(tif, TIFFTAG_XMLPACKET, (uint32_t) strlen(xmp), xmp);
			TIFFSetField(tif, TIFFTAG_RICHTIFFIPTC, (uint32_t) 2, iptc);
		}
		for (uint32_t y = 0; y < s->h; y++)
			TIFFWriteScanline(tif, (void *) (s->pixels + (size_t) y * s->w * s->spp), y, 0);
		TIFFWriteDirectory(tif);
	}
	if (tif)
		TIFFClose(tif);
	data = read_file(path, len);
	unlink(path);
	return data;
}

TEST_SUITE(codec_tiff)
{
	img_limits	lim = default_limits();
	img_info	info;
	img_decoded dec;
	img_error	err;
	uint8_t		rgb[4 * 3 * 3];
	uint8_t		icc[160];
	uint8_t    *tiff;
	size_t		len;
	img_status	st;

	for (size_t i = 0; i < sizeof(rgb); i++)
		rgb[i] = (uint8_t) (i * 7 + 1);
	fake_icc(icc, sizeof(icc));

	/* RGB, LZW, ICC + XMP + IPTC, 2 pages */
	{
		tiff_spec	s = {4, 3, 3, PHOTOMETRIC_RGB, 0, false, rgb, icc, sizeof(icc), true, 2};

		tiff = make_tiff(&s, &len);
		CHECK(tiff != NULL, "libtiff wrote the rgb test image");
		st = probe_decode(tiff, len, &lim, &info, &dec, &err);
		CHECK(st == IMG_OK, "rgb tiff decodes: %s", err.message);
		if (st == IMG_OK)
		{
			CHECK(info.width == 4 && info.height == 3 && info.colour == IMG_COLOUR_RGB &&
				  info.bit_depth == 8 && !info.has_alpha && info.frames == 2 && info.orientation == 1,
				  "tiff 4x3 rgb, 2 pages (frames=%u)", info.frames);
			CHECK(info.has_icc && info.icc_bytes == sizeof(icc) && info.has_xmp && info.has_iptc,
				  "icc, xmp and iptc tags found");
			CHECK(dec.layout == IMG_LAYOUT_RGB && dec.raster.stride == 12 &&
				  memcmp(dec.raster.pixels, rgb, sizeof(rgb)) == 0, "rgb pixels identical");
			CHECK(dec.icc_len == sizeof(icc) && memcmp(dec.icc, icc, sizeof(icc)) == 0,
				  "icc handed back");
			img_decoded_free(&dec);
		}
		CHECK(accepted_prefixes(tiff, len, 1, 1) == 0, "no strict prefix of a tiff is accepted");
		free(tiff);
	}

	/* orientation 3 and 6: pixels stay in stored order, the tag is handed on */
	for (uint16_t o = 2; o <= 8; o++)
	{
		tiff_spec	s = {4, 3, 3, PHOTOMETRIC_RGB, o, false, rgb, NULL, 0, false, 1};

		tiff = make_tiff(&s, &len);
		st = probe_decode(tiff, len, &lim, &info, &dec, &err);
		CHECK(st == IMG_OK, "tiff orientation %u decodes: %s", o, err.message);
		if (st == IMG_OK)
		{
			CHECK(info.orientation == o && dec.orientation == o, "orientation %u reported and handed on", o);
			CHECK(dec.raster.width == 4 && memcmp(dec.raster.pixels, rgb, sizeof(rgb)) == 0,
				  "orientation %u: pixels in stored order", o);
			img_decoded_free(&dec);
		}
		free(tiff);
	}

	/* RGBA with unassociated alpha → straight alpha back */
	{
		uint8_t		rgba[2 * 2 * 4] = {
			10, 20, 30, 255, 200, 100, 50, 0,
			90, 180, 240, 128, 1, 2, 3, 255
		};
		tiff_spec	s = {2, 2, 4, PHOTOMETRIC_RGB, 0, true, rgba, NULL, 0, false, 1};

		tiff = make_tiff(&s, &len);
		st = probe_decode(tiff, len, &lim, &info, &dec, &err);
		CHECK(st == IMG_OK, "rgba tiff decodes: %s", err.message);
		if (st == IMG_OK)
		{
			const uint8_t *p = px_at(&dec, 0, 1);

			CHECK(info.has_alpha && dec.layout == IMG_LAYOUT_RGBA, "alpha → RGBA");
			CHECK(px_eq(&dec, 0, 0, 10, 20, 30, 255) && px_eq(&dec, 1, 1, 1, 2, 3, 255) &&
				  px_at(&dec, 1, 0)[3] == 0, "opaque pixels exact, transparent alpha 0");
			CHECK(abs(p[0] - 90) <= 2 && abs(p[1] - 180) <= 2 && abs(p[2] - 240) <= 2 && p[3] == 128,
				  "half-transparent pixel un-premultiplied: %u %u %u %u", p[0], p[1], p[2], p[3]);
			img_decoded_free(&dec);
		}
		free(tiff);
	}

	/* CMYK: naive conversion by libtiff, CMYK profile dropped */
	{
		uint8_t		cmyk[2 * 1 * 4] = {255, 0, 0, 0, 0, 0, 0, 255};
		tiff_spec	s = {2, 1, 4, PHOTOMETRIC_SEPARATED, 0, false, cmyk, icc, sizeof(icc), false, 1};

		tiff = make_tiff(&s, &len);
		st = probe_decode(tiff, len, &lim, &info, &dec, &err);
		CHECK(st == IMG_OK, "cmyk tiff decodes: %s", err.message);
		if (st == IMG_OK)
		{
			CHECK(info.colour == IMG_COLOUR_CMYK && info.has_icc, "cmyk with a profile");
			CHECK(dec.layout == IMG_LAYOUT_RGB && px_eq(&dec, 0, 0, 0, 255, 255, -1) &&
				  px_eq(&dec, 1, 0, 0, 0, 0, -1), "cyan → (0,255,255), black → (0,0,0)");
			CHECK(dec.icc == NULL, "the cmyk profile is not applied to rgb");
			img_decoded_free(&dec);
		}
		free(tiff);
	}

	/* damage: a strip byte count past the end of the data */
	{
		tiff_spec	s = {4, 3, 3, PHOTOMETRIC_RGB, 0, false, rgb, NULL, 0, false, 1};
		uint8_t		garbage[64];

		tiff = make_tiff(&s, &len);
		/* LZW data lives right after the 8-byte header: scramble it */
		memset(garbage, 0xFF, sizeof(garbage));
		memcpy(tiff + 8, garbage, 16);
		st = load_status(tiff, len, &lim, &err);
		CHECK(st == IMG_ERR_CORRUPT || st == IMG_ERR_TRUNCATED,
			  "tiff with scrambled LZW data is refused, got %s", img_status_name(st));
		free(tiff);
	}

}

/* ---------------------------------------------------------------- BMP */

/* Header for a w x h (h < 0: top-down) BMP with the given info header size. */
static void
bmp_headers(membuf *b, uint32_t hsize, int32_t w, int32_t h, uint16_t bpp,
			uint32_t compression, uint32_t pixel_offset, uint32_t colours)
{
	mb_put(b, "BM", 2);
	mb_le32(b, 0);				/* file size: unused */
	mb_le32(b, 0);
	mb_le32(b, pixel_offset);
	mb_le32(b, hsize);
	mb_le32(b, (uint32_t) w);
	mb_le32(b, (uint32_t) h);
	mb_le16(b, 1);
	mb_le16(b, bpp);
	mb_le32(b, compression);
	mb_le32(b, 0);
	mb_le32(b, 2835);
	mb_le32(b, 2835);
	mb_le32(b, colours);
	mb_le32(b, 0);
}

TEST_SUITE(codec_bmp)
{
	img_limits	lim = default_limits();
	img_info	info;
	img_decoded dec;
	img_error	err;
	membuf		b = {0};
	img_status	st;

	/* 24-bit bottom-up 3x2: rows padded to 12 bytes, BGR order */
	bmp_headers(&b, 40, 3, 2, 24, 0, 54, 0);
	/* bottom row (y=1): red green blue */
	mb_put(&b, (uint8_t[]) {0, 0, 255, 0, 255, 0, 255, 0, 0, 0, 0, 0}, 12);
	/* top row (y=0): white black (10,20,30) */
	mb_put(&b, (uint8_t[]) {255, 255, 255, 0, 0, 0, 30, 20, 10, 0, 0, 0}, 12);
	st = probe_decode(b.data, b.len, &lim, &info, &dec, &err);
	CHECK(st == IMG_OK, "24-bit bmp decodes: %s", err.message);
	if (st == IMG_OK)
	{
		CHECK(info.format == IMG_FORMAT_BMP && info.width == 3 && info.height == 2 && !info.has_alpha,
			  "bmp 3x2 rgb");
		CHECK(dec.layout == IMG_LAYOUT_RGB && px_eq(&dec, 0, 0, 255, 255, 255, -1) &&
			  px_eq(&dec, 2, 0, 10, 20, 30, -1) && px_eq(&dec, 0, 1, 255, 0, 0, -1) &&
			  px_eq(&dec, 1, 1, 0, 255, 0, -1) && px_eq(&dec, 2, 1, 0, 0, 255, -1),
			  "bottom-up rows flipped, BGR swapped");
		img_decoded_free(&dec);
	}
	CHECK(accepted_prefixes(b.data, b.len, 1, 1) == 0, "no strict prefix of a bmp is accepted");
	st = load_status(b.data, b.len - 1, &lim, &err);
	CHECK(st == IMG_ERR_TRUNCATED, "short pixel data is truncated, got %s", img_status_name(st));

	/* 32-bit BI_RGB top-down: the fourth byte is padding */
	b.len = 0;
	bmp_headers(&b, 40, 2, -2, 32, 0, 54, 0);
	mb_put(&b, (uint8_t[]) {1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0, 10, 11, 12, 0}, 16);
	st = probe_decode(b.data, b.len, &lim, &info, &dec, &err);
	CHECK(st == IMG_OK, "32-bit top-down bmp decodes: %s", err.message);
	if (st == IMG_OK)
	{
		CHECK(dec.layout == IMG_LAYOUT_RGB && px_eq(&dec, 0, 0, 3, 2, 1, -1) &&
			  px_eq(&dec, 1, 1, 12, 11, 10, -1), "top-down rows in order, no alpha");
		img_decoded_free(&dec);
	}

	/* 8-bit palette, 3 colours, index 5 out of range → black */
	b.len = 0;
	bmp_headers(&b, 40, 3, 1, 8, 0, 54 + 12, 3);
	mb_put(&b, (uint8_t[]) {255, 0, 0, 0, 0, 255, 0, 0, 0, 0, 255, 0}, 12);
	mb_put(&b, (uint8_t[]) {2, 0, 5, 0}, 4);
	st = probe_decode(b.data, b.len, &lim, &info, &dec, &err);
	CHECK(st == IMG_OK, "8-bit bmp decodes: %s", err.message);
	if (st == IMG_OK)
	{
		CHECK(info.colour == IMG_COLOUR_PALETTE, "palette model");
		CHECK(px_eq(&dec, 0, 0, 255, 0, 0, -1) && px_eq(&dec, 1, 0, 0, 0, 255, -1) &&
			  px_eq(&dec, 2, 0, 0, 0, 0, -1), "palette lookup");
		img_decoded_free(&dec);
	}

	/* V5 BI_BITFIELDS with alpha mask and an embedded profile */
	{
		uint8_t		icc[140];
		uint32_t	pix_off = 14 + 124;

		fake_icc(icc, sizeof(icc));
		b.len = 0;
		bmp_headers(&b, 124, 2, 1, 32, 3, pix_off, 0);
		mb_le32(&b, 0x00ff0000);
		mb_le32(&b, 0x0000ff00);
		mb_le32(&b, 0x000000ff);
		mb_le32(&b, 0xff000000);
		mb_le32(&b, 0x4D424544);	/* PROFILE_EMBEDDED */
		while (b.len < 14 + 108)
			mb_put(&b, "", 1);
		mb_le32(&b, 4);			/* intent */
		mb_le32(&b, 124 + 8);	/* profile offset from the info header */
		mb_le32(&b, sizeof(icc));
		mb_le32(&b, 0);
		mb_put(&b, (uint8_t[]) {30, 20, 10, 128, 3, 2, 1, 255}, 8);
		mb_put(&b, icc, sizeof(icc));
		st = probe_decode(b.data, b.len, &lim, &info, &dec, &err);
		CHECK(st == IMG_OK, "V5 bitfields bmp decodes: %s", err.message);
		if (st == IMG_OK)
		{
			CHECK(info.has_alpha && info.has_icc && info.icc_bytes == sizeof(icc), "alpha and icc");
			CHECK(dec.layout == IMG_LAYOUT_RGBA && px_eq(&dec, 0, 0, 10, 20, 30, 128) &&
				  px_eq(&dec, 1, 0, 1, 2, 3, 255), "bitfield pixels with alpha");
			CHECK(dec.icc_len == sizeof(icc) && memcmp(dec.icc, icc, sizeof(icc)) == 0, "profile copied");
			img_decoded_free(&dec);
		}
		/* an alpha channel that is all zero means opaque */
		b.data[pix_off + 3] = 0;
		b.data[pix_off + 7] = 0;
		st = probe_decode(b.data, b.len, &lim, &info, &dec, &err);
		if (st == IMG_OK)
		{
			CHECK(px_eq(&dec, 0, 0, 10, 20, 30, 255), "all-zero alpha treated as opaque");
			img_decoded_free(&dec);
		}
		/* profile pointing past the end */
		b.len -= 10;
		st = load_status(b.data, b.len, &lim, &err);
		CHECK(st == IMG_ERR_TRUNCATED, "profile past the end is truncated, got %s", img_status_name(st));
	}

	/* unsupported variants, each with a clear message */
	{
		static const struct
		{
			uint32_t	hsize;
			uint16_t	bpp;
			uint32_t	compression;
		}			refused[] = {
			{40, 8, 1}, {40, 4, 2}, {40, 16, 0}, {40, 1, 0}, {40, 24, 4}, {40, 24, 5}, {40, 16, 3}
		};

		for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		{
			b.len = 0;
			bmp_headers(&b, refused[i].hsize, 2, 2, refused[i].bpp, refused[i].compression, 54 + 1024, 0);
			for (int k = 0; k < 1100; k++)
				mb_put(&b, "", 1);
			st = load_status(b.data, b.len, &lim, &err);
			CHECK(st == IMG_ERR_UNSUPPORTED_FORMAT, "bmp %u-bit compression %u is unsupported, got %s",
				  refused[i].bpp, refused[i].compression, img_status_name(st));
		}
		/* OS/2 core header */
		b.len = 0;
		mb_put(&b, "BM\0\0\0\0\0\0\0\0\x1a\0\0\0\x0c\0\0\0\x02\0\x02\0\x01\0\x18\0", 26);
		for (int k = 0; k < 24; k++)
			mb_put(&b, "", 1);
		st = load_status(b.data, b.len, &lim, &err);
		CHECK(st == IMG_ERR_UNSUPPORTED_FORMAT && strstr(err.message, "OS/2") != NULL,
			  "OS/2 bmp unsupported: %s", err.message);
		/* negative width */
		b.len = 0;
		bmp_headers(&b, 40, -2, 2, 24, 0, 54, 0);
		for (int k = 0; k < 16; k++)
			mb_put(&b, "", 1);
		st = load_status(b.data, b.len, &lim, &err);
		CHECK(st == IMG_ERR_BAD_DIMENSIONS, "negative width is bad_dimensions, got %s", img_status_name(st));
	}
	free(b.data);

	st = fixture_status("bad/bmp_huge_dims.bmp", &info, &err);
	CHECK(st == IMG_ERR_BAD_DIMENSIONS, "bmp_huge_dims.bmp is bad_dimensions, got %s: %s",
		  img_status_name(st), err.message);
	CHECK(info.width == 2147483647u && info.height == 2147483647u, "claimed dims reported: %ux%u",
		  info.width, info.height);
}

/*
 * Probe + decode, then img_normalise, on a heap copy of exactly n bytes, so
 * that AddressSanitizer reports any read past the end of the data.  Returns
 * the probe/decode verdict; *normalised receives img_normalise's.
 */
static img_status
exact_length_verdicts(const uint8_t *data, size_t n, img_status *normalised,
					  img_error *err)
{
	img_limits	lim = default_limits();
	img_normalise_options opt = {.master_quality = 90, .background = {255, 255, 255}};
	img_normalised out;
	uint8_t    *copy = malloc(n ? n : 1);
	img_status	st;

	if (copy == NULL)
		abort();
	memcpy(copy, data, n);
	st = load_status(copy, n, &lim, err);
	*normalised = img_normalise(copy, n, &lim, &opt, &out, err);
	CHECK(*normalised == IMG_OK || (out.master.data == NULL && out.master.len == 0),
		  "a refused bmp of %zu bytes leaves no master", n);
	img_normalised_free(&out);
	free(copy);
	return st;
}

/*
 * A 1x1 32-bit BMP with the given info header size and compression, its
 * masks where that header puts them: inside a 52-byte header only red,
 * green and blue fit, so an alpha mask (BI_ALPHABITFIELDS) follows it.
 */
static void
bmp_bitfields_1x1(membuf *b, uint32_t hsize, uint32_t compression)
{
	static const uint32_t masks[4] = {0x00ff0000, 0x0000ff00, 0x000000ff, 0xff000000};
	size_t		nmasks = compression == 6 || hsize >= 56 ? 4 : 3;
	size_t		in_header = (hsize - 40) / 4 < nmasks ? (hsize - 40) / 4 : nmasks;
	uint32_t	pixel_offset = 14 + hsize + (uint32_t) (nmasks - in_header) * 4;

	b->len = 0;
	bmp_headers(b, hsize, 1, 1, 32, compression, pixel_offset, 0);
	for (size_t i = 0; i < in_header; i++)
		mb_le32(b, masks[i]);
	while (b->len < 14 + hsize)
		mb_put(b, "", 1);
	for (size_t i = in_header; i < nmasks; i++)
		mb_le32(b, masks[i]);
	mb_put(b, (uint8_t[]) {30, 20, 10, 200}, 4);
}

TEST_SUITE(bmp_header_bounds)
{
	static const uint32_t header_sizes[] = {40, 52, 56, 108, 124};
	static const uint32_t compressions[] = {3, 6};	/* BI_BITFIELDS, BI_ALPHABITFIELDS */
	img_limits	lim = default_limits();
	img_info	info;
	img_decoded dec;
	img_error	err;
	img_status	st;
	img_status	normalised;
	membuf		b = {0};
	size_t		len;
	uint8_t    *data;

	/* the file from the security review: V2 header, alpha mask past the end */
	data = read_fixture("bad/bmp_v2_alphabitfields_truncated.bmp", &len);
	CHECK(data != NULL && len == 66, "bmp_v2_alphabitfields_truncated.bmp is the 66-byte file");
	if (data != NULL)
	{
		st = exact_length_verdicts(data, len, &normalised, &err);
		CHECK(st == IMG_ERR_TRUNCATED, "V2 header + BI_ALPHABITFIELDS without its alpha mask is truncated, got %s: %s",
			  img_status_name(st), err.message);
		CHECK(normalised == IMG_ERR_TRUNCATED, "img_normalise refuses it as truncated, got %s",
			  img_status_name(normalised));
		CHECK(strstr(err.message, "colour masks") != NULL, "the message names the masks: %s", err.message);
		free(data);
	}

	/* the generated seed BMPs (test/fixtures/generate.py) decode as made */
	st = fixture_status("formats/bmp_24bit_5x3.bmp", &info, &err);
	CHECK(st == IMG_OK && info.width == 5 && info.height == 3 && !info.has_alpha,
		  "bmp_24bit_5x3.bmp: 5x3 rgb, got %s (%s)", img_status_name(st), err.message);
	st = fixture_status("formats/bmp_v4_bitfields_alpha_4x3.bmp", &info, &err);
	CHECK(st == IMG_OK && info.width == 4 && info.height == 3 && info.has_alpha,
		  "bmp_v4_bitfields_alpha_4x3.bmp: 4x3 with alpha, got %s (%s)", img_status_name(st), err.message);

	/*
	 * Every header size with both bitfield compressions: the whole file
	 * decodes to the expected pixel, and every strict prefix of it is
	 * refused without a read past its end.
	 */
	for (size_t h = 0; h < sizeof(header_sizes) / sizeof(header_sizes[0]); h++)
	{
		for (size_t c = 0; c < sizeof(compressions) / sizeof(compressions[0]); c++)
		{
			uint32_t	hsize = header_sizes[h];
			bool		alpha = compressions[c] == 6 || hsize >= 56;
			int			accepted = 0;

			bmp_bitfields_1x1(&b, hsize, compressions[c]);
			st = probe_decode(b.data, b.len, &lim, &info, &dec, &err);
			CHECK(st == IMG_OK, "%u-byte header, compression %u decodes: %s", hsize, compressions[c],
				  err.message);
			if (st == IMG_OK)
			{
				CHECK(px_eq(&dec, 0, 0, 10, 20, 30, alpha ? 200 : -1) && info.has_alpha == alpha,
					  "%u-byte header, compression %u: pixel (10,20,30) alpha %s", hsize,
					  compressions[c], alpha ? "200" : "none");
				img_decoded_free(&dec);
			}
			for (size_t n = 0; n < b.len; n++)
			{
				st = exact_length_verdicts(b.data, n, &normalised, &err);
				if (st == IMG_OK || normalised == IMG_OK)
					accepted++;
			}
			CHECK(accepted == 0, "%u-byte header, compression %u: %d strict prefixes accepted",
				  hsize, compressions[c], accepted);
		}
	}
	free(b.data);
}

/* ------------------------------------- codec checks on shared corpus files */

/*
 * The format checks whose files are too large to commit (bombs, 1200x672
 * samples, animations): run by make -C test/unit corpus, which fails when
 * the corpus is absent.  read_corpus_file fails the check for a missing file.
 */
CORPUS_SUITE(codec_corpus_files)
{
	img_limits	lim = default_limits();
	img_info	info;
	img_decoded dec;
	img_error	err;
	img_status	st;
	size_t		len;

	/* the large corpus files that are not committed */
	{
		static const struct
		{
			const char *file;
			img_status	want;
		}			cases[] = {
			{"bad/png_bad_idat_crc.png", IMG_ERR_CORRUPT},
			{"bad/bomb_20000x20000_rgb8.png", IMG_ERR_TOO_MANY_PIXELS},
			{"bad/huge_ztxt_1GiB.png", IMG_OK},
			{"bad/huge_iccp_256MiB.png", IMG_OK},
			{"bad/truncated_mid_idat.png", IMG_ERR_TRUNCATED},
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		{
			uint8_t    *data = read_corpus_file(cases[i].file, &len);

			if (data == NULL)
				continue;
			st = load_status(data, len, &lim, &err);
			CHECK(st == cases[i].want, "%s: want %s, got %s (%s)", cases[i].file,
				  img_status_name(cases[i].want), img_status_name(st), err.message);
			free(data);
		}
	}
	{
		uint8_t    *data = read_corpus_file("exif/png_exif_xmp_orient6.png", &len);

		if (data)
		{
			st = probe_decode(data, len, &lim, &info, &dec, &err);
			CHECK(st == IMG_OK, "png_exif_xmp_orient6.png decodes: %s", err.message);
			if (st == IMG_OK)
			{
				CHECK(info.orientation == 6 && dec.orientation == 6 && info.has_gps &&
					  info.has_xmp && info.has_comment && info.has_icc && dec.icc_len == info.icc_bytes,
					  "orientation 6, gps, xmp, text, icc");
				img_decoded_free(&dec);
			}
			free(data);
		}
	}
	{
		uint8_t    *data = read_corpus_file("bad/gif_truncated.gif", &len);

		if (data)
		{
			st = load_status(data, len, &lim, &err);
			CHECK(st == IMG_ERR_TRUNCATED, "gif_truncated.gif is truncated, got %s", img_status_name(st));
			free(data);
		}
		data = read_corpus_file("formats/gif_animated.gif", &len);
		if (data)
		{
			st = probe_decode(data, len, &lim, &info, &dec, &err);
			CHECK(st == IMG_OK && info.frames == 8 && dec.raster.width == 600,
				  "gif_animated.gif: 8 frames, first decoded: %s", err.message);
			if (st == IMG_OK)
				img_decoded_free(&dec);
			free(data);
		}
	}
	{
		uint8_t    *data = read_corpus_file("formats/webp_animated.webp", &len);

		if (data)
		{
			st = probe_decode(data, len, &lim, &info, &dec, &err);
			CHECK(st == IMG_OK && info.frames == 8 && dec.raster.width == 600 &&
				  dec.raster.height == 336 && dec.layout == IMG_LAYOUT_RGBA,
				  "webp_animated.webp: 8 frames, first frame 600x336 RGBA: %s", err.message);
			if (st == IMG_OK)
				img_decoded_free(&dec);
			lim.max_frames = 4;
			st = load_status(data, len, &lim, &err);
			CHECK(st == IMG_ERR_TOO_MANY_FRAMES, "8 frames over max_frames=4, got %s", img_status_name(st));
			lim = default_limits();
			free(data);
		}
	}
	{
		static const char *const files[] = {
			"formats/tiff_rgb8_lzw.tif", "formats/tiff_rgb16_deflate.tif", "formats/tiff_cmyk_lzw.tif"
		};

		for (size_t i = 0; i < 3; i++)
		{
			uint8_t    *data = read_corpus_file(files[i], &len);

			if (data == NULL)
				continue;
			st = probe_decode(data, len, &lim, &info, &dec, &err);
			CHECK(st == IMG_OK && dec.raster.width == 1200 && dec.raster.height == 672,
				  "%s decodes 1200x672: %s", files[i], err.message);
			if (st == IMG_OK)
				img_decoded_free(&dec);
			free(data);
		}
	}
	{
		static const char *const files[] = {"formats/bmp_rgb24.bmp", "formats/bmp_rgba32.bmp"};

		for (size_t i = 0; i < 2; i++)
		{
			uint8_t    *data = read_corpus_file(files[i], &len);

			if (data == NULL)
				continue;
			st = probe_decode(data, len, &lim, &info, &dec, &err);
			CHECK(st == IMG_OK && dec.raster.width == 1200 && dec.raster.height == 672 &&
				  dec.raster.channels == (i == 0 ? 3u : 4u), "%s decodes: %s", files[i], err.message);
			if (st == IMG_OK)
				img_decoded_free(&dec);
			free(data);
		}
	}
}

/* ----------------------------------------------------- PngSuite (corpus) */

CORPUS_SUITE(codec_pngsuite)
{
	img_limits	lim = default_limits();
	char		dir[1024];
	DIR		   *d;
	struct dirent *e;
	int			seen = 0;

	snprintf(dir, sizeof(dir), "%s/peer/pngsuite/png", corpus_dir());
	d = opendir(dir);
	if (d == NULL)
	{
		snprintf(dir, sizeof(dir), "%s/peer/pngsuite", corpus_dir());
		d = opendir(dir);
	}
	CHECK(d != NULL, "%s can be listed", dir);
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL)
	{
		char		path[2048];
		size_t		len;
		uint8_t    *data;
		img_info	info;
		img_decoded dec;
		img_error	err;
		img_status	st;
		size_t		n = strlen(e->d_name);

		if (n < 5 || strcmp(e->d_name + n - 4, ".png") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		data = read_file(path, &len);
		CHECK(data != NULL, "%s is readable", path);
		if (data == NULL)
			continue;
		seen++;
		memset(&err, 0, sizeof(err));
		st = probe_decode(data, len, &lim, &info, &dec, &err);
		if (e->d_name[0] == 'x')
			CHECK(st != IMG_OK, "pngsuite %s must be refused", e->d_name);
		else
		{
			CHECK(st == IMG_OK, "pngsuite %s decodes: %s", e->d_name, err.message);
			if (st == IMG_OK)
				CHECK(len >= 24 && dec.raster.width == img_be32(data + 16) &&
					  dec.raster.height == img_be32(data + 20),
					  "pngsuite %s has its IHDR size", e->d_name);
		}
		if (st == IMG_OK)
			img_decoded_free(&dec);
		free(data);
	}
	closedir(d);
	CHECK(seen > 100, "pngsuite files found (%d)", seen);
}

/* ------------------------------------------- allocation failure, all codecs */

static int	codec_alloc_budget;

static void *
codec_failing_alloc(size_t size, void *ctx)
{
	(void) ctx;
	if (codec_alloc_budget-- <= 0)
		return NULL;
	return malloc(size);
}

static void *
codec_failing_realloc(void *ptr, size_t size, void *ctx)
{
	(void) ctx;
	if (codec_alloc_budget-- <= 0)
		return NULL;
	return realloc(ptr, size);
}

static void
codec_plain_free(void *ptr, void *ctx)
{
	(void) ctx;
	free(ptr);
}

TEST_SUITE(codec_alloc_failure)
{
	/*
	 * Fail the n-th img_alloc for every n until probe + decode succeeds:
	 * each attempt must fail cleanly (out_of_memory, or the profile quietly
	 * dropped where the codec treats it as optional) and leak nothing; the
	 * sanitizer and valgrind runs catch leaks.
	 */
	static const img_allocator failing = {codec_failing_alloc, codec_failing_realloc, codec_plain_free, NULL};
	img_limits	lim = default_limits();
	uint8_t    *inputs[6] = {0};
	size_t		lens[6] = {0};
	const char *names[6] = {"png", "gif", "webp", "tiff", "bmp", "heif"};
	uint8_t		rgba[5 * 3 * 4];
	uint8_t		icc[160];

	rgba_pattern(rgba, 5, 3);
	fake_icc(icc, sizeof(icc));
	{
		size_t		plen;
		uint8_t    *png = make_png(5, 3, PNG_COLOR_TYPE_RGBA, 8, false, rgba, 20, NULL, 0, NULL, 0, &plen);
		membuf		extra = {0};
		membuf		body = {0};

		mb_put(&body, "ICC\0\0", 5);
		zlib_zeros(&body, 0, icc, sizeof(icc));
		png_chunk(&extra, "iCCP", body.data, body.len);
		inputs[0] = png_splice(png, plen, &extra, NULL, &lens[0]);
		free(png);
		free(extra.data);
		free(body.data);
	}
	{
		uint8_t		idx[12] = {0, 1, 2, 3, 3, 2, 1, 0, 1, 1, 2, 2};
		gif_frame	fr = {1, 0, 3, 3, false, 3, idx};

		inputs[1] = make_gif(4, 3, &fr, 1, &lens[1]);
	}
	{
		uint8_t    *w = NULL;

		lens[2] = WebPEncodeLosslessRGBA(rgba, 5, 3, 20, &w);
		inputs[2] = malloc(lens[2]);
		memcpy(inputs[2], w, lens[2]);
		WebPFree(w);
	}
	{
		uint8_t		rgb[4 * 3 * 3] = {0};
		tiff_spec	s = {4, 3, 3, PHOTOMETRIC_RGB, 6, false, rgb, icc, sizeof(icc), false, 1};

		inputs[3] = make_tiff(&s, &lens[3]);
	}
	{
		membuf		b = {0};

		bmp_headers(&b, 40, 2, 2, 24, 0, 54, 0);
		mb_put(&b, (uint8_t[16]) {0}, 16);
		inputs[4] = b.data;
		lens[4] = b.len;
	}
	inputs[5] = read_fixture("formats/avif_aom.avif", &lens[5]);

	for (int c = 0; c < 6; c++)
	{
		bool		done = false;
		int			failures = 0;

		if (inputs[c] == NULL)
		{
			CHECK(false, "%s input built", names[c]);
			continue;
		}
		for (int n = 0; n < 30 && !done; n++)
		{
			img_info	info;
			img_decoded dec;
			img_error	err;
			img_status	st;

			img_set_allocator(&failing);
			codec_alloc_budget = n;
			st = probe_decode(inputs[c], lens[c], &lim, &info, &dec, &err);
			img_set_allocator(NULL);
			if (st == IMG_OK)
			{
				done = true;
				CHECK(dec.raster.width > 0 && dec.raster.pixels != NULL, "%s decoded after %d failures",
					  names[c], failures);
				img_decoded_free(&dec);
			}
			else
			{
				failures++;
				CHECK(st == IMG_ERR_NO_MEMORY, "%s with allocation %d failing: out_of_memory, got %s (%s)",
					  names[c], n, img_status_name(st), err.message);
			}
		}
		CHECK(done && failures > 0, "%s: allocation failures injected (%d) and then success", names[c], failures);
		free(inputs[c]);
	}
}
