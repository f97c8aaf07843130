/*
 * resize.c — variant geometry and the Lanczos-3 resampler.
 *
 * img_geometry_place turns a preset's box and fit mode into a placement
 * (output size, source crop, where the scaled image sits on the canvas);
 * img_resize resamples a possibly fractional crop of a raster to a new size;
 * img_render_geometry applies a placement with img_resize.
 *
 * The resampler is on the hot path of every variant, so it is built for
 * speed without giving up quality:
 *
 *	- Separable Lanczos-3.  When shrinking, the kernel is stretched by the
 *	  shrink factor so every source pixel contributes (proper anti-aliasing);
 *	  when enlarging it keeps its natural support of 3.
 *	- Per-axis contributor tables are computed once: for each output column
 *	  (row) the first source column (row), the tap count and the weights,
 *	  normalised to sum exactly 1 in 14-bit fixed point.  Taps that would
 *	  fall outside the image are dropped and the rest renormalised, so edges
 *	  neither darken nor ring.
 *	- Two passes, streaming, in whichever order does less work (vertical
 *	  first when shrinking, horizontal first when enlarging).  The first
 *	  pass writes 16-bit intermediate samples with six fractional bits, not
 *	  clamped to 0..255, so the second pass still sees the first pass's
 *	  overshoot.  Vertical first keeps one block of ROWS intermediate rows;
 *	  horizontal first keeps a ring of filtered rows just deep enough for
 *	  the widest vertical window.  Memory is a few rows, never a second
 *	  image.
 *	- Integer arithmetic laid out for gcc's auto-vectoriser at -O2: the
 *	  horizontal kernel works on ROWS rows at once from a transposed block
 *	  ([column][row][channel]), so every tap is one multiply-add over a
 *	  fixed number of contiguous lanes with a single weight; the vertical
 *	  kernel is a multiply-add over whole rows, two taps per sweep.  Loop
 *	  counts are whole multiples of the vector width so the "very cheap"
 *	  cost model gcc uses at -O2 accepts them.
 *	- The result does not depend on the instruction set: the same integer
 *	  operations run on every path, so SSE2, AVX2 and unvectorised builds
 *	  give identical bytes.
 */
#include "imgcore.h"
#include "codec.h"

#include <math.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

/*
 * On x86-64 with gcc, the few functions holding the pixel loops are also
 * compiled for AVX2 and the better one is picked once at load time (an
 * ifunc); the portable build stays the SSE2 baseline.  The loops themselves
 * are plain C either way.
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VECTOR_CLONES
#endif

/* Fixed-point weights: 1.0 == 1 << WEIGHT_BITS. */
#define WEIGHT_BITS 14
#define WEIGHT_ONE (1 << WEIGHT_BITS)

/* Fractional bits kept in the intermediate (horizontally filtered) rows. */
#define MID_FRAC_BITS 6
#define HSHIFT (WEIGHT_BITS - MID_FRAC_BITS)
#define VSHIFT (WEIGHT_BITS + MID_FRAC_BITS)

/*
 * Bound on the sum of absolute fixed-point weights of one output sample.
 * Normalised Lanczos-3 weights stay below about 1.5 even where the image
 * edge cuts the kernel; 3.0 keeps every accumulator inside int32 with room
 * to spare (32767 * 3 * 16384 < 2^31).
 */
#define WEIGHT_ABS_MAX (3 * WEIGHT_ONE)

/* Lanczos support (lobes). */
#define LANCZOS_A 3.0

/* Loop counts handed to the vectoriser are rounded to this many elements. */
#define VEC_ALIGN 32

/* ------------------------------------------------------------ geometry */

/*
 * a * b / c rounded to nearest, halves up, and at least 1.  The operands
 * are 32-bit, so the product fits in 64 bits; the remainder test avoids
 * adding anything to a product that may be close to 2^64.
 */
static uint32_t
scale_round(uint32_t a, uint32_t b, uint32_t c)
{
	uint64_t	p = (uint64_t) a * b;
	uint64_t	q = p / c;
	uint64_t	r = p % c;

	if (r * 2 >= c)
		q++;
	if (q < 1)
		q = 1;
	if (q > UINT32_MAX)
		q = UINT32_MAX;
	return (uint32_t) q;
}

/*
 * The contained size of sw x sh in a box whose sides may be 0 (free); at
 * least one side is non-zero.  The constraining side is taken exactly and
 * the other rounded, so the result never exceeds the box.
 */
static void
contain_size(uint32_t sw, uint32_t sh, uint32_t bw, uint32_t bh, bool upscale,
			 uint32_t *ow, uint32_t *oh)
{
	bool		width_limits;

	if (bh == 0)
		width_limits = true;
	else if (bw == 0)
		width_limits = false;
	else
		width_limits = (uint64_t) bw * sh <= (uint64_t) bh * sw;

	if (width_limits)
	{
		if (!upscale && bw >= sw)
		{
			*ow = sw;
			*oh = sh;
		}
		else
		{
			*ow = bw;
			*oh = scale_round(sh, bw, sw);
		}
	}
	else
	{
		if (!upscale && bh >= sh)
		{
			*ow = sw;
			*oh = sh;
		}
		else
		{
			*oh = bh;
			*ow = scale_round(sw, bh, sh);
		}
	}
}

/*
 * Rounding: every output side is the exact box side where the box
 * constrains it, otherwise source side * scale rounded to nearest (halves
 * up), and never less than 1.  Pad offsets are floor((box - image) / 2), so
 * an odd leftover pixel goes to the right/bottom.  The cover crop is exact
 * (fractional) when the image is scaled, and whole pixels at a floor-centred
 * offset when it is not (no upscale), so an unscaled crop is a plain copy.
 * With a focal point (img_geometry_place_focus) the cover crop window is
 * centred on it instead (whole-pixel start rounded to nearest) and then
 * moved back inside the image where it would cross an edge; contain and pad
 * do not crop, so the focal point changes nothing for them.
 *
 * A zero source side is treated as 1; such a raster cannot exist, and
 * img_render_geometry refuses it anyway.
 */
