/*
 * jpeg_builder.h — JPEG fixtures generated in the unit tests.
 *
 * The JPEG and upload-path suites (test_jpeg.c, test_normalise.c,
 * test_corpus.c) build their inputs here instead of committing them: a
 * synthetic raster (gradient or solid colour) is encoded with the core's
 * own encoder, so its size and pixels are known exactly, and metadata
 * segments (EXIF in either byte order, XMP, ICC, Photoshop/IPTC, COM) and
 * data after EOI are spliced in by hand, byte by byte.  Each metadata
 * case is then a few lines of code rather than a large file, and the
 * tests carry no large binaries.
 *
 * The second half holds the small checks the same suites share on what
 * the core makes of such files: decode, normalise, search the bytes,
 * compare pixels.
 */
#ifndef IMGMOD_JPEG_BUILDER_H
#define IMGMOD_JPEG_BUILDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imgcore.h"

#include <stdio.h>
#include <jpeglib.h>

/* A malloc'd byte string: a JPEG, or a run of marker segments. */
typedef struct jb_buf
{
	uint8_t    *data;			/* malloc'd */
	size_t		len;
} jb_buf;

/*
 * How a suite asks libjpeg to write a JPEG (jb_write_kind): the chroma
 * sampling, grey, progression, scan layout, entropy coding, restart
 * interval, component ids and the JFIF/Adobe markers.
 */
typedef struct jb_jpeg_kind
{
	const char *name;
	int			h0,
				v0;				/* luma sampling; chroma is 1x1 */
	bool		grey;
	bool		progressive;
	bool		scan_per_component; /* sequential, not interleaved */
	bool		arithmetic;
	bool		optimise;
	int			restart_rows;	/* restart interval in MCU rows */
	unsigned	restart_mcus;	/* or in MCUs */
	int			ids;			/* 0: 1,2,3; 'R': 'R','G','B' */
	bool		jfif;			/* libjpeg's default for YCbCr and grey */
	bool		adobe;
} jb_jpeg_kind;

/* Encodes the RGB raster r with libjpeg as k says (quality 85), into out. */
bool		jb_write_kind(const jb_jpeg_kind *k, const img_raster *r, jb_buf *out);
/* jb_write_kind with a scan script of n scans (NULL: k's own layout). */
bool		jb_write_kind_scripted(const jb_jpeg_kind *k, const img_raster *r,
								   const jpeg_scan_info *script, int n, jb_buf *out);

/* Frees b's bytes and empties it. */
void		jb_free(jb_buf *b);

/* ------------------------------------------------------------ rasters */

/* Sets the RGB pixel p at (x, y) of a w x h picture. */
typedef void (*jb_pixel_fn) (uint8_t *p, uint32_t x, uint32_t y, uint32_t w, uint32_t h,
							 const void *arg);

/* A new w x h RGB raster, each pixel set by fill (arg passed through). */
bool		jb_make_raster(img_raster *r, uint32_t w, uint32_t h, jb_pixel_fn fill,
						   const void *arg);
/* Horizontal red ramp, vertical green ramp, constant blue. */
bool		jb_make_gradient(img_raster *r, uint32_t w, uint32_t h);
/* One RGB colour throughout. */
bool		jb_make_solid(img_raster *r, uint32_t w, uint32_t h,
						  uint8_t cr, uint8_t cg, uint8_t cb);

/* ----------------------------------------------------------- encoding */

/* Encodes r with the core encoder (baseline, no metadata) into out. */
bool		jb_encode(const img_raster *r, int quality, jb_buf *out);
/* jb_make_gradient + jb_encode. */
bool		jb_gradient_jpeg(uint32_t w, uint32_t h, int quality, jb_buf *out);

/*
 * Moves bytes another library malloc'd (libjpeg's jpeg_mem_dest) into out:
 * copied, then mem is freed.  False (out empty) when the copy fails.
 */
