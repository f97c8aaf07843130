/*
 * test_parallel.c — a render on several threads gives the same bytes as on
 * one, and stays inside the caller's allocator.
 *
 * The decode in bands (codecs/jpeg.c), the resize in bands of rows
 * (resize.c) and the shared-out encodes (render.c) are each compared byte
 * for byte with the one-thread result, over every chroma sampling,
 * grey, restart intervals, odd sizes, every DCT scale and thread counts up
 * to IMG_MAX_THREADS; img_helper_runs() proves helpers really ran (a
 * comparison of two one-thread runs would pass too).  Damaged files fail
 * with the one-thread verdict; an interrupt stops every thread; results
 * come from the caller's allocator and nothing leaks (ASan, valgrind).
 */
#include "test.h"
#include "jpeg_builder.h"
#include "imgcore.h"
#include "codec.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ fixtures */

#define KIND(n, h, v) {.name = n, .h0 = h, .v0 = v, .jfif = true}
static const jb_jpeg_kind kinds[] = {
	KIND("4:2:0", 2, 2),
	KIND("4:2:2", 2, 1),
	KIND("4:4:4", 1, 1),
	KIND("4:4:0", 1, 2),
	KIND("4:1:1", 4, 1),
	{.name = "grey", .h0 = 1, .v0 = 1, .grey = true, .jfif = true},
	{.name = "restart every MCU row", .h0 = 2, .v0 = 2, .restart_rows = 1, .jfif = true},
	{.name = "restart every 5 MCUs", .h0 = 2, .v0 = 1, .restart_mcus = 5, .jfif = true},
	{.name = "progressive (one piece)", .h0 = 2, .v0 = 2, .progressive = true, .jfif = true},
};

/* Ramps with noise: every band differs and the scans are busy. */
static void
busy_pixel(uint8_t *p, uint32_t x, uint32_t y, uint32_t w, uint32_t h, const void *arg)
{
	uint32_t	n = (x * 2654435761u) ^ (y * 40503u);

	(void) arg;
	n ^= n >> 15;
	p[0] = (uint8_t) ((x * 255 / w + (n & 31)) & 0xFF);
	p[1] = (uint8_t) ((y * 255 / h + ((n >> 5) & 31)) & 0xFF);
	p[2] = (uint8_t) (((x ^ y) + (n >> 10)) & 0xFF);
}


/* A w x h JPEG of kind k: busy pixels, written with libjpeg directly. */
static bool
kind_jpeg(const jb_jpeg_kind *k, uint32_t w, uint32_t h, jb_buf *out)
{
	img_raster	r;
	bool		ok;

	memset(out, 0, sizeof(*out));
	if (!jb_make_raster(&r, w, h, busy_pixel, NULL))
		return false;
	ok = jb_write_kind(k, &r, out);
	img_raster_free(&r);
	return ok;
}

static img_status
load_threads(const jb_buf *j, uint32_t min_w, uint32_t min_h, unsigned threads,
			 img_raster *out, img_error *err)
{
	return jb_load_threads(j->data, j->len, min_w, min_h, threads, out, NULL, err);
}

static bool
same_raster(const img_raster *a, const img_raster *b)
{
	if (a->width != b->width || a->height != b->height || a->channels != b->channels)
		return false;
	for (uint32_t y = 0; y < a->height; y++)
		if (memcmp(a->pixels + (size_t) y * a->stride, b->pixels + (size_t) y * b->stride,
				   (size_t) a->width * a->channels) != 0)
			return false;
	return true;
}

/* ------------------------------------------------------------ helpers */

typedef struct probe_task
{
	bool		helper;
	bool		all_blocked;
	int			value;
} probe_task;

