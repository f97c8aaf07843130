/*
 * settings.c — imgmod.* configuration parameters.
 *
 * Sizing is PGC_POSTMASTER, limits and quality are PGC_SUSET (a superuser
 * may tighten them for a session, as the tests do), everything a running
 * worker re-reads is PGC_SIGHUP.
 */
#include "imgmod.h"

#include <ctype.h>
#include <limits.h>

#include "utils/guc.h"

char	   *imgmod_database = NULL;
int			imgmod_worker_count = 2;
int			imgmod_max_bytes_kb = 50 * 1024;
double		imgmod_max_megapixels = 100.0;
int			imgmod_max_side = 20000;
int			imgmod_max_frames = 1000;
int			imgmod_max_scans = 100;
int			imgmod_max_metadata_kb = 8 * 1024;
int			imgmod_master_quality = 92;
int			imgmod_compressed_master_quality = 85;
int			imgmod_render_threads = 2;
int			imgmod_compressed_master_max_side = 2560;
int			imgmod_mismatch_policy = IMGMOD_MISMATCH_WARN;
char	   *imgmod_background = NULL;
char	   *imgmod_storage_dir = NULL;
char	   *imgmod_hires_storage_dir = NULL;
int			imgmod_max_attempts = 5;
int			imgmod_retry_base_delay_ms = 1000;
int			imgmod_retry_max_delay_ms = 300000;
int			imgmod_poll_interval_ms = 1000;
char	   *imgmod_s3_endpoint = NULL;
char	   *imgmod_s3_region = NULL;
char	   *imgmod_s3_bucket = NULL;
char	   *imgmod_s3_access_key = NULL;
char	   *imgmod_s3_secret_key = NULL;
char	   *imgmod_hires_s3_endpoint = NULL;
char	   *imgmod_hires_s3_region = NULL;
char	   *imgmod_hires_s3_bucket = NULL;
char	   *imgmod_hires_s3_access_key = NULL;
char	   *imgmod_hires_s3_secret_key = NULL;
bool		imgmod_s3_virtual_host = false;
int			imgmod_s3_connect_timeout_ms = 5000;
int			imgmod_s3_timeout_ms = 60000;
int			imgmod_s3_retries = 3;
char	   *imgmod_redis_url = NULL;
int			imgmod_redis_ttl_s = 86400;
int			imgmod_redis_timeout_ms = 500;
char	   *imgmod_kafka_brokers = NULL;
char	   *imgmod_kafka_status_topic = NULL;
char	   *imgmod_kafka_retry_topic = NULL;
char	   *imgmod_kafka_security_protocol = NULL;
char	   *imgmod_kafka_sasl_mechanism = NULL;
char	   *imgmod_kafka_sasl_username = NULL;
char	   *imgmod_kafka_sasl_password = NULL;
char	   *imgmod_kafka_ssl_ca_location = NULL;
int			imgmod_outbox_retention_s = 86400;
int			imgmod_idempotency_retention_s = 86400;

/* Read by SQL only (imgmod.url(), imgmod.cdn_capacity), through current_setting(). */
static char *cdn_base_url = NULL;
char	   *imgmod_cdn_purge_urls = NULL;
int			imgmod_cdn_purge_timeout_ms = 2000;
int			imgmod_cdn_purge_max_backoff_ms = 10000;
static double cdn_capacity_warn = 0.9;
int			imgmod_superseded_retention_s = 86400;

static const struct config_enum_entry mismatch_options[] = {
	{"warn", IMGMOD_MISMATCH_WARN, false},
	{"reject", IMGMOD_MISMATCH_REJECT, false},
	{NULL, 0, false}
};

bool
imgmod_parse_colour(const char *s, uint8_t rgb[3])
{
	unsigned int v = 0;

	if (s == NULL || s[0] != '#' || strlen(s) != 7)
		return false;
	for (int i = 1; i < 7; i++)
	{
		if (!isxdigit((unsigned char) s[i]))
			return false;
		v = v * 16 + (isdigit((unsigned char) s[i]) ? s[i] - '0' : (tolower((unsigned char) s[i]) - 'a' + 10));
	}
	rgb[0] = (v >> 16) & 0xFF;
	rgb[1] = (v >> 8) & 0xFF;
	rgb[2] = v & 0xFF;
	return true;
}

static bool
check_background(char **newval, void **extra, GucSource source)
{
	uint8_t		rgb[3];

	(void) extra;
	(void) source;
	if (!imgmod_parse_colour(*newval, rgb))
	{
		GUC_check_errdetail("imgmod.background must be a colour written as #rrggbb, e.g. #ffffff.");
		return false;
	}
	return true;
}

