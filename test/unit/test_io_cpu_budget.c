/*
 * test_io_cpu_budget.c — the idle-core budget of a worker's render: the
 * parsers of /proc/loadavg, /proc/self/cgroup and cgroup v2's cpu.max, fed
 * their real shapes and broken ones (anything unexpected must mean
 * "unknown", which keeps a render on one thread), and the arithmetic.
 */
#include "test.h"
#include "imgio.h"

#include <string.h>

TEST_SUITE(io_cpu_budget_parsers)
{
	char		path[128];

	CHECK(imgio_runnable_tasks("0.10 0.20 0.30 2/345 6789\n") == 2, "loadavg: 2 runnable");
	CHECK(imgio_runnable_tasks("12.00 9.50 7.25 17/2048 99") == 17, "loadavg: 17 runnable");
	CHECK(imgio_runnable_tasks("0.00 0.00 0.00 1/1 1") == 1, "loadavg: only the caller");
	{
		static const char *const broken[] = {
			NULL, "", "0.10 0.20", "0.10 0.20 0.30", "0.10 0.20 0.30 ", "0.10 0.20 0.30 x/3 4",
			"0.10 0.20 0.30 -2/345 6", "0.10 0.20 0.30 0/345 6", "0.10 0.20 0.30 2 345",
			"0.10 0.20 0.30 99999999999999999999/1 1", "0.10 0.20 0.30 +2/3 4",
		};

		for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++)
			CHECK(imgio_runnable_tasks(broken[i]) == -1, "loadavg %zu (\"%s\"): unknown", i,
				  broken[i] ? broken[i] : "NULL");
	}

	CHECK(imgio_cgroup_v2_cpu_max_path("0::/system.slice/pg.service\n", path, sizeof(path)) &&
		  strcmp(path, "/sys/fs/cgroup/system.slice/pg.service/cpu.max") == 0, "cgroup v2: %s", path);
	CHECK(imgio_cgroup_v2_cpu_max_path("12:cpu:/x\n3:memory:/y\n0::/a/b\n", path, sizeof(path)) &&
		  strcmp(path, "/sys/fs/cgroup/a/b/cpu.max") == 0, "hybrid, the v2 line last: %s", path);
	CHECK(imgio_cgroup_v2_cpu_max_path("0::/\n", path, sizeof(path)) &&
		  strcmp(path, "/sys/fs/cgroup/cpu.max") == 0, "the root group: %s", path);
	CHECK(!imgio_cgroup_v2_cpu_max_path("9:name=systemd:/\n1:cpu:/\n", path, sizeof(path)), "v1 only: none");
	CHECK(!imgio_cgroup_v2_cpu_max_path("0::/../../etc\n", path, sizeof(path)), "\"..\" refused");
	CHECK(!imgio_cgroup_v2_cpu_max_path("0::relative\n", path, sizeof(path)), "not absolute: refused");
	CHECK(!imgio_cgroup_v2_cpu_max_path("0::\n", path, sizeof(path)), "empty group: refused");
	CHECK(!imgio_cgroup_v2_cpu_max_path("10::/x\n", path, sizeof(path)), "\"10::\" is not the v2 line");
	CHECK(!imgio_cgroup_v2_cpu_max_path("0::/a/very/long/group/name/indeed\n", path, 24), "too long for the buffer");
	CHECK(!imgio_cgroup_v2_cpu_max_path(NULL, path, sizeof(path)), "NULL");

	CHECK(imgio_quota_cores("200000 100000\n") == 2, "quota: 2 cores");
	CHECK(imgio_quota_cores("150000 100000") == 2, "quota: 1.5 rounds up to 2");
	CHECK(imgio_quota_cores("50000 100000") == 1, "quota: half a core is 1");
	CHECK(imgio_quota_cores("max 100000\n") == 0, "no quota");
	{
		static const char *const broken[] = {
			NULL, "", "100000", "-100000 100000", "0 100000", "100000 0", "100000 -5", "abc 100000",
			"99999999999999999999 1",
		};

		for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++)
			CHECK(imgio_quota_cores(broken[i]) == 0, "cpu.max %zu (\"%s\"): no quota",
				  i, broken[i] ? broken[i] : "NULL");
	}
}

TEST_SUITE(io_cpu_budget_arithmetic)
{
	/* cores, quota, runnable (the caller included), cap -> threads */
	static const int cases[][5] = {
		{2, 0, 1, 2, 2},		/* idle 2-core machine: a second thread */
		{2, 0, 2, 2, 1},		/* the other core busy */
		{2, 0, 5, 2, 1},		/* overloaded */
		{8, 0, 1, 2, 2},		/* capped by render_threads */
		{8, 0, 3, 8, 6},		/* 5 idle cores */
		{64, 2, 1, 8, 2},		/* a 2-CPU container on a big host */
		{64, 2, 2, 8, 1},
		{2, 4, 1, 8, 2},		/* a quota above the mask changes nothing */
		{2, 0, -1, 8, 1},		/* runnable unknown */
		{2, 0, 1, 1, 1},		/* render_threads = 1 */
		{0, 0, 1, 8, 1},		/* no cores known */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		unsigned	got = imgio_idle_core_budget(cases[i][0], cases[i][1], cases[i][2], (unsigned) cases[i][3]);

		CHECK(got == (unsigned) cases[i][4], "cores %d quota %d runnable %d cap %d: %u threads, want %d",
			  cases[i][0], cases[i][1], cases[i][2], cases[i][3], got, cases[i][4]);
	}
}
