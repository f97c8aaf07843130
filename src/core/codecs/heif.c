/*
 * heif.c — HEIC/HEIF and AVIF input for the image core (libheif 1.15).
 *
 * One codec serves IMG_FORMAT_HEIF and IMG_FORMAT_AVIF: libheif reads the
 * ISOBMFF container and picks the HEVC (libde265) or AV1 (dav1d/aom)
 * decoder itself.
 *
 * The probe parses the container only (no pixel decode).  The dimensions it
 * reports are those of the primary image after the container's irot/imir
 * transforms, i.e. the size decode returns: libheif always applies those
 * transforms, so orientation is 1 and an EXIF Orientation tag in the file is
 * informational only (the HEIF spec says irot/imir win) and is not reported.
 *
 * libheif 1.15 has one security knob on the context, a maximum width/height;
 * we set it from max_side so the container parser itself rejects huge ispe
 * boxes.  Decoding is strict: libheif's decoding warnings are errors.
 */
#include "codec.h"

#include <libheif/heif.h>
#include <string.h>

#define MAX_METADATA_BLOCKS 32

static img_status
check_dimensions(int w, int h, const img_limits *limits, img_error *err)
{
	if (w <= 0 || h <= 0)
		return img_fail(err, IMG_ERR_BAD_DIMENSIONS,
						"heif primary image has zero width or height (%dx%d)", w, h);
	if (limits == NULL)
		return IMG_OK;
	if ((uint32_t) w > limits->max_side || (uint32_t) h > limits->max_side)
		return img_fail(err, IMG_ERR_BAD_DIMENSIONS,
						"heif image is %dx%d, a side is over the limit of %u pixels",
						w, h, limits->max_side);
	if ((uint64_t) w * (uint64_t) h > limits->max_pixels)
		return img_fail(err, IMG_ERR_TOO_MANY_PIXELS,
						"heif image is %dx%d = %llu pixels, over the limit of %llu",
						w, h, (unsigned long long) w * (unsigned long long) h,
						(unsigned long long) limits->max_pixels);
	return IMG_OK;
}

static img_status
heif_status(img_error *err, struct heif_error he, const char *what)
{
	const char *msg = he.message ? he.message : "no details";

	/* libheif files a security limit under "memory allocation error" */
	if (he.subcode == heif_suberror_Security_limit_exceeded)
		return img_fail(err, IMG_ERR_BAD_DIMENSIONS, "heif exceeds a size limit (%s): %s", what, msg);
	if (he.code == heif_error_Memory_allocation_error)
		return img_fail(err, IMG_ERR_NO_MEMORY, "out of memory %s: %s", what, msg);
	if (he.subcode == heif_suberror_End_of_data)
		return img_fail(err, IMG_ERR_TRUNCATED, "heif is truncated (%s): %s", what, msg);
	if (he.code == heif_error_Unsupported_filetype || he.code == heif_error_Unsupported_feature)
		return img_fail(err, IMG_ERR_UNSUPPORTED_FORMAT,
						"heif uses something libheif cannot decode (%s): %s", what, msg);
	return img_fail(err, IMG_ERR_CORRUPT, "heif is corrupt (%s): %s", what, msg);
}

/* Context plus primary image handle, shared by probe and decode. */
static img_status
open_primary(const uint8_t *data, size_t len, const img_limits *limits,
			 struct heif_context **ctx_out, struct heif_image_handle **handle_out,
			 img_error *err)
{
	struct heif_context *ctx;
	struct heif_error he;

	*ctx_out = NULL;
	*handle_out = NULL;
	ctx = heif_context_alloc();
	if (ctx == NULL)
		return img_fail(err, IMG_ERR_NO_MEMORY, "out of memory creating a heif context");
	/* libheif rejects ispe sides >= this value */
	if (limits != NULL && limits->max_side < INT32_MAX)
		heif_context_set_maximum_image_size_limit(ctx, (int) limits->max_side + 1);

	he = heif_context_read_from_memory_without_copy(ctx, data, len, NULL);
	if (he.code == heif_error_Ok)
		he = heif_context_get_primary_image_handle(ctx, handle_out);
	if (he.code != heif_error_Ok)
	{
		img_status	st = heif_status(err, he, "reading the container");

		heif_context_free(ctx);
		*handle_out = NULL;
		return st;
	}
	*ctx_out = ctx;
	return IMG_OK;
}

static void
close_primary(struct heif_context *ctx, struct heif_image_handle *handle)
{
	if (handle)
		heif_image_handle_release(handle);
	if (ctx)
		heif_context_free(ctx);
}

