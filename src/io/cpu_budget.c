/*
 * cpu_budget.c — how many threads a render may take on this machine right
 * now: its own, plus one per core nobody else is using.
 *
 * The texts come from the kernel (/proc/loadavg, /proc/self/cgroup, a
 * cgroup v2 cpu.max); the caller reads them, and these functions parse
 * them without trusting their shape: anything unexpected means "unknown",
 * which keeps a render on one thread.
 */
#include "imgio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
imgio_runnable_tasks(const char *loadavg)
{
	const char *p = loadavg;
	char	   *end;
	long		running;

	if (p == NULL)
		return -1;
	/* "0.10 0.20 0.30 2/345 6789": skip the three averages */
	for (int field = 0; field < 3; field++)
	{
		p = strchr(p, ' ');
		if (p == NULL)
			return -1;
		p++;
	}
	if (*p < '0' || *p > '9')
		return -1;
	running = strtol(p, &end, 10);
	if (end == p || *end != '/' || running < 1 || running > 1000000)
		return -1;
	return (int) running;
}

bool
imgio_cgroup_v2_cpu_max_path(const char *proc_self_cgroup, char *path, size_t size)
{
	const char *line;
	size_t		len;

	if (proc_self_cgroup == NULL || size == 0)
		return false;
	/* "0::/some/group" is the cgroup v2 line; v1 lines name a controller */
	line = strncmp(proc_self_cgroup, "0::", 3) == 0 ? proc_self_cgroup : strstr(proc_self_cgroup, "\n0::");
	if (line == NULL)
		return false;
	line += line == proc_self_cgroup ? 3 : 4;
	len = strcspn(line, "\n");
	if (len == 0 || line[0] != '/')
		return false;
	for (size_t i = 0; i + 1 < len; i++)
		if (line[i] == '.' && line[i + 1] == '.')
			return false;		/* never a path outside /sys/fs/cgroup */
	return snprintf(path, size, "/sys/fs/cgroup%.*s%scpu.max", (int) len, line,
					line[len - 1] == '/' ? "" : "/") < (int) size;
}

int
imgio_quota_cores(const char *cpu_max)
{
	char	   *end;
	long		quota;
	long		period;

	if (cpu_max == NULL || *cpu_max < '0' || *cpu_max > '9')
		return 0;				/* "max period": no quota */
	quota = strtol(cpu_max, &end, 10);
	if (end == cpu_max || *end != ' ' || quota <= 0)
		return 0;
	period = strtol(end + 1, &end, 10);
	if (period <= 0 || quota > 1000000L * period)
		return 0;
	return (int) ((quota + period - 1) / period);
}

unsigned
imgio_idle_core_budget(int cores, int quota_cores, int runnable, unsigned cap)
{
	int			usable = cores;
	int			idle;

	if (cap <= 1 || runnable < 1 || cores < 1)
		return 1;
	if (quota_cores > 0 && quota_cores < usable)
		usable = quota_cores;
	/* the caller is one of the runnable tasks */
	idle = usable > runnable ? usable - runnable : 0;
	return (unsigned) idle + 1 < cap ? (unsigned) idle + 1 : cap;
}
