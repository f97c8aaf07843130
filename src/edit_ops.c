/*
 * edit_ops.c — the JSON of imgmod.edit() into the image core's edit
 * operations.
 *
 * The same parser checks the caller's ops in imgmod.edit() (where every
 * mistake is an invalid_parameter_value naming ops[i] and the reason) and
 * reads them back in the worker, so what was accepted is exactly what is
 * applied.  Only the shapes are checked here; whether a crop fits the image
 * or the result fits the limits is img_edit_plan()'s call, on the base
 * version's size.
 */
#include "imgmod.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#define FIELD_MAX 32

static void
op_error(const char *fn, int index, const char *op, const char *fmt,...)
pg_attribute_printf(4, 5);

static void
op_error(const char *fn, int index, const char *op, const char *fmt,...)
{
	char		reason[512];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s: ops[%d]%s%s%s: %s", fn, index, op ? " (" : "", op ? op : "", op ? ")" : "", reason),
			 errhint("An op is one of {\"op\":\"rotate\",\"degrees\":90}, {\"op\":\"flip\",\"axis\":\"horizontal\"}, "
					 "{\"op\":\"crop\",\"x\":0,\"y\":0,\"width\":100,\"height\":100} (add \"unit\":\"ratio\" for 0-1 fractions), "
					 "{\"op\":\"pad\",\"aspect\":\"1:1\",\"background\":\"#ffffff\"}, {\"op\":\"focus\",\"x\":0.5,\"y\":0.3,\"unit\":\"ratio\"}.")));
}

/* One field of an op object, as read. */
typedef struct op_field
{
	char		name[FIELD_MAX];
	JsonbValue	value;
} op_field;

static const JsonbValue *
field(const op_field *fields, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(fields[i].name, name) == 0)
			return &fields[i].value;
	return NULL;
}

static double
number_field(const char *fn, int index, const char *op, const op_field *fields, int n, const char *name,
			 bool required, double fallback)
{
	const JsonbValue *v = field(fields, n, name);
	double		d;

	if (v == NULL)
	{
		if (required)
			op_error(fn, index, op, "\"%s\" is missing", name);
		return fallback;
	}
	if (v->type != jbvNumeric)
		op_error(fn, index, op, "\"%s\" must be a number", name);
	d = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, NumericGetDatum(v->val.numeric)));
	if (!isfinite(d))
		op_error(fn, index, op, "\"%s\" is out of range", name);
	return d;
}

static char *
string_field(const char *fn, int index, const char *op, const op_field *fields, int n, const char *name,
			 bool required)
{
	const JsonbValue *v = field(fields, n, name);

	if (v == NULL)
	{
		if (required)
			op_error(fn, index, op, "\"%s\" is missing", name);
		return NULL;
	}
	if (v->type != jbvString)
		op_error(fn, index, op, "\"%s\" must be a string", name);
	return pnstrdup(v->val.string.val, Min(v->val.string.len, 64));
}

static void
only_fields(const char *fn, int index, const char *op, const op_field *fields, int n,
			const char *const *allowed)
{
	for (int i = 0; i < n; i++)
	{
		bool		ok = strcmp(fields[i].name, "op") == 0;

		for (int a = 0; !ok && allowed[a]; a++)
			ok = strcmp(fields[i].name, allowed[a]) == 0;
		if (!ok)
			op_error(fn, index, op, "unknown field \"%s\"", fields[i].name);
	}
}

static bool
unit_is_ratio(const char *fn, int index, const char *op, const op_field *fields, int n)
{
	char	   *unit = string_field(fn, index, op, fields, n, "unit", false);

	if (unit == NULL || strcmp(unit, "px") == 0)
		return false;
	if (strcmp(unit, "ratio") == 0)
		return true;
	op_error(fn, index, op, "\"unit\" must be \"px\" or \"ratio\", not \"%s\"", unit);
	return false;
}

