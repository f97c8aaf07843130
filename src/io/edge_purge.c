/*
 * edge_purge.c — one surrogate-key purge request to a CDN edge.
 *
 * imgmod's edges are Varnish with the xkey vmod (edge/imgmod.vcl): a
 * "PURGE" request whose xkey-purge header lists surrogate keys drops every
 * object tagged with any of them, and is answered 200 only when the edge
 * accepted it.  Anything else -- a refusal, a redirect, no answer within
 * the timeout -- leaves the purge undelivered, and the caller tries again.
 */
#include "io_internal.h"

#include <ctype.h>
#include <curl/curl.h>

/* Keep the start of the answer's body: the edge says why it refused. */
typedef struct reason_buffer
{
	char		text[160];
	size_t		len;
} reason_buffer;

static size_t
keep_reason(char *data, size_t size, size_t nmemb, void *userdata)
{
	reason_buffer *r = userdata;
	size_t		n = size * nmemb;

	for (size_t i = 0; i < n && r->len + 1 < sizeof(r->text); i++)
	{
		unsigned char ch = (unsigned char) data[i];

		/* one printable line: an answer is quoted into an error message */
		if (ch == '\n' || ch == '\r')
			break;
		r->text[r->len++] = isprint(ch) ? (char) ch : '?';
	}
	r->text[r->len] = '\0';
	return n;
}

bool
imgio_purge_keys_valid(const char *keys)
{
	size_t		n = 0;

	if (keys == NULL || keys[0] == '\0')
		return false;
	for (const char *p = keys; *p; p++, n++)
		if (!(isalnum((unsigned char) *p) || *p == '-' || *p == '_' || *p == '.' || *p == ' '))
			return false;
	return n <= IMGIO_PURGE_KEYS_MAX;
}

bool
imgio_edge_purge(const char *url, const char *keys, long timeout_ms, long *http_status,
				 imgio_error *err)
{
	CURL	   *c;
	CURLcode	rc;
	struct curl_slist *headers = NULL;
	char		header[IMGIO_PURGE_KEYS_MAX + 32];
	char		curl_error[CURL_ERROR_SIZE] = "";
	reason_buffer reason = {.len = 0};
	long		status = 0;

	*http_status = 0;
	if (!imgio_purge_keys_valid(keys))
		return imgio_fail(err, "surrogate keys must be 1 to %d characters of [A-Za-z0-9._- ]",
						  IMGIO_PURGE_KEYS_MAX);
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return imgio_fail(err, "an edge's purge URL must start with http:// or https://");

	c = curl_easy_init();
	if (c == NULL)
		return imgio_fail(err, "could not create an HTTP client");
	snprintf(header, sizeof(header), "xkey-purge: %s", keys);
	headers = curl_slist_append(headers, header);
	if (headers == NULL)
	{
		curl_easy_cleanup(c);
		return imgio_fail(err, "out of memory");
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PURGE");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_reason);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &reason);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_error);

	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(c);

	*http_status = status;
	if (rc != CURLE_OK)
		return imgio_fail(err, "edge unreachable: %s", curl_error[0] ? curl_error : curl_easy_strerror(rc));
	if (status != 200)
		return imgio_fail(err, "edge answered %ld%s%s", status, reason.len ? ": " : "", reason.text);
	return true;
}
