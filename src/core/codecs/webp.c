/*
 * webp.c — WebP input for the image core (libwebp 1.2 + libwebpdemux).
 *
 * The probe checks the RIFF header against the data length itself (a RIFF
 * size larger than the data is a truncated file; bytes after the RIFF
 * payload are trailing data and are not handed to libwebp), then uses
 * WebPGetFeatures for the bitstream header and the demuxer for the frame
 * count and the VP8X metadata chunks (ICCP, EXIF, XMP).  Neither decodes
 * pixels.
 *
 * The decoder decodes a still image straight into our raster; for an
 * animation it composes the first frame with WebPAnimDecoder (which
 * allocates the canvas, already checked against the limits by then).
 */
#include "codec.h"

#include <string.h>
#include <webp/decode.h>
#include <webp/demux.h>

static img_status
check_dimensions(uint32_t width, uint32_t height, const img_limits *limits,
				 img_error *err)
{
	if (width == 0 || height == 0)
		return img_fail(err, IMG_ERR_BAD_DIMENSIONS,
						"webp has zero width or height (%ux%u)", width, height);
	if (limits == NULL)
		return IMG_OK;
	if (width > limits->max_side || height > limits->max_side)
		return img_fail(err, IMG_ERR_BAD_DIMENSIONS,
						"webp is %ux%u, a side is over the limit of %u pixels",
						width, height, limits->max_side);
	if ((uint64_t) width * height > limits->max_pixels)
		return img_fail(err, IMG_ERR_TOO_MANY_PIXELS,
						"webp is %ux%u = %llu pixels, over the limit of %llu",
						width, height, (unsigned long long) width * height,
						(unsigned long long) limits->max_pixels);
	return IMG_OK;
}

/*
 * Validate the RIFF header and return the length of the RIFF data (header
 * included), which is what libwebp gets to see.
 */
static img_status
riff_length(const uint8_t *data, size_t len, size_t *riff_len, img_error *err)
{
	uint32_t	size;

	if (len < 12)
		return img_fail(err, IMG_ERR_TRUNCATED, "webp is truncated: the RIFF header is incomplete");
	if (memcmp(data, "RIFF", 4) != 0 || memcmp(data + 8, "WEBP", 4) != 0)
		return img_fail(err, IMG_ERR_CORRUPT, "webp RIFF header is damaged");
	size = img_le32(data + 4);
	if (size < 4)
		return img_fail(err, IMG_ERR_CORRUPT, "webp RIFF size %u is too small", size);
	if ((uint64_t) size + 8 > len)
		return img_fail(err, IMG_ERR_TRUNCATED,
						"webp is truncated: the RIFF header declares %llu bytes but only %zu are present",
						(unsigned long long) size + 8, len);
	*riff_len = (size_t) size + 8;
	return IMG_OK;
}

static img_status
status_error(img_error *err, VP8StatusCode code, const char *what)
{
	switch (code)
	{
		case VP8_STATUS_NOT_ENOUGH_DATA:
			return img_fail(err, IMG_ERR_TRUNCATED, "webp is truncated: %s ran out of data", what);
		case VP8_STATUS_OUT_OF_MEMORY:
			return img_fail(err, IMG_ERR_NO_MEMORY, "out of memory in %s", what);
		case VP8_STATUS_UNSUPPORTED_FEATURE:
			return img_fail(err, IMG_ERR_CORRUPT, "webp uses a feature libwebp does not support (%s)", what);
		default:
			return img_fail(err, IMG_ERR_CORRUPT, "webp is corrupt: %s failed with status %d", what, (int) code);
	}
}

