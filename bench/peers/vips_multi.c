/*
 * vips_multi — the libvips peer for the four-preset task.
 *
 *   vips_multi IN OUTDIR W1,W2,...
 *
 * Same contract as `imgmod-cli render`: the input is decoded once and
 * OUTDIR/<W>.jpg is written for every width (fit inside W x anything, never
 * enlarged, EXIF orientation applied, quality 80, no metadata).
 *
 * How libvips is asked to do it: vips_thumbnail() opens the file with
 * shrink-on-load at the largest width and the result is rendered into a
 * memory image; every smaller width is then made from that memory image with
 * vips_thumbnail_image().  This is the fastest single-decode route through
 * libvips' public C API, and the one the issue names as the reference.
 *
 * Build: cc -O2 vips_multi.c $(pkg-config --cflags --libs vips)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#define MAX_WIDTHS 32

static int
by_width_desc(const void *a, const void *b)
{
	int			wa = *(const int *) a;
	int			wb = *(const int *) b;

	return (wa < wb) - (wa > wb);
}

static int
save(VipsImage *img, const char *outdir, int width)
{
	char		path[4096];

	snprintf(path, sizeof(path), "%s/%d.jpg", outdir, width);
	return vips_jpegsave(img, path, "Q", 80, "strip", TRUE, NULL);
}

int
main(int argc, char **argv)
{
	int			widths[MAX_WIDTHS];
	int			n = 0;
	char	   *list;
	VipsImage  *first = NULL;
	VipsImage  *largest = NULL;

	if (VIPS_INIT(argv[0]))
		vips_error_exit("cannot start libvips");
	if (argc != 4)
	{
		fprintf(stderr, "usage: %s IN OUTDIR W1,W2,...\n", argv[0]);
		return 2;
	}
	list = g_strdup(argv[3]);
	for (char *tok = strtok(list, ","); tok != NULL && n < MAX_WIDTHS; tok = strtok(NULL, ","))
		if (atoi(tok) > 0)
			widths[n++] = atoi(tok);
	g_free(list);
	if (n == 0)
	{
		fprintf(stderr, "%s: no widths given\n", argv[0]);
		return 2;
	}
	qsort(widths, n, sizeof(int), by_width_desc);

	/* The only decode: shrink-on-load to the largest width, kept in memory. */
	if (vips_thumbnail(argv[1], &first, widths[0],
					   "height", VIPS_MAX_COORD, "size", VIPS_SIZE_DOWN, NULL))
		vips_error_exit("thumbnail of %s", argv[1]);
	largest = vips_image_copy_memory(first);
	g_object_unref(first);
	if (largest == NULL)
		vips_error_exit("copy to memory");
	if (save(largest, argv[2], widths[0]))
		vips_error_exit("save %d", widths[0]);

	for (int i = 1; i < n; i++)
	{
		VipsImage  *smaller = NULL;

		if (vips_thumbnail_image(largest, &smaller, widths[i],
								 "height", VIPS_MAX_COORD, "size", VIPS_SIZE_DOWN, NULL))
			vips_error_exit("thumbnail_image %d", widths[i]);
		if (save(smaller, argv[2], widths[i]))
			vips_error_exit("save %d", widths[i]);
		g_object_unref(smaller);
	}
	g_object_unref(largest);
	vips_shutdown();
	return 0;
}
