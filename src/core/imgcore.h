/*
 * imgcore.h — the imgmod image core: sniff, limits, decode, orient, colour,
 * resize, encode.
 *
 * Plain C11 with no PostgreSQL dependency, so the same code is linked into
 * the extension, the origin server, the unit tests, the fuzz targets and the
 * benchmarks.  Functions never abort and never longjmp out: every failure is
 * an img_status plus a human-readable message in an img_error.
 */
#ifndef IMGCORE_H
#define IMGCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- formats */

typedef enum img_format
{
	IMG_FORMAT_UNKNOWN = 0,
	/* accepted raster formats */
	IMG_FORMAT_JPEG,
	IMG_FORMAT_PNG,
	IMG_FORMAT_GIF,
	IMG_FORMAT_WEBP,
	IMG_FORMAT_HEIF,
	IMG_FORMAT_AVIF,
	IMG_FORMAT_TIFF,
	IMG_FORMAT_BMP,
	/* recognised by magic number, but refused */
	IMG_FORMAT_JXL,
	IMG_FORMAT_JP2,
	IMG_FORMAT_ICO,
	IMG_FORMAT_PNM,
	IMG_FORMAT_SVG,
	IMG_FORMAT_XML,
	IMG_FORMAT_HTML,
	IMG_FORMAT_PDF,
	IMG_FORMAT_POSTSCRIPT,
	IMG_FORMAT_ZIP,
	IMG_FORMAT_GZIP,
	IMG_FORMAT_ELF,
	IMG_FORMAT_PE,
	IMG_FORMAT_SCRIPT,
	IMG_FORMAT_TEXT,
	IMG_FORMAT_EMPTY,
	IMG_FORMAT_COUNT
} img_format;

/* Short lowercase name ("jpeg", "png", "svg", ...). */
const char *img_format_name(img_format format);
/* Canonical MIME type of a format, or NULL when it has none worth naming. */
const char *img_format_mime(img_format format);
/* True for the formats imgmod decodes. */
bool		img_format_is_accepted(img_format format);
/* Decide the type from the first bytes.  Never looks at a file name. */
img_format	img_sniff(const uint8_t *data, size_t len);
/*
 * Which format a file name's extension or a content type claims; UNKNOWN
 * when the claim names nothing we know.  Either argument may be NULL.
 */
img_format	img_format_from_name(const char *filename);
img_format	img_format_from_mime(const char *content_type);

/* ----------------------------------------------------------------- status */

typedef enum img_status
{
	IMG_OK = 0,
	IMG_ERR_EMPTY,				/* zero bytes */
	IMG_ERR_UNKNOWN_FORMAT,		/* magic number matches nothing we know */
	IMG_ERR_UNSUPPORTED_FORMAT, /* known, but not an accepted raster type */
	IMG_ERR_TYPE_MISMATCH,		/* claimed name/type disagrees with the bytes */
	IMG_ERR_TOO_MANY_BYTES,		/* input larger than max_bytes */
	IMG_ERR_BAD_DIMENSIONS,		/* zero width/height or side over max_side */
	IMG_ERR_TOO_MANY_PIXELS,	/* width*height over max_pixels */
	IMG_ERR_TOO_MANY_FRAMES,	/* animation longer than max_frames */
	IMG_ERR_TOO_MANY_SCANS,		/* progressive JPEG with too many scans */
	IMG_ERR_METADATA_TOO_LARGE, /* a metadata block over its bound */
	IMG_ERR_TRUNCATED,			/* data ends early */
	IMG_ERR_CORRUPT,			/* decoder found invalid data or warned */
	IMG_ERR_NO_MEMORY,
	IMG_ERR_INTERNAL,
	IMG_ERR_INTERRUPTED,		/* the caller's interrupt hook asked to stop */
	IMG_ERR_BAD_EDIT,			/* an edit operation that cannot apply (img_edit_plan) */
	IMG_STATUS_COUNT
} img_status;

/* Stable machine name of a status, e.g. "too_many_pixels". */
const char *img_status_name(img_status status);

#define IMG_ERROR_MESSAGE_MAX 256

typedef struct img_error
{
	img_status	status;
	char		message[IMG_ERROR_MESSAGE_MAX];
} img_error;

