/*
 * imgmod-origin — serves imgmod's variants to browsers and CDNs.
 *
 *   imgmod-origin [--listen ADDR] [--port N] [--cache-bytes N] [--node NAME]
 *                 [--threads N] [--connection-limit N] [--per-ip-limit N]
 *                 [--timeout SECONDS] [--report-interval SECONDS]
 *
 * PostgreSQL: IMGMOD_ORIGIN_CONNINFO, else the libpq environment (PGHOST,
 * PGPORT, PGDATABASE, PGUSER, PGPASSWORD).  Stores and Redis: the variables
 * scripts/services.sh env prints (IMGMOD_S3_ENDPOINT, ..._BUCKET,
 * ..._ACCESS_KEY, ..._SECRET_KEY, IMGMOD_REDIS_URL), or IMGMOD_STORE_DIR for
 * the embedded store.  Secrets are read from the environment only, so they
 * never show in ps, and are never logged (nor is a mistyped flag's value:
 * t/030 and t/031 check the command line and the log).  Every flag has an
 * environment twin: IMGMOD_ORIGIN_<FLAG> (e.g. IMGMOD_ORIGIN_PORT).
 *
 * SIGTERM or SIGINT: stop accepting, finish the responses in flight, report
 * the cache one last time, exit 0.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "http.h"
#include "lru.h"
#include "report.h"
#include "sources.h"

typedef struct origin_options
{
	const char *listen;
	long		port;
	long		cache_bytes;
	const char *node;
	long		threads;
	long		connection_limit;
	long		per_ip_limit;
	long		timeout_s;
	long		report_interval_s;
} origin_options;

static void
usage(void)
{
	fputs("usage: imgmod-origin [--listen ADDR] [--port N] [--cache-bytes N] [--node NAME] [--threads N]\n"
		  "                     [--connection-limit N] [--per-ip-limit N] [--timeout S] [--report-interval S]\n"
		  "Every flag has an environment twin IMGMOD_ORIGIN_<FLAG> (e.g. IMGMOD_ORIGIN_PORT).\n"
		  "PostgreSQL: IMGMOD_ORIGIN_CONNINFO, else the libpq environment (PGHOST, PGUSER, PGPASSWORD, ...).\n"
		  "Main store: IMGMOD_S3_ENDPOINT, IMGMOD_S3_REGION, IMGMOD_S3_BUCKET, IMGMOD_S3_ACCESS_KEY,\n"
		  "  IMGMOD_S3_SECRET_KEY, IMGMOD_S3_VIRTUAL_HOST=on|off; or IMGMOD_STORE_DIR (a local store).\n"
		  "Redis: IMGMOD_REDIS_URL (redis://[:password@]host[:port][/db]), IMGMOD_REDIS_TTL.\n"
		  "Secrets (S3 keys, the Redis password, a conninfo password) are taken from the environment\n"
		  "only, never from flags, so they never show in ps; they are never logged.\n", stderr);
}

/* --flag value, else IMGMOD_ORIGIN_FLAG, else the default. */
static const char *
option(int argc, char **argv, const char *flag, const char *fallback)
{
	char		env[64];
	const char *v;
	size_t		n = 0;

	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], flag) == 0)
			return argv[i + 1];
	n = (size_t) snprintf(env, sizeof(env), "IMGMOD_ORIGIN_");
	for (const char *p = flag + 2; *p && n + 1 < sizeof(env); p++)
		env[n++] = *p == '-' ? '_' : (char) toupper((unsigned char) *p);
	env[n] = '\0';
	v = getenv(env);
	return v && *v ? v : fallback;
}

