/*
 * test_fast_path.c — the upload fast path: an upright sRGB JPEG's master is
 * its frame, tables and scans copied as they are (jpegcopy.c), after every
 * scan was entropy-decoded as the lossless transform reads it.
 *
 * Each kind of JPEG (baseline 4:4:4/4:2:2/4:2:0/4:4:0/4:1:1, grey, restart
 * markers, optimised tables, progressive, one scan per component,
 * arithmetic) is written here with libjpeg from a noisy picture (so the
 * scans hold stuffed 0xFF bytes), then every kind of metadata and a ZIP
 * tail are spliced in.  A copied master must be exactly the encoder's
 * output without its JFIF marker (so: no APPn, no COM, nothing after EOI,
 * and the source's pixels); the other kinds keep the transform, byte for
 * byte what it gave before.  Damaged files (truncated, bytes flipped,
 * marker oddities, a scan-limit file) are left to the transform, so they
 * get the verdict and message they had before; any that the copy takes
 * must decode to exactly the source's pixels.
 */
#include "test.h"
#include "imgcore.h"
#include "codec.h"
#include "jpeg_builder.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <turbojpeg.h>

/* ------------------------------------------------------------ writing */

static const char zip_tail[] =
"PK\x03\x04\x14\x00\x00\x00\x00\x00payload.html<script>alert(1)</script>IMGMOD-CANARY-ZIP";

typedef jb_jpeg_kind kind;

/* The kinds the fast path copies (single scan, Huffman). */
#define SEQ(n, h, v) {n, h, v, false, false, false, false, false, 0, 0, 0, true, false}

static const kind kinds[] = {
	SEQ("baseline 4:2:0", 2, 2),
	SEQ("baseline 4:2:2", 2, 1),
	SEQ("baseline 4:4:4", 1, 1),
	SEQ("baseline 4:4:0", 1, 2),
	SEQ("baseline 4:1:1", 4, 1),
	{"grey", 1, 1, true, false, false, false, false, 0, 0, 0, true, false},
	{"restart markers every MCU row", 2, 2, false, false, false, false, false, 1, 0, 0, true, false},
	{"restart markers every 3 MCUs", 2, 1, false, false, false, false, false, 0, 3, 0, true, false},
	{"optimised huffman tables", 2, 2, false, false, false, false, true, 0, 0, 0, true, false},
	{"adobe marker, ycbcr ids", 2, 2, false, false, false, false, false, 0, 0, 0, false, true},
	{"no jfif marker", 1, 1, false, false, false, false, false, 0, 0, 0, false, false},
	/* kept on the transform */
	{"progressive 4:2:0", 2, 2, false, true, false, false, false, 0, 0, 0, true, false},
	{"progressive grey", 1, 1, true, true, false, false, false, 0, 0, 0, true, false},
	{"progressive with restart markers", 2, 1, false, true, false, false, false, 1, 0, 0, true, false},
	{"one scan per component", 2, 2, false, false, true, false, false, 0, 0, 0, true, false},
	{"arithmetic", 2, 2, false, false, false, true, false, 0, 0, 0, true, false},
	{"jfif, components R G B", 1, 1, false, false, false, false, false, 0, 0, 'R', true, false},
	{"adobe ycbcr, components R G B", 1, 1, false, false, false, false, false, 0, 0, 'R', false, true},
};

static bool
copied_kind(const kind *k)
{
	return !k->progressive && !k->scan_per_component && !k->arithmetic && k->ids != 'R';
}

/* Multi-scan copies (img_jpeg_copy_master with multi_scan) take these too. */
static bool
copied_multi_scan(const kind *k)
{
	return !k->arithmetic && k->ids != 'R';
}

/* Grey ramps with noise: busy enough that scans hold stuffed 0xFF bytes. */
static void
noisy_pixel(uint8_t *p, uint32_t x, uint32_t y, uint32_t w, uint32_t h, const void *arg)
{
	uint32_t	n = (x * 73856093u) ^ (y * 19349663u);

	(void) arg;
	n = (n ^ (n >> 13)) * 0x5bd1e995u;
	p[0] = (uint8_t) ((x * 255 / (w ? w : 1) + (n & 63)) & 0xFF);
	p[1] = (uint8_t) ((y * 255 / (h ? h : 1) + ((n >> 8) & 63)) & 0xFF);
	p[2] = (uint8_t) ((n >> 16) & 0xFF);
}


