/*
 * test_sniff.c — format detection from magic numbers, and the claims a file
 * name or a content type makes.
 *
 * img_sniff is the only thing that chooses a decoder, so every magic number
 * it knows is checked here from byte strings built inline (no fixture can
 * drift), together with the near misses that must not match: a RIFF that is
 * not WebP, an ISO BMFF that is plain MP4, markup hidden behind a BOM or
 * whitespace, binary that must not pass as text.  The claim parsers are
 * checked for case, missing extensions, dotted paths and MIME parameters,
 * because the extension compares those claims with the bytes to refuse
 * type-confused uploads.
 */
#include "test.h"
#include "imgcore.h"

#include <string.h>

#define SNIFF(lit) img_sniff((const uint8_t *) (lit), sizeof(lit) - 1)

static void
check_sniff(const char *what, const void *bytes, size_t len, img_format want)
{
	img_format	got = img_sniff((const uint8_t *) bytes, len);

	CHECK(got == want, "%s: sniffed as %s, expected %s", what,
		  img_format_name(got), img_format_name(want));
}

#define EXPECT_SNIFF(what, lit, want) check_sniff((what), (lit), sizeof(lit) - 1, (want))

/* A minimal BMP header: "BM", file size, reserved, pixel offset, DIB size. */
static void
make_bmp_header(uint8_t *buf, size_t len, uint32_t dib_size)
{
	memset(buf, 0, len);
	buf[0] = 'B';
	buf[1] = 'M';
	buf[2] = (uint8_t) len;
	buf[10] = 54;
	buf[14] = (uint8_t) dib_size;
	buf[15] = (uint8_t) (dib_size >> 8);
}

/*
 * An ISO BMFF "ftyp" box: size, "ftyp", major brand, minor version and the
 * compatible brands (brands is a string of 4-character brands).
 */
static size_t
make_ftyp(uint8_t *buf, const char *major, const char *minor, const char *brands)
{
	size_t		nb = strlen(brands);
	size_t		size = 16 + nb;

	buf[0] = 0;
	buf[1] = 0;
	buf[2] = (uint8_t) (size >> 8);
	buf[3] = (uint8_t) size;
	memcpy(buf + 4, "ftyp", 4);
	memcpy(buf + 8, major, 4);
	memcpy(buf + 12, minor, 4);
	memcpy(buf + 16, brands, nb);
	/* something that is not a box boundary after the ftyp */
	memcpy(buf + size, "\0\0\0\x08" "meta", 8);
	return size + 8;
}

