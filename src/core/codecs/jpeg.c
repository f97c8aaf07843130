/*
 * jpeg.c — JPEG probe (hand-walked markers) and decode (libjpeg-turbo).
 *
 * The probe walks the marker structure without entropy-decoding anything:
 * it finds the frame header, counts scans (a "scan bomb" repeats one scan
 * thousands of times to burn CPU), notes which metadata segments exist and
 * whether anything follows EOI.  The decoder then runs with every libjpeg
 * warning promoted to an error, because libjpeg "recovers" from truncation
 * by padding with grey and imgmod must never store such an image.
 */
#include "codec.h"

#include <stdio.h>
#include <jpeglib.h>
#include <jerror.h>
#include <jpegint.h>
#include <limits.h>
#include <stdlib.h>
#include <setjmp.h>
#include <string.h>

/* ------------------------------------------------------------------ probe */

#define M_SOF0	0xC0
#define M_SOF15 0xCF
#define M_DHT	0xC4
#define M_JPG	0xC8
#define M_DAC	0xCC
#define M_RST0	0xD0
#define M_RST7	0xD7
#define M_SOI	0xD8
#define M_EOI	0xD9
#define M_SOS	0xDA
#define M_APP0	0xE0
#define M_APP1	0xE1
#define M_APP2	0xE2
#define M_APP13 0xED
#define M_APP14 0xEE
#define M_COM	0xFE

static bool
is_sof(uint8_t m)
{
	return m >= M_SOF0 && m <= M_SOF15 && m != M_DHT && m != M_JPG && m != M_DAC;
}

/*
 * Skip entropy-coded data starting at pos; returns the offset of the next
 * marker's 0xFF, or len when the data ends first.  Stuffed 0xFF00 and RSTn
 * belong to the scan.
 */
static size_t
skip_entropy(const uint8_t *data, size_t len, size_t pos)
{
	while (pos < len)
	{
		const uint8_t *ff = memchr(data + pos, 0xFF, len - pos);

		if (ff == NULL)
			return len;
		pos = (size_t) (ff - data);
		if (pos + 1 >= len)
			return len;
		if (data[pos + 1] == 0x00 || (data[pos + 1] >= M_RST0 && data[pos + 1] <= M_RST7) ||
			data[pos + 1] == 0xFF)
		{
			pos += 1;
			continue;
		}
		return pos;
	}
	return len;
}

/*
 * Name the embedded profile (normalise keeps the coefficients of sRGB
 * JPEGs, so it needs to know).  Profiles split over several APP2 chunks are
 * reassembled first; an incomplete set is left unnamed.
 */
static void
describe_icc_chunks(const uint8_t *const *chunk, const size_t *chunk_len, int declared,
					img_info *info)
{
	size_t		total = 0;
	uint8_t    *whole;

	if (declared < 1)
		return;
	if (declared == 1)
	{
		if (chunk[1] != NULL)
			img_icc_describe(chunk[1], chunk_len[1], info);
		return;
	}
	for (int i = 1; i <= declared; i++)
	{
		if (chunk[i] == NULL)
			return;
		total += chunk_len[i];
	}
	whole = img_alloc(total);
	if (whole == NULL)
		return;
	total = 0;
	for (int i = 1; i <= declared; i++)
	{
		memcpy(whole + total, chunk[i], chunk_len[i]);
		total += chunk_len[i];
	}
	img_icc_describe(whole, total, info);
	img_free(whole);
}