/* The encoder's output without the APPn segments it writes after SOI. */
static jb_buf
without_leading_appn(const jb_buf *j)
{
	jb_buf		out = {malloc(j->len), 0};
	size_t		pos = 2;

	if (out.data == NULL)
		return out;
	while (pos + 4 <= j->len && j->data[pos] == 0xFF && (j->data[pos + 1] & 0xF0) == 0xE0)
		pos += 2 + (((size_t) j->data[pos + 2] << 8) | j->data[pos + 3]);
	memcpy(out.data, j->data, 2);
	memcpy(out.data + 2, j->data + pos, j->len - pos);
	out.len = 2 + j->len - pos;
	return out;
}

/* ----------------------------------------------------------- checking */

static img_limits
default_limits(void)
{
	img_limits	lim;

	img_limits_default(&lim);
	return lim;
}

/* Whether a and b decode (img_load, full size) to the very same pixels. */
static bool
same_pixels(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	img_raster	ra,
				rb;
	img_error	err = {0};
	bool		same = false;

	if (jb_load(a, alen, 0, 0, &ra, NULL, &err) != IMG_OK)
		return false;
	if (jb_load(b, blen, 0, 0, &rb, NULL, &err) == IMG_OK)
	{
		same = ra.width == rb.width && ra.height == rb.height && ra.channels == rb.channels;
		for (uint32_t y = 0; same && y < ra.height; y++)
			same = memcmp(ra.pixels + (size_t) y * ra.stride, rb.pixels + (size_t) y * rb.stride,
						  (size_t) ra.width * ra.channels) == 0;
		img_raster_free(&rb);
	}
	img_raster_free(&ra);
	return same;
}

/* No metadata byte: no APPn or COM segment, no canary, nothing after EOI. */
static void
check_no_metadata(const char *what, const uint8_t *m, size_t len, bool allow_jfif)
{
	int			counts[256];
	int			appn = 0;

	CHECK(jb_walk_markers(m, len, counts), "%s: master is sound and ends with its EOI", what);
	for (int i = allow_jfif ? 0xE1 : 0xE0; i <= 0xEF; i++)
		appn += counts[i];
	CHECK(appn == 0 && counts[0xFE] == 0, "%s: no APPn (%d) or COM (%d) segment", what, appn, counts[0xFE]);
	CHECK(!jb_memfind(m, len, "IMGMOD-CANARY", 13) && !jb_memfind(m, len, "PK\x03\x04", 4) &&
		  !jb_memfind(m, len, "ICC_PROFILE", 11) && !jb_memfind(m, len, "Exif\0\0", 6),
		  "%s: no canary, ZIP, ICC or EXIF bytes", what);
}

/* Source file of a kind: encoder output + every metadata kind + a ZIP tail. */
static bool
source_of_kind(const kind *k, uint32_t w, uint32_t h, int orientation, jb_buf *plain, jb_buf *src)
{
	img_raster	r;
	jb_buf		seg = {0};
	bool		ok;

	if (!jb_make_raster(&r, w, h, noisy_pixel, NULL))
		return false;
	ok = jb_write_kind(k, &r, plain);
	img_raster_free(&r);
	if (!ok)
		return false;
	jb_add_camera_metadata(&seg, true, orientation);
	*src = jb_splice(plain, &seg, zip_tail, sizeof(zip_tail) - 1);
	jb_free(&seg);
	return src->data != NULL;
}

/* img_jpeg_transform(src, none): the master the upload path made before the copy. */
static img_status
transform_master(const jb_buf *src, int op, img_buffer *out, img_error *err)
{
	img_jpeg_xform xf = {0};
	bool		imperfect;

	xf.op = op;
	return img_jpeg_transform(src->data, src->len, &xf, out, &imperfect, err);
}

/* ------------------------------------------------------------- suites */

