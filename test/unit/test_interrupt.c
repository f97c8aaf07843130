/*
 * test_interrupt.c — the interrupt hook stops every decoder, the colour,
 * orientation and resampling steps and the encoder, cleanly.
 *
 * For each input the hook first only counts how often the core asks it
 * during img_load, img_normalise and img_render_variants.  Then, for
 * several points N along that count, a hook that says "stop" from its
 * (N+1)th call on must make the call return IMG_ERR_INTERRUPTED with the
 * status recorded in err, no raster, master or variant handed back, and
 * every block the core allocated freed (counted by an allocator hook;
 * AddressSanitizer and valgrind check the third-party libraries' memory).
 * With N equal to the full count the call succeeds, which shows the count
 * is deterministic and the last check is really the last.
 */
#include "test.h"
#include "imgcore.h"
#include "jpeg_builder.h"

#include <limits.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
#include <unistd.h>

/* ------------------------------------------------------- hook and memory */

static unsigned long checks_seen;
static unsigned long stop_after;	/* answer "stop" once more checks than this were made */
static long live_blocks;

static bool
stop_after_n_checks(void *ctx)
{
	(void) ctx;
	return ++checks_seen > stop_after;
}

static void *
counting_alloc(size_t size, void *ctx)
{
	void	   *p = malloc(size);

	(void) ctx;
	if (p != NULL)
		live_blocks++;
	return p;
}

static void *
counting_realloc(void *ptr, size_t size, void *ctx)
{
	void	   *p = realloc(ptr, size);

	(void) ctx;
	if (p != NULL && ptr == NULL)
		live_blocks++;
	return p;
}

static void
counting_free(void *ptr, void *ctx)
{
	(void) ctx;
	if (ptr != NULL)
		live_blocks--;
	free(ptr);
}

/* ------------------------------------------------------------ operations */

typedef enum operation
{
	OP_LOAD,
	OP_NORMALISE,
	OP_RENDER,
} operation;

static const char *const operation_names[] = {"img_load", "img_normalise", "img_render_variants"};

/*
 * Runs one operation with the hook stopping after stop checks; returns its
 * status, and in *leftover whether any output was handed back.
 */
static img_status
run_operation(operation op, const uint8_t *data, size_t len, unsigned long stop,
			  bool *leftover, img_error *err)
{
	static const uint8_t white[3] = {255, 255, 255};
	const img_allocator counting = {counting_alloc, counting_realloc, counting_free, NULL};
	img_limits	lim;
	img_status	st = IMG_ERR_INTERNAL;

	img_limits_default(&lim);
	memset(err, 0, sizeof(*err));
	checks_seen = 0;
	stop_after = stop;
	live_blocks = 0;
	img_set_allocator(&counting);
	img_set_interrupt_hook(stop_after_n_checks, NULL);
	*leftover = false;
	switch (op)
	{
		case OP_LOAD:
			{
				img_load_options opt;
				img_raster	r;

				img_load_options_default(&opt);
				st = img_load(data, len, &lim, &opt, &r, NULL, err);
				*leftover = r.pixels != NULL;
				img_raster_free(&r);
				break;
			}
		case OP_NORMALISE:
			{
				img_normalise_options opt = {.master_quality = 92, .background = {255, 255, 255}};
				img_normalised out;

				st = img_normalise(data, len, &lim, &opt, &out, err);
				*leftover = out.master.data != NULL;
				img_normalised_free(&out);
				break;
			}
		case OP_RENDER:
			{
				img_variant_spec specs[2] = {
					{{160, 0, IMG_FIT_CONTAIN, false}, 85, "medium"},
					{{48, 48, IMG_FIT_COVER, false}, 80, "thumb"},
				};
				img_variant_result res[2];

				st = img_render_variants(data, len, &lim, specs, 2, white, res, err);
				*leftover = res[0].jpeg.data != NULL || res[1].jpeg.data != NULL;
				img_variant_results_free(res, 2);
				break;
			}
	}
	img_set_interrupt_hook(NULL, NULL);
	img_set_allocator(NULL);
	return st;
}

/*
 * The whole check for one input: min_checks is how often the decoder
 * alone must ask (one per row for row-by-row codecs, before and after for
 * those whose library decodes in one call).
 */