void
imgmod_background_rgb(uint8_t rgb[3])
{
	if (!imgmod_parse_colour(imgmod_background, rgb))
		rgb[0] = rgb[1] = rgb[2] = 255;
}

void
imgmod_current_limits(img_limits *limits)
{
	img_limits_default(limits);
	limits->max_bytes = (size_t) imgmod_max_bytes_kb * 1024;
	limits->max_pixels = (uint64_t) (imgmod_max_megapixels * 1000000.0);
	limits->max_side = (uint32_t) imgmod_max_side;
	limits->max_frames = (uint32_t) imgmod_max_frames;
	limits->max_scans = (uint32_t) imgmod_max_scans;
	limits->max_metadata_bytes = (size_t) imgmod_max_metadata_kb * 1024;
}

/*
 * The five settings of one S3 store.  Keys are superuser-only and never
 * appear in messages; an empty endpoint keeps the store on local disk.
 *
 * Every name and description handed to DefineCustom*Variable() must live
 * as long as the process: the GUC machinery keeps the pointers, and the
 * library is loaded in the postmaster, whose working memory a backend frees
 * after fork.  So the texts are string literals, not formatted at load time.
 */
typedef struct s3_store_settings
{
	const char *endpoint_name;
	const char *endpoint_desc;
	const char *region_name;
	const char *region_desc;
	const char *bucket_name;
	const char *bucket_desc;
	const char *access_key_name;
	const char *access_key_desc;
	const char *secret_key_name;
	const char *secret_key_desc;
} s3_store_settings;

#define S3_STORE_SETTINGS(prefix, what) { \
	"imgmod." prefix "s3_endpoint", \
	"S3 endpoint of the " what ", e.g. http://127.0.0.1:9000; empty keeps it in the local directory.", \
	"imgmod." prefix "s3_region", "S3 region of the " what " (signed into every request).", \
	"imgmod." prefix "s3_bucket", "S3 bucket of the " what ".", \
	"imgmod." prefix "s3_access_key", "S3 access key of the " what ".", \
	"imgmod." prefix "s3_secret_key", "S3 secret key of the " what ".", \
}

static const s3_store_settings main_store_settings =
	S3_STORE_SETTINGS("", "main store (compressed masters and variants)");
static const s3_store_settings hires_store_settings =
	S3_STORE_SETTINGS("hires_", "hi-res store (full-resolution masters)");

