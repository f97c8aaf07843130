/*
 * probe.c — header-only inspection under limits.
 *
 * Order matters: size first (before reading anything), then the magic
 * number, then the format's header, then the limits on what the header
 * claims.  A dimension over the limit is reported even when the file is
 * also truncated or damaged further on, because "65000x65000" is the more
 * useful reason to give an operator than "truncated".
 */
#include "codec.h"

#include <string.h>

const img_codec *
img_codec_for(img_format format)
{
	switch (format)
	{
		case IMG_FORMAT_JPEG:
			return &img_codec_jpeg;
		case IMG_FORMAT_PNG:
			return &img_codec_png;
		case IMG_FORMAT_GIF:
			return &img_codec_gif;
		case IMG_FORMAT_WEBP:
			return &img_codec_webp;
		case IMG_FORMAT_HEIF:
		case IMG_FORMAT_AVIF:
			return &img_codec_heif;
		case IMG_FORMAT_TIFF:
			return &img_codec_tiff;
		case IMG_FORMAT_BMP:
			return &img_codec_bmp;
		default:
			return NULL;
	}
}

static img_status
check_dimension_limits(const img_info *info, const img_limits *limits, img_error *err)
{
	uint64_t	pixels = (uint64_t) info->width * info->height;

	if (info->width > limits->max_side || info->height > limits->max_side)
		return img_fail(err, IMG_ERR_BAD_DIMENSIONS,
						"%s is %ux%u: a side exceeds the limit of %u pixels (imgmod.max_side)",
						img_format_name(info->format), info->width, info->height,
						limits->max_side);
	if (pixels > limits->max_pixels)
		return img_fail(err, IMG_ERR_TOO_MANY_PIXELS,
						"%s is %ux%u = %.1f megapixels, over the limit of %.1f megapixels (imgmod.max_megapixels)",
						img_format_name(info->format), info->width, info->height,
						pixels / 1e6, limits->max_pixels / 1e6);
	return IMG_OK;
}

img_status
img_probe(const uint8_t *data, size_t len, const img_limits *limits,
		  img_info *info, img_error *err)
{
	const img_codec *codec;
	img_status	st;

	memset(info, 0, sizeof(*info));
	info->orientation = 1;
	info->frames = 1;

	if (data == NULL || len == 0)
	{
		info->format = IMG_FORMAT_EMPTY;
		return img_fail(err, IMG_ERR_EMPTY, "the data is empty (0 bytes)");
	}
	if (len > limits->max_bytes)
		return img_fail(err, IMG_ERR_TOO_MANY_BYTES,
						"the data is %zu bytes, over the limit of %zu bytes (imgmod.max_bytes)",
						len, limits->max_bytes);

	info->format = img_sniff(data, len);
	if (info->format == IMG_FORMAT_UNKNOWN)
		return img_fail(err, IMG_ERR_UNKNOWN_FORMAT,
						"the data is not an image: its first bytes match no known format");
	if (!img_format_is_accepted(info->format))
		return img_fail(err, IMG_ERR_UNSUPPORTED_FORMAT,
						"the data is %s, which is not an accepted image format (accepted: jpeg, png, gif, webp, heif, avif, tiff, bmp)",
						img_format_name(info->format));

	codec = img_codec_for(info->format);
	if (codec == NULL)
		return img_fail(err, IMG_ERR_INTERNAL, "no codec for %s", img_format_name(info->format));

	st = codec->probe(data, len, limits, info, err);

	/* Claimed dimensions over the limit win over any later damage. */
	if (info->width != 0 && info->height != 0)
	{
		img_status	lim = check_dimension_limits(info, limits, err);

		if (lim != IMG_OK)
			return lim;
	}
	if (st != IMG_OK)
		return st;
	if (info->width == 0 || info->height == 0)
		return img_fail(err, IMG_ERR_BAD_DIMENSIONS, "%s header declares an empty image (%ux%u)",
						img_format_name(info->format), info->width, info->height);
	if (info->frames > limits->max_frames)
		return img_fail(err, IMG_ERR_TOO_MANY_FRAMES,
						"%s has %u frames, over the limit of %u (imgmod.max_frames)",
						img_format_name(info->format), info->frames, limits->max_frames);
	if (info->scans > limits->max_scans)
		return img_fail(err, IMG_ERR_TOO_MANY_SCANS,
						"progressive jpeg has %u scans, over the limit of %u (imgmod.max_scans)",
						info->scans, limits->max_scans);
	if (info->orientation < 1 || info->orientation > 8)
		info->orientation = 1;
	return IMG_OK;
}
