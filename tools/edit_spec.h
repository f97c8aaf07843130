/*
 * edit_spec.h — image edit ops from a short command-line spec, for
 * imgmod-cli edit and bench/stages/edit_stages.
 *
 *   SPEC = OP[,OP...]      applied in order, as imgmod.edit() applies its array
 *   OP   = rotate:90 | rotate:180 | rotate:270      (clockwise)
 *        | flip:h | flip:v                         (mirror left-right | upside down)
 *        | crop:W:H:X:Y                            (pixels, whole numbers)
 *
 * Only the syntax is checked here; img_edit_plan / img_edit_apply check the
 * ops against the image.  Header-only (static) so both programs build from
 * their own single source file.
 */
#ifndef IMGMOD_EDIT_SPEC_H
#define IMGMOD_EDIT_SPEC_H

#include "imgcore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One op; false (why filled) when it does not read as one. */
static bool
edit_spec_op(const char *tok, img_edit_op *op, char *why, size_t whylen)
{
	unsigned	w, h, x, y;
	int			deg;
	int			end = -1;

	memset(op, 0, sizeof(*op));
	if (sscanf(tok, "rotate:%d%n", &deg, &end) == 1 && tok[end] == '\0')
	{
		op->kind = IMG_EDIT_ROTATE;
		op->degrees = deg;
		return true;
	}
	if (strcmp(tok, "flip:h") == 0 || strcmp(tok, "flip:v") == 0)
	{
		op->kind = IMG_EDIT_FLIP;
		op->vertical = tok[5] == 'v';
		return true;
	}
	end = -1;
	if (strncmp(tok, "crop:", 5) == 0 && strspn(tok + 5, "0123456789:") == strlen(tok + 5) &&
		sscanf(tok, "crop:%u:%u:%u:%u%n", &w, &h, &x, &y, &end) == 4 && tok[end] == '\0')
	{
		op->kind = IMG_EDIT_CROP;
		op->width = w;
		op->height = h;
		op->x = x;
		op->y = y;
		return true;
	}
	snprintf(why, whylen, "cannot read edit op \"%s\" (rotate:90|180|270, flip:h|v, crop:W:H:X:Y)", tok);
	return false;
}

/* The whole spec into ops[0..*n); false (why filled) on the first bad op. */
static bool
edit_spec_parse(const char *spec, img_edit_op *ops, size_t max, size_t *n, char *why, size_t whylen)
{
	char	   *copy = strdup(spec);
	char	   *save = NULL;
	bool		ok = copy != NULL;

	*n = 0;
	if (!ok)
		snprintf(why, whylen, "out of memory");
	for (char *tok = ok ? strtok_r(copy, ",", &save) : NULL; tok && ok; tok = strtok_r(NULL, ",", &save))
	{
		if (*n == max)
		{
			snprintf(why, whylen, "more than %zu edit ops", max);
			ok = false;
		}
		else
			ok = edit_spec_op(tok, &ops[(*n)++], why, whylen);
	}
	if (ok && *n == 0)
	{
		snprintf(why, whylen, "no edit op in \"%s\"", spec);
		ok = false;
	}
	free(copy);
	return ok;
}

#endif							/* IMGMOD_EDIT_SPEC_H */