void
img_geometry_place(uint32_t src_width, uint32_t src_height,
				   const img_geometry *geometry, img_placement *placement)
{
	img_geometry_place_focus(src_width, src_height, geometry, NULL, placement);
}

/*
 * Where a cover crop of length crop (out of side) starts: centred on the
 * focal point (a fraction of side; NULL or not finite: the centre), moved
 * back inside the image when the window would cross an edge.  whole:
 * the crop is in whole pixels, its start rounded to nearest (halves up).
 */
static double
cover_start(uint32_t side, double crop, const double *focus, bool whole)
{
	double		f = (focus != NULL && isfinite(*focus)) ? *focus : 0.5;
	double		start;

	if (f < 0.0)
		f = 0.0;
	if (f > 1.0)
		f = 1.0;
	if (focus == NULL)
		return whole ? (double) ((side - (uint32_t) crop) / 2) : (side - crop) / 2.0;
	start = f * side - crop / 2.0;
	if (whole)
		start = floor(start + 0.5);
	if (start > side - crop)
		start = side - crop;
	if (start < 0.0)
		start = 0.0;
	return start;
}

void
img_geometry_place_focus(uint32_t src_width, uint32_t src_height,
						 const img_geometry *geometry, const img_focus *focus,
						 img_placement *placement)
{
	uint32_t	sw = src_width ? src_width : 1;
	uint32_t	sh = src_height ? src_height : 1;
	uint32_t	bw = geometry ? geometry->box_width : 0;
	uint32_t	bh = geometry ? geometry->box_height : 0;
	img_fit		fit = geometry ? geometry->fit : IMG_FIT_CONTAIN;
	bool		upscale = geometry ? geometry->allow_upscale : false;
	uint32_t	ow,
				oh;

	memset(placement, 0, sizeof(*placement));

	/* a cover or pad with a free side has nothing to crop or pad against */
	if (bw == 0 || bh == 0 || (fit != IMG_FIT_COVER && fit != IMG_FIT_PAD))
		fit = IMG_FIT_CONTAIN;

	if (bw == 0 && bh == 0)
	{
		ow = sw;
		oh = sh;
	}
	else if (fit == IMG_FIT_COVER)
	{
		double		crop_w,
					crop_h;
		bool		scaled_up;

		if ((uint64_t) bw * sh >= (uint64_t) bh * sw)
		{
			/* box is relatively wider: keep the full width, crop height */
			crop_w = sw;
			crop_h = (double) sw * bh / bw;
			scaled_up = bw > sw;
		}
		else
		{
			crop_h = sh;
			crop_w = (double) sh * bw / bh;
			scaled_up = bh > sh;
		}

		if (scaled_up && !upscale)
		{
			/* the box's aspect ratio cut from the source, at scale 1 */
			if ((uint64_t) bw * sh >= (uint64_t) bh * sw)
			{
				ow = sw;
				oh = scale_round(sw, bh, bw);
				if (oh > sh)
					oh = sh;
			}
			else
			{
				oh = sh;
				ow = scale_round(sh, bw, bh);
				if (ow > sw)
					ow = sw;
			}
			placement->src_x = cover_start(sw, ow, focus ? &focus->x : NULL, true);
			placement->src_y = cover_start(sh, oh, focus ? &focus->y : NULL, true);
			placement->src_w = ow;
			placement->src_h = oh;
		}
		else
		{
			ow = bw;
			oh = bh;
			placement->src_x = cover_start(sw, crop_w, focus ? &focus->x : NULL, false);
			placement->src_y = cover_start(sh, crop_h, focus ? &focus->y : NULL, false);
			placement->src_w = crop_w;
			placement->src_h = crop_h;
		}
		placement->out_width = ow;
		placement->out_height = oh;
		placement->dst_x = 0;
		placement->dst_y = 0;
		placement->dst_w = ow;
		placement->dst_h = oh;
		return;
	}
	else
		contain_size(sw, sh, bw, bh, upscale, &ow, &oh);

	placement->src_x = 0;
	placement->src_y = 0;
	placement->src_w = sw;
	placement->src_h = sh;
	placement->dst_w = ow;
	placement->dst_h = oh;
	if (fit == IMG_FIT_PAD)
	{
		/* contain_size never exceeds a box with both sides set */
		placement->out_width = bw;
		placement->out_height = bh;
		placement->dst_x = (bw - ow) / 2;
		placement->dst_y = (bh - oh) / 2;
	}
	else
	{
		placement->out_width = ow;
		placement->out_height = oh;
		placement->dst_x = 0;
		placement->dst_y = 0;
	}
}

/* ------------------------------------------------------ contributor tables */

typedef struct axis_table
{
	uint32_t	n;				/* output samples */
	uint32_t	taps;			/* weight slots per output (stride of weights) */
	uint32_t	lo;				/* first source index any output reads */
	uint32_t	hi;				/* one past the last */
	uint32_t   *start;			/* first source index, per output */
	uint32_t   *count;			/* taps used, per output */
	int16_t    *weights;		/* n * taps, fixed point, each row sums to 1 */
} axis_table;

static void
axis_free(axis_table *t)
{
	img_free(t->start);
	img_free(t->count);
	img_free(t->weights);
	memset(t, 0, sizeof(*t));
}

static double
lanczos3(double x)
{
	double		px;

	if (x < 0)
		x = -x;
	if (x < 1e-9)
		return 1.0;
	if (x >= LANCZOS_A)
		return 0.0;
	px = M_PI * x;
	return LANCZOS_A * sin(px) * sin(px / LANCZOS_A) / (px * px);
}

