/*
 * edit.c — image edits: a new full-resolution master from a base master
 * and a list of rotate / flip / crop / pad / focus operations.
 *
 * The ops are first walked without pixels (img_edit_plan): each is
 * checked against the size the previous ones leave, the focal point is
 * carried along, and the list is reduced to steps.  Consecutive rotations
 * and flips compose into one element of the square's symmetry group
 * (transpose, then mirror x, then mirror y: the eight EXIF orientations),
 * so "rotate 90" four times is no step at all and "rotate 90, rotate 270"
 * needs no perfect geometry; crops and pads are steps of their own.  Each
 * step is marked lossless when TurboJPEG can do it on the coefficients:
 * a composed transform that moves no partial MCU inside the image (the
 * same rule as TJXOPT_PERFECT, on the MCU size the image has at that point,
 * width and height swapped by every transposition), a crop whose left and
 * top edges are on MCU boundaries.
 *
 * img_edit_apply then either runs every step through tjTransform (one call
 * a step) when all are lossless, or decodes the base once, runs every step
 * on the raster and encodes once.  A transform TurboJPEG refuses after all
 * falls back to the pixel route, so the outcome is never worse than a
 * re-encode.
 */
#include "codec.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <turbojpeg.h>

typedef struct dihedral
{
	bool		t;				/* transpose first */
	bool		fx;				/* then mirror x */
	bool		fy;				/* then mirror y */
} dihedral;

typedef enum step_kind
{
	STEP_DIHEDRAL,
	STEP_CROP,
	STEP_PAD,
} step_kind;

typedef struct edit_step
{
	step_kind	kind;
	dihedral	d;				/* STEP_DIHEDRAL */
	uint32_t	x;				/* crop: the region's origin; pad: where the image goes */
	uint32_t	y;
	uint32_t	out_w;			/* size after the step (crop: the region's size) */
	uint32_t	out_h;
	uint8_t		background[3];	/* STEP_PAD */
	bool		lossless;
} edit_step;

typedef struct edit_walk
{
	edit_step	steps[IMG_EDIT_MAX_OPS];
	size_t		nsteps;
	uint32_t	width;			/* of the result */
	uint32_t	height;
	bool		lossless;		/* every step (and no step at all) on coefficients */
	bool		has_focus;
	double		focus_x;		/* position in the result, pixels */
	double		focus_y;
} edit_walk;

/* The walk's state between ops. */
typedef struct walk_state
{
	uint32_t	w;				/* current size, every op so far applied */
	uint32_t	h;
	dihedral	pending;		/* rotations/flips not yet made a step */
	uint32_t	mat_w;			/* size before the pending rotations/flips */
	uint32_t	mat_h;
	uint32_t	mcu_w;			/* MCU of the image at mat_w x mat_h; 0: no lossless route */
	uint32_t	mcu_h;
} walk_state;

static const char *const kind_names[] = {
	[IMG_EDIT_ROTATE] = "rotate",
	[IMG_EDIT_FLIP] = "flip",
	[IMG_EDIT_CROP] = "crop",
	[IMG_EDIT_PAD] = "pad",
	[IMG_EDIT_FOCUS] = "focus",
};

const char *
img_edit_kind_name(img_edit_kind kind)
{
	if ((int) kind < 0 || (size_t) kind >= sizeof(kind_names) / sizeof(kind_names[0]))
		return "unknown";
	return kind_names[kind];
}

void
img_edit_result_free(img_edit_result *result)
{
	if (result == NULL)
		return;
	img_buffer_free(&result->master);
}

/* ------------------------------------------------------- symmetry group */

static bool
dihedral_is_identity(dihedral d)
{
	return !d.t && !d.fx && !d.fy;
}

/* d followed by a quarter turn clockwise: (x, y) -> (H - y, x). */
static dihedral
dihedral_rot90(dihedral d)
{
	return (dihedral) {!d.t, !d.fy, d.fx};
}

/* The EXIF orientation (img_orient) doing d. */
static int
dihedral_orientation(dihedral d)
{
	static const int table[2][2][2] = {
		/* t = 0: [fx][fy] */ {{1, 4}, {2, 3}},
		/* t = 1 */ {{5, 8}, {6, 7}},
	};

	return table[d.t][d.fx][d.fy];
}

