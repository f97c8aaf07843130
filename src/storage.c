/*
 * storage.c — the extension's side of object storage: the settings of
 * each store (main, hires) become an imgio store configuration, S3 when
 * its endpoint is set (imgmod.s3_endpoint / imgmod.hires_s3_endpoint), else
 * the local directory; the library's results become bytea and the callers'
 * messages.  The I/O itself is src/io.
 */
#include "imgmod.h"

#include "miscadmin.h"

static imgio_store_config configs[IMGMOD_STORE_COUNT];
static char local_dirs[IMGMOD_STORE_COUNT][MAXPGPATH];
static imgio_store_client *client = NULL;

const char *
imgmod_store_name(imgmod_store store)
{
	return store == IMGMOD_STORE_HIRES ? "hires" : "main";
}

/* The process's client (kept-alive connections), made on first use. */
static imgio_store_client *
store_client(void)
{
	if (client == NULL)
		client = imgio_store_client_create(imgmod_io_hooks());
	if (client == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("imgmod: out of memory creating the object-store client")));
	return client;
}

const imgio_store_config *
imgmod_store_config(imgmod_store store)
{
	bool		hires = store == IMGMOD_STORE_HIRES;
	imgio_store_config *c = &configs[store];
	const char *root = hires ? imgmod_hires_storage_dir : imgmod_storage_dir;

	/* a relative directory lives in the data directory */
	if (root[0] == '/')
		strlcpy(local_dirs[store], root, MAXPGPATH);
	else
		snprintf(local_dirs[store], MAXPGPATH, "%s/%s", DataDir, root);
	c->name = imgmod_store_name(store);
	c->id = (int) store;
	c->local_dir = local_dirs[store];
	c->s3.endpoint = hires ? imgmod_hires_s3_endpoint : imgmod_s3_endpoint;
	c->s3.region = hires ? imgmod_hires_s3_region : imgmod_s3_region;
	c->s3.bucket = hires ? imgmod_hires_s3_bucket : imgmod_s3_bucket;
	c->s3.access_key = hires ? imgmod_hires_s3_access_key : imgmod_s3_access_key;
	c->s3.secret_key = hires ? imgmod_hires_s3_secret_key : imgmod_s3_secret_key;
	c->s3.virtual_host = imgmod_s3_virtual_host;
	c->s3.connect_timeout_ms = imgmod_s3_connect_timeout_ms;
	c->s3.timeout_ms = imgmod_s3_timeout_ms;
	c->s3.retries = imgmod_s3_retries;
	c->s3.bucket_setting_name = hires ? "imgmod.hires_s3_bucket" : "imgmod.s3_bucket";
	return c;
}

const char *
imgmod_store_backend(imgmod_store store)
{
	return imgio_store_backend(imgmod_store_config(store));
}

/*
 * The library stopped because of a pending cancel or termination: raise
 * it now (normally never returns).
 */
static void
raise_if_interrupted(const imgio_error *err)
{
	if (err->interrupted)
		CHECK_FOR_INTERRUPTS();
}

bytea *
imgmod_store_get(imgmod_store store, const char *key, size_t expected_bytes,
				 char *errbuf, size_t errsize)
{
	const imgio_store_config *config = imgmod_store_config(store);
	size_t		capacity = imgio_store_get_capacity(expected_bytes);
	imgio_error err = {0};
	size_t		got = 0;
	bytea	   *result;

	/* allocated before the transfer: nothing of it is left to free on any path */
	result = palloc(VARHDRSZ + capacity);
	if (!imgio_store_get(store_client(), config, key, expected_bytes,
						 (uint8_t *) VARDATA(result), capacity, &got, &err))
	{
		pfree(result);
		raise_if_interrupted(&err);
		strlcpy(errbuf, err.message, errsize);
		return NULL;
	}
	SET_VARSIZE(result, VARHDRSZ + got);
	return result;
}

bool
imgmod_store_delete(imgmod_store store, const char *key, char *errbuf, size_t errsize)
{
	imgio_error err = {0};

	if (imgio_store_delete(store_client(), imgmod_store_config(store), key, &err))
		return true;
	raise_if_interrupted(&err);
	strlcpy(errbuf, err.message, errsize);
	return false;
}

int
imgmod_store_put_many(imgio_put_item *items, int n)
{
	imgio_error interrupted = {0};
	int			failed;

	/* the settings as they are now, for every store the items point to */
	for (int st = 0; st < IMGMOD_STORE_COUNT; st++)
		(void) imgmod_store_config((imgmod_store) st);
	failed = imgio_store_put_many(store_client(), items, n, &interrupted);
	raise_if_interrupted(&interrupted);
	return failed;
}
