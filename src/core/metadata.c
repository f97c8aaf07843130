/*
 * metadata.c — what metadata an image carries, and its orientation.
 *
 * imgmod strips every byte of metadata, so the only value it reads out of
 * EXIF is the orientation; the rest is reported (present / absent) so that
 * imgmod.inspect() can tell an operator what an upload carried.  EXIF is
 * parsed by libexif, which bounds every read by the block's length.
 */
#include "codec.h"

#include <libexif/exif-data.h>
#include <limits.h>
#include <string.h>

static const uint8_t exif_header[6] = {'E', 'x', 'i', 'f', 0, 0};

void
img_exif_scan(const uint8_t *data, size_t len, bool tiff_header, img_info *info)
{
	ExifData   *ed;
	ExifEntry  *entry;
	uint8_t    *owned = NULL;
	const uint8_t *block = data;
	size_t		block_len = len;

	info->has_exif = true;
	if (data == NULL || len < 8)
		return;

	/* libexif expects the "Exif\0\0" preamble that JPEG APP1 carries. */
	if (tiff_header)
	{
		if (len > SIZE_MAX - sizeof(exif_header))
			return;
		owned = img_alloc(len + sizeof(exif_header));
		if (owned == NULL)
			return;
		memcpy(owned, exif_header, sizeof(exif_header));
		memcpy(owned + sizeof(exif_header), data, len);
		block = owned;
		block_len = len + sizeof(exif_header);
	}
	else if (memcmp(data, exif_header, sizeof(exif_header)) != 0)
		return;

	ed = exif_data_new();
	if (ed == NULL)
	{
		img_free(owned);
		return;
	}
	/* Read only: never "fix" or interpret maker notes. */
	exif_data_unset_option(ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
	exif_data_set_option(ed, EXIF_DATA_OPTION_DONT_CHANGE_MAKER_NOTE);
	exif_data_set_option(ed, EXIF_DATA_OPTION_IGNORE_UNKNOWN_TAGS);
	if (block_len <= UINT_MAX)
		exif_data_load_data(ed, block, (unsigned int) block_len);

	entry = exif_content_get_entry(ed->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION);
	if (entry != NULL && entry->format == EXIF_FORMAT_SHORT &&
		entry->components >= 1 && entry->data != NULL && entry->size >= 2)
	{
		ExifShort	v = exif_get_short(entry->data, exif_data_get_byte_order(ed));

		/* Values outside 1..8 (a lie or damage) mean "as stored". */
		info->orientation = (v >= 1 && v <= 8) ? (uint8_t) v : 1;
	}
	if (ed->ifd[EXIF_IFD_GPS] != NULL && ed->ifd[EXIF_IFD_GPS]->count > 0)
		info->has_gps = true;

	exif_data_unref(ed);
	img_free(owned);
}

static bool
memfind(const uint8_t *data, size_t len, const char *needle)
{
	size_t		n = strlen(needle);

	if (n == 0 || len < n)
		return false;
	for (size_t i = 0; i + n <= len; i++)
		if (data[i] == (uint8_t) needle[0] && memcmp(data + i, needle, n) == 0)
			return true;
	return false;
}

bool
img_is_xmp(const uint8_t *data, size_t len)
{
	size_t		window = len < 4096 ? len : 4096;

	return memfind(data, window, "http://ns.adobe.com/xap/1.0/") ||
		memfind(data, window, "http://ns.adobe.com/xmp/extension/") ||
		memfind(data, window, "<x:xmpmeta") ||
		memfind(data, window, "<?xpacket");
}
