/*
 * render_threads.c — how many threads a worker's render may use right now.
 *
 * A render is split between threads only with cores nobody else wants:
 * under load every worker (and every upload backend, and the object store)
 * already has a core, and a second thread per render would only add
 * switching.  /proc/loadavg's fourth field counts the tasks runnable at
 * this instant across the machine, this one included; each core beyond
 * that count is idle, and the render may take one more thread per idle
 * core, up to imgmod.render_threads.  The image core asks before each
 * step, so a render started on an idle machine steps back to one thread as
 * soon as other work arrives.
 */
#include "imgmod.h"

#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

/* Cores this process may run on (its affinity mask), at least 1. */
static int
usable_cores(void)
{
	cpu_set_t	set;
	int			n;

	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 1;
	n = CPU_COUNT(&set);
	return n > 0 ? n : 1;
}

/* Tasks runnable now, from /proc/loadavg ("0.10 0.20 0.30 2/345 6789"); -1 if unknown. */
static int
runnable_tasks(void)
{
	char		buf[128];
	ssize_t		n;
	int			fd;
	char	   *p;
	char	   *end;
	long		running;

	fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* skip the three averages */
	p = buf;
	for (int field = 0; field < 3; field++)
	{
		p = strchr(p, ' ');
		if (p == NULL)
			return -1;
		p++;
	}
	running = strtol(p, &end, 10);
	if (end == p || *end != '/' || running < 0 || running > 1000000)
		return -1;
	return (int) running;
}

unsigned
imgmod_idle_core_budget(void *ctx)
{
	int			cores;
	int			running;
	int			budget;

	(void) ctx;
	if (imgmod_render_threads <= 1)
		return 1;
	running = runnable_tasks();
	if (running < 1)
		return 1;				/* unknown: stay on this thread */
	cores = usable_cores();
	budget = 1 + (cores > running ? cores - running : 0);
	return (unsigned) Min(budget, imgmod_render_threads);
}
