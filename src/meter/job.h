/* job.h — jobs across ranks and nodes (issue 18 item 4).
 *
 * Launcher identity: the variables torchrun, SLURM, Open MPI and PMI set in
 * each rank's environment, and the hostname, recorded in meta.json
 * "launcher" so that `wattmeter report --job` can merge the recordings of
 * one job.
 *
 * One meter per node measures the node's devices. Meters of one job on one
 * node (the job named by $WATTMETER_JOB, else SLURM_JOB_ID[.SLURM_STEP_ID],
 * else TORCHELASTIC_RUN_ID, else OMPI_MCA_ess_base_jobid, else
 * PMIX_NAMESPACE) take an flock on "job-<key>.lock" in a node-local folder:
 * /run/wattmeter (root), else $XDG_RUNTIME_DIR/wattmeter, else
 * /tmp/wattmeter-<uid>; the folder is created 0700 and refused when it is
 * not ours or is open to others, and every file in it is opened relative
 * to its fd with O_NOFOLLOW. The meter that gets the lock is the node's
 * meter ("node_meter": true): it measures the devices and, on each process
 * tick, adds the processes the others registered as files
 * "job-<key>.d/<pid>" (content: the rank) to its measured set, labelled
 * with their rank. The others ("node_meter": false) still record their own
 * run, but their device energy is the node's counted again: the job summary
 * takes devices only from node meters. */
#ifndef WM_METER_JOB_H
#define WM_METER_JOB_H

#include <stddef.h>

#include "base/util.h"
#include "procs/proctree.h"

/* meta.json "launcher": {"hostname":..., "RANK":"0", ...}: the variables
 * that are set, as strings. */
void wm_launcher_json(wm_buf *b);

/* This process's rank from the launcher's variables (RANK, SLURM_PROCID,
 * OMPI_COMM_WORLD_RANK, PMI_RANK), -1 if none. */
int wm_launcher_rank(void);

typedef struct wm_job wm_job;

/* Joins the job named in the environment: *out NULL (0) when there is none
 * or $WATTMETER_NO_JOB is set. -errno with err when the lock folder is unsafe. */
int wm_job_join(wm_job **out, char *err, size_t errlen);
void wm_job_free(wm_job *j);
int wm_job_is_node_meter(const wm_job *j);

/* Not the node meter: registers pid (a root of this meter) with the node
 * meter. 0 or -errno. */
int wm_job_register(wm_job *j, int pid);

/* The node meter: adds the registered processes it has not seen as roots
 * with their rank (wm_proc.rank). Returns how many. */
int wm_job_poll(wm_job *j, wm_proctree *t);

/* meta.json "job": {"key":..,"node_meter":..,"lock":..,"rank":..} or "null". */
void wm_job_json(const wm_job *j, wm_buf *b);

#endif
