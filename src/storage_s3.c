/*
 * storage_s3.c — S3 / MinIO object storage over libcurl.
 *
 * Signing is libcurl's own AWS SigV4 (CURLOPT_AWS_SIGV4); imgmod writes no
 * signing code.  With the curl of Debian 12 (7.88) three rules matter:
 * x-amz-content-sha256 must be sent by us (curl then signs it, and the
 * server checks the body against it), no header-removal entries may be
 * given, and the path is signed verbatim, which is safe because object keys
 * only ever contain [a-z0-9/._-].
 *
 * A request that fails with 5xx, 408, 429, a timeout or a connection error
 * is retried a few times here with jittered exponential backoff; anything
 * still failing is reported to the caller (the render job records it and
 * its own, longer backoff takes over).  A 4xx other than 408/429 is not
 * retried: bad credentials or a missing bucket need an operator, and the
 * message carries the server's error code so they know which.
 */
#include "imgmod.h"

#include <ctype.h>

#include <curl/curl.h>

#include "common/pg_prng.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#define S3_ERROR_BODY_MAX (16 * 1024)
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/*
 * A response body.  Curl callbacks must not ereport, so the body goes
 * either into memory the caller allocated beforehand (a GET, whose size the
 * database knows: nothing to free or leak afterwards), or into a malloc'd
 * buffer grown here (error bodies of PUT and DELETE), freed with
 * release_body().
 */
typedef struct s3_buffer
{
	char	   *data;
	size_t		len;
	size_t		cap;
	size_t		limit;
	bool		caller_owned;	/* data is the caller's, of limit bytes */
	bool		overflow;
} s3_buffer;

typedef struct s3_result
{
	long		status;			/* HTTP status, 0 when no response */
	char		etag[33];		/* MD5 hex from the ETag response header, or "" */
	CURLcode	curl_code;
	char		curl_error[CURL_ERROR_SIZE];
	s3_buffer	body;
} s3_result;

void
imgmod_s3_global_init(void)
{
	/* Once, in the postmaster, before any process forks. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t
collect_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	s3_buffer  *b = userdata;
	size_t		n = size * nmemb;

	if (b->len + n > b->limit)
	{
		b->overflow = true;
		return 0;				/* makes curl fail with CURLE_WRITE_ERROR */
	}
	if (!b->caller_owned && b->len + n > b->cap)
	{
		size_t		cap = Max(b->cap * 2, b->len + n + 8192);
		char	   *nd = realloc(b->data, cap);

		if (nd == NULL)
			return 0;
		b->data = nd;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	return n;
}

static void
release_body(s3_buffer *b)
{
	if (!b->caller_owned)
	{
		free(b->data);
		b->data = NULL;
		b->cap = 0;
	}
	b->len = 0;
}

/*
 * Keep the ETag of the answer when it is a plain MD5 (what S3 reports for a
 * single PUT), so the caller need not hash the bytes again.
 */
static size_t
collect_etag(char *line, size_t size, size_t nitems, void *userdata)
{
	s3_result  *r = userdata;
	size_t		n = size * nitems;
	size_t		i = 5;
	int			hex = 0;
	char		md5[33];

	if (n < 5 || pg_strncasecmp(line, "ETag:", 5) != 0)
		return n;
	while (i < n && (line[i] == ' ' || line[i] == '"'))
		i++;
	while (i < n && hex < 32 && isxdigit((unsigned char) line[i]))
		md5[hex++] = (char) tolower((unsigned char) line[i++]);
	md5[hex] = '\0';
	if (hex == 32 && (i == n || line[i] == '"' || line[i] == '\r' || line[i] == '\n'))
		strlcpy(r->etag, md5, sizeof(r->etag));
	return n;
}

/* Abort a transfer promptly when the backend or worker is asked to stop. */
static int
interrupt_check(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
				curl_off_t ultotal, curl_off_t ulnow)
{
	(void) clientp;
	(void) dltotal;
	(void) dlnow;
	(void) ultotal;
	(void) ulnow;
	return (InterruptPending && (ProcDiePending || QueryCancelPending)) ? 1 : 0;
}

