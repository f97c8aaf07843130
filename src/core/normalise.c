/*
 * normalise.c — the upload path: one full-resolution, upright, sRGB,
 * metadata-free JPEG master per image version.
 *
 * JPEG input whose colours are already sRGB keeps its DCT coefficients.
 * Upright single-scan (baseline or extended sequential, Huffman) input is
 * its own master once its metadata is gone: when its scan entropy-decodes
 * (once, on the careful Huffman decoder) without a single warning and ends
 * on its last byte, the frame, tables and scan are copied as they are
 * (jpegcopy.c), at under half the cost of `jpegtran -copy none`.
 * Other such input (damaged files included, so they are judged exactly as
 * before) goes through TurboJPEG's lossless transform, which drops every
 * marker and applies the EXIF orientation when the image's size is a whole
 * number of MCUs, at roughly the cost of `jpegtran -copy none` and with no
 * generation loss.  Everything else (other formats, CMYK, wide-gamut
 * profiles, orientations that would need edge trimming) is decoded,
 * normalised and encoded at high quality.
 *
 * Progressive (and other multi-scan) input is not copied: the transform
 * re-codes it as one baseline scan, which the workers decode about twice
 * as fast (measured on the corpus photos: render of the four presets 139
 * ms from the progressive file, 67 ms from its baseline master), and every
 * master is decoded at least once more than it is uploaded.  COPY_MULTI_SCAN
 * turns copying of such files on; img_jpeg_copy_master handles them.
 */
#include "codec.h"

#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#define COPY_MULTI_SCAN false

void
img_normalised_free(img_normalised *normalised)
{
	if (normalised == NULL)
		return;
	img_buffer_free(&normalised->master);
}

bool
img_jpeg_needs_colour_change(const img_info *info)
{
	if (info->colour != IMG_COLOUR_YCBCR && info->colour != IMG_COLOUR_GRAY)
		return true;
	if (!info->has_icc)
		return false;
	/* An sRGB profile may be dropped: untagged JPEG means sRGB. */
	return !img_icc_description_is_srgb(info->icc_description);
}

static int
orientation_op(int orientation)
{
	switch (orientation)
	{
		case 2:
			return TJXOP_HFLIP;
		case 3:
			return TJXOP_ROT180;
		case 4:
			return TJXOP_VFLIP;
		case 5:
			return TJXOP_TRANSPOSE;
		case 6:
			return TJXOP_ROT90;
		case 7:
			return TJXOP_TRANSVERSE;
		case 8:
			return TJXOP_ROT270;
		default:
			return TJXOP_NONE;
	}
}

/*
 * Returns IMG_OK with the master filled (copied when upright and the copy
 * handles the file, else transformed), or an error status.  *retry is set
 * when the transform could not be lossless for geometric reasons, so the
 * caller re-encodes instead.
 */
static img_status
lossless_master(const uint8_t *data, size_t len, const img_info *info,
				img_normalised *out, bool *retry, img_error *err)
{
	img_jpeg_xform xform = {0};
	img_status	st;

	*retry = false;
	if (info->orientation == 1)
	{
		bool		unsuitable;

		st = img_jpeg_copy_master(data, len, COPY_MULTI_SCAN, &out->master, &unsuitable, err);
		if (st != IMG_OK)
			return st;
		if (!unsuitable)
		{
			out->method = IMG_MASTER_LOSSLESS;
			out->width = info->width;
			out->height = info->height;
			return IMG_OK;
		}
	}

	xform.op = orientation_op(info->orientation);
	st = img_jpeg_transform(data, len, &xform, &out->master, retry, err);
	if (st != IMG_OK || *retry)
		return st;
	out->method = IMG_MASTER_LOSSLESS;
	if (info->orientation >= 5)
	{
		out->width = info->height;
		out->height = info->width;
	}
	else
	{
		out->width = info->width;
		out->height = info->height;
	}
	return IMG_OK;
}

img_status
img_normalise(const uint8_t *data, size_t len, const img_limits *limits,
			  const img_normalise_options *options, img_normalised *out,
			  img_error *err)
{
	img_load_options load;
	img_raster	raster;
	img_status	st;

	memset(out, 0, sizeof(*out));
	st = img_probe(data, len, limits, &out->info, err);
	if (st != IMG_OK)
		return st;

	if (out->info.format == IMG_FORMAT_JPEG && !img_jpeg_needs_colour_change(&out->info))
	{
		bool		retry;

		st = lossless_master(data, len, &out->info, out, &retry, err);
		if (st != IMG_OK || !retry)
			return st;
	}

	img_load_options_default(&load);
	memcpy(load.background, options->background, 3);
	st = img_load_probed(data, len, limits, &out->info, &load, &raster, err);
	if (st != IMG_OK)
		return st;
	st = img_encode_jpeg(&raster, options->master_quality, &out->master, err);
	out->width = raster.width;
	out->height = raster.height;
	out->method = IMG_MASTER_REENCODED;
	img_raster_free(&raster);
	return st;
}