static void
probe_thread(void *arg)
{
	probe_task *t = arg;
	sigset_t	mask;

	t->helper = img_on_helper_thread();
	t->all_blocked = pthread_sigmask(SIG_BLOCK, NULL, &mask) == 0 &&
		sigismember(&mask, SIGTERM) == 1 && sigismember(&mask, SIGUSR1) == 1 &&
		sigismember(&mask, SIGINT) == 1 && sigismember(&mask, SIGURG) == 1;
	t->value += 1;
}

TEST_SUITE(parallel_tasks)
{
	probe_task	tasks[IMG_MAX_THREADS + 2];
	unsigned long before = img_helper_runs();
	sigset_t	mask;

	memset(tasks, 0, sizeof(tasks));
	img_run_tasks(probe_thread, tasks, sizeof(tasks[0]), IMG_MAX_THREADS + 2);
	CHECK(!tasks[0].helper && tasks[0].value == 1, "task 0 runs on the caller's thread");
	CHECK(!tasks[0].all_blocked, "the caller's signals stay as they were");
	for (int i = 1; i < IMG_MAX_THREADS; i++)
		CHECK(tasks[i].helper && tasks[i].all_blocked && tasks[i].value == 1,
			  "task %d ran once on a helper with every signal blocked", i);
	CHECK(tasks[IMG_MAX_THREADS].value == 1 && !tasks[IMG_MAX_THREADS].helper &&
		  tasks[IMG_MAX_THREADS + 1].value == 1 && !tasks[IMG_MAX_THREADS + 1].helper,
		  "tasks beyond IMG_MAX_THREADS run too, on the caller's thread");
	CHECK(img_helper_runs() - before == IMG_MAX_THREADS - 1,
		  "%lu helper runs, want %d", img_helper_runs() - before, IMG_MAX_THREADS - 1);
	CHECK(img_helpers_started_here() >= IMG_MAX_THREADS - 1, "the caller counts the helpers it started");
	CHECK(pthread_sigmask(SIG_BLOCK, NULL, &mask) == 0 && sigismember(&mask, SIGTERM) == 0,
		  "the caller's mask is restored");

	memset(tasks, 0, sizeof(tasks));
	img_run_tasks(probe_thread, tasks, sizeof(tasks[0]), 1);
	CHECK(tasks[0].value == 1 && !tasks[0].helper && tasks[1].value == 0, "one task: the caller alone");
	CHECK(!img_on_helper_thread(), "the test's own thread is not a helper");
}

/* ------------------------------------------------------------- decode */

TEST_SUITE(parallel_decode_bands)
{
	/* output sizes: full (fancy upsampling), then DCT scales 6/8, 5/8, 4/8 (too small to split) */
	static const uint32_t mins[][2] = {{0, 0}, {700, 500}, {610, 480}, {480, 380}};
	static const unsigned counts[] = {2, 3, 8};
	const uint32_t w = 1001,
				h = 797;		/* not whole MCUs */

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
	{
		const jb_jpeg_kind *k = &kinds[i];
		jb_buf		j;

		CHECK(kind_jpeg(k, w, h, &j), "%s: fixture written", k->name);
		for (size_t m = 0; m < sizeof(mins) / sizeof(mins[0]); m++)
		{
			img_raster	one;
			img_error	err;
			bool		big;

			CHECK(load_threads(&j, mins[m][0], mins[m][1], 1, &one, &err) == IMG_OK,
				  "%s min %ux%u: one-thread decode (%s)", k->name, mins[m][0], mins[m][1], err.message);
			big = (uint64_t) one.width * one.height >= IMG_PARALLEL_MIN_PIXELS;
			for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++)
			{
				img_raster	many;
				unsigned long before = img_helper_runs();
				unsigned long ran;

				CHECK(load_threads(&j, mins[m][0], mins[m][1], counts[c], &many, &err) == IMG_OK,
					  "%s min %ux%u, %u threads: decode (%s)", k->name, mins[m][0], mins[m][1],
					  counts[c], err.message);
				CHECK(same_raster(&one, &many), "%s min %ux%u, %u threads: %ux%u, same pixels as one thread",
					  k->name, mins[m][0], mins[m][1], counts[c], many.width, many.height);
				ran = img_helper_runs() - before;
				if (k->progressive || !big)
					CHECK(ran == 0, "%s %ux%u: decoded in one piece, %lu helper runs",
						  k->name, one.width, one.height, ran);
				else
					CHECK(ran == counts[c] - 1, "%s %ux%u, %u threads: %lu helper runs",
						  k->name, one.width, one.height, counts[c], ran);
				img_raster_free(&many);
			}
			img_raster_free(&one);
		}
		jb_free(&j);
	}
}