/*
 * Contributors for resampling source samples [off, off + len) of an axis of
 * in_size samples onto n output samples.  Sample i of the output is centred
 * at off + (i + 0.5) * len / n in source coordinates (pixel centres at
 * j + 0.5), so the crop's edges map onto the output's edges.
 */
static img_status
axis_build(axis_table *t, uint32_t in_size, double off, double len, uint32_t n,
		   img_error *err)
{
	double		scale = (double) n / len;
	double		fs = scale < 1.0 ? 1.0 / scale : 1.0;	/* kernel stretch */
	double		support = LANCZOS_A * fs;
	double		span = ceil(2.0 * support) + 2.0;
	uint32_t	taps;
	size_t		nweights;
	size_t		bytes;
	double	   *fw = NULL;

	memset(t, 0, sizeof(*t));
	/* more taps than source samples is never needed */
	taps = span >= (double) in_size ? in_size : (uint32_t) span;
	if (!img_size_mul(n, taps, &nweights) ||
		!img_size_mul(nweights, sizeof(int16_t), &bytes) ||
		!img_size_mul(taps, sizeof(double), &bytes) ||
		!img_size_mul(n, sizeof(uint32_t), &bytes))
		return img_fail(err, IMG_ERR_TOO_MANY_PIXELS,
						"resize from %u to %u samples needs too much memory",
						in_size, n);

	t->n = n;
	t->taps = taps;
	t->start = img_alloc((size_t) n * sizeof(uint32_t));
	t->count = img_alloc((size_t) n * sizeof(uint32_t));
	t->weights = img_alloc(nweights * sizeof(int16_t));
	fw = img_alloc((size_t) taps * sizeof(double));
	if (t->start == NULL || t->count == NULL || t->weights == NULL || fw == NULL)
	{
		img_free(fw);
		axis_free(t);
		return img_fail(err, IMG_ERR_NO_MEMORY, "out of memory building resize weights");
	}
	memset(t->weights, 0, nweights * sizeof(int16_t));
	t->lo = in_size;
	t->hi = 0;

	for (uint32_t i = 0; i < n; i++)
	{
		double		centre = off + ((double) i + 0.5) * len / n;
		double		first = floor(centre - support);
		double		last = ceil(centre + support);	/* exclusive */
		uint32_t	j0,
					j1,
					cnt,
					skip;
		double		sum = 0.0;
		double		cum = 0.0;
		int32_t		isum = 0;
		int32_t		abssum = 0;
		int16_t    *w = t->weights + (size_t) i * taps;

		j0 = first <= 0.0 ? 0 : (first >= in_size ? in_size - 1 : (uint32_t) first);
		j1 = last >= in_size ? in_size : (last <= j0 ? j0 + 1 : (uint32_t) last);
		if (j1 - j0 > taps)
			j1 = j0 + taps;		/* only rounding can get here */
		cnt = j1 - j0;

		for (uint32_t k = 0; k < cnt; k++)
		{
			fw[k] = lanczos3(((double) (j0 + k) + 0.5 - centre) / fs);
			sum += fw[k];
		}
		if (!(sum > 1e-6))
		{
			/*
			 * Unreachable for a centre inside the image; fall back to the
			 * nearest sample rather than dividing by nothing.
			 */
			uint32_t	near = centre <= 0.0 ? 0 :
				(centre >= in_size ? in_size - 1 : (uint32_t) centre);

			if (near < j0)
				near = j0;
			if (near >= j1)
				near = j1 - 1;
			for (uint32_t k = 0; k < cnt; k++)
				fw[k] = (j0 + k == near) ? 1.0 : 0.0;
			sum = 1.0;
		}

		/*
		 * Quantise by rounding the running total rather than each weight:
		 * the fixed-point weights then sum to exactly one (a flat area stays
		 * exactly flat) and the rounding error is spread over the taps
		 * instead of piling up, which matters for wide kernels where every
		 * weight is only a few units.
		 */
		for (uint32_t k = 0; k < cnt; k++)
		{
			int32_t		v;

			cum += fw[k] / sum * WEIGHT_ONE;
			v = (int32_t) lrint(cum) - isum;
			isum += v;
			fw[k] = v;
		}
		fw[cnt - 1] += WEIGHT_ONE - isum;	/* float noise only: 0 or +-1 */

		/* drop taps whose weight rounded to nothing */
		skip = 0;
		while (skip + 1 < cnt && fw[skip] == 0.0)
			skip++;
		j0 += skip;
		cnt -= skip;
		while (cnt > 1 && fw[skip + cnt - 1] == 0.0)
			cnt--;

		for (uint32_t k = 0; k < cnt; k++)
		{
			double		v = fw[skip + k];

			if (v > INT16_MAX || v < INT16_MIN || abssum > WEIGHT_ABS_MAX)
				abssum = WEIGHT_ABS_MAX + 1;
			else
			{
				w[k] = (int16_t) v;
				abssum += w[k] < 0 ? -w[k] : w[k];
			}
		}
		if (abssum > WEIGHT_ABS_MAX)
		{
			img_free(fw);
			axis_free(t);
			return img_fail(err, IMG_ERR_INTERNAL, "resize weights out of range");
		}

		t->start[i] = j0;
		t->count[i] = cnt;
		if (j0 < t->lo)
			t->lo = j0;
		if (j0 + cnt > t->hi)
			t->hi = j0 + cnt;
	}
	img_free(fw);
	return IMG_OK;
}

/* ----------------------------------------------------------------- passes */