static void
define_s3_settings(const s3_store_settings *texts, char **endpoint, char **region,
				   char **bucket, char **access_key, char **secret_key)
{
	DefineCustomStringVariable(texts->endpoint_name, texts->endpoint_desc,
							   NULL, endpoint, "", PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable(texts->region_name, texts->region_desc,
							   NULL, region, "us-east-1", PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable(texts->bucket_name, texts->bucket_desc,
							   NULL, bucket, "", PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable(texts->access_key_name, texts->access_key_desc,
							   NULL, access_key, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomStringVariable(texts->secret_key_name, texts->secret_key_desc,
							   NULL, secret_key, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   NULL, NULL, NULL);
}

/* librdkafka's security.protocol values; empty leaves librdkafka's default. */
static bool
check_kafka_security_protocol(char **newval, void **extra, GucSource source)
{
	static const char *const allowed[] = {"", "plaintext", "ssl", "sasl_plaintext", "sasl_ssl"};

	(void) extra;
	(void) source;
	for (size_t i = 0; i < lengthof(allowed); i++)
		if (pg_strcasecmp(*newval, allowed[i]) == 0)
			return true;
	GUC_check_errdetail("imgmod.kafka_security_protocol must be plaintext, ssl, sasl_plaintext or sasl_ssl (or empty).");
	return false;
}

static bool
check_cdn_purge_urls(char **newval, void **extra, GucSource source)
{
	char		why[256];

	(void) extra;
	(void) source;
	if (imgmod_cdn_purge_urls_valid(*newval, why, sizeof(why)))
		return true;
	GUC_check_errdetail("%s", why);
	GUC_check_errhint("Give a comma-separated list of http:// or https:// URLs of the edges, e.g. http://10.0.0.5:6081/.");
	return false;
}

void
imgmod_define_settings(void)
{
	DefineCustomStringVariable("imgmod.database",
							   "Database in which imgmod's workers run (where CREATE EXTENSION imgmod was done).",
							   NULL, &imgmod_database, "postgres",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("imgmod.workers",
							"Number of render workers started with the server.",
							NULL, &imgmod_worker_count, 2, 0, IMGMOD_MAX_WORKERS,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("imgmod.max_bytes",
							"Largest accepted upload.",
							NULL, &imgmod_max_bytes_kb, 50 * 1024, 1, 1024 * 1024,
							PGC_SUSET, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomRealVariable("imgmod.max_megapixels",
							 "Largest accepted image area in megapixels, checked from the header before decoding.",
							 NULL, &imgmod_max_megapixels, 100.0, 0.000001, 1000.0,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("imgmod.max_side",
							"Longest accepted image side in pixels.",
							NULL, &imgmod_max_side, 20000, 1, 65535,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("imgmod.max_frames",
							"Most frames accepted in an animation (only the first is kept).",
							NULL, &imgmod_max_frames, 1000, 1, 100000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("imgmod.max_scans",
							"Most scans accepted in a progressive JPEG (guards against scan bombs).",
							NULL, &imgmod_max_scans, 100, 1, 10000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("imgmod.max_metadata",
							"Largest metadata block (ICC profile, decompressed text) that is read at all.",
							NULL, &imgmod_max_metadata_kb, 8 * 1024, 1, 256 * 1024,
							PGC_SUSET, GUC_UNIT_KB, NULL, NULL, NULL);

	DefineCustomIntVariable("imgmod.master_quality",
							"JPEG quality of a full-resolution master that had to be re-encoded.",
							NULL, &imgmod_master_quality, 92, 1, 100,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("imgmod.compressed_master_quality",
							"JPEG quality of the compressed master kept for serving and re-rendering.",
							NULL, &imgmod_compressed_master_quality, 85, 1, 100,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("imgmod.render_threads",
							"Most threads one render may use: its worker's own plus one per idle CPU core; 1 keeps every render on one thread.",
							"Idle cores are counted before each step (decode, resizes, encodes); the variants are the same bytes whatever the count.",
							&imgmod_render_threads, 2, 1, IMGMOD_RENDER_THREADS_MAX,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("imgmod.compressed_master_max_side",
							"Longest side of the compressed master in pixels.",
							NULL, &imgmod_compressed_master_max_side, 2560, 64, 20000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomEnumVariable("imgmod.mismatch_policy",
							 "What upload() does when the claimed file name or content type disagrees with the bytes: warn (accept, record) or reject.",
							 NULL, &imgmod_mismatch_policy, IMGMOD_MISMATCH_WARN, mismatch_options,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("imgmod.background",
							   "Colour (#rrggbb) that transparent pixels are flattened onto, and that pad presets fill with.",
							   NULL, &imgmod_background, "#ffffff",
							   PGC_SUSET, 0, check_background, NULL, NULL);

	DefineCustomStringVariable("imgmod.storage_dir",
							   "Directory of the embedded object store (compressed masters and variants); relative paths are under the data directory.",
							   NULL, &imgmod_storage_dir, "imgmod/store",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomStringVariable("imgmod.hires_storage_dir",
							   "Directory of the embedded hi-res store (full-resolution masters); relative paths are under the data directory.",
							   NULL, &imgmod_hires_storage_dir, "imgmod/hires-store",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);

	DefineCustomIntVariable("imgmod.max_attempts",
							"Attempts a render job gets before it is dead.",
							NULL, &imgmod_max_attempts, 5, 1, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("imgmod.retry_base_delay",
							"Delay before the first retry; doubled for each further attempt, with jitter.",
							NULL, &imgmod_retry_base_delay_ms, 1000, 1, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("imgmod.retry_max_delay",
							"Longest delay between two attempts of a job, however many attempts failed.",
							NULL, &imgmod_retry_max_delay_ms, 300000, 1, 24 * 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("imgmod.poll_interval",
							"How often an idle worker looks for due work it was not woken for (retries, reclaimed jobs).",
							NULL, &imgmod_poll_interval_ms, 1000, 10, 60000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	define_s3_settings(&main_store_settings, &imgmod_s3_endpoint, &imgmod_s3_region, &imgmod_s3_bucket,
					   &imgmod_s3_access_key, &imgmod_s3_secret_key);
	define_s3_settings(&hires_store_settings, &imgmod_hires_s3_endpoint, &imgmod_hires_s3_region, &imgmod_hires_s3_bucket,
					   &imgmod_hires_s3_access_key, &imgmod_hires_s3_secret_key);
	DefineCustomBoolVariable("imgmod.s3_virtual_host",
							 "Address buckets as bucket.host (virtual-hosted style) instead of host/bucket (path style, as MinIO expects).",
							 NULL, &imgmod_s3_virtual_host, false, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("imgmod.s3_connect_timeout",
							"Time allowed to connect to an S3 endpoint.",
							NULL, &imgmod_s3_connect_timeout_ms, 5000, 100, 600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("imgmod.s3_timeout",
							"Time allowed for one whole S3 request.",
							NULL, &imgmod_s3_timeout_ms, 60000, 100, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("imgmod.s3_retries",
							"Immediate retries (jittered, exponential) of an S3 request that failed with 5xx, 408, 429, a timeout or a connection error; after them the job's own backoff takes over.",
							NULL, &imgmod_s3_retries, 3, 0, 10,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("imgmod.redis_url",
							   "Redis cache as redis://[:password@]host[:port][/db]; empty means no Redis.",
							   NULL, &imgmod_redis_url, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("imgmod.redis_ttl",
							"How long cached sources and variants live in Redis.",
							NULL, &imgmod_redis_ttl_s, 86400, 1, INT_MAX / 1000,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("imgmod.redis_timeout",
							"Time allowed for connecting to Redis and for each Redis command; past it the cache is skipped.",
							NULL, &imgmod_redis_timeout_ms, 500, 10, 60000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomStringVariable("imgmod.kafka_brokers",
							   "Kafka bootstrap servers (host:port,...) for status events and retry requests; empty means no Kafka (status still goes to imgmod.events and NOTIFY).",
							   NULL, &imgmod_kafka_brokers, "", PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("imgmod.kafka_status_topic",
							   "Kafka topic that receives every status event, keyed by image id.",
							   NULL, &imgmod_kafka_status_topic, "imgmod.status", PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("imgmod.kafka_retry_topic",
							   "Kafka topic read for retry requests (a message naming an image id re-queues its failed work).",
							   NULL, &imgmod_kafka_retry_topic, "imgmod.retry", PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("imgmod.kafka_security_protocol",
							   "Kafka security.protocol of the publisher's producer and retry consumer: plaintext, ssl, sasl_plaintext or sasl_ssl; empty keeps librdkafka's default (plaintext).",
							   NULL, &imgmod_kafka_security_protocol, "", PGC_SIGHUP, 0,
							   check_kafka_security_protocol, NULL, NULL);
	DefineCustomStringVariable("imgmod.kafka_sasl_mechanism",
							   "Kafka SASL mechanism (e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) when the security protocol is sasl_*; empty keeps librdkafka's default.",
							   NULL, &imgmod_kafka_sasl_mechanism, "", PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("imgmod.kafka_sasl_username",
							   "Kafka SASL user name.",
							   NULL, &imgmod_kafka_sasl_username, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("imgmod.kafka_sasl_password",
							   "Kafka SASL password.",
							   NULL, &imgmod_kafka_sasl_password, "", PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL, NULL, NULL, NULL);
	DefineCustomStringVariable("imgmod.kafka_ssl_ca_location",
							   "File or directory of the CA certificates that verify the Kafka brokers (ssl and sasl_ssl); empty keeps librdkafka's default.",
							   NULL, &imgmod_kafka_ssl_ca_location, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("imgmod.outbox_retention",
							"How long status events stay in imgmod.events after publication (or at all, without Kafka).",
							NULL, &imgmod_outbox_retention_s, 86400, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("imgmod.idempotency_retention",
							"How long an idempotency key of upload() or replace() is remembered.",
							"A retry with the same key within this time returns the first call's result; after it, the key is forgotten.",
							&imgmod_idempotency_retention_s, 86400, 60, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomStringVariable("imgmod.cdn_base_url",
							   "Base URL of the CDN in front of imgmod-origin, e.g. https://img.example.com; imgmod.url() and imgmod.srcset() build on it.",
							   NULL, &cdn_base_url, "", PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("imgmod.cdn_purge_urls",
							   "CDN edges (Varnish with xkey) that get a surrogate-key purge whenever an image changes: a comma-separated list of URLs; empty means no edge.",
							   "The edge purger sends PURGE with an xkey-purge header to each, from the events outbox, and retries until the edge answers 200.",
							   &imgmod_cdn_purge_urls, "", PGC_SIGHUP, 0, check_cdn_purge_urls, NULL, NULL);
	DefineCustomIntVariable("imgmod.cdn_purge_timeout",
							"Time allowed for one purge request to an edge, connection included.",
							NULL, &imgmod_cdn_purge_timeout_ms, 2000, 100, 60000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("imgmod.cdn_purge_max_backoff",
							"Longest wait between two attempts to deliver a purge to an edge that keeps failing.",
							"The wait doubles from 250 ms with each failure in a row, up to this.",
							&imgmod_cdn_purge_max_backoff_ms, 10000, 250, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomRealVariable("imgmod.cdn_capacity_warn",
							 "Share of a CDN cache's capacity in use at which imgmod.cdn_capacity says warn.",
							 NULL, &cdn_capacity_warn, 0.9, 0.0, 1.0, PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("imgmod.superseded_retention",
							"How long a superseded version's objects stay in the stores before they are deleted.",
							"Pages and CDN edges may still link to the old version's immutable URLs for a while; 0 deletes at once.",
							&imgmod_superseded_retention_s, 86400, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	MarkGUCPrefixReserved("imgmod");
}
