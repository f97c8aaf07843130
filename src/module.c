/*
 * module.c — imgmod's entry point: settings, shared memory, workers.
 */
#include "imgmod.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* A background process of imgmod; restarted within a second if it exits. */
static void
register_process(const char *function, const char *name, const char *type, int arg)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "imgmod");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(worker.bgw_name, BGW_MAXLEN, "%s", name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "%s", type);
	worker.bgw_main_arg = Int32GetDatum(arg);
	RegisterBackgroundWorker(&worker);
}

void
_PG_init(void)
{
	imgmod_define_settings();
	imgmod_install_core_hooks();
	/* libcurl's global set-up, in the postmaster before any process forks */
	imgio_global_init();

	if (!process_shared_preload_libraries_in_progress)
		return;
	imgmod_request_shmem();
	for (int i = 0; i < imgmod_worker_count; i++)
	{
		char		name[BGW_MAXLEN];

		snprintf(name, sizeof(name), "imgmod worker %d", i);
		register_process("imgmod_worker_main", name, "imgmod worker", i);
	}
	register_process("imgmod_publisher_main", "imgmod publisher", "imgmod publisher", 0);
	register_process("imgmod_edge_purger_main", "imgmod edge purger", "imgmod edge purger", 0);
}
