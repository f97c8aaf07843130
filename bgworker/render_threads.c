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
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <stdlib.h>
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

/*
 * Cores' worth of CPU time a cgroup v2 quota allows this process
 * (/sys/fs/cgroup/<its group>/cpu.max: "quota period", or "max period"),
 * rounded up; 0 when there is no quota or it cannot be read.
 */
static int
quota_cores(void)
{
	char		path[512];
	char		buf[1024];
	char	   *line;
	char	   *end;
	long		quota;
	long		period;

	/* "0::/some/group" is this process's cgroup v2 line (v1 quotas are not read) */
	if (!read_small_file("/proc/self/cgroup", buf, sizeof(buf)))
		return 0;
	line = strncmp(buf, "0::", 3) == 0 ? buf : strstr(buf, "\n0::");
	if (line == NULL)
		return 0;
	line += line == buf ? 3 : 4;
	line[strcspn(line, "\n")] = '\0';
	if (strstr(line, "..") != NULL ||
		snprintf(path, sizeof(path), "/sys/fs/cgroup%s/cpu.max", line) >= (int) sizeof(path))
		return 0;
	if (!read_small_file(path, buf, sizeof(buf)))
		return 0;
	quota = strtol(buf, &end, 10);
	if (end == buf || *end != ' ' || quota <= 0)
		return 0;				/* "max": no quota */
	period = strtol(end + 1, &end, 10);
	if (period <= 0 || quota > 1000000L * period)
		return 0;
	return (int) ((quota + period - 1) / period);
}

/*
 * Cores this process may use: its affinity mask, lowered to a cgroup's CPU
 * quota (a container limited to 2 CPUs on a 64-core host has 2); at least 1.
 */
static int
usable_cores(void)
{
	cpu_set_t	set;
	int			n;
	int			quota;

	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 1;
	n = CPU_COUNT(&set);
	quota = quota_cores();
	if (quota > 0 && quota < n)
		n = quota;
	return n > 0 ? n : 1;
}

/* Tasks runnable now, from /proc/loadavg ("0.10 0.20 0.30 2/345 6789"); -1 if unknown. */
static int
runnable_tasks(void)
{
	char		buf[128];
	char	   *p;
	char	   *end;
	long		running;

	if (!read_small_file("/proc/loadavg", buf, sizeof(buf)))
		return -1;
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