TEST_SUITE(fast_path_kinds)
{
	static const uint32_t sizes[][2] = {{203, 117}, {64, 48}};

	for (size_t ki = 0; ki < sizeof(kinds) / sizeof(kinds[0]); ki++)
		for (size_t si = 0; si < 2; si++)
		{
			const kind *k = &kinds[ki];
			char		what[96];
			jb_buf		plain,
						src,
						expected;
			img_normalised out;
			img_normalise_options opt = {.master_quality = 90, .background = {255, 255, 255}};
			img_limits	lim = default_limits();
			img_buffer	old = {0};
			img_buffer	copy = {0};
			img_error	err = {0};
			img_status	st;
			bool		unsuitable;

			snprintf(what, sizeof(what), "%s %ux%u", k->name, sizes[si][0], sizes[si][1]);
			if (!source_of_kind(k, sizes[si][0], sizes[si][1], 1, &plain, &src))
			{
				CHECK(false, "%s: could not build the input", what);
				continue;
			}
			expected = without_leading_appn(&plain);

			st = img_normalise(src.data, src.len, &lim, &opt, &out, &err);
			CHECK(st == IMG_OK && out.method == IMG_MASTER_LOSSLESS, "%s: normalise %s (%s), method %s",
				  what, img_status_name(st), err.message,
				  st == IMG_OK ? img_master_method_name(out.method) : "-");
			if (st == IMG_OK)
			{
				CHECK(out.width == sizes[si][0] && out.height == sizes[si][1], "%s: %ux%u", what,
					  out.width, out.height);
				CHECK(same_pixels(out.master.data, out.master.len, plain.data, plain.len),
					  "%s: master decodes to exactly the source's pixels", what);
				check_no_metadata(what, out.master.data, out.master.len, !copied_kind(k));
				if (copied_kind(k))
				{
					CHECK(out.master.len == expected.len &&
						  memcmp(out.master.data, expected.data, expected.len) == 0,
						  "%s: master is the source's frame, tables and scans byte for byte (%zu bytes, expected %zu)",
						  what, out.master.len, expected.len);
					CHECK(out.master.len <= src.len, "%s: master (%zu) no larger than the source (%zu)",
						  what, out.master.len, src.len);
				}
				else
				{
					/* today's path, byte for byte */
					st = transform_master(&src, TJXOP_NONE, &old, &err);
					CHECK(st == IMG_OK && old.len == out.master.len &&
						  memcmp(old.data, out.master.data, old.len) == 0,
						  "%s: master is the lossless transform's output, as before", what);
					img_buffer_free(&old);
				}
			}
			img_normalised_free(&out);

			/* the copy itself, multi-scan files allowed */
			st = img_jpeg_copy_master(src.data, src.len, true, &copy, &unsuitable, &err);
			CHECK(st == IMG_OK, "%s: multi-scan copy %s (%s)", what, img_status_name(st), err.message);
			if (copied_multi_scan(k))
			{
				CHECK(!unsuitable && copy.len == expected.len &&
					  memcmp(copy.data, expected.data, expected.len) == 0,
					  "%s: multi-scan copy is the source's frame, tables and scans byte for byte", what);
				if (!unsuitable)
					CHECK(same_pixels(copy.data, copy.len, plain.data, plain.len),
						  "%s: multi-scan copy decodes to exactly the source's pixels", what);
			}
			else
				CHECK(unsuitable && copy.data == NULL, "%s: not copied (%s)", what,
					  k->arithmetic ? "arithmetic" : "components named R G B");
			img_buffer_free(&copy);
			st = img_jpeg_copy_master(src.data, src.len, false, &copy, &unsuitable, &err);
			CHECK(st == IMG_OK && unsuitable == !copied_kind(k) && (copy.data != NULL) == copied_kind(k),
				  "%s: single-scan copy %s", what, copied_kind(k) ? "made" : "declined");
			img_buffer_free(&copy);

			jb_free(&expected);
			jb_free(&plain);
			jb_free(&src);
		}
}