static img_status
jpeg_probe(const uint8_t *data, size_t len, const img_limits *limits,
		   img_info *info, img_error *err)
{
	size_t		pos = 2;
	bool		seen_sof = false;
	bool		adobe = false;
	int			adobe_transform = -1;
	int			components = 0;
	bool		jfif = false;
	uint8_t		comp_ids[4] = {0};
	/* ICC_PROFILE chunks by sequence number (1..255), to name the profile */
	const uint8_t *icc_chunk[256] = {0};
	size_t		icc_chunk_len[256] = {0};
	int			icc_chunks_declared = 0;

	if (len < 4 || data[0] != 0xFF || data[1] != M_SOI)
		return img_fail(err, IMG_ERR_CORRUPT, "jpeg does not start with an SOI marker");

	info->bit_depth = 8;
	while (pos < len)
	{
		uint8_t		marker;
		size_t		seglen;
		const uint8_t *seg;

		if (data[pos] != 0xFF)
		{
			/* Garbage between segments: libjpeg would only warn; we refuse. */
			return img_fail(err, IMG_ERR_CORRUPT,
							"jpeg is corrupt: expected a marker at byte %zu", pos);
		}
		while (pos < len && data[pos] == 0xFF)
			pos++;			/* fill bytes */
		if (pos >= len)
			break;
		marker = data[pos++];

		if (marker == M_EOI)
		{
			if (!seen_sof)
				return img_fail(err, IMG_ERR_CORRUPT, "jpeg has no frame header (SOF) before EOI");
			if (info->scans == 0)
				return img_fail(err, IMG_ERR_CORRUPT, "jpeg has no image data (no SOS) before EOI");
			if (pos < len)
				info->has_trailing_data = true;
			goto finished;
		}
		if (marker == M_SOI || (marker >= M_RST0 && marker <= M_RST7) || marker == 0x01)
			continue;			/* standalone markers */

		if (pos + 2 > len)
			break;
		seglen = img_be16(data + pos);
		if (seglen < 2)
			return img_fail(err, IMG_ERR_CORRUPT, "jpeg segment 0x%02X has an invalid length", marker);
		if (pos + seglen > len)
			break;
		seg = data + pos + 2;
		seglen -= 2;

		if (is_sof(marker))
		{
			if (seen_sof)
				return img_fail(err, IMG_ERR_CORRUPT, "jpeg has more than one frame header");
			if (seglen < 6)
				return img_fail(err, IMG_ERR_CORRUPT, "jpeg frame header is too short");
			seen_sof = true;
			info->bit_depth = seg[0];
			info->height = img_be16(seg + 1);
			info->width = img_be16(seg + 3);
			components = seg[5];
			for (int c = 0; c < components && c < 4 && 6 + 3 * c < (int) seglen; c++)
				comp_ids[c] = seg[6 + 3 * c];
			info->progressive = (marker == 0xC2 || marker == 0xC6 || marker == 0xCA || marker == 0xCE);
			if (marker == 0xC3 || marker == 0xC7 || marker == 0xCB || marker == 0xCF)
				return img_fail(err, IMG_ERR_UNSUPPORTED_FORMAT,
								"lossless jpeg (SOF%d) is not supported; convert it to baseline or PNG", marker - M_SOF0);
			if (marker == 0xC5 || marker == 0xC6 || marker == 0xC7 ||
				marker == 0xCD || marker == 0xCE || marker == 0xCF)
				return img_fail(err, IMG_ERR_UNSUPPORTED_FORMAT,
								"hierarchical jpeg (SOF%d) is not supported", marker - M_SOF0);
			if (info->bit_depth != 8)
				return img_fail(err, IMG_ERR_UNSUPPORTED_FORMAT,
								"%d-bit jpeg is not supported (8-bit only)", info->bit_depth);
			if (components != 1 && components != 3 && components != 4)
				return img_fail(err, IMG_ERR_CORRUPT, "jpeg has %d colour components", components);
			/* Limits now, before walking a possibly huge remainder. */
			if (info->width > limits->max_side || info->height > limits->max_side ||
				(uint64_t) info->width * info->height > limits->max_pixels)
				return IMG_OK;	/* img_probe reports the limit */
		}
		else if (marker == M_SOS)
		{
			if (!seen_sof)
				return img_fail(err, IMG_ERR_CORRUPT, "jpeg scan (SOS) before the frame header");
			info->scans++;
			if (info->scans > limits->max_scans)
				return img_fail(err, IMG_ERR_TOO_MANY_SCANS,
								"jpeg has more than %u scans (imgmod.max_scans); a progressive file needs about 10",
								limits->max_scans);
			pos = skip_entropy(data, len, pos + 2 + seglen);
			continue;
		}
		else if (marker == M_APP0 && seglen >= 5 && memcmp(seg, "JFIF\0", 5) == 0)
			jfif = true;
		else if (marker == M_APP1 && seglen >= 6 && memcmp(seg, "Exif\0\0", 6) == 0)
			img_exif_scan(seg, seglen, false, info);
		else if (marker == M_APP1 && img_is_xmp(seg, seglen < 64 ? seglen : 64))
			info->has_xmp = true;
		else if (marker == M_APP2 && seglen >= 14 && memcmp(seg, "ICC_PROFILE\0", 12) == 0)
		{
			info->has_icc = true;
			info->icc_bytes += seglen - 14;
			/* Remember the chunks; the profile is named after the walk. */
			if (seg[12] >= 1 && icc_chunk[seg[12]] == NULL)
			{
				icc_chunk[seg[12]] = seg + 14;
				icc_chunk_len[seg[12]] = seglen - 14;
				icc_chunks_declared = seg[13];
			}
		}
		else if (marker == M_APP13 && seglen >= 14 && memcmp(seg, "Photoshop 3.0\0", 14) == 0)
			info->has_iptc = true;
		else if (marker == M_APP14 && seglen >= 12 && memcmp(seg, "Adobe", 5) == 0)
		{
			adobe = true;
			adobe_transform = seg[11];
		}
		else if (marker == M_COM)
			info->has_comment = true;

		pos += 2 + seglen;
	}

	/* Ran out of data before EOI. */
	if (!seen_sof)
		return img_fail(err, IMG_ERR_CORRUPT, "jpeg has no frame header (SOF): the data after the JPEG signature is not a JPEG");
	if (info->scans == 0)
		return img_fail(err, IMG_ERR_TRUNCATED, "jpeg is truncated: it ends before any image data (SOS)");
	return img_fail(err, IMG_ERR_TRUNCATED, "jpeg is truncated: it ends before the EOI marker");

finished:
	if (components == 1)
		info->colour = IMG_COLOUR_GRAY;
	else if (components == 3)
		info->colour = (adobe && adobe_transform == 0) ||
			(!jfif && !adobe && comp_ids[0] == 'R' && comp_ids[1] == 'G' && comp_ids[2] == 'B')
			? IMG_COLOUR_RGB : IMG_COLOUR_YCBCR;
	else
		info->colour = (adobe && adobe_transform == 2) ? IMG_COLOUR_YCCK : IMG_COLOUR_CMYK;
	if (info->icc_bytes > limits->max_metadata_bytes)
		return img_fail(err, IMG_ERR_METADATA_TOO_LARGE,
						"jpeg ICC profile is %zu bytes, over the limit of %zu",
						info->icc_bytes, limits->max_metadata_bytes);
	describe_icc_chunks(icc_chunk, icc_chunk_len, icc_chunks_declared, info);
	return IMG_OK;
}

/* ----------------------------------------------------------------- decode */