/*
 * Both passes accumulate in int32.  Samples entering a pass are either
 * 8-bit source values or 16-bit intermediate values with MID_FRAC_BITS
 * fractional bits; the weights have WEIGHT_BITS.  Shifting the first pass's
 * sums by HSHIFT gives the intermediate, shifting the second pass's sums by
 * VSHIFT gives 8-bit output.  The rounding half is added up front.
 *
 * >> of a negative int32 is an arithmetic shift with every compiler we build
 * with (gcc documents it); with the added half it rounds to nearest.
 */

/* Rows per block of the horizontal kernel: its lanes are ROWS * channels. */
#define ROWS 8
#define MAX_LANES (ROWS * 4)

/*
 * The first pass cannot overflow the intermediate: with the weights' sum
 * of absolute values at most S = WEIGHT_ABS_MAX / WEIGHT_ONE = 3, a sum of
 * 8-bit samples lies in [-255 * (S - 1) / 2, 255 * (S + 1) / 2], which with
 * six fractional bits is [-16320, 32640].  So narrowing needs no clamp.
 */
static ALWAYS_INLINE int16_t
to_mid(int32_t v)
{
	return (int16_t) (v >> HSHIFT);
}

/*
 * Final narrowing to 0..255, written with shifts and masks only: SSE2 has
 * no 32-bit min/max, and this form vectorises into a handful of cheap
 * instructions where the comparisons did not.
 */
static ALWAYS_INLINE uint8_t
to_u8(int32_t acc)
{
	int32_t		v = acc >> VSHIFT;

	v &= ~(v >> 31);			/* negative -> 0 */
	v |= (255 - v) >> 31;		/* above 255 -> all ones */
	return (uint8_t) v;
}

/*
 * Horizontal kernel for output column x over a block held transposed:
 * blk[j * L + lane] is source column tx->lo + j of lane (row * C + channel),
 * so each tap is one weight times L contiguous lanes.
 */
static ALWAYS_INLINE void
hpass_acc(int32_t *restrict acc, const int16_t *restrict blk, const axis_table *tx,
		  uint32_t x, int32_t init, const uint32_t L)
{
	const int16_t *p = blk + (size_t) (tx->start[x] - tx->lo) * L;
	const int16_t *w = tx->weights + (size_t) x * tx->taps;
	uint32_t	cnt = tx->count[x];
	uint32_t	t;

	for (uint32_t k = 0; k < L; k++)
		acc[k] = init;
	/* two taps per sweep halves the traffic on acc */
	for (t = 0; t + 1 < cnt; t += 2)
	{
		const int16_t *q0 = p + (size_t) t * L;
		const int16_t *q1 = q0 + L;
		int32_t		w0 = w[t];
		int32_t		w1 = w[t + 1];

		for (uint32_t k = 0; k < L; k++)
			acc[k] += w0 * q0[k] + w1 * q1[k];
	}
	if (t < cnt)
	{
		const int16_t *q0 = p + (size_t) t * L;
		int32_t		w0 = w[t];

		for (uint32_t k = 0; k < L; k++)
			acc[k] += w0 * q0[k];
	}
}

/* Horizontal pass producing intermediate rows (horizontal first). */
static ALWAYS_INLINE void
hpass_to_mid(const int16_t *restrict blk, const axis_table *tx,
			 int16_t *const *out, uint32_t nrows, const uint32_t C)
{
	const uint32_t L = C * ROWS;

	for (uint32_t x = 0; x < tx->n; x++)
	{
		int32_t		acc[MAX_LANES];
		int16_t		res[MAX_LANES];

		hpass_acc(acc, blk, tx, x, 1 << (HSHIFT - 1), L);
		for (uint32_t k = 0; k < L; k++)
			res[k] = to_mid(acc[k]);
		for (uint32_t r = 0; r < nrows; r++)
			memcpy(out[r] + (size_t) x * C, res + r * C, C * sizeof(int16_t));
	}
}

/* Horizontal pass producing output rows (vertical first). */
static ALWAYS_INLINE void
hpass_to_u8(const int16_t *restrict blk, const axis_table *tx,
			uint8_t *const *out, uint32_t nrows, const uint32_t C)
{
	const uint32_t L = C * ROWS;

	for (uint32_t x = 0; x < tx->n; x++)
	{
		int32_t		acc[MAX_LANES];
		uint8_t		res[MAX_LANES + 1];

		res[L] = 0;
		hpass_acc(acc, blk, tx, x, 1 << (VSHIFT - 1), L);
		for (uint32_t k = 0; k < L; k++)
			res[k] = to_u8(acc[k]);
		if (C == 3 && x + 1 < tx->n)
		{
			/*
			 * One 4-byte store per pixel instead of 2 + 1; the extra byte
			 * lands on the next pixel, which is written next.  res has a
			 * spare lane after the last row for the same reason.
			 */
			for (uint32_t r = 0; r < nrows; r++)
				memcpy(out[r] + (size_t) x * 3, res + r * 3, 4);
		}
		else
			for (uint32_t r = 0; r < nrows; r++)
				memcpy(out[r] + (size_t) x * C, res + r * C, C);
	}
}

/*
 * Vertical kernel: acc[k] = init + sum of w[t] * rows[t][k] over n lanes.
 * The sample type is a parameter so the same loop serves 8-bit source rows
 * (vertical first) and intermediate rows (horizontal first).  The bulk runs
 * over a multiple of VEC_ALIGN lanes, which gcc vectorises at -O2; the rest
 * (only when the rows are not padded) is scalar.
 */