/*
 * Every DCT scale, with the size threshold lowered to nothing: bands are
 * used from IMG_PARALLEL_MIN_SCALE/8 up (scale 8 with and without fancy
 * upsampling, the merged upsampler's case), never below, and always give
 * the one-thread pixels.
 */
TEST_SUITE(parallel_decode_scales)
{
	const uint64_t saved = img_parallel_decode_min_pixels;
	const uint32_t w = 803,
				h = 611;
	int			split = 0;

	img_parallel_decode_min_pixels = 1;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
	{
		const jb_jpeg_kind *k = &kinds[i];
		jb_buf		j;

		if (k->progressive || !kind_jpeg(k, w, h, &j))
			continue;
		for (unsigned m = 1; m <= 9; m++)
		{
			/* m = 9: full size, fancy upsampling; else scale m/8 asked for exactly */
			uint32_t	min_w = m == 9 ? 0 : (w * m + 7) / 8;
			uint32_t	min_h = m == 9 ? 0 : (h * m + 7) / 8;
			img_raster	one,
						many;
			img_error	err;
			unsigned long before;

			if (load_threads(&j, min_w, min_h, 1, &one, &err) != IMG_OK)
			{
				CHECK(false, "%s scale %u: one thread (%s)", k->name, m, err.message);
				continue;
			}
			before = img_helper_runs();
			CHECK(load_threads(&j, min_w, min_h, 3, &many, &err) == IMG_OK, "%s scale %u: 3 threads (%s)",
				  k->name, m, err.message);
			CHECK(same_raster(&one, &many), "%s scale %u: %ux%u, the one-thread pixels", k->name, m,
				  many.width, many.height);
			if (m >= IMG_PARALLEL_MIN_SCALE)
			{
				CHECK(img_helper_runs() - before == 2, "%s scale %u: split in 3", k->name, m);
				split++;
			}
			else
				CHECK(img_helper_runs() == before, "%s scale %u/8: not split", k->name, m);
			img_raster_free(&one);
			img_raster_free(&many);
		}
		jb_free(&j);
	}
	img_parallel_decode_min_pixels = saved;
	CHECK(split == 8 * 6, "%d banded decodes compared", split);
}

