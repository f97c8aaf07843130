/*
 * module.c — imgmod's entry point: settings, shared memory, workers.
 */
#include "imgmod.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static void
register_publisher(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "imgmod");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "imgmod_publisher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "imgmod publisher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "imgmod publisher");
	RegisterBackgroundWorker(&worker);
}

static void
register_workers(void)
{
	for (int i = 0; i < imgmod_worker_count; i++)
	{
		BackgroundWorker worker;

		memset(&worker, 0, sizeof(worker));
		worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
		/* A worker that exits on an error is back within a second. */
		worker.bgw_restart_time = 1;
		snprintf(worker.bgw_library_name, BGW_MAXLEN, "imgmod");
		snprintf(worker.bgw_function_name, BGW_MAXLEN, "imgmod_worker_main");
		snprintf(worker.bgw_name, BGW_MAXLEN, "imgmod worker %d", i);
		snprintf(worker.bgw_type, BGW_MAXLEN, "imgmod worker");
		worker.bgw_main_arg = Int32GetDatum(i);
		RegisterBackgroundWorker(&worker);
	}
}

void
_PG_init(void)
{
	imgmod_define_settings();
	imgmod_install_core_allocator();
	imgmod_s3_global_init();

	if (!process_shared_preload_libraries_in_progress)
		return;
	imgmod_request_shmem();
	register_workers();
	register_publisher();
}
