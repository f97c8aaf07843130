/*
 * tiff.c — TIFF input for the image core (libtiff 4.5).
 *
 * libtiff reads from the memory buffer through TIFFClientOpenExt procs (no
 * file, no mmap), with per-handle error and warning handlers from
 * TIFFOpenOptions so nothing reaches stderr; the process-wide handlers are
 * also cleared, because a few libtiff paths report through them.
 *
 * Errors are always fatal.  Warnings are fatal while pixels are decoded
 * (libtiff reports e.g. an LZW strip without EOI as a warning), but not
 * while the directory is read: unknown private tags and similar are
 * reported as warnings and are common in files from ordinary software.
 * The exception is a tag whose data lies past the end of the file, which
 * libtiff also only warns about: that is truncation and is fatal.
 *
 * Pixels come from TIFFReadRGBAImageOriented, which handles every
 * photometric interpretation libtiff knows.  Its output has premultiplied
 * alpha, which we undo.  About orientation: TIFFRGBAImage can only flip
 * (it treats tag values 5..8 like 1..4, never transposing), so we ask it
 * for the orientation the file declares (5..8 mapped to the 1..4 that
 * libtiff considers equivalent, for which it does no flip).  The raster is
 * then in stored order, and the Orientation tag is handed back in
 * img_decoded.orientation for load.c to apply, exactly like EXIF.
 *
 * CMYK (Separated) is converted by TIFFRGBAImage without colour management,
 * so an embedded CMYK profile is dropped rather than applied to RGB.
 */
#include "codec.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <tiffio.h>

typedef struct tiff_source
{
	const uint8_t *data;
	size_t		len;
	size_t		pos;
	bool		ran_out;		/* a read came up short */
	bool		decoding;		/* warnings are fatal now */
	bool		interrupted;	/* a read refused: the interrupt hook said stop */
	bool		failed;
	char		message[IMG_ERROR_MESSAGE_MAX - 32];
} tiff_source;

static tmsize_t
src_read(thandle_t h, void *buf, tmsize_t n)
{
	tiff_source *s = (tiff_source *) h;
	size_t		want = n < 0 ? 0 : (size_t) n;
	size_t		avail = s->len - s->pos;

	/*
	 * libtiff reads each strip or tile through here while it decodes, so
	 * this is where the caller's interrupt hook is asked: a read that
	 * yields nothing makes TIFFReadRGBAImageOriented give up and return.
	 * (Not -1: libtiff 4.5 sizes a memset with the count it gets back.)
	 */
	if (s->decoding && img_interrupt_requested())
	{
		s->interrupted = true;
		return 0;
	}
	if (want > avail)
	{
		s->ran_out = true;
		want = avail;
	}
	memcpy(buf, s->data + s->pos, want);
	s->pos += want;
	return (tmsize_t) want;
}

static tmsize_t
src_write(thandle_t h, void *buf, tmsize_t n)
{
	(void) h;
	(void) buf;
	(void) n;
	return -1;
}

static toff_t
src_seek(thandle_t h, toff_t off, int whence)
{
	tiff_source *s = (tiff_source *) h;
	uint64_t	base;

	switch (whence)
	{
		case SEEK_SET:
			base = 0;
			break;
		case SEEK_CUR:
			base = s->pos;
			break;
		case SEEK_END:
			base = s->len;
			break;
		default:
			return (toff_t) -1;
	}
	if (off > UINT64_MAX - base || base + off > s->len)
	{
		/* seeking past the end is where truncated files point */
		s->ran_out = true;
		return (toff_t) -1;
	}
	s->pos = (size_t) (base + off);
	return (toff_t) s->pos;
}

static int
src_close(thandle_t h)
{
	(void) h;
	return 0;
}

static toff_t
src_size(thandle_t h)
{
	return (toff_t) ((tiff_source *) h)->len;
}

static int
src_map(thandle_t h, void **base, toff_t *size)
{
	(void) h;
	(void) base;
	(void) size;
	return 0;
}

static void
src_unmap(thandle_t h, void *base, toff_t size)
{
	(void) h;
	(void) base;
	(void) size;
}

/*
 * libtiff's handler type carries no format attribute, so gcc's suggestion to
 * add one (-Wmissing-format-attribute, on in PostgreSQL's flags) cannot be
 * followed without a type mismatch at registration.
 */
#pragma GCC diagnostic ignored "-Wsuggest-attribute=format"

