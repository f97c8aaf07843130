/*
 * codec.h — what each input format module provides to the core.
 *
 * Internal to src/core.  A codec reads one container format: it probes the
 * header (no pixel decoding, no allocation proportional to the claimed
 * dimensions) and decodes the first frame to 8-bit samples, handing back any
 * embedded ICC profile and the orientation the container records.  Colour
 * management, orientation and alpha flattening happen after, in load.c, the
 * same way for every format.
 */
#ifndef IMGCORE_CODEC_H
#define IMGCORE_CODEC_H

#include "imgcore.h"

typedef enum img_sample_layout
{
	IMG_LAYOUT_RGB = 0,			/* 3 channels */
	IMG_LAYOUT_RGBA,			/* 4 channels, straight (not premultiplied) alpha */
	IMG_LAYOUT_CMYK,			/* 4 channels, 0 = no ink */
} img_sample_layout;

typedef struct img_decoded
{
	img_raster	raster;			/* channels follow layout */
	img_sample_layout layout;
	uint8_t    *icc;			/* img_alloc'd copy of the embedded profile, or NULL */
	size_t		icc_len;
	/*
	 * EXIF orientation still to be applied, 1..8.  A codec whose library
	 * already applied the container's transform (HEIF irot/imir) sets 1.
	 */
	uint8_t		orientation;
} img_decoded;

void		img_decoded_free(img_decoded *decoded);

typedef struct img_codec
{
	img_format	format;

	/*
	 * Fill info (format is already set) from the header and check what only
	 * the codec can check (truncated header, zero dimensions, frame count,
	 * metadata bounds).  The generic side/pixel/frame limits are checked by
	 * the caller afterwards, but a codec must not allocate according to
	 * dimensions it has not yet checked against limits.
	 */
	img_status	(*probe) (const uint8_t *data, size_t len, const img_limits *limits,
						  img_info *info, img_error *err);

	/*
	 * Decode the first frame.  min_width/min_height are in stored (not
	 * oriented) orientation; a codec that can shrink on load may return a
	 * smaller raster but never smaller than these (0 = full size).  Any
	 * decoder warning (truncation, CRC, inconsistent data) is an error.
	 * Called only after probe succeeded on the same bytes and limits.
	 */
	img_status	(*decode) (const uint8_t *data, size_t len, const img_limits *limits,
						   const img_info *info, uint32_t min_width,
						   uint32_t min_height, img_decoded *out, img_error *err);

	/*
	 * Optional: decode on up to threads threads, with exactly decode's
	 * result.  NULL for a codec that decodes on one thread only.
	 */
	img_status	(*decode_threads) (const uint8_t *data, size_t len, const img_limits *limits,
								   const img_info *info, uint32_t min_width,
								   uint32_t min_height, unsigned threads,
								   img_decoded *out, img_error *err);
} img_codec;

extern const img_codec img_codec_jpeg;
extern const img_codec img_codec_png;
extern const img_codec img_codec_gif;
extern const img_codec img_codec_webp;
extern const img_codec img_codec_heif;	/* HEIC, HEIF and AVIF */
extern const img_codec img_codec_tiff;
extern const img_codec img_codec_bmp;

/*
 * img_load for bytes that img_probe already accepted with these limits: the
 * header is not parsed a second time.
 */
img_status	img_load_probed(const uint8_t *data, size_t len, const img_limits *limits,
							const img_info *info, const img_load_options *options,
							img_raster *out, img_error *err);

/* The codec for an accepted format, or NULL. */
const img_codec *img_codec_for(img_format format);

/* ---- lossless JPEG transform (jpegxform.c) ---- */

