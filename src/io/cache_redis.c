/*
 * cache_redis.c — Redis as a cache in front of the renderer and the CDN
 * origin, never as the only copy of anything.
 *
 * Every operation has a timeout; when Redis is down or slow the operation
 * is skipped and counted, and the connection is retried with exponential
 * backoff (250 ms doubling to 5 s), so the pipeline completes without it.
 * The connection belongs to a client (one per thread) and is made again
 * after any error, because a hiredis 0.14 context is dead after an I/O
 * error.  Bytes read are returned only when they hash to the digest the
 * caller holds.
 */
#include "io_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

struct imgio_cache_client
{
	imgio_hooks hooks;
	redisContext *conn;
	char	   *conn_url;		/* the URL conn was made from (alloc hook) */
	int64_t		next_connect_at_ms;
	int			connect_failures;
};

typedef struct redis_address
{
	char		host[256];
	int			port;
	int			db;
	char		password[256];
} redis_address;

imgio_cache_client *
imgio_cache_client_create(const imgio_hooks *hooks)
{
	imgio_hooks resolved;
	imgio_cache_client *client;

	imgio_hooks_resolve(hooks, &resolved);
	client = imgio_hook_alloc(&resolved, sizeof(*client));
	if (client == NULL)
		return NULL;
	memset(client, 0, sizeof(*client));
	client->hooks = resolved;
	return client;
}

static void
drop_connection(imgio_cache_client *client)
{
	if (client->conn)
		redisFree(client->conn);
	client->conn = NULL;
	imgio_hook_free(&client->hooks, client->conn_url);
	client->conn_url = NULL;
}

void
imgio_cache_client_free(imgio_cache_client *client)
{
	imgio_hooks hooks;

	if (client == NULL)
		return;
	drop_connection(client);
	hooks = client->hooks;
	imgio_hook_free(&hooks, client);
}

bool
imgio_cache_enabled(const imgio_cache_config *config)
{
	/* No namespace (installation not known yet): no shared keys. */
	return config->url != NULL && config->url[0] != '\0' &&
		config->cache_namespace != NULL && config->cache_namespace[0] != '\0';
}

/* redis://[:password@]host[:port][/db] */
static bool
parse_url(const char *url, redis_address *a)
{
	const char *p;
	const char *at;
	const char *slash;
	const char *colon;
	size_t		hostlen;

	memset(a, 0, sizeof(*a));
	a->port = 6379;
	if (strncmp(url, "redis://", 8) != 0)
		return false;
	p = url + 8;
	at = strchr(p, '@');
	if (at)
	{
		const char *pw = memchr(p, ':', at - p);

		if (pw)
			snprintf(a->password, sizeof(a->password), "%.*s", (int) (at - pw - 1), pw + 1);
		p = at + 1;
	}
	slash = strchr(p, '/');
	colon = memchr(p, ':', slash ? (size_t) (slash - p) : strlen(p));
	hostlen = colon ? (size_t) (colon - p) : (slash ? (size_t) (slash - p) : strlen(p));
	if (hostlen == 0 || hostlen >= sizeof(a->host))
		return false;
	memcpy(a->host, p, hostlen);
	if (colon)
		a->port = atoi(colon + 1);
	if (slash && slash[1])
		a->db = atoi(slash + 1);
	return a->port > 0;
}

static struct timeval
timeout_tv(const imgio_cache_config *config)
{
	struct timeval tv;

	tv.tv_sec = config->timeout_ms / 1000;
	tv.tv_usec = (config->timeout_ms % 1000) * 1000;
	return tv;
}

static void
schedule_reconnect(imgio_cache_client *client)
{
	int			shift = client->connect_failures + 1 < 5 ? client->connect_failures + 1 : 5;
	int			delay_ms = 250 * (1 << shift);

	drop_connection(client);
	client->connect_failures++;
	client->next_connect_at_ms = imgio_now_ms() + (delay_ms < 5000 ? delay_ms : 5000);
}

/* Run a command whose only interesting outcome is "not an error". */
static bool
simple_command_ok(redisContext *c, const char *format,...)
{
	va_list		ap;
	redisReply *reply;
	bool		ok;

	va_start(ap, format);
	reply = redisvCommand(c, format, ap);
	va_end(ap);
	ok = reply != NULL && reply->type != REDIS_REPLY_ERROR;
	if (reply)
		freeReplyObject(reply);
	return ok;
}

static char *
copy_string(const imgio_hooks *h, const char *s)
{
	size_t		n = strlen(s) + 1;
	char	   *copy = imgio_hook_alloc(h, n);

	if (copy != NULL)
		memcpy(copy, s, n);
	return copy;
}