static int
on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
	tiff_source *s = user;

	(void) tif;
	(void) module;
	if (!s->failed)
	{
		s->failed = true;
		vsnprintf(s->message, sizeof(s->message), fmt, ap);
	}
	return 1;
}

/*
 * While the directory is read, libtiff reports a tag whose data lies beyond
 * the end of the file as a warning ("IO error during reading of ...; tag
 * ignored") and carries on; that is a truncated file, so it is fatal too.
 */
static int
on_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
	tiff_source *s = user;
	char		msg[sizeof(s->message)];
	bool		io_error;

	(void) tif;
	(void) module;
	if (s->failed)
		return 1;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	io_error = strstr(msg, "IO error") != NULL;
	if (s->decoding || io_error)
	{
		s->failed = true;
		s->ran_out |= io_error;
		memcpy(s->message, msg, sizeof(msg));
	}
	return 1;
}

static img_status
source_failure(tiff_source *s, img_error *err, const char *what)
{
	if (s->ran_out)
		return img_fail(err, IMG_ERR_TRUNCATED, "tiff is truncated: %s: %s", what,
						s->failed ? s->message : "data ended early");
	return img_fail(err, IMG_ERR_CORRUPT, "tiff is corrupt: %s: %s", what,
					s->failed ? s->message : "libtiff gave no details");
}

static TIFF *
open_tiff(tiff_source *s, const uint8_t *data, size_t len, const img_limits *limits)
{
	TIFFOpenOptions *opts;
	TIFF	   *tif;

	/* the few libtiff paths that ignore the per-handle handlers */
	TIFFSetErrorHandler(NULL);
	TIFFSetWarningHandler(NULL);

	memset(s, 0, sizeof(*s));
	s->data = data;
	s->len = len;
	opts = TIFFOpenOptionsAlloc();
	if (opts == NULL)
		return NULL;
	TIFFOpenOptionsSetErrorHandlerExtR(opts, on_error, s);
	TIFFOpenOptionsSetWarningHandlerExtR(opts, on_warning, s);
	if (limits != NULL)
	{
		/* at most one 16-bit RGBA copy of the largest image we accept */
		uint64_t	cap = limits->max_pixels * 8 + (1u << 20);

		if (cap < limits->max_pixels || cap > (uint64_t) INT64_MAX)
			cap = (uint64_t) INT64_MAX;
		TIFFOpenOptionsSetMaxSingleMemAlloc(opts, (tmsize_t) cap);
	}
	/* "m": never memory-map (our procs do not); read through src_read */
	tif = TIFFClientOpenExt("tiff", "rm", (thandle_t) s, src_read, src_write,
							src_seek, src_close, src_size, src_map, src_unmap, opts);
	TIFFOpenOptionsFree(opts);
	return tif;
}

static img_status
check_dimensions(uint32_t width, uint32_t height, const img_limits *limits,
				 img_error *err)
{
	if (width == 0 || height == 0)
		return img_fail(err, IMG_ERR_BAD_DIMENSIONS,
						"tiff has zero width or height (%ux%u)", width, height);
	if (limits == NULL)
		return IMG_OK;
	if (width > limits->max_side || height > limits->max_side)
		return img_fail(err, IMG_ERR_BAD_DIMENSIONS,
						"tiff is %ux%u, a side is over the limit of %u pixels",
						width, height, limits->max_side);
	if ((uint64_t) width * height > limits->max_pixels)
		return img_fail(err, IMG_ERR_TOO_MANY_PIXELS,
						"tiff is %ux%u = %llu pixels, over the limit of %llu",
						width, height, (unsigned long long) width * height,
						(unsigned long long) limits->max_pixels);
	return IMG_OK;
}

/* Alpha the way TIFFRGBAImage decides it. */
static bool
tiff_has_alpha(TIFF *tif)
{
	uint16_t	extra = 0;
	uint16_t   *types = NULL;
	uint16_t	photometric = 0;
	uint16_t	spp = 1;

	TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
	TIFFGetFieldDefaulted(tif, TIFFTAG_EXTRASAMPLES, &extra, &types);
	if (extra > 0 && types != NULL)
		return types[0] == EXTRASAMPLE_ASSOCALPHA || types[0] == EXTRASAMPLE_UNASSALPHA;
	TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric);
	return photometric == PHOTOMETRIC_RGB && spp == 4;
}

static uint8_t
tiff_orientation(TIFF *tif)
{
	uint16_t	o = 1;

	if (!TIFFGetField(tif, TIFFTAG_ORIENTATION, &o) || o < 1 || o > 8)
		return 1;
	return (uint8_t) o;
}

