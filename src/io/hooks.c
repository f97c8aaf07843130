/*
 * hooks.c — the error buffer, the caller's hooks and their defaults (with
 * the names of the verbs they count), and the abortable sleep every
 * backoff uses.  A leaf apart from libc: every other file may use it.
 */
#include "io_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <time.h>

bool
imgio_fail(imgio_error *err, const char *fmt,...)
{
	if (err != NULL)
	{
		va_list		ap;

		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return false;
}

const char *
imgio_verb_name(imgio_verb verb)
{
	switch (verb)
	{
		case IMGIO_VERB_PUT:
			return "PUT";
		case IMGIO_VERB_GET:
			return "GET";
		case IMGIO_VERB_DELETE:
			return "DELETE";
		default:
			return "?";
	}
}

static void *
default_alloc(size_t size, void *ctx)
{
	(void) ctx;
	return malloc(size);
}

static void
default_free(void *ptr, void *ctx)
{
	(void) ctx;
	free(ptr);
}

static bool
never_abort(void *ctx)
{
	(void) ctx;
	return false;
}

static void
count_no_request(const imgio_store_config *store, imgio_verb verb, bool ok, int retries, void *ctx)
{
	(void) store;
	(void) verb;
	(void) ok;
	(void) retries;
	(void) ctx;
}

static void
count_no_cache(imgio_cache_counter counter, int n, void *ctx)
{
	(void) counter;
	(void) n;
	(void) ctx;
}

static void
drop_warning(const char *message, void *ctx)
{
	(void) message;
	(void) ctx;
}

void
imgio_hooks_resolve(const imgio_hooks *given, imgio_hooks *out)
{
	imgio_hooks none = {0};

	if (given == NULL)
		given = &none;
	/* malloc with the caller's free (or the reverse) would corrupt the heap */
	out->alloc = given->alloc && given->free ? given->alloc : default_alloc;
	out->free = given->alloc && given->free ? given->free : default_free;
	out->should_abort = given->should_abort ? given->should_abort : never_abort;
	out->count_request = given->count_request ? given->count_request : count_no_request;
	out->count_cache = given->count_cache ? given->count_cache : count_no_cache;
	out->warn = given->warn ? given->warn : drop_warning;
	out->ctx = given->ctx;
}

int64_t
imgio_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Slices short enough that a stop request is honoured well within a second. */
#define SLEEP_SLICE_MS 20

bool
imgio_sleep_unless_aborted(const imgio_hooks *h, long ms)
{
	int64_t		until = imgio_now_ms() + ms;

	for (;;)
	{
		int64_t		left = until - imgio_now_ms();
		struct timespec ts;

		if (h->should_abort(h->ctx))
			return false;
		if (left <= 0)
			return true;
		if (left > SLEEP_SLICE_MS)
			left = SLEEP_SLICE_MS;
		ts.tv_sec = 0;
		ts.tv_nsec = (long) left * 1000000L;
		nanosleep(&ts, NULL);
	}
}
