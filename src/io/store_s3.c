/*
 * store_s3.c — S3 / MinIO object storage over libcurl.
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
 * still failing is reported to the caller (a render job records it and
 * its own, longer backoff takes over).  A 4xx other than 408/429 is not
 * retried: bad credentials or a missing bucket need an operator, and the
 * message carries the server's error code so they know which.
 *
 * Nothing here allocates in a curl callback except through the caller's
 * alloc hook, which must not longjmp; the should_abort hook is asked by
 * curl's progress callback, so a transfer stops promptly when the caller
 * must stop.
 */
#include "io_internal.h"

#include <ctype.h>
#include <strings.h>

#include <curl/curl.h>

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S3_PARALLEL_PUTS 8

/*
 * A response body: either memory the caller allocated before the transfer
 * (a GET, whose size is known: nothing to free or leak afterwards), or a
 * buffer of the error-document limit taken from the alloc hook on the first
 * byte (error bodies of PUT and DELETE), released with release_body().
 */
typedef struct s3_buffer
{
	char	   *data;
	size_t		len;
	size_t		limit;
	bool		caller_owned;	/* data is the caller's, of limit bytes */
	bool		overflow;
	const imgio_hooks *hooks;
} s3_buffer;

typedef struct s3_result
{
	long		status;			/* HTTP status, 0 when no response */
	char		etag[33];		/* MD5 hex from the ETag response header, or "" */
	CURLcode	curl_code;
	char		curl_error[CURL_ERROR_SIZE];
	s3_buffer	body;
} s3_result;

/* What one request is: the parts that stay the same over its retries. */
typedef struct s3_request
{
	const imgio_store_config *store;
	imgio_verb	verb;
	const char *key;
	const uint8_t *body;
	size_t		len;
	const char *content_type;
	const char *cache_control;
	bool		head;			/* a HEAD (of the bucket, key ""): the store probe */
	char		payload_sha256[IMGIO_DIGEST_HEX_MAX];
} s3_request;

void
imgio_global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

void
imgio_s3_connections_init(imgio_s3_connections *conn, const void *seed)
{
	conn->easy = NULL;
	conn->multi = NULL;
	/* distinct per client (its address) and per start (the clock) */
	conn->jitter_state = (uint64_t) (uintptr_t) seed ^ ((uint64_t) imgio_now_ms() << 20) ^
		0x9E3779B97F4A7C15ULL;
}

void
imgio_s3_connections_close(imgio_s3_connections *conn)
{
	if (conn->easy != NULL)
		curl_easy_cleanup(conn->easy);
	if (conn->multi != NULL)
		curl_multi_cleanup(conn->multi);
	conn->easy = NULL;
	conn->multi = NULL;
}

/* splitmix64 in [0, 1): jitter needs spread, not secrecy. */
static double
next_jitter(imgio_s3_connections *conn)
{
	uint64_t	z = (conn->jitter_state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	z ^= z >> 31;
	return (double) (z >> 11) / (double) (1ULL << 53);
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
	if (b->data == NULL)
	{
		b->data = imgio_hook_alloc(b->hooks, b->limit);
		if (b->data == NULL)
			return 0;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	return n;
}

static void
release_body(s3_buffer *b)
{
	if (!b->caller_owned && b->data != NULL)
	{
		imgio_hook_free(b->hooks, b->data);
		b->data = NULL;
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

	if (n < 5 || strncasecmp(line, "ETag:", 5) != 0)
		return n;
	while (i < n && (line[i] == ' ' || line[i] == '"'))
		i++;
	while (i < n && hex < 32 && isxdigit((unsigned char) line[i]))
		md5[hex++] = (char) tolower((unsigned char) line[i++]);
	md5[hex] = '\0';
	if (hex == 32 && (i == n || line[i] == '"' || line[i] == '\r' || line[i] == '\n'))
		memcpy(r->etag, md5, sizeof(r->etag));
	return n;
}

/* Abort a transfer promptly when the caller must stop. */
static int
abort_check(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
			curl_off_t ultotal, curl_off_t ulnow)
{
	const imgio_hooks *hooks = clientp;

	(void) dltotal;
	(void) dlnow;
	(void) ultotal;
	(void) ulnow;
	return hooks->should_abort(hooks->ctx) ? 1 : 0;
}

static void
object_url(const imgio_s3_config *t, const char *key, char *buf, size_t size)
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
 * Set every option of one request on an easy handle; returns the header
 * list, which the caller frees after the transfer.
 */
static struct curl_slist *
configure_request(CURL *c, const imgio_hooks *hooks, const s3_request *q, s3_result *r)
{
	const imgio_s3_config *t = &q->store->s3;
	struct curl_slist *headers = NULL;
	char		url[2048];
	char		sigv4[128];
	char		header[256];

	object_url(t, q->key, url, sizeof(url));
	snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:s3", t->region && t->region[0] ? t->region : "us-east-1");

	snprintf(header, sizeof(header), "x-amz-content-sha256: %s", q->payload_sha256);
	headers = curl_slist_append(headers, header);
	if (q->content_type)
	{
		snprintf(header, sizeof(header), "Content-Type: %s", q->content_type);
		headers = curl_slist_append(headers, header);
	}
	if (q->cache_control)
	{
		snprintf(header, sizeof(header), "Cache-Control: %s", q->cache_control);
		headers = curl_slist_append(headers, header);
	}

	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4);
	curl_easy_setopt(c, CURLOPT_USERNAME, t->access_key);
	curl_easy_setopt(c, CURLOPT_PASSWORD, t->secret_key);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long) t->connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long) t->timeout_ms);
	curl_easy_setopt(c, CURLOPT_EXPECT_100_TIMEOUT_MS, 1000L);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, abort_check);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *) hooks);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect_etag);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->curl_error);
	if (q->verb == IMGIO_VERB_PUT)
	{
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *) q->body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) q->len);
	}
	else if (q->verb == IMGIO_VERB_DELETE)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
	else if (q->head)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	return headers;
}

