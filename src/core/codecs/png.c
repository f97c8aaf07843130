/*
 * png.c — PNG input for the image core (libpng 1.6).
 *
 * The probe never calls libpng: it validates the signature and IHDR itself
 * and walks the chunk headers (lengths and types only) to find metadata,
 * truncation and trailing bytes.  The only data it inflates is an iCCP
 * profile, with zlib directly and bounded by the profile's declared size,
 * which must be within limits->max_metadata_bytes.
 *
 * The decoder runs libpng over the memory buffer with every ancillary chunk
 * except tRNS ignored, so text chunks (zTXt/iTXt bombs) and iCCP are never
 * inflated by libpng; the profile handed back is extracted with the same
 * bounded helper the probe uses.  Errors, benign errors and warnings are all
 * fatal: a CRC mismatch, bad zlib data or missing image data rejects the
 * file.
 */
#include "codec.h"

#include <png.h>
#include <setjmp.h>
#include <string.h>
#include <zlib.h>

#define PNG_SIG_LEN		8
#define PNG_MAX_CHUNK	0x7fffffffu		/* PNG spec: lengths are 31-bit */
#define ICC_HEADER_LEN	128

/* The chunk types of IHDR and the walk's interesting chunks. */
static bool
chunk_is(const uint8_t *type, const char *name)
{
	return memcmp(type, name, 4) == 0;
}