TEST_SUITE(parallel_decode_damage)
{
	jb_buf		j;
	size_t		cuts[] = {0, 0, 0};
	int			compared = 0;

	CHECK(kind_jpeg(&kinds[0], 1200, 900, &j), "fixture written");
	cuts[0] = j.len / 4;
	cuts[1] = j.len / 2;
	cuts[2] = j.len - 10;

	/* truncated at a quarter, half, the end: every band count agrees with one thread */
	for (size_t i = 0; i < 3; i++)
	{
		jb_buf		t = {malloc(cuts[i]), cuts[i]};
		img_raster	r;
		img_error	one_err;
		img_error	err;
		img_status	one;

		memcpy(t.data, j.data, cuts[i]);
		one = load_threads(&t, 700, 500, 1, &r, &one_err);
		CHECK(one == IMG_ERR_TRUNCATED, "cut at %zu: one thread says truncated (%s)", cuts[i],
			  img_status_name(one));
		for (unsigned n = 2; n <= 4; n++)
		{
			img_status	st = load_threads(&t, 700, 500, n, &r, &err);

			CHECK(st == one && strcmp(err.message, one_err.message) == 0,
				  "cut at %zu, %u threads: %s \"%s\", want \"%s\"", cuts[i], n,
				  img_status_name(st), err.message, one_err.message);
			CHECK(r.pixels == NULL, "cut at %zu, %u threads: no raster left", cuts[i], n);
			compared++;
		}
		free(t.data);
	}

	/* a byte of scan data broken in the top, the middle and the bottom band */
	for (int place = 1; place <= 3; place++)
	{
		jb_buf		d = {malloc(j.len), j.len};
		size_t		at = j.len * (size_t) place / 4;
		img_raster	r;
		img_error	one_err;
		img_error	err;
		img_status	one;

		memcpy(d.data, j.data, j.len);
		/* an RST marker where none may be: libjpeg must object */
		d.data[at] = 0xFF;
		d.data[at + 1] = 0xD3;
		one = load_threads(&d, 700, 500, 1, &r, &one_err);
		CHECK(one == IMG_ERR_CORRUPT, "broken at %zu: one thread says corrupt (%s)", at,
			  img_status_name(one));
		for (unsigned n = 2; n <= 4; n++)
		{
			img_status	st = load_threads(&d, 700, 500, n, &r, &err);

			CHECK(st == one && strcmp(err.message, one_err.message) == 0,
				  "broken at %zu, %u threads: %s \"%s\", want \"%s\"", at, n,
				  img_status_name(st), err.message, one_err.message);
			compared++;
		}
		free(d.data);
	}
	CHECK(compared == 18, "%d damaged decodes compared", compared);
	jb_free(&j);
}

/* ------------------------------------------------------------- resize */

TEST_SUITE(parallel_resize_bands)
{
	img_raster	rgb;
	int			compared = 0;

	CHECK(jb_make_raster(&rgb, 1203, 911, busy_pixel, NULL), "source made");
	for (uint32_t C = 1; C <= 4; C++)
	{
		img_raster	src;
		img_error	err;
		/* shrink (vertical first), enlarge (horizontal first), crop, pad */
		img_placement cases[4];

		CHECK(img_raster_init(&src, rgb.width, rgb.height, C, &err) == IMG_OK, "raster");
		for (size_t i = 0; i < (size_t) rgb.width * rgb.height; i++)
			for (uint32_t c = 0; c < C; c++)
				src.pixels[i * C + c] = rgb.pixels[i * 3 + (c % 3)] ^ (uint8_t) (c * 40);

		memset(cases, 0, sizeof(cases));
		cases[0] = (img_placement) {.out_width = 640, .out_height = 485, .src_w = 1203, .src_h = 911,
		.dst_w = 640, .dst_h = 485};
		cases[1] = (img_placement) {.out_width = 1500, .out_height = 1400, .src_x = 100.25, .src_y = 50.5,
		.src_w = 700, .src_h = 600, .dst_w = 1500, .dst_h = 1400};
		cases[2] = (img_placement) {.out_width = 512, .out_height = 512, .src_x = 146.5, .src_y = 0,
		.src_w = 910.75, .src_h = 911, .dst_w = 512, .dst_h = 512};
		cases[3] = (img_placement) {.out_width = 800, .out_height = 800, .src_w = 1203, .src_h = 911,
		.dst_x = 0, .dst_y = 97, .dst_w = 800, .dst_h = 606};

		for (size_t p = 0; p < 4; p++)
		{
			img_raster	one;
			const uint8_t bg[3] = {10, 200, 30};

			CHECK(img_render_geometry(&src, &cases[p], bg, &one, &err) == IMG_OK,
				  "C=%u case %zu: one thread (%s)", C, p, err.message);
			for (unsigned n = 2; n <= IMG_MAX_THREADS; n += 3)
			{
				img_raster	many;
				unsigned long before = img_helper_runs();

				CHECK(img_render_geometry_threads(&src, &cases[p], bg, n, &many, &err) == IMG_OK,
					  "C=%u case %zu, %u threads (%s)", C, p, n, err.message);
				CHECK(same_raster(&one, &many), "C=%u case %zu, %u threads: same bytes", C, p, n);
				CHECK(img_helper_runs() - before == n - 1, "C=%u case %zu: %lu helper runs, want %u",
					  C, p, img_helper_runs() - before, n - 1);
				img_raster_free(&many);
				compared++;
			}
			img_raster_free(&one);
		}
		img_raster_free(&src);
	}
	CHECK(compared == 4 * 4 * 3, "%d resizes compared", compared);

	/* a small output stays on one thread */
	{
		img_placement tiny = {.out_width = 100, .out_height = 80, .src_w = 1203, .src_h = 911,
		.dst_w = 100, .dst_h = 80};
		img_raster	out;
		img_error	err;
		unsigned long before = img_helper_runs();

		CHECK(img_render_geometry_threads(&rgb, &tiny, NULL, 4, &out, &err) == IMG_OK, "tiny resize");
		CHECK(img_helper_runs() == before, "a 100x80 resize starts no thread");
		img_raster_free(&out);
	}
	img_raster_free(&rgb);
}

