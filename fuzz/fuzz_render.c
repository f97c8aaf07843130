/*
 * fuzz_render.c — libFuzzer target for img_render_variants with two small
 * specs (contain 64 px wide, cover 32x32), limits lowered to 4 megapixels.
 *
 * The input is rendered as it comes (workers render normalised masters,
 * but the function must not trust that).  Invariants checked on success:
 * both results are JPEGs of the exact size img_geometry_place gives for
 * the upright source; on failure every result is empty.
 */
#include "fuzz_limits.h"
#include "imgcore.h"

#include <stdlib.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t bg[3] = {255, 255, 255};
	img_limits	lim;
	img_variant_spec specs[2];
	img_variant_result res[2];
	img_info	info;
	img_error	err;
	img_status	st;

	fuzz_limits(&lim);
	memset(specs, 0, sizeof(specs));
	specs[0].geometry.box_width = 64;
	specs[0].geometry.fit = IMG_FIT_CONTAIN;
	specs[0].quality = 75;
	specs[1].geometry.box_width = 32;
	specs[1].geometry.box_height = 32;
	specs[1].geometry.fit = IMG_FIT_COVER;
	specs[1].quality = 75;

	st = img_render_variants(data, size, &lim, specs, 2, bg, res, &err);
	if (st == IMG_OK)
	{
		if (img_probe(data, size, &lim, &info, &err) != IMG_OK)
			__builtin_trap();
		for (int i = 0; i < 2; i++)
		{
			img_placement p;
			uint32_t	w = info.orientation >= 5 ? info.height : info.width;
			uint32_t	h = info.orientation >= 5 ? info.width : info.height;

			img_geometry_place(w, h, &specs[i].geometry, &p);
			if (res[i].status != IMG_OK || res[i].jpeg.data == NULL || res[i].jpeg.len < 4 ||
				res[i].width != p.out_width || res[i].height != p.out_height ||
				res[i].jpeg.data[0] != 0xFF || res[i].jpeg.data[1] != 0xD8)
				__builtin_trap();
		}
		img_variant_results_free(res, 2);
	}
	else
	{
		for (int i = 0; i < 2; i++)
			if (res[i].jpeg.data != NULL)
				__builtin_trap();
	}
	return 0;
}
