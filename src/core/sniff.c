/*
 * sniff.c — magic numbers decide the type.
 *
 * The claimed file name and content type are only ever compared with what
 * the bytes say (img_format_from_name / img_format_from_mime); they never
 * choose a decoder.
 */
#include "imgcore.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

typedef struct format_desc
{
	const char *name;
	const char *mime;
	bool		accepted;
} format_desc;

static const format_desc formats[IMG_FORMAT_COUNT] = {
	[IMG_FORMAT_UNKNOWN] = {"unknown", NULL, false},
	[IMG_FORMAT_JPEG] = {"jpeg", "image/jpeg", true},
	[IMG_FORMAT_PNG] = {"png", "image/png", true},
	[IMG_FORMAT_GIF] = {"gif", "image/gif", true},
	[IMG_FORMAT_WEBP] = {"webp", "image/webp", true},
	[IMG_FORMAT_HEIF] = {"heif", "image/heif", true},
	[IMG_FORMAT_AVIF] = {"avif", "image/avif", true},
	[IMG_FORMAT_TIFF] = {"tiff", "image/tiff", true},
	[IMG_FORMAT_BMP] = {"bmp", "image/bmp", true},
	[IMG_FORMAT_JXL] = {"jxl", "image/jxl", false},
	[IMG_FORMAT_JP2] = {"jp2", "image/jp2", false},
	[IMG_FORMAT_ICO] = {"ico", "image/vnd.microsoft.icon", false},
	[IMG_FORMAT_PNM] = {"pnm", "image/x-portable-anymap", false},
	[IMG_FORMAT_SVG] = {"svg", "image/svg+xml", false},
	[IMG_FORMAT_XML] = {"xml", "application/xml", false},
	[IMG_FORMAT_HTML] = {"html", "text/html", false},
	[IMG_FORMAT_PDF] = {"pdf", "application/pdf", false},
	[IMG_FORMAT_POSTSCRIPT] = {"postscript", "application/postscript", false},
	[IMG_FORMAT_ZIP] = {"zip", "application/zip", false},
	[IMG_FORMAT_GZIP] = {"gzip", "application/gzip", false},
	[IMG_FORMAT_ELF] = {"elf", "application/x-executable", false},
	[IMG_FORMAT_PE] = {"pe", "application/vnd.microsoft.portable-executable", false},
	[IMG_FORMAT_SCRIPT] = {"script", "text/x-shellscript", false},
	[IMG_FORMAT_TEXT] = {"text", "text/plain", false},
	[IMG_FORMAT_EMPTY] = {"empty", NULL, false},
};

const char *
img_format_name(img_format format)
{
	if ((int) format < 0 || format >= IMG_FORMAT_COUNT)
		return "unknown";
	return formats[format].name;
}

const char *
img_format_mime(img_format format)
{
	if ((int) format < 0 || format >= IMG_FORMAT_COUNT)
		return NULL;
	return formats[format].mime;
}

bool
img_format_is_accepted(img_format format)
{
	if ((int) format < 0 || format >= IMG_FORMAT_COUNT)
		return false;
	return formats[format].accepted;
}

static bool
starts_with(const uint8_t *data, size_t len, const void *magic, size_t mlen)
{
	return len >= mlen && memcmp(data, magic, mlen) == 0;
}

/* Case-insensitive search for needle in the first len bytes of data. */
static bool
contains_ci(const uint8_t *data, size_t len, const char *needle)
{
	size_t		n = strlen(needle);

	for (size_t i = 0; i + n <= len; i++)
	{
		if (strncasecmp((const char *) data + i, needle, n) == 0)
			return true;
	}
	return false;
}

