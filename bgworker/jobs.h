/*
 * jobs.h — the worker's units of work.  job_queue.c claims a job and
 * records its outcome; render_job.c and purge_job.c do the two kinds.
 */
#ifndef IMGMOD_JOBS_H
#define IMGMOD_JOBS_H

typedef enum imgmod_job_kind
{
	IMGMOD_JOB_RENDER = 0,		/* masters + every preset of a new version */
	IMGMOD_JOB_PURGE,			/* delete a superseded version's objects */
} imgmod_job_kind;

typedef struct imgmod_job
{
	int64		job_id;
	int64		image_id;
	int32		version;
	int32		attempt;		/* 1 for the first attempt */
	imgmod_job_kind kind;
} imgmod_job;

/* Claim and run the next due job of any kind; false when none was due. */
bool		imgmod_run_one_job(void);
/* Re-queue running jobs whose worker is gone; true if any were found. */
bool		imgmod_reclaim_orphaned_jobs(void);

/*
 * One attempt of a job.  They ereport on failure (the queue records it and
 * schedules a retry); on success they finish the job in the same
 * transaction as their results.
 */
void		imgmod_render_job(const imgmod_job *job);
void		imgmod_purge_job(const imgmod_job *job);

#endif
