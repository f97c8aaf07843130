/*
 * edit_stages — an image edit in-process: imgmod's img_edit_apply against
 * the same lossless transform done by libturbojpeg's tjTransform the way
 * jpegtran asks for it, then the render of every preset from the edited
 * master, as the edit worker does (bgworker/render_job.c).
 *
 *   edit_stages FILE REPS OP[,OP...] JPEGTRAN_ARGS...
 *
 * OP is imgmod-cli edit's spec (tools/edit_spec.h); JPEGTRAN_ARGS are the
 * arguments the benchmark gives jpegtran for the same edit (-copy none,
 * -rotate 90|180|270, -flip horizontal|vertical, -perfect, -trim,
 * -crop WxH+X+Y); -outfile and the input are not part of them.  Both sides
 * get the same bytes in memory and keep their output in memory: no process
 * start, no file I/O.  One warm-up pair, then REPS pairs alternating which
 * runs first, every large buffer a fresh mmap on both sides (see main).
 * The render is timed before that, with glibc's malloc as it is in a
 * long-running worker (1 warm-up + REPS).
 *
 * Prints tab-separated lines: name, median ms, min ms, note.
 *   tjtransform     tjTransform() with jpegtran's options
 *   edit            img_edit_apply() (re-encode quality 92, imgmod.master_quality)
 *   edit/tj         the median of the per-pair ratios
 *   render          img_render_variants() of the edited master: the
 *                   compressed master (2560 box, q85) and the seeded
 *                   presets large 1920, medium 1024, small 512 (contain)
 *                   and thumb 256x256 (cover), q80
 *   same_bytes      whether both sides produced the same JPEG (yes/no; the
 *                   ms columns are 0)
 */
#include "imgcore.h"
#include "stages_util.h"
#include "edit_spec.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <turbojpeg.h>

#define MAX_REPS 64

/* Median and minimum of v[0..n) (sorts v). */
static void
stats(double *v, int n, double *med, double *min)
{
	qsort(v, n, sizeof(double), cmp_double);
	*med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	*min = v[0];
}

static void
usage(const char *why)
{
	fprintf(stderr, "edit_stages: %s\nusage: edit_stages FILE REPS OP[,OP...] JPEGTRAN_ARGS...\n", why);
	exit(2);
}

/* jpegtran's arguments as one tjtransform (what jpegtran itself sets up). */
static void
jpegtran_args(int argc, char **argv, tjtransform *xf)
{
	memset(xf, 0, sizeof(*xf));
	xf->options = TJXOPT_COPYNONE;
	for (int i = 0; i < argc; i++)
	{
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : "";

		if (strcmp(a, "-copy") == 0 && strcmp(v, "none") == 0)
			i++;
		else if (strcmp(a, "-perfect") == 0)
			xf->options |= TJXOPT_PERFECT;
		else if (strcmp(a, "-trim") == 0)
			xf->options |= TJXOPT_TRIM;
		else if (strcmp(a, "-rotate") == 0 && (strcmp(v, "90") == 0 || strcmp(v, "180") == 0 || strcmp(v, "270") == 0))
		{
			xf->op = v[0] == '9' ? TJXOP_ROT90 : v[0] == '1' ? TJXOP_ROT180 : TJXOP_ROT270;
			i++;
		}
		else if (strcmp(a, "-flip") == 0 && (strcmp(v, "horizontal") == 0 || strcmp(v, "vertical") == 0))
		{
			xf->op = v[0] == 'h' ? TJXOP_HFLIP : TJXOP_VFLIP;
			i++;
		}
		else if (strcmp(a, "-crop") == 0)
		{
			int			end = -1;

			if (sscanf(v, "%dx%d+%d+%d%n", &xf->r.w, &xf->r.h, &xf->r.x, &xf->r.y, &end) != 4 || v[end] != '\0')
				usage("cannot read the -crop geometry");
			xf->options |= TJXOPT_CROP;
			i++;
		}
		else
			usage("a jpegtran argument this tool does not know");
	}
}

static void
die(const char *what, const char *message)
{
	fprintf(stderr, "edit_stages: %s: %s\n", what, message);
	exit(1);
}

/* One tjTransform; the output stays in *dst (tjFree'd by the caller). */
static double
time_tj(const uint8_t *data, size_t len, tjtransform *xf, unsigned char **dst, unsigned long *dst_len)
{
	double		t0 = now_ms();
	tjhandle	tj = tjInitTransform();

	*dst = NULL;
	*dst_len = 0;
	if (tj == NULL || tjTransform(tj, data, (unsigned long) len, 1, dst, dst_len, xf, 0) != 0)
		die("tjTransform", tj ? tjGetErrorStr2(tj) : "cannot initialise");
	tjDestroy(tj);
	return now_ms() - t0;
}

static double
time_edit(const uint8_t *data, size_t len, const img_edit_op *ops, size_t n, img_edit_result *out)
{
	img_limits	limits;
	img_error	err = {0};
	double		t0 = now_ms();

	img_limits_default(&limits);
	if (img_edit_apply(data, len, &limits, ops, n, 92, out, &err) != IMG_OK)
		die("img_edit_apply", err.message);
	return now_ms() - t0;
}