/* ISO BMFF: decide HEIF vs AVIF from the ftyp box's major and compatible brands. */
static img_format
sniff_isobmff(const uint8_t *data, size_t len)
{
	uint32_t	box_size;
	bool		heif = false;
	bool		avif = false;

	if (len < 16 || memcmp(data + 4, "ftyp", 4) != 0)
		return IMG_FORMAT_UNKNOWN;
	box_size = ((uint32_t) data[0] << 24) | ((uint32_t) data[1] << 16) |
		((uint32_t) data[2] << 8) | data[3];
	if (box_size < 16 || box_size > len)
		box_size = (uint32_t) (len < 4096 ? len : 4096);

	/* major brand at 8, minor version at 12, compatible brands from 16 */
	for (uint32_t off = 8; off + 4 <= box_size; off += 4)
	{
		const uint8_t *b = data + off;

		if (off == 12)
			continue;
		if (!memcmp(b, "avif", 4) || !memcmp(b, "avis", 4))
			avif = true;
		else if (!memcmp(b, "heic", 4) || !memcmp(b, "heix", 4) ||
				 !memcmp(b, "hevc", 4) || !memcmp(b, "hevx", 4) ||
				 !memcmp(b, "heim", 4) || !memcmp(b, "heis", 4) ||
				 !memcmp(b, "mif1", 4) || !memcmp(b, "msf1", 4))
			heif = true;
	}
	/* The major brand wins when both appear. */
	if (!memcmp(data + 8, "avif", 4) || !memcmp(data + 8, "avis", 4))
		return IMG_FORMAT_AVIF;
	if (avif && !(!memcmp(data + 8, "heic", 4) || !memcmp(data + 8, "heix", 4)))
		return IMG_FORMAT_AVIF;
	if (heif)
		return IMG_FORMAT_HEIF;
	return IMG_FORMAT_UNKNOWN;
}

static bool
plausible_bmp(const uint8_t *data, size_t len)
{
	uint32_t	dib;

	if (len < 26 || data[0] != 'B' || data[1] != 'M')
		return false;
	dib = (uint32_t) data[14] | ((uint32_t) data[15] << 8) |
		((uint32_t) data[16] << 16) | ((uint32_t) data[17] << 24);
	return dib == 12 || dib == 40 || dib == 52 || dib == 56 ||
		dib == 64 || dib == 108 || dib == 124;
}

