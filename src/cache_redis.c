/*
 * cache_redis.c — Redis as a cache in front of the renderer and the CDN
 * origin, never as the only copy of anything.
 *
 * Keys carry the installation and the image version
 * (imgmod:{installation}:{image}:v{version}:{preset}), so a stale version can
 * never be read as the current one, nor another database's image as ours.  Every operation has
 * a timeout; when Redis is down or slow the operation is skipped and
 * counted, and the connection is retried with exponential backoff (250 ms
 * doubling to 5 s), so the
 * pipeline completes without it.  One connection per process (workers are
 * single-threaded), re-established after any error because a hiredis 0.14
 * context is dead after an I/O error.
 */
#include "imgmod.h"

#include <ctype.h>
#include <hiredis/hiredis.h>
#include <sys/time.h>

#include "utils/timestamp.h"

static redisContext *conn = NULL;
static char *conn_url = NULL;
static TimestampTz next_connect_at = 0;
static int	connect_failures = 0;

typedef struct redis_address
{
	char		host[256];
	int			port;
	int			db;
	char		password[256];
} redis_address;

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
timeout_tv(void)
{
	struct timeval tv;

	tv.tv_sec = imgmod_redis_timeout_ms / 1000;
	tv.tv_usec = (imgmod_redis_timeout_ms % 1000) * 1000;
	return tv;
}

static void
drop_connection(void)
{
	if (conn)
		redisFree(conn);
	conn = NULL;
}

static void
schedule_reconnect(void)
{
	int			delay_ms;

	drop_connection();
	connect_failures++;
	delay_ms = Min(5000, 250 * (1 << Min(connect_failures, 5)));
	next_connect_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), delay_ms);
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

/* A live connection, or NULL (not configured, or down and backing off). */
static redisContext *
get_connection(void)
{
	redis_address a;

	if (imgmod_redis_url == NULL || imgmod_redis_url[0] == '\0')
	{
		drop_connection();
		return NULL;
	}
	/* A changed setting (SIGHUP) means a new connection. */
	if (conn && conn_url && strcmp(conn_url, imgmod_redis_url) != 0)
		drop_connection();
	if (conn)
		return conn;
	if (GetCurrentTimestamp() < next_connect_at)
		return NULL;
	if (!parse_url(imgmod_redis_url, &a))
	{
		ereport(WARNING,
				(errmsg("imgmod: imgmod.redis_url is not a redis://host[:port][/db] URL; Redis is not used")));
		schedule_reconnect();
		return NULL;
	}
	conn = redisConnectWithTimeout(a.host, a.port, timeout_tv());
	if (conn == NULL || conn->err)
	{
		schedule_reconnect();
		return NULL;
	}
	redisSetTimeout(conn, timeout_tv());
	redisEnableKeepAlive(conn);
	if ((a.password[0] && !simple_command_ok(conn, "AUTH %s", a.password)) ||
		(a.db != 0 && !simple_command_ok(conn, "SELECT %d", a.db)))
	{
		schedule_reconnect();
		return NULL;
	}
	if (conn_url)
		free(conn_url);
	conn_url = strdup(imgmod_redis_url);
	connect_failures = 0;
	return conn;
}

/* imgmod.installation.id, read by the worker: keys of other installations never match. */
static char cache_namespace[64] = "";

void
imgmod_cache_set_namespace(const char *installation_id)
{
	strlcpy(cache_namespace, installation_id, sizeof(cache_namespace));
}

void
imgmod_cache_key(char *buf, size_t size, int64 image_id, int version, const char *what)
{
	snprintf(buf, size, "imgmod:%s:%lld:v%d:%s", cache_namespace, (long long) image_id, version, what);
}

bool
imgmod_cache_enabled(void)
{
	/* No namespace yet (not read from imgmod.installation): no shared keys. */
	return imgmod_redis_url != NULL && imgmod_redis_url[0] != '\0' && cache_namespace[0] != '\0';
}

/*
 * SET each key with the TTL in one pipelined round trip.  Returns how many
 * were stored; a failure counts every key as skipped.
 */
int
imgmod_cache_put_many(int n, const char *const *keys, const uint8_t *const *values,
					  const size_t *lens)
{
	redisContext *c = get_connection();
	char		ttl[32];
	int			stored = 0;

	if (!imgmod_cache_enabled())
		return 0;
	if (c == NULL)
	{
		imgmod_count_cache(IMGMOD_CACHE_SKIPPED_WRITE, n);
		return 0;
	}
	snprintf(ttl, sizeof(ttl), "%d", imgmod_redis_ttl_s * 1000);
	for (int i = 0; i < n; i++)
	{
		const char *argv[5] = {"SET", keys[i], (const char *) values[i], "PX", ttl};
		size_t		argl[5] = {3, strlen(keys[i]), lens[i], 2, strlen(ttl)};

		if (redisAppendCommandArgv(c, 5, argv, argl) != REDIS_OK)
		{
			schedule_reconnect();
			imgmod_count_cache(IMGMOD_CACHE_SKIPPED_WRITE, n);
			return 0;
		}
	}
	for (int i = 0; i < n; i++)
	{
		redisReply *reply = NULL;

		if (redisGetReply(c, (void **) &reply) != REDIS_OK || reply == NULL)
		{
			schedule_reconnect();
			imgmod_count_cache(IMGMOD_CACHE_SKIPPED_WRITE, n - stored);
			return stored;
		}
		if (reply->type == REDIS_REPLY_STATUS)
			stored++;
		freeReplyObject(reply);
	}
	imgmod_count_cache(IMGMOD_CACHE_WRITE, stored);
	return stored;
}

