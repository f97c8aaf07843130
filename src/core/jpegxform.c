/*
 * jpegxform.c — one lossless JPEG transform with TurboJPEG's tjTransform:
 * the DCT coefficients are rearranged (flip, rotate, transpose) and/or cut
 * to a region, never decoded to pixels, and every marker but the image's
 * own tables is dropped (TJXOPT_COPYNONE).  Shared by the upload path
 * (normalise.c, EXIF orientation) and image edits (edit.c).
 */
#include "codec.h"

#include <stdatomic.h>
#include <string.h>
#include <turbojpeg.h>

static atomic_ulong transforms_run;	/* for tests: tjTransform calls so far */

unsigned long
img_jpeg_transforms_run(void)
{
	return atomic_load(&transforms_run);
}

/*
 * tjTransform reads every coefficient, then writes the new file, in one
 * call.  Its custom filter is called block row by block row in between;
 * failing it when the caller's interrupt hook asks to stop makes
 * tjTransform skip the write and return through its own cleanup.
 */
static int
interrupt_between_read_and_write(short *coeffs, tjregion array_region, tjregion plane_region,
								 int component, int transform_index, tjtransform *transform)
{
	bool	   *interrupted = transform->data;

	(void) coeffs;
	(void) array_region;
	(void) plane_region;
	(void) component;
	(void) transform_index;
	if (img_interrupt_requested())
	{
		*interrupted = true;
		return -1;
	}
	return 0;
}

img_status
img_jpeg_transform(const uint8_t *data, size_t len, const img_jpeg_xform *xf,
				   img_buffer *out, bool *imperfect, img_error *err)
{
	tjhandle	tj;
	tjtransform xform;
	unsigned char *dst = NULL;
	unsigned long dst_len = 0;
	bool		interrupted = false;
	int			rc;
	img_status	st;

	memset(out, 0, sizeof(*out));
	*imperfect = false;
	st = img_check_interrupt(err, "transforming jpeg");
	if (st != IMG_OK)
		return st;
	tj = tjInitTransform();
	if (tj == NULL)
		return img_fail(err, IMG_ERR_NO_MEMORY, "cannot initialise the jpeg transformer");

	memset(&xform, 0, sizeof(xform));
	xform.op = xf->op;
	xform.options = TJXOPT_COPYNONE;
	if (xf->op != TJXOP_NONE)
		xform.options |= xf->crop && xf->crop_excludes_partial_mcus ? TJXOPT_TRIM : TJXOPT_PERFECT;
	if (xf->crop)
	{
		xform.options |= TJXOPT_CROP;
		xform.r.x = (int) xf->crop_x;
		xform.r.y = (int) xf->crop_y;
		xform.r.w = (int) xf->crop_w;
		xform.r.h = (int) xf->crop_h;
	}
	xform.customFilter = interrupt_between_read_and_write;
	xform.data = &interrupted;

	atomic_fetch_add(&transforms_run, 1);
	rc = tjTransform(tj, data, (unsigned long) len, 1, &dst, &dst_len, &xform,
					 TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS);
	if (rc != 0)
	{
		const char *msg = tjGetErrorStr2(tj);

		if (interrupted)
			img_fail(err, IMG_ERR_INTERRUPTED, "interrupted while transforming jpeg");
		else if (xf->op != TJXOP_NONE && strstr(msg, "perfect") != NULL)
			*imperfect = true;
		else
			img_fail(err, strstr(msg, "Premature end") ? IMG_ERR_TRUNCATED : IMG_ERR_CORRUPT,
					 "jpeg is corrupt: %s", msg);
		if (dst)
			tjFree(dst);
		tjDestroy(tj);
		return *imperfect ? IMG_OK : err->status;
	}
	tjDestroy(tj);
	/* the write half cannot be interrupted: ask once it is done */
	st = img_check_interrupt(err, "transforming jpeg");
	if (st != IMG_OK)
	{
		tjFree(dst);
		return st;
	}

	out->data = img_alloc(dst_len);
	if (out->data == NULL)
	{
		tjFree(dst);
		return img_fail(err, IMG_ERR_NO_MEMORY, "out of memory copying the transformed jpeg");
	}
	memcpy(out->data, dst, dst_len);
	out->len = dst_len;
	tjFree(dst);
	return IMG_OK;
}