#define DEFINE_VPASS(NAME, T) \
VECTOR_CLONES static void \
NAME(int32_t *restrict acc, const T *const *rows, const int16_t *w, \
	 uint32_t cnt, int32_t init, size_t n) \
{ \
	size_t		bulk = n & ~(size_t) (VEC_ALIGN - 1); \
	uint32_t	t = 0; \
	\
	if (cnt >= 2) \
	{ \
		const T    *restrict a = rows[0]; \
		const T    *restrict b = rows[1]; \
		int32_t		w0 = w[0], w1 = w[1]; \
		\
		for (size_t k = 0; k < bulk; k++) \
			acc[k] = init + w0 * a[k] + w1 * b[k]; \
		for (size_t k = bulk; k < n; k++) \
			acc[k] = init + w0 * a[k] + w1 * b[k]; \
		t = 2; \
	} \
	else \
	{ \
		const T    *restrict a = rows[0]; \
		int32_t		w0 = w[0]; \
		\
		for (size_t k = 0; k < bulk; k++) \
			acc[k] = init + w0 * a[k]; \
		for (size_t k = bulk; k < n; k++) \
			acc[k] = init + w0 * a[k]; \
		t = 1; \
	} \
	for (; t + 1 < cnt; t += 2) \
	{ \
		const T    *restrict a = rows[t]; \
		const T    *restrict b = rows[t + 1]; \
		int32_t		w0 = w[t], w1 = w[t + 1]; \
		\
		for (size_t k = 0; k < bulk; k++) \
			acc[k] += w0 * a[k] + w1 * b[k]; \
		for (size_t k = bulk; k < n; k++) \
			acc[k] += w0 * a[k] + w1 * b[k]; \
	} \
	if (t < cnt) \
	{ \
		const T    *restrict a = rows[t]; \
		int32_t		w0 = w[t]; \
		\
		for (size_t k = 0; k < bulk; k++) \
			acc[k] += w0 * a[k]; \
		for (size_t k = bulk; k < n; k++) \
			acc[k] += w0 * a[k]; \
	} \
}

DEFINE_VPASS(vpass_u8, uint8_t)
DEFINE_VPASS(vpass_mid, int16_t)

/* out[k] = clamp(acc[k] >> shift) to 8 or 16 bits, n lanes */
VECTOR_CLONES static void
narrow_u8(uint8_t *restrict out, const int32_t *restrict acc, size_t n)
{
	size_t		bulk = n & ~(size_t) (VEC_ALIGN - 1);

	for (size_t k = 0; k < bulk; k++)
		out[k] = to_u8(acc[k]);
	for (size_t k = bulk; k < n; k++)
		out[k] = to_u8(acc[k]);
}

VECTOR_CLONES static void
narrow_mid(int16_t *restrict out, const int32_t *restrict acc, size_t n)
{
	size_t		bulk = n & ~(size_t) (VEC_ALIGN - 1);

	for (size_t k = 0; k < bulk; k++)
		out[k] = to_mid(acc[k]);
	for (size_t k = bulk; k < n; k++)
		out[k] = to_mid(acc[k]);
}

/* Write row r of a block: blk[j * L + r * C + c] = row[j * C + c]. */
static ALWAYS_INLINE void
scatter_mid(int16_t *restrict blk, const int16_t *restrict row, uint32_t cols,
			uint32_t r, const uint32_t C)
{
	const uint32_t L = C * ROWS;

	if (C == 3 && r + 1 < ROWS)
	{
		/*
		 * One 8-byte store per pixel instead of 4 + 2: the extra sample
		 * lands on row r + 1's slot, which is written after this row.  The
		 * row array has a spare slot at its end so the read stays inside.
		 */
		for (uint32_t j = 0; j < cols; j++)
			memcpy(blk + (size_t) j * L + r * 3, row + (size_t) j * 3, 4 * sizeof(int16_t));
	}
	else
		for (uint32_t j = 0; j < cols; j++)
			memcpy(blk + (size_t) j * L + r * C, row + (size_t) j * C, C * sizeof(int16_t));
}

static ALWAYS_INLINE void
scatter_u8(int16_t *restrict blk, const uint8_t *restrict row, uint32_t cols,
		   uint32_t r, const uint32_t C)
{
	const uint32_t L = C * ROWS;

	for (uint32_t j = 0; j < cols; j++)
		for (uint32_t c = 0; c < C; c++)
			blk[(size_t) j * L + r * C + c] = row[(size_t) j * C + c];
}

typedef struct resize_job
{
	const img_raster *src;
	axis_table	tx;
	axis_table	ty;
	uint8_t    *out;			/* top-left output pixel */
	size_t		out_stride;
	int16_t    *blk;			/* block of rows, transposed */
	int32_t    *acc;			/* vertical accumulators */
	int16_t    *mid;			/* vertical first: one narrowed row */
	int16_t    *ring;			/* horizontal first: filtered rows */
	const int16_t **rows_mid;	/* horizontal first: ring rows of one output */
	const uint8_t **rows_u8;	/* vertical first: source rows of one output */
	uint32_t	ring_rows;
	size_t		row_pad;		/* int16 slots per ring row, multiple of VEC_ALIGN */
	uint32_t	y_begin;		/* this job's band of output rows: [y_begin, y_end) */
	uint32_t	y_end;
	bool		hfirst;
	bool		interrupted;	/* the interrupt hook stopped the run */
} resize_job;

/* Asked once per output row (block of rows when vertical first). */
static bool
stop_requested(resize_job *job)
{
	job->interrupted = img_interrupt_requested();
	return job->interrupted;
}

static ALWAYS_INLINE int16_t *
ring_row(const resize_job *job, uint32_t src_row)
{
	return job->ring + (size_t) (src_row % job->ring_rows) * job->row_pad;
}

/*
 * Horizontal first (chosen when enlarging vertically).  Source rows are
 * filtered in blocks of ROWS into a ring of intermediate rows when an
 * output row first needs them; an output row is the vertical combination of
 * the ring rows it needs.  Row windows only move forward, so the ring only
 * has to hold the widest window plus one block.
 */