typedef struct strict_error_mgr
{
	struct jpeg_error_mgr pub;
	jmp_buf		jump;
	char		message[JMSG_LENGTH_MAX];
	bool		truncated;
	bool		every_warning;	/* no warning is harmless (as TJFLAG_STOPONWARNING) */
} strict_error_mgr;

static void
strict_error_exit(j_common_ptr cinfo)
{
	strict_error_mgr *mgr = (strict_error_mgr *) cinfo->err;

	(*cinfo->err->format_message) (cinfo, mgr->message);
	longjmp(mgr->jump, 1);
}

/* Warnings are errors, except the few that describe harmless oddities. */
static void
strict_emit_message(j_common_ptr cinfo, int level)
{
	strict_error_mgr *mgr = (strict_error_mgr *) cinfo->err;
	int			code = cinfo->err->msg_code;

	if (level >= 0)
		return;					/* trace messages */
	if (!mgr->every_warning &&
		(code == JWRN_JFIF_MAJOR || code == JWRN_ADOBE_XFORM || code == JWRN_BOGUS_ICC))
		return;
	if (code == JWRN_JPEG_EOF)
		mgr->truncated = true;
	(*cinfo->err->format_message) (cinfo, mgr->message);
	longjmp(mgr->jump, 1);
}

static void
silent_output(j_common_ptr cinfo)
{
	(void) cinfo;
}

/* A decompressor's error manager: the strict one above, silent. */
static void
strict_errors_init(j_decompress_ptr cinfo, strict_error_mgr *jerr)
{
	memset(jerr, 0, sizeof(*jerr));
	cinfo->err = jpeg_std_error(&jerr->pub);
	jerr->pub.error_exit = strict_error_exit;
	jerr->pub.emit_message = strict_emit_message;
	jerr->pub.output_message = silent_output;
}

/*
 * A memory source that hands libjpeg the data in slices and asks the
 * interrupt hook before each one.  When the hook says stop it suspends
 * (returns FALSE): jpeg_read_header, jpeg_start_decompress (which reads
 * every scan of a progressive file before the first row comes out) and
 * jpeg_read_scanlines then return without a result and the decoder is
 * destroyed on the normal path, with no longjmp through libjpeg.  At the
 * end of the data it warns JWRN_JPEG_EOF and supplies an EOI, as
 * jpeg_mem_src does, which the strict error manager reports as truncation.
 */
#define JPEG_SOURCE_SLICE (16 * 1024)

typedef struct sliced_source
{
	struct jpeg_source_mgr pub;
	const uint8_t *data;
	size_t		len;
	size_t		pos;			/* end of the slice libjpeg holds */
	size_t		slice;			/* bytes handed over at a time */
	bool		interruptible;	/* ask the interrupt hook at every slice */
	bool		interrupted;
} sliced_source;

static void
sliced_init(j_decompress_ptr cinfo)
{
	(void) cinfo;
}

static boolean
sliced_fill(j_decompress_ptr cinfo)
{
	static const JOCTET fake_eoi[2] = {0xFF, JPEG_EOI};
	sliced_source *src = (sliced_source *) cinfo->src;
	size_t		n;

	if (src->interruptible && img_interrupt_requested())
	{
		src->interrupted = true;
		return FALSE;
	}
	if (src->pos >= src->len)
	{
		WARNMS(cinfo, JWRN_JPEG_EOF);
		src->pub.next_input_byte = fake_eoi;
		src->pub.bytes_in_buffer = 2;
		return TRUE;
	}
	n = src->len - src->pos < src->slice ? src->len - src->pos : src->slice;
	src->pub.next_input_byte = src->data + src->pos;
	src->pub.bytes_in_buffer = n;
	src->pos += n;
	return TRUE;
}

/* The slices are contiguous, so skipping past one only moves pos. */
static void
sliced_skip(j_decompress_ptr cinfo, long num_bytes)
{
	sliced_source *src = (sliced_source *) cinfo->src;
	size_t		skip;

	if (num_bytes <= 0)
		return;
	skip = (size_t) num_bytes;
	if (skip <= src->pub.bytes_in_buffer)
	{
		src->pub.next_input_byte += skip;
		src->pub.bytes_in_buffer -= skip;
		return;
	}
	skip -= src->pub.bytes_in_buffer;
	src->pub.bytes_in_buffer = 0;
	src->pos += skip < src->len - src->pos ? skip : src->len - src->pos;
}

static void
sliced_term(j_decompress_ptr cinfo)
{
	(void) cinfo;
}

static void
sliced_source_init(j_decompress_ptr cinfo, sliced_source *src, const uint8_t *data, size_t len)
{
	memset(src, 0, sizeof(*src));
	src->data = data;
	src->len = len;
	src->slice = JPEG_SOURCE_SLICE;
	src->interruptible = true;
	src->pub.init_source = sliced_init;
	src->pub.fill_input_buffer = sliced_fill;
	src->pub.skip_input_data = sliced_skip;
	src->pub.resync_to_restart = jpeg_resync_to_restart;
	src->pub.term_source = sliced_term;
	cinfo->src = &src->pub;
}

/*
 * Smallest DCT scale M/8 (libjpeg-turbo decodes at any M from 1 to 8) that
 * keeps both sides at or above the minimum.
 */