/* Markup and text: skip a BOM and leading whitespace first. */
static img_format
sniff_text(const uint8_t *data, size_t len)
{
	size_t		i = 0;
	size_t		window;
	size_t		printable = 0;

	if (starts_with(data, len, "\xEF\xBB\xBF", 3))
		i = 3;
	while (i < len && i < 1024 && isspace(data[i]))
		i++;
	window = len - i < 2048 ? len - i : 2048;

	if (window > 0 && data[i] == '<')
	{
		const uint8_t *p = data + i;

		if (contains_ci(p, window, "<svg"))
			return IMG_FORMAT_SVG;
		if (contains_ci(p, window, "<html") || contains_ci(p, window, "<!doctype html") ||
			contains_ci(p, window, "<script") || contains_ci(p, window, "<body") ||
			contains_ci(p, window, "<head") || contains_ci(p, window, "<iframe"))
			return IMG_FORMAT_HTML;
		if (contains_ci(p, window, "<?xml") || contains_ci(p, window, "<!doctype") ||
			contains_ci(p, window, "<!entity"))
			return IMG_FORMAT_XML;
		return IMG_FORMAT_HTML;
	}
	if (starts_with(data + i, len - i, "#!", 2))
		return IMG_FORMAT_SCRIPT;

	/* Text: at least 95 % printable ASCII or well-formed UTF-8 sequences. */
	window = len < 4096 ? len : 4096;
	for (size_t k = 0; k < window; k++)
	{
		uint8_t		c = data[k];
		size_t		follow = (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 0;

		if (c == '\t' || c == '\n' || c == '\r' || (c >= 0x20 && c < 0x7f))
			printable++;
		else if (follow > 0 && k + follow < window)
		{
			size_t		j;

			for (j = 1; j <= follow && (data[k + j] & 0xC0) == 0x80; j++)
				;
			if (j > follow)
			{
				printable += follow + 1;
				k += follow;
			}
		}
	}
	if (window > 0 && printable * 100 >= window * 95)
		return IMG_FORMAT_TEXT;
	return IMG_FORMAT_UNKNOWN;
}

img_format
img_sniff(const uint8_t *data, size_t len)
{
	img_format	f;

	if (data == NULL || len == 0)
		return IMG_FORMAT_EMPTY;
	if (starts_with(data, len, "\xFF\xD8\xFF", 3))
		return IMG_FORMAT_JPEG;
	if (starts_with(data, len, "\x89PNG\r\n\x1A\n", 8))
		return IMG_FORMAT_PNG;
	if (starts_with(data, len, "GIF87a", 6) || starts_with(data, len, "GIF89a", 6))
		return IMG_FORMAT_GIF;
	if (len >= 12 && !memcmp(data, "RIFF", 4) && !memcmp(data + 8, "WEBP", 4))
		return IMG_FORMAT_WEBP;
	if ((f = sniff_isobmff(data, len)) != IMG_FORMAT_UNKNOWN)
		return f;
	if (starts_with(data, len, "II*\0", 4) || starts_with(data, len, "MM\0*", 4))
		return IMG_FORMAT_TIFF;
	if (plausible_bmp(data, len))
		return IMG_FORMAT_BMP;
	if (starts_with(data, len, "\xFF\x0A", 2) ||
		starts_with(data, len, "\0\0\0\x0CJXL \r\n\x87\n", 12))
		return IMG_FORMAT_JXL;
	if (starts_with(data, len, "\0\0\0\x0CjP  \r\n\x87\n", 12) ||
		starts_with(data, len, "\xFF\x4F\xFF\x51", 4))
		return IMG_FORMAT_JP2;
	if (starts_with(data, len, "\0\0\1\0", 4) && len >= 6 && data[4] != 0)
		return IMG_FORMAT_ICO;
	if (len >= 3 && data[0] == 'P' && data[1] >= '1' && data[1] <= '7' &&
		isspace(data[2]))
		return IMG_FORMAT_PNM;
	if (starts_with(data, len, "%PDF-", 5))
		return IMG_FORMAT_PDF;
	if (starts_with(data, len, "%!PS", 4) || starts_with(data, len, "\xC5\xD0\xD3\xC6", 4))
		return IMG_FORMAT_POSTSCRIPT;
	if (starts_with(data, len, "PK\x03\x04", 4) || starts_with(data, len, "PK\x05\x06", 4) ||
		starts_with(data, len, "PK\x07\x08", 4))
		return IMG_FORMAT_ZIP;
	if (starts_with(data, len, "\x1F\x8B", 2))
		return IMG_FORMAT_GZIP;
	if (starts_with(data, len, "\x7F" "ELF", 4))
		return IMG_FORMAT_ELF;
	if (starts_with(data, len, "MZ", 2))
		return IMG_FORMAT_PE;
	return sniff_text(data, len);
}

/* ---- claims ---- */

typedef struct claim
{
	const char *key;
	img_format	format;
} claim;

static const claim extension_claims[] = {
	{"jpg", IMG_FORMAT_JPEG}, {"jpeg", IMG_FORMAT_JPEG}, {"jpe", IMG_FORMAT_JPEG},
	{"jfif", IMG_FORMAT_JPEG}, {"pjpeg", IMG_FORMAT_JPEG},
	{"png", IMG_FORMAT_PNG}, {"apng", IMG_FORMAT_PNG},
	{"gif", IMG_FORMAT_GIF},
	{"webp", IMG_FORMAT_WEBP},
	{"heic", IMG_FORMAT_HEIF}, {"heif", IMG_FORMAT_HEIF}, {"hif", IMG_FORMAT_HEIF},
	{"avif", IMG_FORMAT_AVIF},
	{"tif", IMG_FORMAT_TIFF}, {"tiff", IMG_FORMAT_TIFF},
	{"bmp", IMG_FORMAT_BMP}, {"dib", IMG_FORMAT_BMP},
	{"jxl", IMG_FORMAT_JXL},
	{"jp2", IMG_FORMAT_JP2}, {"j2k", IMG_FORMAT_JP2}, {"jpx", IMG_FORMAT_JP2},
	{"ico", IMG_FORMAT_ICO},
	{"pnm", IMG_FORMAT_PNM}, {"ppm", IMG_FORMAT_PNM}, {"pgm", IMG_FORMAT_PNM}, {"pbm", IMG_FORMAT_PNM},
	{"svg", IMG_FORMAT_SVG}, {"svgz", IMG_FORMAT_SVG},
	{"xml", IMG_FORMAT_XML},
	{"html", IMG_FORMAT_HTML}, {"htm", IMG_FORMAT_HTML},
	{"pdf", IMG_FORMAT_PDF},
	{"ps", IMG_FORMAT_POSTSCRIPT}, {"eps", IMG_FORMAT_POSTSCRIPT},
	{"zip", IMG_FORMAT_ZIP},
	{"gz", IMG_FORMAT_GZIP},
	{"exe", IMG_FORMAT_PE}, {"dll", IMG_FORMAT_PE},
	{"sh", IMG_FORMAT_SCRIPT},
	{"txt", IMG_FORMAT_TEXT},
};

static const claim mime_claims[] = {
	{"image/jpeg", IMG_FORMAT_JPEG}, {"image/jpg", IMG_FORMAT_JPEG}, {"image/pjpeg", IMG_FORMAT_JPEG},
	{"image/png", IMG_FORMAT_PNG}, {"image/apng", IMG_FORMAT_PNG},
	{"image/gif", IMG_FORMAT_GIF},
	{"image/webp", IMG_FORMAT_WEBP},
	{"image/heic", IMG_FORMAT_HEIF}, {"image/heif", IMG_FORMAT_HEIF},
	{"image/heic-sequence", IMG_FORMAT_HEIF}, {"image/heif-sequence", IMG_FORMAT_HEIF},
	{"image/avif", IMG_FORMAT_AVIF},
	{"image/tiff", IMG_FORMAT_TIFF},
	{"image/bmp", IMG_FORMAT_BMP}, {"image/x-ms-bmp", IMG_FORMAT_BMP}, {"image/x-bmp", IMG_FORMAT_BMP},
	{"image/jxl", IMG_FORMAT_JXL},
	{"image/jp2", IMG_FORMAT_JP2},
	{"image/x-icon", IMG_FORMAT_ICO}, {"image/vnd.microsoft.icon", IMG_FORMAT_ICO},
	{"image/svg+xml", IMG_FORMAT_SVG},
	{"text/html", IMG_FORMAT_HTML},
	{"application/xml", IMG_FORMAT_XML}, {"text/xml", IMG_FORMAT_XML},
	{"application/pdf", IMG_FORMAT_PDF},
	{"application/postscript", IMG_FORMAT_POSTSCRIPT},
	{"application/zip", IMG_FORMAT_ZIP},
	{"application/gzip", IMG_FORMAT_GZIP},
	{"text/plain", IMG_FORMAT_TEXT},
};

img_format
img_format_from_name(const char *filename)
{
	const char *dot;

	if (filename == NULL)
		return IMG_FORMAT_UNKNOWN;
	dot = strrchr(filename, '.');
	if (dot == NULL || dot[1] == '\0' || strchr(dot, '/') != NULL)
		return IMG_FORMAT_UNKNOWN;
	for (size_t i = 0; i < sizeof(extension_claims) / sizeof(extension_claims[0]); i++)
	{
		if (strcasecmp(dot + 1, extension_claims[i].key) == 0)
			return extension_claims[i].format;
	}
	return IMG_FORMAT_UNKNOWN;
}

img_format
img_format_from_mime(const char *content_type)
{
	size_t		n;

	if (content_type == NULL)
		return IMG_FORMAT_UNKNOWN;
	while (*content_type == ' ' || *content_type == '\t')
		content_type++;
	/* ignore parameters such as "; charset=binary" */
	n = strcspn(content_type, "; \t");
	for (size_t i = 0; i < sizeof(mime_claims) / sizeof(mime_claims[0]); i++)
	{
		if (strlen(mime_claims[i].key) == n &&
			strncasecmp(content_type, mime_claims[i].key, n) == 0)
			return mime_claims[i].format;
	}
	return IMG_FORMAT_UNKNOWN;
}