static void
check_interruptible(const char *what, const uint8_t *data, size_t len, unsigned long min_checks)
{
	for (int op = OP_LOAD; op <= OP_RENDER; op++)
	{
		img_error	err;
		bool		leftover;
		img_status	st;
		unsigned long total;
		unsigned long points[5];

		st = run_operation((operation) op, data, len, ULONG_MAX, &leftover, &err);
		total = checks_seen;
		CHECK(st == IMG_OK && leftover, "%s: %s succeeds without interruption: %s", what,
			  operation_names[op], err.message);
		/* rendering may shrink on load, so only img_load decodes every row */
		CHECK(total >= (op == OP_LOAD ? min_checks : 2), "%s: %s asks the hook at least %lu times, asked %lu",
			  what, operation_names[op], op == OP_LOAD ? min_checks : 2, total);
		if (st != IMG_OK || total == 0)
			continue;

		points[0] = 0;
		points[1] = total / 3;
		points[2] = total / 2;
		points[3] = total * 2 / 3;
		points[4] = total - 1;
		for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++)
		{
			st = run_operation((operation) op, data, len, points[i], &leftover, &err);
			CHECK(st == IMG_ERR_INTERRUPTED && err.status == IMG_ERR_INTERRUPTED &&
				  strncmp(err.message, "interrupted while ", 18) == 0,
				  "%s: %s stopped after %lu of %lu checks returns interrupted, got %s (%s)", what,
				  operation_names[op], points[i], total, img_status_name(st), err.message);
			CHECK(checks_seen == points[i] + 1,
				  "%s: %s stopped at once: %lu checks after the hook said stop at %lu", what,
				  operation_names[op], checks_seen, points[i] + 1);
			CHECK(!leftover, "%s: %s interrupted at %lu hands nothing back", what,
				  operation_names[op], points[i]);
			CHECK(live_blocks == 0, "%s: %s interrupted at %lu freed everything (%ld blocks left)",
				  what, operation_names[op], points[i], live_blocks);
		}
		st = run_operation((operation) op, data, len, total, &leftover, &err);
		CHECK(st == IMG_OK && leftover && checks_seen == total,
			  "%s: %s with the hook stopping after its last check succeeds: %s", what,
			  operation_names[op], err.message);
	}
}

/* ------------------------------------------------------------- inputs */

static void
check_fixture(const char *name, unsigned long min_checks)
{
	size_t		len;
	uint8_t    *data = read_fixture(name, &len);

	CHECK(data != NULL, "fixture %s is readable", name);
	if (data == NULL)
		return;
	check_interruptible(name, data, len, min_checks);
	free(data);
}

static void
check_png(void)
{
	img_raster	r;
	png_image	image;
	size_t		len = 0;
	uint8_t    *png;

	CHECK(jb_make_gradient(&r, 96, 64), "96x64 gradient raster");
	if (r.pixels == NULL)
		return;
	memset(&image, 0, sizeof(image));
	image.version = PNG_IMAGE_VERSION;
	image.width = r.width;
	image.height = r.height;
	image.format = PNG_FORMAT_RGB;
	CHECK(png_image_write_to_memory(&image, NULL, &len, 0, r.pixels, (png_int_32) r.stride, NULL),
		  "png size computed");
	png = malloc(len);
	CHECK(png != NULL && png_image_write_to_memory(&image, png, &len, 0, r.pixels, (png_int_32) r.stride, NULL),
		  "png written");
	if (png != NULL)
		check_interruptible("generated 96x64 png", png, len, 64);
	free(png);
	img_raster_free(&r);
}