typedef struct img_jpeg_xform
{
	int			op;				/* a TurboJPEG TJXOP_* value */
	bool		crop;			/* also cut to the region below (TJXOPT_CROP) */
	uint32_t	crop_x;			/* in the transformed image; x, y on MCU boundaries */
	uint32_t	crop_y;
	uint32_t	crop_w;			/* 0: to the right/bottom edge */
	uint32_t	crop_h;
	/*
	 * With crop: the region (in the transformed image) leaves out every
	 * partial MCU the flip/rotate would move, as the caller checked, so the
	 * whole image's transform need not be perfect (TJXOPT_TRIM instead of
	 * TJXOPT_PERFECT).
	 */
	bool		crop_excludes_partial_mcus;
} img_jpeg_xform;

/*
 * Transform a JPEG's DCT coefficients without decoding them, dropping every
 * metadata marker.  A flip/rotate is asked to be perfect (TJXOPT_PERFECT):
 * when it cannot be (partial MCUs would move inside the image), returns
 * IMG_OK with *imperfect set and out empty, so the caller can decode and
 * re-encode instead.  Otherwise IMG_OK with out (img_alloc'd) filled, or an
 * error (corrupt, truncated, interrupted, out of memory) with out empty.
 */
img_status	img_jpeg_transform(const uint8_t *data, size_t len, const img_jpeg_xform *xform,
							   img_buffer *out, bool *imperfect, img_error *err);

/* How many transforms img_jpeg_transform has run in this process (for tests). */
unsigned long img_jpeg_transforms_run(void);

/* ---- upload fast path (jpegcopy.c, codecs/jpeg.c) ---- */

/*
 * The master of a JPEG that needs no pixel change, written by copying its
 * frame header, tables and entropy-coded scans as they are, without any
 * APPn or COM segment or byte after EOI, once every scan was
 * entropy-decoded without a single libjpeg warning.  Only single-scan
 * Huffman files are copied unless multi_scan (progressive,
 * non-interleaved).  IMG_OK with out filled; IMG_OK with *unsuitable set
 * and out empty for every other file (another structure, a frame the copy
 * does not reproduce, anything libjpeg or the transform would object to:
 * the caller takes img_jpeg_transform, which gives such files the verdict
 * and message they always had); IMG_ERR_INTERRUPTED or IMG_ERR_NO_MEMORY
 * with out empty.
 */
img_status	img_jpeg_copy_master(const uint8_t *data, size_t len, bool multi_scan,
								 img_buffer *out, bool *unsuitable, img_error *err);

/*
 * The decoding half of img_jpeg_copy_master: every scan entropy-decoded
 * with every warning an error, at most 500 scans, and the checks the
 * transform makes when it writes; read once, through libjpeg's careful
 * Huffman decoder, and a scan must end on its last byte (multi-scan files
 * are read a second time, as the transform reads them; see codecs/jpeg.c).
 * IMG_OK, with *unsuitable unless the file passed and its frame is one a
 * copy reproduces exactly; or IMG_ERR_INTERRUPTED.
 */
img_status	img_jpeg_check_copyable(const uint8_t *data, size_t len, bool multi_scan,
									bool *unsuitable, img_error *err);

/*
 * Whether a JPEG's samples need converting to become sRGB (not YCbCr/grey,
 * or a profile other than sRGB); when not, its coefficients may be kept
 * (normalise.c; edit.c asks the same before editing losslessly).
 */
bool		img_jpeg_needs_colour_change(const img_info *info);

/* ---- helper threads (parallel.c) ---- */

/* The most threads one render step uses, the caller's included. */
#define IMG_MAX_THREADS 8

typedef void (*img_task_fn) (void *arg);

/*
 * Run fn on each of n arguments (args + i * stride bytes), argument 0 on
 * the calling thread and the next ones, up to IMG_MAX_THREADS in all, on
 * helper threads started for this call, and return when all are done.
 * Arguments beyond IMG_MAX_THREADS, and any whose helper cannot be
 * started, run on the caller's thread after its own.  Helpers run with
 * every signal blocked and allocate with malloc (their thread's
 * allocator); fn must not touch the caller's allocator's buffers other
 * than to read or write into them.
 */
void		img_run_tasks(img_task_fn fn, void *args, size_t stride, size_t n);

