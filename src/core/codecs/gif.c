/*
 * gif.c — GIF input for the image core (giflib 5.2).
 *
 * The probe does not use giflib: it reads the logical screen descriptor and
 * walks the block structure (extension and image-data sub-blocks are
 * skipped by their length bytes, LZW data is never decoded) to count frames,
 * find metadata and make sure the trailer is there.  A walk that runs off
 * the end is a truncated file, even though many viewers show such files.
 *
 * The decoder uses giflib to decode the first frame only, onto a canvas the
 * size of the logical screen.  Pixels the frame does not cover, and pixels
 * of the transparent colour index, become fully transparent (alpha 0), as
 * browsers show them; the GIF background colour is ignored, as browsers do.
 */
#include "codec.h"

#include <gif_lib.h>
#include <string.h>

static img_status
check_dimensions(const char *what, uint32_t width, uint32_t height,
				 const img_limits *limits, img_error *err)
{
	if (width == 0 || height == 0)
		return img_fail(err, IMG_ERR_BAD_DIMENSIONS,
						"gif %s has zero width or height (%ux%u)", what, width, height);
	if (limits == NULL)
		return IMG_OK;
	if (width > limits->max_side || height > limits->max_side)
		return img_fail(err, IMG_ERR_BAD_DIMENSIONS,
						"gif %s is %ux%u, a side is over the limit of %u pixels",
						what, width, height, limits->max_side);
	if ((uint64_t) width * height > limits->max_pixels)
		return img_fail(err, IMG_ERR_TOO_MANY_PIXELS,
						"gif %s is %ux%u = %llu pixels, over the limit of %llu",
						what, width, height, (unsigned long long) width * height,
						(unsigned long long) limits->max_pixels);
	return IMG_OK;
}

/* Skip a chain of sub-blocks ending in a zero-length block. */
static bool
skip_sub_blocks(const uint8_t *data, size_t len, size_t *pos)
{
	size_t		p = *pos;

	for (;;)
	{
		uint8_t		n;

		if (p >= len)
			return false;
		n = data[p++];
		if (n == 0)
			break;
		if (n > len - p)
			return false;
		p += n;
	}
	*pos = p;
	return true;
}

static img_status
gif_probe(const uint8_t *data, size_t len, const img_limits *limits,
		  img_info *info, img_error *err)
{
	img_format	format = info->format;
	uint32_t	max_frames = limits ? limits->max_frames : 1000;
	uint32_t	width,
				height;
	uint32_t	frames = 0;
	bool		pending_transparency = false;
	size_t		pos;
	img_status	st;

	memset(info, 0, sizeof(*info));
	info->format = format;
	info->frames = 1;
	info->orientation = 1;
	info->colour = IMG_COLOUR_PALETTE;
	info->bit_depth = 8;

	if (len < 6 || (memcmp(data, "GIF87a", 6) != 0 && memcmp(data, "GIF89a", 6) != 0))
		return img_fail(err, IMG_ERR_CORRUPT, "gif signature is damaged");
	if (len < 13)
		return img_fail(err, IMG_ERR_TRUNCATED,
						"gif is truncated: the logical screen descriptor is incomplete");
	width = img_le16(data + 6);
	height = img_le16(data + 8);
	info->width = width;
	info->height = height;
	st = check_dimensions("logical screen", width, height, limits, err);
	if (st != IMG_OK)
		return st;

	pos = 13;
	if (data[10] & 0x80)
	{
		size_t		table = (size_t) 3 << ((data[10] & 7) + 1);

		if (table > len - pos)
			return img_fail(err, IMG_ERR_TRUNCATED,
							"gif is truncated: the global colour table is incomplete");
		pos += table;
	}

	for (;;)
	{
		uint8_t		block;

		if (pos >= len)
			return img_fail(err, IMG_ERR_TRUNCATED,
							"gif is truncated: the data ends before the trailer");
		block = data[pos++];
		if (block == 0x3B)
		{
			info->has_trailing_data = pos < len;
			break;
		}
		else if (block == 0x21)
		{
			uint8_t		label;

			if (pos >= len)
				return img_fail(err, IMG_ERR_TRUNCATED,
								"gif is truncated: an extension block is incomplete");
			label = data[pos++];
			if (label == 0xF9 && pos + 2 < len && data[pos] >= 4)
				pending_transparency = (data[pos + 1] & 1) != 0;
			else if (label == 0xFE)
				info->has_comment = true;
			else if (label == 0xFF && pos + 12 <= len && data[pos] == 11)
			{
				if (memcmp(data + pos + 1, "XMP DataXMP", 11) == 0)
					info->has_xmp = true;
				else if (memcmp(data + pos + 1, "ICCRGBG1012", 11) == 0)
					info->has_icc = true;
			}
			if (!skip_sub_blocks(data, len, &pos))
				return img_fail(err, IMG_ERR_TRUNCATED,
								"gif is truncated: an extension block runs past the end of the data");
		}
		else if (block == 0x2C)
		{
			uint32_t	left,
						top,
						fw,
						fh;
			uint8_t		flags;

			if (len - pos < 9)
				return img_fail(err, IMG_ERR_TRUNCATED,
								"gif is truncated: an image descriptor is incomplete");
			left = img_le16(data + pos);
			top = img_le16(data + pos + 2);
			fw = img_le16(data + pos + 4);
			fh = img_le16(data + pos + 6);
			flags = data[pos + 8];
			pos += 9;
			frames++;
			if (frames > max_frames)
			{
				info->frames = frames;
				return img_fail(err, IMG_ERR_TOO_MANY_FRAMES,
								"gif has more than %u frames", max_frames);
			}
			/*
			 * A frame larger than the limits would cost its full LZW decode.
			 * Empty frames after the first occur in the wild and are harmless.
			 */
			if (frames == 1 || (fw != 0 && fh != 0))
			{
				st = check_dimensions("frame", fw, fh, limits, err);
				if (st != IMG_OK)
					return st;
			}
			if (frames == 1)
			{
				info->progressive = (flags & 0x40) != 0;
				info->has_alpha = pending_transparency ||
					left != 0 || top != 0 || fw < width || fh < height;
			}
			pending_transparency = false;
			if (flags & 0x80)
			{
				size_t		table = (size_t) 3 << ((flags & 7) + 1);

				if (table > len - pos)
					return img_fail(err, IMG_ERR_TRUNCATED,
									"gif is truncated: a local colour table is incomplete");
				pos += table;
			}
			if (pos >= len)
				return img_fail(err, IMG_ERR_TRUNCATED,
								"gif is truncated: image data is missing");
			if (data[pos] < 1 || data[pos] > 11)
				return img_fail(err, IMG_ERR_CORRUPT,
								"gif frame %u has an invalid LZW code size %u", frames, data[pos]);
			pos++;
			if (!skip_sub_blocks(data, len, &pos))
				return img_fail(err, IMG_ERR_TRUNCATED,
								"gif is truncated: image data of frame %u runs past the end of the data",
								frames);
		}
		else
			return img_fail(err, IMG_ERR_CORRUPT,
							"gif has an unknown block type 0x%02x at offset %zu", block, pos - 1);
	}
	if (frames == 0)
		return img_fail(err, IMG_ERR_CORRUPT, "gif contains no image");
	info->frames = frames;
	return IMG_OK;
}