static ALWAYS_INLINE void
run_hfirst(resize_job *job, const uint32_t C)
{
	const axis_table *tx = &job->tx;
	const axis_table *ty = &job->ty;
	const img_raster *src = job->src;
	uint32_t	next = ty->start[job->y_begin]; /* first source row not yet filtered */
	uint32_t	cols = tx->hi - tx->lo;
	size_t		len = (size_t) tx->n * C;

	/* a band's first rows to filter: the lowest any of its outputs reads */
	for (uint32_t y = job->y_begin; y < job->y_end; y++)
		if (ty->start[y] < next)
			next = ty->start[y];

	for (uint32_t y = job->y_begin; y < job->y_end; y++)
	{
		const int16_t **rows = job->rows_mid;
		uint32_t	s0 = ty->start[y];
		uint32_t	cnt = ty->count[y];

		if (stop_requested(job))
			return;
		while (next < s0 + cnt)
		{
			int16_t    *out[ROWS];
			uint32_t	nrows = ty->hi - next < ROWS ? ty->hi - next : ROWS;

			for (uint32_t r = 0; r < nrows; r++)
			{
				scatter_u8(job->blk, src->pixels + (size_t) (next + r) * src->stride +
						   (size_t) tx->lo * C, cols, r, C);
				out[r] = ring_row(job, next + r);
			}
			hpass_to_mid(job->blk, tx, out, nrows, C);
			next += nrows;
		}

		for (uint32_t t = 0; t < cnt; t++)
			rows[t] = ring_row(job, s0 + t);
		vpass_mid(job->acc, rows, ty->weights + (size_t) y * ty->taps, cnt,
				  1 << (VSHIFT - 1), job->row_pad);
		narrow_u8(job->out + (size_t) y * job->out_stride, job->acc, len);
	}
}

/*
 * Vertical first (chosen when shrinking vertically): each output row is the
 * vertical combination of source rows, straight from the source, narrowed
 * to the intermediate and stored transposed into the block; every ROWS
 * output rows the horizontal pass turns the block into output.
 */
static ALWAYS_INLINE void
run_vfirst(resize_job *job, const uint32_t C)
{
	const axis_table *tx = &job->tx;
	const axis_table *ty = &job->ty;
	const img_raster *src = job->src;
	uint32_t	cols = tx->hi - tx->lo;
	size_t		lanes = (size_t) cols * C;

	for (uint32_t y0 = job->y_begin; y0 < job->y_end; y0 += ROWS)
	{
		uint8_t    *out[ROWS];
		uint32_t	nrows = job->y_end - y0 < ROWS ? job->y_end - y0 : ROWS;

		if (stop_requested(job))
			return;
		for (uint32_t r = 0; r < nrows; r++)
		{
			const uint8_t **rows = job->rows_u8;
			uint32_t	y = y0 + r;
			uint32_t	cnt = ty->count[y];

			for (uint32_t t = 0; t < cnt; t++)
				rows[t] = src->pixels + (size_t) (ty->start[y] + t) * src->stride +
					(size_t) tx->lo * C;
			vpass_u8(job->acc, rows, ty->weights + (size_t) y * ty->taps, cnt,
					 1 << (HSHIFT - 1), lanes);
			narrow_mid(job->mid, job->acc, lanes);
			scatter_mid(job->blk, job->mid, cols, r, C);
			out[r] = job->out + (size_t) y * job->out_stride;
		}
		hpass_to_u8(job->blk, tx, out, nrows, C);
	}
}

VECTOR_CLONES static void
run_hfirst_c1(resize_job *job)
{
	run_hfirst(job, 1);
}
VECTOR_CLONES static void
run_hfirst_c2(resize_job *job)
{
	run_hfirst(job, 2);
}
VECTOR_CLONES static void
run_hfirst_c3(resize_job *job)
{
	run_hfirst(job, 3);
}
VECTOR_CLONES static void
run_hfirst_c4(resize_job *job)
{
	run_hfirst(job, 4);
}
VECTOR_CLONES static void
run_vfirst_c1(resize_job *job)
{
	run_vfirst(job, 1);
}
VECTOR_CLONES static void
run_vfirst_c2(resize_job *job)
{
	run_vfirst(job, 2);
}
VECTOR_CLONES static void
run_vfirst_c3(resize_job *job)
{
	run_vfirst(job, 3);
}
VECTOR_CLONES static void
run_vfirst_c4(resize_job *job)
{
	run_vfirst(job, 4);
}

static bool
is_whole(double v)
{
	return v == floor(v);
}

static img_status
check_raster(const img_raster *r, const char *what, img_error *err)
{
	if (r == NULL || r->pixels == NULL || r->width == 0 || r->height == 0 ||
		r->channels == 0 || r->channels > 4 ||
		r->stride < (size_t) r->width * r->channels)
		return img_fail(err, IMG_ERR_INTERNAL, "resize: invalid %s raster", what);
	return IMG_OK;
}

/* sum of the tap counts of a table: the work of one pass over one line */
static uint64_t
axis_work(const axis_table *t)
{
	uint64_t	sum = 0;

	for (uint32_t i = 0; i < t->n; i++)
		sum += t->count[i];
	return sum;
}

/*
 * Allocate n elements of size bytes each into *p, or fail.  Callers free
 * everything in one place, so this only records the first failure.
 */
static bool
alloc_array(void *p, size_t n, size_t size)
{
	size_t		bytes;
	void	   *mem;

	if (!img_size_mul(n, size, &bytes))
		return false;
	mem = img_alloc(bytes);
	if (mem == NULL)
		return false;
	memset(mem, 0, bytes);
	memcpy(p, &mem, sizeof(mem));
	return true;
}

/* Fewest output pixels for which a resize is split between threads. */
#define RESIZE_PARALLEL_MIN_PIXELS (64u * 1024u)

