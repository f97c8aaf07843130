/*
 * retry_request.c — what a message on the Kafka retry topic asks for.
 *
 * Accepted values, and nothing else:
 *   {"image_id": 42}  or  {"image_id": 42, "version": 3}  (JSON object)
 *   42                                                    (a bare JSON number)
 * where every number is a whole positive integer that fits its column
 * (bigint image id, integer version).  The text is parsed by PostgreSQL's
 * own JSON parser; no field is guessed from the first digits in sight, so a
 * message can only ever retry the image it names.  Anything else is refused
 * with the reason, which the publisher logs (without the message's bytes)
 * and counts in imgmod.retry_request_stats.
 */
#include "imgmod.h"

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"

typedef enum retry_field
{
	FIELD_NONE = 0,
	FIELD_IMAGE_ID,
	FIELD_VERSION,
} retry_field;

typedef struct retry_parse
{
	int			depth;			/* 0: the top-level value; 1: inside the object */
	retry_field field;			/* the top-level field whose value comes next */
	bool		have_image_id;
	bool		have_version;
	int64		image_id;
	int32		version;
	imgmod_retry_outcome problem;	/* first thing wrong, or IMGMOD_RETRY_REQUEUED */
} retry_parse;

static void
note_problem(retry_parse *p, imgmod_retry_outcome problem)
{
	if (p->problem == IMGMOD_RETRY_REQUEUED)
		p->problem = problem;
}

/*
 * A JSON number token as a whole positive integer no larger than max:
 * fractions and exponents are not whole integers, a sign makes it not
 * positive.
 */
static imgmod_retry_outcome
parse_positive_integer(const char *token, int64 max, int64 *out)
{
	int64		value = 0;

	if (token[0] == '-')
		return IMGMOD_RETRY_NOT_POSITIVE;
	for (const char *c = token; *c; c++)
	{
		if (*c < '0' || *c > '9')
			return IMGMOD_RETRY_WRONG_TYPE;
		if (value > (max - (*c - '0')) / 10)
			return IMGMOD_RETRY_OVERFLOW;
		value = value * 10 + (*c - '0');
	}
	if (value == 0)
		return IMGMOD_RETRY_NOT_POSITIVE;
	*out = value;
	return IMGMOD_RETRY_REQUEUED;
}

static void
take_number(retry_parse *p, retry_field field, char *token, JsonTokenType type)
{
	int64		value;
	imgmod_retry_outcome result;

	if (type != JSON_TOKEN_NUMBER)
	{
		note_problem(p, IMGMOD_RETRY_WRONG_TYPE);
		return;
	}
	result = parse_positive_integer(token, field == FIELD_VERSION ? PG_INT32_MAX : PG_INT64_MAX,
									&value);
	if (result != IMGMOD_RETRY_REQUEUED)
	{
		note_problem(p, result);
		return;
	}
	if (field == FIELD_VERSION)
		p->version = (int32) value;
	else
		p->image_id = value;
}

static void
on_nested_start(void *state)
{
	retry_parse *p = state;

	/* An object is only right at the top; anything nested is a wrong type. */
	if (p->depth > 0 || p->field != FIELD_NONE)
		note_problem(p, IMGMOD_RETRY_WRONG_TYPE);
	p->depth++;
}

static void
on_array_start(void *state)
{
	retry_parse *p = state;

	note_problem(p, IMGMOD_RETRY_WRONG_TYPE);
	p->depth++;
}

static void
on_nested_end(void *state)
{
	((retry_parse *) state)->depth--;
}

static void
on_field_start(void *state, char *fname, bool isnull)
{
	retry_parse *p = state;

	(void) isnull;
	if (p->depth != 1)
		return;
	if (strcmp(fname, "image_id") == 0)
	{
		if (p->have_image_id)
			note_problem(p, IMGMOD_RETRY_DUPLICATE_FIELD);
		p->have_image_id = true;
		p->field = FIELD_IMAGE_ID;
	}
	else if (strcmp(fname, "version") == 0)
	{
		if (p->have_version)
			note_problem(p, IMGMOD_RETRY_DUPLICATE_FIELD);
		p->have_version = true;
		p->field = FIELD_VERSION;
	}
	else
		note_problem(p, IMGMOD_RETRY_UNKNOWN_FIELD);
}

