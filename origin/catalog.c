/*
 * catalog.c — imgmod-origin's view of PostgreSQL.
 *
 * Per image, one prepared query returns its status, current version and
 * every variant row still kept; the answer is cached in a hash of images.
 * Staleness is bounded by LISTEN imgmod_status on a connection of its own:
 * any notification about an image drops that image's entry, and an
 * unparseable one, or a lost listening connection, drops them all.  A
 * lookup that raced with a drop does not store what it read (the drop
 * epoch moved while it queried), so a committed change can never be
 * overwritten by an older read.
 */
#include "catalog.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOOKUP_SQL \
	"SELECT i.status, i.current_version, v.version, v.preset, v.object_key, v.etag, v.bytes, " \
	"       floor(extract(epoch FROM v.created_at))::bigint " \
	"  FROM imgmod.images i LEFT JOIN imgmod.variants v ON v.image_id = i.id " \
	" WHERE i.id = $1"

typedef struct image_entry
{
	int64_t		image_id;
	bool		exists;			/* and not deleted */
	int32_t		current_version;	/* 0: none yet */
	int			nvariants;
	origin_variant *variants;
	struct image_entry *next;
} image_entry;

typedef struct pooled_conn
{
	PGconn	   *conn;
	bool		busy;
} pooled_conn;

struct origin_catalog
{
	char	   *conninfo;
	int			timeout_ms;
	pthread_mutex_t lock;		/* the hash, the pool, the epoch, reachable,
								 * installation, listening */
	pthread_cond_t pool_free;
	image_entry *buckets[1024];
	uint64_t	epoch;			/* bumped by every drop */
	int			pool_size;
	pooled_conn *pool;
	bool		reachable;
	char		installation[ORIGIN_INSTALLATION_MAX];
	pthread_t	listener;
	bool		listener_started;	/* main thread only */
	bool		listening;
	atomic_bool stopping;		/* set by close, read by the listener */
};

static size_t
bucket_of(int64_t image_id)
{
	return (size_t) ((uint64_t) image_id * 11400714819323198485ULL >> 54);
}

static void
free_entry(image_entry *e)
{
	free(e->variants);
	free(e);
}

/* Caller holds the lock. */
static void
drop_image(origin_catalog *cat, int64_t image_id)
{
	image_entry **link = &cat->buckets[bucket_of(image_id)];

	cat->epoch++;
	while (*link)
	{
		if ((*link)->image_id == image_id)
		{
			image_entry *gone = *link;

			*link = gone->next;
			free_entry(gone);
			return;
		}
		link = &(*link)->next;
	}
}

/* Caller holds the lock. */
static void
drop_all(origin_catalog *cat)
{
	cat->epoch++;
	for (size_t b = 0; b < sizeof(cat->buckets) / sizeof(cat->buckets[0]); b++)
	{
		while (cat->buckets[b])
		{
			image_entry *gone = cat->buckets[b];

			cat->buckets[b] = gone->next;
			free_entry(gone);
		}
	}
}