static void
parse_op(const char *fn, int index, JsonbValue *elem, img_edit_op *out, const uint8_t default_background[3])
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	v;
	op_field	fields[FIELD_MAX];
	int			n = 0;
	const char *op;
	char	   *s;

	memset(out, 0, sizeof(*out));
	if (elem->type != jbvBinary || !JsonContainerIsObject(elem->val.binary.data))
		op_error(fn, index, NULL, "each op must be a JSON object");
	it = JsonbIteratorInit(elem->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		if (n >= FIELD_MAX)
			op_error(fn, index, NULL, "too many fields");
		if (v.val.string.len >= FIELD_MAX)
			op_error(fn, index, NULL, "unknown field \"%.*s...\"", 20, v.val.string.val);
		memcpy(fields[n].name, v.val.string.val, v.val.string.len);
		fields[n].name[v.val.string.len] = '\0';
		tok = JsonbIteratorNext(&it, &fields[n].value, true);
		if (tok != WJB_VALUE)
			elog(ERROR, "imgmod: unexpected JSON structure");
		n++;
	}
	op = string_field(fn, index, NULL, fields, n, "op", true);

	if (strcmp(op, "rotate") == 0)
	{
		static const char *const allowed[] = {"degrees", NULL};
		double		d;
		long		deg;

		only_fields(fn, index, op, fields, n, allowed);
		d = number_field(fn, index, op, fields, n, "degrees", true, 0);
		if (d != floor(d) || fabs(d) > 3600 || ((long) d) % 90 != 0)
			op_error(fn, index, op, "degrees must be a multiple of 90 (90, 180 or 270 clockwise), not %g", d);
		deg = (((long) d) % 360 + 360) % 360;
		out->kind = IMG_EDIT_ROTATE;
		out->degrees = (int) deg;
	}
	else if (strcmp(op, "flip") == 0)
	{
		static const char *const allowed[] = {"axis", NULL};

		only_fields(fn, index, op, fields, n, allowed);
		s = string_field(fn, index, op, fields, n, "axis", true);
		out->kind = IMG_EDIT_FLIP;
		if (strcmp(s, "vertical") == 0)
			out->vertical = true;
		else if (strcmp(s, "horizontal") != 0)
			op_error(fn, index, op, "axis must be \"horizontal\" or \"vertical\", not \"%s\"", s);
	}
	else if (strcmp(op, "crop") == 0)
	{
		static const char *const allowed[] = {"x", "y", "width", "height", "unit", NULL};

		only_fields(fn, index, op, fields, n, allowed);
		out->kind = IMG_EDIT_CROP;
		out->ratio = unit_is_ratio(fn, index, op, fields, n);
		out->x = number_field(fn, index, op, fields, n, "x", false, 0);
		out->y = number_field(fn, index, op, fields, n, "y", false, 0);
		out->width = number_field(fn, index, op, fields, n, "width", true, 0);
		out->height = number_field(fn, index, op, fields, n, "height", true, 0);
	}
	else if (strcmp(op, "pad") == 0)
	{
		static const char *const allowed[] = {"aspect", "background", NULL};
		unsigned	aw,
					ah;
		char		extra;

		only_fields(fn, index, op, fields, n, allowed);
		out->kind = IMG_EDIT_PAD;
		s = string_field(fn, index, op, fields, n, "aspect", true);
		if (sscanf(s, "%u:%u%c", &aw, &ah, &extra) != 2 || aw == 0 || ah == 0 || aw > 100 || ah > 100)
			op_error(fn, index, op, "aspect must be \"W:H\" with whole numbers from 1 to 100, e.g. \"1:1\" or \"4:5\", not \"%s\"", s);
		out->aspect_w = aw;
		out->aspect_h = ah;
		memcpy(out->background, default_background, 3);
		s = string_field(fn, index, op, fields, n, "background", false);
		if (s != NULL && !imgmod_parse_colour(s, out->background))
			op_error(fn, index, op, "background must be a colour #rrggbb, not \"%s\"", s);
	}
	else if (strcmp(op, "focus") == 0)
	{
		static const char *const allowed[] = {"x", "y", "unit", NULL};

		only_fields(fn, index, op, fields, n, allowed);
		out->kind = IMG_EDIT_FOCUS;
		out->ratio = unit_is_ratio(fn, index, op, fields, n);
		out->x = number_field(fn, index, op, fields, n, "x", true, 0);
		out->y = number_field(fn, index, op, fields, n, "y", true, 0);
	}
	else
		op_error(fn, index, NULL, "unknown op \"%s\" (rotate, flip, crop, pad or focus)", op);
}

