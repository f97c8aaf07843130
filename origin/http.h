/*
 * http.h — imgmod-origin's HTTP side (libmicrohttpd): routes, validators,
 * cache headers and error answers.
 */
#ifndef IMGMOD_ORIGIN_HTTP_H
#define IMGMOD_ORIGIN_HTTP_H

#include <stdbool.h>

#include "catalog.h"
#include "lru.h"
#include "sources.h"

typedef struct origin_http_config
{
	const char *listen_address;	/* numeric IPv4 */
	int			port;
	int			threads;		/* epoll thread pool */
	int			connection_limit;
	int			per_ip_limit;
	int			connection_timeout_s;
} origin_http_config;

typedef struct origin_http origin_http;

origin_http *origin_http_start(const origin_http_config *cfg, origin_catalog *cat, origin_sources *src,
							   origin_lru *lru, char *errbuf, size_t errsize);
/* Stops accepting, lets responses in flight finish, then returns. */
void		origin_http_stop(origin_http *http);

#endif
