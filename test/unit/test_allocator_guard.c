/*
 * test_allocator_guard.c — every block the core frees must be one it got
 * from img_alloc, and every block it hands out must come back.
 *
 * The PostgreSQL extension installs a palloc-based allocator whose blocks
 * start with a header; a core function that released an img_alloc'd buffer
 * with free() (or handed a library's malloc'd buffer to img_free) works
 * with the default malloc allocator and corrupts memory in the server.
 * This suite installs an allocator of the same shape — a header holding a
 * magic and the size in front of every block — runs the upload and render
 * paths through it on several kinds of input, successes and failures, and
 * checks that every free and realloc saw the magic and that the number of
 * live blocks returns to zero.
 */
#include "test.h"
#include "imgcore.h"

#include <stdlib.h>
#include <string.h>

#define GUARD_MAGIC 0x494D474755415244ULL	/* "IMGGUARD" */
#define GUARD_DEAD	0x4445414442454546ULL	/* "DEADBEEF" */

typedef struct guard_header
{
	uint64_t	magic;
	size_t		size;
	/* keep the user block as aligned as malloc's */
	max_align_t pad;
} guard_header;

typedef struct guard_stats
{
	long		live;
	long		allocs;
	long		frees;
	long		bad_frees;		/* free/realloc of a block without our magic */
	long		double_frees;
	size_t		live_bytes;
	size_t		peak_bytes;
} guard_stats;

static guard_stats stats;

static void *
guard_alloc(size_t size, void *ctx)
{
	guard_header *h;

	(void) ctx;
	if (size > SIZE_MAX - sizeof(guard_header))
		return NULL;
	h = malloc(sizeof(guard_header) + size);
	if (h == NULL)
		return NULL;
	h->magic = GUARD_MAGIC;
	h->size = size;
	stats.live++;
	stats.allocs++;
	stats.live_bytes += size;
	if (stats.live_bytes > stats.peak_bytes)
		stats.peak_bytes = stats.live_bytes;
	return h + 1;
}

/* The header of a block, or NULL (and counted) when it is not ours. */
static guard_header *
guard_check(void *ptr)
{
	guard_header *h = (guard_header *) ptr - 1;

	if (h->magic == GUARD_MAGIC)
		return h;
	if (h->magic == GUARD_DEAD)
		stats.double_frees++;
	else
		stats.bad_frees++;
	return NULL;
}

static void
guard_free(void *ptr, void *ctx)
{
	guard_header *h;

	(void) ctx;
	if (ptr == NULL)
		return;
	h = guard_check(ptr);
	if (h == NULL)
		return;					/* leak it rather than corrupt the heap */
	h->magic = GUARD_DEAD;
	stats.live--;
	stats.frees++;
	stats.live_bytes -= h->size;
	free(h);
}

static void *
guard_realloc(void *ptr, size_t size, void *ctx)
{
	guard_header *h;
	guard_header *nh;
	size_t		old;

	if (ptr == NULL)
		return guard_alloc(size, ctx);
	h = guard_check(ptr);
	if (h == NULL || size > SIZE_MAX - sizeof(guard_header))
		return NULL;
	old = h->size;
	nh = realloc(h, sizeof(guard_header) + size);
	if (nh == NULL)
		return NULL;
	nh->size = size;
	stats.live_bytes = stats.live_bytes - old + size;
	if (stats.live_bytes > stats.peak_bytes)
		stats.peak_bytes = stats.live_bytes;
	return nh + 1;
}

static const img_allocator guard = {guard_alloc, guard_realloc, guard_free, NULL};

/* ------------------------------------------------------------- inputs */

typedef struct input
{
	const char *name;
	uint8_t    *data;			/* malloc'd (not through the guard) */
	size_t		len;
	bool		must_succeed;
} input;

/* A generated JPEG with a little-endian EXIF orientation. */
static uint8_t *
generated_jpeg(uint32_t w, uint32_t h, int orientation, size_t *len)
{
	img_raster	r;
	img_buffer	b;
	img_error	err;
	uint8_t    *out = NULL;
	uint8_t		app1[] = {
		0xFF, 0xE1, 0x00, 0x22, 'E', 'x', 'i', 'f', 0, 0,
		'I', 'I', 42, 0, 8, 0, 0, 0,
		1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, (uint8_t) orientation, 0, 0, 0,
		0, 0, 0, 0,
	};

	if (img_raster_init(&r, w, h, 3, &err) != IMG_OK)
		return NULL;
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++)
		{
			uint8_t    *p = r.pixels + y * r.stride + x * 3;

			p[0] = (uint8_t) x;
			p[1] = (uint8_t) y;
			p[2] = (uint8_t) (x ^ y);
		}
	if (img_encode_jpeg(&r, 85, &b, &err) == IMG_OK)
	{
		out = malloc(b.len + sizeof(app1));
		if (out)
		{
			memcpy(out, b.data, 2);
			memcpy(out + 2, app1, sizeof(app1));
			memcpy(out + 2 + sizeof(app1), b.data + 2, b.len - 2);
			*len = b.len + sizeof(app1);
		}
		img_buffer_free(&b);
	}
	img_raster_free(&r);
	return out;
}