static unsigned
choose_scale(uint32_t width, uint32_t height, uint32_t min_w, uint32_t min_h)
{
	if (min_w == 0 && min_h == 0)
		return 8;
	for (unsigned m = 1; m < 8; m++)
	{
		uint64_t	w = ((uint64_t) width * m + 7) / 8;
		uint64_t	h = ((uint64_t) height * m + 7) / 8;

		if (w >= min_w && h >= min_h)
			return m;
	}
	return 8;
}

/* Kept out of jpeg_decode so no local of the setjmp frame changes here. */
static void
copy_icc_profile(j_decompress_ptr cinfo, const img_limits *limits, img_decoded *out)
{
	JOCTET	   *icc = NULL;
	unsigned int icc_len = 0;

	if (!jpeg_read_icc_profile(cinfo, &icc, &icc_len) || icc == NULL)
		return;
	if (icc_len <= limits->max_metadata_bytes)
	{
		out->icc = img_alloc(icc_len);
		if (out->icc)
		{
			memcpy(out->icc, icc, icc_len);
			out->icc_len = icc_len;
		}
	}
	free(icc);
}

static img_status
jpeg_decode(const uint8_t *data, size_t len, const img_limits *limits,
			const img_info *info, uint32_t min_width, uint32_t min_height,
			img_decoded *out, img_error *err)
{
	struct jpeg_decompress_struct cinfo;
	strict_error_mgr jerr;
	sliced_source source;
	volatile img_status st = IMG_OK;
	bool		cmyk;

	memset(out, 0, sizeof(*out));
	out->orientation = info->orientation;
	strict_errors_init(&cinfo, &jerr);

	if (setjmp(jerr.jump))
	{
		st = jerr.truncated ? IMG_ERR_TRUNCATED : IMG_ERR_CORRUPT;
		img_fail(err, st, "jpeg is %s: %s",
				 jerr.truncated ? "truncated" : "corrupt", jerr.message);
		jpeg_destroy_decompress(&cinfo);
		img_decoded_free(out);
		return st;
	}

	jpeg_create_decompress(&cinfo);
	/* Bound libjpeg's own allocations (coefficient buffers of progressive files). */
	cinfo.mem->max_memory_to_use = 2048L * 1024 * 1024;
	sliced_source_init(&cinfo, &source, data, len);
	if (info->has_icc)
		jpeg_save_markers(&cinfo, JPEG_APP0 + 2, 0xFFFF);
	if (jpeg_read_header(&cinfo, TRUE) == JPEG_SUSPENDED)
		goto interrupted;

	if (cinfo.image_width != info->width || cinfo.image_height != info->height)
		longjmp(jerr.jump, 1);

	cmyk = cinfo.num_components == 4;
	cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_EXT_RGB;
	cinfo.scale_num = choose_scale(cinfo.image_width, cinfo.image_height, min_width, min_height);
	cinfo.scale_denom = 8;
	/*
	 * When the caller will shrink the image anyway, chroma is replicated
	 * rather than interpolated: the resampler's filter hides the difference
	 * (measured: under 0.05 dB) and the decoder's fastest path applies.
	 */
	if (min_width != 0 || min_height != 0)
		cinfo.do_fancy_upsampling = FALSE;

	if (info->has_icc)
		copy_icc_profile(&cinfo, limits, out);

	if (!jpeg_start_decompress(&cinfo))
		goto interrupted;
	if (img_raster_init(&out->raster, cinfo.output_width, cinfo.output_height,
						(uint32_t) cinfo.output_components, err) != IMG_OK)
	{
		st = err ? err->status : IMG_ERR_NO_MEMORY;
		jpeg_destroy_decompress(&cinfo);
		img_decoded_free(out);
		return st;
	}
	out->layout = cmyk ? IMG_LAYOUT_CMYK : IMG_LAYOUT_RGB;

	while (cinfo.output_scanline < cinfo.output_height)
	{
		JSAMPROW	rows[8];
		int			n = 0;

		/* a progressive file's rows come from memory: ask here too */
		if (img_interrupt_requested())
			goto interrupted;
		for (; n < 8 && cinfo.output_scanline + n < cinfo.output_height; n++)
			rows[n] = out->raster.pixels + (size_t) (cinfo.output_scanline + n) * out->raster.stride;
		if (jpeg_read_scanlines(&cinfo, rows, (JDIMENSION) n) == 0 && source.interrupted)
			goto interrupted;
	}
	if (!jpeg_finish_decompress(&cinfo))
		goto interrupted;

	/*
	 * CMYK JPEGs are written inverted (Adobe's convention, followed by every
	 * common writer with or without the APP14 marker); our CMYK layout is
	 * "0 = no ink", so turn it round once here.
	 */
	if (cmyk)
	{
		for (uint32_t y = 0; y < out->raster.height; y++)
		{
			uint8_t    *p = out->raster.pixels + (size_t) y * out->raster.stride;

			for (size_t i = 0; i < (size_t) out->raster.width * 4; i++)
				p[i] = (uint8_t) (255 - p[i]);
		}
	}
	jpeg_destroy_decompress(&cinfo);
	return st;

interrupted:
	jpeg_destroy_decompress(&cinfo);
	img_decoded_free(out);
	return img_fail(err, IMG_ERR_INTERRUPTED, "interrupted while decoding jpeg");
}

/* ------------------------------------------------------ decode in bands */

/*
 * A single-scan JPEG can be decoded in horizontal bands by several readers
 * at once: each reads the file from the start, lets libjpeg skip the rows
 * above its band (jpeg_skip_scanlines entropy-decodes them but does no
 * IDCT, upsampling or colour conversion, which are most of the work) and
 * decodes its own rows into the shared raster.  Bands start on whole iMCU
 * rows, where the skipped rows leave the decoder in the state a full
 * decode would, so the result is the same bytes.  The last band reads the
 * whole entropy-coded data, so a damaged file fails as it would in one
 * reading.
 */
