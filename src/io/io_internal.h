/*
 * io_internal.h — what the library's files share and callers never see:
 * the error helper, the hooks with their defaults filled in, and the
 * backends' entry points, which only the dispatcher (store.c) calls.
 */
#ifndef IMGIO_INTERNAL_H
#define IMGIO_INTERNAL_H

/* POSIX interfaces (clock_gettime, fsync, strdup) under -std=c11. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "imgio.h"

#include <stdio.h>
#include <string.h>

#define IMGIO_PATH_MAX 1024

/* printf into err->message; returns false, so failures read "return imgio_fail(...)". */
bool		imgio_fail(imgio_error *err, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

/* The caller's hooks with every NULL member replaced by its default. */
void		imgio_hooks_resolve(const imgio_hooks *given, imgio_hooks *out);

static inline void *
imgio_hook_alloc(const imgio_hooks *h, size_t size)
{
	return h->alloc(size ? size : 1, h->ctx);
}

static inline void
imgio_hook_free(const imgio_hooks *h, void *ptr)
{
	if (ptr != NULL)
		h->free(ptr, h->ctx);
}

/*
 * Sleep ms milliseconds in short slices, asking should_abort between them;
 * false when it asked to stop.
 */
bool		imgio_sleep_unless_aborted(const imgio_hooks *h, long ms);

/* Monotonic milliseconds, for backoff deadlines. */
int64_t		imgio_now_ms(void);

/* ------------------------------------------------- local directory backend */

bool		imgio_local_put(const imgio_store_config *store, const char *key,
							const uint8_t *data, size_t len, imgio_error *err);
bool		imgio_local_get(const imgio_store_config *store, const char *key,
							size_t expected_bytes, uint8_t *dest, size_t *got, imgio_error *err);
bool		imgio_local_delete(const imgio_store_config *store, const char *key, imgio_error *err);
bool		imgio_local_probe(const imgio_store_config *store, imgio_error *err);

/* ------------------------------------------------------------- S3 backend */

/*
 * A thread's S3 connection state: one easy handle for single requests (its
 * connection cache keeps connections alive from one request to the next)
 * and a multi handle for parallel PUTs, both made on first use.
 */
typedef struct imgio_s3_connections
{
	void	   *easy;			/* CURL * */
	void	   *multi;			/* CURLM * */
	uint64_t	jitter_state;	/* backoff jitter, per client: no shared PRNG */
} imgio_s3_connections;

void		imgio_s3_connections_init(imgio_s3_connections *conn, const void *seed);
void		imgio_s3_connections_close(imgio_s3_connections *conn);

bool		imgio_s3_get(imgio_s3_connections *conn, const imgio_hooks *hooks,
						 const imgio_store_config *store, const char *key,
						 size_t expected_bytes, uint8_t *dest, size_t capacity, size_t *got,
						 imgio_error *err);
bool		imgio_s3_delete(imgio_s3_connections *conn, const imgio_hooks *hooks,
							const imgio_store_config *store, const char *key, imgio_error *err);
bool		imgio_s3_probe(imgio_s3_connections *conn, const imgio_hooks *hooks,
						   const imgio_store_config *store, int timeout_ms, imgio_error *err);
/* items are all S3 items; returns how many failed. */
int			imgio_s3_put_many(imgio_s3_connections *conn, const imgio_hooks *hooks,
							  imgio_put_item *items, int n, imgio_error *interrupted);

/* Room for an S3 error document in a GET's destination. */
#define IMGIO_S3_ERROR_BODY_MAX (16 * 1024)

#endif							/* IMGIO_INTERNAL_H */