static bool
number(const char *text, long min, long max, long *out)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || *end || end == text || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static bool
parse_options(int argc, char **argv, origin_options *o, char *node_buf, size_t node_size)
{
	static const char *const known[] = {"--listen", "--port", "--cache-bytes", "--node", "--threads",
	"--connection-limit", "--per-ip-limit", "--timeout", "--report-interval"};
	long		cores = sysconf(_SC_NPROCESSORS_ONLN);
	char		cores_text[24];

	for (int i = 1; i < argc; i += 2)
	{
		bool		ok = false;

		for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			ok |= strcmp(argv[i], known[k]) == 0;
		if (!ok || i + 1 >= argc)
		{
			/* the flag's name only: a stray value or what follows '=' may be a secret */
			if (strncmp(argv[i], "--", 2) != 0)
				fputs("imgmod-origin: an argument where an option was expected\n", stderr);
			else
				fprintf(stderr, "imgmod-origin: unknown or incomplete option \"%.*s\"\n",
						(int) strcspn(argv[i], "="), argv[i]);
			return false;
		}
	}
	snprintf(cores_text, sizeof(cores_text), "%ld", cores > 0 ? cores : 2);
	o->listen = option(argc, argv, "--listen", "127.0.0.1");
	if (!number(option(argc, argv, "--port", "8088"), 1, 65535, &o->port) ||
		!number(option(argc, argv, "--cache-bytes", "268435456"), 1, 1L << 40, &o->cache_bytes) ||
		!number(option(argc, argv, "--threads", cores_text), 1, 256, &o->threads) ||
		!number(option(argc, argv, "--connection-limit", "4096"), 1, 1 << 20, &o->connection_limit) ||
		!number(option(argc, argv, "--per-ip-limit", "2048"), 0, 1 << 20, &o->per_ip_limit) ||
		!number(option(argc, argv, "--timeout", "10"), 1, 3600, &o->timeout_s) ||
		!number(option(argc, argv, "--report-interval", "5"), 1, 3600, &o->report_interval_s))
	{
		fputs("imgmod-origin: a numeric option is out of range\n", stderr);
		return false;
	}
	if (option(argc, argv, "--node", NULL))
		o->node = option(argc, argv, "--node", NULL);
	else
	{
		char		host[256] = "localhost";

		gethostname(host, sizeof(host) - 1);
		snprintf(node_buf, node_size, "%s:%ld", host, o->port);
		o->node = node_buf;
	}
	return true;
}

int
main(int argc, char **argv)
{
	origin_options opt;
	char		node[300];
	char		errbuf[512];
	sigset_t	stop_signals;
	int			sig;
	const char *conninfo = getenv("IMGMOD_ORIGIN_CONNINFO") ? getenv("IMGMOD_ORIGIN_CONNINFO") : "";
	origin_lru *lru;
	origin_catalog *cat;
	origin_sources *src;
	origin_reporter *rep;
	origin_http *http;
	origin_http_config hc;

	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
	{
		usage();
		return 0;
	}
	if (!parse_options(argc, argv, &opt, node, sizeof(node)))
	{
		usage();
		return 2;
	}

	/* Threads inherit this mask: only the main thread takes SIGTERM/SIGINT. */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
	signal(SIGPIPE, SIG_IGN);

	lru = origin_lru_create((uint64_t) opt.cache_bytes);
	cat = origin_catalog_open(conninfo, 4, 5000);
	src = origin_sources_open(lru, errbuf, sizeof(errbuf));
	if (lru == NULL || cat == NULL || src == NULL || !origin_catalog_listen(cat))
	{
		fprintf(stderr, "imgmod-origin: cannot start: %s\n", src == NULL ? errbuf : "out of memory");
		return 1;
	}
	hc.listen_address = opt.listen;
	hc.port = (int) opt.port;
	hc.threads = (int) opt.threads;
	hc.connection_limit = (int) opt.connection_limit;
	hc.per_ip_limit = (int) opt.per_ip_limit;
	hc.connection_timeout_s = (int) opt.timeout_s;
	http = origin_http_start(&hc, cat, src, lru, errbuf, sizeof(errbuf));
	if (http == NULL)
	{
		fprintf(stderr, "imgmod-origin: %s\n", errbuf);
		return 1;
	}
	rep = origin_report_start(conninfo, opt.node, (int) opt.report_interval_s, lru);
	fprintf(stderr, "imgmod-origin: node %s serving on http://%s:%ld/ with a %ld-byte memory cache\n",
			opt.node, opt.listen, opt.port, opt.cache_bytes);

	sigwait(&stop_signals, &sig);
	fprintf(stderr, "imgmod-origin: %s: finishing the responses in flight\n", strsignal(sig));
	origin_http_stop(http);
	origin_report_stop(rep);
	origin_catalog_close(cat);
	origin_sources_close(src);
	origin_lru_destroy(lru);
	return 0;
}