TEST_SUITE(allocator_guard)
{
	static const struct
	{
		const char *fixture;
		bool		must_succeed;
	}			fixtures[] = {
		{"exif/icc_adobergb.jpg", true},	/* ICC copy + lcms2 path */
		{"exif/rich_metadata_littleendian.jpg", true},	/* lossless path, EXIF */
		{"formats/jpeg_cmyk_ycck_adobe.jpg", true},	/* CMYK conversion */
		{"formats/webp_exif_xmp_icc.webp", true},	/* TIFF-header EXIF copy, WebP ICC */
		{"formats/webp_lossy_alpha.webp", true},	/* alpha flattening */
		{"formats/heic_x265.heic", true},
		{"formats/avif_alpha.avif", true},
		{"bad/polyglot_gif_js.gif", true},	/* GIF */
		{"bad/truncated_half_baseline.jpg", false},
		{"bad/truncated_mid_idat.png", false},
		{"bad/jpeg_scan_bomb_4000scans.jpg", false},
	};
	input		inputs[16];
	size_t		n = 0;
	img_limits	lim;
	img_normalise_options nopt;
	static const uint8_t white[3] = {255, 255, 255};
	img_variant_spec specs[3];

	/* read everything before the guard goes in: only the core's blocks are counted */
	for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++)
	{
		inputs[n].name = fixtures[i].fixture;
		inputs[n].data = read_fixture(fixtures[i].fixture, &inputs[n].len);
		inputs[n].must_succeed = fixtures[i].must_succeed;
		CHECK(inputs[n].data != NULL, "fixture %s readable", fixtures[i].fixture);
		if (inputs[n].data)
			n++;
	}
	inputs[n].name = "generated 333x201 orientation 6 (re-encoded)";
	inputs[n].data = generated_jpeg(333, 201, 6, &inputs[n].len);
	inputs[n].must_succeed = true;
	if (inputs[n].data)
		n++;
	inputs[n].name = "generated 320x240 orientation 3 (lossless)";
	inputs[n].data = generated_jpeg(320, 240, 3, &inputs[n].len);
	inputs[n].must_succeed = true;
	if (inputs[n].data)
		n++;

	img_limits_default(&lim);
	nopt.master_quality = 90;
	memcpy(nopt.background, white, 3);
	specs[0] = (img_variant_spec) {{200, 0, IMG_FIT_CONTAIN, false}, 80, NULL};
	specs[1] = (img_variant_spec) {{64, 64, IMG_FIT_COVER, false}, 80, NULL};
	specs[2] = (img_variant_spec) {{300, 100, IMG_FIT_PAD, false}, 80, NULL};

	memset(&stats, 0, sizeof(stats));
	img_set_allocator(&guard);
	for (size_t i = 0; i < n; i++)
	{
		img_normalised out;
		img_variant_result res[3];
		img_error	err = {0};
		img_status	st;
		img_raster	r;
		img_load_options lopt;
		img_info	info;

		st = img_probe(inputs[i].data, inputs[i].len, &lim, &info, &err);
		(void) st;

		img_load_options_default(&lopt);
		/*
		 * Shrink on load to 4/8 for the 1200-wide fixtures; the 1/8-3/8
		 * scales trip valgrind inside libjpeg-turbo's SIMD IDCT (see
		 * test_corpus.c, thumb64).
		 */
		lopt.min_width = 600;
		st = img_load(inputs[i].data, inputs[i].len, &lim, &lopt, &r, &info, &err);
		if (st == IMG_OK)
			img_raster_free(&r);

		st = img_normalise(inputs[i].data, inputs[i].len, &lim, &nopt, &out, &err);
		if (inputs[i].must_succeed)
			CHECK(st == IMG_OK, "%s: normalise under the guard: %s", inputs[i].name, err.message);
		else
			CHECK(st != IMG_OK, "%s: rejected under the guard", inputs[i].name);
		if (st == IMG_OK)
		{
			/* render from the master, as the workers do */
			st = img_render_variants(out.master.data, out.master.len, &lim, specs, 3, white, res, &err);
			CHECK(st == IMG_OK, "%s: render under the guard: %s", inputs[i].name, err.message);
			if (st == IMG_OK)
				img_variant_results_free(res, 3);
		}
		img_normalised_free(&out);

		/* render straight from the original too (shrink-on-load, orientation) */
		st = img_render_variants(inputs[i].data, inputs[i].len, &lim, specs, 3, white, res, &err);
		if (st == IMG_OK)
			img_variant_results_free(res, 3);

		CHECK(stats.bad_frees == 0, "%s: %ld free(s) of blocks not from img_alloc", inputs[i].name,
			  stats.bad_frees);
		CHECK(stats.double_frees == 0, "%s: %ld double free(s)", inputs[i].name, stats.double_frees);
		CHECK(stats.live == 0, "%s: %ld img_alloc'd block(s) still live", inputs[i].name, stats.live);
	}
	img_set_allocator(NULL);

	CHECK(stats.allocs > 100, "the guard saw the core's allocations (%ld)", stats.allocs);
	CHECK(stats.frees == stats.allocs, "every allocation freed (%ld allocs, %ld frees)",
		  stats.allocs, stats.frees);
	CHECK(stats.live_bytes == 0, "no live bytes left (%zu)", stats.live_bytes);

	/* the default allocator is back: a block from it is plain malloc memory */
	{
		void	   *p = img_alloc(16);

		CHECK(p != NULL, "default allocator restored");
		CHECK(stats.allocs == stats.frees, "the guard no longer counts");
		img_free(p);
	}
	for (size_t i = 0; i < n; i++)
		free(inputs[i].data);
}