static void
on_field_end(void *state, char *fname, bool isnull)
{
	retry_parse *p = state;

	(void) fname;
	(void) isnull;
	if (p->depth == 1)
		p->field = FIELD_NONE;
}

static void
on_scalar(void *state, char *token, JsonTokenType type)
{
	retry_parse *p = state;

	if (p->depth == 0)
	{
		/* the bare form: the whole value is the image id */
		p->have_image_id = true;
		take_number(p, FIELD_IMAGE_ID, token, type);
	}
	else if (p->depth == 1 && p->field != FIELD_NONE)
		take_number(p, p->field, token, type);
}

imgmod_retry_outcome
imgmod_parse_retry_request(const char *data, size_t len, int64 *image_id, int32 *version)
{
	retry_parse p;
	JsonSemAction sem;
	JsonLexContext *lex;

	*image_id = 0;
	*version = 0;
	if (len > IMGMOD_RETRY_REQUEST_MAX_BYTES)
		return IMGMOD_RETRY_TOO_LARGE;
	if (data == NULL || len == 0)
		return IMGMOD_RETRY_MALFORMED;

	memset(&p, 0, sizeof(p));
	p.problem = IMGMOD_RETRY_REQUEUED;
	memset(&sem, 0, sizeof(sem));
	sem.semstate = &p;
	sem.object_start = on_nested_start;
	sem.object_end = on_nested_end;
	sem.array_start = on_array_start;
	sem.array_end = on_nested_end;
	sem.object_field_start = on_field_start;
	sem.object_field_end = on_field_end;
	sem.scalar = on_scalar;
	/* The lexer reads exactly len bytes; a NUL inside is simply invalid JSON. */
	lex = makeJsonLexContextCstringLen(pnstrdup(data, len), (int) len, GetDatabaseEncoding(), true);
	if (pg_parse_json(lex, &sem) != JSON_SUCCESS)
		return IMGMOD_RETRY_MALFORMED;
	if (p.problem != IMGMOD_RETRY_REQUEUED)
		return p.problem;
	if (!p.have_image_id)
		return IMGMOD_RETRY_MISSING_IMAGE_ID;
	*image_id = p.image_id;
	*version = p.have_version ? p.version : 0;
	return IMGMOD_RETRY_REQUEUED;
}

const char *
imgmod_retry_outcome_name(imgmod_retry_outcome outcome)
{
	static const char *const names[IMGMOD_RETRY_OUTCOME_COUNT] = {
		[IMGMOD_RETRY_REQUEUED] = "requeued",
		[IMGMOD_RETRY_NOTHING_TO_RETRY] = "nothing_to_retry",
		[IMGMOD_RETRY_UNKNOWN_IMAGE] = "unknown_image",
		[IMGMOD_RETRY_UNKNOWN_VERSION] = "unknown_version",
		[IMGMOD_RETRY_MALFORMED] = "malformed",
		[IMGMOD_RETRY_WRONG_TYPE] = "wrong_type",
		[IMGMOD_RETRY_NOT_POSITIVE] = "not_positive",
		[IMGMOD_RETRY_OVERFLOW] = "overflow",
		[IMGMOD_RETRY_MISSING_IMAGE_ID] = "missing_image_id",
		[IMGMOD_RETRY_UNKNOWN_FIELD] = "unknown_field",
		[IMGMOD_RETRY_DUPLICATE_FIELD] = "duplicate_field",
		[IMGMOD_RETRY_TOO_LARGE] = "too_large",
		[IMGMOD_RETRY_FAILED] = "failed",
	};

	return (int) outcome >= 0 && outcome < IMGMOD_RETRY_OUTCOME_COUNT ? names[outcome] : "?";
}