/* A live connection, or NULL (not configured, or down and backing off). */
static redisContext *
get_connection(imgio_cache_client *client, const imgio_cache_config *config)
{
	redis_address a;

	if (config->url == NULL || config->url[0] == '\0')
	{
		drop_connection(client);
		return NULL;
	}
	/* A changed setting means a new connection. */
	if (client->conn && client->conn_url && strcmp(client->conn_url, config->url) != 0)
		drop_connection(client);
	if (client->conn)
		return client->conn;
	if (imgio_now_ms() < client->next_connect_at_ms)
		return NULL;
	if (!parse_url(config->url, &a))
	{
		char		message[256];

		snprintf(message, sizeof(message), "%s is not a redis://host[:port][/db] URL; Redis is not used",
				 config->url_setting_name ? config->url_setting_name : "the Redis URL");
		client->hooks.warn(message, client->hooks.ctx);
		schedule_reconnect(client);
		return NULL;
	}
	client->conn = redisConnectWithTimeout(a.host, a.port, timeout_tv(config));
	if (client->conn == NULL || client->conn->err)
	{
		schedule_reconnect(client);
		return NULL;
	}
	redisSetTimeout(client->conn, timeout_tv(config));
	redisEnableKeepAlive(client->conn);
	if ((a.password[0] && !simple_command_ok(client->conn, "AUTH %s", a.password)) ||
		(a.db != 0 && !simple_command_ok(client->conn, "SELECT %d", a.db)))
	{
		schedule_reconnect(client);
		return NULL;
	}
	client->conn_url = copy_string(&client->hooks, config->url);
	if (client->conn_url == NULL)
	{
		schedule_reconnect(client);
		return NULL;
	}
	client->connect_failures = 0;
	return client->conn;
}

static void
count(imgio_cache_client *client, imgio_cache_counter counter, int n)
{
	client->hooks.count_cache(counter, n, client->hooks.ctx);
}

int
imgio_cache_put_many(imgio_cache_client *client, const imgio_cache_config *config, int n,
					 const char *const *keys, const uint8_t *const *values, const size_t *lens)
{
	redisContext *c;
	char		ttl[32];
	int			stored = 0;

	if (!imgio_cache_enabled(config))
		return 0;
	c = get_connection(client, config);
	if (c == NULL)
	{
		count(client, IMGIO_CACHE_SKIPPED_WRITE, n);
		return 0;
	}
	snprintf(ttl, sizeof(ttl), "%lld", (long long) config->ttl_s * 1000);
	for (int i = 0; i < n; i++)
	{
		const char *argv[5] = {"SET", keys[i], (const char *) values[i], "PX", ttl};
		size_t		argl[5] = {3, strlen(keys[i]), lens[i], 2, strlen(ttl)};

		if (redisAppendCommandArgv(c, 5, argv, argl) != REDIS_OK)
		{
			schedule_reconnect(client);
			count(client, IMGIO_CACHE_SKIPPED_WRITE, n);
			return 0;
		}
	}
	for (int i = 0; i < n; i++)
	{
		redisReply *reply = NULL;

		if (redisGetReply(c, (void **) &reply) != REDIS_OK || reply == NULL)
		{
			schedule_reconnect(client);
			count(client, IMGIO_CACHE_SKIPPED_WRITE, n - stored);
			return stored;
		}
		if (reply->type == REDIS_REPLY_STATUS)
			stored++;
		freeReplyObject(reply);
	}
	count(client, IMGIO_CACHE_WRITE, stored);
	return stored;
}

/* GET into memory from the alloc hook; NULL on a miss or an error (counted). */
static uint8_t *
cache_get(imgio_cache_client *client, const imgio_cache_config *config, const char *key,
		  size_t *len)
{
	redisContext *c = get_connection(client, config);
	redisReply *reply;
	uint8_t    *copy = NULL;

	if (c == NULL)
	{
		count(client, IMGIO_CACHE_SKIPPED_READ, 1);
		return NULL;
	}
	reply = redisCommand(c, "GET %s", key);
	if (reply == NULL)
	{
		schedule_reconnect(client);
		count(client, IMGIO_CACHE_SKIPPED_READ, 1);
		return NULL;
	}
	if (reply->type == REDIS_REPLY_STRING && reply->len > 0)
	{
		copy = imgio_hook_alloc(&client->hooks, reply->len);
		if (copy)
		{
			memcpy(copy, reply->str, reply->len);
			*len = reply->len;
		}
	}
	else
		count(client, IMGIO_CACHE_MISS, 1);
	freeReplyObject(reply);
	return copy;
}