/* Files the fast path leaves alone keep today's master exactly. */
TEST_SUITE(fast_path_leaves_others)
{
	img_limits	lim = default_limits();
	img_normalise_options opt = {.master_quality = 90, .background = {255, 255, 255}};
	jb_buf		plain,
				src;
	img_normalised out;
	img_buffer	old = {0};
	img_error	err = {0};
	img_status	st;

	/* orientation 6, whole MCUs: the transform rotates it, as before */
	if (source_of_kind(&kinds[0], 320, 192, 6, &plain, &src))
	{
		st = img_normalise(src.data, src.len, &lim, &opt, &out, &err);
		CHECK(st == IMG_OK && out.method == IMG_MASTER_LOSSLESS && out.width == 192 && out.height == 320,
			  "orientation 6: lossless 192x320, got %s %ux%u", img_status_name(st), out.width, out.height);
		if (st == IMG_OK && transform_master(&src, TJXOP_ROT90, &old, &err) == IMG_OK)
		{
			CHECK(old.len == out.master.len && memcmp(old.data, out.master.data, old.len) == 0,
				  "orientation 6: master is the rotation's output, as before");
			img_buffer_free(&old);
		}
		img_normalised_free(&out);
		jb_free(&plain);
		jb_free(&src);
	}
	else
		CHECK(false, "orientation 6 input");

	/* CMYK and a wide-gamut profile: decoded and encoded again, as before */
	{
		static const char *const files[] = {"formats/jpeg_cmyk_ycck_adobe.jpg", "exif/icc_adobergb.jpg"};

		for (int i = 0; i < 2; i++)
		{
			size_t		len;
			uint8_t    *d = read_fixture(files[i], &len);

			CHECK(d != NULL, "fixture %s", files[i]);
			if (d == NULL)
				continue;
			st = img_normalise(d, len, &lim, &opt, &out, &err);
			CHECK(st == IMG_OK && out.method == IMG_MASTER_REENCODED, "%s: reencoded, got %s %s",
				  files[i], img_status_name(st), st == IMG_OK ? img_master_method_name(out.method) : "-");
			img_normalised_free(&out);
			free(d);
		}
	}

	/* an Adobe marker saying RGB: probed as RGB, re-encoded */
	{
		kind		rgb = {"adobe rgb", 1, 1, false, false, false, false, false, 0, 0, 0, false, true};
		img_raster	r;
		jb_buf		j = {0};

		if (jb_make_raster(&r, 64, 48, noisy_pixel, NULL))
		{
			if (jb_write_kind(&rgb, &r, &j))
			{
				/* flip the Adobe transform flag (byte 11 of its payload) to 0 */
				for (size_t p = 2; p + 16 < j.len; p++)
					if (j.data[p] == 0xFF && j.data[p + 1] == 0xEE && memcmp(j.data + p + 4, "Adobe", 5) == 0)
					{
						j.data[p + 4 + 11] = 0;
						break;
					}
				st = img_normalise(j.data, j.len, &lim, &opt, &out, &err);
				CHECK(st == IMG_OK && out.method == IMG_MASTER_REENCODED,
					  "adobe transform 0 (rgb): reencoded, got %s %s", img_status_name(st),
					  st == IMG_OK ? img_master_method_name(out.method) : "-");
				img_normalised_free(&out);
				jb_free(&j);
			}
			img_raster_free(&r);
		}
	}
}

/* ---------------------------------------------------- verdict parity */

/*
 * The upload path before the copy, for an upright JPEG needing no colour
 * change: probe, then the transform.  *applies is false for other input
 * (whose path the fast path does not touch).
 */
static img_status
verdict_before(const uint8_t *d, size_t len, img_buffer *master, bool *applies, img_error *err)
{
	img_limits	lim = default_limits();
	img_info	info;
	img_jpeg_xform xf = {0};
	bool		imperfect;
	img_status	st;

	memset(master, 0, sizeof(*master));
	*applies = true;
	st = img_probe(d, len, &lim, &info, err);
	if (st != IMG_OK)
		return st;
	if (info.format != IMG_FORMAT_JPEG || img_jpeg_needs_colour_change(&info) || info.orientation != 1)
	{
		*applies = false;
		return IMG_OK;
	}
	xf.op = TJXOP_NONE;
	return img_jpeg_transform(d, len, &xf, master, &imperfect, err);
}

typedef struct parity_count
{
	int			files;
	int			rejected;
	int			copied;
	int			transformed;	/* accepted, master made by the transform as before */
	int			differ;
} parity_count;

/*
 * img_normalise now and before agree on d: the same status and message; an
 * accepted file's master is either the transform's, byte for byte, or a
 * copy holding exactly the source's pixels and no metadata.
 */
static void
check_parity(const char *what, const uint8_t *d, size_t len, parity_count *count)
{
	img_limits	lim = default_limits();
	img_normalise_options opt = {.master_quality = 90, .background = {255, 255, 255}};
	img_normalised now;
	img_buffer	before;
	img_error	err_now = {0},
				err_before = {0};
	img_status	st_now,
				st_before;
	bool		applies;
	bool		as_before = false;

	st_before = verdict_before(d, len, &before, &applies, &err_before);
	if (!applies)
		return;
	st_now = img_normalise(d, len, &lim, &opt, &now, &err_now);
	count->files++;
	if (st_now == IMG_OK && st_before == IMG_OK)
		as_before = now.master.len == before.len && memcmp(now.master.data, before.data, before.len) == 0;
	if (st_now != st_before ||
		(st_now != IMG_OK && strcmp(err_now.message, err_before.message) != 0) ||
		(st_now == IMG_OK && !as_before && !same_pixels(now.master.data, now.master.len, d, len)))
	{
		count->differ++;
		CHECK(false, "%s: now %s (%s), before %s (%s)", what, img_status_name(st_now), err_now.message,
			  img_status_name(st_before), err_before.message);
	}
	else if (st_now == IMG_OK)
	{
		if (as_before)
			count->transformed++;
		else
		{
			count->copied++;
			check_no_metadata(what, now.master.data, now.master.len, false);
		}
	}
	else
		count->rejected++;
	img_normalised_free(&now);
	img_buffer_free(&before);
}