/*
 * One band's scratch, allocated by the caller's thread (a band may run on a
 * helper thread, which must not use the caller's allocator).  Every pointer
 * is set, to NULL where nothing was allocated, so free_scratch always works.
 */
static bool
alloc_scratch(resize_job *job, bool hfirst, uint32_t cols, uint32_t C, uint32_t dw)
{
	bool		ok;

	job->blk = NULL;
	job->acc = NULL;
	job->mid = NULL;
	job->ring = NULL;
	job->rows_mid = NULL;
	job->rows_u8 = NULL;
	ok = alloc_array(&job->blk, (size_t) cols * C, ROWS * sizeof(int16_t));
	if (hfirst)
	{
		size_t		row_bytes = (size_t) dw * C;

		/*
		 * Ring: the widest untrimmed window of rows (a bound on how far back
		 * an output row reaches, since windows only move forward) plus one
		 * block being filled.  Rows are padded so the vertical kernel can
		 * run over whole multiples of VEC_ALIGN lanes.
		 */
		job->ring_rows = job->ty.taps + ROWS;
		job->row_pad = (row_bytes + VEC_ALIGN - 1) & ~(size_t) (VEC_ALIGN - 1);
		ok = ok && row_bytes < SIZE_MAX - VEC_ALIGN &&
			alloc_array(&job->acc, job->row_pad, sizeof(int32_t)) &&
			img_size_mul(job->row_pad, job->ring_rows, &row_bytes) &&
			alloc_array(&job->ring, row_bytes, sizeof(int16_t)) &&
			alloc_array(&job->rows_mid, job->ty.taps, sizeof(int16_t *));
	}
	else
	{
		ok = ok &&
			alloc_array(&job->acc, (size_t) cols * C, sizeof(int32_t)) &&
			alloc_array(&job->mid, (size_t) cols * C + 1, sizeof(int16_t)) &&
			alloc_array(&job->rows_u8, job->ty.taps, sizeof(uint8_t *));
	}
	return ok;
}

static void
free_scratch(resize_job *job)
{
	img_free(job->blk);
	img_free(job->acc);
	img_free(job->mid);
	img_free(job->ring);
	img_free(job->rows_mid);
	img_free(job->rows_u8);
}

/* img_task_fn: one band, on whichever thread runs it */
static void
run_band(void *arg)
{
	/* the kernels specialised per channel count, index 1..4 */
	static void (*const hfirst[5]) (resize_job *) = {
		NULL, run_hfirst_c1, run_hfirst_c2, run_hfirst_c3, run_hfirst_c4
	};
	static void (*const vfirst[5]) (resize_job *) = {
		NULL, run_vfirst_c1, run_vfirst_c2, run_vfirst_c3, run_vfirst_c4
	};
	resize_job *job = arg;
	uint32_t	C = job->src->channels;	/* 1..4, checked by check_raster */

	(job->hfirst ? hfirst : vfirst)[C] (job);
}

/*
 * Resample crop (sx, sy, sw, sh) of src into a dw x dh rectangle whose
 * top-left pixel is out, rows out_stride bytes apart, same channel count.
 */
static img_status
resize_into(const img_raster *src, double sx, double sy, double sw, double sh,
			uint32_t dw, uint32_t dh, uint8_t *out, size_t out_stride,
			unsigned threads, img_error *err)
{
	const double slack = 1e-6;	/* float noise from callers' arithmetic */
	uint32_t	C = src->channels;
	resize_job	job;
	uint32_t	cols;
	uint64_t	cost_h,
				cost_v;
	bool		hfirst;
	resize_job	bands[IMG_MAX_THREADS];
	uint32_t	nbands;
	img_status	st;

	if (!(isfinite(sx) && isfinite(sy) && isfinite(sw) && isfinite(sh)) ||
		!(sw > 0.0) || !(sh > 0.0) || sx < -slack || sy < -slack ||
		sx + sw > src->width + slack || sy + sh > src->height + slack)
		return img_fail(err, IMG_ERR_INTERNAL,
						"resize: crop %gx%g+%g+%g outside the %ux%u source",
						sw, sh, sx, sy, src->width, src->height);
	if (dw == 0 || dh == 0)
		return img_fail(err, IMG_ERR_INTERNAL, "resize: empty output %ux%u", dw, dh);
	if (sx < 0.0)
		sx = 0.0;
	if (sy < 0.0)
		sy = 0.0;
	if (sx + sw > src->width)
		sw = src->width - sx;
	if (sy + sh > src->height)
		sh = src->height - sy;

	/* an unscaled whole-pixel crop is a copy */
	if (is_whole(sx) && is_whole(sy) && sw == (double) dw && sh == (double) dh)
	{
		st = img_check_interrupt(err, "copying a crop");
		if (st != IMG_OK)
			return st;
		for (uint32_t y = 0; y < dh; y++)
			memcpy(out + (size_t) y * out_stride,
				   src->pixels + ((size_t) sy + y) * src->stride + (size_t) sx * C,
				   (size_t) dw * C);
		return IMG_OK;
	}

	memset(&job, 0, sizeof(job));
	job.src = src;
	job.out = out;
	job.out_stride = out_stride;

	st = axis_build(&job.tx, src->width, sx, sw, dw, err);
	if (st != IMG_OK)
		return st;
	st = axis_build(&job.ty, src->height, sy, sh, dh, err);
	if (st != IMG_OK)
	{
		axis_free(&job.tx);
		return st;
	}
	cols = job.tx.hi - job.tx.lo;

	/*
	 * Pick the order that does less work: the first pass runs over the
	 * other axis's source extent, the second over its output extent, and
	 * each source or intermediate sample is moved once into the block.
	 * For a shrink this is vertical first, for an enlargement horizontal
	 * first.
	 */
	cost_h = (uint64_t) (job.ty.hi - job.ty.lo) * (axis_work(&job.tx) + cols) +
		(uint64_t) dw * axis_work(&job.ty);
	cost_v = (uint64_t) cols * (axis_work(&job.ty) + dh) +
		(uint64_t) dh * axis_work(&job.tx);
	hfirst = cost_h < cost_v;

	/*
	 * Split the output rows into bands, one per thread, when there is
	 * enough work to pay for a thread: every output row is computed from
	 * the source alone, so the bands give the same bytes as one run.
	 * Vertical-first bands are whole blocks of ROWS.
	 */
	nbands = threads < IMG_MAX_THREADS ? threads : IMG_MAX_THREADS;
	if (nbands < 1 || (uint64_t) dw * dh < RESIZE_PARALLEL_MIN_PIXELS)
		nbands = 1;
	if (nbands > dh / (2 * ROWS))
		nbands = dh / (2 * ROWS) > 0 ? dh / (2 * ROWS) : 1;
	{
		uint32_t	blocks = (dh + ROWS - 1) / ROWS;
		uint32_t	first = 0;

		for (uint32_t b = 0; b < nbands; b++)
		{
			uint32_t	share = blocks / nbands + (b < blocks % nbands ? 1 : 0);
			uint64_t	end = (uint64_t) first + (uint64_t) share * ROWS;

			bands[b] = job;
			bands[b].hfirst = hfirst;
			bands[b].y_begin = first;
			bands[b].y_end = (b == nbands - 1 || end > dh) ? dh : (uint32_t) end;
			first = bands[b].y_end;
		}
	}

	for (uint32_t b = 0; b < nbands; b++)
	{
		if (!alloc_scratch(&bands[b], hfirst, cols, C, dw))
		{
			st = img_fail(err, IMG_ERR_NO_MEMORY,
						  "out of memory resizing to %ux%u", dw, dh);
			goto done;
		}
	}

	img_run_tasks(run_band, bands, sizeof(bands[0]), nbands);

	st = IMG_OK;
	for (uint32_t b = 0; b < nbands; b++)
		if (bands[b].interrupted)
			st = img_fail(err, IMG_ERR_INTERRUPTED, "interrupted while resizing to %ux%u", dw, dh);

done:
	for (uint32_t b = 0; b < nbands; b++)
		free_scratch(&bands[b]);
	axis_free(&job.tx);
	axis_free(&job.ty);
	return st;
}


