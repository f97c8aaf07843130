/*
 * test_io_store.c — the I/O library's stores and cache client through
 * their public API, with counting hooks: the local store in a temporary
 * directory, and the S3 and Redis paths that end before any server is
 * reached (refused requests, an unreachable endpoint, a stop request
 * during the backoff, a malformed Redis URL).
 */
#include "test.h"
#include "imgio.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct observed
{
	long		allocations;	/* live blocks from the alloc hook */
	int			requests[IMGIO_VERB_COUNT];
	int			failures[IMGIO_VERB_COUNT];
	int			retries;
	int			cache[IMGIO_CACHE_COUNTER_COUNT];
	int			warnings;
	char		last_warning[256];
	bool		abort_now;
} observed;

static void *
counting_alloc(size_t size, void *ctx)
{
	((observed *) ctx)->allocations++;
	return malloc(size);
}

static void
counting_free(void *ptr, void *ctx)
{
	((observed *) ctx)->allocations--;
	free(ptr);
}

static bool
abort_when_asked(void *ctx)
{
	return ((observed *) ctx)->abort_now;
}

static void
count_request(const imgio_store_config *store, imgio_verb verb, bool ok, int retries, void *ctx)
{
	observed   *o = ctx;

	(void) store;
	o->requests[verb] += 1 + retries;
	o->retries += retries;
	o->failures[verb] += ok ? 0 : 1;
}

static void
count_cache(imgio_cache_counter counter, int n, void *ctx)
{
	((observed *) ctx)->cache[counter] += n;
}

static void
remember_warning(const char *message, void *ctx)
{
	observed   *o = ctx;

	o->warnings++;
	snprintf(o->last_warning, sizeof(o->last_warning), "%s", message);
}

static imgio_hooks
hooks_for(observed *o)
{
	imgio_hooks h = {
		.alloc = counting_alloc, .free = counting_free, .should_abort = abort_when_asked,
		.count_request = count_request, .count_cache = count_cache, .warn = remember_warning,
		.ctx = o,
	};

	memset(o, 0, sizeof(*o));
	return h;
}

static bool
file_exists(const char *dir, const char *key)
{
	char		path[1024];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, key);
	return stat(path, &st) == 0;
}