/* Offset of the first entropy-coded byte after the first SOS, 0 if none. */
static size_t
first_scan_data(const jb_buf *b)
{
	size_t		pos = 2;

	while (pos + 4 <= b->len && b->data[pos] == 0xFF)
	{
		size_t		l = ((size_t) b->data[pos + 2] << 8) | b->data[pos + 3];

		if (b->data[pos + 1] == 0xDA)
			return pos + 2 + l;
		pos += 2 + l;
	}
	return 0;
}

TEST_SUITE(fast_path_damage_parity)
{
	/*
	 * Copied kinds: 4:2:0 with restart markers, grey, optimised 4:2:2, and
	 * a larger 4:2:0 file (libjpeg's decoder reads differently when it
	 * holds fewer bytes than a few MCUs need, which shows in messages such
	 * as "N extraneous bytes"; the copy must read as the transform does).
	 */
	static const struct
	{
		size_t		kind;
		uint32_t	w,
					h;
	}			bases[] = {{6, 203, 117}, {5, 203, 117}, {8, 203, 117}, {0, 640, 400}};
	parity_count count = {0};

	for (size_t bi = 0; bi < sizeof(bases) / sizeof(bases[0]); bi++)
	{
		const kind *k = &kinds[bases[bi].kind];
		jb_buf		plain,
					src;
		size_t		scan;
		char		what[160];

		if (!source_of_kind(k, bases[bi].w, bases[bi].h, 1, &plain, &src))
		{
			CHECK(false, "%s: input", k->name);
			continue;
		}
		scan = first_scan_data(&src);
		CHECK(scan > 0 && scan < src.len, "%s: has scan data", k->name);

		/* truncated at many points, with and without an EOI put back */
		for (size_t cut = 2; cut < src.len; cut += 1 + src.len / 89)
			for (int eoi = 0; eoi < 2; eoi++)
			{
				uint8_t    *d = malloc(cut + 2);

				memcpy(d, src.data, cut);
				if (eoi)
				{
					d[cut] = 0xFF;
					d[cut + 1] = 0xD9;
				}
				snprintf(what, sizeof(what), "%s cut at %zu%s", k->name, cut, eoi ? " + EOI" : "");
				check_parity(what, d, cut + (eoi ? 2 : 0), &count);
				free(d);
			}

		/* bytes that are no marker between the scan and EOI */
		for (size_t junk = 1; junk < 4000; junk *= 3)
		{
			uint8_t    *d = malloc(src.len + junk);
			size_t		eoi = plain.len - 2;

			/* plain's scan, junk, then EOI */
			memcpy(d, plain.data, eoi);
			memset(d + eoi, 0x5A, junk);
			d[eoi + junk] = 0xFF;
			d[eoi + junk + 1] = 0xD9;
			snprintf(what, sizeof(what), "%s, %zu bytes of junk before EOI", k->name, junk);
			check_parity(what, d, eoi + junk + 2, &count);
			free(d);
		}

		/* bytes of the scan and of the headers changed */
		for (size_t at = 2; at + 2 < src.len; at += 1 + (at < scan ? 7 : src.len / 151))
		{
			static const uint8_t xors[] = {0xFF, 0x01, 0x80, 0x3C};

			for (size_t x = 0; x < sizeof(xors); x++)
			{
				uint8_t    *d = malloc(src.len);

				memcpy(d, src.data, src.len);
				d[at] ^= xors[x];
				snprintf(what, sizeof(what), "%s byte %zu ^ 0x%02X", k->name, at, xors[x]);
				check_parity(what, d, src.len, &count);
				free(d);
			}
		}
		jb_free(&plain);
		jb_free(&src);
	}
	/* committed hostile files */
	{
		char		path[1024];
		DIR		   *dir;
		struct dirent *de;

		snprintf(path, sizeof(path), "%s/bad", fixture_dir());
		dir = opendir(path);
		CHECK(dir != NULL, "%s can be listed", path);
		while (dir && (de = readdir(dir)) != NULL)
		{
			size_t		len;
			uint8_t    *d;

			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "bad/%s", de->d_name);
			d = read_fixture(path, &len);
			if (d != NULL)
				check_parity(path, d, len, &count);
			free(d);
		}
		if (dir)
			closedir(dir);
	}
	CHECK(count.differ == 0 && count.files > 1000 && count.rejected > 100 && count.copied > 10 &&
		  count.transformed > 0,
		  "damaged files: %d judged: %d rejected, %d copied, %d transformed, %d differ from before",
		  count.files, count.rejected, count.copied, count.transformed, count.differ);
	printf("  fast_path_damage_parity: %d files: %d rejected, %d copied, %d transformed, %d differ\n",
		   count.files, count.rejected, count.copied, count.transformed, count.differ);
}

