/*
 * http.c — the request handler of imgmod-origin.
 *
 * A request is answered from the route alone: the path is parsed strictly
 * (route.c) before anything is looked up, the catalog says which variant
 * object that is, the sources give its bytes.  Bodies of errors are short
 * plain text with nothing internal in them.
 */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics.h"
#include "route.h"

struct origin_http
{
	struct MHD_Daemon *daemon;
	origin_catalog *cat;
	origin_sources *src;
	origin_lru *lru;
};

/* Versioned URLs never change; the current one changes when an edit lands. */
#define CACHE_IMMUTABLE "public, max-age=31536000, immutable"
#define CACHE_CURRENT "public, max-age=60, s-maxage=31536000"
#define CACHE_NOT_FOUND "public, max-age=10"

/* The raw path, never percent-decoded: the route grammar refuses '%'. */
static size_t
keep_escaped(void *cls, struct MHD_Connection *c, char *s)
{
	(void) cls;
	(void) c;
	return strlen(s);
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Queues r (NULL: out of memory, the connection is closed) and drops our reference. */
static enum MHD_Result
queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *r)
{
	enum MHD_Result ret;

	if (r == NULL)
		return MHD_NO;
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* A short plain-text answer; NULL when out of memory. */
static struct MHD_Response *
text_response(unsigned status, const char *body, const char *cache_control)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *) body, MHD_RESPMEM_PERSISTENT);

	if (r == NULL)
		return NULL;
	MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Cache-Control", cache_control ? cache_control : "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
		MHD_add_response_header(r, "Retry-After", "5");
	return r;
}

static enum MHD_Result
answer_text(struct MHD_Connection *c, unsigned status, const char *body, const char *cache_control)
{
	return queue(c, status, text_response(status, body, cache_control));
}

/* What an edge purges this answer by: see origin_surrogate_keys() for the contract. */
static void
add_surrogate_keys(struct MHD_Response *r, const origin_route *route)
{
	char		keys[ORIGIN_SURROGATE_KEYS_MAX];

	if (r == NULL || !origin_surrogate_keys(route, keys, sizeof(keys)))
		return;
	MHD_add_response_header(r, "xkey", keys);
	MHD_add_response_header(r, "Surrogate-Key", keys);
}