TEST_SUITE(sniff_magic)
{
	uint8_t		buf[256];
	size_t		n;

	/* JPEG: FF D8 FF and any marker after it */
	EXPECT_SNIFF("jpeg jfif", "\xFF\xD8\xFF\xE0\x00\x10JFIF\x00", IMG_FORMAT_JPEG);
	EXPECT_SNIFF("jpeg exif", "\xFF\xD8\xFF\xE1\x00\x10" "Exif\x00\x00", IMG_FORMAT_JPEG);
	EXPECT_SNIFF("jpeg raw dqt", "\xFF\xD8\xFF\xDB\x00\x43", IMG_FORMAT_JPEG);
	EXPECT_SNIFF("jpeg 3 bytes", "\xFF\xD8\xFF", IMG_FORMAT_JPEG);
	CHECK(SNIFF("\xFF\xD8\x00\x00\x00\x00\x00\x00") != IMG_FORMAT_JPEG,
		  "FF D8 without a third FF is not a JPEG");

	/* PNG: the full 8-byte signature */
	EXPECT_SNIFF("png", "\x89PNG\r\n\x1A\n\x00\x00\x00\x0DIHDR", IMG_FORMAT_PNG);
	CHECK(SNIFF("\x89PNG\r\n\x1A\x00\x00\x00\x00\x0DIHDR") != IMG_FORMAT_PNG,
		  "a PNG signature with a damaged 8th byte is not PNG");
	CHECK(SNIFF("\x89PNG\n\x1A\n\x00\x00\x00\x00\x0DIHDR") != IMG_FORMAT_PNG,
		  "a PNG signature mangled by CRLF->LF conversion is not PNG");

	/* GIF: both versions, nothing else */
	EXPECT_SNIFF("gif87a", "GIF87a\x01\x00\x01\x00\x00\x00\x00", IMG_FORMAT_GIF);
	EXPECT_SNIFF("gif89a", "GIF89a\x01\x00\x01\x00\x00\x00\x00", IMG_FORMAT_GIF);
	CHECK(SNIFF("GIF88a\x01\x00\x01\x00\x00\x00\x00") != IMG_FORMAT_GIF, "GIF88a is not a GIF");

	/* WebP: RIFF container with the WEBP form type */
	EXPECT_SNIFF("webp vp8", "RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00", IMG_FORMAT_WEBP);
	EXPECT_SNIFF("webp vp8l", "RIFF\x24\x00\x00\x00WEBPVP8L\x18\x00\x00\x00", IMG_FORMAT_WEBP);
	EXPECT_SNIFF("webp vp8x", "RIFF\x24\x00\x00\x00WEBPVP8X\x0A\x00\x00\x00", IMG_FORMAT_WEBP);
	EXPECT_SNIFF("riff wave", "RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00", IMG_FORMAT_UNKNOWN);
	EXPECT_SNIFF("riff avi", "RIFF\x24\x00\x00\x00" "AVI LIST\x10\x00\x00\x00", IMG_FORMAT_UNKNOWN);

	/* TIFF: both byte orders; BigTIFF (43) is not accepted as TIFF */
	EXPECT_SNIFF("tiff le", "II*\x00\x08\x00\x00\x00", IMG_FORMAT_TIFF);
	EXPECT_SNIFF("tiff be", "MM\x00*\x00\x00\x00\x08", IMG_FORMAT_TIFF);
	CHECK(SNIFF("II+\x00\x08\x00\x00\x00\x00\x00\x00\x00") != IMG_FORMAT_TIFF,
		  "BigTIFF (II+) is not sniffed as TIFF");

	/* BMP: "BM" alone is not enough, the DIB header size must be a real one */
	{
		static const uint32_t dibs[] = {12, 40, 52, 56, 64, 108, 124};

		for (size_t i = 0; i < sizeof(dibs) / sizeof(dibs[0]); i++)
		{
			make_bmp_header(buf, 64, dibs[i]);
			CHECK(img_sniff(buf, 64) == IMG_FORMAT_BMP, "BMP with DIB header %u: got %s",
				  dibs[i], img_format_name(img_sniff(buf, 64)));
		}
		make_bmp_header(buf, 64, 41);
		CHECK(img_sniff(buf, 64) != IMG_FORMAT_BMP, "BMP with DIB size 41 must not sniff as BMP");
		make_bmp_header(buf, 20, 40);
		CHECK(img_sniff(buf, 20) != IMG_FORMAT_BMP, "20-byte BMP header is too short to be BMP");
		EXPECT_SNIFF("BM text", "BMW is a car maker, not a bitmap.", IMG_FORMAT_TEXT);
	}

	/* recognised, refused formats */
	EXPECT_SNIFF("jxl codestream", "\xFF\x0A\xFA\x7F", IMG_FORMAT_JXL);
	EXPECT_SNIFF("jxl container", "\x00\x00\x00\x0CJXL \r\n\x87\n\x00\x00", IMG_FORMAT_JXL);
	EXPECT_SNIFF("jp2 container", "\x00\x00\x00\x0CjP  \r\n\x87\n\x00\x00", IMG_FORMAT_JP2);
	EXPECT_SNIFF("j2k codestream", "\xFF\x4F\xFF\x51\x00\x2F", IMG_FORMAT_JP2);
	EXPECT_SNIFF("ico", "\x00\x00\x01\x00\x01\x00\x10\x10\x00\x00", IMG_FORMAT_ICO);
	CHECK(SNIFF("\x00\x00\x01\x00\x00\x00\x10\x10\x00\x00") != IMG_FORMAT_ICO,
		  "an ICO header with zero images is not ICO");
	EXPECT_SNIFF("pbm", "P1\n2 2\n0 1 1 0\n", IMG_FORMAT_PNM);
	EXPECT_SNIFF("pgm", "P5 2 2 255\n\x00\x01\x02\x03", IMG_FORMAT_PNM);
	EXPECT_SNIFF("ppm", "P6\n1 1\n255\n\x00\x00\x00", IMG_FORMAT_PNM);
	EXPECT_SNIFF("pam", "P7\nWIDTH 1\n", IMG_FORMAT_PNM);
	EXPECT_SNIFF("P8 is text", "P8\nnot a pnm", IMG_FORMAT_TEXT);
	EXPECT_SNIFF("pdf", "%PDF-1.7\n%\xE2\xE3\xCF\xD3\n", IMG_FORMAT_PDF);
	EXPECT_SNIFF("postscript", "%!PS-Adobe-3.0\n", IMG_FORMAT_POSTSCRIPT);
	EXPECT_SNIFF("eps binary", "\xC5\xD0\xD3\xC6\x1E\x00\x00\x00", IMG_FORMAT_POSTSCRIPT);
	EXPECT_SNIFF("zip", "PK\x03\x04\x14\x00\x00\x00", IMG_FORMAT_ZIP);
	EXPECT_SNIFF("zip empty", "PK\x05\x06\x00\x00\x00\x00", IMG_FORMAT_ZIP);
	EXPECT_SNIFF("zip spanned", "PK\x07\x08\x00\x00\x00\x00", IMG_FORMAT_ZIP);
	EXPECT_SNIFF("gzip", "\x1F\x8B\x08\x00\x00\x00\x00\x00", IMG_FORMAT_GZIP);
	EXPECT_SNIFF("elf", "\x7F" "ELF\x02\x01\x01\x00", IMG_FORMAT_ELF);
	EXPECT_SNIFF("pe", "MZ\x90\x00\x03\x00\x00\x00", IMG_FORMAT_PE);
	EXPECT_SNIFF("shell script", "#!/bin/sh\nrm -rf /\n", IMG_FORMAT_SCRIPT);
	EXPECT_SNIFF("script after spaces", "  \n#!/usr/bin/env python3\n", IMG_FORMAT_SCRIPT);

	/* nothing */
	CHECK(img_sniff(NULL, 0) == IMG_FORMAT_EMPTY, "NULL is empty");
	CHECK(img_sniff((const uint8_t *) "x", 0) == IMG_FORMAT_EMPTY, "zero length is empty");

	/* an MP4 is an ISO BMFF file but neither HEIF nor AVIF */
	n = make_ftyp(buf, "isom", "\0\0\2\0", "isomiso2avc1mp41");
	CHECK(img_sniff(buf, n) == IMG_FORMAT_UNKNOWN, "mp4 ftyp: got %s",
		  img_format_name(img_sniff(buf, n)));
}

