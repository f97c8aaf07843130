/*
 * bmp.c — a small, strict Windows BMP reader for the image core.
 *
 * Debian has no well-kept library for BMP alone, so this reads the subset
 * that real uploads use: BITMAPFILEHEADER followed by a BITMAPINFOHEADER
 * (40 bytes), its 52/56-byte extensions, V4 (108) or V5 (124), with
 *   - BI_RGB 24 and 32 bit (the fourth byte of 32-bit BI_RGB is padding),
 *   - BI_BITFIELDS / BI_ALPHABITFIELDS 32 bit (alpha when a mask is given),
 *   - BI_RGB 8 bit with a palette,
 * bottom-up or top-down (negative height).  Everything else (OS/2 headers,
 * RLE, 1/4/16-bit, JPEG or PNG inside BMP) is refused as unsupported.
 *
 * Every offset and size is checked against the data length before it is
 * used and sizes are computed with overflow checks; nothing is allocated
 * before the dimensions passed the limits.  A V5 embedded ICC profile is
 * handed back like other formats' profiles.
 */
#include "codec.h"

#include <string.h>

#define FILE_HEADER_LEN 14
#define BI_RGB			0
#define BI_RLE8			1
#define BI_RLE4			2
#define BI_BITFIELDS	3
#define BI_JPEG			4
#define BI_PNG			5
#define BI_ALPHABITFIELDS 6
#define LCS_PROFILE_EMBEDDED 0x4D424544u	/* 'MBED' */

typedef struct bmp_header
{
	uint32_t	width;
	uint32_t	height;
	bool		top_down;
	uint16_t	bpp;
	uint32_t	compression;
	size_t		pixel_offset;
	size_t		row_bytes;		/* padded to 4 bytes */
	/* 32-bit bitfields */
	uint32_t	mask[4];		/* r, g, b, a */
	/* 8-bit palette */
	size_t		palette_offset;
	uint32_t	palette_count;
	/* V5 embedded profile */
	size_t		icc_offset;
	size_t		icc_len;
} bmp_header;

static const char *
compression_name(uint32_t c)
{
	switch (c)
	{
		case BI_RLE8:
			return "RLE8";
		case BI_RLE4:
			return "RLE4";
		case BI_JPEG:
			return "embedded JPEG";
		case BI_PNG:
			return "embedded PNG";
		default:
			return "unknown";
	}
}

/* A mask must be a single run of set bits (or zero for "absent"). */
static bool
mask_valid(uint32_t m)
{
	if (m == 0)
		return true;
	while ((m & 1) == 0)
		m >>= 1;
	return (m & (m + 1)) == 0;
}

/*
 * Parse and validate the headers.  When info is given, it is filled as far
 * as the header could be read, even on failure.
 */
