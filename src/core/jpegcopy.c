/*
 * jpegcopy.c — the upload fast path: a JPEG master made by copying.
 *
 * A JPEG that needs no pixel change (upright, YCbCr or grey, sRGB) already
 * is its own master once its metadata is gone.  Its scans are still
 * entropy-decoded in full (codecs/jpeg.c, img_jpeg_check_copyable), but
 * the master is written by copying the frame header, the tables and the
 * entropy-coded segments byte for byte: no Huffman re-encode.  What is
 * dropped: every APPn (JFIF, EXIF, XMP, ICC, Photoshop, Adobe, ...) and
 * COM segment, the fill bytes between segments, and everything after EOI.
 *
 * Only a file that passes both halves is copied: the walk below, the only
 * parser of the copied bytes, keeps what it fully understands (DQT, DHT,
 * DRI, SOF0/1, SOF2 when multi-scan copies are allowed, SOS with its
 * entropy-coded data and restart markers, EOI) and gives up on anything
 * else (another marker, a length past the end, a second frame header, a
 * missing EOI); the check gives up on any libjpeg warning and on whole
 * bytes between a scan's last code and its end.  Every other
 * file goes to the lossless transform, which accepts or refuses it with
 * the verdict and message it always had: a damaged upload is judged
 * exactly as before, and a copy never carries data a decoder had to
 * forgive.
 */
#include "codec.h"

#include <string.h>

#define M_SOF0	0xC0
#define M_SOF1	0xC1
#define M_SOF2	0xC2
#define M_DHT	0xC4
#define M_RST0	0xD0
#define M_RST7	0xD7
#define M_SOI	0xD8
#define M_EOI	0xD9
#define M_SOS	0xDA
#define M_DQT	0xDB
#define M_DRI	0xDD
#define M_APP0	0xE0
#define M_APP15 0xEF
#define M_COM	0xFE

/*
 * The end of the entropy-coded data that starts at pos: the offset of the
 * first 0xFF of the marker that ends it, or len when the data ends first.
 * As in libjpeg, 0xFF fill bytes may precede any marker byte, 0xFF 0x00 is
 * a stuffed data byte and RSTn belongs to the scan.
 */
static size_t
entropy_end(const uint8_t *d, size_t len, size_t pos)
{
	while (pos < len)
	{
		const uint8_t *ff = memchr(d + pos, 0xFF, len - pos);
		size_t		next;

		if (ff == NULL)
			return len;
		pos = (size_t) (ff - d);
		next = pos + 1;
		while (next < len && d[next] == 0xFF)
			next++;
		if (next >= len)
			return len;
		if (d[next] != 0x00 && (d[next] < M_RST0 || d[next] > M_RST7))
			return pos;
		pos = next + 1;
	}
	return len;
}

/* Appends n bytes to the copy; false when they would not fit. */
static bool
put(uint8_t *dst, size_t cap, size_t *at, const uint8_t *src, size_t n)
{
	if (n > cap - *at)
		return false;
	memcpy(dst + *at, src, n);
	*at += n;
	return true;
}

/*
 * Copies the JPEG in d to dst (cap bytes, at least len) without APPn, COM,
 * fill bytes or anything after EOI; *dst_len is the copy's length.  False
 * when the file holds anything the copy does not handle.
 */
static bool
copy_markers(const uint8_t *d, size_t len, bool multi_scan, uint8_t *dst, size_t cap,
			 size_t *dst_len)
{
	static const uint8_t soi[2] = {0xFF, M_SOI};
	static const uint8_t eoi[2] = {0xFF, M_EOI};
	size_t		pos = 2;
	size_t		at = 0;
	bool		frame = false;
	unsigned	scans = 0;

	if (len < 4 || d[0] != 0xFF || d[1] != M_SOI || !put(dst, cap, &at, soi, 2))
		return false;
	for (;;)
	{
		uint8_t		marker;
		size_t		seglen;

		if (pos >= len || d[pos] != 0xFF)
			return false;
		while (pos < len && d[pos] == 0xFF)
			pos++;
		if (pos >= len)
			return false;
		marker = d[pos++];

		if (marker == M_EOI)
		{
			if (!frame || scans == 0 || !put(dst, cap, &at, eoi, 2))
				return false;
			*dst_len = at;
			return true;
		}
		/* every other marker kept or dropped here has a length */
		if (len - pos < 2)
			return false;
		seglen = img_be16(d + pos);
		if (seglen < 2 || seglen > len - pos)
			return false;

		if ((marker >= M_APP0 && marker <= M_APP15) || marker == M_COM)
		{
			pos += seglen;
			continue;
		}
		switch (marker)
		{
			case M_SOF2:
				if (!multi_scan)
					return false;
				/* FALLTHROUGH */
			case M_SOF0:
			case M_SOF1:
				if (frame)
					return false;
				frame = true;
				break;
			case M_SOS:
				if (!frame || (scans > 0 && !multi_scan))
					return false;
				scans++;
				break;
			case M_DQT:
			case M_DHT:
			case M_DRI:
				break;
			default:
				return false;
		}
		/* the marker with its segment, without the fill bytes before it */
		if (!put(dst, cap, &at, d + pos - 2, 2 + seglen))
			return false;
		pos += seglen;
		if (marker == M_SOS)
		{
			size_t		end = entropy_end(d, len, pos);

			if (end >= len || !put(dst, cap, &at, d + pos, end - pos))
				return false;
			pos = end;
		}
	}
}

img_status
img_jpeg_copy_master(const uint8_t *data, size_t len, bool multi_scan, img_buffer *out,
					 bool *unsuitable, img_error *err)
{
	uint8_t    *copy;
	uint8_t    *shrunk;
	size_t		copy_len = 0;
	img_status	st;

	memset(out, 0, sizeof(*out));
	*unsuitable = false;
	if (len < 4)
	{
		*unsuitable = true;
		return IMG_OK;
	}
	/* the copy is never longer than the file: it only leaves bytes out */
	copy = img_alloc(len);
	if (copy == NULL)
		return img_fail(err, IMG_ERR_NO_MEMORY, "out of memory copying the jpeg");
	if (!copy_markers(data, len, multi_scan, copy, len, &copy_len))
	{
		img_free(copy);
		*unsuitable = true;
		return IMG_OK;
	}
	st = img_jpeg_check_copyable(data, len, multi_scan, unsuitable, err);
	if (st != IMG_OK || *unsuitable)
	{
		img_free(copy);
		return st;
	}
	/* give back what metadata and trailing bytes took */
	shrunk = copy_len < len ? img_realloc(copy, copy_len) : NULL;
	out->data = shrunk != NULL ? shrunk : copy;
	out->len = copy_len;
	return IMG_OK;
}