static void
object_url(const imgmod_s3_target *t, const char *key, char *buf, size_t size)
{
	const char *endpoint = t->endpoint;
	size_t		n = strlen(endpoint);

	while (n > 0 && endpoint[n - 1] == '/')
		n--;
	if (t->virtual_host)
	{
		const char *host = strstr(endpoint, "://");
		int			scheme_len = host ? (int) (host - endpoint) : 0;

		host = host ? host + 3 : endpoint;
		snprintf(buf, size, "%.*s%s%s.%.*s/%s", scheme_len, endpoint, scheme_len ? "://" : "",
				 t->bucket, (int) (n - (host - endpoint)), host, key);
	}
	else
		snprintf(buf, size, "%.*s/%s/%s", (int) n, endpoint, t->bucket, key);
}

/*
 * One easy handle per store for the life of the process: curl_easy_reset()
 * clears the options but keeps the handle's connection cache, so a worker
 * PUTs all objects of a job (and of the jobs after it) over one kept-alive
 * connection instead of connecting, and with TLS handshaking, six times per
 * upload.  Workers are single-threaded, so the handles are never shared.
 */
static CURL *store_handles[IMGMOD_STORE_COUNT];

static CURL *
handle_for(imgmod_store store)
{
	if (store_handles[store] == NULL)
		store_handles[store] = curl_easy_init();
	else
		curl_easy_reset(store_handles[store]);
	return store_handles[store];
}

/*
 * Set every option of one request on an easy handle; returns the header
 * list, which the caller frees after the transfer.
 */
static struct curl_slist *
configure_request(CURL *c, const imgmod_s3_target *t, const char *method, const char *key,
				  const uint8_t *body, size_t len, const char *payload_sha256,
				  const char *content_type, const char *cache_control, s3_result *r)
{
	struct curl_slist *headers = NULL;
	char		url[2048];
	char		sigv4[128];
	char		header[256];

	object_url(t, key, url, sizeof(url));
	snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:s3", t->region && t->region[0] ? t->region : "us-east-1");

	snprintf(header, sizeof(header), "x-amz-content-sha256: %s", payload_sha256);
	headers = curl_slist_append(headers, header);
	if (content_type)
	{
		snprintf(header, sizeof(header), "Content-Type: %s", content_type);
		headers = curl_slist_append(headers, header);
	}
	if (cache_control)
	{
		snprintf(header, sizeof(header), "Cache-Control: %s", cache_control);
		headers = curl_slist_append(headers, header);
	}

	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4);
	curl_easy_setopt(c, CURLOPT_USERNAME, t->access_key);
	curl_easy_setopt(c, CURLOPT_PASSWORD, t->secret_key);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long) imgmod_s3_connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long) imgmod_s3_timeout_ms);
	curl_easy_setopt(c, CURLOPT_EXPECT_100_TIMEOUT_MS, 1000L);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, interrupt_check);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect_etag);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->curl_error);
	if (strcmp(method, "PUT") == 0)
	{
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *) body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
	}
	else if (strcmp(method, "DELETE") == 0)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
	return headers;
}