int
imgmod_parse_edit_ops(const char *fn, Jsonb *ops, int max_ops, img_edit_op **out)
{
	JsonbValue *elem;
	int			n;
	img_edit_op *result;
	uint8_t		background[3];

	if (!JB_ROOT_IS_ARRAY(ops) || JB_ROOT_IS_SCALAR(ops))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: ops must be a JSON array of operations", fn),
				 errhint("For example '[{\"op\":\"rotate\",\"degrees\":90}]'.")));
	n = (int) JB_ROOT_COUNT(ops);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: ops is empty: an edit needs at least one operation", fn)));
	if (n > max_ops)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: %d ops, more than the %d one edit may have", fn, n, max_ops),
				 errhint("Split the work into several edits.")));
	imgmod_background_rgb(background);
	result = palloc0(sizeof(img_edit_op) * (n + 1));
	for (int i = 0; i < n; i++)
	{
		elem = getIthJsonbValueFromContainer(&ops->root, (uint32) i);
		parse_op(fn, i, elem, &result[i], background);
	}
	*out = result;
	return n;
}

int
imgmod_edit_chain(const char *fn, const imgmod_edit_source *source, const img_edit_op *ops, int nops,
				  img_edit_op **chain)
{
	img_edit_op *inherited = NULL;
	bool		inherits = source->inherited_ops != NULL && JB_ROOT_COUNT(source->inherited_ops) > 0;
	int			ninherited = inherits ? imgmod_parse_edit_ops(fn, source->inherited_ops, IMG_EDIT_MAX_OPS,
															 &inherited) : 0;
	int			prefix = (source->has_focus ? 1 : 0) + ninherited;
	img_edit_op *c = palloc0(sizeof(img_edit_op) * (prefix + nops + 1));

	/* the source's focal point goes through every op like any point of the picture */
	if (source->has_focus)
	{
		c[0].kind = IMG_EDIT_FOCUS;
		c[0].ratio = true;
		c[0].x = source->focus_x;
		c[0].y = source->focus_y;
	}
	if (ninherited > 0)
		memcpy(c + (source->has_focus ? 1 : 0), inherited, sizeof(img_edit_op) * ninherited);
	if (nops > 0)
		memcpy(c + prefix, ops, sizeof(img_edit_op) * nops);
	*chain = c;
	return prefix;
}

bool
imgmod_read_edit_source(int64 image_id, int32 base, int nops, MemoryContext keep, imgmod_edit_source *out)
{
	MemoryContext old;
	Oid			types[3] = {INT8OID, INT4OID, INT4OID};
	Datum		values[3];
	bool		isnull;
	HeapTuple	row;
	TupleDesc	desc;
	Datum		d;

	values[0] = Int64GetDatum(image_id);
	values[1] = Int32GetDatum(base);
	values[2] = Int32GetDatum(nops);
	if (SPI_execute_with_args("SELECT source_version, inherited_ops, width, height, focus_x, focus_y, "
							  "       master_sha256, hires_key, hires_bytes, has_staged "
							  "FROM imgmod._edit_source($1, $2, $3)",
	/* not read-only: a fresh snapshot sees the version a concurrent edit just committed */
							  3, types, values, NULL, false, 1) != SPI_OK_SELECT
		|| SPI_processed != 1)
		elog(ERROR, "imgmod: could not find what version %d of image %lld is edited from", base, (long long) image_id);
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	memset(out, 0, sizeof(*out));
	out->version = DatumGetInt32(SPI_getbinval(row, desc, 1, &isnull));
	if (isnull)
		return false;
	d = SPI_getbinval(row, desc, 2, &isnull);
	old = MemoryContextSwitchTo(keep);
	out->inherited_ops = isnull ? NULL : DatumGetJsonbPCopy(d);
	MemoryContextSwitchTo(old);
	out->width = DatumGetInt32(SPI_getbinval(row, desc, 3, &isnull));
	out->height = DatumGetInt32(SPI_getbinval(row, desc, 4, &isnull));
	out->focus_x = DatumGetFloat8(SPI_getbinval(row, desc, 5, &isnull));
	out->has_focus = !isnull;
	out->focus_y = DatumGetFloat8(SPI_getbinval(row, desc, 6, &isnull));
	out->has_focus = out->has_focus && !isnull;
	strlcpy(out->master_sha256, SPI_getvalue(row, desc, 7), sizeof(out->master_sha256));
	{
		char	   *k = SPI_getvalue(row, desc, 8);

		out->hires_key = k ? MemoryContextStrdup(keep, k) : NULL;
	}
	out->hires_bytes = DatumGetInt32(SPI_getbinval(row, desc, 9, &isnull));
	out->has_staged = DatumGetBool(SPI_getbinval(row, desc, 10, &isnull));
	return true;
}
