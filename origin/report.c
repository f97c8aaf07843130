/*
 * report.c — the capacity reporter thread: one connection of its own, one
 * call of imgmod.cdn_report() per interval.  A report that fails (Postgres
 * down) is simply tried again at the next interval; the view shows the
 * node stale meanwhile, which is the truth.
 */
#include "report.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct origin_reporter
{
	char	   *conninfo;
	char	   *node;
	int			interval_s;
	origin_lru *lru;
	pthread_t	thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool		stopping;
	PGconn	   *conn;
};

static void
report_once(origin_reporter *rep)
{
	origin_lru_stats s;
	char		v[7][32];
	char		interval[32];
	const char *params[9];
	PGresult   *r;

	if (rep->conn == NULL || PQstatus(rep->conn) != CONNECTION_OK)
	{
		const char *keys[] = {"dbname", "application_name", "connect_timeout", "options", NULL};
		const char *values[] = {rep->conninfo, "imgmod-origin report", "5",
		"-c statement_timeout=5000 -c search_path=pg_catalog,pg_temp", NULL};

		PQfinish(rep->conn);
		rep->conn = PQconnectdbParams(keys, values, 1);
		if (PQstatus(rep->conn) != CONNECTION_OK)
		{
			PQfinish(rep->conn);
			rep->conn = NULL;
			return;
		}
	}
	origin_lru_read_stats(rep->lru, &s);
	snprintf(v[0], sizeof(v[0]), "%llu", (unsigned long long) s.capacity_bytes);
	snprintf(v[1], sizeof(v[1]), "%llu", (unsigned long long) s.used_bytes);
	snprintf(v[2], sizeof(v[2]), "%llu", (unsigned long long) s.items);
	snprintf(v[3], sizeof(v[3]), "%llu", (unsigned long long) s.hits);
	snprintf(v[4], sizeof(v[4]), "%llu", (unsigned long long) s.misses);
	snprintf(v[5], sizeof(v[5]), "%llu", (unsigned long long) s.evictions);
	snprintf(interval, sizeof(interval), "%d s", rep->interval_s);
	params[0] = rep->node;
	params[1] = "origin-memory";
	for (int i = 0; i < 6; i++)
		params[2 + i] = v[i];
	params[8] = interval;
	r = PQexecParams(rep->conn,
					 "SELECT imgmod.cdn_report($1, $2, $3::bigint, $4::bigint, $5::bigint, $6::bigint, "
					 "$7::bigint, $8::bigint, $9::interval)",
					 9, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fprintf(stderr, "imgmod-origin: capacity report failed: %s", PQerrorMessage(rep->conn));
	PQclear(r);
}

static void *
report_loop(void *arg)
{
	origin_reporter *rep = arg;

	pthread_mutex_lock(&rep->lock);
	while (!rep->stopping)
	{
		struct timespec until;

		pthread_mutex_unlock(&rep->lock);
		report_once(rep);
		pthread_mutex_lock(&rep->lock);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += rep->interval_s;
		while (!rep->stopping && pthread_cond_timedwait(&rep->wake, &rep->lock, &until) == 0)
			;
	}
	pthread_mutex_unlock(&rep->lock);
	report_once(rep);			/* the last word: what the cache held when it stopped */
	return NULL;
}

origin_reporter *
origin_report_start(const char *conninfo, const char *node, int interval_s, origin_lru *lru)
{
	origin_reporter *rep = calloc(1, sizeof(*rep));

	if (rep == NULL)
		return NULL;
	rep->conninfo = strdup(conninfo);
	rep->node = strdup(node);
	rep->interval_s = interval_s > 0 ? interval_s : 5;
	rep->lru = lru;
	pthread_mutex_init(&rep->lock, NULL);
	pthread_cond_init(&rep->wake, NULL);
	if (rep->conninfo == NULL || rep->node == NULL || pthread_create(&rep->thread, NULL, report_loop, rep) != 0)
	{
		free(rep->conninfo);
		free(rep->node);
		free(rep);
		return NULL;
	}
	return rep;
}

void
origin_report_stop(origin_reporter *rep)
{
	if (rep == NULL)
		return;
	pthread_mutex_lock(&rep->lock);
	rep->stopping = true;
	pthread_cond_signal(&rep->wake);
	pthread_mutex_unlock(&rep->lock);
	pthread_join(rep->thread, NULL);
	PQfinish(rep->conn);
	free(rep->conninfo);
	free(rep->node);
	free(rep);
}