/* The TurboJPEG transform doing d. */
static int
dihedral_tjxop(dihedral d)
{
	static const int table[2][2][2] = {
		{{TJXOP_NONE, TJXOP_VFLIP}, {TJXOP_HFLIP, TJXOP_ROT180}},
		{{TJXOP_TRANSPOSE, TJXOP_ROT270}, {TJXOP_ROT90, TJXOP_TRANSVERSE}},
	};

	return table[d.t][d.fx][d.fy];
}

/*
 * TJXOPT_PERFECT's rule: a source axis that ends up mirrored must be a
 * whole number of MCUs, or its partial MCU would move inside the image.
 */
static bool
dihedral_perfect(dihedral d, uint32_t w, uint32_t h, uint32_t mcu_w, uint32_t mcu_h)
{
	bool		mirror_x = d.t ? d.fy : d.fx;
	bool		mirror_y = d.t ? d.fx : d.fy;

	if (mcu_w == 0 || mcu_h == 0)
		return false;
	return (!mirror_x || w % mcu_w == 0) && (!mirror_y || h % mcu_h == 0);
}

/* ------------------------------------------------------------------ plan */

/* limits, or the defaults (filled into *defaults) when it is NULL. */
static const img_limits *
limits_or_defaults(const img_limits *limits, img_limits *defaults)
{
	if (limits != NULL)
		return limits;
	img_limits_default(defaults);
	return defaults;
}

static img_status
bad_op(img_error *err, size_t i, const img_edit_op *op, const char *reason)
{
	return img_fail(err, IMG_ERR_BAD_EDIT, "edit op %zu (%s): %s", i,
					img_edit_kind_name(op->kind), reason);
}

static img_status
check_size(uint64_t w, uint64_t h, const img_limits *limits, size_t i,
		   const img_edit_op *op, img_error *err)
{
	if (w > limits->max_side || h > limits->max_side)
		return img_fail(err, IMG_ERR_BAD_DIMENSIONS,
						"edit op %zu (%s) would make the image %llux%llu: a side exceeds the limit of %u pixels (imgmod.max_side)",
						i, img_edit_kind_name(op->kind), (unsigned long long) w,
						(unsigned long long) h, limits->max_side);
	if (w * h > limits->max_pixels)
		return img_fail(err, IMG_ERR_TOO_MANY_PIXELS,
						"edit op %zu (%s) would make the image %llux%llu = %.1f megapixels, over the limit of %.1f megapixels (imgmod.max_megapixels)",
						i, img_edit_kind_name(op->kind), (unsigned long long) w,
						(unsigned long long) h, (double) (w * h) / 1e6,
						(double) limits->max_pixels / 1e6);
	return IMG_OK;
}

/* Make the pending rotations/flips a step; the state becomes materialised. */
static void
flush_pending(walk_state *s, edit_walk *walk)
{
	if (!dihedral_is_identity(s->pending))
	{
		edit_step  *st = &walk->steps[walk->nsteps++];

		memset(st, 0, sizeof(*st));
		st->kind = STEP_DIHEDRAL;
		st->d = s->pending;
		st->out_w = s->w;
		st->out_h = s->h;
		st->lossless = dihedral_perfect(s->pending, s->mat_w, s->mat_h, s->mcu_w, s->mcu_h);
		if (s->pending.t)
		{
			uint32_t	m = s->mcu_w;

			s->mcu_w = s->mcu_h;
			s->mcu_h = m;
		}
	}
	s->pending = (dihedral) {false, false, false};
	s->mat_w = s->w;
	s->mat_h = s->h;
}