static PGconn *
connect_db(origin_catalog *cat)
{
	char		options[128];
	const char *keys[] = {"dbname", "options", "application_name", "connect_timeout", NULL};
	const char *values[5];
	PGconn	   *conn;

	/* a query never outlives the timeout; the origin's SQL names its schema */
	snprintf(options, sizeof(options), "-c statement_timeout=%d -c search_path=pg_catalog,pg_temp",
			 cat->timeout_ms);
	values[0] = cat->conninfo;
	values[1] = options;
	values[2] = "imgmod-origin";
	values[3] = "5";
	values[4] = NULL;
	conn = PQconnectdbParams(keys, values, 1);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

origin_catalog *
origin_catalog_open(const char *conninfo, int pool_size, int timeout_ms)
{
	origin_catalog *cat = calloc(1, sizeof(*cat));

	if (cat == NULL)
		return NULL;
	cat->conninfo = strdup(conninfo ? conninfo : "");
	cat->pool_size = pool_size > 0 ? pool_size : 4;
	cat->pool = calloc(cat->pool_size, sizeof(pooled_conn));
	cat->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
	if (cat->conninfo == NULL || cat->pool == NULL)
	{
		free(cat->conninfo);
		free(cat->pool);
		free(cat);
		return NULL;
	}
	pthread_mutex_init(&cat->lock, NULL);
	pthread_cond_init(&cat->pool_free, NULL);
	return cat;
}

/* A pooled connection, (re)connected if needed; NULL when PostgreSQL is unreachable. */
/* A fresh connection with the lookup prepared, in place of whatever the slot held. */
static void
reconnect(origin_catalog *cat, pooled_conn *pc)
{
	PGresult   *r;

	if (pc->conn)
		PQfinish(pc->conn);
	pc->conn = connect_db(cat);
	if (pc->conn == NULL)
		return;
	r = PQprepare(pc->conn, "lookup", LOOKUP_SQL, 1, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
	{
		PQfinish(pc->conn);
		pc->conn = NULL;
	}
	PQclear(r);
}

static pooled_conn *
acquire(origin_catalog *cat)
{
	pooled_conn *pc = NULL;

	pthread_mutex_lock(&cat->lock);
	for (;;)
	{
		for (int i = 0; i < cat->pool_size && pc == NULL; i++)
			if (!cat->pool[i].busy)
				pc = &cat->pool[i];
		if (pc)
			break;
		pthread_cond_wait(&cat->pool_free, &cat->lock);
	}
	pc->busy = true;
	pthread_mutex_unlock(&cat->lock);

	if (pc->conn == NULL || PQstatus(pc->conn) != CONNECTION_OK)
		reconnect(cat, pc);
	return pc;
}

static void
release(origin_catalog *cat, pooled_conn *pc)
{
	pthread_mutex_lock(&cat->lock);
	pc->busy = false;
	pthread_cond_signal(&cat->pool_free);
	pthread_mutex_unlock(&cat->lock);
}

/* Reads an image's rows; false when PostgreSQL did not answer. */
static bool
load_image(origin_catalog *cat, int64_t image_id, image_entry *e)
{
	pooled_conn *pc = acquire(cat);
	char		id[32];
	const char *params[1] = {id};
	PGresult   *r;
	bool		ok = false;

	memset(e, 0, sizeof(*e));
	e->image_id = image_id;
	if (pc->conn == NULL)
		goto done;
	snprintf(id, sizeof(id), "%lld", (long long) image_id);
	r = PQexecPrepared(pc->conn, "lookup", 1, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQstatus(pc->conn) != CONNECTION_OK)
	{
		/*
		 * A pooled connection PostgreSQL dropped (a restart) is only found
		 * out by using it: connect again and ask once more, so the first
		 * requests after a restart are answered, not refused with a 503.
		 */
		PQclear(r);
		reconnect(cat, pc);
		if (pc->conn == NULL)
			goto done;
		r = PQexecPrepared(pc->conn, "lookup", 1, params, NULL, NULL, 0);
	}
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
	{
		PQclear(r);
		if (PQstatus(pc->conn) != CONNECTION_OK)
		{
			PQfinish(pc->conn);
			pc->conn = NULL;
		}
		goto done;
	}
	ok = true;
	if (PQntuples(r) > 0 && strcmp(PQgetvalue(r, 0, 0), "deleted") != 0)
	{
		int			n = PQntuples(r);

		e->exists = true;
		e->current_version = PQgetisnull(r, 0, 1) ? 0 : atoi(PQgetvalue(r, 0, 1));
		e->variants = calloc(n, sizeof(origin_variant));
		if (e->variants == NULL)
			ok = false;
		for (int i = 0; ok && i < n; i++)
		{
			origin_variant *v = &e->variants[e->nvariants];

			if (PQgetisnull(r, i, 2))
				continue;		/* the image has no variant row yet */
			v->image_id = image_id;
			v->version = atoi(PQgetvalue(r, i, 2));
			v->current = v->version == e->current_version;
			snprintf(v->preset, sizeof(v->preset), "%s", PQgetvalue(r, i, 3));
			snprintf(v->object_key, sizeof(v->object_key), "%s", PQgetvalue(r, i, 4));
			snprintf(v->etag, sizeof(v->etag), "%s", PQgetvalue(r, i, 5));
			v->bytes = atoll(PQgetvalue(r, i, 6));
			v->created_at = (time_t) atoll(PQgetvalue(r, i, 7));
			e->nvariants++;
		}
	}
	PQclear(r);
done:
	pthread_mutex_lock(&cat->lock);
	cat->reachable = ok;
	pthread_mutex_unlock(&cat->lock);
	release(cat, pc);
	return ok;
}

static origin_lookup
answer(const image_entry *e, const origin_route *route, origin_variant *out)
{
	int32_t		want;

	if (!e->exists)
		return ORIGIN_LOOKUP_NO_IMAGE;
	if (route->kind == ORIGIN_ROUTE_CURRENT && e->current_version == 0)
		return ORIGIN_LOOKUP_NOT_READY;
	want = route->kind == ORIGIN_ROUTE_VERSION ? route->version : e->current_version;
	for (int i = 0; i < e->nvariants; i++)
		if (e->variants[i].version == want && strcmp(e->variants[i].preset, route->preset) == 0)
		{
			*out = e->variants[i];
			return ORIGIN_LOOKUP_FOUND;
		}
	return ORIGIN_LOOKUP_NO_VARIANT;
}

origin_lookup
origin_catalog_find(origin_catalog *cat, const origin_route *route, origin_variant *out)
{
	image_entry *e;
	image_entry *fresh;
	uint64_t	epoch;
	origin_lookup result;

	pthread_mutex_lock(&cat->lock);
	for (e = cat->buckets[bucket_of(route->image_id)]; e; e = e->next)
		if (e->image_id == route->image_id)
			break;
	if (e)
	{
		result = answer(e, route, out);
		pthread_mutex_unlock(&cat->lock);
		return result;
	}
	epoch = cat->epoch;
	pthread_mutex_unlock(&cat->lock);

	fresh = malloc(sizeof(*fresh));
	if (fresh == NULL)
		return ORIGIN_LOOKUP_UNAVAILABLE;
	if (!load_image(cat, route->image_id, fresh))
	{
		free(fresh->variants);
		free(fresh);
		return ORIGIN_LOOKUP_UNAVAILABLE;
	}
	result = answer(fresh, route, out);

	pthread_mutex_lock(&cat->lock);
	if (cat->epoch == epoch && cat->listening)
	{
		size_t		b = bucket_of(route->image_id);

		fresh->next = cat->buckets[b];
		cat->buckets[b] = fresh;
		fresh = NULL;
	}
	pthread_mutex_unlock(&cat->lock);
	if (fresh)
		free_entry(fresh);		/* something changed meanwhile: answer, don't keep */
	return result;
}

/* The image id a notification is about, or 0 when the payload names none. */
static int64_t
image_of_payload(const char *payload)
{
	const char *p = strstr(payload, "\"image_id\": ");
	long long	id;

	if (p == NULL || sscanf(p + 12, "%lld", &id) != 1 || id <= 0)
		return 0;
	return (int64_t) id;
}

static void *
listen_loop(void *arg)
{
	origin_catalog *cat = arg;

	while (!atomic_load(&cat->stopping))
	{
		PGconn	   *conn = connect_db(cat);
		PGresult   *r;

		if (conn == NULL)
		{
			pthread_mutex_lock(&cat->lock);
			cat->reachable = false;
			pthread_mutex_unlock(&cat->lock);
			sleep(1);
			continue;
		}
		r = PQexec(conn, "LISTEN imgmod_status");
		if (PQresultStatus(r) == PGRES_COMMAND_OK)
		{
			PQclear(r);
			r = PQexec(conn, "SELECT id::text FROM imgmod.installation");
			pthread_mutex_lock(&cat->lock);
			if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
				snprintf(cat->installation, sizeof(cat->installation), "%s", PQgetvalue(r, 0, 0));
			/* whatever happened while nobody listened is unknown: forget all */
			drop_all(cat);
			cat->listening = true;
			cat->reachable = true;
			pthread_mutex_unlock(&cat->lock);
		}
		PQclear(r);
		while (!atomic_load(&cat->stopping) && PQstatus(conn) == CONNECTION_OK)
		{
			struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
			PGnotify   *n;

			if (poll(&pfd, 1, 500) < 0 && errno != EINTR)
				break;
			if (!PQconsumeInput(conn))
				break;
			while ((n = PQnotifies(conn)) != NULL)
			{
				int64_t		image = image_of_payload(n->extra);

				pthread_mutex_lock(&cat->lock);
				if (image > 0)
					drop_image(cat, image);
				else
					drop_all(cat);
				pthread_mutex_unlock(&cat->lock);
				PQfreemem(n);
			}
		}
		pthread_mutex_lock(&cat->lock);
		cat->listening = false;
		drop_all(cat);
		pthread_mutex_unlock(&cat->lock);
		PQfinish(conn);
	}
	return NULL;
}

bool
origin_catalog_listen(origin_catalog *cat)
{
	if (pthread_create(&cat->listener, NULL, listen_loop, cat) != 0)
		return false;
	cat->listener_started = true;
	return true;
}

bool
origin_catalog_reachable(origin_catalog *cat)
{
	bool		r;

	pthread_mutex_lock(&cat->lock);
	r = cat->reachable;
	pthread_mutex_unlock(&cat->lock);
	return r;
}

void
origin_catalog_installation(origin_catalog *cat, char *buf, size_t size)
{
	pthread_mutex_lock(&cat->lock);
	snprintf(buf, size, "%s", cat->installation);
	pthread_mutex_unlock(&cat->lock);
}

void
origin_catalog_close(origin_catalog *cat)
{
	if (cat == NULL)
		return;
	atomic_store(&cat->stopping, true);
	if (cat->listener_started)
		pthread_join(cat->listener, NULL);
	for (int i = 0; i < cat->pool_size; i++)
		if (cat->pool[i].conn)
			PQfinish(cat->pool[i].conn);
	pthread_mutex_lock(&cat->lock);
	drop_all(cat);
	pthread_mutex_unlock(&cat->lock);
	free(cat->pool);
	free(cat->conninfo);
	free(cat);
}