TEST_SUITE(io_local_store)
{
	observed	o;
	imgio_hooks hooks = hooks_for(&o);
	char		dir[] = "/tmp/imgio-unit-XXXXXX";
	char		root[64];
	imgio_store_client *client;
	imgio_store_config store = {.name = "main", .id = 0};
	const uint8_t variant[] = "variant bytes";
	const uint8_t master[] = "master";
	imgio_put_item items[2] = {
		{.store = &store, .key = "variants/7/v1/medium.jpg", .data = variant, .len = sizeof(variant)},
		{.store = &store, .key = "masters/7/v1/master.jpg", .data = master, .len = sizeof(master)},
	};
	imgio_error err = {0};
	uint8_t    *dest;
	size_t		capacity = imgio_store_get_capacity(sizeof(variant));
	size_t		got = 0;

	CHECK(mkdtemp(dir) != NULL, "a temporary directory");
	/* the store root itself does not exist yet: the first PUT makes it */
	snprintf(root, sizeof(root), "%s/store", dir);
	store.local_dir = root;
	CHECK(strcmp(imgio_store_backend(&store), "local") == 0, "no S3 endpoint: the local store");
	client = imgio_store_client_create(&hooks);
	CHECK(client != NULL, "a client");

	CHECK(imgio_store_put_many(client, items, 2, &err) == 0, "both objects stored: %s / %s",
		  items[0].error, items[1].error);
	CHECK(items[0].ok && items[1].ok && items[0].etag[0] == '\0', "each item says it was stored, no ETag");
	CHECK(!err.interrupted, "nothing interrupted");
	CHECK(file_exists(root, "variants/7/v1/medium.jpg"), "the object is a file under the root");
	CHECK(o.requests[IMGIO_VERB_PUT] == 2 && o.failures[IMGIO_VERB_PUT] == 0, "two PUTs counted");

	{
		imgio_store_config elsewhere = store;
		char		missing[96];

		CHECK(imgio_store_probe(client, &store, 1000, &err), "the probe finds the store: %s", err.message);
		snprintf(missing, sizeof(missing), "%s/nowhere", dir);
		elsewhere.local_dir = missing;
		CHECK(!imgio_store_probe(client, &elsewhere, 1000, &err) &&
			  strstr(err.message, "/nowhere\" cannot be reached: No such file or directory") != NULL,
			  "a missing directory fails the probe: %s", err.message);
		elsewhere.local_dir = "";
		CHECK(!imgio_store_probe(client, &elsewhere, 1000, &err) &&
			  strcmp(err.message, "the main store has no directory") == 0, "no directory at all: %s", err.message);
		CHECK(o.requests[IMGIO_VERB_GET] == 0, "probes are not counted as requests");
	}

	dest = malloc(capacity);
	CHECK(capacity >= sizeof(variant), "the capacity holds the object");
	CHECK(imgio_store_get(client, &store, "variants/7/v1/medium.jpg", sizeof(variant), dest,
						  capacity, &got, &err) &&
		  got == sizeof(variant) && memcmp(dest, variant, got) == 0,
		  "the object reads back byte for byte: %s", err.message);
	CHECK(!imgio_store_get(client, &store, "variants/7/v1/medium.jpg", 5, dest, capacity, &got, &err) &&
		  strstr(err.message, "is 14 bytes but imgmod recorded 5 bytes for it; refusing it") != NULL,
		  "a size other than the recorded one is refused: %s", err.message);
	CHECK(!imgio_store_get(client, &store, "variants/7/v1/medium.jpg", sizeof(variant), dest, 4,
						   &got, &err) && strstr(err.message, "cannot hold") != NULL,
		  "a buffer below the capacity is refused: %s", err.message);
	CHECK(!imgio_store_get(client, &store, "../escape", 1, dest, capacity, &got, &err) &&
		  strcmp(err.message, "refusing unsafe object key \"../escape\"") == 0,
		  "an unsafe key is refused: %s", err.message);
	/* the short buffer is the caller's mistake, refused before any request */
	CHECK(o.requests[IMGIO_VERB_GET] == 3 && o.failures[IMGIO_VERB_GET] == 2,
		  "every GET made is counted, failures too (%d, %d)", o.requests[IMGIO_VERB_GET], o.failures[IMGIO_VERB_GET]);

	CHECK(imgio_store_delete(client, &store, "variants/7/v1/medium.jpg", &err), "deleted: %s", err.message);
	CHECK(!file_exists(root, "variants/7/v1"), "the emptied version directory went with it");
	CHECK(imgio_store_delete(client, &store, "variants/7/v1/medium.jpg", &err),
		  "deleting what is gone succeeds (a purge run again)");
	CHECK(!imgio_store_get(client, &store, "variants/7/v1/medium.jpg", sizeof(variant), dest,
						   capacity, &got, &err) &&
		  strstr(err.message, "could not open object \"variants/7/v1/medium.jpg\"") != NULL,
		  "a deleted object cannot be read: %s", err.message);

	free(dest);
	imgio_store_client_free(client);
	CHECK(o.allocations == 0, "every block from the alloc hook was freed (%ld left)", o.allocations);
	remove_tree(dir);
}

