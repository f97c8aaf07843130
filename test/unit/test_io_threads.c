/*
 * test_io_threads.c — the I/O library from several threads at once, as the
 * origin will use it: one client per thread, all writing and reading the
 * same keys of one local store.  Every write must succeed and every read
 * must be one writer's whole object; under AddressSanitizer and valgrind
 * this also checks that no client touches another's state.
 */
#include "test.h"
#include "imgio.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 4
#define ROUNDS 60
#define OBJECT_BYTES (64 * 1024)

typedef struct worker_run
{
	const imgio_store_config *store;
	uint8_t		fill;			/* every byte this thread writes */
	int			failures;
	char		first_error[IMGIO_ERROR_MESSAGE_MAX];
} worker_run;

static void
note_failure(worker_run *run, const char *message)
{
	if (run->failures++ == 0)
		snprintf(run->first_error, sizeof(run->first_error), "%s", message);
}

static void *
put_and_read_back(void *arg)
{
	worker_run *run = arg;
	imgio_store_client *client = imgio_store_client_create(NULL);
	uint8_t    *data = malloc(OBJECT_BYTES);
	size_t		capacity = imgio_store_get_capacity(OBJECT_BYTES);
	uint8_t    *dest = malloc(capacity);

	if (data != NULL)
		memset(data, run->fill, OBJECT_BYTES);
	for (int i = 0; i < ROUNDS && client != NULL && dest != NULL && data != NULL; i++)
	{
		char		key[64];
		imgio_put_item item = {.store = run->store, .key = key, .data = data, .len = OBJECT_BYTES};
		imgio_error err = {0};
		size_t		got = 0;

		imgio_variant_key(key, sizeof(key), 1, 1 + i % 2, "shared");
		if (imgio_store_put_many(client, &item, 1, &err) != 0)
		{
			note_failure(run, item.error);
			continue;
		}
		/* another thread may have replaced it since: whole objects only, of one fill */
		if (!imgio_store_get(client, run->store, key, OBJECT_BYTES, dest, capacity, &got, &err))
			note_failure(run, err.message);
		else
			for (size_t b = 1; b < got; b++)
				if (dest[b] != dest[0])
				{
					note_failure(run, "an object mixed the bytes of two writers");
					break;
				}
	}
	if (client == NULL || dest == NULL || data == NULL)
		note_failure(run, "out of memory");
	free(data);
	free(dest);
	imgio_store_client_free(client);
	return NULL;
}

TEST_SUITE(io_local_store_threads)
{
	char		dir[] = "/tmp/imgio-threads-XXXXXX";
	imgio_store_config store = {.name = "main"};
	pthread_t	threads[THREADS];
	worker_run	runs[THREADS];

	CHECK(mkdtemp(dir) != NULL, "a temporary directory");
	store.local_dir = dir;
	for (int t = 0; t < THREADS; t++)
	{
		runs[t] = (worker_run) {.store = &store, .fill = (uint8_t) ('a' + t)};
		CHECK(pthread_create(&threads[t], NULL, put_and_read_back, &runs[t]) == 0, "thread %d started", t);
	}
	for (int t = 0; t < THREADS; t++)
	{
		pthread_join(threads[t], NULL);
		CHECK(runs[t].failures == 0, "thread %d: %d failures, first: %s", t, runs[t].failures,
			  runs[t].first_error);
	}
	remove_tree(dir);
}