/* Does If-None-Match name this ETag (or "*")?  Weak comparison, as RFC 9110 asks for it. */
static bool
etag_matches(const char *header, const char *etag)
{
	size_t		n = strlen(etag);
	const char *p = header;

	while (p && *p)
	{
		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (strncmp(p, etag, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
			return true;
		p = strchr(p, ',');
	}
	return false;
}

static void
http_date(time_t t, char *buf, size_t size)
{
	struct tm	tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

typedef struct held_blob
{
	origin_lru *lru;
	const origin_blob *blob;
} held_blob;

static void
release_held(void *cls)
{
	held_blob  *h = cls;

	origin_lru_release(h->lru, h->blob);
	free(h);
}

static void
add_variant_headers(struct MHD_Response *r, const origin_route *route, const origin_variant *v)
{
	char		date[64];

	if (r == NULL)
		return;
	http_date(v->created_at, date, sizeof(date));
	MHD_add_response_header(r, "Content-Type", "image/jpeg");
	MHD_add_response_header(r, "ETag", v->etag);
	MHD_add_response_header(r, "Last-Modified", date);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Cache-Control",
							route->kind == ORIGIN_ROUTE_VERSION ? CACHE_IMMUTABLE : CACHE_CURRENT);
	add_surrogate_keys(r, route);
}

static enum MHD_Result
serve_variant(origin_http *http, struct MHD_Connection *c, const origin_route *route, unsigned *status,
			  uint64_t *sent)
{
	origin_variant v;
	const origin_blob *blob = NULL;
	origin_tier tier;
	const char *inm;
	struct MHD_Response *r;
	held_blob  *held;

	switch (origin_catalog_find(http->cat, route, &v))
	{
		case ORIGIN_LOOKUP_FOUND:
			break;
		case ORIGIN_LOOKUP_UNAVAILABLE:
			*status = MHD_HTTP_SERVICE_UNAVAILABLE;
			return answer_text(c, *status, "the image catalogue is unavailable; retry shortly\n", NULL);
		default:
			/* keyed too: the purge of the version that makes it exist evicts it */
			*status = MHD_HTTP_NOT_FOUND;
			r = text_response(*status, "no such image or variant\n", CACHE_NOT_FOUND);
			add_surrogate_keys(r, route);
			return queue(c, *status, r);
	}

	inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match");
	if (inm && etag_matches(inm, v.etag))
	{
		r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
		add_variant_headers(r, route, &v);
		*status = MHD_HTTP_NOT_MODIFIED;
		return queue(c, *status, r);
	}

	if (origin_sources_get(http->src, http->cat, &v, &blob, &tier) != ORIGIN_FETCH_OK)
	{
		*status = MHD_HTTP_BAD_GATEWAY;
		return answer_text(c, *status, "the image store did not answer\n", NULL);
	}
	held = malloc(sizeof(*held));
	if (held == NULL)
	{
		origin_lru_release(http->lru, blob);
		*status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		return answer_text(c, *status, "out of memory\n", NULL);
	}
	held->lru = http->lru;
	held->blob = blob;
	/* the entry stays referenced until MHD has sent the last byte */
	r = MHD_create_response_from_buffer_with_free_callback_cls(blob->len, (void *) blob->data,
															   release_held, held);
	if (r == NULL)
	{
		release_held(held);
		*status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		return MHD_NO;
	}
	add_variant_headers(r, route, &v);
	*status = MHD_HTTP_OK;
	*sent = blob->len;
	return queue(c, *status, r);
}

/* 200 "ok" while PostgreSQL and the main store answer; else 503 naming what is down. */
static enum MHD_Result
serve_health(origin_http *http, struct MHD_Connection *c, unsigned *status)
{
	bool		db = origin_catalog_reachable(http->cat);
	bool		store = origin_sources_store_reachable(http->src);

	*status = db && store ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
	return answer_text(c, *status,
					   db && store ? "ok\n" :
					   store ? "postgres unreachable\n" :
					   db ? "store unreachable\n" : "postgres and store unreachable\n", NULL);
}

static enum MHD_Result
serve_metrics(origin_http *http, struct MHD_Connection *c, unsigned *status)
{
	size_t		len;
	char	   *text = origin_metrics_render(http->lru, &len);
	struct MHD_Response *r;

	if (text == NULL)
	{
		*status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		return answer_text(c, *status, "out of memory\n", NULL);
	}
	r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (r == NULL)
	{
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	*status = MHD_HTTP_OK;
	return queue(c, *status, r);
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
	   const char *upload_data, size_t *upload_data_size, void **req_cls)
{
	origin_http *http = cls;
	origin_route route;
	unsigned	status = 0;
	uint64_t	sent = 0;
	enum MHD_Result ret;
	double		started;
	bool		head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;

	(void) version;
	(void) upload_data;
	/* the first call only announces the request; answer on the second */
	if (*req_cls == NULL)
	{
		*req_cls = (void *) 1;
		return MHD_YES;
	}
	if (*upload_data_size != 0)
	{
		*upload_data_size = 0;
		return MHD_YES;
	}
	started = now_seconds();
	origin_parse_route(url, &route);
	if (!head && strcmp(method, MHD_HTTP_METHOD_GET) != 0)
	{
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		ret = answer_text(c, status, "only GET and HEAD\n", NULL);
	}
	else
		switch (route.kind)
		{
			case ORIGIN_ROUTE_BAD_PATH:
				status = MHD_HTTP_BAD_REQUEST;
				ret = answer_text(c, status, "malformed image path\n", NULL);
				break;
			case ORIGIN_ROUTE_NOT_FOUND:
				status = MHD_HTTP_NOT_FOUND;
				ret = answer_text(c, status, "not found\n", CACHE_NOT_FOUND);
				break;
			case ORIGIN_ROUTE_HEALTH:
				ret = serve_health(http, c, &status);
				break;
			case ORIGIN_ROUTE_METRICS:
				ret = serve_metrics(http, c, &status);
				break;
			default:
				ret = serve_variant(http, c, &route, &status, &sent);
				if (head)
					sent = 0;
				break;
		}
	origin_metrics_request(route.kind, (int) status, now_seconds() - started, sent);
	return ret;
}

origin_http *
origin_http_start(const origin_http_config *cfg, origin_catalog *cat, origin_sources *src, origin_lru *lru,
				  char *errbuf, size_t errsize)
{
	origin_http *http = calloc(1, sizeof(*http));
	struct sockaddr_in addr;

	if (http == NULL)
	{
		snprintf(errbuf, errsize, "out of memory");
		return NULL;
	}
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t) cfg->port);
	if (inet_pton(AF_INET, cfg->listen_address, &addr.sin_addr) != 1)
	{
		snprintf(errbuf, errsize, "listen address \"%s\" is not a numeric IPv4 address", cfg->listen_address);
		free(http);
		return NULL;
	}
	http->cat = cat;
	http->src = src;
	http->lru = lru;
	http->daemon = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG,
									(uint16_t) cfg->port, NULL, NULL, handle, http,
									MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
									MHD_OPTION_THREAD_POOL_SIZE, (unsigned) cfg->threads,
									MHD_OPTION_CONNECTION_LIMIT, (unsigned) cfg->connection_limit,
									MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned) cfg->per_ip_limit,
									MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) cfg->connection_timeout_s,
									MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) 32 * 1024,
									MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL,
									MHD_OPTION_END);
	if (http->daemon == NULL)
	{
		snprintf(errbuf, errsize, "cannot listen on %s:%d", cfg->listen_address, cfg->port);
		free(http);
		return NULL;
	}
	return http;
}

void
origin_http_stop(origin_http *http)
{
	if (http == NULL)
		return;
	const union MHD_DaemonInfo *info;

	/* no new connections; the open ones get up to 10 s to finish */
	MHD_quiesce_daemon(http->daemon);
	for (int i = 0; i < 1000; i++)
	{
		info = MHD_get_daemon_info(http->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
		if (info == NULL || info->num_connections == 0)
			break;
		nanosleep(&(struct timespec) {.tv_nsec = 10 * 1000 * 1000}, NULL);
	}
	MHD_stop_daemon(http->daemon);
	free(http);
}