/* True on a helper thread started by img_run_tasks. */
bool		img_on_helper_thread(void);

/* How many tasks have run on helper threads in this process (for tests). */
unsigned long img_helper_runs(void);

/* How many helper threads the calling thread has started, ever. */
unsigned long img_helpers_started_here(void);

/*
 * A buffer filled on a helper thread (from_helper) is malloc'd: copy it
 * into the calling thread's allocator and free the original.  Nothing to
 * do when from_helper is false.  On failure the buffer is released.
 */
img_status	img_adopt_buffer(img_buffer *buffer, bool from_helper, img_error *err);

/* Fewest output pixels for which a decode is split between threads. */
#define IMG_PARALLEL_MIN_PIXELS (256u * 1024u)

/* Smallest DCT scale (M/8) at which a decode is split between threads. */
#define IMG_PARALLEL_MIN_SCALE 4

/*
 * The threshold in force, IMG_PARALLEL_MIN_PIXELS unless a fuzz target
 * lowers it so that its small inputs are split too.
 */
extern uint64_t img_parallel_decode_min_pixels;

/*
 * img_render_geometry with the resize split into bands of output rows on up
 * to threads threads; the same bytes whatever the count.
 */
img_status	img_render_geometry_threads(const img_raster *src, const img_placement *placement,
										const uint8_t background[3], unsigned threads,
										img_raster *dst, img_error *err);

/* ---- shared helpers (metadata.c, colour.c) ---- */

/*
 * Parse an EXIF block with libexif, bounded by len.  tiff_header is true when
 * data starts at the TIFF header ("II*\0" / "MM\0*", as in PNG eXIf and WebP
 * EXIF chunks) and false when it starts with "Exif\0\0" (JPEG APP1).
 * Malformed EXIF yields orientation 1.  Sets info->has_exif, has_gps and
 * orientation.
 */
void		img_exif_scan(const uint8_t *data, size_t len, bool tiff_header,
						  img_info *info);

/* True when data looks like an XMP packet or XMP namespace header. */
bool		img_is_xmp(const uint8_t *data, size_t len);

/*
 * Whether a profile description names sRGB: such a profile may be dropped,
 * as untagged images are taken as sRGB (colour.c and normalise.c agree on
 * this through here).
 */
bool		img_icc_description_is_srgb(const char *description);

/* Copy the profile's description into info->icc_description (best effort). */
void		img_icc_describe(const uint8_t *icc, size_t len, img_info *info);

/*
 * Convert decoded samples to 8-bit sRGB in place or into a new raster:
 * applies the embedded ICC profile with lcms2 (ignoring a profile that does
 * not parse or does not match the samples), converts CMYK, keeps alpha.
 * On return decoded->layout is RGB or RGBA and icc is released.
 */
img_status	img_colour_to_srgb(img_decoded *decoded, img_error *err);

/*
 * The caller's interrupt hook (alloc.c): true when the work must stop.
 * Called between rows, strips and scanlines, so it must stay cheap.
 */
bool		img_interrupt_requested(void);

/*
 * img_interrupt_requested() as a status: IMG_OK, or IMG_ERR_INTERRUPTED
 * recorded in err with a message naming what was being done.
 */
img_status	img_check_interrupt(img_error *err, const char *doing);

/* Checked multiplication for buffer sizes; false on overflow. */
bool		img_size_mul(size_t a, size_t b, size_t *out);

/* Bounded byte readers. */
static inline uint16_t
img_be16(const uint8_t *p)
{
	return (uint16_t) ((p[0] << 8) | p[1]);
}

static inline uint32_t
img_be32(const uint8_t *p)
{
	return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) | ((uint32_t) p[2] << 8) | p[3];
}

static inline uint16_t
img_le16(const uint8_t *p)
{
	return (uint16_t) (p[0] | (p[1] << 8));
}

static inline uint32_t
img_le32(const uint8_t *p)
{
	return (uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

#endif							/* IMGCORE_CODEC_H */