/* A result with no response yet, its body going to body_memory or the alloc hook. */
static void
reset_result(s3_result *r, const imgio_hooks *hooks, size_t body_limit, char *body_memory)
{
	memset(r, 0, sizeof(*r));
	r->body.limit = body_limit;
	r->body.data = body_memory;
	r->body.caller_owned = body_memory != NULL;
	r->body.hooks = hooks;
}

/*
 * One attempt on the client's kept-alive easy handle: curl_easy_reset()
 * clears the options but keeps the connection cache, so a thread's
 * requests share connections instead of connecting (and handshaking) anew.
 */
static void
perform_once(imgio_s3_connections *conn, const imgio_hooks *hooks, const s3_request *q,
			 size_t body_limit, char *body_memory, s3_result *r)
{
	struct curl_slist *headers;

	reset_result(r, hooks, body_limit, body_memory);
	if (conn->easy == NULL)
		conn->easy = curl_easy_init();
	else
		curl_easy_reset(conn->easy);
	if (conn->easy == NULL)
	{
		r->curl_code = CURLE_FAILED_INIT;
		snprintf(r->curl_error, sizeof(r->curl_error), "curl_easy_init failed");
		return;
	}
	headers = configure_request(conn->easy, hooks, q, r);
	r->curl_code = curl_easy_perform(conn->easy);
	if (r->curl_code == CURLE_OK)
		curl_easy_getinfo(conn->easy, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(headers);
	/* A request aborted midway leaves its connection unusable; start afresh. */
	if (r->curl_code != CURLE_OK)
	{
		curl_easy_cleanup(conn->easy);
		conn->easy = NULL;
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

/* "<Tag>X</Tag>" from an S3 XML error body, into buf; searched within the body's length. */
static void
xml_field(const s3_buffer *b, const char *tag, char *buf, size_t size)
{
	char		open[64];
	char		close[64];
	size_t		open_len;
	size_t		close_len;

	buf[0] = '\0';
	if (b->data == NULL || b->len == 0)
		return;
	open_len = (size_t) snprintf(open, sizeof(open), "<%s>", tag);
	close_len = (size_t) snprintf(close, sizeof(close), "</%s>", tag);
	for (size_t i = 0; i + open_len <= b->len; i++)
	{
		if (memcmp(b->data + i, open, open_len) != 0)
			continue;
		for (size_t j = i + open_len; j + close_len <= b->len; j++)
			if (memcmp(b->data + j, close, close_len) == 0)
			{
				size_t		n = j - (i + open_len);

				snprintf(buf, size, "%.*s", (int) (n < size - 1 ? n : size - 1), b->data + i + open_len);
				return;
			}
		return;
	}
}

static void
describe_failure(const s3_request *q, const s3_result *r, int attempts, imgio_error *err)
{
	const imgio_s3_config *t = &q->store->s3;
	const char *method = q->head ? "HEAD" : imgio_verb_name(q->verb);

	if (r->curl_code != CURLE_OK)
		imgio_fail(err, "S3 %s %s/%s at %s failed after %d attempt(s): %s",
				   method, t->bucket, q->key, t->endpoint, attempts,
				   r->curl_error[0] ? r->curl_error : curl_easy_strerror(r->curl_code));
	else
	{
		char		code[128];
		char		message[256];

		xml_field(&r->body, "Code", code, sizeof(code));
		xml_field(&r->body, "Message", message, sizeof(message));
		imgio_fail(err, "S3 %s %s/%s at %s failed after %d attempt(s): HTTP %ld%s%s%s%s",
				   method, t->bucket, q->key, t->endpoint, attempts, r->status,
				   code[0] ? " " : "", code, message[0] ? ": " : "", message);
	}
}

/*
 * A GET whose body is not the size the caller recorded: more than recorded
 * (cut off at the buffer's end, or just past it) or less.
 */
static void
describe_size_mismatch(const s3_request *q, const s3_result *r, size_t expected_len,
					   imgio_error *err)
{
	const imgio_s3_config *t = &q->store->s3;

	if (r->body.overflow)
		imgio_fail(err, "S3 object %s/%s at %s is larger than the %zu bytes imgmod recorded for it; refusing it",
				   t->bucket, q->key, t->endpoint, expected_len);
	else
		imgio_fail(err, "S3 object %s/%s at %s is %s than the %zu bytes imgmod recorded for it (%zu bytes); refusing it",
				   t->bucket, q->key, t->endpoint, r->body.len > expected_len ? "larger" : "smaller",
				   expected_len, r->body.len);
}

/* Key and bucket checks, then the payload hash that is sent and signed. */
static bool
prepare_request(s3_request *q, imgio_error *err)
{
	const imgio_s3_config *t = &q->store->s3;

	if (!q->head && !imgio_key_is_safe(q->key))
		return imgio_fail(err, "refusing unsafe object key \"%s\"", q->key);
	if (t->bucket == NULL || t->bucket[0] == '\0')
		return imgio_fail(err, "S3 endpoint %s is set for the %s store but its bucket is empty; set %s",
						  t->endpoint, q->store->name,
						  t->bucket_setting_name ? t->bucket_setting_name : "its bucket");
	if (q->verb != IMGIO_VERB_PUT)
	{
		snprintf(q->payload_sha256, sizeof(q->payload_sha256), "%s", EMPTY_SHA256);
		return true;
	}
	return imgio_digest_hex(IMGIO_DIGEST_SHA256, q->body, q->len, q->payload_sha256, err);
}

/*
 * Run a prepared request with the retry policy.  On success returns true
 * and, for a GET, leaves the body in *r: in body_memory (body_limit bytes)
 * when the caller gives it; with expected_len > 0 a body of any other
 * length is a failure.  When first_attempt is given, that attempt was
 * already made (by a parallel batch) and only the retries, if any are due,
 * run here.
 */
static bool
run_with_retries(imgio_s3_connections *conn, const imgio_hooks *hooks, const s3_request *q,
				 size_t body_limit, char *body_memory, size_t expected_len,
				 const s3_result *first_attempt, s3_result *r, imgio_error *err)
{
	int			attempt;
	bool		ok = false;
	bool		wrong_size = false;
	bool		aborted = false;

	for (attempt = 1;; attempt++)
	{
		if (attempt == 1 && first_attempt != NULL)
			*r = *first_attempt;
		else
			perform_once(conn, hooks, q, body_limit, body_memory, r);
		ok = r->curl_code == CURLE_OK && r->status >= 200 && r->status < 300;
		/* Deleting what is already gone is done (S3 answers 204; some servers 404). */
		if (q->verb == IMGIO_VERB_DELETE && r->curl_code == CURLE_OK && r->status == 404)
			ok = true;
		if (ok || !retryable(r) || attempt > q->store->s3.retries)
			break;
		release_body(&r->body);
		/* jittered exponential backoff: 100 ms, 200 ms, 400 ms ... x [0.5, 1) */
		if (!imgio_sleep_unless_aborted(hooks, (long) (100.0 * (1 << (attempt - 1)) *
													   (0.5 + 0.5 * next_jitter(conn)))))
		{
			aborted = true;
			break;
		}
	}
	if (expected_len > 0 && (r->body.overflow || (ok && r->body.len != expected_len)))
	{
		ok = false;
		wrong_size = true;
	}
	hooks->count_request(q->store, q->verb, ok, attempt - 1, hooks->ctx);
	if (r->curl_code == CURLE_ABORTED_BY_CALLBACK || aborted)
		err->interrupted = true;
	if (!ok)
	{
		if (wrong_size)
			describe_size_mismatch(q, r, expected_len, err);
		else
			describe_failure(q, r, attempt, err);
		release_body(&r->body);
	}
	return ok;
}

size_t
imgio_store_get_capacity(size_t expected_bytes)
{
	return expected_bytes > IMGIO_S3_ERROR_BODY_MAX ? expected_bytes : IMGIO_S3_ERROR_BODY_MAX;
}

bool
imgio_s3_get(imgio_s3_connections *conn, const imgio_hooks *hooks,
			 const imgio_store_config *store, const char *key, size_t expected_bytes,
			 uint8_t *dest, size_t capacity, size_t *got, imgio_error *err)
{
	s3_request	q = {.store = store, .verb = IMGIO_VERB_GET, .key = key};
	s3_result	r;

	if (!prepare_request(&q, err))
		return false;
	if (!run_with_retries(conn, hooks, &q, capacity, (char *) dest, expected_bytes, NULL, &r, err))
		return false;
	*got = r.body.len;
	return true;
}

bool
imgio_s3_delete(imgio_s3_connections *conn, const imgio_hooks *hooks,
				const imgio_store_config *store, const char *key, imgio_error *err)
{
	s3_request	q = {.store = store, .verb = IMGIO_VERB_DELETE, .key = key};
	s3_result	r;
	bool		ok;

	if (!prepare_request(&q, err))
		return false;
	ok = run_with_retries(conn, hooks, &q, IMGIO_S3_ERROR_BODY_MAX, NULL, 0, NULL, &r, err);
	release_body(&r.body);
	return ok;
}

/*
 * HEAD of the bucket ("bucket/" path-style, "/" on the bucket's host), one
 * attempt under the caller's short timeout: a health check must answer
 * promptly, and is asked again soon enough.
 */
bool
imgio_s3_probe(imgio_s3_connections *conn, const imgio_hooks *hooks,
			   const imgio_store_config *store, int timeout_ms, imgio_error *err)
{
	imgio_store_config quick = *store;
	s3_request	q = {.store = &quick, .verb = IMGIO_VERB_GET, .key = "", .head = true};
	s3_result	r;
	bool		ok;

	quick.s3.timeout_ms = timeout_ms;
	if (quick.s3.connect_timeout_ms <= 0 || quick.s3.connect_timeout_ms > timeout_ms)
		quick.s3.connect_timeout_ms = timeout_ms;
	if (!prepare_request(&q, err))
		return false;
	perform_once(conn, hooks, &q, IMGIO_S3_ERROR_BODY_MAX, NULL, &r);
	ok = r.curl_code == CURLE_OK && r.status >= 200 && r.status < 300;
	if (r.curl_code == CURLE_ABORTED_BY_CALLBACK)
		err->interrupted = true;
	if (!ok)
		describe_failure(&q, &r, 1, err);
	release_body(&r.body);
	return ok;
}

/*
 * PUT several objects at once over the client's multi handle, whose
 * connection cache keeps the connections alive from one batch to the next:
 * a job's objects cost one round of server latency instead of one each in
 * a row.  Each transfer's outcome then goes through the same retry policy
 * as a single request: a success is counted, a retryable failure is
 * retried (one by one, with backoff), anything else is described in its
 * item.
 */
typedef struct s3_transfer
{
	CURL	   *easy;
	struct curl_slist *headers;
	s3_request	q;
	bool		prepared;
	s3_result	r;
} s3_transfer;

static void
run_parallel_first_attempts(CURLM *multi, const imgio_hooks *hooks, s3_transfer *tr, int n)
{
	CURLMsg    *msg;
	int			running = 0;
	int			queued = 0;

	for (int i = 0; i < n; i++)
	{
		reset_result(&tr[i].r, hooks, IMGIO_S3_ERROR_BODY_MAX, NULL);
		/* Until curl reports the transfer done: not sent, so retryable. */
		tr[i].r.curl_code = CURLE_FAILED_INIT;
		snprintf(tr[i].r.curl_error, sizeof(tr[i].r.curl_error),
				 "the parallel transfer did not complete");
		if (!tr[i].prepared)
			continue;
		tr[i].easy = curl_easy_init();
		if (tr[i].easy == NULL)
		{
			snprintf(tr[i].r.curl_error, sizeof(tr[i].r.curl_error), "curl_easy_init failed");
			continue;
		}
		tr[i].headers = configure_request(tr[i].easy, hooks, &tr[i].q, &tr[i].r);
		curl_easy_setopt(tr[i].easy, CURLOPT_PRIVATE, (char *) &tr[i]);
		if (curl_multi_add_handle(multi, tr[i].easy) == CURLM_OK)
			queued++;
	}
	/* Transfers abort through abort_check when the caller must stop. */
	while (queued > 0)
	{
		CURLMcode	mc = curl_multi_perform(multi, &running);

		if (mc != CURLM_OK || running == 0)
			break;
		curl_multi_poll(multi, NULL, 0, 100, NULL);
	}
	while ((msg = curl_multi_info_read(multi, &running)) != NULL)
	{
		s3_transfer *x = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &x);
		x->r.curl_code = msg->data.result;
		if (x->r.curl_code == CURLE_OK)
		{
			x->r.curl_error[0] = '\0';
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &x->r.status);
		}
	}
	for (int i = 0; i < n; i++)
	{
		if (tr[i].easy == NULL)
			continue;
		curl_multi_remove_handle(multi, tr[i].easy);
		curl_easy_cleanup(tr[i].easy);
		curl_slist_free_all(tr[i].headers);
		tr[i].easy = NULL;
	}
}

static int
fail_all(imgio_put_item *items, int n, const char *why)
{
	for (int i = 0; i < n; i++)
	{
		items[i].ok = false;
		snprintf(items[i].error, sizeof(items[i].error), "%s", why);
	}
	return n;
}

int
imgio_s3_put_many(imgio_s3_connections *conn, const imgio_hooks *hooks,
				  imgio_put_item *items, int n, imgio_error *interrupted)
{
	s3_transfer *tr;
	int			failed = 0;

	if (n <= 0)
		return 0;
	if (conn->multi == NULL)
	{
		conn->multi = curl_multi_init();
		if (conn->multi == NULL)
			return fail_all(items, n, "curl_multi_init failed");
		curl_multi_setopt(conn->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) S3_PARALLEL_PUTS);
	}
	tr = imgio_hook_alloc(hooks, sizeof(s3_transfer) * (size_t) n);
	if (tr == NULL)
		return fail_all(items, n, "out of memory preparing the S3 transfers");
	memset(tr, 0, sizeof(s3_transfer) * (size_t) n);
	for (int i = 0; i < n; i++)
	{
		imgio_put_item *it = &items[i];
		imgio_error err = {0};

		it->ok = false;
		it->error[0] = '\0';
		it->etag[0] = '\0';
		tr[i].q = (s3_request) {
			.store = it->store, .verb = IMGIO_VERB_PUT, .key = it->key, .body = it->data,
			.len = it->len, .content_type = it->content_type, .cache_control = it->cache_control
		};
		tr[i].prepared = prepare_request(&tr[i].q, &err);
		if (!tr[i].prepared)
			snprintf(it->error, sizeof(it->error), "%s", err.message);
	}
	run_parallel_first_attempts(conn->multi, hooks, tr, n);
	for (int i = 0; i < n; i++)
	{
		imgio_put_item *it = &items[i];
		imgio_error err = {0};
		s3_result	r;

		if (!tr[i].prepared || interrupted->interrupted)
		{
			/* once the caller must stop, nothing more is sent */
			if (tr[i].prepared)
				snprintf(it->error, sizeof(it->error), "not stored: the batch was interrupted");
			release_body(&tr[i].r.body);
			failed++;
			continue;
		}
		it->ok = run_with_retries(conn, hooks, &tr[i].q, IMGIO_S3_ERROR_BODY_MAX, NULL, 0,
								  &tr[i].r, &r, &err);
		if (it->ok)
			memcpy(it->etag, r.etag, sizeof(it->etag));
		else
			snprintf(it->error, sizeof(it->error), "%s", err.message);
		if (err.interrupted)
			interrupted->interrupted = true;
		release_body(&r.body);
		if (!it->ok)
			failed++;
	}
	imgio_hook_free(hooks, tr);
	return failed;
}
