/*
 * load.c — bytes in, upright 8-bit sRGB RGB out.
 *
 * The same sequence for every format: probe under limits, decode the first
 * frame (shrinking on load where the codec can), convert to sRGB, flatten
 * alpha, apply the orientation.  Flattening happens before orienting so the
 * orientation step only ever moves 3-channel pixels.
 */
#include "codec.h"

#include <string.h>

void
img_load_options_default(img_load_options *options)
{
	memset(options, 0, sizeof(*options));
	options->background[0] = options->background[1] = options->background[2] = 255;
	options->apply_orientation = true;
}

/* Composite straight alpha over an opaque background into an RGB raster. */
static img_status
flatten_alpha(img_raster *raster, const uint8_t background[3], img_error *err)
{
	img_raster	rgb;
	img_status	st;

	st = img_raster_init(&rgb, raster->width, raster->height, 3, err);
	if (st != IMG_OK)
		return st;
	for (uint32_t y = 0; y < raster->height; y++)
	{
		const uint8_t *s = raster->pixels + (size_t) y * raster->stride;
		uint8_t    *d = rgb.pixels + (size_t) y * rgb.stride;

		st = img_check_interrupt(err, "flattening alpha");
		if (st != IMG_OK)
		{
			img_raster_free(&rgb);
			return st;
		}

		for (uint32_t x = 0; x < raster->width; x++, s += 4, d += 3)
		{
			unsigned	a = s[3];
			unsigned	na = 255u - a;

			d[0] = (uint8_t) ((s[0] * a + background[0] * na + 127) / 255);
			d[1] = (uint8_t) ((s[1] * a + background[1] * na + 127) / 255);
			d[2] = (uint8_t) ((s[2] * a + background[2] * na + 127) / 255);
		}
	}
	img_raster_free(raster);
	*raster = rgb;
	return IMG_OK;
}

/* The part of img_load after the probe, for callers that already probed. */
img_status
img_load_probed(const uint8_t *data, size_t len, const img_limits *limits,
				const img_info *info, const img_load_options *options,
				img_raster *out, img_error *err)
{
	img_decoded decoded;
	const img_codec *codec = img_codec_for(info->format);
	img_status	st;
	uint32_t	min_w;
	uint32_t	min_h;
	int			orientation;

	memset(out, 0, sizeof(*out));
	memset(&decoded, 0, sizeof(decoded));
	if (codec == NULL)
		return img_fail(err, IMG_ERR_INTERNAL, "no codec for %s", img_format_name(info->format));

	/* The caller's minimum is upright; the decoder works in stored orientation. */
	min_w = options->min_width;
	min_h = options->min_height;
	if (options->apply_orientation && info->orientation >= 5)
	{
		min_w = options->min_height;
		min_h = options->min_width;
	}

	if (options->threads > 1 && codec->decode_threads != NULL)
		st = codec->decode_threads(data, len, limits, info, min_w, min_h, options->threads,
								   &decoded, err);
	else
		st = codec->decode(data, len, limits, info, min_w, min_h, &decoded, err);
	if (st != IMG_OK)
		goto fail;
	st = img_colour_to_srgb(&decoded, err);
	if (st != IMG_OK)
		goto fail;
	if (decoded.raster.channels == 4)
	{
		st = flatten_alpha(&decoded.raster, options->background, err);
		if (st != IMG_OK)
			goto fail;
	}

	orientation = options->apply_orientation ? decoded.orientation : 1;
	if (orientation >= 2 && orientation <= 8)
	{
		st = img_orient(&decoded.raster, orientation, out, err);
		img_decoded_free(&decoded);
		return st;
	}
	*out = decoded.raster;
	decoded.raster.pixels = NULL;
	img_decoded_free(&decoded);
	return IMG_OK;

fail:
	img_decoded_free(&decoded);
	return st;
}

img_status
img_load(const uint8_t *data, size_t len, const img_limits *limits,
		 const img_load_options *options, img_raster *out, img_info *info_out,
		 img_error *err)
{
	img_info	info;
	img_status	st;

	memset(out, 0, sizeof(*out));
	st = img_probe(data, len, limits, &info, err);
	if (info_out)
		*info_out = info;
	if (st != IMG_OK)
		return st;
	return img_load_probed(data, len, limits, &info, options, out, err);
}
