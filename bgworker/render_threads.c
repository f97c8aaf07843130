/*
 * render_threads.c — how many threads a worker's render may use right now.
 *
 * A render is split between threads only with cores nobody else wants:
 * under load every worker (and every upload backend, and the object store)
 * already has a core, and a second thread per render would only add
 * switching.  /proc/loadavg's fourth field counts the tasks runnable at
 * this instant across the machine, this one included; each core beyond
 * that count is idle, and the render may take one more thread per idle
 * core, up to imgmod.render_threads.  The cores are this process's
 * affinity mask, lowered to its cgroup v2 CPU quota.  The image core asks
 * before each step, so a render started on an idle machine steps back to
 * one thread as soon as other work arrives.  The parsing is the I/O
 * library's (src/io/cpu_budget.c, unit-tested); this file reads the files.
 */
#include "imgmod.h"

#include "imgio.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

/* A small file's text, NUL-terminated, in buf; false if it cannot be read. */
static bool
read_small_file(const char *path, char *buf, size_t size)
{
	ssize_t		n;
	int			fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return true;
}

/* Cores in this process's affinity mask, at least 1. */
static int
affinity_cores(void)
{
	cpu_set_t	set;
	int			n;

	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 1;
	n = CPU_COUNT(&set);
	return n > 0 ? n : 1;
}

/* Whole cores this process's cgroup v2 quota allows; 0 for none or unknown. */
static int
cgroup_quota_cores(void)
{
	char		text[1024];
	char		path[512];

	if (!read_small_file("/proc/self/cgroup", text, sizeof(text)) ||
		!imgio_cgroup_v2_cpu_max_path(text, path, sizeof(path)) ||
		!read_small_file(path, text, sizeof(text)))
		return 0;
	return imgio_quota_cores(text);
}

unsigned
imgmod_idle_core_budget(void *ctx)
{
	char		loadavg[128];

	(void) ctx;
	if (imgmod_render_threads <= 1 || !read_small_file("/proc/loadavg", loadavg, sizeof(loadavg)))
		return 1;
	return imgio_idle_core_budget(affinity_cores(), cgroup_quota_cores(),
								  imgio_runnable_tasks(loadavg), (unsigned) imgmod_render_threads);
}
