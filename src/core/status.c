/*
 * status.c — names of statuses, formats, colour models and fit modes, and
 * the error-recording helper.
 */
#include "imgcore.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const status_names[IMG_STATUS_COUNT] = {
	[IMG_OK] = "ok",
	[IMG_ERR_EMPTY] = "empty",
	[IMG_ERR_UNKNOWN_FORMAT] = "unknown_format",
	[IMG_ERR_UNSUPPORTED_FORMAT] = "unsupported_format",
	[IMG_ERR_TYPE_MISMATCH] = "type_mismatch",
	[IMG_ERR_TOO_MANY_BYTES] = "too_many_bytes",
	[IMG_ERR_BAD_DIMENSIONS] = "bad_dimensions",
	[IMG_ERR_TOO_MANY_PIXELS] = "too_many_pixels",
	[IMG_ERR_TOO_MANY_FRAMES] = "too_many_frames",
	[IMG_ERR_TOO_MANY_SCANS] = "too_many_scans",
	[IMG_ERR_METADATA_TOO_LARGE] = "metadata_too_large",
	[IMG_ERR_TRUNCATED] = "truncated",
	[IMG_ERR_CORRUPT] = "corrupt",
	[IMG_ERR_NO_MEMORY] = "out_of_memory",
	[IMG_ERR_INTERNAL] = "internal_error",
	[IMG_ERR_INTERRUPTED] = "interrupted",
	[IMG_ERR_BAD_EDIT] = "bad_edit",
};

const char *
img_status_name(img_status status)
{
	if ((int) status < 0 || status >= IMG_STATUS_COUNT)
		return "internal_error";
	return status_names[status];
}

img_status
img_fail(img_error *err, img_status status, const char *fmt,...)
{
	if (err != NULL)
	{
		va_list		ap;

		err->status = status;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return status;
}

static const char *const colour_names[] = {
	[IMG_COLOUR_UNKNOWN] = "unknown",
	[IMG_COLOUR_GRAY] = "gray",
	[IMG_COLOUR_RGB] = "rgb",
	[IMG_COLOUR_PALETTE] = "palette",
	[IMG_COLOUR_CMYK] = "cmyk",
	[IMG_COLOUR_YCCK] = "ycck",
	[IMG_COLOUR_YCBCR] = "ycbcr",
};

const char *
img_colour_model_name(img_colour_model model)
{
	if ((int) model < 0 || (size_t) model >= sizeof(colour_names) / sizeof(colour_names[0]))
		return "unknown";
	return colour_names[model];
}

static const char *const fit_names[] = {
	[IMG_FIT_CONTAIN] = "contain",
	[IMG_FIT_COVER] = "cover",
	[IMG_FIT_PAD] = "pad",
};

const char *
img_fit_name(img_fit fit)
{
	if ((int) fit < 0 || (size_t) fit >= sizeof(fit_names) / sizeof(fit_names[0]))
		return "contain";
	return fit_names[fit];
}

bool
img_fit_from_name(const char *name, img_fit *fit)
{
	for (size_t i = 0; i < sizeof(fit_names) / sizeof(fit_names[0]); i++)
	{
		if (name != NULL && strcmp(name, fit_names[i]) == 0)
		{
			*fit = (img_fit) i;
			return true;
		}
	}
	return false;
}

const char *
img_master_method_name(img_master_method method)
{
	switch (method)
	{
		case IMG_MASTER_LOSSLESS:
			return "lossless";
		case IMG_MASTER_REENCODED:
			return "reencoded";
	}
	return "unknown";
}

void
img_limits_default(img_limits *limits)
{
	limits->max_bytes = 50u * 1024 * 1024;
	limits->max_pixels = 100u * 1000 * 1000;
	limits->max_side = 20000;
	limits->max_frames = 1000;
	limits->max_scans = 100;
	limits->max_metadata_bytes = 8u * 1024 * 1024;
}