static void
perform_once(const imgmod_s3_target *t, imgmod_store store, const char *method, const char *key,
			 const uint8_t *body, size_t len, const char *payload_sha256,
			 const char *content_type, const char *cache_control,
			 size_t body_limit, char *body_memory, s3_result *r)
{
	CURL	   *c = handle_for(store);
	struct curl_slist *headers;

	memset(r, 0, sizeof(*r));
	r->body.limit = body_limit;
	r->body.data = body_memory;
	r->body.caller_owned = body_memory != NULL;
	if (c == NULL)
	{
		r->curl_code = CURLE_FAILED_INIT;
		strlcpy(r->curl_error, "curl_easy_init failed", sizeof(r->curl_error));
		return;
	}
	headers = configure_request(c, t, method, key, body, len, payload_sha256, content_type,
								cache_control, r);
	r->curl_code = curl_easy_perform(c);
	if (r->curl_code == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(headers);
	/* A request aborted midway leaves its connection unusable; start afresh. */
	if (r->curl_code != CURLE_OK)
	{
		curl_easy_cleanup(c);
		store_handles[store] = NULL;
	}
}

static bool
retryable(const s3_result *r)
{
	if (r->curl_code == CURLE_ABORTED_BY_CALLBACK)
		return false;
	if (r->curl_code != CURLE_OK)
		return !(r->curl_code == CURLE_WRITE_ERROR && r->body.overflow);
	return r->status >= 500 || r->status == 408 || r->status == 429;
}

/* "<Code>X</Code>" from an S3 XML error body, into buf. */
static void
xml_field(const s3_buffer *b, const char *tag, char *buf, size_t size)
{
	char		open[64];
	char		close[64];
	const char *start;
	const char *end;
	char	   *text;

	buf[0] = '\0';
	if (b->data == NULL || b->len == 0)
		return;
	text = pnstrdup(b->data, b->len);
	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	start = strstr(text, open);
	if (start && (end = strstr(start, close)) != NULL)
	{
		start += strlen(open);
		snprintf(buf, size, "%.*s", (int) Min((size_t) (end - start), size - 1), start);
	}
	pfree(text);
}

static void
describe_failure(const imgmod_s3_target *t, const char *method, const char *key,
				 const s3_result *r, int attempts, char *errbuf, size_t errsize)
{
	if (r->curl_code != CURLE_OK)
		snprintf(errbuf, errsize, "S3 %s %s/%s at %s failed after %d attempt(s): %s",
				 method, t->bucket, key, t->endpoint, attempts,
				 r->curl_error[0] ? r->curl_error : curl_easy_strerror(r->curl_code));
	else
	{
		char		code[128];
		char		message[256];

		xml_field(&r->body, "Code", code, sizeof(code));
		xml_field(&r->body, "Message", message, sizeof(message));
		snprintf(errbuf, errsize, "S3 %s %s/%s at %s failed after %d attempt(s): HTTP %ld%s%s%s%s",
				 method, t->bucket, key, t->endpoint, attempts, r->status,
				 code[0] ? " " : "", code, message[0] ? ": " : "", message);
	}
}

/*
 * A GET whose body is not the size the database recorded: more than
 * recorded (cut off at the buffer's end, or just past it) or less.
 */
static void
describe_size_mismatch(const imgmod_s3_target *t, const char *key, const s3_result *r,
					   size_t expected_len, char *errbuf, size_t errsize)
{
	if (r->body.overflow)
		snprintf(errbuf, errsize, "S3 object %s/%s at %s is larger than the %zu bytes imgmod recorded for it; refusing it",
				 t->bucket, key, t->endpoint, expected_len);
	else
		snprintf(errbuf, errsize, "S3 object %s/%s at %s is %s than the %zu bytes imgmod recorded for it (%zu bytes); refusing it",
				 t->bucket, key, t->endpoint, r->body.len > expected_len ? "larger" : "smaller",
				 expected_len, r->body.len);
}

static bool
check_request(const imgmod_s3_target *t, imgmod_store store, const char *key,
			  char *errbuf, size_t errsize)
{
	if (!imgmod_key_is_safe(key))
	{
		snprintf(errbuf, errsize, "refusing unsafe object key \"%s\"", key);
		return false;
	}
	if (t->bucket == NULL || t->bucket[0] == '\0')
	{
		snprintf(errbuf, errsize, "S3 endpoint %s is set for the %s store but its bucket is empty; set imgmod.%ss3_bucket",
				 t->endpoint, imgmod_store_name(store), store == IMGMOD_STORE_HIRES ? "hires_" : "");
		return false;
	}
	return true;
}

/*
 * Run a request with the retry policy.  On success returns true and, for a
 * GET, leaves the body in *r: in body_memory (body_limit bytes) when the
 * caller gives it, else malloc'd (the caller calls release_body); with
 * expected_len > 0 a body of any other length is a failure.  When
 * first_attempt is given, that attempt was already made (by a parallel
 * batch) and only the retries, if any are due, run here; payload_sha256 is
 * then the hash that attempt computed.
 */
static bool
s3_request_after(const imgmod_s3_target *t, imgmod_store store, imgmod_verb verb, const char *key,
				 const uint8_t *body, size_t len, const char *content_type,
				 const char *cache_control, size_t body_limit, char *body_memory,
				 size_t expected_len, s3_result *r, char *errbuf, size_t errsize,
				 const s3_result *first_attempt, const char *first_sha256)
{
	const char *method = imgmod_verb_name(verb);
	char		payload_sha256[65];
	int			attempt;
	bool		ok = false;
	bool		wrong_size = false;

	if (!check_request(t, store, key, errbuf, errsize))
		return false;
	if (first_sha256 != NULL)
		strlcpy(payload_sha256, first_sha256, sizeof(payload_sha256));
	else if (verb == IMGMOD_VERB_PUT)
		imgmod_sha256_hex(body, len, payload_sha256);
	else
		strlcpy(payload_sha256, EMPTY_SHA256, sizeof(payload_sha256));

	for (attempt = 1;; attempt++)
	{
		if (attempt == 1 && first_attempt != NULL)
			*r = *first_attempt;
		else
			perform_once(t, store, method, key, body, len, payload_sha256, content_type,
						 cache_control, body_limit, body_memory, r);
		ok = r->curl_code == CURLE_OK && r->status >= 200 && r->status < 300;
		/* Deleting what is already gone is done (S3 answers 204; some servers 404). */
		if (verb == IMGMOD_VERB_DELETE && r->curl_code == CURLE_OK && r->status == 404)
			ok = true;
		if (ok || !retryable(r) || attempt > imgmod_s3_retries)
			break;
		release_body(&r->body);
		/* jittered exponential backoff: 100 ms, 200 ms, 400 ms ... x [0.5, 1) */
		pg_usleep((long) (100000.0 * (1 << (attempt - 1)) *
						  (0.5 + 0.5 * pg_prng_double(&pg_global_prng_state))));
		CHECK_FOR_INTERRUPTS();
	}
	if (expected_len > 0 && (r->body.overflow || (ok && r->body.len != expected_len)))
	{
		ok = false;
		wrong_size = true;
	}
	imgmod_count_request(store, verb, ok, attempt - 1);
	if (r->curl_code == CURLE_ABORTED_BY_CALLBACK)
	{
		release_body(&r->body);
		CHECK_FOR_INTERRUPTS();
	}
	if (!ok)
	{
		if (wrong_size)
			describe_size_mismatch(t, key, r, expected_len, errbuf, errsize);
		else
			describe_failure(t, method, key, r, attempt, errbuf, errsize);
		release_body(&r->body);
	}
	return ok;
}

static bool
s3_request(const imgmod_s3_target *t, imgmod_store store, imgmod_verb verb, const char *key,
		   const uint8_t *body, size_t len, const char *content_type,
		   const char *cache_control, size_t body_limit, char *body_memory,
		   size_t expected_len, s3_result *r, char *errbuf, size_t errsize)
{
	return s3_request_after(t, store, verb, key, body, len, content_type, cache_control,
							body_limit, body_memory, expected_len, r, errbuf, errsize, NULL, NULL);
}

/*
 * The body is read straight into the result, allocated before the transfer
 * for the size the database recorded (or room for an S3 error document, if
 * that is larger): a store answering with more bytes is cut off there
 * instead of filling memory, and nothing is left to free on any path.
 */
bytea *
imgmod_s3_get(const imgmod_s3_target *t, imgmod_store store, const char *key,
			  size_t expected_bytes, char *errbuf, size_t errsize)
{
	s3_result	r;
	bytea	   *result;
	size_t		capacity = Max(expected_bytes, (size_t) S3_ERROR_BODY_MAX);

	result = palloc(VARHDRSZ + capacity);
	memset(&r, 0, sizeof(r));
	if (!s3_request(t, store, IMGMOD_VERB_GET, key, NULL, 0, NULL, NULL,
					capacity, VARDATA(result), expected_bytes, &r, errbuf, errsize))
	{
		pfree(result);
		return NULL;
	}
	SET_VARSIZE(result, VARHDRSZ + r.body.len);
	return result;
}

bool
imgmod_s3_delete(const imgmod_s3_target *t, imgmod_store store, const char *key,
				 char *errbuf, size_t errsize)
{
	s3_result	r;
	bool		ok;

	memset(&r, 0, sizeof(r));
	ok = s3_request(t, store, IMGMOD_VERB_DELETE, key, NULL, 0, NULL, NULL,
					S3_ERROR_BODY_MAX, NULL, 0, &r, errbuf, errsize);
	release_body(&r.body);
	return ok;
}

/*
 * PUT several objects at once over a curl multi handle, whose connection
 * cache keeps the connections alive from one job to the next.  A job's six
 * objects then cost one round of server latency instead of six in a row.
 * Each transfer's outcome then goes through the same retry policy as a
 * single request: a success is counted, a retryable failure is retried
 * (one by one, with backoff), anything else is described in its item.
 */
#define S3_PARALLEL_PUTS 8

typedef struct s3_transfer
{
	CURL	   *easy;
	struct curl_slist *headers;
	char		payload_sha256[65];
	s3_result	r;
} s3_transfer;

static CURLM *put_multi = NULL;

int
imgmod_s3_put_many(const imgmod_s3_target *targets, imgmod_put_item *items, int n)
{
	s3_transfer *tr;
	CURLMsg    *msg;
	int			running = 0;
	int			queued = 0;
	int			failed = 0;

	if (n <= 0)
		return 0;
	if (put_multi == NULL)
	{
		put_multi = curl_multi_init();
		if (put_multi == NULL)
			elog(ERROR, "imgmod: curl_multi_init failed");
		curl_multi_setopt(put_multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) S3_PARALLEL_PUTS);
	}
	tr = palloc0(sizeof(s3_transfer) * n);
	for (int i = 0; i < n; i++)
	{
		imgmod_put_item *it = &items[i];
		const imgmod_s3_target *t = &targets[it->store];

		it->ok = false;
		it->error[0] = '\0';
		it->etag[0] = '\0';
		tr[i].r.body.limit = S3_ERROR_BODY_MAX;
		/* Until curl reports the transfer done: not sent, so retryable. */
		tr[i].r.curl_code = CURLE_FAILED_INIT;
		strlcpy(tr[i].r.curl_error, "the parallel transfer did not complete", sizeof(tr[i].r.curl_error));
		if (!check_request(t, it->store, it->key, it->error, sizeof(it->error)))
			continue;
		imgmod_sha256_hex(it->data, it->len, tr[i].payload_sha256);
	}

	/*
	 * From the first curl_multi_add_handle to the last remove, nothing may
	 * ereport: a handle left in the static multi handle would point into
	 * freed memory at the next batch.  So everything that can fail with an
	 * error (hashing, allocation) happened above.
	 */
	for (int i = 0; i < n; i++)
	{
		imgmod_put_item *it = &items[i];
		const imgmod_s3_target *t = &targets[it->store];

		if (it->error[0] != '\0')
			continue;
		tr[i].easy = curl_easy_init();
		if (tr[i].easy == NULL)
		{
			tr[i].r.curl_code = CURLE_FAILED_INIT;
			strlcpy(tr[i].r.curl_error, "curl_easy_init failed", sizeof(tr[i].r.curl_error));
			continue;
		}
		tr[i].headers = configure_request(tr[i].easy, t, "PUT", it->key, it->data, it->len,
										  tr[i].payload_sha256, it->content_type,
										  it->cache_control, &tr[i].r);
		curl_easy_setopt(tr[i].easy, CURLOPT_PRIVATE, (char *) &tr[i]);
		if (curl_multi_add_handle(put_multi, tr[i].easy) == CURLM_OK)
			queued++;
	}

	/* Transfers abort through interrupt_check when the process must stop. */
	while (queued > 0)
	{
		CURLMcode	mc = curl_multi_perform(put_multi, &running);

		if (mc != CURLM_OK || running == 0)
			break;
		curl_multi_poll(put_multi, NULL, 0, 100, NULL);
	}
	while ((msg = curl_multi_info_read(put_multi, &running)) != NULL)
	{
		s3_transfer *x = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &x);
		x->r.curl_code = msg->data.result;
		if (x->r.curl_code == CURLE_OK)
			x->r.curl_error[0] = '\0';
		if (x->r.curl_code == CURLE_OK)
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &x->r.status);
	}
	for (int i = 0; i < n; i++)
	{
		if (tr[i].easy == NULL)
			continue;
		curl_multi_remove_handle(put_multi, tr[i].easy);
		curl_easy_cleanup(tr[i].easy);
		curl_slist_free_all(tr[i].headers);
	}

	for (int i = 0; i < n; i++)
	{
		imgmod_put_item *it = &items[i];
		s3_result	r;

		if (it->error[0] != '\0')
		{
			failed++;
			continue;
		}
		it->ok = s3_request_after(&targets[it->store], it->store, IMGMOD_VERB_PUT, it->key,
								  it->data, it->len, it->content_type, it->cache_control,
								  S3_ERROR_BODY_MAX, NULL, 0, &r, it->error, sizeof(it->error),
								  &tr[i].r, tr[i].payload_sha256);
		if (it->ok)
			strlcpy(it->etag, r.etag, sizeof(it->etag));
		release_body(&r.body);
		if (!it->ok)
			failed++;
	}
	pfree(tr);
	return failed;
}
