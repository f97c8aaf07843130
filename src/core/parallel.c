/*
 * parallel.c — helper threads for one render.
 *
 * A render (decode, resizes, encodes) can be split into independent parts
 * whose results are identical whatever the split; render.c, resize.c and
 * codecs/jpeg.c cut the work, and this file runs the parts.  Threads are
 * started per step and joined before it returns, so nothing outlives the
 * call and no state is shared between calls.
 *
 * The core runs inside PostgreSQL processes, whose signal handlers and
 * memory contexts belong to the process's own thread.  So a helper runs
 * with every signal blocked (a signal for the process is then delivered to
 * the caller's thread, as if no helper existed), allocates only through its
 * own thread's allocator (malloc, see alloc.c), and only reads the
 * interrupt hook, which reads flags.
 */
#include "codec.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local bool helper_thread;
static _Thread_local unsigned long helpers_started;	/* by this thread, ever */
static atomic_ulong helper_runs;	/* for tests: tasks run on helpers so far */

typedef struct task_slot
{
	img_task_fn fn;
	void	   *arg;
} task_slot;

static void *
helper_main(void *p)
{
	task_slot  *slot = p;

	helper_thread = true;
	slot->fn(slot->arg);
	atomic_fetch_add(&helper_runs, 1);
	return NULL;
}

unsigned long
img_helper_runs(void)
{
	return atomic_load(&helper_runs);
}

bool
img_on_helper_thread(void)
{
	return helper_thread;
}

unsigned long
img_helpers_started_here(void)
{
	return helpers_started;
}

void
img_run_tasks(img_task_fn fn, void *args, size_t stride, size_t n)
{
	pthread_t	threads[IMG_MAX_THREADS];
	task_slot	slots[IMG_MAX_THREADS];
	bool		started[IMG_MAX_THREADS] = {false};
	sigset_t	all;
	sigset_t	previous;
	bool		masked;

	size_t		helpers;

	if (n == 0)
		return;
	/* tasks beyond IMG_MAX_THREADS run on the caller's thread, after its own */
	helpers = n < IMG_MAX_THREADS ? n : IMG_MAX_THREADS;

	/* a new thread inherits the mask of the thread that starts it */
	sigfillset(&all);
	masked = helpers > 1 && pthread_sigmask(SIG_SETMASK, &all, &previous) == 0;
	for (size_t i = 1; i < helpers && masked; i++)
	{
		slots[i].fn = fn;
		slots[i].arg = (char *) args + i * stride;
		started[i] = pthread_create(&threads[i], NULL, helper_main, &slots[i]) == 0;
		helpers_started += started[i];
	}
	if (masked)
		pthread_sigmask(SIG_SETMASK, &previous, NULL);

	fn(args);
	for (size_t i = helpers; i < n; i++)
		fn((char *) args + i * stride);
	for (size_t i = 1; i < helpers; i++)
	{
		if (started[i])
			pthread_join(threads[i], NULL);
		else
			fn((char *) args + i * stride);	/* no thread: do it here */
	}
}

img_status
img_adopt_buffer(img_buffer *buffer, bool from_helper, img_error *err)
{
	uint8_t    *mine;

	if (!from_helper || buffer->data == NULL)
		return IMG_OK;
	mine = img_alloc(buffer->len);
	if (mine == NULL)
	{
		size_t		len = buffer->len;

		free(buffer->data);
		buffer->data = NULL;
		buffer->len = 0;
		return img_fail(err, IMG_ERR_NO_MEMORY, "out of memory taking over a %zu-byte result", len);
	}
	memcpy(mine, buffer->data, buffer->len);
	free(buffer->data);			/* the helper's allocator was malloc */
	buffer->data = mine;
	return IMG_OK;
}