/* ------------------------------------------------------------- decoding */

typedef struct gif_source
{
	const uint8_t *data;
	size_t		len;
	size_t		pos;
} gif_source;

static int
gif_read(GifFileType *gif, GifByteType *buf, int n)
{
	gif_source *src = gif->UserData;
	size_t		avail = src->len - src->pos;
	size_t		take = n < 0 ? 0 : (size_t) n;

	if (take > avail)
		take = avail;
	memcpy(buf, src->data + src->pos, take);
	src->pos += take;
	return (int) take;
}

static img_status
gif_error(img_error *err, int code)
{
	const char *msg = GifErrorString(code);

	if (msg == NULL)
		msg = "unknown giflib error";
	if (code == D_GIF_ERR_READ_FAILED || code == D_GIF_ERR_EOF_TOO_SOON)
		return img_fail(err, IMG_ERR_TRUNCATED, "gif is truncated: %s", msg);
	if (code == D_GIF_ERR_NOT_ENOUGH_MEM)
		return img_fail(err, IMG_ERR_NO_MEMORY, "out of memory decoding gif");
	return img_fail(err, IMG_ERR_CORRUPT, "gif is corrupt: %s", msg);
}

static img_status
gif_decode_frame(GifFileType *gif, int transparent, const img_limits *limits,
				 img_decoded *out, img_error *err)
{
	static const int pass_start[4] = {0, 4, 2, 1};
	static const int pass_step[4] = {8, 8, 4, 2};
	GifImageDesc *desc = &gif->Image;
	ColorMapObject *cmap = desc->ColorMap ? desc->ColorMap : gif->SColorMap;
	uint32_t	cw = (uint32_t) gif->SWidth;
	uint32_t	ch = (uint32_t) gif->SHeight;
	uint32_t	fw,
				fh;
	uint32_t	left,
				top;
	uint32_t	channels;
	GifByteType *line;
	img_status	st;
	int			row = 0;

	if (desc->Width <= 0 || desc->Height <= 0 || desc->Left < 0 || desc->Top < 0)
		return img_fail(err, IMG_ERR_CORRUPT, "gif first frame has invalid geometry");
	fw = (uint32_t) desc->Width;
	fh = (uint32_t) desc->Height;
	left = (uint32_t) desc->Left;
	top = (uint32_t) desc->Top;
	st = check_dimensions("frame", fw, fh, limits, err);
	if (st != IMG_OK)
		return st;
	if (cmap == NULL || cmap->Colors == NULL)
		return img_fail(err, IMG_ERR_CORRUPT, "gif first frame has no colour table");

	channels = (transparent >= 0 || left != 0 || top != 0 || fw < cw || fh < ch) ? 4 : 3;
	st = img_raster_init(&out->raster, cw, ch, channels, err);
	if (st != IMG_OK)
		return st;
	memset(out->raster.pixels, 0, out->raster.stride * ch);
	out->layout = channels == 4 ? IMG_LAYOUT_RGBA : IMG_LAYOUT_RGB;

	line = img_alloc(fw);
	if (line == NULL)
		return img_fail(err, IMG_ERR_NO_MEMORY, "out of memory for a gif row");

	for (int pass = desc->Interlace ? 0 : 3; pass < 4; pass++)
	{
		int			start = desc->Interlace ? pass_start[pass] : 0;
		int			step = desc->Interlace ? pass_step[pass] : 1;

		for (uint32_t y = (uint32_t) start; y < fh; y += (uint32_t) step, row++)
		{
			uint8_t    *dst;

			st = img_check_interrupt(err, "decoding gif rows");
			if (st != IMG_OK)
			{
				img_free(line);
				return st;
			}
			if (DGifGetLine(gif, line, (int) fw) == GIF_ERROR)
			{
				img_free(line);
				return gif_error(err, gif->Error);
			}
			if (top + y >= ch)
				continue;
			dst = out->raster.pixels + (size_t) (top + y) * out->raster.stride;
			for (uint32_t x = 0; x < fw && left + x < cw; x++)
			{
				int			idx = line[x];
				uint8_t    *px = dst + (size_t) (left + x) * channels;

				if (idx == transparent)
					continue;	/* stays transparent black */
				if (idx < cmap->ColorCount)
				{
					px[0] = cmap->Colors[idx].Red;
					px[1] = cmap->Colors[idx].Green;
					px[2] = cmap->Colors[idx].Blue;
				}
				else
					px[0] = px[1] = px[2] = 0;	/* out-of-table index: black */
				if (channels == 4)
					px[3] = 255;
			}
		}
	}
	img_free(line);
	return IMG_OK;
}