static img_status
bmp_parse(const uint8_t *data, size_t len, const img_limits *limits,
		  bmp_header *hdr, img_info *info, img_error *err)
{
	uint32_t	hsize;
	int32_t		sw,
				sh;
	uint64_t	bits;
	size_t		total;
	size_t		after_header;

	memset(hdr, 0, sizeof(*hdr));
	if (len < 2 || data[0] != 'B' || data[1] != 'M')
		return img_fail(err, IMG_ERR_CORRUPT, "bmp signature is damaged");
	if (len < FILE_HEADER_LEN + 4)
		return img_fail(err, IMG_ERR_TRUNCATED, "bmp is truncated: the file header is incomplete");
	hdr->pixel_offset = img_le32(data + 10);
	hsize = img_le32(data + 14);
	if (hsize == 12 || hsize == 16 || hsize == 64)
		return img_fail(err, IMG_ERR_UNSUPPORTED_FORMAT,
						"bmp uses an OS/2 bitmap header, which is not supported; convert it to PNG or JPEG");
	if (hsize != 40 && hsize != 52 && hsize != 56 && hsize != 108 && hsize != 124)
		return img_fail(err, IMG_ERR_CORRUPT, "bmp info header has an unknown size %u", hsize);
	if (len - FILE_HEADER_LEN < hsize)
		return img_fail(err, IMG_ERR_TRUNCATED, "bmp is truncated: the info header is incomplete");

	sw = (int32_t) img_le32(data + 18);
	sh = (int32_t) img_le32(data + 22);
	hdr->bpp = img_le16(data + 28);
	hdr->compression = img_le32(data + 30);
	if (sw <= 0 || sh == 0 || sh == INT32_MIN)
	{
		if (info)
		{
			info->width = sw > 0 ? (uint32_t) sw : 0;
			info->height = sh == 0 ? 0 : (uint32_t) (sh < 0 ? -(int64_t) sh : sh);
		}
		return img_fail(err, IMG_ERR_BAD_DIMENSIONS, "bmp has invalid dimensions %dx%d", sw, sh);
	}
	hdr->width = (uint32_t) sw;
	hdr->top_down = sh < 0;
	hdr->height = (uint32_t) (sh < 0 ? -(int64_t) sh : sh);
	if (info)
	{
		info->width = hdr->width;
		info->height = hdr->height;
		info->bit_depth = 8;
		info->colour = hdr->bpp == 8 ? IMG_COLOUR_PALETTE : IMG_COLOUR_RGB;
	}
	if (limits != NULL)
	{
		if (hdr->width > limits->max_side || hdr->height > limits->max_side)
			return img_fail(err, IMG_ERR_BAD_DIMENSIONS,
							"bmp is %ux%u, a side is over the limit of %u pixels",
							hdr->width, hdr->height, limits->max_side);
		if ((uint64_t) hdr->width * hdr->height > limits->max_pixels)
			return img_fail(err, IMG_ERR_TOO_MANY_PIXELS,
							"bmp is %ux%u = %llu pixels, over the limit of %llu",
							hdr->width, hdr->height,
							(unsigned long long) hdr->width * hdr->height,
							(unsigned long long) limits->max_pixels);
	}
	if (img_le16(data + 26) != 1)
		return img_fail(err, IMG_ERR_CORRUPT, "bmp header has %u colour planes, expected 1",
						img_le16(data + 26));

	after_header = FILE_HEADER_LEN + hsize;
	switch (hdr->compression)
	{
		case BI_RGB:
			if (hdr->bpp != 8 && hdr->bpp != 24 && hdr->bpp != 32)
				return img_fail(err, IMG_ERR_UNSUPPORTED_FORMAT,
								"bmp with %u bits per pixel is not supported (only 8, 24 and 32); convert it to PNG",
								hdr->bpp);
			if (hdr->bpp == 32)
			{
				hdr->mask[0] = 0x00ff0000;
				hdr->mask[1] = 0x0000ff00;
				hdr->mask[2] = 0x000000ff;
			}
			break;
		case BI_BITFIELDS:
		case BI_ALPHABITFIELDS:
			{
				/*
				 * The masks start right after the 40-byte part of the info
				 * header: a 52-byte (V2) header holds red, green and blue, a
				 * 56-byte (V3) or longer one all four.  Masks the header has
				 * no room for follow it and must be inside the data.
				 */
				size_t		nmasks = hdr->compression == BI_ALPHABITFIELDS ? 4 : 3;
				size_t		in_header = (hsize - 40) / 4;
				size_t		moff = FILE_HEADER_LEN + 40;

				if (hdr->bpp != 32)
					return img_fail(err, IMG_ERR_UNSUPPORTED_FORMAT,
									"bmp bitfields with %u bits per pixel are not supported (only 32); convert it to PNG",
									hdr->bpp);
				if (in_header >= 4)
					nmasks = 4;
				else if (nmasks > in_header)
				{
					size_t		following = nmasks - in_header;

					if (len - after_header < following * 4)
						return img_fail(err, IMG_ERR_TRUNCATED,
										"bmp is truncated: the colour masks are incomplete");
					after_header += following * 4;
				}
				for (size_t i = 0; i < nmasks; i++)
					hdr->mask[i] = img_le32(data + moff + 4 * i);
				for (int i = 0; i < 4; i++)
					if (!mask_valid(hdr->mask[i]))
						return img_fail(err, IMG_ERR_CORRUPT, "bmp colour mask 0x%08x is not contiguous",
										hdr->mask[i]);
				if (hdr->mask[0] == 0 || hdr->mask[1] == 0 || hdr->mask[2] == 0)
					return img_fail(err, IMG_ERR_CORRUPT, "bmp has an empty colour mask");
				break;
			}
		default:
			return img_fail(err, IMG_ERR_UNSUPPORTED_FORMAT,
							"bmp compression %s (%u) is not supported; convert it to PNG",
							compression_name(hdr->compression), hdr->compression);
	}
	if (info)
		info->has_alpha = hdr->mask[3] != 0;

	if (hdr->bpp == 8)
	{
		uint32_t	used = img_le32(data + 46);

		if (used > 256)
			return img_fail(err, IMG_ERR_CORRUPT, "bmp palette claims %u colours, more than 256", used);
		hdr->palette_count = used ? used : 256;
		hdr->palette_offset = after_header;
		if (len - after_header < (size_t) hdr->palette_count * 4)
			return img_fail(err, IMG_ERR_TRUNCATED, "bmp is truncated: the palette is incomplete");
	}

	/* V5 header: an embedded profile, offset from the start of the info header */
	if (hsize == 124 && img_le32(data + FILE_HEADER_LEN + 56) == LCS_PROFILE_EMBEDDED)
	{
		uint32_t	poff = img_le32(data + FILE_HEADER_LEN + 112);
		uint32_t	plen = img_le32(data + FILE_HEADER_LEN + 116);
		size_t		max = limits ? limits->max_metadata_bytes : 8u * 1024 * 1024;

		if (info)
			info->has_icc = plen > 0;
		if (plen > max)
			return img_fail(err, IMG_ERR_METADATA_TOO_LARGE,
							"bmp ICC profile is %u bytes, over the metadata limit of %zu bytes",
							plen, max);
		if (plen > 0)
		{
			if (poff > len - FILE_HEADER_LEN || plen > len - FILE_HEADER_LEN - poff)
				return img_fail(err, IMG_ERR_TRUNCATED,
								"bmp is truncated: the embedded ICC profile runs past the end of the data");
			hdr->icc_offset = FILE_HEADER_LEN + (size_t) poff;
			hdr->icc_len = plen;
			if (info)
				info->icc_bytes = plen;
		}
	}

	/* rows are padded to a multiple of 4 bytes */
	bits = (uint64_t) hdr->width * hdr->bpp;
	if (bits > SIZE_MAX - 31)
		return img_fail(err, IMG_ERR_BAD_DIMENSIONS, "bmp row size does not fit in memory");
	hdr->row_bytes = (size_t) ((bits + 31) / 32) * 4;
	if (!img_size_mul(hdr->row_bytes, hdr->height, &total))
		return img_fail(err, IMG_ERR_BAD_DIMENSIONS, "bmp pixel data size does not fit in memory");
	if (hdr->pixel_offset < after_header || hdr->pixel_offset > len)
		return img_fail(err, hdr->pixel_offset > len ? IMG_ERR_TRUNCATED : IMG_ERR_CORRUPT,
						"bmp pixel data offset %zu is outside the file", hdr->pixel_offset);
	if (len - hdr->pixel_offset < total)
		return img_fail(err, IMG_ERR_TRUNCATED,
						"bmp is truncated: the pixel data needs %zu bytes but only %zu are present",
						total, len - hdr->pixel_offset);
	if (info)
		info->has_trailing_data = false;	/* BMP has no end marker to tell */
	return IMG_OK;
}