/* Rectangle edges from op coordinates: rounded to nearest, halves up. */
static img_status
crop_rect(const walk_state *s, const img_edit_op *op, size_t i, uint32_t rect[4],
		  img_error *err)
{
	double		x = op->x,
				y = op->y,
				w = op->width,
				h = op->height;
	double		left,
				top,
				right,
				bottom;
	char		why[160];

	if (!isfinite(x) || !isfinite(y) || !isfinite(w) || !isfinite(h))
		return bad_op(err, i, op, "a coordinate is not a finite number");
	if (x < 0 || y < 0)
		return bad_op(err, i, op, "the crop starts outside the image (negative x or y)");
	if (!(w > 0) || !(h > 0))
		return bad_op(err, i, op, "the crop is empty (width and height must be positive)");
	if (op->ratio)
	{
		x *= s->w;
		w *= s->w;
		y *= s->h;
		h *= s->h;
	}
	left = floor(x + 0.5);
	top = floor(y + 0.5);
	right = floor(x + w + 0.5);
	bottom = floor(y + h + 0.5);
	if (right > s->w || bottom > s->h)
	{
		snprintf(why, sizeof(why), "the crop reaches outside the %ux%u image (to x %.0f, y %.0f)",
				 s->w, s->h, right, bottom);
		return bad_op(err, i, op, why);
	}
	if (right <= left || bottom <= top)
		return bad_op(err, i, op, "the crop is empty once rounded to whole pixels");
	rect[0] = (uint32_t) left;
	rect[1] = (uint32_t) top;
	rect[2] = (uint32_t) (right - left);
	rect[3] = (uint32_t) (bottom - top);
	return IMG_OK;
}

/* The canvas a pad makes, as 64-bit sizes (they may be over any limit). */
static img_status
pad_size(const walk_state *s, const img_edit_op *op, size_t i, uint64_t *nw, uint64_t *nh,
		 img_error *err)
{
	uint64_t	aw = op->aspect_w,
				ah = op->aspect_h;
	uint64_t	wide = (uint64_t) s->w * ah;
	uint64_t	tall = (uint64_t) s->h * aw;

	if (aw == 0 || ah == 0 || aw > IMG_EDIT_MAX_ASPECT || ah > IMG_EDIT_MAX_ASPECT)
		return bad_op(err, i, op, "bad aspect: both terms must be 1 to 10000");
	*nw = s->w;
	*nh = s->h;
	if (wide > tall)			/* wider than the aspect: taller canvas */
		*nh = (2 * wide + aw) / (2 * aw);
	else if (wide < tall)
		*nw = (2 * tall + ah) / (2 * ah);
	if (*nw < s->w)
		*nw = s->w;
	if (*nh < s->h)
		*nh = s->h;
	return IMG_OK;
}