imgio_cache_read
imgio_cache_get_verified(imgio_cache_client *client, const imgio_cache_config *config,
						 const char *key, imgio_digest_kind kind, const char *expected_hex,
						 uint8_t **bytes, size_t *len, imgio_error *err)
{
	char		actual[IMGIO_DIGEST_HEX_MAX];
	uint8_t    *got;

	*bytes = NULL;
	*len = 0;
	if (!imgio_cache_enabled(config))
		return IMGIO_CACHE_READ_MISS;
	got = cache_get(client, config, key, len);
	if (got == NULL)
		return IMGIO_CACHE_READ_MISS;
	if (!imgio_digest_hex(kind, got, *len, actual, err))
	{
		imgio_hook_free(&client->hooks, got);
		return IMGIO_CACHE_READ_FAILED;
	}
	if (expected_hex != NULL && strcasecmp(actual, expected_hex) == 0)
	{
		count(client, IMGIO_CACHE_HIT, 1);
		*bytes = got;
		return IMGIO_CACHE_READ_HIT;
	}

	/*
	 * Not what the caller recorded for this key: written by someone else,
	 * left from before a restore reissued the id, or damaged.  Never used,
	 * and removed so that the next write puts the real bytes there.
	 */
	imgio_hook_free(&client->hooks, got);
	count(client, IMGIO_CACHE_POISONED, 1);
	(void) imgio_cache_delete_many(client, config, 1, &key);
	return IMGIO_CACHE_READ_POISONED;
}

int
imgio_cache_delete_many(imgio_cache_client *client, const imgio_cache_config *config, int n,
						const char *const *keys)
{
	redisContext *c;
	redisReply *reply;
	const char **argv;
	size_t	   *argl;
	int			deleted = 0;

	if (!imgio_cache_enabled(config) || n <= 0)
		return 0;
	c = get_connection(client, config);
	argv = c ? imgio_hook_alloc(&client->hooks, sizeof(char *) * (size_t) (n + 1)) : NULL;
	argl = argv ? imgio_hook_alloc(&client->hooks, sizeof(size_t) * (size_t) (n + 1)) : NULL;
	if (argl == NULL)
	{
		imgio_hook_free(&client->hooks, argv);
		count(client, IMGIO_CACHE_SKIPPED_DELETE, n);
		return 0;
	}
	argv[0] = "DEL";
	argl[0] = 3;
	for (int i = 0; i < n; i++)
	{
		argv[i + 1] = keys[i];
		argl[i + 1] = strlen(keys[i]);
	}
	reply = redisCommandArgv(c, n + 1, argv, argl);
	imgio_hook_free(&client->hooks, argv);
	imgio_hook_free(&client->hooks, argl);
	if (reply == NULL)
	{
		schedule_reconnect(client);
		count(client, IMGIO_CACHE_SKIPPED_DELETE, n);
		return 0;
	}
	if (reply->type == REDIS_REPLY_INTEGER)
		deleted = (int) reply->integer;
	freeReplyObject(reply);
	count(client, IMGIO_CACHE_DELETE, deleted);
	return deleted;
}

#define CACHE_KEY_MAX 256

int
imgio_cache_drop_version(imgio_cache_client *client, const imgio_cache_config *config,
						 int64_t image_id, int version, int npresets, const char *const *presets)
{
	int			nkeys = npresets + 1;
	char	   *storage;
	const char **keys;
	int			deleted;

	if (!imgio_cache_enabled(config))
		return 0;
	storage = imgio_hook_alloc(&client->hooks, (size_t) nkeys * CACHE_KEY_MAX);
	keys = storage ? imgio_hook_alloc(&client->hooks, sizeof(char *) * (size_t) nkeys) : NULL;
	if (keys == NULL)
	{
		imgio_hook_free(&client->hooks, storage);
		count(client, IMGIO_CACHE_SKIPPED_DELETE, nkeys);
		return 0;
	}
	for (int i = 0; i < nkeys; i++)
	{
		char	   *k = storage + (size_t) i * CACHE_KEY_MAX;

		imgio_cache_key(k, CACHE_KEY_MAX, config->cache_namespace, image_id, version,
						i == 0 ? "source" : presets[i - 1]);
		keys[i] = k;
	}
	deleted = imgio_cache_delete_many(client, config, nkeys, keys);
	imgio_hook_free(&client->hooks, keys);
	imgio_hook_free(&client->hooks, storage);
	return deleted;
}