typedef struct jpeg_band
{
	const uint8_t *data;
	size_t		len;
	unsigned	scale_num;
	bool		fancy;
	uint32_t	out_width;		/* what the planning reader computed */
	uint32_t	out_height;
	uint32_t	first;			/* rows [first, end) */
	uint32_t	end;
	bool		last;
	img_raster *raster;
	img_status	status;
	img_error	err;
} jpeg_band;

static void
decode_band(void *arg)
{
	jpeg_band  *band = arg;
	struct jpeg_decompress_struct cinfo;
	strict_error_mgr jerr;
	sliced_source source;

	strict_errors_init(&cinfo, &jerr);
	if (setjmp(jerr.jump))
	{
		band->status = jerr.truncated ? IMG_ERR_TRUNCATED : IMG_ERR_CORRUPT;
		img_fail(&band->err, band->status, "jpeg is %s: %s",
				 jerr.truncated ? "truncated" : "corrupt", jerr.message);
		jpeg_destroy_decompress(&cinfo);
		return;
	}
	jpeg_create_decompress(&cinfo);
	cinfo.mem->max_memory_to_use = 2048L * 1024 * 1024;
	sliced_source_init(&cinfo, &source, band->data, band->len);
	if (jpeg_read_header(&cinfo, TRUE) == JPEG_SUSPENDED)
		goto interrupted;
	cinfo.out_color_space = JCS_EXT_RGB;
	cinfo.scale_num = band->scale_num;
	cinfo.scale_denom = 8;
	cinfo.do_fancy_upsampling = band->fancy ? TRUE : FALSE;
	if (!jpeg_start_decompress(&cinfo))
		goto interrupted;
	if (cinfo.output_width != band->out_width || cinfo.output_height != band->out_height ||
		(uint32_t) cinfo.output_components != band->raster->channels)
	{
		band->status = img_fail(&band->err, IMG_ERR_INTERNAL,
								"jpeg band decoder saw %ux%u, planned %ux%u",
								cinfo.output_width, cinfo.output_height,
								band->out_width, band->out_height);
		jpeg_destroy_decompress(&cinfo);
		return;
	}
	if (band->first > 0 &&
		(jpeg_skip_scanlines(&cinfo, band->first) != band->first || source.interrupted))
	{
		if (source.interrupted)
			goto interrupted;
		jpeg_destroy_decompress(&cinfo);
		band->status = img_fail(&band->err, IMG_ERR_INTERNAL,
								"jpeg band decoder could not skip to row %u", band->first);
		return;
	}
	while (cinfo.output_scanline < band->end)
	{
		JSAMPROW	rows[8];
		int			n = 0;

		if (img_interrupt_requested())
			goto interrupted;
		for (; n < 8 && cinfo.output_scanline + n < band->end; n++)
			rows[n] = band->raster->pixels +
				(size_t) (cinfo.output_scanline + n) * band->raster->stride;
		if (jpeg_read_scanlines(&cinfo, rows, (JDIMENSION) n) == 0 && source.interrupted)
			goto interrupted;
	}
	/* the last band reads to EOI, as a whole decode does */
	if (band->last && !jpeg_finish_decompress(&cinfo))
		goto interrupted;
	jpeg_destroy_decompress(&cinfo);
	band->status = IMG_OK;
	return;

interrupted:
	jpeg_destroy_decompress(&cinfo);
	band->status = img_fail(&band->err, IMG_ERR_INTERRUPTED, "interrupted while decoding jpeg");
}

uint64_t	img_parallel_decode_min_pixels = IMG_PARALLEL_MIN_PIXELS;

/*
 * Read the header once to plan the bands: the output size at the scale
 * jpeg_decode would choose, and the height of an iMCU row in output rows.
 * False when the file is not one to split (several scans, not YCbCr or
 * grey, an ICC profile, too small, shrunk below IMG_PARALLEL_MIN_SCALE/8)
 * or the header does not read: the caller then decodes it in one piece,
 * which gives any error its message.
 */
static bool
plan_bands(const uint8_t *data, size_t len, const img_info *info, uint32_t min_width,
		   uint32_t min_height, unsigned *scale_num, bool *fancy, uint32_t *out_width,
		   uint32_t *out_height, uint32_t *channels, uint32_t *imcu_rows)
{
	struct jpeg_decompress_struct cinfo;
	strict_error_mgr jerr;
	sliced_source source;
	volatile bool ok = false;

	if (info->has_icc)
		return false;
	strict_errors_init(&cinfo, &jerr);
	if (setjmp(jerr.jump))
	{
		jpeg_destroy_decompress(&cinfo);
		return false;
	}
	jpeg_create_decompress(&cinfo);
	sliced_source_init(&cinfo, &source, data, len);
	if (jpeg_read_header(&cinfo, TRUE) != JPEG_HEADER_OK ||
		cinfo.image_width != info->width || cinfo.image_height != info->height ||
		jpeg_has_multiple_scans(&cinfo) ||
		!(cinfo.num_components == 1 || cinfo.num_components == 3) ||
		!(cinfo.jpeg_color_space == JCS_YCbCr || cinfo.jpeg_color_space == JCS_GRAYSCALE))
	{
		jpeg_destroy_decompress(&cinfo);
		return false;
	}
	cinfo.out_color_space = JCS_EXT_RGB;
	cinfo.scale_num = choose_scale(cinfo.image_width, cinfo.image_height, min_width, min_height);
	cinfo.scale_denom = 8;
	cinfo.do_fancy_upsampling = (min_width != 0 || min_height != 0) ? FALSE : TRUE;
	jpeg_calc_output_dimensions(&cinfo);
	*scale_num = cinfo.scale_num;
	*fancy = cinfo.do_fancy_upsampling;
	*out_width = cinfo.output_width;
	*out_height = cinfo.output_height;
	*channels = (uint32_t) cinfo.output_components;
	*imcu_rows = (uint32_t) cinfo.max_v_samp_factor * (uint32_t) cinfo.min_DCT_scaled_size;
	/*
	 * Below 4/8 the IDCT, upsampling and colour conversion that the bands
	 * share are little next to the entropy decoding each band repeats for
	 * the rows above it (at 1/8, nearly all of a decode): splitting would
	 * only burn the idle core.
	 */
	ok = *imcu_rows > 0 && *scale_num >= IMG_PARALLEL_MIN_SCALE &&
		(uint64_t) *out_width * *out_height >= img_parallel_decode_min_pixels;
	jpeg_destroy_decompress(&cinfo);
	return ok;
}