bool		jb_take(jb_buf *out, void *mem, size_t len);

/* ------------------------------------------------ segments and splicing */

/* Appends one marker segment (FF marker length payload) to seg. */
void		jb_add_segment(jb_buf *seg, uint8_t marker, const void *payload, size_t plen);
/* SOI + segments (may be NULL) + the rest of jpeg (after its SOI) + trailer. */
jb_buf		jb_splice(const jb_buf *jpeg, const jb_buf *segments,
					  const void *trailer, size_t tlen);

/* 16- and 32-bit integers, big-endian when be, little-endian otherwise. */
void		jb_put16(uint8_t *p, bool be, unsigned v);
void		jb_put32(uint8_t *p, bool be, uint32_t v);
/* Writes a 12-byte IFD entry header; returns where its 4 value bytes go. */
uint8_t    *jb_ifd_entry(uint8_t *p, bool be, unsigned tag, unsigned type, uint32_t count);

/*
 * An APP1 EXIF payload ("Exif\0\0" + TIFF block): IFD0 with
 * ImageDescription (the canary, when given), Orientation (when 0..65535,
 * i.e. orientation >= 0) and a GPS IFD pointer (when gps).  Returns the
 * payload length.
 */
size_t		jb_build_exif(uint8_t *buf, bool be, int orientation, bool gps, const char *canary);

/* An APP1 XMP payload (namespace + packet) whose title is a canary. */
extern const char jb_xmp_packet[];
extern const size_t jb_xmp_packet_len;

/* APP13 payload: Photoshop 3.0 resource block with one IPTC caption (a canary). */
size_t		jb_build_app13(uint8_t *buf);

/*
 * APP2 payload: "ICC_PROFILE\0" 1 1 + lcms2's built-in sRGB profile.
 * Returns the payload length (0 when it does not fit in cap) and sets
 * *profile_len to the profile's own size.
 */
size_t		jb_build_icc_app2(uint8_t *buf, size_t cap, size_t *profile_len);

/*
 * Appends what a camera or editor writes, each with an IMGMOD-CANARY
 * string: EXIF (byte order be, the orientation tag, a GPS IFD), XMP, an
 * sRGB ICC profile, Photoshop IPTC and a COM segment.
 */
void		jb_add_camera_metadata(jb_buf *seg, bool be, int orientation);

/* ------------------------------------------------ looking at the result */

/* img_normalise with default limits, master quality 90, white background. */
img_status	jb_normalise(const uint8_t *data, size_t len, img_normalised *out, img_error *err);

/*
 * img_load with default limits, shrinking on load to no less than
 * min_w x min_h (0 = no minimum); info may be NULL.
 */
img_status	jb_load(const uint8_t *data, size_t len, uint32_t min_w, uint32_t min_h,
					img_raster *out, img_info *info, img_error *err);

/* jb_load on up to threads threads (img_load_options.threads). */
img_status	jb_load_threads(const uint8_t *data, size_t len, uint32_t min_w, uint32_t min_h,
							unsigned threads, img_raster *out, img_info *info, img_error *err);

/*
 * Walks a JPEG's markers.  True when the structure is sound and the file
 * ends exactly with its EOI; counts[] receives how often each marker
 * occurs (segments between scans included, RSTn inside scans not).
 */
bool		jb_walk_markers(const uint8_t *d, size_t len, int counts[256]);

/* Whether the n bytes of needle occur anywhere in data. */
bool		jb_memfind(const uint8_t *data, size_t len, const void *needle, size_t n);

/* Mean of the first three channels over a w x h rectangle at (x0, y0). */
void		jb_mean_rgb(const img_raster *r, uint32_t x0, uint32_t y0, uint32_t w, uint32_t h,
						double m[3]);

/* Mean absolute difference of two RGB rasters, per sample; 1e9 if sizes differ. */
double		jb_mean_abs_diff(const img_raster *a, const img_raster *b);

#endif