/* ------------------------------------------------------------- render */

/* The caller's allocator: remembers what it gave out, refuses foreign frees. */
#define TRACK_MAX 4096
static void *tracked[TRACK_MAX];
static int	foreign_frees;

static void *
track_alloc(size_t size, void *ctx)
{
	void	   *p = malloc(size);

	(void) ctx;
	for (int i = 0; p != NULL && i < TRACK_MAX; i++)
		if (tracked[i] == NULL)
		{
			tracked[i] = p;
			return p;
		}
	free(p);
	return NULL;
}

static bool
is_tracked(const void *p)
{
	for (int i = 0; i < TRACK_MAX; i++)
		if (tracked[i] == p)
			return true;
	return false;
}

static void
track_free(void *p, void *ctx)
{
	(void) ctx;
	for (int i = 0; i < TRACK_MAX; i++)
		if (tracked[i] == p)
		{
			tracked[i] = NULL;
			free(p);
			return;
		}
	foreign_frees++;			/* and leak it: freeing it could corrupt the heap */
}

static void *
track_realloc(void *p, size_t size, void *ctx)
{
	void	   *q;

	if (p == NULL)
		return track_alloc(size, ctx);
	for (int i = 0; i < TRACK_MAX; i++)
		if (tracked[i] == p)
		{
			q = realloc(p, size);
			if (q != NULL)
				tracked[i] = q;
			return q;
		}
	foreign_frees++;
	return NULL;
}

static int
tracked_live(void)
{
	int			n = 0;

	for (int i = 0; i < TRACK_MAX; i++)
		n += tracked[i] != NULL;
	return n;
}

static unsigned
budget_of(void *ctx)
{
	return *(const unsigned *) ctx;
}

static const img_variant_spec render_specs[] = {
	{{1600, 1600, IMG_FIT_CONTAIN, false}, 80, "master"},
	{{1024, 0, IMG_FIT_CONTAIN, false}, 80, "large"},
	{{512, 0, IMG_FIT_CONTAIN, false}, 80, "medium"},
	{{256, 256, IMG_FIT_COVER, false}, 80, "thumb"},
	{{300, 300, IMG_FIT_PAD, false}, 75, "pad"},
};
#define NSPECS (sizeof(render_specs) / sizeof(render_specs[0]))