static img_status
gif_decode(const uint8_t *data, size_t len, const img_limits *limits,
		   const img_info *info, uint32_t min_width, uint32_t min_height,
		   img_decoded *out, img_error *err)
{
	gif_source	src = {data, len, 0};
	GifFileType *gif;
	int			code = 0;
	int			transparent = -1;
	img_status	st = IMG_OK;
	bool		done = false;

	(void) info;
	(void) min_width;
	(void) min_height;
	memset(out, 0, sizeof(*out));
	out->orientation = 1;

	gif = DGifOpen(&src, gif_read, &code);
	if (gif == NULL)
		return gif_error(err, code);
	st = check_dimensions("logical screen", (uint32_t) gif->SWidth,
						  (uint32_t) gif->SHeight, limits, err);

	while (st == IMG_OK && !done)
	{
		GifRecordType type;

		if (DGifGetRecordType(gif, &type) == GIF_ERROR)
		{
			st = gif_error(err, gif->Error);
			break;
		}
		switch (type)
		{
			case EXTENSION_RECORD_TYPE:
				{
					int			ext_code;
					GifByteType *ext;

					if (DGifGetExtension(gif, &ext_code, &ext) == GIF_ERROR)
					{
						st = gif_error(err, gif->Error);
						break;
					}
					if (ext_code == GRAPHICS_EXT_FUNC_CODE && ext != NULL && ext[0] >= 4)
					{
						GraphicsControlBlock gcb;

						if (DGifExtensionToGCB(ext[0], ext + 1, &gcb) == GIF_OK)
							transparent = gcb.TransparentColor;
					}
					while (ext != NULL)
					{
						if (DGifGetExtensionNext(gif, &ext) == GIF_ERROR)
						{
							st = gif_error(err, gif->Error);
							break;
						}
					}
					break;
				}
			case IMAGE_DESC_RECORD_TYPE:
				if (DGifGetImageDesc(gif) == GIF_ERROR)
					st = gif_error(err, gif->Error);
				else
					st = gif_decode_frame(gif, transparent, limits, out, err);
				done = true;
				break;
			case TERMINATE_RECORD_TYPE:
				st = img_fail(err, IMG_ERR_CORRUPT, "gif contains no image");
				break;
			default:
				st = img_fail(err, IMG_ERR_CORRUPT, "gif has an unknown record type");
				break;
		}
	}

	DGifCloseFile(gif, &code);
	if (st != IMG_OK)
		img_decoded_free(out);
	return st;
}

const img_codec img_codec_gif = {
	.format = IMG_FORMAT_GIF,
	.probe = gif_probe,
	.decode = gif_decode,
};
