/*
 * render_job.h — the worker's units of work.
 */
#ifndef IMGMOD_RENDER_JOB_H
#define IMGMOD_RENDER_JOB_H

/* Claim and run the next due render job; false when none was due. */
bool		imgmod_run_one_job(void);
/* Re-queue running jobs whose worker is gone; true if any were found. */
bool		imgmod_reclaim_orphaned_jobs(void);

#endif