TEST_SUITE(parallel_render)
{
	const uint8_t white[3] = {255, 255, 255};
	img_limits	lim;
	jb_buf		src;
	img_variant_result one[NSPECS];
	img_error	err;
	img_render_options opt = {0};

	img_limits_default(&lim);
	CHECK(kind_jpeg(&kinds[0], 2400, 1700, &src), "source written");
	opt.threads = 1;
	CHECK(img_render_variants_opts(src.data, src.len, &lim, render_specs, NSPECS, white, &opt, one, &err) == IMG_OK,
		  "one thread (%s)", err.message);
	CHECK(opt.threads_used == 1, "one thread used, says %u", opt.threads_used);

	for (unsigned n = 2; n <= 4; n++)
	{
		img_variant_result many[NSPECS];
		unsigned long before = img_helper_runs();

		memset(&opt, 0, sizeof(opt));
		opt.threads = n;
		CHECK(img_render_variants_opts(src.data, src.len, &lim, render_specs, NSPECS, white, &opt, many, &err) == IMG_OK,
			  "%u threads (%s)", n, err.message);
		CHECK(opt.threads_used == n, "%u threads used, says %u", n, opt.threads_used);
		/* the decode, the resizes big enough to split, the encodes */
		CHECK(img_helper_runs() - before >= 3 * (n - 1), "%u threads: %lu helper runs", n,
			  img_helper_runs() - before);
		for (size_t i = 0; i < NSPECS; i++)
			CHECK(many[i].status == IMG_OK && many[i].width == one[i].width &&
				  many[i].height == one[i].height && many[i].jpeg.len == one[i].jpeg.len &&
				  memcmp(many[i].jpeg.data, one[i].jpeg.data, one[i].jpeg.len) == 0,
				  "%u threads, %s: %ux%u, the same %zu bytes as one thread", n, render_specs[i].name,
				  many[i].width, many[i].height, one[i].jpeg.len);
		img_variant_results_free(many, NSPECS);
	}

	/* the budget lowers the count at each step; 0 means 1 */
	for (unsigned b = 0; b <= 2; b++)
	{
		img_variant_result many[NSPECS];
		unsigned	budget = b;
		unsigned long before = img_helper_runs();

		memset(&opt, 0, sizeof(opt));
		opt.threads = 4;
		opt.budget = budget_of;
		opt.budget_ctx = &budget;
		CHECK(img_render_variants_opts(src.data, src.len, &lim, render_specs, NSPECS, white, &opt, many, &err) == IMG_OK,
			  "budget %u (%s)", b, err.message);
		CHECK(opt.threads_used == (b > 1 ? b : 1), "budget %u: %u threads used", b, opt.threads_used);
		if (b <= 1)
			CHECK(img_helper_runs() == before, "budget %u: no helper ran", b);
		CHECK(many[0].jpeg.len == one[0].jpeg.len &&
			  memcmp(many[0].jpeg.data, one[0].jpeg.data, one[0].jpeg.len) == 0, "budget %u: same master", b);
		img_variant_results_free(many, NSPECS);
	}

	/* everything handed back comes from the caller's allocator; nothing leaks */
	{
		img_allocator a = {track_alloc, track_realloc, track_free, NULL};
		img_variant_result many[NSPECS];
		bool		all_tracked = true;
		img_status	st;

		foreign_frees = 0;
		img_set_allocator(&a);
		memset(&opt, 0, sizeof(opt));
		opt.threads = 2;
		st = img_render_variants_opts(src.data, src.len, &lim, render_specs, NSPECS, white, &opt, many, &err);
		for (size_t i = 0; st == IMG_OK && i < NSPECS; i++)
			all_tracked = all_tracked && is_tracked(many[i].jpeg.data);
		if (st == IMG_OK)
			img_variant_results_free(many, NSPECS);
		img_set_allocator(NULL);
		CHECK(st == IMG_OK, "tracked render (%s)", err.message);
		CHECK(all_tracked, "every result buffer is the caller's");
		CHECK(tracked_live() == 0, "%d of the caller's blocks left", tracked_live());
		CHECK(foreign_frees == 0, "%d frees of blocks the caller's allocator never gave", foreign_frees);
	}

	/* a broken source fails on every thread count with one verdict and no result */
	{
		jb_buf		bad = {malloc(src.len / 2), src.len / 2};
		img_variant_result many[NSPECS];
		img_error	one_err;
		img_status	want;

		memcpy(bad.data, src.data, bad.len);
		want = img_render_variants(bad.data, bad.len, &lim, render_specs, NSPECS, white, many, &one_err);
		CHECK(want == IMG_ERR_TRUNCATED, "half a file: truncated (%s)", img_status_name(want));
		memset(&opt, 0, sizeof(opt));
		opt.threads = 3;
		CHECK(img_render_variants_opts(bad.data, bad.len, &lim, render_specs, NSPECS, white, &opt, many, &err) == want &&
			  strcmp(err.message, one_err.message) == 0, "3 threads: \"%s\"", err.message);
		for (size_t i = 0; i < NSPECS; i++)
			CHECK(many[i].jpeg.data == NULL, "no result %zu left", i);
		free(bad.data);
	}
	img_variant_results_free(one, NSPECS);
	jb_free(&src);
}

