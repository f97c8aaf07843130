/*
 * inspect.c — imgmod.inspect(): the upload checks, reported instead of
 * enforced.  Nothing is stored and nothing is audited: a DBA can ask what
 * a file is, and what upload() would say about it, without side effects.
 */
#include "imgmod.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

static void
json_key(StringInfo buf, const char *key, bool *first)
{
	if (!*first)
		appendStringInfoString(buf, ", ");
	*first = false;
	escape_json(buf, key);
	appendStringInfoString(buf, ": ");
}

static void
json_str(StringInfo buf, const char *key, const char *value, bool *first)
{
	json_key(buf, key, first);
	if (value == NULL)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, value);
}

static void
json_int(StringInfo buf, const char *key, long long value, bool *first)
{
	json_key(buf, key, first);
	appendStringInfo(buf, "%lld", value);
}

static void
json_bool(StringInfo buf, const char *key, bool value, bool *first)
{
	json_key(buf, key, first);
	appendStringInfoString(buf, value ? "true" : "false");
}

PG_FUNCTION_INFO_V1(imgmod_inspect);
Datum
imgmod_inspect(PG_FUNCTION_ARGS)
{
	bytea	   *data = PG_GETARG_BYTEA_PP(0);
	const uint8_t *bytes = (const uint8_t *) VARDATA_ANY(data);
	size_t		len = VARSIZE_ANY_EXHDR(data);
	img_limits	limits;
	img_normalise_options options;
	img_normalised norm;
	img_error	err;
	img_status	st;
	const img_info *info = &norm.info;
	StringInfoData buf;
	bool		first = true;
	bool		sub;
	char		sha256[65];

	imgmod_current_limits(&limits);
	options.master_quality = imgmod_master_quality;
	imgmod_background_rgb(options.background);
	memset(&err, 0, sizeof(err));
	st = img_normalise(bytes, len, &limits, &options, &norm, &err);
	imgmod_core_interrupted(st);
	imgmod_sha256_hex(bytes, len, sha256);

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	json_str(&buf, "format", img_format_name(info->format), &first);
	json_str(&buf, "mime", img_format_mime(info->format), &first);
	json_int(&buf, "bytes", (long long) len, &first);
	json_str(&buf, "sha256", sha256, &first);
	if (info->width != 0 || info->height != 0)
	{
		json_int(&buf, "width", info->width, &first);
		json_int(&buf, "height", info->height, &first);
		json_int(&buf, "frames", info->frames, &first);
		json_int(&buf, "orientation", info->orientation, &first);
		json_int(&buf, "bit_depth", info->bit_depth, &first);
		json_str(&buf, "colour_model", img_colour_model_name(info->colour), &first);
		json_bool(&buf, "alpha", info->has_alpha, &first);
		json_bool(&buf, "progressive", info->progressive, &first);
		if (info->format == IMG_FORMAT_JPEG)
			json_int(&buf, "scans", info->scans, &first);
	}

	json_key(&buf, "icc", &first);
	appendStringInfoChar(&buf, '{');
	sub = true;
	json_bool(&buf, "present", info->has_icc, &sub);
	if (info->has_icc)
	{
		json_int(&buf, "bytes", (long long) info->icc_bytes, &sub);
		json_str(&buf, "description", info->icc_description[0] ? info->icc_description : NULL, &sub);
	}
	appendStringInfoChar(&buf, '}');

	json_key(&buf, "metadata", &first);
	appendStringInfoChar(&buf, '{');
	sub = true;
	json_bool(&buf, "exif", info->has_exif, &sub);
	json_bool(&buf, "gps", info->has_gps, &sub);
	json_bool(&buf, "xmp", info->has_xmp, &sub);
	json_bool(&buf, "iptc", info->has_iptc, &sub);
	json_bool(&buf, "comment", info->has_comment, &sub);
	json_bool(&buf, "trailing_data", info->has_trailing_data, &sub);
	appendStringInfoChar(&buf, '}');

	json_str(&buf, "verdict", st == IMG_OK ? "accept" : "reject", &first);
	if (st == IMG_OK)
	{
		json_key(&buf, "normalised", &first);
		appendStringInfoChar(&buf, '{');
		sub = true;
		json_int(&buf, "width", norm.width, &sub);
		json_int(&buf, "height", norm.height, &sub);
		json_str(&buf, "method", img_master_method_name(norm.method), &sub);
		json_int(&buf, "bytes", (long long) norm.master.len, &sub);
		appendStringInfoChar(&buf, '}');
		img_normalised_free(&norm);
	}
	else
	{
		json_str(&buf, "reason", img_status_name(st), &first);
		json_str(&buf, "sqlstate", imgmod_sqlstate_text(st), &first);
		json_str(&buf, "message", err.message, &first);
	}
	appendStringInfoChar(&buf, '}');

	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}