/*
 * The codec's decode_threads: bands on up to threads threads, the same
 * bytes as jpeg_decode whatever the count.  Only single-scan YCbCr/grey
 * files large enough to be worth it are split; others are decoded on the
 * calling thread.
 */
static img_status
jpeg_decode_threads(const uint8_t *data, size_t len, const img_limits *limits,
					const img_info *info, uint32_t min_width, uint32_t min_height,
					unsigned threads, img_decoded *out, img_error *err)
{
	jpeg_band	bands[IMG_MAX_THREADS];
	unsigned	scale_num;
	bool		fancy;
	uint32_t	out_width;
	uint32_t	out_height;
	uint32_t	channels;
	uint32_t	imcu_rows;
	uint32_t	imcu_total;
	uint32_t	first = 0;
	size_t		n;
	img_status	st;

	if (threads > IMG_MAX_THREADS)
		threads = IMG_MAX_THREADS;
	if (threads < 2 ||
		!plan_bands(data, len, info, min_width, min_height, &scale_num, &fancy,
					&out_width, &out_height, &channels, &imcu_rows))
		return jpeg_decode(data, len, limits, info, min_width, min_height, out, err);

	/* whole iMCU rows per band, the remainder spread over the first bands */
	imcu_total = (out_height + imcu_rows - 1) / imcu_rows;
	n = threads < imcu_total ? threads : imcu_total;
	if (n < 2)
		return jpeg_decode(data, len, limits, info, min_width, min_height, out, err);

	memset(out, 0, sizeof(*out));
	out->orientation = info->orientation;
	out->layout = IMG_LAYOUT_RGB;
	st = img_raster_init(&out->raster, out_width, out_height, channels, err);
	if (st != IMG_OK)
		return st;

	memset(bands, 0, sizeof(bands));
	for (size_t i = 0; i < n; i++)
	{
		uint32_t	share = imcu_total / n + (i < imcu_total % n ? 1 : 0);
		uint64_t	end = (uint64_t) first + (uint64_t) share * imcu_rows;

		bands[i].data = data;
		bands[i].len = len;
		bands[i].scale_num = scale_num;
		bands[i].fancy = fancy;
		bands[i].out_width = out_width;
		bands[i].out_height = out_height;
		bands[i].first = first;
		bands[i].end = (i == n - 1 || end > out_height) ? out_height : (uint32_t) end;
		bands[i].last = i == n - 1;
		bands[i].raster = &out->raster;
		first = bands[i].end;
	}
	img_run_tasks(decode_band, bands, sizeof(bands[0]), n);

	/* the damage the last band (the one that read everything) found comes first */
	for (size_t k = 0; k < n; k++)
	{
		jpeg_band  *band = &bands[k == 0 ? n - 1 : k - 1];

		if (band->status != IMG_OK)
		{
			img_decoded_free(out);
			if (err != NULL)
				*err = band->err;
			return band->status;
		}
	}
	return IMG_OK;
}

/* ------------------------------------------------- the upload fast path */

/*
 * libjpeg-turbo's Huffman decoder has a fast path, taken while it holds at
 * least 512 bytes per block of an MCU and the scan has no restart
 * interval, and a careful one.  The fast path decodes an invalid Huffman
 * code as zero without a warning; the careful one reports it.  The check
 * reads the file once, in slices smaller than the fast path needs
 * (CAREFUL_SLICE), so that every block goes through the careful decoder:
 * no invalid code anywhere, where the transform (which reads the whole
 * file at once, mostly on the fast path) would have decoded one as zero.
 *
 * With every code valid the two decoders consume the same bits, meet the
 * same markers and warn alike, with one exception: how far they read
 * ahead.  Whole bytes after the last code of a scan are dropped without a
 * word when the bit reader has already fetched them, and reported as
 * extraneous data when it has not, and the two fill their bit buffers
 * differently.  A careful reading without a warning has fetched every
 * byte up to the marker that ends the scan; what it holds unread at the
 * end (tail_bits below) then tells whether any whole byte followed the
 * last code.  None: the transform's reader, which must fetch the last
 * code's byte too and cannot pass the marker, ends at the same place and
 * is silent too.  Any: its verdict depends on its read-ahead, and the
 * file goes to the transform, which gives it.  (Multi-scan files, copied
 * only on request, are still read a second time as the transform reads
 * them.)
 */