static void
check_tiff(void)
{
	char		path[] = "/tmp/imgmod-interrupt-XXXXXX";
	int			fd = mkstemp(path);
	img_raster	r;
	TIFF	   *tif;
	bool		written = fd >= 0;
	size_t		len;
	uint8_t    *data;

	CHECK(fd >= 0, "temporary file for the tiff");
	if (fd < 0)
		return;
	close(fd);
	CHECK(jb_make_gradient(&r, 80, 64), "80x64 gradient raster");
	tif = TIFFOpen(path, "w");
	written = tif != NULL && r.pixels != NULL;
	if (written)
	{
		TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, r.width);
		TIFFSetField(tif, TIFFTAG_IMAGELENGTH, r.height);
		TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 3);
		TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 8);
		TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
		TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
		TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_LZW);
		TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, 8);
		for (uint32_t y = 0; y < r.height && written; y++)
			written = TIFFWriteScanline(tif, r.pixels + (size_t) y * r.stride, y, 0) == 1;
	}
	if (tif != NULL)
		TIFFClose(tif);
	CHECK(written, "tiff written");
	data = written ? read_file(path, &len) : NULL;
	unlink(path);
	/* eight strips of eight rows: libtiff reads each through the source */
	if (data != NULL)
		check_interruptible("generated 80x64 lzw tiff", data, len, 8);
	free(data);
	img_raster_free(&r);
}

static void
le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
}

static void
le32(uint8_t *p, uint32_t v)
{
	le16(p, (uint16_t) v);
	le16(p + 2, (uint16_t) (v >> 16));
}

static void
check_bmp(void)
{
	const uint32_t w = 70,
				h = 50,
				row = (w * 3 + 3) & ~3u;
	size_t		len = 54 + (size_t) row * h;
	uint8_t    *bmp = calloc(1, len);

	if (bmp == NULL)
		return;
	bmp[0] = 'B';
	bmp[1] = 'M';
	le32(bmp + 2, (uint32_t) len);
	le32(bmp + 10, 54);
	le32(bmp + 14, 40);
	le32(bmp + 18, w);
	le32(bmp + 22, h);
	le16(bmp + 26, 1);
	le16(bmp + 28, 24);
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++)
		{
			uint8_t    *p = bmp + 54 + (size_t) y * row + (size_t) x * 3;

			p[0] = (uint8_t) (x * 3);
			p[1] = (uint8_t) (y * 5);
			p[2] = 200;
		}
	check_interruptible("generated 70x50 bmp", bmp, len, h);
	free(bmp);
}

TEST_SUITE(interrupt_jpeg)
{
	jb_buf		jpeg = {0};

	CHECK(jb_gradient_jpeg(320, 240, 90, &jpeg), "320x240 baseline jpeg");
	if (jpeg.data != NULL)
		check_interruptible("generated 320x240 baseline jpeg", jpeg.data, jpeg.len, 240 / 8);
	jb_free(&jpeg);
	/* progressive: every scan is read inside jpeg_start_decompress */
	check_fixture("formats/jpeg_progressive_420.jpg", 672 / 8);
	/* CMYK and a wide-gamut profile: the colour conversion is interrupted too */
	check_fixture("formats/jpeg_cmyk_ycck_adobe.jpg", 672);
	check_fixture("exif/icc_adobergb.jpg", 672);
}

TEST_SUITE(interrupt_png)
{
	check_png();
}

TEST_SUITE(interrupt_gif)
{
	/* a 10799x10 GIF: one check per row */
	check_fixture("bad/polyglot_gif_js.gif", 10);
}

TEST_SUITE(interrupt_webp)
{
	/* 47 KB, fed to the incremental decoder in slices */
	check_fixture("formats/webp_lossy.webp", 2);
	check_fixture("formats/webp_lossy_alpha.webp", 2);
}

TEST_SUITE(interrupt_tiff)
{
	check_tiff();
}

TEST_SUITE(interrupt_bmp)
{
	check_bmp();
}

TEST_SUITE(interrupt_heif)
{
	/* libheif decodes in one call: asked before and after it */
	check_fixture("formats/heic_x265.heic", 2);
	check_fixture("formats/avif_aom.avif", 2);
}

TEST_SUITE(interrupt_hook_absent)
{
	jb_buf		jpeg = {0};
	img_raster	r;
	img_error	err = {0};

	/* no hook installed: nothing is ever interrupted */
	CHECK(jb_gradient_jpeg(64, 48, 90, &jpeg), "64x48 jpeg");
	CHECK(jb_load(jpeg.data, jpeg.len, 0, 0, &r, NULL, &err) == IMG_OK, "loads without a hook: %s",
		  err.message);
	img_raster_free(&r);
	jb_free(&jpeg);
	CHECK(strcmp(img_status_name(IMG_ERR_INTERRUPTED), "interrupted") == 0, "status name is \"interrupted\"");
}