/* Scan one EXIF item: 4-byte offset to the TIFF header, then the TIFF data. */
static img_status
scan_exif(struct heif_image_handle *handle, heif_item_id id, size_t max,
		  img_info *info, img_error *err)
{
	size_t		size = heif_image_handle_get_metadata_size(handle, id);
	uint8_t    *buf;
	struct heif_error he;

	info->has_exif = true;
	if (size < 4 || size > max)
		return IMG_OK;			/* present; not read (bounded) */
	buf = img_alloc(size);
	if (buf == NULL)
		return img_fail(err, IMG_ERR_NO_MEMORY, "out of memory reading heif exif");
	he = heif_image_handle_get_metadata(handle, id, buf);
	if (he.code == heif_error_Ok)
	{
		uint32_t	off = img_be32(buf);

		if (off <= size - 4)
		{
			const uint8_t *p = buf + 4 + off;
			size_t		n = size - 4 - off;
			bool		tiff = !(n >= 6 && memcmp(p, "Exif\0\0", 6) == 0);

			img_exif_scan(p, n, tiff, info);
		}
	}
	img_free(buf);
	return IMG_OK;
}

/* Copy the raw ICC profile (prof/rICC) of the primary image, bounded. */
static img_status
read_icc(struct heif_image_handle *handle, size_t max, uint8_t **icc,
		 size_t *icc_len, img_error *err)
{
	enum heif_color_profile_type type = heif_image_handle_get_color_profile_type(handle);
	size_t		size;
	struct heif_error he;

	*icc = NULL;
	*icc_len = 0;
	if (type != heif_color_profile_type_prof && type != heif_color_profile_type_rICC)
		return IMG_OK;
	size = heif_image_handle_get_raw_color_profile_size(handle);
	if (size == 0)
		return IMG_OK;
	if (size > max)
		return img_fail(err, IMG_ERR_METADATA_TOO_LARGE,
						"heif ICC profile is %zu bytes, over the metadata limit of %zu bytes",
						size, max);
	*icc = img_alloc(size);
	if (*icc == NULL)
		return img_fail(err, IMG_ERR_NO_MEMORY, "out of memory copying the heif ICC profile");
	he = heif_image_handle_get_raw_color_profile(handle, *icc);
	if (he.code != heif_error_Ok)
	{
		img_free(*icc);
		*icc = NULL;
		return heif_status(err, he, "reading the ICC profile");
	}
	*icc_len = size;
	return IMG_OK;
}

static img_status
heif_probe(const uint8_t *data, size_t len, const img_limits *limits,
		   img_info *info, img_error *err)
{
	img_format	format = info->format;
	size_t		max_meta = limits ? limits->max_metadata_bytes : 8u * 1024 * 1024;
	struct heif_context *ctx;
	struct heif_image_handle *handle;
	heif_item_id ids[MAX_METADATA_BLOCKS];
	int			n;
	int			w,
				h,
				bits;
	img_status	st;

	memset(info, 0, sizeof(*info));
	info->format = format;
	info->frames = 1;
	info->orientation = 1;
	info->colour = IMG_COLOUR_YCBCR;

	st = open_primary(data, len, limits, &ctx, &handle, err);
	if (st != IMG_OK)
		return st;

	w = heif_image_handle_get_width(handle);
	h = heif_image_handle_get_height(handle);
	info->width = w > 0 ? (uint32_t) w : 0;
	info->height = h > 0 ? (uint32_t) h : 0;
	st = check_dimensions(w, h, limits, err);
	if (st == IMG_OK)
	{
		/* the stored (ispe) size is what the decoder allocates */
		int			iw = heif_image_handle_get_ispe_width(handle);
		int			ih = heif_image_handle_get_ispe_height(handle);

		if (iw > 0 && ih > 0)
			st = check_dimensions(iw, ih, limits, err);
	}
	if (st != IMG_OK)
	{
		close_primary(ctx, handle);
		return st;
	}
	n = heif_context_get_number_of_top_level_images(ctx);
	info->frames = n > 0 ? (uint32_t) n : 1;
	info->has_alpha = heif_image_handle_has_alpha_channel(handle) != 0;
	bits = heif_image_handle_get_luma_bits_per_pixel(handle);
	info->bit_depth = bits > 0 && bits <= 16 ? (uint8_t) bits : 8;

	n = heif_image_handle_get_list_of_metadata_block_IDs(handle, NULL, ids, MAX_METADATA_BLOCKS);
	for (int i = 0; i < n && st == IMG_OK; i++)
	{
		const char *type = heif_image_handle_get_metadata_type(handle, ids[i]);
		const char *content = heif_image_handle_get_metadata_content_type(handle, ids[i]);

		if (type && strcmp(type, "Exif") == 0)
			st = scan_exif(handle, ids[i], max_meta, info, err);
		else if (type && strcmp(type, "mime") == 0 && content &&
				 strcmp(content, "application/rdf+xml") == 0)
			info->has_xmp = true;
	}
	/* irot/imir are applied by libheif; the EXIF tag must not be applied again */
	info->orientation = 1;

	if (st == IMG_OK)
	{
		uint8_t    *icc;
		size_t		icc_len;

		st = read_icc(handle, max_meta, &icc, &icc_len, err);
		if (icc)
		{
			info->has_icc = true;
			info->icc_bytes = icc_len;
			img_icc_describe(icc, icc_len, info);
			img_free(icc);
		}
		else if (st == IMG_ERR_METADATA_TOO_LARGE)
			info->has_icc = true;
	}
	close_primary(ctx, handle);
	return st;
}