static img_status
bmp_probe(const uint8_t *data, size_t len, const img_limits *limits,
		  img_info *info, img_error *err)
{
	img_format	format = info->format;
	bmp_header	hdr;

	memset(info, 0, sizeof(*info));
	info->format = format;
	info->frames = 1;
	info->orientation = 1;
	return bmp_parse(data, len, limits, &hdr, info, err);
}

/* Bits of a contiguous mask scaled to 0..255. */
static uint8_t
extract(uint32_t px, uint32_t mask)
{
	uint32_t	shift = 0;
	uint32_t	width = 0;
	uint32_t	v;

	if (mask == 0)
		return 255;
	while (((mask >> shift) & 1) == 0)
		shift++;
	while (shift + width < 32 && ((mask >> (shift + width)) & 1))
		width++;
	v = (px & mask) >> shift;
	if (width >= 8)
		return (uint8_t) (v >> (width - 8));
	return (uint8_t) ((v * 255 + ((1u << width) - 1) / 2) / ((1u << width) - 1));
}

static img_status
bmp_decode(const uint8_t *data, size_t len, const img_limits *limits,
		   const img_info *info, uint32_t min_width, uint32_t min_height,
		   img_decoded *out, img_error *err)
{
	bmp_header	hdr;
	img_status	st;
	uint32_t	channels;
	bool		alpha_seen = false;

	(void) info;
	(void) min_width;
	(void) min_height;
	memset(out, 0, sizeof(*out));
	out->orientation = 1;

	st = bmp_parse(data, len, limits, &hdr, NULL, err);
	if (st != IMG_OK)
		return st;
	channels = hdr.mask[3] ? 4 : 3;
	st = img_raster_init(&out->raster, hdr.width, hdr.height, channels, err);
	if (st != IMG_OK)
		return st;
	out->layout = channels == 4 ? IMG_LAYOUT_RGBA : IMG_LAYOUT_RGB;

	for (uint32_t y = 0; y < hdr.height; y++)
	{
		uint32_t	file_row = hdr.top_down ? y : hdr.height - 1 - y;
		const uint8_t *src = data + hdr.pixel_offset + (size_t) file_row * hdr.row_bytes;
		uint8_t    *dst = out->raster.pixels + (size_t) y * out->raster.stride;

		st = img_check_interrupt(err, "decoding bmp rows");
		if (st != IMG_OK)
		{
			img_decoded_free(out);
			return st;
		}

		for (uint32_t x = 0; x < hdr.width; x++, dst += channels)
		{
			switch (hdr.bpp)
			{
				case 8:
					{
						uint8_t		idx = src[x];

						if (idx < hdr.palette_count)
						{
							const uint8_t *p = data + hdr.palette_offset + (size_t) idx * 4;

							dst[0] = p[2];
							dst[1] = p[1];
							dst[2] = p[0];
						}
						else
							dst[0] = dst[1] = dst[2] = 0;
						break;
					}
				case 24:
					dst[0] = src[x * 3 + 2];
					dst[1] = src[x * 3 + 1];
					dst[2] = src[x * 3];
					break;
				case 32:
					{
						uint32_t	px = img_le32(src + (size_t) x * 4);

						dst[0] = extract(px, hdr.mask[0]);
						dst[1] = extract(px, hdr.mask[1]);
						dst[2] = extract(px, hdr.mask[2]);
						if (channels == 4)
						{
							dst[3] = extract(px, hdr.mask[3]);
							alpha_seen |= dst[3] != 0;
						}
						break;
					}
			}
		}
	}

	/*
	 * Many writers declare an alpha mask but leave the channel at zero;
	 * browsers then show the image opaque, and so do we.
	 */
	if (channels == 4 && !alpha_seen)
	{
		for (uint32_t y = 0; y < hdr.height; y++)
		{
			uint8_t    *row = out->raster.pixels + (size_t) y * out->raster.stride;

			for (uint32_t x = 0; x < hdr.width; x++)
				row[(size_t) x * 4 + 3] = 255;
		}
	}

	if (hdr.icc_len > 0)
	{
		out->icc = img_alloc(hdr.icc_len);
		if (out->icc == NULL)
		{
			img_decoded_free(out);
			return img_fail(err, IMG_ERR_NO_MEMORY, "out of memory copying the bmp ICC profile");
		}
		memcpy(out->icc, data + hdr.icc_offset, hdr.icc_len);
		out->icc_len = hdr.icc_len;
	}
	return IMG_OK;
}

const img_codec img_codec_bmp = {
	.format = IMG_FORMAT_BMP,
	.probe = bmp_probe,
	.decode = bmp_decode,
};