static bool
chunk_type_valid(const uint8_t *type)
{
	for (int i = 0; i < 4; i++)
	{
		uint8_t		c = type[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
			return false;
	}
	return true;
}

/*
 * Check width/height against the generic limits here as well as in the
 * caller, so a pixel flood is reported as a dimension problem rather than as
 * whatever the walk over the (usually tiny) rest of the file finds.
 */
static img_status
check_dimensions(uint32_t width, uint32_t height, const img_limits *limits,
				 img_error *err)
{
	if (width == 0 || height == 0)
		return img_fail(err, IMG_ERR_BAD_DIMENSIONS,
						"png has zero width or height (%ux%u)", width, height);
	if (limits == NULL)
		return IMG_OK;
	if (width > limits->max_side || height > limits->max_side)
		return img_fail(err, IMG_ERR_BAD_DIMENSIONS,
						"png is %ux%u, a side is over the limit of %u pixels",
						width, height, limits->max_side);
	if ((uint64_t) width * height > limits->max_pixels)
		return img_fail(err, IMG_ERR_TOO_MANY_PIXELS,
						"png is %ux%u = %llu pixels, over the limit of %llu",
						width, height, (unsigned long long) width * height,
						(unsigned long long) limits->max_pixels);
	return IMG_OK;
}

/*
 * Inflate the profile of an iCCP chunk (keyword, NUL, method, zlib stream)
 * into an img_alloc'd buffer.  The profile's own header states its size: we
 * inflate the header first and refuse a declared size over max, so a small
 * chunk that inflates to gigabytes costs at most max bytes of work.  A
 * profile that is unreadable (bad keyword, bad zlib data, a size smaller
 * than an ICC header, e.g. a stream of zeros) is ignored: *icc stays NULL and
 * the status is IMG_OK, the same as colour.c does with a profile that does
 * not parse.
 */
static img_status
extract_icc(const uint8_t *chunk, size_t clen, size_t max, uint8_t **icc,
			size_t *icc_len, img_error *err)
{
	const uint8_t *nul;
	size_t		klen;
	z_stream	zs;
	uint8_t		header[ICC_HEADER_LEN];
	uint8_t    *buf = NULL;
	uint32_t	declared;
	int			ret;

	*icc = NULL;
	*icc_len = 0;
	nul = memchr(chunk, 0, clen < 80 ? clen : 80);
	if (nul == NULL)
		return IMG_OK;
	klen = (size_t) (nul - chunk);
	if (klen == 0 || clen < klen + 2 || chunk[klen + 1] != 0)
		return IMG_OK;

	memset(&zs, 0, sizeof(zs));
	if (inflateInit(&zs) != Z_OK)
		return img_fail(err, IMG_ERR_NO_MEMORY, "out of memory starting zlib for a png iCCP chunk");
	zs.next_in = (Bytef *) (chunk + klen + 2);
	zs.avail_in = (uInt) (clen - klen - 2);
	zs.next_out = header;
	zs.avail_out = sizeof(header);
	ret = inflate(&zs, Z_NO_FLUSH);
	if ((ret != Z_OK && ret != Z_STREAM_END) || zs.avail_out != 0)
		goto ignore;
	declared = img_be32(header);
	if (declared < ICC_HEADER_LEN)
		goto ignore;
	if (declared > max)
	{
		inflateEnd(&zs);
		return img_fail(err, IMG_ERR_METADATA_TOO_LARGE,
						"png iCCP profile declares %u bytes, over the metadata limit of %zu bytes; strip the profile or convert the image to sRGB",
						declared, max);
	}
	buf = img_alloc(declared);
	if (buf == NULL)
	{
		inflateEnd(&zs);
		return img_fail(err, IMG_ERR_NO_MEMORY, "out of memory copying a %u-byte png iCCP profile", declared);
	}
	memcpy(buf, header, sizeof(header));
	if (ret == Z_STREAM_END)
		goto ignore;
	zs.next_out = buf + sizeof(header);
	zs.avail_out = declared - sizeof(header);
	ret = inflate(&zs, Z_NO_FLUSH);
	if ((ret != Z_OK && ret != Z_STREAM_END) || zs.avail_out != 0)
		goto ignore;
	inflateEnd(&zs);
	*icc = buf;
	*icc_len = declared;
	return IMG_OK;

ignore:
	inflateEnd(&zs);
	img_free(buf);
	return IMG_OK;
}

/*
 * Walk the chunks.  When want_icc is set, the iCCP profile is extracted into
 * *icc (caller frees).  Fills info when it is not NULL.
 */
static img_status
png_walk(const uint8_t *data, size_t len, const img_limits *limits,
		 img_info *info, uint8_t **icc, size_t *icc_len, img_error *err)
{
	size_t		max_meta = limits ? limits->max_metadata_bytes : 8u * 1024 * 1024;
	size_t		pos;
	bool		seen_idat = false;
	bool		seen_iccp = false;
	uint32_t	width,
				height;
	uint8_t		depth,
				ctype,
				interlace;
	img_status	st;

	if (icc)
	{
		*icc = NULL;
		*icc_len = 0;
	}
	if (len < PNG_SIG_LEN || png_sig_cmp((png_const_bytep) data, 0, PNG_SIG_LEN) != 0)
		return img_fail(err, IMG_ERR_CORRUPT, "png signature is damaged");
	if (len < PNG_SIG_LEN + 8 + 13 + 4)
		return img_fail(err, IMG_ERR_TRUNCATED, "png is truncated: the IHDR chunk is incomplete");
	if (img_be32(data + 8) != 13 || !chunk_is(data + 12, "IHDR"))
		return img_fail(err, IMG_ERR_CORRUPT, "png does not start with a valid IHDR chunk");
	if (crc32(0, data + 12, 17) != img_be32(data + 29))
		return img_fail(err, IMG_ERR_CORRUPT, "png IHDR chunk has a bad CRC");

	width = img_be32(data + 16);
	height = img_be32(data + 20);
	depth = data[24];
	ctype = data[25];
	interlace = data[28];
	if (info)
	{
		info->width = width;
		info->height = height;
		info->bit_depth = depth;
		info->progressive = interlace == 1;
		info->has_alpha = ctype == 4 || ctype == 6;
		info->colour = (ctype == 0 || ctype == 4) ? IMG_COLOUR_GRAY :
			ctype == 3 ? IMG_COLOUR_PALETTE : IMG_COLOUR_RGB;
	}
	if (width > PNG_MAX_CHUNK || height > PNG_MAX_CHUNK)
		return img_fail(err, IMG_ERR_BAD_DIMENSIONS,
						"png IHDR dimensions %ux%u are beyond the PNG maximum", width, height);
	st = check_dimensions(width, height, limits, err);
	if (st != IMG_OK)
		return st;

	/* colour type / bit depth combinations allowed by the PNG spec */
	{
		bool		ok;

		switch (ctype)
		{
			case 0:
				ok = depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
				break;
			case 3:
				ok = depth == 1 || depth == 2 || depth == 4 || depth == 8;
				break;
			case 2:
			case 4:
			case 6:
				ok = depth == 8 || depth == 16;
				break;
			default:
				ok = false;
		}
		if (!ok)
			return img_fail(err, IMG_ERR_CORRUPT,
							"png IHDR has an invalid colour type %u with bit depth %u", ctype, depth);
	}
	if (data[26] != 0 || data[27] != 0 || interlace > 1)
		return img_fail(err, IMG_ERR_CORRUPT,
						"png IHDR has an unknown compression, filter or interlace method");

	pos = PNG_SIG_LEN + 25;
	for (;;)
	{
		uint32_t	clen;
		const uint8_t *type;
		const uint8_t *body;

		if (len - pos < 12)
			return img_fail(err, IMG_ERR_TRUNCATED,
							"png is truncated: the data ends before the IEND chunk");
		clen = img_be32(data + pos);
		type = data + pos + 4;
		body = data + pos + 8;
		if (!chunk_type_valid(type))
			return img_fail(err, IMG_ERR_CORRUPT, "png has a damaged chunk header at offset %zu", pos);
		if (clen > PNG_MAX_CHUNK)
			return img_fail(err, IMG_ERR_CORRUPT, "png %.4s chunk has an invalid length", (const char *) type);
		if ((size_t) clen > len - pos - 12)
			return img_fail(err, IMG_ERR_TRUNCATED,
							"png is truncated: %.4s chunk runs past the end of the data",
							(const char *) type);

		if (chunk_is(type, "IEND"))
		{
			if (!seen_idat)
				return img_fail(err, IMG_ERR_CORRUPT, "png has no IDAT chunk");
			if (info)
				info->has_trailing_data = pos + 12 + clen < len;
			break;
		}
		else if (chunk_is(type, "IHDR"))
			return img_fail(err, IMG_ERR_CORRUPT, "png has a second IHDR chunk");
		else if (chunk_is(type, "IDAT"))
			seen_idat = true;
		else if (chunk_is(type, "tRNS"))
		{
			if (info)
				info->has_alpha = true;
		}
		else if (chunk_is(type, "iCCP") && !seen_iccp)
		{
			uint8_t    *profile;
			size_t		plen;

			seen_iccp = true;
			st = extract_icc(body, clen, max_meta, &profile, &plen, err);
			if (st != IMG_OK)
				return st;
			if (info)
			{
				info->has_icc = true;
				info->icc_bytes = plen;
				if (profile)
					img_icc_describe(profile, plen, info);
			}
			if (icc)
			{
				*icc = profile;
				*icc_len = plen;
			}
			else
				img_free(profile);
		}
		else if (chunk_is(type, "eXIf"))
		{
			if (info)
			{
				/* some writers keep JPEG's "Exif\0\0" prefix */
				bool		tiff = !(clen >= 6 && memcmp(body, "Exif\0\0", 6) == 0);

				info->has_exif = true;
				img_exif_scan(body, clen, tiff, info);
			}
		}
		else if (chunk_is(type, "iTXt"))
		{
			if (info)
			{
				if (clen >= 18 && memcmp(body, "XML:com.adobe.xmp", 18) == 0)
					info->has_xmp = true;
				else
					info->has_comment = true;
			}
		}
		else if (chunk_is(type, "tEXt") || chunk_is(type, "zTXt"))
		{
			if (info)
				info->has_comment = true;
		}
		else if (chunk_is(type, "acTL") && clen >= 8)
		{
			uint32_t	frames = img_be32(body);

			if (info && frames > 0)
				info->frames = frames;
		}
		pos += 12 + (size_t) clen;
	}
	return IMG_OK;
}

static img_status
png_probe(const uint8_t *data, size_t len, const img_limits *limits,
		  img_info *info, img_error *err)
{
	img_format	format = info->format;

	memset(info, 0, sizeof(*info));
	info->format = format;
	info->frames = 1;
	info->orientation = 1;
	return png_walk(data, len, limits, info, NULL, NULL, err);
}

/* ------------------------------------------------------------- decoding */

typedef struct png_reader
{
	const uint8_t *data;
	size_t		len;
	size_t		pos;
	bool		ran_out;
	bool		warned;
	img_status	status;
	char		message[IMG_ERROR_MESSAGE_MAX];
} png_reader;

static void
reader_read(png_structp png, png_bytep out, size_t n)
{
	png_reader *r = png_get_io_ptr(png);

	if (n > r->len - r->pos)
	{
		r->ran_out = true;
		png_error(png, "data ended early");
	}
	memcpy(out, r->data + r->pos, n);
	r->pos += n;
}

static void
reader_error(png_structp png, png_const_charp msg)
{
	png_reader *r = png_get_error_ptr(png);

	if (r->status == IMG_OK)
	{
		r->status = r->ran_out ? IMG_ERR_TRUNCATED : IMG_ERR_CORRUPT;
		snprintf(r->message, sizeof(r->message), "%s", msg);
	}
	png_longjmp(png, 1);
}

/*
 * A warning must not longjmp (libpng expects the warning callback to
 * return), so it is recorded and turned into an error once libpng returns.
 */
static void
reader_warning(png_structp png, png_const_charp msg)
{
	png_reader *r = png_get_error_ptr(png);

	if (!r->warned && r->status == IMG_OK)
	{
		r->warned = true;
		snprintf(r->message, sizeof(r->message), "%s", msg);
	}
}

/* Known ancillary chunks libpng must skip (we read what we need ourselves). */
static const png_byte ignored_chunks[] =
"bKGD\0cHRM\0eXIf\0gAMA\0hIST\0iCCP\0iTXt\0oFFs\0pCAL\0pHYs\0sBIT\0sCAL\0sPLT\0sRGB\0tEXt\0tIME\0zTXt";

static img_status
png_decode(const uint8_t *data, size_t len, const img_limits *limits,
		   const img_info *info, uint32_t min_width, uint32_t min_height,
		   img_decoded *out, img_error *err)
{
	png_reader	reader;
	png_structp png;
	png_infop	pinfo = NULL;
	png_bytep  *volatile rows = NULL;
	uint8_t    *volatile icc = NULL;
	size_t		icc_len = 0;
	img_status	st;
	uint32_t	width,
				height,
				channels;
	int			passes;
	uint32_t	side = limits ? limits->max_side : 20000;
	size_t		max_meta = limits ? limits->max_metadata_bytes : 8u * 1024 * 1024;

	(void) min_width;
	(void) min_height;
	memset(out, 0, sizeof(*out));
	out->orientation = (info && info->orientation >= 1 && info->orientation <= 8) ? info->orientation : 1;

	/* the profile, bounded, before libpng allocates anything */
	{
		uint8_t    *profile;

		st = png_walk(data, len, limits, NULL, &profile, &icc_len, err);
		if (st != IMG_OK)
			return st;
		icc = profile;
	}

	memset(&reader, 0, sizeof(reader));
	reader.data = data;
	reader.len = len;

	png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader, reader_error, reader_warning);
	if (png == NULL)
	{
		img_free(icc);
		return img_fail(err, IMG_ERR_NO_MEMORY, "out of memory creating the png decoder");
	}
	pinfo = png_create_info_struct(png);
	if (pinfo == NULL)
	{
		png_destroy_read_struct(&png, NULL, NULL);
		img_free(icc);
		return img_fail(err, IMG_ERR_NO_MEMORY, "out of memory creating the png decoder");
	}

	if (setjmp(png_jmpbuf(png)))
	{
		png_destroy_read_struct(&png, &pinfo, NULL);
		img_free(rows);
		img_free(icc);
		img_raster_free(&out->raster);
		switch (reader.status)
		{
			case IMG_ERR_TRUNCATED:
				return img_fail(err, IMG_ERR_TRUNCATED, "png is truncated: %s", reader.message);
			case IMG_ERR_CORRUPT:
				return img_fail(err, IMG_ERR_CORRUPT, "png is corrupt: %s", reader.message);
			case IMG_OK:
				return img_fail(err, IMG_ERR_INTERNAL, "png decoder failed without a message");
			default:
				return img_fail(err, reader.status, "%s", reader.message);
		}
	}

	png_set_read_fn(png, &reader, reader_read);
	png_set_user_limits(png, side, side);
	png_set_chunk_cache_max(png, 128);
	png_set_chunk_malloc_max(png, max_meta > 65536 ? max_meta : 65536);
	png_set_benign_errors(png, 0);
	png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, 0);
	png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, ignored_chunks,
								(int) (sizeof(ignored_chunks) / 5));

	png_read_info(png, pinfo);
	width = png_get_image_width(png, pinfo);
	height = png_get_image_height(png, pinfo);
	if (info && (width != info->width || height != info->height))
		png_error(png, "IHDR changed between probe and decode");

	png_set_expand(png);		/* palette → RGB, gray < 8 → 8, tRNS → alpha */
	png_set_scale_16(png);
	png_set_gray_to_rgb(png);
	passes = png_set_interlace_handling(png);
	png_read_update_info(png, pinfo);

	channels = png_get_channels(png, pinfo);
	if ((channels != 3 && channels != 4) ||
		png_get_bit_depth(png, pinfo) != 8 ||
		png_get_rowbytes(png, pinfo) != (size_t) width * channels)
		png_error(png, "unexpected output format after transformations");

	st = img_raster_init(&out->raster, width, height, channels, err);
	if (st != IMG_OK)
	{
		reader.status = st;
		snprintf(reader.message, sizeof(reader.message), "%s", err ? err->message : "raster allocation failed");
		png_longjmp(png, 1);
	}
	{
		png_bytep  *r = img_alloc(sizeof(png_bytep) * height);

		if (r == NULL)
		{
			reader.status = IMG_ERR_NO_MEMORY;
			snprintf(reader.message, sizeof(reader.message), "out of memory for row pointers");
			png_longjmp(png, 1);
		}
		for (uint32_t y = 0; y < height; y++)
			r[y] = out->raster.pixels + (size_t) y * out->raster.stride;
		rows = r;
	}

	/* png_read_image's loop, row by row so that the caller can interrupt */
	for (int pass = 0; pass < passes; pass++)
	{
		for (uint32_t y = 0; y < height; y++)
		{
			if (img_check_interrupt(err, "decoding png rows") != IMG_OK)
			{
				reader.status = IMG_ERR_INTERRUPTED;
				snprintf(reader.message, sizeof(reader.message), "%s", err ? err->message : "interrupted");
				png_longjmp(png, 1);
			}
			png_read_row(png, rows[y], NULL);
		}
	}
	png_read_end(png, NULL);

	png_destroy_read_struct(&png, &pinfo, NULL);
	img_free(rows);
	if (reader.warned)
	{
		img_free(icc);
		img_raster_free(&out->raster);
		return img_fail(err, IMG_ERR_CORRUPT, "png is corrupt: %s", reader.message);
	}
	out->layout = channels == 4 ? IMG_LAYOUT_RGBA : IMG_LAYOUT_RGB;
	out->icc = icc;
	out->icc_len = icc ? icc_len : 0;
	return IMG_OK;
}

const img_codec img_codec_png = {
	.format = IMG_FORMAT_PNG,
	.probe = png_probe,
	.decode = png_decode,
};