#define CAREFUL_SLICE 256

/*
 * TurboJPEG's TJFLAG_LIMITSCANS, with which the transform reads uploads:
 * its progress monitor stops a file at scan 501.  The monitor below stops
 * there too, and asks the interrupt hook: libjpeg calls it at every row of
 * MCUs it reads, and leaving through the error manager's longjmp is what
 * TurboJPEG does as well.
 */
#define TJ_SCAN_LIMIT 500

typedef struct check_progress
{
	struct jpeg_progress_mgr pub;
	bool		interrupted;
} check_progress;

static void
check_progress_monitor(j_common_ptr cinfo)
{
	strict_error_mgr *mgr = (strict_error_mgr *) cinfo->err;
	check_progress *progress = (check_progress *) cinfo->progress;

	if (cinfo->is_decompressor && ((j_decompress_ptr) cinfo)->input_scan_number > TJ_SCAN_LIMIT)
		longjmp(mgr->jump, 1);
	if (img_interrupt_requested())
	{
		progress->interrupted = true;
		longjmp(mgr->jump, 1);
	}
}

/*
 * Whether copying the file's markers reproduces its pixels and the
 * transform would take it too: Huffman-coded, 8-bit, grey or YCbCr whose
 * colour space a decoder infers without the JFIF or Adobe marker the copy
 * drops (libjpeg takes components 'R','G','B' without either for RGB),
 * sampled as TurboJPEG knows (4:4:4, 4:2:2, 4:2:0, 4:4:0, 4:1:1, in their
 * standard form: the transform refuses what it cannot name), and in one
 * scan unless multi_scan.
 */
static bool
copyable_frame(j_decompress_ptr cinfo, bool multi_scan)
{
	const jpeg_component_info *c = cinfo->comp_info;
	int			h,
				v;

	if (cinfo->arith_code || cinfo->data_precision != 8)
		return false;
	if (!multi_scan && (cinfo->progressive_mode || cinfo->comps_in_scan != cinfo->num_components))
		return false;
	if (cinfo->num_components == 1)
		return cinfo->jpeg_color_space == JCS_GRAYSCALE;
	if (cinfo->num_components != 3 || cinfo->jpeg_color_space != JCS_YCbCr)
		return false;
	if (c[0].component_id == 'R' && c[1].component_id == 'G' && c[2].component_id == 'B')
		return false;
	for (int i = 1; i < 3; i++)
		if (c[i].h_samp_factor != 1 || c[i].v_samp_factor != 1)
			return false;
	h = c[0].h_samp_factor;
	v = c[0].v_samp_factor;
	return (h == 1 && v == 1) || (h == 2 && v == 1) || (h == 2 && v == 2) ||
		(h == 1 && v == 2) || (h == 4 && v == 1);
}

/*
 * What jpeg_copy_critical_parameters() refuses when the transform writes
 * its output, read from the decoder's state at EOI: a component whose
 * quantisation table slot is empty, or whose slot was redefined after the
 * component's first scan.
 */
static bool
transform_would_write(j_decompress_ptr cinfo)
{
	for (int ci = 0; ci < cinfo->num_components; ci++)
	{
		const jpeg_component_info *comp = &cinfo->comp_info[ci];
		int			tblno = comp->quant_tbl_no;

		if (tblno < 0 || tblno >= NUM_QUANT_TBLS || cinfo->quant_tbl_ptrs[tblno] == NULL)
			return false;
		if (comp->quant_table != NULL &&
			memcmp(comp->quant_table->quantval, cinfo->quant_tbl_ptrs[tblno]->quantval,
				   sizeof(comp->quant_table->quantval)) != 0)
			return false;
	}
	return true;
}

/*
 * The bits libjpeg-turbo's sequential Huffman decoder (jdhuff.c) holds
 * unread in its bit buffer after the last MCU it decoded: its state starts
 * with the public part and the bit buffer saved at the end of each MCU
 * (bitread_perm_state: the buffer, then the count of bits in it).  The
 * library's layout is not an interface, so tail_bits_readable() checks it
 * on files whose answer is known before any upload relies on it.
 */
typedef struct huff_decoder_head
{
	struct jpeg_entropy_decoder pub;
	size_t		get_buffer;
	int			bits_left;
} huff_decoder_head;

static int
tail_bits(j_decompress_ptr cinfo)
{
	const huff_decoder_head *head = (const huff_decoder_head *) cinfo->entropy;

	return head->bits_left;
}

/*
 * One reading of the whole file (careful: in CAREFUL_SLICE slices, else
 * at once): true when its frame is copyable and every scan decoded
 * without a warning, within the scan limit, to EOI, and the transform
 * could write it.  *interrupted when the interrupt hook stopped it.
 * *unread_bits, for a clean reading of a file in one scan, is what its
 * Huffman decoder held unread at the end of the scan (-1 otherwise).
 */