static img_status
tiff_probe(const uint8_t *data, size_t len, const img_limits *limits,
		   img_info *info, img_error *err)
{
	img_format	format = info->format;
	size_t		max_meta = limits ? limits->max_metadata_bytes : 8u * 1024 * 1024;
	tiff_source src;
	TIFF	   *tif;
	uint32_t	w = 0,
				h = 0;
	uint16_t	bps = 1,
				photometric = 0;
	uint32_t	count;
	void	   *ptr;
	uint64_t	off;
	char	   *text;
	char		emsg[1024];
	img_status	st;

	memset(info, 0, sizeof(*info));
	info->format = format;
	info->frames = 1;
	info->orientation = 1;

	tif = open_tiff(&src, data, len, limits);
	if (tif == NULL)
		return source_failure(&src, err, "reading the header");

	TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
	TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
	info->width = w;
	info->height = h;
	st = check_dimensions(w, h, limits, err);
	if (st != IMG_OK)
		goto done;

	TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bps);
	info->bit_depth = bps <= 255 ? (uint8_t) bps : 0;
	TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric);
	switch (photometric)
	{
		case PHOTOMETRIC_MINISWHITE:
		case PHOTOMETRIC_MINISBLACK:
			info->colour = IMG_COLOUR_GRAY;
			break;
		case PHOTOMETRIC_RGB:
			info->colour = IMG_COLOUR_RGB;
			break;
		case PHOTOMETRIC_PALETTE:
			info->colour = IMG_COLOUR_PALETTE;
			break;
		case PHOTOMETRIC_SEPARATED:
			info->colour = IMG_COLOUR_CMYK;
			break;
		case PHOTOMETRIC_YCBCR:
			info->colour = IMG_COLOUR_YCBCR;
			break;
		default:
			info->colour = IMG_COLOUR_UNKNOWN;
	}
	info->has_alpha = tiff_has_alpha(tif);
	info->orientation = tiff_orientation(tif);

	if (TIFFGetField(tif, TIFFTAG_ICCPROFILE, &count, &ptr) && count > 0)
	{
		info->has_icc = true;
		info->icc_bytes = count;
		if (count > max_meta)
		{
			st = img_fail(err, IMG_ERR_METADATA_TOO_LARGE,
						  "tiff ICC profile is %u bytes, over the metadata limit of %zu bytes",
						  count, max_meta);
			goto done;
		}
		img_icc_describe(ptr, count, info);
	}
	if (TIFFGetField(tif, TIFFTAG_EXIFIFD, &off))
		info->has_exif = true;
	if (TIFFGetField(tif, TIFFTAG_GPSIFD, &off))
		info->has_gps = true;
	if (TIFFGetField(tif, TIFFTAG_XMLPACKET, &count, &ptr) && count > 0)
		info->has_xmp = true;
	if (TIFFGetField(tif, TIFFTAG_RICHTIFFIPTC, &count, &ptr) && count > 0)
		info->has_iptc = true;
	if (TIFFGetField(tif, TIFFTAG_IMAGEDESCRIPTION, &text) && text && text[0])
		info->has_comment = true;

	if (!TIFFRGBAImageOK(tif, emsg))
	{
		st = img_fail(err, IMG_ERR_UNSUPPORTED_FORMAT,
					  "tiff sample layout is not supported: %s", emsg);
		goto done;
	}
	if (src.failed)
	{
		st = source_failure(&src, err, "reading the first directory");
		goto done;
	}

	/*
	 * Pages after the first are not decoded, but a directory chain that
	 * runs off the end of the data is a truncated file all the same.
	 */
	{
		uint32_t	max_frames = limits ? limits->max_frames : 1000;
		uint32_t	n = 1;

		/* read (not just count) each directory, so damaged tags show */
		while (n <= max_frames && TIFFReadDirectory(tif))
			n++;
		info->frames = n;
		if (src.failed)
			st = source_failure(&src, err, "reading the directories after the first");
	}

done:
	TIFFClose(tif);
	return st;
}

/* Map the file's orientation to the one for which TIFFRGBAImage does not flip. */
static int
no_flip_orientation(uint8_t o)
{
	switch (o)
	{
		case 2:
		case 6:
			return ORIENTATION_TOPRIGHT;
		case 3:
		case 7:
			return ORIENTATION_BOTRIGHT;
		case 4:
		case 8:
			return ORIENTATION_BOTLEFT;
		default:
			return ORIENTATION_TOPLEFT;
	}
}