static img_status
heif_decode(const uint8_t *data, size_t len, const img_limits *limits,
			const img_info *info, uint32_t min_width, uint32_t min_height,
			img_decoded *out, img_error *err)
{
	size_t		max_meta = limits ? limits->max_metadata_bytes : 8u * 1024 * 1024;
	struct heif_context *ctx;
	struct heif_image_handle *handle;
	struct heif_decoding_options *options;
	struct heif_image *image = NULL;
	struct heif_error he;
	const uint8_t *plane;
	int			stride;
	int			w,
				h;
	bool		alpha;
	img_status	st;

	(void) info;
	(void) min_width;
	(void) min_height;
	memset(out, 0, sizeof(*out));
	out->orientation = 1;

	st = open_primary(data, len, limits, &ctx, &handle, err);
	if (st != IMG_OK)
		return st;
	st = check_dimensions(heif_image_handle_get_width(handle),
						  heif_image_handle_get_height(handle), limits, err);
	if (st != IMG_OK)
		goto done;
	alpha = heif_image_handle_has_alpha_channel(handle) != 0;

	/*
	 * libheif 1.15 decodes the whole image in one call and offers no way to
	 * cancel it: the interrupt hook is asked before and after.
	 */
	st = img_check_interrupt(err, "decoding heif");
	if (st != IMG_OK)
		goto done;
	options = heif_decoding_options_alloc();
	if (options == NULL)
	{
		st = img_fail(err, IMG_ERR_NO_MEMORY, "out of memory creating heif decoding options");
		goto done;
	}
	if (options->version >= 2)
		options->convert_hdr_to_8bit = 1;
	if (options->version >= 3)
		options->strict_decoding = 1;
	he = heif_decode_image(handle, &image, heif_colorspace_RGB,
						   alpha ? heif_chroma_interleaved_RGBA : heif_chroma_interleaved_RGB,
						   options);
	heif_decoding_options_free(options);
	if (he.code != heif_error_Ok)
	{
		image = NULL;
		st = heif_status(err, he, "decoding the image");
		goto done;
	}
	st = img_check_interrupt(err, "decoding heif");
	if (st != IMG_OK)
		goto done;
	if (heif_image_get_decoding_warnings(image, 0, &he, 1) > 0)
	{
		st = img_fail(err, IMG_ERR_CORRUPT, "heif decoder warned: %s",
					  he.message ? he.message : "no details");
		goto done;
	}

	w = heif_image_get_width(image, heif_channel_interleaved);
	h = heif_image_get_height(image, heif_channel_interleaved);
	st = check_dimensions(w, h, limits, err);
	if (st != IMG_OK)
		goto done;

	/*
	 * The probe reported (and the limits judged) the handle's size, with
	 * its transformations applied, as the decoder applies them: a picture
	 * of another size means the container describes something other than
	 * what it holds.
	 */
	if (w != heif_image_handle_get_width(handle) || h != heif_image_handle_get_height(handle))
	{
		st = img_fail(err, IMG_ERR_CORRUPT, "heif image decodes to %dx%d but its header says %dx%d",
					  w, h, heif_image_handle_get_width(handle), heif_image_handle_get_height(handle));
		goto done;
	}
	if (heif_image_get_bits_per_pixel_range(image, heif_channel_interleaved) != 8)
	{
		st = img_fail(err, IMG_ERR_INTERNAL, "heif decoder did not return 8-bit samples");
		goto done;
	}
	plane = heif_image_get_plane_readonly(image, heif_channel_interleaved, &stride);
	if (plane == NULL || stride < w * (alpha ? 4 : 3))
	{
		st = img_fail(err, IMG_ERR_INTERNAL, "heif decoder returned no interleaved plane");
		goto done;
	}
	st = img_raster_init(&out->raster, (uint32_t) w, (uint32_t) h, alpha ? 4 : 3, err);
	if (st != IMG_OK)
		goto done;
	out->layout = alpha ? IMG_LAYOUT_RGBA : IMG_LAYOUT_RGB;
	for (int y = 0; y < h; y++)
		memcpy(out->raster.pixels + (size_t) y * out->raster.stride,
			   plane + (size_t) y * (size_t) stride, out->raster.stride);

	st = read_icc(handle, max_meta, &out->icc, &out->icc_len, err);

done:
	if (image)
		heif_image_release(image);
	close_primary(ctx, handle);
	if (st != IMG_OK)
		img_decoded_free(out);
	return st;
}

const img_codec img_codec_heif = {
	.format = IMG_FORMAT_HEIF,
	.probe = heif_probe,
	.decode = heif_decode,
};