TEST_SUITE(sniff_heif_avif)
{
	uint8_t		buf[128];
	size_t		n;
	static const struct
	{
		const char *major;
		const char *minor;
		const char *compat;
		img_format	want;
	}			cases[] = {
		/* major brand alone decides */
		{"heic", "\0\0\0\0", "", IMG_FORMAT_HEIF},
		{"heix", "\0\0\0\0", "", IMG_FORMAT_HEIF},
		{"mif1", "\0\0\0\0", "", IMG_FORMAT_HEIF},
		{"msf1", "\0\0\0\0", "", IMG_FORMAT_HEIF},
		{"hevc", "\0\0\0\0", "", IMG_FORMAT_HEIF},
		{"avif", "\0\0\0\0", "", IMG_FORMAT_AVIF},
		{"avis", "\0\0\0\0", "", IMG_FORMAT_AVIF},
		/* typical writers */
		{"heic", "\0\0\0\0", "mif1heic", IMG_FORMAT_HEIF},
		{"avif", "\0\0\0\0", "avifmif1miafMA1B", IMG_FORMAT_AVIF},
		/* generic major brand: the compatible brands decide */
		{"mif1", "\0\0\0\0", "mif1avifmiaf", IMG_FORMAT_AVIF},
		{"mif1", "\0\0\0\0", "mif1heicmiaf", IMG_FORMAT_HEIF},
		{"msf1", "\0\0\0\0", "msf1avis", IMG_FORMAT_AVIF},
		{"miaf", "\0\0\0\0", "miafavif", IMG_FORMAT_AVIF},
		{"miaf", "\0\0\0\0", "miafheix", IMG_FORMAT_HEIF},
		/* a specific major brand wins over a compatible one */
		{"heic", "\0\0\0\0", "mif1avif", IMG_FORMAT_HEIF},
		{"avif", "\0\0\0\0", "mif1heic", IMG_FORMAT_AVIF},
		/* the minor version is not a brand */
		{"isom", "avif", "isommp41", IMG_FORMAT_UNKNOWN},
		{"mp42", "heic", "mp42isom", IMG_FORMAT_UNKNOWN},
		/* other ISO BMFF files */
		{"qt  ", "\0\0\0\0", "qt  ", IMG_FORMAT_UNKNOWN},
		{"crx ", "\0\0\0\x01", "crx isom", IMG_FORMAT_UNKNOWN},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		img_format	got;

		memset(buf, 0, sizeof(buf));
		n = make_ftyp(buf, cases[i].major, cases[i].minor, cases[i].compat);
		got = img_sniff(buf, n);
		CHECK(got == cases[i].want, "ftyp major '%.4s' compatible '%s': got %s, expected %s",
			  cases[i].major, cases[i].compat, img_format_name(got),
			  img_format_name(cases[i].want));
	}

	/* a box size larger than the data must not read past it */
	memset(buf, 0, sizeof(buf));
	n = make_ftyp(buf, "mif1", "\0\0\0\0", "mif1avif");
	buf[2] = 0x7F;				/* claims 32 KiB */
	CHECK(img_sniff(buf, n) == IMG_FORMAT_AVIF, "ftyp with an oversized box length is still AVIF");
	/* too short to hold a brand */
	CHECK(SNIFF("\x00\x00\x00\x0C" "ftypheic") != IMG_FORMAT_HEIF,
		  "a 12-byte ftyp with no room for brands is not HEIF");
}