static img_status
walk_op(walk_state *s, edit_walk *walk, const img_edit_op *op, size_t i, img_error *err)
{
	switch (op->kind)
	{
		case IMG_EDIT_ROTATE:
			if (op->degrees != 90 && op->degrees != 180 && op->degrees != 270)
				return bad_op(err, i, op, "degrees must be 90, 180 or 270");
			for (int q = 0; q < op->degrees / 90; q++)
			{
				double		fx = walk->focus_x;
				uint32_t	w = s->w;

				walk->focus_x = s->h - walk->focus_y;
				walk->focus_y = fx;
				s->w = s->h;
				s->h = w;
				s->pending = dihedral_rot90(s->pending);
			}
			return IMG_OK;
		case IMG_EDIT_FLIP:
			if (op->vertical)
			{
				walk->focus_y = s->h - walk->focus_y;
				s->pending.fy = !s->pending.fy;
			}
			else
			{
				walk->focus_x = s->w - walk->focus_x;
				s->pending.fx = !s->pending.fx;
			}
			return IMG_OK;
		case IMG_EDIT_CROP:
			{
				uint32_t	r[4] = {0};
				img_status	st = crop_rect(s, op, i, r, err);
				edit_step  *step;

				if (st != IMG_OK)
					return st;
				/*
				 * A crop that cuts the focal point away keeps the nearest
				 * point inside: a later edit's crop must not fail because
				 * of a focus set long before.
				 */
				walk->focus_x = fmin(fmax(walk->focus_x, (double) r[0]), (double) r[0] + r[2]) - r[0];
				walk->focus_y = fmin(fmax(walk->focus_y, (double) r[1]), (double) r[1] + r[3]) - r[1];
				if (r[2] == s->w && r[3] == s->h)
					return IMG_OK;	/* the whole image */
				flush_pending(s, walk);
				step = &walk->steps[walk->nsteps++];
				memset(step, 0, sizeof(*step));
				step->kind = STEP_CROP;
				step->x = r[0];
				step->y = r[1];
				step->out_w = r[2];
				step->out_h = r[3];
				step->lossless = s->mcu_w != 0 && r[0] % s->mcu_w == 0 && r[1] % s->mcu_h == 0;
				s->w = s->mat_w = r[2];
				s->h = s->mat_h = r[3];
				return IMG_OK;
			}
		case IMG_EDIT_PAD:
			{
				uint64_t	nw = 0,
							nh = 0;
				img_status	st = pad_size(s, op, i, &nw, &nh, err);
				edit_step  *step;

				if (st != IMG_OK)
					return st;
				/* before narrowing: the limits bound what a uint32_t holds */
				if (nw > UINT32_MAX || nh > UINT32_MAX)
					return img_fail(err, IMG_ERR_BAD_DIMENSIONS,
									"edit op %zu (pad) would make the image %llux%llu: a side exceeds the limit",
									i, (unsigned long long) nw, (unsigned long long) nh);
				if (nw == s->w && nh == s->h)
					return IMG_OK;	/* already that aspect */
				flush_pending(s, walk);
				step = &walk->steps[walk->nsteps++];
				memset(step, 0, sizeof(*step));
				step->kind = STEP_PAD;
				step->x = (uint32_t) ((nw - s->w) / 2);
				step->y = (uint32_t) ((nh - s->h) / 2);
				step->out_w = (uint32_t) nw;
				step->out_h = (uint32_t) nh;
				memcpy(step->background, op->background, 3);
				step->lossless = false;
				walk->focus_x += step->x;
				walk->focus_y += step->y;
				s->w = s->mat_w = (uint32_t) nw;
				s->h = s->mat_h = (uint32_t) nh;
				return IMG_OK;
			}
		case IMG_EDIT_FOCUS:
			{
				double		x = op->x,
							y = op->y;

				if (!isfinite(x) || !isfinite(y))
					return bad_op(err, i, op, "a coordinate is not a finite number");
				if (op->ratio)
				{
					if (x < 0 || x > 1 || y < 0 || y > 1)
						return bad_op(err, i, op, "the focal point is outside the image (ratios are 0 to 1)");
					x *= s->w;
					y *= s->h;
				}
				else if (x < 0 || x > s->w || y < 0 || y > s->h)
					return bad_op(err, i, op, "the focal point is outside the image");
				walk->has_focus = true;
				walk->focus_x = x;
				walk->focus_y = y;
				return IMG_OK;
			}
	}
	return bad_op(err, i, op, "unknown operation");
}

/*
 * The whole walk: mcu_w x mcu_h is the base's MCU (0 when it cannot be
 * edited losslessly at all).  Fills walk, or fails naming the op.
 */
static img_status
edit_walk_ops(uint32_t width, uint32_t height, uint32_t mcu_w, uint32_t mcu_h,
			  const img_edit_op *ops, size_t n, const img_limits *limits,
			  edit_walk *walk, int *bad_index, img_error *err)
{
	img_limits	defaults;
	walk_state	s;

	*bad_index = -1;
	memset(walk, 0, sizeof(*walk));
	limits = limits_or_defaults(limits, &defaults);
	if (width == 0 || height == 0)
		return img_fail(err, IMG_ERR_BAD_DIMENSIONS, "the base image is %ux%u", width, height);
	if (n == 0 || ops == NULL)
		return img_fail(err, IMG_ERR_BAD_EDIT, "an edit needs at least one operation");
	if (n > IMG_EDIT_MAX_OPS)
	{
		*bad_index = IMG_EDIT_MAX_OPS;
		return img_fail(err, IMG_ERR_BAD_EDIT, "edit op %d: an edit has at most %d operations, got %zu",
						IMG_EDIT_MAX_OPS, IMG_EDIT_MAX_OPS, n);
	}

	memset(&s, 0, sizeof(s));
	s.w = s.mat_w = width;
	s.h = s.mat_h = height;
	s.mcu_w = mcu_w;
	s.mcu_h = mcu_h;
	for (size_t i = 0; i < n; i++)
	{
		img_status	st = walk_op(&s, walk, &ops[i], i, err);

		if (st == IMG_OK)
			st = check_size(s.w, s.h, limits, i, &ops[i], err);
		if (st != IMG_OK)
		{
			*bad_index = (int) i;
			return st;
		}
	}
	flush_pending(&s, walk);
	walk->width = s.w;
	walk->height = s.h;
	walk->lossless = mcu_w != 0;
	for (size_t k = 0; k < walk->nsteps; k++)
		walk->lossless &= walk->steps[k].lossless;
	return IMG_OK;
}

