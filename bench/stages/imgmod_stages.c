/*
 * imgmod_stages — where imgmod's time goes, in-process, through the public
 * image-core API only (nothing in src/ is changed or instrumented).
 *
 *   imgmod_stages FILE W1[,W2...] [REPS [MARGIN [OUTDIR]]]
 *
 * MARGIN (what-if): ask the loader for MARGIN x the largest variant instead
 * of the size render chose, so the cost and quality of another
 * shrink-on-load choice can be seen
 * without touching src/.  OUTDIR: write OUTDIR/<W>.jpg from the chained
 * variants (for psnr.py).  The `total` row is always imgmod's real
 * img_render_variants(), whatever MARGIN says.
 *
 * Prints one tab-separated line per stage: name, median ms over REPS
 * (default 5, after one warm-up), and a note.  Stages:
 *
 *   total           img_render_variants() for the width list, as imgmod-cli
 *                   render calls it (the figure the other rows should add up to)
 *   total 2 threads the same with img_render_options.threads = 2, as a worker
 *                   renders on an idle machine (and its decode/variants split)
 *   render:decode   the part of that call before the first variant's raster
 *                   is allocated (probe + decode + colour + orient), seen
 *                   through an img_set_allocator() trace
 *   render:variants the rest of that call (resampling + encoding)
 *   probe           img_probe()
 *   load 2 threads  that img_load() with threads = 2 (two bands)
 *   load            img_load() at the size render really decoded to (taken
 *                   from the allocator trace: the largest raster allocated
 *                   before the first variant, matched to a DCT scale M/8), so
 *                   this tool follows render.c's rule instead of copying it
 *   resize W        img_render_geometry() for width W, from the previous
 *                   (larger) variant or the decoded source, as render chains it
 *   encode W        img_encode_jpeg() q80 of that variant
 *   decode m/8      img_load() forced to DCT scale m/8 (m = 1, 2, 4, 8), to
 *                   show what the choice of scale costs
 *
 * Build (bench/Makefile): links the core sources listed in src/core/core.mk.
 */
#include "imgcore.h"
#include "stages_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_W 16
#define MAX_REPS 64