/*
 * Variants of kind k's file at w x h whose scan ends otherwise than on its
 * last byte, added to count; every one with junk (*junk_files) must be
 * declined by the copy (*declined).
 */
static void
tail_variants(const kind *k, uint32_t w, uint32_t h, parity_count *count, int *declined, int *junk_files)
{
	static const uint8_t fills[][2] = {{0x5A, 0x5A}, {0x00, 0x00}, {0xFF, 0x00}, {0x80, 0x01}};	/* 0xFF: stuffed */
	jb_buf		plain,
				src;
	size_t		eoi;
	char		what[160];
	img_buffer	copy;
	img_error	err = {0};
	bool		unsuitable;
	img_status	st;

	if (!source_of_kind(k, w, h, 1, &plain, &src))
	{
		CHECK(false, "%s %ux%u: input", k->name, w, h);
		return;
	}
	eoi = plain.len - 2;
	for (size_t junk = 1; junk <= 20; junk++)
		for (size_t f = 0; f < sizeof(fills) / sizeof(fills[0]); f++)
		{
			uint8_t    *d = malloc(eoi + 2 * junk + 2);
			size_t		len = eoi;

			memcpy(d, plain.data, eoi);
			/* junk whole bytes (0xFF as a stuffed pair, one byte of data) */
			for (size_t i = 0; i < junk; i++)
			{
				if (fills[f][0] == 0xFF)
				{
					d[len++] = 0xFF;
					d[len++] = 0x00;
				}
				else
					d[len++] = fills[f][i % 2];
			}
			d[len++] = 0xFF;
			d[len++] = 0xD9;
			snprintf(what, sizeof(what), "%s %ux%u, %zu bytes 0x%02X%02X before EOI", k->name, w, h,
					 junk, fills[f][0], fills[f][1]);
			check_parity(what, d, len, count);
			st = img_jpeg_copy_master(d, len, false, &copy, &unsuitable, &err);
			CHECK(st == IMG_OK && unsuitable && copy.data == NULL, "%s: not copied", what);
			*declined += st == IMG_OK && unsuitable;
			(*junk_files)++;
			img_buffer_free(&copy);
			free(d);
		}
	/* the scan cut short of its last bytes, EOI put back */
	for (size_t cut = 1; cut <= 24 && cut < eoi; cut++)
	{
		uint8_t    *d = malloc(eoi + 2);

		memcpy(d, plain.data, eoi - cut);
		d[eoi - cut] = 0xFF;
		d[eoi - cut + 1] = 0xD9;
		snprintf(what, sizeof(what), "%s %ux%u, last %zu bytes of the scan cut", k->name, w, h, cut);
		check_parity(what, d, eoi - cut + 2, count);
		free(d);
	}
	/* as the encoder wrote it */
	snprintf(what, sizeof(what), "%s %ux%u", k->name, w, h);
	st = img_jpeg_copy_master(plain.data, plain.len, false, &copy, &unsuitable, &err);
	CHECK(st == IMG_OK && !unsuitable, "%s: copied", what);
	check_parity(what, plain.data, plain.len, count);
	img_buffer_free(&copy);
	jb_free(&plain);
	jb_free(&src);
}

/*
 * The end of the scan, where the one careful reading and the transform's
 * reader differ in how far they read ahead: whole bytes between the last
 * code and EOI (no marker, stuffed 0xFF, zeros) are never copied, and every
 * such file and every file cut short of its last bytes keeps the
 * transform's verdict and message.  Each kind's own scans end on their
 * last byte and are copied.
 */