static img_status
webp_probe(const uint8_t *data, size_t len, const img_limits *limits,
		   img_info *info, img_error *err)
{
	img_format	format = info->format;
	uint32_t	max_frames = limits ? limits->max_frames : 1000;
	size_t		max_meta = limits ? limits->max_metadata_bytes : 8u * 1024 * 1024;
	WebPBitstreamFeatures features;
	WebPData	wd;
	WebPDemuxer *demux;
	WebPChunkIterator it;
	VP8StatusCode code;
	size_t		rlen;
	img_status	st;

	memset(info, 0, sizeof(*info));
	info->format = format;
	info->frames = 1;
	info->orientation = 1;
	info->bit_depth = 8;

	st = riff_length(data, len, &rlen, err);
	if (st != IMG_OK)
	{
		/* still report what the header claims, for the caller's limit check */
		if (st == IMG_ERR_TRUNCATED && WebPGetFeatures(data, len, &features) == VP8_STATUS_OK)
		{
			info->width = (uint32_t) features.width;
			info->height = (uint32_t) features.height;
			info->has_alpha = features.has_alpha != 0;
		}
		return st;
	}
	info->has_trailing_data = rlen < len;

	code = WebPGetFeatures(data, rlen, &features);
	if (code != VP8_STATUS_OK)
		return status_error(err, code, "reading the header");
	info->width = (uint32_t) features.width;
	info->height = (uint32_t) features.height;
	info->has_alpha = features.has_alpha != 0;
	info->colour = features.format == 2 ? IMG_COLOUR_RGB : IMG_COLOUR_YCBCR;
	st = check_dimensions(info->width, info->height, limits, err);
	if (st != IMG_OK)
		return st;

	wd.bytes = data;
	wd.size = rlen;
	demux = WebPDemux(&wd);
	if (demux == NULL)
		return img_fail(err, IMG_ERR_CORRUPT, "webp container is invalid (the demuxer rejected it)");
	info->frames = WebPDemuxGetI(demux, WEBP_FF_FRAME_COUNT);
	if (info->frames == 0)
	{
		WebPDemuxDelete(demux);
		return img_fail(err, IMG_ERR_CORRUPT, "webp contains no frame");
	}
	if (info->frames > max_frames)
	{
		WebPDemuxDelete(demux);
		return img_fail(err, IMG_ERR_TOO_MANY_FRAMES,
						"webp animation has %u frames, over the limit of %u",
						info->frames, max_frames);
	}
	/* an animation's canvas is what we decode; the first frame may be smaller */
	if (features.has_animation)
	{
		info->width = WebPDemuxGetI(demux, WEBP_FF_CANVAS_WIDTH);
		info->height = WebPDemuxGetI(demux, WEBP_FF_CANVAS_HEIGHT);
		st = check_dimensions(info->width, info->height, limits, err);
		if (st != IMG_OK)
		{
			WebPDemuxDelete(demux);
			return st;
		}
	}

	if (WebPDemuxGetChunk(demux, "ICCP", 1, &it))
	{
		info->has_icc = true;
		info->icc_bytes = it.chunk.size;
		if (it.chunk.size > max_meta)
			st = img_fail(err, IMG_ERR_METADATA_TOO_LARGE,
						  "webp ICC profile is %zu bytes, over the metadata limit of %zu bytes",
						  it.chunk.size, max_meta);
		else
			img_icc_describe(it.chunk.bytes, it.chunk.size, info);
		WebPDemuxReleaseChunkIterator(&it);
	}
	if (WebPDemuxGetChunk(demux, "EXIF", 1, &it))
	{
		/* the spec says TIFF header first; some writers keep "Exif\0\0" */
		bool		tiff = !(it.chunk.size >= 6 && memcmp(it.chunk.bytes, "Exif\0\0", 6) == 0);

		info->has_exif = true;
		img_exif_scan(it.chunk.bytes, it.chunk.size, tiff, info);
		WebPDemuxReleaseChunkIterator(&it);
	}
	if (WebPDemuxGetChunk(demux, "XMP ", 1, &it))
	{
		info->has_xmp = true;
		WebPDemuxReleaseChunkIterator(&it);
	}
	WebPDemuxDelete(demux);
	return st;
}

/* Copy the ICCP chunk, bounded by the metadata limit. */
static img_status
copy_icc(const uint8_t *data, size_t rlen, size_t max, img_decoded *out,
		 img_error *err)
{
	WebPData	wd = {data, rlen};
	WebPDemuxer *demux = WebPDemux(&wd);
	WebPChunkIterator it;
	img_status	st = IMG_OK;

	if (demux == NULL)
		return img_fail(err, IMG_ERR_CORRUPT, "webp container is invalid (the demuxer rejected it)");
	if (WebPDemuxGetChunk(demux, "ICCP", 1, &it))
	{
		if (it.chunk.size > max)
			st = img_fail(err, IMG_ERR_METADATA_TOO_LARGE,
						  "webp ICC profile is %zu bytes, over the metadata limit of %zu bytes",
						  it.chunk.size, max);
		else if (it.chunk.size > 0)
		{
			out->icc = img_alloc(it.chunk.size);
			if (out->icc == NULL)
				st = img_fail(err, IMG_ERR_NO_MEMORY, "out of memory copying the webp ICC profile");
			else
			{
				memcpy(out->icc, it.chunk.bytes, it.chunk.size);
				out->icc_len = it.chunk.size;
			}
		}
		WebPDemuxReleaseChunkIterator(&it);
	}
	WebPDemuxDelete(demux);
	return st;
}