TEST_SUITE(io_s3_refusals)
{
	observed	o;
	imgio_hooks hooks = hooks_for(&o);
	imgio_store_client *client = imgio_store_client_create(&hooks);
	/* a port nothing listens on: connections are refused at once */
	imgio_store_config store = {
		.name = "hires", .id = 1,
		.s3 = {.endpoint = "http://127.0.0.1:1", .bucket = "", .access_key = "a", .secret_key = "s",
			   .connect_timeout_ms = 2000, .timeout_ms = 2000, .retries = 0,
			   .bucket_setting_name = "imgmod.hires_s3_bucket"},
	};
	imgio_put_item item = {.store = &store, .key = "hires/1/v1/original.jpg",
						   .data = (const uint8_t *) "x", .len = 1};
	imgio_error err = {0};
	uint8_t		dest[IMGIO_ERROR_MESSAGE_MAX * 16];
	size_t		got = 0;

	CHECK(client != NULL, "a client");
	CHECK(strcmp(imgio_store_backend(&store), "s3") == 0, "an endpoint makes it S3");
	CHECK(imgio_store_put_many(client, &item, 1, &err) == 1 && !item.ok &&
		  strcmp(item.error, "S3 endpoint http://127.0.0.1:1 is set for the hires store but its bucket is empty; set imgmod.hires_s3_bucket") == 0,
		  "an empty bucket names the setting to set: %s", item.error);
	CHECK(!imgio_store_probe(client, &store, 500, &err) &&
		  strstr(err.message, "its bucket is empty; set imgmod.hires_s3_bucket") != NULL,
		  "the probe of a store without bucket: %s", err.message);

	store.s3.bucket = "b";
	item.key = "Hires/Upper.jpg";
	CHECK(imgio_store_put_many(client, &item, 1, &err) == 1 &&
		  strcmp(item.error, "refusing unsafe object key \"Hires/Upper.jpg\"") == 0,
		  "an unsafe key is refused before signing: %s", item.error);
	CHECK(o.requests[IMGIO_VERB_PUT] == 0, "refused requests never reach a server, nor the counters");

	CHECK(!imgio_store_get(client, &store, "hires/1/v1/original.jpg", 1, dest, sizeof(dest), &got, &err) &&
		  strstr(err.message, "S3 GET b/hires/1/v1/original.jpg at http://127.0.0.1:1 failed after 1 attempt(s): ") != NULL,
		  "an unreachable endpoint is described: %s", err.message);
	CHECK(!err.interrupted, "a refused connection is no interruption");
	CHECK(!imgio_store_probe(client, &store, 500, &err) &&
		  strstr(err.message, "S3 HEAD b/ at http://127.0.0.1:1 failed after 1 attempt(s): ") != NULL &&
		  !err.interrupted, "the probe of an unreachable endpoint fails at once: %s", err.message);
	CHECK(o.requests[IMGIO_VERB_GET] == 1, "and is not counted as a request");

	/* retryable, but the caller must stop: no second attempt, interrupted */
	store.s3.retries = 5;
	o.abort_now = true;
	CHECK(!imgio_store_delete(client, &store, "hires/1/v1/original.jpg", &err) && err.interrupted &&
		  strstr(err.message, "after 1 attempt(s)") != NULL,
		  "a stop request ends the backoff: %s", err.message);
	CHECK(o.requests[IMGIO_VERB_GET] == 1 && o.requests[IMGIO_VERB_DELETE] == 1 &&
		  o.failures[IMGIO_VERB_DELETE] == 1, "the attempts made are counted");

	imgio_store_client_free(client);
	CHECK(o.allocations == 0, "every block from the alloc hook was freed (%ld left)", o.allocations);
}

TEST_SUITE(io_cache_without_server)
{
	observed	o;
	imgio_hooks hooks = hooks_for(&o);
	imgio_cache_client *client = imgio_cache_client_create(&hooks);
	imgio_cache_config config = {.url = "http://not-redis", .url_setting_name = "imgmod.redis_url",
								 .cache_namespace = "inst", .timeout_ms = 200, .ttl_s = 60};
	imgio_error err = {0};
	uint8_t    *bytes = NULL;
	size_t		len = 0;
	const char *key = "imgmod:inst:1:v1:source";

	CHECK(client != NULL, "a client");
	CHECK(imgio_cache_enabled(&config), "URL and namespace: enabled");
	CHECK(imgio_cache_get_verified(client, &config, key, IMGIO_DIGEST_MD5, "00", &bytes, &len, &err) ==
		  IMGIO_CACHE_READ_MISS && bytes == NULL, "a bad URL reads nothing");
	CHECK(o.warnings == 1 &&
		  strcmp(o.last_warning, "imgmod.redis_url is not a redis://host[:port][/db] URL; Redis is not used") == 0,
		  "and says so once: %s", o.last_warning);
	CHECK(imgio_cache_delete_many(client, &config, 1, &key) == 0 && o.warnings == 1,
		  "during the backoff nothing is tried again");
	CHECK(o.cache[IMGIO_CACHE_SKIPPED_READ] == 1 && o.cache[IMGIO_CACHE_SKIPPED_DELETE] == 1,
		  "skipped operations are counted");

	config.cache_namespace = "";
	CHECK(!imgio_cache_enabled(&config), "no namespace: disabled");
	CHECK(imgio_cache_drop_version(client, &config, 1, 1, 0, NULL) == 0 &&
		  o.cache[IMGIO_CACHE_SKIPPED_DELETE] == 1, "disabled: nothing is done or counted");

	imgio_cache_client_free(client);
	CHECK(o.allocations == 0, "every block from the alloc hook was freed (%ld left)", o.allocations);
}