/* Records status and a printf-style message; returns status. */
img_status	img_fail(img_error *err, img_status status, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

/* -------------------------------------------------------------- allocator */

/*
 * All buffers the core hands back (rasters, encoded JPEGs, ICC copies) come
 * from this allocator.  The extension, tests and fuzzers can install their
 * own (for accounting or failure injection); the default is malloc/free.
 * Third-party codecs keep their own allocation; the core bounds what they
 * may allocate through the limits below.
 *
 * The allocator is the calling thread's: img_set_allocator affects only the
 * thread that calls it.  Helper threads a render may start (see
 * img_render_options) use malloc for their scratch and never touch the
 * caller's allocator; everything handed back to the caller comes from it.
 */
typedef struct img_allocator
{
	void	   *(*alloc) (size_t size, void *ctx);
	void	   *(*realloc) (void *ptr, size_t size, void *ctx);
	void		(*free) (void *ptr, void *ctx);
	void	   *ctx;
} img_allocator;

void		img_set_allocator(const img_allocator *allocator);	/* NULL restores malloc */
void	   *img_alloc(size_t size);
void	   *img_realloc(void *ptr, size_t size);
void		img_free(void *ptr);

/* -------------------------------------------------------------- interrupt */

/*
 * Decoding, resampling and encoding a large image takes seconds; a caller
 * that must be able to stop it (a statement timeout, a cancel request)
 * installs a hook.  The core calls it between rows, strips and scanlines
 * and, when it returns true, frees what it holds and returns
 * IMG_ERR_INTERRUPTED through the normal error path: the hook must only
 * answer, never raise or longjmp, because third-party decoders are on the
 * stack.  Where a library decodes in one call the hook is asked before and
 * after it (HEIF, animated WebP, and the read and write halves of the
 * lossless JPEG transform).  NULL (the default) never interrupts.
 */
typedef bool (*img_interrupt_hook) (void *ctx);

void		img_set_interrupt_hook(img_interrupt_hook hook, void *ctx);

/* ----------------------------------------------------------------- limits */

typedef struct img_limits
{
	size_t		max_bytes;		/* input size */
	uint64_t	max_pixels;		/* width * height of the (first) frame */
	uint32_t	max_side;		/* longest side */
	uint32_t	max_frames;		/* frames in an animation */
	uint32_t	max_scans;		/* progressive JPEG scans */
	size_t		max_metadata_bytes; /* one metadata block, inflated */
} img_limits;

/* Defaults: 50 MiB, 100 Mpx, 20000 px, 1000 frames, 100 scans, 8 MiB. */
void		img_limits_default(img_limits *limits);

/* ------------------------------------------------------------------ probe */

typedef enum img_colour_model
{
	IMG_COLOUR_UNKNOWN = 0,
	IMG_COLOUR_GRAY,
	IMG_COLOUR_RGB,
	IMG_COLOUR_PALETTE,
	IMG_COLOUR_CMYK,
	IMG_COLOUR_YCCK,
	IMG_COLOUR_YCBCR,
} img_colour_model;

const char *img_colour_model_name(img_colour_model model);

typedef struct img_info
{
	img_format	format;
	uint32_t	width;			/* as stored, before orientation */
	uint32_t	height;
	uint32_t	frames;			/* 1 for still images */
	uint8_t		orientation;	/* EXIF 1..8; 1 when absent or invalid */
	uint8_t		bit_depth;		/* per sample */
	img_colour_model colour;
	bool		has_alpha;
	bool		progressive;	/* JPEG progressive, PNG Adam7, GIF interlace */
	uint32_t	scans;			/* JPEG scans counted in the header walk */
	/* metadata found (not interpreted beyond orientation) */
	bool		has_icc;
	bool		has_exif;
	bool		has_gps;
	bool		has_xmp;
	bool		has_iptc;
	bool		has_comment;
	bool		has_trailing_data;	/* bytes after the end of the image */
	size_t		icc_bytes;
	char		icc_description[64];	/* from the profile's desc tag */
} img_info;

/*
 * Header-only inspection: detects the format, reads dimensions, frames,
 * orientation and which metadata is present, and checks every limit that
 * can be checked without decoding pixels.  Returns IMG_OK or the reason the
 * input is refused; info is filled as far as it could be read either way.
 */
img_status	img_probe(const uint8_t *data, size_t len, const img_limits *limits,
					  img_info *info, img_error *err);

/* ----------------------------------------------------------------- raster */

/* 8-bit interleaved pixels; channels is 3 (RGB) or 4 (RGBA). */
typedef struct img_raster
{
	uint32_t	width;
	uint32_t	height;
	uint32_t	channels;
	size_t		stride;			/* bytes per row */
	uint8_t    *pixels;			/* img_alloc'd */
} img_raster;

img_status	img_raster_init(img_raster *raster, uint32_t width, uint32_t height,
							uint32_t channels, img_error *err);
void		img_raster_free(img_raster *raster);

/* ------------------------------------------------------------------- load */

typedef struct img_load_options
{
	/*
	 * Smallest output the caller needs, after orientation.  The decoder may
	 * shrink on load (JPEG DCT scaling) but never below this; 0 means full
	 * resolution.
	 */
	uint32_t	min_width;
	uint32_t	min_height;
	uint8_t		background[3];	/* alpha is flattened onto this colour */
	bool		apply_orientation;
	/*
	 * Threads the decode may use, the caller's included (0 or 1: only the
	 * caller's).  Large single-scan JPEGs are decoded in bands, one per
	 * thread; the pixels are the same whatever the count.
	 */
	unsigned	threads;
} img_load_options;

void		img_load_options_default(img_load_options *options);

/*
 * Probe, then decode the first frame to 8-bit sRGB RGB: orientation applied,
 * ICC / CMYK / 16-bit / palette / grey converted, alpha flattened.  Decoder
 * warnings are errors.  info (optional) receives the probe result.
 */
img_status	img_load(const uint8_t *data, size_t len, const img_limits *limits,
					 const img_load_options *options, img_raster *out,
					 img_info *info, img_error *err);

/* ----------------------------------------------------------------- resize */

typedef enum img_fit
{
	IMG_FIT_CONTAIN = 0,		/* fit inside the box, keep aspect */
	IMG_FIT_COVER,				/* fill the box, crop the overflow (centred) */
	IMG_FIT_PAD,				/* contain, then pad to the box */
} img_fit;

const char *img_fit_name(img_fit fit);
bool		img_fit_from_name(const char *name, img_fit *fit);

/* A variant's geometry: width/height 0 means "unconstrained". */
typedef struct img_geometry
{
	uint32_t	box_width;
	uint32_t	box_height;
	img_fit		fit;
	bool		allow_upscale;
} img_geometry;

/* Where the source rectangle lands in the output. */
typedef struct img_placement
{
	uint32_t	out_width;		/* final canvas */
	uint32_t	out_height;
	/* source crop (cover) */
	double		src_x, src_y, src_w, src_h;
	/* scaled image inside the canvas (pad) */
	uint32_t	dst_x, dst_y, dst_w, dst_h;
} img_placement;

void		img_geometry_place(uint32_t src_width, uint32_t src_height,
							   const img_geometry *geometry, img_placement *placement);

/* A focal point as fractions of the image's width and height (0..1, from the top-left). */
typedef struct img_focus
{
	double		x;
	double		y;
} img_focus;

/*
 * img_geometry_place, with a cover crop centred on focus instead of the
 * image's centre, clamped inside the image.  focus NULL: the centre, exactly
 * as img_geometry_place.  Output sizes never depend on the focal point.
 */
void		img_geometry_place_focus(uint32_t src_width, uint32_t src_height,
									 const img_geometry *geometry, const img_focus *focus,
									 img_placement *placement);

/* High-quality Lanczos-3 resample of a crop of src into dst (allocated). */
img_status	img_resize(const img_raster *src, double src_x, double src_y,
					   double src_w, double src_h, uint32_t dst_width,
					   uint32_t dst_height, img_raster *dst, img_error *err);

/* Apply a placement: crop/scale/pad as img_geometry_place decided. */
img_status	img_render_geometry(const img_raster *src, const img_placement *placement,
								const uint8_t background[3], img_raster *dst,
								img_error *err);

/* ----------------------------------------------------------------- orient */

/* Returns a new raster with EXIF orientation 1..8 applied (upright). */
img_status	img_orient(const img_raster *src, int orientation, img_raster *dst,
					   img_error *err);

/* ----------------------------------------------------------------- encode */

typedef struct img_buffer
{
	uint8_t    *data;			/* img_alloc'd */
	size_t		len;
} img_buffer;

void		img_buffer_free(img_buffer *buffer);

/* Baseline JPEG, no metadata at all; 4:2:0 below quality 90, else 4:4:4. */
img_status	img_encode_jpeg(const img_raster *raster, int quality,
							img_buffer *out, img_error *err);

/* -------------------------------------------------------------- normalise */

typedef struct img_normalise_options
{
	int			master_quality; /* re-encode quality of the full-res master */
	uint8_t		background[3];
} img_normalise_options;

typedef enum img_master_method
{
	IMG_MASTER_LOSSLESS = 1,	/* JPEG coefficients kept, metadata dropped */
	IMG_MASTER_REENCODED,		/* decoded, normalised, encoded again */
} img_master_method;

const char *img_master_method_name(img_master_method method);

typedef struct img_normalised
{
	img_buffer	master;			/* full-resolution sRGB JPEG, no metadata */
	uint32_t	width;			/* upright */
	uint32_t	height;
	img_master_method method;
	img_info	info;			/* the source's probe result */
} img_normalised;

/*
 * The upload path: probe under limits, then produce the full-resolution
 * master: for JPEG input that needs no colour change, the coefficients are
 * kept and orientation applied losslessly when the geometry allows; all
 * other input is decoded, oriented, converted to sRGB and encoded.  Either
 * way every byte of metadata is gone.
 */
img_status	img_normalise(const uint8_t *data, size_t len, const img_limits *limits,
						  const img_normalise_options *options, img_normalised *out,
						  img_error *err);
void		img_normalised_free(img_normalised *normalised);

/* ------------------------------------------------------------------- edit */

/*
 * Edits of an image's full-resolution master (edit.c): rotate, flip, crop,
 * pad and a focal point, applied in order in upright pixel coordinates.
 *
 * Lossless when the JPEG allows it: a run of rotations and flips is one
 * composed transform of the DCT coefficients when it moves no partial MCU
 * inside the image (TJXOPT_PERFECT), and a crop whose left/top edges fall
 * on MCU boundaries cuts coefficients (its right/bottom edges are free).
 * Anything else (an unaligned crop, a pad, an imperfect transform, a base
 * that is not an upright sRGB JPEG) decodes the base once, applies every
 * op to the pixels and encodes once: IMG_MASTER_REENCODED.
 *
 * Coordinates: crop and focus take pixels, or with ratio fractions 0..1 of
 * the current size (after the previous ops).  A crop's edges are rounded
 * to the nearest pixel, halves up (left = floor(x + 0.5), right =
 * floor(x + width + 0.5), in pixels once a ratio is multiplied by the
 * current size), so adjacent crops tile; the rounded rectangle must be
 * non-empty and inside the image.  A focal point is a position, not a
 * pixel: 0..width by 0..height from the top-left corner, edges included.
 * Later ops move it with the pixels; a crop that leaves it outside moves
 * it to the nearest point inside the crop.  The last focus op wins.
 * Pad extends the canvas to aspect_w:aspect_h (each 1..IMG_EDIT_MAX_ASPECT)
 * around the centred image (an odd leftover pixel goes right/bottom), in
 * the background colour, never scaling; a pad to the current aspect does
 * nothing.  Ops that change nothing (a crop of the whole image, a pad to
 * the aspect it has, four quarter turns) cost nothing; an edit that
 * changes no pixel returns the base's bytes (method lossless).
 */
/*
 * The longest list applied at once.  More than one imgmod.edit() call may
 * give (16): the extension replays an image's chain of edits on the oldest
 * master it still has, so edits on edits cost one generation, not one each.
 */
#define IMG_EDIT_MAX_OPS 64
#define IMG_EDIT_MAX_ASPECT 10000

typedef enum img_edit_kind
{
	IMG_EDIT_ROTATE,
	IMG_EDIT_FLIP,
	IMG_EDIT_CROP,
	IMG_EDIT_PAD,
	IMG_EDIT_FOCUS,
} img_edit_kind;

/* Short lowercase name ("rotate", "flip", ...), "unknown" for others. */
const char *img_edit_kind_name(img_edit_kind kind);

typedef struct img_edit_op
{
	img_edit_kind kind;
	int			degrees;		/* rotate: 90, 180, 270 clockwise (as jpegtran and CSS) */
	bool		vertical;		/* flip: false = mirror left-right, true = upside down */
	bool		ratio;			/* crop/focus: x, y, width, height are 0..1 fractions */
	double		x,
				y,
				width,
				height;			/* crop rectangle; focus uses x, y */
	uint32_t	aspect_w,
				aspect_h;		/* pad: target aspect, e.g. 1:1 */
	uint8_t		background[3];	/* pad colour */
} img_edit_op;

typedef struct img_edit_result
{
	img_buffer	master;			/* the new full-resolution master JPEG, no metadata */
	uint32_t	width;
	uint32_t	height;
	img_master_method method;	/* LOSSLESS: every op done on DCT coefficients */
	bool		has_focus;
	double		focus_x;		/* focal point, 0..1 fractions of the result */
	double		focus_y;
} img_edit_result;

/*
 * Check ops against a width x height base without touching pixels and
 * compute the result's size.  Refuses n == 0 or n > IMG_EDIT_MAX_OPS, a
 * crop outside the image or empty, degrees other than 90/180/270, a bad
 * aspect, a focal point outside the image, a coordinate
 * that is not a finite number, a negative one, an unknown kind
 * (IMG_ERR_BAD_EDIT), and a result (or an intermediate size) over
 * limits->max_side (IMG_ERR_BAD_DIMENSIONS) or max_pixels
 * (IMG_ERR_TOO_MANY_PIXELS).  *bad_index is the first bad op's 0-based
 * index (IMG_EDIT_MAX_OPS for too many ops), -1 when the list as a whole
 * or the base size is at fault or on success; err's message names the
 * index, the kind and the reason.  limits NULL: the defaults.  out_w,
 * out_h and bad_index may be NULL.
 */
img_status	img_edit_plan(uint32_t width, uint32_t height, const img_edit_op *ops, size_t n,
						  const img_limits *limits, uint32_t *out_w, uint32_t *out_h,
						  int *bad_index, img_error *err);

/*
 * Apply ops to a master (probed under limits first), losslessly when
 * possible (see above), else one decode, every op in pixel space and one
 * encode at reencode_quality (1..100; others mean 80).  Fails with
 * img_edit_plan's status when the ops do not plan; on any failure out is
 * empty.
 */
img_status	img_edit_apply(const uint8_t *jpeg, size_t len, const img_limits *limits,
						   const img_edit_op *ops, size_t n, int reencode_quality,
						   img_edit_result *out, img_error *err);
void		img_edit_result_free(img_edit_result *result);

/* ----------------------------------------------------------------- render */

typedef struct img_variant_spec
{
	img_geometry geometry;
	int			quality;
	const char *name;			/* for error messages; NULL: "variant <n>" */
} img_variant_spec;

typedef struct img_variant_result
{
	img_status	status;
	uint32_t	width;
	uint32_t	height;
	img_buffer	jpeg;
} img_variant_result;

/*
 * One decode of an (already normalised) image feeds every variant: shrink
 * on load to what the largest variant needs, then resample each variant,
 * largest first, each from the best intermediate available.
 * results has n entries, in the order of specs.
 *
 * Every output size is planned before anything is decoded or allocated: a
 * variant whose canvas would have a side over limits->max_side or more than
 * limits->max_pixels (an upscaling preset with a free side on a long, thin
 * image) fails the whole call with IMG_ERR_BAD_DIMENSIONS or
 * IMG_ERR_TOO_MANY_PIXELS and a message naming the variant and its size;
 * that variant's result carries the status, and no variant is produced.
 */
img_status	img_render_variants(const uint8_t *data, size_t len,
								const img_limits *limits,
								const img_variant_spec *specs, size_t n,
								const uint8_t background[3],
								img_variant_result *results, img_error *err);

/*
 * img_render_variants with a focal point (fractions of the upright image,
 * e.g. img_edit_result's): cover variants crop around it.  focus NULL is
 * img_render_variants.
 */
img_status	img_render_variants_focus(const uint8_t *data, size_t len,
									  const img_limits *limits,
									  const img_variant_spec *specs, size_t n,
									  const uint8_t background[3], const img_focus *focus,
									  img_variant_result *results, img_error *err);
void		img_variant_results_free(img_variant_result *results, size_t n);

/*
 * How many threads a render may use at this moment, at least 1.  Asked
 * before each step that can be split (the decode, each resize, the
 * encodes), so a caller sharing the machine can answer with the cores that
 * are idle right now.
 */
typedef unsigned (*img_thread_budget) (void *ctx);

typedef struct img_render_options
{
	const img_focus *focus;		/* NULL: cover crops are centred */
	unsigned	threads;		/* most threads, the caller's included; 0 or 1: its own only */
	img_thread_budget budget;	/* NULL: threads at every step */
	void	   *budget_ctx;
	unsigned	threads_used;	/* out: the most threads any step ran on */
} img_render_options;

/*
 * img_render_variants_focus with options.  Large single-scan JPEG sources
 * are decoded in bands, large resizes are split into bands of rows and the
 * encodes are shared out, each on up to options->threads threads (helper
 * threads started and joined within the call; see img_set_allocator).  The
 * results are the same bytes whatever the thread count.  options NULL: one
 * thread, centred crops.
 */
img_status	img_render_variants_opts(const uint8_t *data, size_t len,
									 const img_limits *limits,
									 const img_variant_spec *specs, size_t n,
									 const uint8_t background[3],
									 img_render_options *options,
									 img_variant_result *results, img_error *err);

#ifdef __cplusplus
}
#endif

#endif							/* IMGCORE_H */