TEST_SUITE(fast_path_tail_parity)
{
	parity_count count = {0};
	int			declined = 0,
				junk_files = 0;

	tail_variants(&kinds[0], 203, 117, &count, &declined, &junk_files);
	tail_variants(&kinds[5], 203, 117, &count, &declined, &junk_files);
	tail_variants(&kinds[6], 203, 117, &count, &declined, &junk_files);
	tail_variants(&kinds[7], 203, 117, &count, &declined, &junk_files);
	tail_variants(&kinds[8], 203, 117, &count, &declined, &junk_files);
	tail_variants(&kinds[1], 64, 48, &count, &declined, &junk_files);
	tail_variants(&kinds[4], 640, 400, &count, &declined, &junk_files);
	tail_variants(&kinds[0], 640, 400, &count, &declined, &junk_files);
	CHECK(count.differ == 0 && declined == junk_files && count.copied >= 8,
		  "end of the scan: %d judged: %d rejected, %d copied, %d transformed, %d differ from before",
		  count.files, count.rejected, count.copied, count.transformed, count.differ);
	printf("  fast_path_tail_parity: %d files: %d rejected, %d copied, %d transformed, %d differ\n",
		   count.files, count.rejected, count.copied, count.transformed, count.differ);
}

/*
 * The copy declines d (multi-scan files allowed or not) and the transform,
 * which then decides, gives it want.
 */
static void
check_left_to_transform(const char *what, const jb_buf *d, bool multi_scan, img_status want)
{
	img_buffer	copy,
				old;
	img_error	err = {0};
	img_status	st;
	bool		unsuitable;

	st = img_jpeg_copy_master(d->data, d->len, multi_scan, &copy, &unsuitable, &err);
	CHECK(st == IMG_OK && unsuitable && copy.data == NULL, "%s: the copy declines it (%s)", what,
		  img_status_name(st));
	img_buffer_free(&copy);
	st = transform_master(d, TJXOP_NONE, &old, &err);
	CHECK(st == want, "%s: the transform says %s (%s), expected %s", what, img_status_name(st),
		  err.message, img_status_name(want));
	img_buffer_free(&old);
}

/*
 * A grey 16x16 progressive file with n valid scans (443..506): DC in two,
 * then every AC coefficient in a band of its own, sent in 8 or 7
 * successive-approximation steps.
 */
static bool
many_scans(int n, jb_buf *out)
{
	kind		k = {"many scans", 1, 1, true, true, false, false, false, 0, 0, 0, true, false};
	jpeg_scan_info *s = calloc((size_t) n, sizeof(*s));
	int			eights = n - 2 - 63 * 7;
	int			i = 0;
	img_raster	r;
	bool		ok = false;

	if (s == NULL || eights < 0 || eights > 63)
	{
		free(s);
		return false;
	}
	for (int pass = 0; pass < 2; pass++, i++)
	{
		s[i].comps_in_scan = 1;
		s[i].Ah = pass;
		s[i].Al = 1 - pass;
	}
	for (int coef = 1; coef < 64; coef++)
		for (int al = coef <= eights ? 7 : 6; al >= 0; al--, i++)
		{
			s[i].comps_in_scan = 1;
			s[i].Ss = s[i].Se = coef;
			s[i].Ah = al == (coef <= eights ? 7 : 6) ? 0 : al + 1;
			s[i].Al = al;
		}
	if (i == n && jb_make_raster(&r, 16, 16, noisy_pixel, NULL))
	{
		ok = jb_write_kind_scripted(&k, &r, s, n, out);
		img_raster_free(&r);
	}
	free(s);
	return ok;
}

