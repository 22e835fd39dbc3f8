/* wattmeter.h — the public C API of libwattmeter.
 *
 * A meter samples energy sources (RAPL through powercap sysfs; a documented
 * CPU model where there are no counters) on one native thread, attributes
 * energy to a set of processes, and writes a recording (docs/recording.md).
 * A recording is read back with wm_recording_* (see below) to get totals.
 *
 * Conventions: functions return 0 or a negative errno and, where they take
 * (err, errlen), fill err with a message that names the problem and the fix.
 * Objects come in _new/_free (or _start/_free) pairs; _free(NULL) is harmless.
 * The library never exits, aborts or prints. Units are in every name.
 * Thread safety: one meter may be used from one thread at a time; the
 * sampler thread only touches the meter's own state under its lock.
 */
#ifndef WATTMETER_H
#define WATTMETER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WM_VERSION "0.1.0"

/* Defaults, chosen from bench/results (README "Overhead"): a counter tick
 * costs about 100 us of CPU on a 2-core VM, most of it the wake-up itself,
 * and a process tick about 300 us with a dozen processes; 2 Hz counters, 1 Hz
 * processes and PSS every 10 s keep the sampler near 0.05% of one core there.
 * Totals do not depend on the period (counter deltas); only the time
 * resolution of power curves does: use a shorter period for finer curves. */
#define WM_DEFAULT_PERIOD_S 0.5       /* counter tier: RAPL, CPU utilisation */
#define WM_DEFAULT_PROC_PERIOD_S 1.0  /* process tier: /proc/<pid>/stat scan */
#define WM_DEFAULT_MEM_PERIOD_S 10.0  /* memory tier: smaps_rollup (0 = off) */
/* CPU model when no counters: per-vCPU watts at 0% and 100% utilisation.
 * Cloud Carbon Footprint's published averages for AWS (min 0.74 W, max 3.5 W). */
#define WM_DEFAULT_MODEL_MIN_W 0.74
#define WM_DEFAULT_MODEL_MAX_W 3.5

typedef struct wm_meter_config {
	const char *output_dir;       /* required: the recording folder (created) */
	const char *sysfs_root;       /* NULL: "/sys" */
	const char *procfs_root;      /* NULL: "/proc" */
	double period_s;              /* counter tier, > 0 */
	double proc_period_s;         /* process tier, >= period_s (rounded to a multiple) */
	double mem_period_s;          /* memory tier, 0 turns PSS/USS reads off */
	const int *pids;              /* roots of the measured set (their trees) */
	size_t n_pids;
	int measure_self;             /* 1: the calling process is a root (Python Meter);
	                                 the sampler thread's own CPU is subtracted */
	int reaper_pid;               /* >0: a process whose reaped-children CPU counts
	                                 (the CLI, parent of the wrapped command); 0: none */
	const char *const *command;   /* argv recorded in meta.json, NULL-terminated; may be NULL */
	double model_min_w_per_cpu;   /* CPU model parameters */
	double model_max_w_per_cpu;
	int force_model;              /* 1: model the CPU even where RAPL is readable */
} wm_meter_config;

void wm_meter_config_init(wm_meter_config *c);

typedef struct wm_meter wm_meter;

/* Probes sensors, creates the recording, writes meta.json and the baseline
 * sample, and starts the sampler thread. */
int wm_meter_start(const wm_meter_config *c, wm_meter **out, char *err, size_t errlen);

/* Adds a root process to a running meter (the CLI adds the command it forked). */
int wm_meter_add_pid(wm_meter *m, int pid);

#define WM_MAX_DEVICES 8
/* A copy of the latest state, for live displays. */
typedef struct wm_snapshot {
	double elapsed_s;
	size_t n_devices;
	struct {
		char name[16];          /* "cpu", "dram", "psys" */
		int modeled;            /* 1 if the value comes from a model */
		double power_w;         /* over the last counter period */
		double energy_j;        /* cumulative */
		double attributed_j;    /* cumulative, to the measured processes */
	} devices[WM_MAX_DEVICES];
	size_t n_procs_alive;
	double self_cpu_s;
	uint64_t samples;
} wm_snapshot;

int wm_meter_snapshot(wm_meter *m, wm_snapshot *out);

/* Stops the thread, takes a last sample, completes meta.json.
 * exit_status: the command's exit code or 128+signal; -1 if none. */
int wm_meter_stop(wm_meter *m, int exit_status, char *err, size_t errlen);

/* Frees the meter (stops it first if needed, without an exit status).
 * In a process forked from the one that started the meter, this and every
 * other call are no-ops: a child never touches its parent's recording. */
void wm_meter_free(wm_meter *m);

/* Writes the sensor table that `wattmeter sensors` prints (text or JSON),
 * as a malloc'd string the caller frees. NULL on ENOMEM or a bad root
 * (message in err, errno set). */
char *wm_sensors_describe(const char *sysfs_root, const char *procfs_root, int as_json,
			  char *err, size_t errlen);

/* ---- reading recordings ---------------------------------------------------- */
/* The summary of a recording as JSON (docs/recording.md "Summary"), its human
 * text, or its columns, as a malloc'd string the caller frees. NULL on error
 * with a message in err and errno set: ENOENT (no folder, meta.json or
 * samples.jsonl), ENOTSUP (a newer schema), EBADMSG (a damaged line). */
char *wm_report_json(const char *dir, char *err, size_t errlen);
char *wm_report_text(const char *dir, int top_n, char *err, size_t errlen);
char *wm_report_columns_json(const char *dir, char *err, size_t errlen);
/* Per-sample details (RAPL zones, device gauges, one row per process per
 * process-tier line) and the energy of a time window [start_s, end_s]
 * (seconds since the start; NAN = open) cut at sample boundaries, from the
 * cumulative counters: see src/recording/record.h. Same ownership and errors
 * as above, plus EINVAL (start > end) and ERANGE (no sample in the window). */
char *wm_report_detail_json(const char *dir, char *err, size_t errlen);
char *wm_report_window_json(const char *dir, double start_s, double end_s, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
