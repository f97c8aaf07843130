/*
 * colour.c — every decoded image leaves here as 8-bit sRGB.
 *
 * Embedded ICC profiles are applied with lcms2.  A profile that does not
 * parse, or that describes a colour space other than the samples', is
 * ignored (the samples are then taken as sRGB), because a broken profile
 * must not turn an otherwise good upload into an error.  CMYK without a
 * usable profile falls back to the textbook complement formula.
 */
#include "codec.h"

#include <lcms2.h>
#include <stdio.h>
#include <string.h>

static void
silent_lcms_log(cmsContext ctx, cmsUInt32Number code, const char *text)
{
	/* lcms2 errors surface as NULL handles; nothing may print. */
	(void) ctx;
	(void) code;
	(void) text;
}

static void
quiet_lcms(void)
{
	static bool done = false;

	if (!done)
	{
		cmsSetLogErrorHandler(silent_lcms_log);
		done = true;
	}
}

void
img_icc_describe(const uint8_t *icc, size_t len, img_info *info)
{
	cmsHPROFILE profile;

	info->icc_description[0] = '\0';
	if (icc == NULL || len < 128 || len > UINT32_MAX)
		return;
	quiet_lcms();
	profile = cmsOpenProfileFromMem(icc, (cmsUInt32Number) len);
	if (profile == NULL)
		return;
	cmsGetProfileInfoASCII(profile, cmsInfoDescription, "en", "US",
						   info->icc_description, sizeof(info->icc_description));
	info->icc_description[sizeof(info->icc_description) - 1] = '\0';
	cmsCloseProfile(profile);
}

bool
img_icc_description_is_srgb(const char *description)
{
	return description != NULL &&
		(strstr(description, "sRGB") != NULL || strstr(description, "srgb") != NULL);
}

/* Profiles that describe sRGB need no transform (the common case). */
static bool
profile_is_srgb(cmsHPROFILE profile)
{
	char		desc[128];

	if (cmsGetProfileInfoASCII(profile, cmsInfoDescription, "en", "US",
							   desc, sizeof(desc)) == 0)
		return false;
	return img_icc_description_is_srgb(desc);
}

static img_status
cmyk_to_rgb_naive(const img_raster *src, img_raster *dst, img_error *err)
{
	for (uint32_t y = 0; y < src->height; y++)
	{
		const uint8_t *s = src->pixels + (size_t) y * src->stride;
		uint8_t    *d = dst->pixels + (size_t) y * dst->stride;
		img_status	st = img_check_interrupt(err, "converting cmyk to rgb");

		if (st != IMG_OK)
			return st;

		for (uint32_t x = 0; x < src->width; x++, s += 4, d += 3)
		{
			unsigned	white = 255u - s[3];

			d[0] = (uint8_t) (((255u - s[0]) * white + 127) / 255);
			d[1] = (uint8_t) (((255u - s[1]) * white + 127) / 255);
			d[2] = (uint8_t) (((255u - s[2]) * white + 127) / 255);
		}
	}
	return IMG_OK;
}

static img_status
transform_rows(cmsHTRANSFORM xform, const img_raster *src, img_raster *dst, img_error *err)
{
	for (uint32_t y = 0; y < src->height; y++)
	{
		img_status	st = img_check_interrupt(err, "converting colours to srgb");

		if (st != IMG_OK)
			return st;
		cmsDoTransform(xform, src->pixels + (size_t) y * src->stride,
					   dst->pixels + (size_t) y * dst->stride, src->width);
	}
	return IMG_OK;
}

img_status
img_colour_to_srgb(img_decoded *decoded, img_error *err)
{
	cmsHPROFILE in_profile = NULL;
	cmsHPROFILE srgb = NULL;
	cmsHTRANSFORM xform = NULL;
	img_status	st = IMG_OK;

	quiet_lcms();
	if (decoded->icc != NULL && decoded->icc_len >= 128 && decoded->icc_len <= UINT32_MAX)
		in_profile = cmsOpenProfileFromMem(decoded->icc, (cmsUInt32Number) decoded->icc_len);

	if (decoded->layout == IMG_LAYOUT_CMYK)
	{
		img_raster	rgb;

		if ((st = img_raster_init(&rgb, decoded->raster.width, decoded->raster.height, 3, err)) != IMG_OK)
			goto done;
		if (in_profile != NULL && cmsGetColorSpace(in_profile) == cmsSigCmykData &&
			(srgb = cmsCreate_sRGBProfile()) != NULL &&
			(xform = cmsCreateTransform(in_profile, TYPE_CMYK_8, srgb, TYPE_RGB_8,
										INTENT_PERCEPTUAL, cmsFLAGS_NOCACHE)) != NULL)
		{
			/* lcms2's CMYK_8 is ink percentage scaled to 0..255, as ours. */
			st = transform_rows(xform, &decoded->raster, &rgb, err);
		}
		else
			st = cmyk_to_rgb_naive(&decoded->raster, &rgb, err);
		if (st != IMG_OK)
		{
			img_raster_free(&rgb);
			goto done;
		}
		img_raster_free(&decoded->raster);
		decoded->raster = rgb;
		decoded->layout = IMG_LAYOUT_RGB;
	}
	else if (in_profile != NULL && cmsGetColorSpace(in_profile) == cmsSigRgbData &&
			 !profile_is_srgb(in_profile))
	{
		bool		alpha = decoded->layout == IMG_LAYOUT_RGBA;
		cmsUInt32Number fmt = alpha ? TYPE_RGBA_8 : TYPE_RGB_8;

		srgb = cmsCreate_sRGBProfile();
		if (srgb != NULL)
			xform = cmsCreateTransform(in_profile, fmt, srgb, fmt, INTENT_PERCEPTUAL,
									   cmsFLAGS_NOCACHE | (alpha ? cmsFLAGS_COPY_ALPHA : 0));
		/* In place is supported by lcms2 when formats match. */
		if (xform != NULL)
			st = transform_rows(xform, &decoded->raster, &decoded->raster, err);
	}

done:
	if (xform)
		cmsDeleteTransform(xform);
	if (srgb)
		cmsCloseProfile(srgb);
	if (in_profile)
		cmsCloseProfile(in_profile);
	img_free(decoded->icc);
	decoded->icc = NULL;
	decoded->icc_len = 0;
	return st;
}