TEST_SUITE(sniff_markup_text)
{
	/* SVG, with and without a prolog, BOM and leading whitespace */
	EXPECT_SNIFF("svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"/>", IMG_FORMAT_SVG);
	EXPECT_SNIFF("svg upper", "<SVG XMLNS=\"http://www.w3.org/2000/svg\"/>", IMG_FORMAT_SVG);
	EXPECT_SNIFF("svg prolog", "<?xml version=\"1.0\"?>\n<svg/>", IMG_FORMAT_SVG);
	EXPECT_SNIFF("svg bom", "\xEF\xBB\xBF<svg/>", IMG_FORMAT_SVG);
	EXPECT_SNIFF("svg whitespace", " \t\r\n\n   <svg/>", IMG_FORMAT_SVG);
	EXPECT_SNIFF("svg bom whitespace", "\xEF\xBB\xBF\n\n  \t<?xml version='1.0'?><svg/>", IMG_FORMAT_SVG);
	EXPECT_SNIFF("svg doctype", "<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" \"x\"><svg/>",
				 IMG_FORMAT_SVG);
	EXPECT_SNIFF("svg xxe",
				 "<?xml version=\"1.0\"?><!DOCTYPE svg [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><svg>&x;</svg>",
				 IMG_FORMAT_SVG);

	/* HTML in its many spellings */
	EXPECT_SNIFF("html", "<html><body>x</body></html>", IMG_FORMAT_HTML);
	EXPECT_SNIFF("html doctype", "<!DOCTYPE html>\n<title>x</title>", IMG_FORMAT_HTML);
	EXPECT_SNIFF("html bom", "\xEF\xBB\xBF<!doctype HTML><p>", IMG_FORMAT_HTML);
	EXPECT_SNIFF("html whitespace", "\r\n\r\n   <HTML>", IMG_FORMAT_HTML);
	EXPECT_SNIFF("script", "<script>alert(document.cookie)</script>", IMG_FORMAT_HTML);
	EXPECT_SNIFF("iframe", "  <iframe src=\"//evil\"></iframe>", IMG_FORMAT_HTML);
	EXPECT_SNIFF("body", "<body onload=\"alert(1)\">", IMG_FORMAT_HTML);
	EXPECT_SNIFF("head", "<head><meta charset=utf-8></head>", IMG_FORMAT_HTML);
	EXPECT_SNIFF("unknown tag", "<p>hello</p>", IMG_FORMAT_HTML);

	/* XML that is neither SVG nor HTML */
	EXPECT_SNIFF("xml", "<?xml version=\"1.0\"?><root><a/></root>", IMG_FORMAT_XML);
	EXPECT_SNIFF("xml bom ws", "\xEF\xBB\xBF  <?xml version=\"1.0\"?><feed/>", IMG_FORMAT_XML);
	EXPECT_SNIFF("xml entity", "<!DOCTYPE lolz [<!ENTITY lol \"lol\">]><lolz>&lol;</lolz>",
				 IMG_FORMAT_XML);

	/* text versus binary */
	EXPECT_SNIFF("ascii", "just some words\nand another line\n", IMG_FORMAT_TEXT);
	EXPECT_SNIFF("utf8", "caf\xC3\xA9 cr\xC3\xA8me br\xC3\xBBl\xC3\xA9" "e, na\xC3\xAFve\n", IMG_FORMAT_TEXT);
	EXPECT_SNIFF("bom text", "\xEF\xBB\xBFplain text with a byte order mark\n", IMG_FORMAT_TEXT);
	EXPECT_SNIFF("csv", "a,b,c\n1,2,3\n4,5,6\n", IMG_FORMAT_TEXT);
	EXPECT_SNIFF("binary", "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0E\x0F\x10", IMG_FORMAT_UNKNOWN);
	EXPECT_SNIFF("utf16 svg", "\xFF\xFE<\x00s\x00v\x00g\x00/\x00>\x00", IMG_FORMAT_UNKNOWN);

	{
		char		mostly[100];

		/* 96 % printable: text */
		memset(mostly, 'a', sizeof(mostly));
		memset(mostly, 0x01, 4);
		check_sniff("96% printable", mostly, sizeof(mostly), IMG_FORMAT_TEXT);
		/* 90 % printable: binary */
		memset(mostly, 0x00, 10);
		check_sniff("90% printable", mostly, sizeof(mostly), IMG_FORMAT_UNKNOWN);
	}

	/* markup hidden after 2 KiB of blank lines: only whitespace up to 1 KiB is skipped */
	{
		char		padded[1200 + 8];

		memset(padded, '\n', 1200);
		memcpy(padded + 1200, "<svg/>", 6);
		check_sniff("svg after 1200 newlines", padded, 1206, IMG_FORMAT_TEXT);
		check_sniff("svg after 1000 newlines", padded + 200, 1006, IMG_FORMAT_SVG);
	}
}

TEST_SUITE(sniff_claims)
{
	static const struct
	{
		const char *name;
		img_format	want;
	}			names[] = {
		{"photo.jpg", IMG_FORMAT_JPEG},
		{"PHOTO.JPG", IMG_FORMAT_JPEG},
		{"Photo.JpEg", IMG_FORMAT_JPEG},
		{"photo.jpe", IMG_FORMAT_JPEG},
		{"photo.jfif", IMG_FORMAT_JPEG},
		{"image.PNG", IMG_FORMAT_PNG},
		{"anim.gif", IMG_FORMAT_GIF},
		{"a.webp", IMG_FORMAT_WEBP},
		{"IMG_0001.HEIC", IMG_FORMAT_HEIF},
		{"x.heif", IMG_FORMAT_HEIF},
		{"x.avif", IMG_FORMAT_AVIF},
		{"scan.tif", IMG_FORMAT_TIFF},
		{"scan.TIFF", IMG_FORMAT_TIFF},
		{"old.bmp", IMG_FORMAT_BMP},
		{"new.jxl", IMG_FORMAT_JXL},
		{"x.jp2", IMG_FORMAT_JP2},
		{"favicon.ico", IMG_FORMAT_ICO},
		{"x.ppm", IMG_FORMAT_PNM},
		{"logo.svg", IMG_FORMAT_SVG},
		{"logo.SVGZ", IMG_FORMAT_SVG},
		{"page.htm", IMG_FORMAT_HTML},
		{"doc.pdf", IMG_FORMAT_PDF},
		{"run.sh", IMG_FORMAT_SCRIPT},
		{"notes.txt", IMG_FORMAT_TEXT},
		/* the last extension is the claim */
		{"archive.tar.gz", IMG_FORMAT_GZIP},
		{"invoice.pdf.exe", IMG_FORMAT_PE},
		{"cat.png.jpg", IMG_FORMAT_JPEG},
		{"my.holiday.photo.v2.webp", IMG_FORMAT_WEBP},
		/* paths: dots in directories do not count */
		{"/tmp/photo.jpg", IMG_FORMAT_JPEG},
		{"/home/me/pics.2024/photo.png", IMG_FORMAT_PNG},
		{"/home/me/pics.png/photo", IMG_FORMAT_UNKNOWN},
		{"./photo", IMG_FORMAT_UNKNOWN},
		{"../x.gif/README", IMG_FORMAT_UNKNOWN},
		/* no or empty extension, unknown extension */
		{"photo", IMG_FORMAT_UNKNOWN},
		{"photo.", IMG_FORMAT_UNKNOWN},
		{"", IMG_FORMAT_UNKNOWN},
		{"photo.jpgx", IMG_FORMAT_UNKNOWN},
		{"photo.jp", IMG_FORMAT_UNKNOWN},
		{"photo.raw", IMG_FORMAT_UNKNOWN},
		{"photo.jpg ", IMG_FORMAT_UNKNOWN},
		/* a hidden file's name is its extension */
		{".png", IMG_FORMAT_PNG},
	};
	static const struct
	{
		const char *mime;
		img_format	want;
	}			mimes[] = {
		{"image/jpeg", IMG_FORMAT_JPEG},
		{"image/jpg", IMG_FORMAT_JPEG},
		{"image/pjpeg", IMG_FORMAT_JPEG},
		{"IMAGE/JPEG", IMG_FORMAT_JPEG},
		{"Image/Png", IMG_FORMAT_PNG},
		{"image/gif", IMG_FORMAT_GIF},
		{"image/webp", IMG_FORMAT_WEBP},
		{"image/heic", IMG_FORMAT_HEIF},
		{"image/heif-sequence", IMG_FORMAT_HEIF},
		{"image/avif", IMG_FORMAT_AVIF},
		{"image/tiff", IMG_FORMAT_TIFF},
		{"image/x-ms-bmp", IMG_FORMAT_BMP},
		{"image/jxl", IMG_FORMAT_JXL},
		{"image/vnd.microsoft.icon", IMG_FORMAT_ICO},
		{"image/svg+xml", IMG_FORMAT_SVG},
		{"text/html", IMG_FORMAT_HTML},
		{"text/xml", IMG_FORMAT_XML},
		{"application/pdf", IMG_FORMAT_PDF},
		{"application/zip", IMG_FORMAT_ZIP},
		{"text/plain", IMG_FORMAT_TEXT},
		/* parameters and surrounding spaces */
		{"image/jpeg; charset=binary", IMG_FORMAT_JPEG},
		{"image/png;q=0.9", IMG_FORMAT_PNG},
		{"image/webp ; foo=bar", IMG_FORMAT_WEBP},
		{"  image/gif", IMG_FORMAT_GIF},
		{"image/gif  ", IMG_FORMAT_GIF},
		{"text/html; charset=UTF-8", IMG_FORMAT_HTML},
		{"image/svg+xml;charset=utf-8", IMG_FORMAT_SVG},
		/* near misses */
		{"image/jpegx", IMG_FORMAT_UNKNOWN},
		{"image/jpe", IMG_FORMAT_UNKNOWN},
		{"image/", IMG_FORMAT_UNKNOWN},
		{"jpeg", IMG_FORMAT_UNKNOWN},
		{"image/*", IMG_FORMAT_UNKNOWN},
		{"application/octet-stream", IMG_FORMAT_UNKNOWN},
		{"", IMG_FORMAT_UNKNOWN},
		{";charset=binary", IMG_FORMAT_UNKNOWN},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
	{
		img_format	got = img_format_from_name(names[i].name);

		CHECK(got == names[i].want, "file name \"%s\": got %s, expected %s", names[i].name,
			  img_format_name(got), img_format_name(names[i].want));
	}
	CHECK(img_format_from_name(NULL) == IMG_FORMAT_UNKNOWN, "NULL file name claims nothing");

	for (size_t i = 0; i < sizeof(mimes) / sizeof(mimes[0]); i++)
	{
		img_format	got = img_format_from_mime(mimes[i].mime);

		CHECK(got == mimes[i].want, "content type \"%s\": got %s, expected %s", mimes[i].mime,
			  img_format_name(got), img_format_name(mimes[i].want));
	}
	CHECK(img_format_from_mime(NULL) == IMG_FORMAT_UNKNOWN, "NULL content type claims nothing");
}

TEST_SUITE(sniff_format_table)
{
	static const img_format accepted[] = {
		IMG_FORMAT_JPEG, IMG_FORMAT_PNG, IMG_FORMAT_GIF, IMG_FORMAT_WEBP,
		IMG_FORMAT_HEIF, IMG_FORMAT_AVIF, IMG_FORMAT_TIFF, IMG_FORMAT_BMP,
	};
	int			n_accepted = 0;

	for (int f = 0; f < IMG_FORMAT_COUNT; f++)
	{
		bool		want = false;
		const char *name = img_format_name((img_format) f);

		for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++)
			if (accepted[i] == (img_format) f)
				want = true;
		CHECK(img_format_is_accepted((img_format) f) == want, "format %s accepted should be %d",
			  name, want);
		n_accepted += img_format_is_accepted((img_format) f);
		CHECK(name != NULL && name[0] != '\0', "format %d has a name", f);
		/* every format that has a MIME type names itself in the MIME parser */
		if (img_format_mime((img_format) f) != NULL && f != IMG_FORMAT_PE &&
			f != IMG_FORMAT_ELF && f != IMG_FORMAT_SCRIPT && f != IMG_FORMAT_PNM)
			CHECK(img_format_from_mime(img_format_mime((img_format) f)) == (img_format) f,
				  "img_format_from_mime(img_format_mime(%s)) round-trips", name);
	}
	CHECK(n_accepted == 8, "8 accepted formats, got %d", n_accepted);
	CHECK(strcmp(img_format_name(IMG_FORMAT_JPEG), "jpeg") == 0, "jpeg name");
	CHECK(strcmp(img_format_mime(IMG_FORMAT_JPEG), "image/jpeg") == 0, "jpeg mime");
	CHECK(strcmp(img_format_mime(IMG_FORMAT_SVG), "image/svg+xml") == 0, "svg mime");
	CHECK(img_format_mime(IMG_FORMAT_UNKNOWN) == NULL, "unknown has no mime");
	CHECK(strcmp(img_format_name((img_format) 999), "unknown") == 0, "out-of-range format is unknown");
	CHECK(!img_format_is_accepted((img_format) -1), "negative format is not accepted");
	CHECK(img_format_mime((img_format) IMG_FORMAT_COUNT) == NULL, "out-of-range format has no mime");
}
