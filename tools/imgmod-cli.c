/*
 * imgmod-cli — the image core from the command line.
 *
 *   imgmod-cli probe FILE
 *   imgmod-cli normalise FILE OUT.jpg
 *   imgmod-cli render FILE OUTDIR WIDTH[,WIDTH...] [QUALITY]
 *   imgmod-cli thumb FILE OUT.jpg WIDTH [QUALITY]
 *   imgmod-cli edit FILE OUT.jpg OP[,OP...] [QUALITY]
 *
 * render decodes once and writes OUTDIR/<width>.jpg for each width (contain,
 * no upscale); it is what bench/ times against the peers.  edit applies
 * rotate:90|180|270, flip:h|v and crop:W:H:X:Y ops (tools/edit_spec.h) to
 * a master with img_edit_apply, as the edit worker does (QUALITY, default
 * 92 like imgmod.master_quality, only when it cannot be lossless), and
 * prints the size and the method.  Exit status 1 on
 * a rejected input, 2 on a usage or I/O error.
 */
#include "imgcore.h"
#include "edit_spec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *
slurp(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	uint8_t    *buf = NULL;
	size_t		cap = 0;
	size_t		n = 0;

	if (f == NULL)
		return NULL;
	for (;;)
	{
		size_t		got;

		if (n == cap)
		{
			uint8_t    *nb;

			cap = cap ? cap * 2 : 1 << 20;
			nb = realloc(buf, cap);
			if (nb == NULL)
			{
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	fclose(f);
	*len = n;
	return buf;
}

static int
spit(const char *path, const uint8_t *data, size_t len)
{
	FILE	   *f = fopen(path, "wb");

	if (f == NULL || fwrite(data, 1, len, f) != len)
	{
		fprintf(stderr, "imgmod-cli: cannot write %s: %s\n", path, strerror(errno));
		if (f)
			fclose(f);
		return 2;
	}
	fclose(f);
	return 0;
}

static int
rejected(const img_error *err)
{
	fprintf(stderr, "imgmod-cli: rejected (%s): %s\n", img_status_name(err->status), err->message);
	return 1;
}

static int
cmd_probe(const uint8_t *data, size_t len)
{
	img_limits	limits;
	img_info	info;
	img_error	err = {0};
	img_status	st;

	img_limits_default(&limits);
	st = img_probe(data, len, &limits, &info, &err);
	printf("format=%s width=%u height=%u frames=%u orientation=%u colour=%s alpha=%d progressive=%d scans=%u "
		   "icc=%d exif=%d gps=%d xmp=%d iptc=%d comment=%d trailing=%d verdict=%s\n",
		   img_format_name(info.format), info.width, info.height, info.frames, info.orientation,
		   img_colour_model_name(info.colour), info.has_alpha, info.progressive, info.scans,
		   info.has_icc, info.has_exif, info.has_gps, info.has_xmp, info.has_iptc,
		   info.has_comment, info.has_trailing_data, st == IMG_OK ? "accept" : img_status_name(st));
	return st == IMG_OK ? 0 : rejected(&err);
}

static int
cmd_normalise(const uint8_t *data, size_t len, const char *out)
{
	img_limits	limits;
	img_normalise_options options = {.master_quality = 92, .background = {255, 255, 255}};
	img_normalised norm;
	img_error	err = {0};
	int			rc;

	img_limits_default(&limits);
	if (img_normalise(data, len, &limits, &options, &norm, &err) != IMG_OK)
		return rejected(&err);
	rc = spit(out, norm.master.data, norm.master.len);
	printf("%ux%u %s %zu bytes\n", norm.width, norm.height,
		   img_master_method_name(norm.method), norm.master.len);
	img_normalised_free(&norm);
	return rc;
}

static int
cmd_render(const uint8_t *data, size_t len, const char *outdir, const char *widths, int quality,
		   const char *single_out)
{
	img_limits	limits;
	img_variant_spec specs[32];
	img_variant_result results[32];
	img_error	err = {0};
	size_t		n = 0;
	const uint8_t bg[3] = {255, 255, 255};
	char	   *list = strdup(widths);
	int			rc = 0;
	img_render_options options = {.threads = 1};

	for (char *tok = strtok(list, ","); tok && n < 32; tok = strtok(NULL, ","))
	{
		memset(&specs[n], 0, sizeof(specs[n]));
		specs[n].geometry.box_width = (uint32_t) atoi(tok);
		specs[n].geometry.fit = IMG_FIT_CONTAIN;
		specs[n].quality = quality;
		n++;
	}
	free(list);
	img_limits_default(&limits);
	/* IMGMOD_RENDER_THREADS: threads for the render (default 1, as the benchmarks compare) */
	if (getenv("IMGMOD_RENDER_THREADS") != NULL)
		options.threads = (unsigned) atoi(getenv("IMGMOD_RENDER_THREADS"));
	if (img_render_variants_opts(data, len, &limits, specs, n, bg, &options, results, &err) != IMG_OK)
		return rejected(&err);
	for (size_t i = 0; i < n && rc == 0; i++)
	{
		char		path[4096];

		if (single_out)
			snprintf(path, sizeof(path), "%s", single_out);
		else
			snprintf(path, sizeof(path), "%s/%u.jpg", outdir, specs[i].geometry.box_width);
		rc = spit(path, results[i].jpeg.data, results[i].jpeg.len);
	}
	img_variant_results_free(results, n);
	return rc;
}

static int
cmd_edit(const uint8_t *data, size_t len, const char *out, const char *spec, int quality)
{
	img_limits	limits;
	img_edit_op ops[IMG_EDIT_MAX_OPS];
	size_t		n;
	img_edit_result result;
	img_error	err = {0};
	char		why[160];
	int			rc;

	if (!edit_spec_parse(spec, ops, IMG_EDIT_MAX_OPS, &n, why, sizeof(why)))
	{
		fprintf(stderr, "imgmod-cli: %s\n", why);
		return 2;
	}
	img_limits_default(&limits);
	if (img_edit_apply(data, len, &limits, ops, n, quality, &result, &err) != IMG_OK)
		return rejected(&err);
	rc = spit(out, result.master.data, result.master.len);
	printf("%ux%u %s %zu bytes\n", result.width, result.height,
		   img_master_method_name(result.method), result.master.len);
	img_edit_result_free(&result);
	return rc;
}

int
main(int argc, char **argv)
{
	uint8_t    *data;
	size_t		len = 0;
	int			rc;

	if (argc < 3)
	{
		fprintf(stderr, "usage: imgmod-cli probe FILE | normalise FILE OUT | render FILE OUTDIR W[,W..] [Q] | thumb FILE OUT W [Q] | edit FILE OUT OP[,OP..] [Q]\n");
		return 2;
	}
	data = slurp(argv[2], &len);
	if (data == NULL)
	{
		fprintf(stderr, "imgmod-cli: cannot read %s: %s\n", argv[2], strerror(errno));
		return 2;
	}
	if (strcmp(argv[1], "probe") == 0)
		rc = cmd_probe(data, len);
	else if (strcmp(argv[1], "normalise") == 0 && argc >= 4)
		rc = cmd_normalise(data, len, argv[3]);
	else if (strcmp(argv[1], "render") == 0 && argc >= 5)
		rc = cmd_render(data, len, argv[3], argv[4], argc >= 6 ? atoi(argv[5]) : 80, NULL);
	else if (strcmp(argv[1], "thumb") == 0 && argc >= 5)
		rc = cmd_render(data, len, NULL, argv[4], argc >= 6 ? atoi(argv[5]) : 80, argv[3]);
	else if (strcmp(argv[1], "edit") == 0 && argc >= 5)
		rc = cmd_edit(data, len, argv[3], argv[4], argc >= 6 ? atoi(argv[5]) : 92);
	else
	{
		fprintf(stderr, "imgmod-cli: unknown command or missing arguments\n");
		rc = 2;
	}
	free(data);
	return rc;
}