TEST_SUITE(fast_path_marker_oddities)
{
	jb_buf		plain,
				src;

	if (!source_of_kind(&kinds[0], 64, 48, 1, &plain, &src))
	{
		CHECK(false, "input");
		return;
	}
	/* a quantisation table redefined after the scan (the transform cannot write it) */
	{
		size_t		eoi = plain.len - 2;
		jb_buf		d = {malloc(plain.len + 80), 0};

		memcpy(d.data, plain.data, eoi);
		d.len = eoi;
		/* DQT table 0, all ones */
		d.data[d.len++] = 0xFF;
		d.data[d.len++] = 0xDB;
		d.data[d.len++] = 0;
		d.data[d.len++] = 67;
		d.data[d.len++] = 0;
		memset(d.data + d.len, 1, 64);
		d.len += 64;
		d.data[d.len++] = 0xFF;
		d.data[d.len++] = 0xD9;
		check_left_to_transform("DQT after the scan", &d, false, IMG_ERR_CORRUPT);
		jb_free(&d);
	}
	/* JFIF 2.01 (libjpeg warns), Adobe transform 2 on three components */
	{
		jb_buf		d = {malloc(plain.len), plain.len};

		memcpy(d.data, plain.data, plain.len);
		CHECK(d.data[3] == 0xE0 && memcmp(d.data + 6, "JFIF", 4) == 0, "JFIF marker first");
		d.data[11] = 2;
		check_left_to_transform("JFIF major version 2", &d, false, IMG_ERR_CORRUPT);
		jb_free(&d);
	}
	{
		jb_buf		seg = {0};
		uint8_t		adobe[12] = {'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, 2};
		jb_buf		bare = without_leading_appn(&plain);
		jb_buf		d;

		/* (a JFIF marker would decide the colour space before the Adobe one) */
		jb_add_segment(&seg, 0xEE, adobe, sizeof(adobe));
		d = jb_splice(&bare, &seg, NULL, 0);
		check_left_to_transform("Adobe transform 2, three components", &d, false, IMG_ERR_CORRUPT);
		jb_free(&d);
		jb_free(&bare);
		jb_free(&seg);
	}
	/* garbage after the scan, a second frame header, a stray RST: the transform decides */
	{
		static const uint8_t junk[][4] = {{0x12, 0x34, 0xFF, 0xD9}, {0xFF, 0xD0, 0xFF, 0xD9}};

		for (int i = 0; i < 2; i++)
		{
			jb_buf		d = {malloc(plain.len + 4), plain.len - 2};
			parity_count count = {0};

			memcpy(d.data, plain.data, plain.len - 2);
			memcpy(d.data + d.len, junk[i], 4);
			d.len += 4;
			check_parity(i ? "RST0 after the scan" : "garbage after the scan", d.data, d.len, &count);
			CHECK(count.files == 1, "judged");
			jb_free(&d);
		}
	}
	/* the transform's scan limit: 500 scans are read, the 501st is refused */
	for (int n = 500; n <= 501; n++)
	{
		jb_buf		d = {0};
		char		what[64];

		snprintf(what, sizeof(what), "progressive, %d scans", n);
		CHECK(many_scans(n, &d), "%s: built", what);
		if (d.data != NULL && n > 500)
			check_left_to_transform(what, &d, true, IMG_ERR_CORRUPT);
		else if (d.data != NULL)
		{
			img_buffer	copy;
			img_error	err = {0};
			bool		unsuitable;
			img_status	st = img_jpeg_copy_master(d.data, d.len, true, &copy, &unsuitable, &err);
			jb_buf		bare = without_leading_appn(&d);

			/* (over imgmod.max_scans' default, so no img_load here) */
			CHECK(st == IMG_OK && !unsuitable && copy.len == bare.len &&
				  memcmp(copy.data, bare.data, bare.len) == 0,
				  "%s: copied, frame, tables and scans byte for byte", what);
			img_buffer_free(&copy);
			jb_free(&bare);
		}
		jb_free(&d);
	}
	jb_free(&plain);
	jb_free(&src);
}

/* -------------------------------------------------------- shared corpus */

static void
parity_in_dir(const char *rel, parity_count *count)
{
	char		path[1024];
	DIR		   *dir;
	struct dirent *de;

	snprintf(path, sizeof(path), "%s/%s", corpus_dir(), rel);
	dir = opendir(path);
	CHECK(dir != NULL, "%s can be listed", path);
	while (dir && (de = readdir(dir)) != NULL)
	{
		char		file[1024];
		size_t		len;
		uint8_t    *d;

		if (de->d_name[0] == '.' || strcmp(de->d_name, "EXPECTED.tsv") == 0)
			continue;
		snprintf(file, sizeof(file), "%s/%s", rel, de->d_name);
		d = read_corpus_file(file, &len);
		if (d != NULL)
			check_parity(file, d, len, count);
		free(d);
	}
	if (dir)
		closedir(dir);
}

CORPUS_SUITE(corpus_fast_path_parity)
{
	parity_count count = {0};

	parity_in_dir("bad", &count);
	parity_in_dir("exif", &count);
	parity_in_dir("formats", &count);
	parity_in_dir("photos", &count);
	parity_in_dir("peer/exif-orientation-examples", &count);
	CHECK(count.differ == 0 && count.files >= 40 && count.copied > 0,
		  "corpus: %d judged: %d rejected, %d copied, %d transformed, %d differ from before",
		  count.files, count.rejected, count.copied, count.transformed, count.differ);
	printf("  corpus_fast_path_parity: %d files: %d rejected, %d copied, %d transformed, %d differ\n",
		   count.files, count.rejected, count.copied, count.transformed, count.differ);
}