static img_status
tiff_decode(const uint8_t *data, size_t len, const img_limits *limits,
			const img_info *info, uint32_t min_width, uint32_t min_height,
			img_decoded *out, img_error *err)
{
	size_t		max_meta = limits ? limits->max_metadata_bytes : 8u * 1024 * 1024;
	tiff_source src;
	TIFF	   *tif;
	uint32_t	w = 0,
				h = 0;
	uint16_t	photometric = 0;
	uint8_t		orientation;
	bool		alpha;
	size_t		npixels;
	uint8_t    *px;
	uint32_t	count;
	void	   *ptr;
	img_status	st;

	(void) info;
	(void) min_width;
	(void) min_height;
	memset(out, 0, sizeof(*out));
	out->orientation = 1;

	tif = open_tiff(&src, data, len, limits);
	if (tif == NULL)
		return source_failure(&src, err, "reading the header");

	TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
	TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
	st = check_dimensions(w, h, limits, err);
	if (st != IMG_OK)
		goto done;
	TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric);
	alpha = tiff_has_alpha(tif);
	orientation = tiff_orientation(tif);

	st = img_raster_init(&out->raster, w, h, 4, err);
	if (st != IMG_OK)
		goto done;
	src.decoding = true;
	src.failed = false;
	if (!TIFFReadRGBAImageOriented(tif, w, h, (uint32_t *) out->raster.pixels,
								   no_flip_orientation(orientation), 1) || src.failed)
	{
		st = src.interrupted ? img_fail(err, IMG_ERR_INTERRUPTED, "interrupted while decoding tiff strips")
			: source_failure(&src, err, "decoding pixels");
		goto done;
	}

	/* ABGR-packed words to bytes; undo the premultiplication */
	px = out->raster.pixels;
	npixels = (size_t) w * h;
	for (size_t i = 0; i < npixels; i++)
	{
		uint32_t	v;
		uint32_t	r,
					g,
					b,
					a;

		memcpy(&v, px + i * 4, 4);
		r = TIFFGetR(v);
		g = TIFFGetG(v);
		b = TIFFGetB(v);
		a = TIFFGetA(v);
		if (alpha && a != 255)
		{
			if (a == 0)
				r = g = b = 0;
			else
			{
				r = (r * 255 + a / 2) / a;
				g = (g * 255 + a / 2) / a;
				b = (b * 255 + a / 2) / a;
				r = r > 255 ? 255 : r;
				g = g > 255 ? 255 : g;
				b = b > 255 ? 255 : b;
			}
		}
		if (alpha)
		{
			px[i * 4] = (uint8_t) r;
			px[i * 4 + 1] = (uint8_t) g;
			px[i * 4 + 2] = (uint8_t) b;
			px[i * 4 + 3] = (uint8_t) a;
		}
		else
		{
			/* in place: the write position never passes the read position */
			px[i * 3] = (uint8_t) r;
			px[i * 3 + 1] = (uint8_t) g;
			px[i * 3 + 2] = (uint8_t) b;
		}
	}
	if (alpha)
		out->layout = IMG_LAYOUT_RGBA;
	else
	{
		uint8_t    *shrunk;

		out->raster.channels = 3;
		out->raster.stride = (size_t) w * 3;
		shrunk = img_realloc(out->raster.pixels, out->raster.stride * h);
		if (shrunk != NULL)
			out->raster.pixels = shrunk;
		out->layout = IMG_LAYOUT_RGB;
	}
	out->orientation = orientation;

	if (photometric != PHOTOMETRIC_SEPARATED &&
		TIFFGetField(tif, TIFFTAG_ICCPROFILE, &count, &ptr) && count > 0)
	{
		if (count > max_meta)
		{
			st = img_fail(err, IMG_ERR_METADATA_TOO_LARGE,
						  "tiff ICC profile is %u bytes, over the metadata limit of %zu bytes",
						  count, max_meta);
			goto done;
		}
		out->icc = img_alloc(count);
		if (out->icc == NULL)
		{
			st = img_fail(err, IMG_ERR_NO_MEMORY, "out of memory copying the tiff ICC profile");
			goto done;
		}
		memcpy(out->icc, ptr, count);
		out->icc_len = count;
	}

done:
	TIFFClose(tif);
	if (st != IMG_OK)
		img_decoded_free(out);
	return st;
}

const img_codec img_codec_tiff = {
	.format = IMG_FORMAT_TIFF,
	.probe = tiff_probe,
	.decode = tiff_decode,
};