static double
median(double *v, int n)
{
	qsort(v, n, sizeof(double), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ------------------------------------------------ allocation trace */
#define MAX_EVENTS 65536
static struct
{
	double		t;
	size_t		size;
}			events[MAX_EVENTS];
static int	n_events;

static void
note(size_t size)
{
	if (n_events < MAX_EVENTS)
	{
		events[n_events].t = now_ms();
		events[n_events].size = size;
		n_events++;
	}
}

static void *
trace_alloc(size_t size, void *ctx)
{
	(void) ctx;
	note(size);
	return malloc(size);
}

static void *
trace_realloc(void *p, size_t size, void *ctx)
{
	(void) ctx;
	note(size);
	return realloc(p, size);
}

static void
trace_free(void *p, void *ctx)
{
	(void) ctx;
	free(p);
}

static void
die(const char *what, const img_error *err)
{
	fprintf(stderr, "imgmod_stages: %s: %s (%s)\n", what, err->message, img_status_name(err->status));
	exit(1);
}

/*
 * One render on `threads` threads, traced: its whole time, and the split at
 * the allocation of the first (largest) variant's raster.
 */
static void
timed_render(const uint8_t *data, size_t len, const img_limits *limits,
			 const img_variant_spec *specs, int nw, const uint8_t bg[3], unsigned threads,
			 size_t first_variant, double *total, double *dec, double *var)
{
	img_allocator tracer = {trace_alloc, trace_realloc, trace_free, NULL};
	img_render_options options = {.threads = threads};
	img_variant_result results[MAX_W];
	img_error	err;
	double		t0, t1, split;

	n_events = 0;
	img_set_allocator(&tracer);
	t0 = now_ms();
	if (img_render_variants_opts(data, len, limits, specs, (size_t) nw, bg, &options, results, &err) != IMG_OK)
		die("render", &err);
	t1 = now_ms();
	img_set_allocator(NULL);
	img_variant_results_free(results, (size_t) nw);
	split = t1;
	for (int k = 0; k < n_events; k++)
		if (events[k].size == first_variant)
		{
			split = events[k].t;
			break;
		}
	*total = t1 - t0;
	*dec = split - t0;
	*var = t1 - split;
}

int
main(int argc, char **argv)
{
	uint8_t    *data;
	size_t		len = 0;
	int			widths[MAX_W];
	int			nw = 0;
	int			reps = argc > 3 ? atoi(argv[3]) : 5;
	double		margin = argc > 4 ? atof(argv[4]) : 0;
	const char *outdir = argc > 5 ? argv[5] : NULL;
	img_limits	limits;
	img_info	info;
	img_error	err = {0};
	img_variant_spec specs[MAX_W] = {0};
	img_variant_result results[MAX_W];
	const uint8_t bg[3] = {255, 255, 255};
	uint32_t	up_w, up_h, need_w = 0, need_h = 0;
	img_placement place[MAX_W];
	img_load_options load;
	double		t_total[MAX_REPS], t_probe[MAX_REPS], t_load[MAX_REPS];
	double		t_total2[MAX_REPS], t_rdec2[MAX_REPS], t_rvar2[MAX_REPS], t_load2[MAX_REPS];
	double		t_resize[MAX_W][MAX_REPS], t_encode[MAX_W][MAX_REPS];
	size_t		enc_len[MAX_W];
	uint32_t	dec_w = 0, dec_h = 0;
	char	   *list;
	const char *load_rule;
	char		rule_buf[128];
	double		t_rdec[MAX_REPS], t_rvar[MAX_REPS];

	if (argc < 3)
	{
		fprintf(stderr, "usage: imgmod_stages FILE W1[,W2...] [REPS [MARGIN [OUTDIR]]]\n");
		return 2;
	}
	if (reps < 1)
		reps = 1;
	if (reps > MAX_REPS)
		reps = MAX_REPS;
	data = read_all(argv[1], &len);
	if (data == NULL)
	{
		perror(argv[1]);
		return 2;
	}
	list = strdup(argv[2]);
	for (char *t = strtok(list, ","); t && nw < MAX_W; t = strtok(NULL, ","))
		widths[nw++] = atoi(t);
	free(list);
	/* render works largest first; so does this breakdown */
	for (int i = 0; i < nw; i++)
		for (int j = i + 1; j < nw; j++)
			if (widths[j] > widths[i])
			{
				int			tmp = widths[i];

				widths[i] = widths[j];
				widths[j] = tmp;
			}

	img_limits_default(&limits);
	if (img_probe(data, len, &limits, &info, &err) != IMG_OK)
		die("probe", &err);
	up_w = info.orientation >= 5 ? info.height : info.width;
	up_h = info.orientation >= 5 ? info.width : info.height;

	memset(specs, 0, sizeof(specs));
	for (int i = 0; i < nw; i++)
	{
		specs[i].geometry.box_width = (uint32_t) widths[i];
		specs[i].geometry.fit = IMG_FIT_CONTAIN;
		specs[i].quality = 80;
		img_geometry_place(up_w, up_h, &specs[i].geometry, &place[i]);
		if (place[i].out_width > need_w)
			need_w = place[i].out_width;
		if (place[i].out_height > need_h)
			need_h = place[i].out_height;
	}
	/*
	 * One traced render: which raster did it decode into, and when did the
	 * first (largest) variant's raster appear?
	 */
	{
		img_allocator tracer = {trace_alloc, trace_realloc, trace_free, NULL};
		size_t		first_variant = (size_t) place[0].out_width * place[0].out_height * 3;
		size_t		source_bytes = 0;
		int			k;

		n_events = 0;
		img_set_allocator(&tracer);
		if (img_render_variants(data, len, &limits, specs, nw, bg, results, &err) != IMG_OK)
			die("render", &err);
		img_set_allocator(NULL);
		img_variant_results_free(results, nw);
		for (k = 0; k < n_events && events[k].size != first_variant; k++)
			if (events[k].size > source_bytes)
				source_bytes = events[k].size;
		img_load_options_default(&load);
		load_rule = "full size (decoded size not recognised in the trace)";
		for (unsigned m = 1; m <= 8; m++)
		{
			uint64_t	w = ((uint64_t) up_w * m + 7) / 8;
			uint64_t	h = ((uint64_t) up_h * m + 7) / 8;

			if (w * h * 3 == source_bytes || w * h * 4 == source_bytes)
			{
				load.min_width = m == 8 ? 0 : (uint32_t) w;
				load.min_height = m == 8 ? 0 : (uint32_t) h;
				snprintf(rule_buf, sizeof(rule_buf), "scale %u/8 as render chose", m);
				load_rule = rule_buf;
				break;
			}
		}
	}
	if (margin > 0)
	{
		load.min_width = (uint32_t) (need_w * margin + 0.999);
		load.min_height = (uint32_t) (need_h * margin + 0.999);
		snprintf(rule_buf, sizeof(rule_buf), "what-if: margin %.2f over the largest variant", margin);
		load_rule = rule_buf;
	}

	for (int r = -1; r < reps; r++)		/* r = -1 is the warm-up */
	{
		double		t0, t1;
		img_raster	src, prev, cur;
		img_info	pinfo;

		{
			size_t		first_variant = (size_t) place[0].out_width * place[0].out_height * 3;
			double		total, dec, var;

			timed_render(data, len, &limits, specs, nw, bg, 1, first_variant, &total, &dec, &var);
			if (r >= 0)
			{
				t_total[r] = total;
				t_rdec[r] = dec;
				t_rvar[r] = var;
			}
			/* the same render given a second thread, as a worker gets it on idle cores */
			timed_render(data, len, &limits, specs, nw, bg, 2, first_variant, &total, &dec, &var);
			if (r >= 0)
			{
				t_total2[r] = total;
				t_rdec2[r] = dec;
				t_rvar2[r] = var;
			}
		}

		t0 = now_ms();
		if (img_probe(data, len, &limits, &pinfo, &err) != IMG_OK)
			die("probe", &err);
		t1 = now_ms();
		if (r >= 0)
			t_probe[r] = t1 - t0;

		t0 = now_ms();
		if (img_load(data, len, &limits, &load, &src, NULL, &err) != IMG_OK)
			die("load", &err);
		t1 = now_ms();
		if (r >= 0)
			t_load[r] = t1 - t0;
		dec_w = src.width;
		dec_h = src.height;
		{
			img_load_options load2 = load;
			img_raster	src2;

			load2.threads = 2;
			t0 = now_ms();
			if (img_load(data, len, &limits, &load2, &src2, NULL, &err) != IMG_OK)
				die("load on 2 threads", &err);
			t1 = now_ms();
			if (r >= 0)
				t_load2[r] = t1 - t0;
			img_raster_free(&src2);
		}

		memset(&prev, 0, sizeof(prev));
		for (int i = 0; i < nw; i++)
		{
			const img_raster *from = prev.pixels ? &prev : &src;
			img_placement local = place[i];
			img_buffer	jpeg;
			double		fx = (double) from->width / up_w;
			double		fy = (double) from->height / up_h;

			local.src_x *= fx;
			local.src_w *= fx;
			local.src_y *= fy;
			local.src_h *= fy;
			t0 = now_ms();
			if (img_render_geometry(from, &local, bg, &cur, &err) != IMG_OK)
				die("resize", &err);
			t1 = now_ms();
			if (r >= 0)
				t_resize[i][r] = t1 - t0;
			t0 = now_ms();
			if (img_encode_jpeg(&cur, 80, &jpeg, &err) != IMG_OK)
				die("encode", &err);
			t1 = now_ms();
			if (r >= 0)
				t_encode[i][r] = t1 - t0;
			enc_len[i] = jpeg.len;
			if (outdir && r == reps - 1)
			{
				char		path[4096];
				FILE	   *f;

				snprintf(path, sizeof(path), "%s/%d.jpg", outdir, widths[i]);
				f = fopen(path, "wb");
				if (f == NULL || fwrite(jpeg.data, 1, jpeg.len, f) != jpeg.len)
				{
					perror(path);
					exit(2);
				}
				fclose(f);
			}
			img_buffer_free(&jpeg);
			img_raster_free(&prev);
			prev = cur;
		}
		img_raster_free(&prev);
		img_raster_free(&src);
	}

	printf("total\t%.2f\timg_render_variants, %d width(s)\n", median(t_total, reps), nw);
	printf("render:decode\t%.2f\tuntil the first variant's raster is allocated\n", median(t_rdec, reps));
	printf("render:variants\t%.2f\tresample + encode, all variants\n", median(t_rvar, reps));
	printf("total 2 threads\t%.2f\timg_render_variants_opts, threads = 2\n", median(t_total2, reps));
	printf("render:decode 2 threads\t%.2f\tuntil the first variant's raster is allocated\n", median(t_rdec2, reps));
	printf("render:variants 2 threads\t%.2f\tresample + encode, all variants\n", median(t_rvar2, reps));
	printf("probe\t%.2f\t%ux%u %s\n", median(t_probe, reps), info.width, info.height,
		   info.progressive ? "progressive" : "baseline");
	printf("load\t%.2f\t%ux%u, %s\n", median(t_load, reps), dec_w, dec_h, load_rule);
	printf("load 2 threads\t%.2f\tthe same decode in two bands\n", median(t_load2, reps));
	for (int i = 0; i < nw; i++)
	{
		printf("resize %d\t%.2f\t-> %ux%u\n", widths[i], median(t_resize[i], reps),
			   place[i].out_width, place[i].out_height);
		printf("encode %d\t%.2f\t%zu bytes\n", widths[i], median(t_encode[i], reps), enc_len[i]);
	}

	/* what each DCT scale costs (JPEG only; other formats ignore the minimum) */
	if (info.format == IMG_FORMAT_JPEG)
		for (unsigned m = 1; m <= 8; m *= 2)
		{
			double		t[MAX_REPS];
			img_load_options forced;
			img_raster	out;

			img_load_options_default(&forced);
			forced.min_width = (uint32_t) (((uint64_t) up_w * m + 7) / 8);
			forced.min_height = (uint32_t) (((uint64_t) up_h * m + 7) / 8);
			for (int r = -1; r < reps; r++)
			{
				double		t0 = now_ms();

				if (img_load(data, len, &limits, &forced, &out, NULL, &err) != IMG_OK)
					die("load at scale", &err);
				if (r >= 0)
					t[r] = now_ms() - t0;
				if (r == reps - 1)
					printf("decode %u/8\t%.2f\t%ux%u\n", m, median(t, reps), out.width, out.height);
				img_raster_free(&out);
			}
		}
	free(data);
	return 0;
}