img_status
img_edit_plan(uint32_t width, uint32_t height, const img_edit_op *ops, size_t n,
			  const img_limits *limits, uint32_t *out_w, uint32_t *out_h,
			  int *bad_index, img_error *err)
{
	edit_walk	walk;
	int			bad;
	img_status	st;

	st = edit_walk_ops(width, height, 0, 0, ops, n, limits, &walk, &bad, err);
	if (bad_index != NULL)
		*bad_index = bad;
	if (st != IMG_OK)
		return st;
	if (out_w != NULL)
		*out_w = walk.width;
	if (out_h != NULL)
		*out_h = walk.height;
	return IMG_OK;
}

/* ------------------------------------------------------------------ apply */

/*
 * The base's MCU when its coefficients may be kept: an upright JPEG whose
 * samples are already sRGB with a sampling TurboJPEG knows; else 0 x 0.
 */
static void
lossless_mcu(const uint8_t *data, size_t len, const img_info *info, uint32_t *mcu_w,
			 uint32_t *mcu_h)
{
	tjhandle	tj;
	int			w,
				h,
				subsamp,
				colorspace;

	*mcu_w = *mcu_h = 0;
	if (info->format != IMG_FORMAT_JPEG || info->orientation != 1 ||
		img_jpeg_needs_colour_change(info))
		return;
	tj = tjInitDecompress();
	if (tj == NULL)
		return;
	if (tjDecompressHeader3(tj, data, (unsigned long) len, &w, &h, &subsamp, &colorspace) == 0 &&
		subsamp >= 0 && subsamp < TJ_NUMSAMP)
	{
		*mcu_w = (uint32_t) tjMCUWidth[subsamp];
		*mcu_h = (uint32_t) tjMCUHeight[subsamp];
	}
	tjDestroy(tj);
}

static bool
jpeg_size_is(const img_buffer *b, uint32_t want_w, uint32_t want_h)
{
	tjhandle	tj = tjInitDecompress();
	int			w = 0,
				h = 0,
				subsamp,
				colorspace;
	bool		ok;

	if (tj == NULL)
		return false;
	ok = tjDecompressHeader3(tj, b->data, (unsigned long) b->len, &w, &h, &subsamp, &colorspace) == 0 &&
		(uint32_t) w == want_w && (uint32_t) h == want_h;
	tjDestroy(tj);
	return ok;
}

/*
 * A crop followed by a rotation/flip, as one transform: TurboJPEG crops in
 * the transformed image, so the crop's rectangle (x, y, w, h of a w_in x
 * h_in image with mcu_w x mcu_h MCUs) is carried through d.  A mirrored
 * axis is transformed in whole MCUs only (its partial MCU stays behind at
 * the far edge), so the rectangle is mapped in the image cut to whole MCUs
 * on that axis, which must still contain it.  False when the mapped
 * corner is not on the transformed image's MCU grid: the two steps then
 * run one after the other.
 */
static bool
fold_crop_into_dihedral(const edit_step *crop, dihedral d, uint32_t w_in, uint32_t h_in,
						uint32_t mcu_w, uint32_t mcu_h, img_jpeg_xform *xf)
{
	bool		mirror_x = d.t ? d.fy : d.fx;
	bool		mirror_y = d.t ? d.fx : d.fy;
	uint32_t	fw = mirror_x ? w_in - w_in % mcu_w : w_in;
	uint32_t	fh = mirror_y ? h_in - h_in % mcu_h : h_in;
	uint32_t	rx = crop->x,
				ry = crop->y,
				rw = crop->out_w,
				rh = crop->out_h;
	uint32_t	out_mcu_w = d.t ? mcu_h : mcu_w;
	uint32_t	out_mcu_h = d.t ? mcu_w : mcu_h;
	uint32_t	tmp;

	if (mcu_w == 0 || mcu_h == 0 || rx + rw > fw || ry + rh > fh)
		return false;
	if (d.t)
	{
		tmp = rx, rx = ry, ry = tmp;
		tmp = rw, rw = rh, rh = tmp;
		tmp = fw, fw = fh, fh = tmp;
	}
	if (d.fx)
		rx = fw - rx - rw;
	if (d.fy)
		ry = fh - ry - rh;
	if (rx % out_mcu_w != 0 || ry % out_mcu_h != 0)
		return false;
	memset(xf, 0, sizeof(*xf));
	xf->op = dihedral_tjxop(d);
	xf->crop = true;
	xf->crop_x = rx;
	xf->crop_y = ry;
	xf->crop_w = rw;
	xf->crop_h = rh;
	xf->crop_excludes_partial_mcus = true;
	return true;
}