/* An interrupt asked for mid-render stops every thread. */
static int	polls_left;

static bool
interrupt_after_polls(void *ctx)
{
	(void) ctx;
	return __atomic_sub_fetch(&polls_left, 1, __ATOMIC_SEQ_CST) < 0;
}

TEST_SUITE(parallel_interrupt)
{
	const uint8_t white[3] = {255, 255, 255};
	img_limits	lim;
	jb_buf		src;
	int			stopped = 0;
	int			total_polls = 0;

	img_limits_default(&lim);
	CHECK(kind_jpeg(&kinds[0], 1800, 1200, &src), "source written");
	/* how often a whole render asks (a hook that never says stop) */
	{
		img_variant_result res[NSPECS];
		img_render_options opt = {.threads = 3};
		img_error	err;

		polls_left = INT32_MAX / 2;
		img_set_interrupt_hook(interrupt_after_polls, NULL);
		CHECK(img_render_variants_opts(src.data, src.len, &lim, render_specs, NSPECS, white, &opt, res, &err) == IMG_OK,
			  "uninterrupted render (%s)", err.message);
		img_set_interrupt_hook(NULL, NULL);
		img_variant_results_free(res, NSPECS);
		total_polls = INT32_MAX / 2 - polls_left;
		CHECK(total_polls > 100, "a render asks the hook %d times", total_polls);
	}
	/* about 30 interrupts spread over that: in the decode, the resizes and the encodes */
	for (int polls = 1; polls < total_polls; polls += total_polls / 30 + 1)
	{
		img_allocator a = {track_alloc, track_realloc, track_free, NULL};
		img_variant_result res[NSPECS];
		img_render_options opt = {.threads = 3};
		img_error	err;
		img_status	st;

		foreign_frees = 0;
		polls_left = polls;
		img_set_allocator(&a);
		img_set_interrupt_hook(interrupt_after_polls, NULL);
		st = img_render_variants_opts(src.data, src.len, &lim, render_specs, NSPECS, white, &opt, res, &err);
		img_set_interrupt_hook(NULL, NULL);
		if (st != IMG_OK)
		{
			CHECK(st == IMG_ERR_INTERRUPTED, "after %d polls: %s (%s)", polls, img_status_name(st), err.message);
			for (size_t i = 0; i < NSPECS; i++)
				CHECK(res[i].jpeg.data == NULL, "interrupted after %d polls: no result %zu left", polls, i);
			stopped++;
		}
		else
			img_variant_results_free(res, NSPECS);
		img_set_allocator(NULL);
		CHECK(tracked_live() == 0 && foreign_frees == 0,
			  "after %d polls: %d of the caller's blocks left, %d foreign frees", polls, tracked_live(),
			  foreign_frees);
	}
	CHECK(stopped >= 25, "%d renders stopped by the interrupt", stopped);
	jb_free(&src);
}