img_status
img_resize(const img_raster *src, double src_x, double src_y, double src_w,
		   double src_h, uint32_t dst_width, uint32_t dst_height,
		   img_raster *dst, img_error *err)
{
	img_status	st;

	if (dst == NULL)
		return img_fail(err, IMG_ERR_INTERNAL, "resize: no destination raster");
	memset(dst, 0, sizeof(*dst));
	st = check_raster(src, "source", err);
	if (st != IMG_OK)
		return st;
	if (dst_width == 0 || dst_height == 0)
		return img_fail(err, IMG_ERR_INTERNAL, "resize: empty output %ux%u",
						dst_width, dst_height);

	st = img_raster_init(dst, dst_width, dst_height, src->channels, err);
	if (st != IMG_OK)
		return st;
	st = resize_into(src, src_x, src_y, src_w, src_h, dst_width, dst_height,
					 dst->pixels, dst->stride, 1, err);
	if (st != IMG_OK)
		img_raster_free(dst);
	return st;
}

img_status
img_render_geometry(const img_raster *src, const img_placement *placement,
					const uint8_t background[3], img_raster *dst, img_error *err)
{
	return img_render_geometry_threads(src, placement, background, 1, dst, err);
}

img_status
img_render_geometry_threads(const img_raster *src, const img_placement *placement,
							const uint8_t background[3], unsigned threads,
							img_raster *dst, img_error *err)
{
	const img_placement *p = placement;
	uint32_t	C;
	img_status	st;

	if (dst == NULL)
		return img_fail(err, IMG_ERR_INTERNAL, "render: no destination raster");
	memset(dst, 0, sizeof(*dst));
	st = check_raster(src, "source", err);
	if (st != IMG_OK)
		return st;
	if (p == NULL || p->out_width == 0 || p->out_height == 0 ||
		p->dst_w == 0 || p->dst_h == 0 ||
		p->dst_x > p->out_width || p->dst_w > p->out_width - p->dst_x ||
		p->dst_y > p->out_height || p->dst_h > p->out_height - p->dst_y)
		return img_fail(err, IMG_ERR_INTERNAL, "render: invalid placement");
	C = src->channels;

	st = img_raster_init(dst, p->out_width, p->out_height, C, err);
	if (st != IMG_OK)
		return st;

	if (p->dst_x != 0 || p->dst_y != 0 ||
		p->dst_w != p->out_width || p->dst_h != p->out_height)
	{
		/* pad: background everywhere, opaque for RGBA; the image goes on top */
		uint8_t		fill[4] = {0, 0, 0, 255};

		if (background != NULL)
			memcpy(fill, background, 3);
		if (C < 3)
			fill[1] = 255;		/* grey + alpha: grey from red, opaque */
		for (uint32_t x = 0; x < p->out_width; x++)
			memcpy(dst->pixels + (size_t) x * C, fill, C);
		for (uint32_t y = 1; y < p->out_height; y++)
			memcpy(dst->pixels + (size_t) y * dst->stride, dst->pixels,
				   (size_t) p->out_width * C);
	}

	st = resize_into(src, p->src_x, p->src_y, p->src_w, p->src_h,
					 p->dst_w, p->dst_h,
					 dst->pixels + (size_t) p->dst_y * dst->stride + (size_t) p->dst_x * C,
					 dst->stride, threads, err);
	if (st != IMG_OK)
		img_raster_free(dst);
	return st;
}