static bool
clean_reading(const uint8_t *data, size_t len, bool multi_scan, bool careful, bool *interrupted,
			  int *unread_bits)
{
	struct jpeg_decompress_struct cinfo;
	strict_error_mgr jerr;
	sliced_source source;
	check_progress progress;
	bool		clean = false;
	bool		one_scan = false;

	*unread_bits = -1;
	strict_errors_init(&cinfo, &jerr);
	jerr.every_warning = true;
	memset(&progress, 0, sizeof(progress));
	progress.pub.progress_monitor = check_progress_monitor;

	if (setjmp(jerr.jump))
	{
		jpeg_destroy_decompress(&cinfo);
		*interrupted = progress.interrupted;
		return false;
	}

	jpeg_create_decompress(&cinfo);
	cinfo.progress = &progress.pub;
	if (careful)
	{
		sliced_source_init(&cinfo, &source, data, len);
		source.slice = CAREFUL_SLICE;
		source.interruptible = false;	/* the progress monitor asks */
	}
	else
		jpeg_mem_src(&cinfo, data, (unsigned long) len);
	jpeg_read_header(&cinfo, TRUE);
	if (!copyable_frame(&cinfo, multi_scan))
	{
		jpeg_destroy_decompress(&cinfo);
		return false;
	}

	if (cinfo.progressive_mode || cinfo.comps_in_scan != cinfo.num_components)
	{
		/* several scans: the coefficients are kept between them, as the transform keeps them */
		jpeg_read_coefficients(&cinfo);
	}
	else
	{
		/*
		 * One scan: every block is entropy-decoded, but only its DC term
		 * is turned into a pixel (1/8 scale) and no coefficient buffer of
		 * the whole image is filled.
		 */
		JSAMPARRAY	rows;

		one_scan = true;
		cinfo.scale_num = 1;
		cinfo.scale_denom = 8;
		cinfo.out_color_space = cinfo.jpeg_color_space;
		cinfo.do_fancy_upsampling = FALSE;
		jpeg_start_decompress(&cinfo);
		rows = (*cinfo.mem->alloc_sarray) ((j_common_ptr) &cinfo, JPOOL_IMAGE,
										   cinfo.output_width * (JDIMENSION) cinfo.output_components,
										   (JDIMENSION) cinfo.rec_outbuf_height);
		while (cinfo.output_scanline < cinfo.output_height)
			jpeg_read_scanlines(&cinfo, rows, (JDIMENSION) cinfo.rec_outbuf_height);
	}

	/* on to EOI, as the transform reads (neither source suspends) */
	for (;;)
	{
		int			rc = jpeg_consume_input(&cinfo);

		if (rc == JPEG_REACHED_EOI || rc == JPEG_SUSPENDED)
		{
			clean = rc == JPEG_REACHED_EOI && transform_would_write(&cinfo);
			/* (the decoder keeps its state until the next scan, and there is none) */
			if (clean && one_scan)
				*unread_bits = tail_bits(&cinfo);
			break;
		}
	}
	jpeg_destroy_decompress(&cinfo);
	return clean;
}

/*
 * Whether tail_bits() reads what it means to: three grey 8x8 files, one
 * block whose two codes (DC 0 and end of block, one bit each) leave six
 * bits of the scan's only byte unread, then that byte followed by 0, 1
 * and 2 whole bytes before EOI: 6, 14 and 22 bits unread.
 */
static bool
tail_bits_readable(void)
{
	static _Atomic int known;	/* 0 not yet, 1 readable, 2 not */
	static const uint8_t head[] = {
		0xFF, 0xD8,
		/* DQT 0, all ones */
		0xFF, 0xDB, 0x00, 0x43, 0x00,
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
		/* SOF0, 8x8, one component */
		0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x08, 0x00, 0x08, 0x01, 0x01, 0x11, 0x00,
		/* DHT DC 0 and AC 0: the one symbol 0, coded 0 */
		0xFF, 0xC4, 0x00, 0x14, 0x00, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00,
		0xFF, 0xC4, 0x00, 0x14, 0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00,
		/* SOS, then 00 and padding ones */
		0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00,
		0x3F,
	};
	int			k = known;

	if (k == 0)
	{
		k = 1;
		for (size_t extra = 0; extra <= 2 && k == 1; extra++)
		{
			uint8_t		file[sizeof(head) + 4];
			bool		interrupted = false;
			int			unread;

			memcpy(file, head, sizeof(head));
			memset(file + sizeof(head), 0x5A, extra);
			file[sizeof(head) + extra] = 0xFF;
			file[sizeof(head) + extra + 1] = 0xD9;
			if (!clean_reading(file, sizeof(head) + extra + 2, false, true, &interrupted, &unread) ||
				unread != 6 + 8 * (int) extra)
				k = 2;
			if (interrupted)
				return false;	/* no answer: ask again next time */
		}
		known = k;
	}
	return k == 1;
}

img_status
img_jpeg_check_copyable(const uint8_t *data, size_t len, bool multi_scan, bool *unsuitable,
						img_error *err)
{
	bool		interrupted = false;
	int			unread = -1;
	int			ignored;
	img_status	st;

	*unsuitable = true;
	st = img_check_interrupt(err, "checking jpeg");
	if (st != IMG_OK)
		return st;
	if (clean_reading(data, len, multi_scan, true, &interrupted, &unread))
	{
		if (!multi_scan && unread >= 0 && tail_bits_readable())
			/* one scan: read once, no whole byte after its last code */
			*unsuitable = unread >= 8;
		else if (clean_reading(data, len, multi_scan, false, &interrupted, &ignored))
			/* several scans (or no view of the decoder's state): as the transform reads too */
			*unsuitable = false;
	}
	if (interrupted)
		return img_fail(err, IMG_ERR_INTERRUPTED, "interrupted while checking jpeg");
	return IMG_OK;
}

const img_codec img_codec_jpeg = {
	.format = IMG_FORMAT_JPEG,
	.probe = jpeg_probe,
	.decode = jpeg_decode,
	.decode_threads = jpeg_decode_threads,
};