static img_status
decode_animation(const uint8_t *data, size_t rlen, const img_limits *limits,
				 img_decoded *out, img_error *err)
{
	WebPData	wd = {data, rlen};
	WebPAnimDecoderOptions opt;
	WebPAnimDecoder *dec;
	WebPAnimInfo ai;
	uint8_t    *canvas;
	int			timestamp;
	img_status	st;

	if (!WebPAnimDecoderOptionsInit(&opt))
		return img_fail(err, IMG_ERR_INTERNAL, "libwebp version mismatch");
	opt.color_mode = MODE_RGBA;
	opt.use_threads = 0;
	dec = WebPAnimDecoderNew(&wd, &opt);
	if (dec == NULL)
		return img_fail(err, IMG_ERR_CORRUPT, "webp animation is invalid (the decoder rejected it)");
	if (!WebPAnimDecoderGetInfo(dec, &ai))
	{
		WebPAnimDecoderDelete(dec);
		return img_fail(err, IMG_ERR_CORRUPT, "webp animation header is invalid");
	}
	st = check_dimensions(ai.canvas_width, ai.canvas_height, limits, err);
	/* libwebp decodes the first frame in one call: ask before and after */
	if (st == IMG_OK)
		st = img_check_interrupt(err, "decoding webp animation");
	if (st == IMG_OK && !WebPAnimDecoderGetNext(dec, &canvas, &timestamp))
		st = img_fail(err, IMG_ERR_CORRUPT, "webp animation's first frame does not decode");
	if (st == IMG_OK)
		st = img_check_interrupt(err, "decoding webp animation");
	if (st == IMG_OK)
		st = img_raster_init(&out->raster, ai.canvas_width, ai.canvas_height, 4, err);
	if (st == IMG_OK)
	{
		/* WebPAnimDecoder's canvas is packed: stride = width * 4, as ours */
		memcpy(out->raster.pixels, canvas, out->raster.stride * out->raster.height);
		out->layout = IMG_LAYOUT_RGBA;
	}
	WebPAnimDecoderDelete(dec);
	return st;
}

/* How much more of the data each incremental decoding step is given. */
#define WEBP_DECODE_SLICE (16 * 1024)

static img_status
decode_still(const uint8_t *data, size_t rlen, bool alpha, img_decoded *out,
			 img_error *err)
{
	WebPDecoderConfig config;
	WebPIDecoder *idec;
	VP8StatusCode code;
	img_status	st;

	if (!WebPInitDecoderConfig(&config))
		return img_fail(err, IMG_ERR_INTERNAL, "libwebp version mismatch");
	code = WebPGetFeatures(data, rlen, &config.input);
	if (code != VP8_STATUS_OK)
		return status_error(err, code, "reading the header");
	st = img_raster_init(&out->raster, (uint32_t) config.input.width,
						 (uint32_t) config.input.height, alpha ? 4 : 3, err);
	if (st != IMG_OK)
		return st;
	out->layout = alpha ? IMG_LAYOUT_RGBA : IMG_LAYOUT_RGB;
	config.output.colorspace = alpha ? MODE_RGBA : MODE_RGB;
	config.output.is_external_memory = 1;
	config.output.u.RGBA.rgba = out->raster.pixels;
	config.output.u.RGBA.stride = (int) out->raster.stride;
	config.output.u.RGBA.size = out->raster.stride * out->raster.height;

	/*
	 * Incrementally, a slice more of the data at a time, so that the
	 * caller's interrupt hook is asked between slices (WebPDecode would
	 * decode the whole picture in one call).
	 */
	idec = WebPIDecode(NULL, 0, &config);
	if (idec == NULL)
		return img_fail(err, IMG_ERR_NO_MEMORY, "out of memory creating the webp decoder");
	code = VP8_STATUS_SUSPENDED;
	for (size_t fed = 0; fed < rlen && code == VP8_STATUS_SUSPENDED;)
	{
		st = img_check_interrupt(err, "decoding webp");
		if (st != IMG_OK)
			break;
		fed += rlen - fed < WEBP_DECODE_SLICE ? rlen - fed : WEBP_DECODE_SLICE;
		code = WebPIUpdate(idec, data, fed);
	}
	WebPIDelete(idec);
	WebPFreeDecBuffer(&config.output);
	if (st != IMG_OK)
		return st;
	if (code == VP8_STATUS_SUSPENDED)
		code = VP8_STATUS_NOT_ENOUGH_DATA;	/* all of it given, still more wanted */
	if (code != VP8_STATUS_OK)
		return status_error(err, code, "decoding");
	return IMG_OK;
}

static img_status
webp_decode(const uint8_t *data, size_t len, const img_limits *limits,
			const img_info *info, uint32_t min_width, uint32_t min_height,
			img_decoded *out, img_error *err)
{
	size_t		max_meta = limits ? limits->max_metadata_bytes : 8u * 1024 * 1024;
	WebPBitstreamFeatures features;
	VP8StatusCode code;
	size_t		rlen;
	img_status	st;

	(void) min_width;
	(void) min_height;
	memset(out, 0, sizeof(*out));
	out->orientation = (info && info->orientation >= 1 && info->orientation <= 8) ? info->orientation : 1;

	st = riff_length(data, len, &rlen, err);
	if (st != IMG_OK)
		return st;
	code = WebPGetFeatures(data, rlen, &features);
	if (code != VP8_STATUS_OK)
		return status_error(err, code, "reading the header");
	st = check_dimensions((uint32_t) features.width, (uint32_t) features.height, limits, err);
	if (st != IMG_OK)
		return st;

	if (features.has_animation)
		st = decode_animation(data, rlen, limits, out, err);
	else
		st = decode_still(data, rlen, features.has_alpha != 0, out, err);
	if (st == IMG_OK)
		st = copy_icc(data, rlen, max_meta, out, err);
	if (st != IMG_OK)
		img_decoded_free(out);
	return st;
}

const img_codec img_codec_webp = {
	.format = IMG_FORMAT_WEBP,
	.probe = webp_probe,
	.decode = webp_decode,
};