/*
 * Every step on coefficients, from a base of width x height with
 * mcu_w x mcu_h MCUs; a crop followed by a rotation/flip is one transform.
 * *fallback is set (IMG_OK returned, out empty) when TurboJPEG refuses a
 * step: the caller re-encodes instead.
 */
static img_status
apply_lossless(const uint8_t *data, size_t len, const edit_walk *walk, uint32_t width,
			   uint32_t height, uint32_t mcu_w, uint32_t mcu_h, img_buffer *out,
			   bool *fallback, img_error *err)
{
	img_buffer	cur = {0};

	*fallback = false;
	memset(out, 0, sizeof(*out));
	for (size_t k = 0; k < walk->nsteps; k++)
	{
		const edit_step *step = &walk->steps[k];
		const edit_step *after = k + 1 < walk->nsteps ? &walk->steps[k + 1] : NULL;
		img_jpeg_xform xf = {0};
		img_buffer	next;
		bool		imperfect;
		img_status	st;

		if (step->kind == STEP_CROP && after != NULL && after->kind == STEP_DIHEDRAL &&
			fold_crop_into_dihedral(step, after->d, width, height, mcu_w, mcu_h, &xf))
		{
			step = after;		/* the pair is done with this one transform */
			k++;
		}
		else if (step->kind == STEP_DIHEDRAL)
			xf.op = dihedral_tjxop(step->d);
		else
		{
			xf.op = TJXOP_NONE;
			xf.crop = true;
			xf.crop_x = step->x;
			xf.crop_y = step->y;
			xf.crop_w = step->out_w;
			xf.crop_h = step->out_h;
		}
		st = img_jpeg_transform(cur.data ? cur.data : data, cur.data ? cur.len : len, &xf,
								&next, &imperfect, err);
		img_buffer_free(&cur);
		if (st == IMG_ERR_INTERRUPTED || st == IMG_ERR_NO_MEMORY)
			return st;
		if (st != IMG_OK || imperfect)
		{
			/* the decoder has the last word on a base TurboJPEG refuses */
			*fallback = true;
			return IMG_OK;
		}
		cur = next;
		/* the size and MCU the next step starts from */
		width = step->out_w;
		height = step->out_h;
		if (step->kind == STEP_DIHEDRAL && step->d.t)
		{
			uint32_t	m = mcu_w;

			mcu_w = mcu_h;
			mcu_h = m;
		}
	}
	if (cur.data == NULL)
	{
		/* nothing to change: the base itself */
		cur.data = img_alloc(len ? len : 1);
		if (cur.data == NULL)
			return img_fail(err, IMG_ERR_NO_MEMORY, "out of memory copying the master");
		memcpy(cur.data, data, len);
		cur.len = len;
	}
	if (!jpeg_size_is(&cur, walk->width, walk->height))
	{
		img_buffer_free(&cur);
		return img_fail(err, IMG_ERR_INTERNAL, "lossless edit did not produce the planned %ux%u",
						walk->width, walk->height);
	}
	*out = cur;
	return IMG_OK;
}

/*
 * A w x h part of src at (sx, sy) copied to (dx, dy) of a new out_w x out_h
 * raster filled with background: a crop or a pad.
 */
static img_status
raster_recanvas(const img_raster *src, uint32_t sx, uint32_t sy, uint32_t w, uint32_t h,
				uint32_t dx, uint32_t dy, uint32_t out_w, uint32_t out_h,
				const uint8_t background[3], img_raster *dst, img_error *err)
{
	uint32_t	C = src->channels;
	img_status	st = img_raster_init(dst, out_w, out_h, C, err);

	if (st != IMG_OK)
		return st;
	if (w != out_w || h != out_h)
	{
		for (uint32_t x = 0; x < out_w; x++)
			for (uint32_t c = 0; c < C; c++)
				dst->pixels[(size_t) x * C + c] = c < 3 ? background[c] : 255;
		for (uint32_t y = 1; y < out_h; y++)
			memcpy(dst->pixels + (size_t) y * dst->stride, dst->pixels, (size_t) out_w * C);
	}
	for (uint32_t y = 0; y < h; y++)
		memcpy(dst->pixels + (size_t) (dy + y) * dst->stride + (size_t) dx * C,
			   src->pixels + (size_t) (sy + y) * src->stride + (size_t) sx * C,
			   (size_t) w * C);
	return IMG_OK;
}

