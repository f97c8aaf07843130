/*
 * store.c — the store dispatcher: each store is S3 when its configuration
 * has an endpoint, else a local directory.  It owns the client (hooks and
 * S3 connections) and counts the local store's requests; the backends
 * (store_local.c, store_s3.c) never call back into it.
 */
#include "io_internal.h"

struct imgio_store_client
{
	imgio_hooks hooks;
	imgio_s3_connections s3;
};

static bool
is_s3(const imgio_store_config *store)
{
	return store->s3.endpoint != NULL && store->s3.endpoint[0] != '\0';
}

const char *
imgio_store_backend(const imgio_store_config *store)
{
	return is_s3(store) ? "s3" : "local";
}

imgio_store_client *
imgio_store_client_create(const imgio_hooks *hooks)
{
	imgio_hooks resolved;
	imgio_store_client *client;

	imgio_hooks_resolve(hooks, &resolved);
	client = imgio_hook_alloc(&resolved, sizeof(*client));
	if (client == NULL)
		return NULL;
	client->hooks = resolved;
	imgio_s3_connections_init(&client->s3, client);
	return client;
}

void
imgio_store_client_free(imgio_store_client *client)
{
	imgio_hooks hooks;

	if (client == NULL)
		return;
	imgio_s3_connections_close(&client->s3);
	hooks = client->hooks;
	imgio_hook_free(&hooks, client);
}

bool
imgio_store_get(imgio_store_client *client, const imgio_store_config *store, const char *key,
				size_t expected_bytes, uint8_t *dest, size_t capacity, size_t *got,
				imgio_error *err)
{
	bool		ok;

	err->interrupted = false;
	*got = 0;
	if (capacity < imgio_store_get_capacity(expected_bytes))
		return imgio_fail(err, "a buffer of %zu bytes cannot hold object \"%s\" (%zu bytes)",
						  capacity, key, expected_bytes);
	if (is_s3(store))
		return imgio_s3_get(&client->s3, &client->hooks, store, key, expected_bytes, dest,
							capacity, got, err);
	ok = imgio_local_get(store, key, expected_bytes, dest, got, err);
	client->hooks.count_request(store, IMGIO_VERB_GET, ok, 0, client->hooks.ctx);
	return ok;
}

bool
imgio_store_delete(imgio_store_client *client, const imgio_store_config *store, const char *key,
				   imgio_error *err)
{
	bool		ok;

	err->interrupted = false;
	if (is_s3(store))
		return imgio_s3_delete(&client->s3, &client->hooks, store, key, err);
	ok = imgio_local_delete(store, key, err);
	client->hooks.count_request(store, IMGIO_VERB_DELETE, ok, 0, client->hooks.ctx);
	return ok;
}

bool
imgio_store_probe(imgio_store_client *client, const imgio_store_config *store, int timeout_ms,
				  imgio_error *err)
{
	err->interrupted = false;
	if (is_s3(store))
		return imgio_s3_probe(&client->s3, &client->hooks, store, timeout_ms, err);
	return imgio_local_probe(store, err);
}

/*
 * Local items are written one by one, S3 items all at once (of every S3
 * store in the batch), then put back in their places.
 */
int
imgio_store_put_many(imgio_store_client *client, imgio_put_item *items, int n,
					 imgio_error *interrupted)
{
	imgio_put_item *remote;
	int			nremote = 0;
	int			failed = 0;

	interrupted->interrupted = false;
	interrupted->message[0] = '\0';
	if (n <= 0)
		return 0;
	remote = imgio_hook_alloc(&client->hooks, sizeof(imgio_put_item) * (size_t) n);
	for (int i = 0; i < n; i++)
	{
		imgio_error err = {0};

		if (is_s3(items[i].store))
		{
			if (remote != NULL)
				remote[nremote++] = items[i];
			else
			{
				items[i].ok = false;
				snprintf(items[i].error, sizeof(items[i].error), "out of memory preparing the S3 transfers");
				failed++;
			}
			continue;
		}
		items[i].etag[0] = '\0';
		items[i].ok = imgio_local_put(items[i].store, items[i].key, items[i].data, items[i].len, &err);
		snprintf(items[i].error, sizeof(items[i].error), "%s", items[i].ok ? "" : err.message);
		client->hooks.count_request(items[i].store, IMGIO_VERB_PUT, items[i].ok, 0, client->hooks.ctx);
		failed += items[i].ok ? 0 : 1;
	}
	if (nremote > 0)
	{
		failed += imgio_s3_put_many(&client->s3, &client->hooks, remote, nremote, interrupted);
		for (int i = 0, j = 0; i < n; i++)
			if (is_s3(items[i].store))
				items[i] = remote[j++];
	}
	imgio_hook_free(&client->hooks, remote);
	return failed;
}