/* GET into palloc'd memory; NULL on miss, error or when disabled. */
static uint8_t *
cache_get(const char *key, size_t *len)
{
	redisContext *c;
	redisReply *reply;
	uint8_t    *copy = NULL;

	if (!imgmod_cache_enabled())
		return NULL;
	c = get_connection();
	if (c == NULL)
	{
		imgmod_count_cache(IMGMOD_CACHE_SKIPPED_READ, 1);
		return NULL;
	}
	reply = redisCommand(c, "GET %s", key);
	if (reply == NULL)
	{
		schedule_reconnect();
		imgmod_count_cache(IMGMOD_CACHE_SKIPPED_READ, 1);
		return NULL;
	}
	if (reply->type == REDIS_REPLY_STRING && reply->len > 0)
	{
		/* no ERROR while the reply is held: it would leak */
		copy = palloc_extended(reply->len, MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
		if (copy)
		{
			memcpy(copy, reply->str, reply->len);
			*len = reply->len;
		}
	}
	else
		imgmod_count_cache(IMGMOD_CACHE_MISS, 1);
	freeReplyObject(reply);
	return copy;
}

uint8_t *
imgmod_cache_get_verified(const char *key, imgmod_digest_kind kind, const char *expected_hex,
						  size_t *len)
{
	uint8_t    *bytes = cache_get(key, len);
	char		actual[65];

	if (bytes == NULL)
		return NULL;
	if (kind == IMGMOD_DIGEST_SHA256)
		imgmod_sha256_hex(bytes, *len, actual);
	else
		imgmod_md5_hex(bytes, *len, actual);
	if (expected_hex != NULL && pg_strcasecmp(actual, expected_hex) == 0)
	{
		imgmod_count_cache(IMGMOD_CACHE_HIT, 1);
		return bytes;
	}

	/*
	 * Not what Postgres recorded for this key: written by someone else, left
	 * from before a restore reissued the id, or damaged.  Never used, and
	 * removed so that the next write puts the real bytes there.
	 */
	pfree(bytes);
	imgmod_count_cache(IMGMOD_CACHE_POISONED, 1);
	ereport(WARNING,
			(errmsg("imgmod: discarded %zu bytes read from Redis key \"%s\": their %s does not match the digest recorded in PostgreSQL",
					*len, key, kind == IMGMOD_DIGEST_SHA256 ? "SHA-256" : "MD5"),
			 errhint("Something other than imgmod wrote this key, or it predates a restore; imgmod falls back to its own copy.")));
	(void) imgmod_cache_delete_many(1, &key);
	return NULL;
}

bool
imgmod_etag_md5(const char *etag, char out[33])
{
	size_t		n = etag ? strlen(etag) : 0;

	/* "<32 hex>"; a multipart or SSE-KMS ETag is no digest of the bytes */
	if (n != 34 || etag[0] != '"' || etag[33] != '"')
		return false;
	for (int i = 1; i < 33; i++)
		if (!isxdigit((unsigned char) etag[i]))
			return false;
	memcpy(out, etag + 1, 32);
	out[32] = '\0';
	return true;
}

int
imgmod_cache_delete_many(int n, const char *const *keys)
{
	redisContext *c;
	redisReply *reply;
	const char **argv;
	size_t	   *argl;
	int			deleted = 0;

	if (!imgmod_cache_enabled() || n <= 0)
		return 0;
	c = get_connection();
	if (c == NULL)
	{
		imgmod_count_cache(IMGMOD_CACHE_SKIPPED_DELETE, n);
		return 0;
	}
	argv = palloc(sizeof(char *) * (n + 1));
	argl = palloc(sizeof(size_t) * (n + 1));
	argv[0] = "DEL";
	argl[0] = 3;
	for (int i = 0; i < n; i++)
	{
		argv[i + 1] = keys[i];
		argl[i + 1] = strlen(keys[i]);
	}
	reply = redisCommandArgv(c, n + 1, argv, argl);
	pfree(argv);
	pfree(argl);
	if (reply == NULL)
	{
		schedule_reconnect();
		imgmod_count_cache(IMGMOD_CACHE_SKIPPED_DELETE, n);
		return 0;
	}
	if (reply->type == REDIS_REPLY_INTEGER)
		deleted = (int) reply->integer;
	freeReplyObject(reply);
	imgmod_count_cache(IMGMOD_CACHE_DELETE, deleted);
	return deleted;
}

int
imgmod_cache_drop_version(int64 image_id, int version, int npresets, char *const *presets)
{
	const char **keys;
	int			n = 0;

	if (!imgmod_cache_enabled())
		return 0;
	keys = palloc(sizeof(char *) * (npresets + 1));
	keys[n] = palloc(256);
	imgmod_cache_key((char *) keys[n++], 256, image_id, version, "source");
	for (int i = 0; i < npresets; i++)
	{
		keys[n] = palloc(256);
		imgmod_cache_key((char *) keys[n++], 256, image_id, version, presets[i]);
	}
	return imgmod_cache_delete_many(n, keys);
}