int
main(int argc, char **argv)
{
	static const struct
	{
		const char *name;
		uint32_t	w, h;
		img_fit		fit;
		int			q;
	}			presets[] = {
		{"master", 2560, 2560, IMG_FIT_CONTAIN, 85},
		{"large", 1920, 0, IMG_FIT_CONTAIN, 80},
		{"medium", 1024, 0, IMG_FIT_CONTAIN, 80},
		{"small", 512, 0, IMG_FIT_CONTAIN, 80},
		{"thumb", 256, 256, IMG_FIT_COVER, 80},
	};
	enum
	{
		NP = sizeof(presets) / sizeof(presets[0])
	};
	img_variant_spec specs[NP];
	img_variant_result results[NP];
	const uint8_t bg[3] = {255, 255, 255};
	img_edit_op ops[IMG_EDIT_MAX_OPS];
	size_t		nops;
	char		why[160];
	tjtransform xf;
	uint8_t    *data;
	size_t		len = 0;
	int			reps;
	double		t_tj[MAX_REPS], t_edit[MAX_REPS], ratio[MAX_REPS], t_render[MAX_REPS];
	double		med, min;
	img_edit_result kept = {0};
	unsigned char *tj_out = NULL;
	unsigned long tj_len = 0;
	img_limits	limits;
	img_error	err = {0};

	if (argc < 4)
		usage("missing arguments");
	reps = atoi(argv[2]);
	if (reps < 1 || reps > MAX_REPS)
		usage("REPS must be 1 to 64");
	if (!edit_spec_parse(argv[3], ops, IMG_EDIT_MAX_OPS, &nops, why, sizeof(why)))
		usage(why);
	jpegtran_args(argc - 4, argv + 4, &xf);
	data = read_all(argv[1], &len);
	if (data == NULL)
	{
		perror(argv[1]);
		return 2;
	}

	/* the render first, with malloc as a long-running worker has it */
	memset(specs, 0, sizeof(specs));
	for (int i = 0; i < NP; i++)
	{
		specs[i].geometry.box_width = presets[i].w;
		specs[i].geometry.box_height = presets[i].h;
		specs[i].geometry.fit = presets[i].fit;
		specs[i].quality = presets[i].q;
		specs[i].name = presets[i].name;
	}
	img_limits_default(&limits);
	time_edit(data, len, ops, nops, &kept);
	for (int r = -1; r < reps; r++)
	{
		double		t0 = now_ms();

		if (img_render_variants(kept.master.data, kept.master.len, &limits, specs, NP, bg, results, &err) != IMG_OK)
			die("img_render_variants", err.message);
		if (r >= 0)
			t_render[r] = now_ms() - t0;
		img_variant_results_free(results, NP);
	}

	img_edit_result_free(&kept);

	/*
	 * Same memory conditions for both sides: every large buffer is a fresh
	 * mmap (a fixed threshold turns off glibc's sliding one, which would
	 * hand one side recycled heap pages and the other new pages to fault
	 * in, by the luck of the order of frees), as in a new process like
	 * jpegtran.  Each side frees its output as soon as it is timed; the
	 * last pair's outputs are kept for the comparison.
	 */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	for (int r = -1; r < reps; r++)		/* r = -1 is the warm-up */
	{
		bool		last = r == reps - 1;
		double		a = 0,
					b = 0;

		for (int side = 0; side < 2; side++)
		{
			bool		tj_side = (side == 0) == (r < 0 || r % 2 == 0);

			if (tj_side)
			{
				a = time_tj(data, len, &xf, &tj_out, &tj_len);
				if (!last)
					tjFree(tj_out);
			}
			else
			{
				b = time_edit(data, len, ops, nops, &kept);
				if (!last)
					img_edit_result_free(&kept);
			}
		}
		if (r >= 0)
		{
			t_tj[r] = a;
			t_edit[r] = b;
			ratio[r] = b / a;
		}
	}

	stats(t_tj, reps, &med, &min);
	printf("tjtransform\t%.2f\t%.2f\t%lu bytes\n", med, min, tj_len);
	stats(t_edit, reps, &med, &min);
	printf("edit\t%.2f\t%.2f\t%ux%u %s %zu bytes\n", med, min, kept.width, kept.height,
		   img_master_method_name(kept.method), kept.master.len);
	stats(ratio, reps, &med, &min);
	printf("edit/tj\t%.3f\t%.3f\tmedian of per-pair ratios\n", med, min);
	stats(t_render, reps, &med, &min);
	printf("render\t%.2f\t%.2f\tmaster 2560 q85 + large 1920, medium 1024, small 512, thumb 256x256 cover, q80\n", med, min);
	printf("same_bytes\t0\t0\t%s\n", tj_len == kept.master.len && memcmp(tj_out, kept.master.data, tj_len) == 0 ? "yes" : "no");
	tjFree(tj_out);
	img_edit_result_free(&kept);
	free(data);
	return 0;
}
