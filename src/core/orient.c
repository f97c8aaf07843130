/*
 * orient.c — apply an EXIF orientation tag to a decoded raster.
 *
 * The tag says what a viewer must do to the stored pixels to show them
 * upright; img_orient does exactly that and returns a new raster:
 *
 *	 1 nothing				  5 transpose (swap x/y across the main diagonal)
 *	 2 mirror left-right	  6 rotate 90 degrees clockwise
 *	 3 rotate 180			  7 transverse (across the anti-diagonal)
 *	 4 mirror top-bottom	  8 rotate 90 degrees counter-clockwise
 *
 * Tags 5..8 swap width and height.  Any other value is treated as 1.
 *
 * Every tag is expressed as one affine walk over the source: the pixel at
 * destination (dx, dy) is read from origin + dx * step_x + dy * step_y, where
 * the two steps are signed byte offsets (plus or minus one pixel, or plus or
 * minus one source row).  Tags 1..4 walk the source row by row, which is
 * already sequential.  Tags 5..8 read the source down its columns; doing that
 * for a whole destination row at a time would touch a new cache line (and
 * for large images a new page) for every pixel, so the destination is
 * produced in square tiles whose source footprint fits in the L1 cache.
 */
#include "codec.h"

#include <string.h>

/*
 * Side of a tile in pixels.  64 x 64 pixels of RGBA is 16 KiB of source and
 * 16 KiB of destination, which together stay inside a 48 KiB L1 data cache.
 */
#define ORIENT_TILE 64

/*
 * Copy one run of n pixels of exactly 'channels' bytes each, reading with a
 * signed stride.  Inlined with a constant channel count so the compiler turns
 * the per-pixel copy into a single load and store.
 */
static inline void
copy_run(uint8_t *restrict out, const uint8_t *restrict in, ptrdiff_t step,
		 uint32_t n, const uint32_t channels)
{
	/* index from the start so no pointer ever steps outside the buffer */
	for (uint32_t i = 0; i < n; i++)
		memcpy(out + (size_t) i * channels, in + (ptrdiff_t) i * step, channels);
}

static void
copy_run_any(uint8_t *out, const uint8_t *in, ptrdiff_t step, uint32_t n,
			 uint32_t channels)
{
	switch (channels)
	{
		case 1:
			copy_run(out, in, step, n, 1);
			break;
		case 2:
			copy_run(out, in, step, n, 2);
			break;
		case 3:
			copy_run(out, in, step, n, 3);
			break;
		default:
			copy_run(out, in, step, n, 4);
			break;
	}
}

img_status
img_orient(const img_raster *src, int orientation, img_raster *dst, img_error *err)
{
	uint32_t	w,
				h,
				ch;
	uint32_t	dw,
				dh;
	size_t		px;
	ptrdiff_t	stride;
	ptrdiff_t	step_x;			/* source offset per destination column */
	ptrdiff_t	step_y;			/* source offset per destination row */
	const uint8_t *origin;		/* source pixel that lands at (0, 0) */
	img_status	st;

	if (dst == NULL)
		return img_fail(err, IMG_ERR_INTERNAL, "orient: no destination raster");
	memset(dst, 0, sizeof(*dst));
	if (src == NULL || src->pixels == NULL || src->width == 0 ||
		src->height == 0 || src->channels == 0 || src->channels > 4 ||
		src->stride < (size_t) src->width * src->channels)
		return img_fail(err, IMG_ERR_INTERNAL, "orient: invalid source raster");

	w = src->width;
	h = src->height;
	ch = src->channels;
	px = ch;
	/* the raster was allocated, so its size (and any offset in it) fits */
	stride = (ptrdiff_t) src->stride;

	if (orientation < 1 || orientation > 8)
		orientation = 1;
	if (orientation >= 5)
	{
		dw = h;
		dh = w;
	}
	else
	{
		dw = w;
		dh = h;
	}

	st = img_raster_init(dst, dw, dh, ch, err);
	if (st != IMG_OK)
		return st;

	/*
	 * Source coordinates of destination pixel (dx, dy), with W x H the source
	 * size:
	 *	 1 (dx, dy)				  5 (dy, dx)
	 *	 2 (W-1-dx, dy)			  6 (dy, H-1-dx)
	 *	 3 (W-1-dx, H-1-dy)		  7 (W-1-dy, H-1-dx)
	 *	 4 (dx, H-1-dy)			  8 (W-1-dy, dx)
	 */
	switch (orientation)
	{
		case 2:
			origin = src->pixels + (size_t) (w - 1) * px;
			step_x = -(ptrdiff_t) px;
			step_y = stride;
			break;
		case 3:
			origin = src->pixels + (size_t) (h - 1) * src->stride + (size_t) (w - 1) * px;
			step_x = -(ptrdiff_t) px;
			step_y = -stride;
			break;
		case 4:
			origin = src->pixels + (size_t) (h - 1) * src->stride;
			step_x = (ptrdiff_t) px;
			step_y = -stride;
			break;
		case 5:
			origin = src->pixels;
			step_x = stride;
			step_y = (ptrdiff_t) px;
			break;
		case 6:
			origin = src->pixels + (size_t) (h - 1) * src->stride;
			step_x = -stride;
			step_y = (ptrdiff_t) px;
			break;
		case 7:
			origin = src->pixels + (size_t) (h - 1) * src->stride + (size_t) (w - 1) * px;
			step_x = -stride;
			step_y = -(ptrdiff_t) px;
			break;
		case 8:
			origin = src->pixels + (size_t) (w - 1) * px;
			step_x = stride;
			step_y = -(ptrdiff_t) px;
			break;
		default:
			origin = src->pixels;
			step_x = (ptrdiff_t) px;
			step_y = stride;
			break;
	}

	if (orientation == 1 || orientation == 4)
	{
		/* rows stay intact: one memcpy per row */
		for (uint32_t dy = 0; dy < dh; dy++)
		{
			if ((st = img_check_interrupt(err, "orienting")) != IMG_OK)
				goto interrupted;
			memcpy(dst->pixels + (size_t) dy * dst->stride,
				   origin + (ptrdiff_t) dy * step_y, (size_t) dw * px);
		}
	}
	else if (orientation <= 4)
	{
		/* mirrored rows: sequential in both buffers, no tiling needed */
		for (uint32_t dy = 0; dy < dh; dy++)
		{
			if ((st = img_check_interrupt(err, "orienting")) != IMG_OK)
				goto interrupted;
			copy_run_any(dst->pixels + (size_t) dy * dst->stride,
						 origin + (ptrdiff_t) dy * step_y, step_x, dw, ch);
		}
	}
	else
	{
		for (uint32_t ty = 0; ty < dh; ty += ORIENT_TILE)
		{
			uint32_t	th = dh - ty < ORIENT_TILE ? dh - ty : ORIENT_TILE;

			if ((st = img_check_interrupt(err, "orienting")) != IMG_OK)
				goto interrupted;

			for (uint32_t tx = 0; tx < dw; tx += ORIENT_TILE)
			{
				uint32_t	tw = dw - tx < ORIENT_TILE ? dw - tx : ORIENT_TILE;

				for (uint32_t dy = ty; dy < ty + th; dy++)
					copy_run_any(dst->pixels + (size_t) dy * dst->stride + (size_t) tx * px,
								 origin + (ptrdiff_t) dy * step_y + (ptrdiff_t) tx * step_x,
								 step_x, tw, ch);
			}
		}
	}
	return IMG_OK;

interrupted:
	img_raster_free(dst);
	return st;
}