/* One decode, every step on the raster, one encode. */
static img_status
apply_pixels(const uint8_t *data, size_t len, const img_limits *limits, const img_info *info,
			 const edit_walk *walk, int quality, img_buffer *out, img_error *err)
{
	static const uint8_t white[3] = {255, 255, 255};
	img_load_options load;
	img_raster	cur;
	img_status	st;

	img_load_options_default(&load);
	st = img_load_probed(data, len, limits, info, &load, &cur, err);
	if (st != IMG_OK)
		return st;
	for (size_t k = 0; k < walk->nsteps && st == IMG_OK; k++)
	{
		const edit_step *step = &walk->steps[k];
		img_raster	next;

		st = img_check_interrupt(err, "editing");
		if (st != IMG_OK)
			break;
		if (step->kind == STEP_DIHEDRAL)
			st = img_orient(&cur, dihedral_orientation(step->d), &next, err);
		else if (step->kind == STEP_CROP)
			st = raster_recanvas(&cur, step->x, step->y, step->out_w, step->out_h, 0, 0,
								 step->out_w, step->out_h, white, &next, err);
		else
			st = raster_recanvas(&cur, 0, 0, cur.width, cur.height, step->x, step->y,
								 step->out_w, step->out_h, step->background, &next, err);
		if (st == IMG_OK)
		{
			img_raster_free(&cur);
			cur = next;
		}
	}
	if (st == IMG_OK && (cur.width != walk->width || cur.height != walk->height))
		st = img_fail(err, IMG_ERR_INTERNAL, "edit produced %ux%u instead of the planned %ux%u",
					  cur.width, cur.height, walk->width, walk->height);
	if (st == IMG_OK)
		st = img_encode_jpeg(&cur, quality, out, err);
	img_raster_free(&cur);
	return st;
}

img_status
img_edit_apply(const uint8_t *jpeg, size_t len, const img_limits *limits,
			   const img_edit_op *ops, size_t n, int reencode_quality,
			   img_edit_result *out, img_error *err)
{
	img_limits	defaults;
	img_info	info;
	edit_walk	walk;
	uint32_t	mcu_w,
				mcu_h;
	int			bad;
	img_status	st;

	memset(out, 0, sizeof(*out));
	limits = limits_or_defaults(limits, &defaults);
	st = img_probe(jpeg, len, limits, &info, err);
	if (st != IMG_OK)
		return st;
	lossless_mcu(jpeg, len, &info, &mcu_w, &mcu_h);
	st = edit_walk_ops(info.orientation >= 5 ? info.height : info.width,
					   info.orientation >= 5 ? info.width : info.height,
					   mcu_w, mcu_h, ops, n, limits, &walk, &bad, err);
	if (st != IMG_OK)
		return st;

	if (walk.lossless)
	{
		bool		fallback;

		st = apply_lossless(jpeg, len, &walk, info.width, info.height, mcu_w, mcu_h,
							&out->master, &fallback, err);
		if (st != IMG_OK)
			return st;
		walk.lossless = !fallback;
	}
	if (!walk.lossless)
	{
		st = apply_pixels(jpeg, len, limits, &info, &walk, reencode_quality, &out->master, err);
		if (st != IMG_OK)
		{
			img_buffer_free(&out->master);
			return st;
		}
	}
	out->width = walk.width;
	out->height = walk.height;
	out->method = walk.lossless ? IMG_MASTER_LOSSLESS : IMG_MASTER_REENCODED;
	out->has_focus = walk.has_focus;
	if (walk.has_focus)
	{
		out->focus_x = fmin(1.0, fmax(0.0, walk.focus_x / walk.width));
		out->focus_y = fmin(1.0, fmax(0.0, walk.focus_y / walk.height));
	}
	return IMG_OK;
}
