/* meter.h — the meter's inside, for sinks and outputs (not installed).
 *
 * Data flow (docs/architecture.md):
 *
 *   sources ──read──► meter (sampler thread) ──wm_sample──► sinks
 *   (registry)        counters, devices,                    recording (samples.jsonl, meta.json)
 *                     process tree, attribution             live snapshot (status line, Python)
 *                                                           Prometheus exporter
 *
 * The sampler thread fills one wm_sample per counter tick, then hands it to
 * every sink in turn WITHOUT holding the meter's lock: a sink that writes to
 * disk never blocks wm_meter_add_pid or a snapshot. Sinks run on the sampler
 * thread only, one after the other, so they need no lock against each other;
 * a sink read from other threads (the snapshot, the exporter) keeps its own
 * small lock around a copy.
 *
 * Sinks never touch hardware. Strings and arrays in a wm_sample are valid
 * only during the call.
 */
#ifndef WM_METER_METER_H
#define WM_METER_METER_H

#include <stddef.h>
#include <stdint.h>

#include "sources/source.h"
#include "wattmeter.h"

/* A row of the meter's device table, built at start from the active
 * sources; fixed for the meter's life. */
typedef struct wm_device {
	const wm_device_decl *decl;  /* name, kind, modeled, rule, gauges, info_json */
	const wm_source *src;        /* the source that provides it */
	size_t src_dev;              /* index in src->devices */
} wm_device;

/* One channel of the meter (a RAPL zone, a GPU), in meter order. */
typedef struct wm_meter_channel {
	const wm_channel *ch;
	const wm_source *src;
	int device;                  /* index in the meter's device table, -1 not counted */
} wm_meter_channel;

typedef struct wm_sample_dev {
	double energy_j;             /* cumulative since the start */
	double power_w;              /* over the last counter period; NaN on the baseline */
	double power_smooth_w;       /* ~1 s exponential smoothing, for live displays */
	double attributed_j;         /* cumulative, to the measured processes */
	int gap;                     /* a channel counted in it was not readable at this tick */
	double gauge[WM_GAUGE_N];    /* NaN where absent */
} wm_sample_dev;

typedef struct wm_sample_proc {
	int pid, ppid;
	uint64_t starttime_ticks;
	const char *comm;
	const char *cmdline;         /* non-NULL when announced at this sample (new, or exec'd) */
	int alive;                   /* 0: exited in this interval (its last line) */
	double cpu_s;                /* CPU in the interval, tail of reaped children included */
	double cpu_share;            /* of the machine's busy CPU in the interval */
	uint64_t rss_bytes, pss_bytes, uss_bytes;
	int have_pss;
	double mem_pct;              /* PSS (else RSS) / MemTotal x 100 */
	const double *energy_j;      /* [n_devices] cumulative attributed; NaN for devices
	                                whose rule is WM_ATTR_NONE */
	const double *dev_mem_bytes; /* [n_devices] device memory (GPU), NaN if none */
	int included;                /* outside the command's tree (--include-*) */
	int rank;                    /* a job's rank (meter/job.c), -1 none */
	/* when announced (cmdline non-NULL), from its cgroup and status: */
	const char *container;       /* procs/cgroup.h name, NULL none */
	const char *pod;             /* Kubernetes pod UID, NULL none */
	int nspid;                   /* its pid inside its own pid namespace, -1 none */
} wm_sample_proc;

/* A gap of one channel that ended at this sample (docs/recording.md "Gaps"):
 * from the last good read before it to the read that ended it. */
typedef struct wm_gap_end {
	size_t channel;              /* meter order */
	double from_s, to_s;         /* t_s of the last good read before, of the read after */
	const char *cause;           /* what opened it: "EIO", "implausible step", ... */
	int energy_measured;         /* 1: the counter's step across it was counted (exact);
	                                0: the energy over it is missing */
} wm_gap_end;

typedef struct wm_sample {
	uint64_t seq;                /* 0 for the baseline */
	int baseline;                /* the first sample: energies 0, no power */
	int proc_tier;               /* attribution ran at this sample */
	double t_s;                  /* since the start, monotonic */
	double wall_s;               /* Unix time */
	size_t n_devices;
	const wm_sample_dev *devices;  /* [n_devices], meter order */
	size_t n_channels;
	const double *channel_energy_j;     /* [n_channels] cumulative */
	const unsigned char *channel_ok;    /* [n_channels] 0 = gap at this tick */
	double cpu_util;             /* machine busy fraction, NaN if not read at this tick */
	double self_cpu_s;           /* the sampler thread's CPU, cumulative */
	double sample_cost_s;        /* wall time this sample took to gather (before sinks) */
	/* process tier only (proc_tier == 1): */
	uint64_t mem_used_bytes, mem_total_bytes;
	size_t n_procs;
	const wm_sample_proc *procs;
	size_t n_procs_alive;
	uint64_t procs_folded;       /* exited processes folded into totals so far */
	size_t n_procs_seen;         /* measured processes so far, alive or exited: the
	                                summary's process list */
	/* gaps (docs/recording.md "Gaps"), [n_channels] each: */
	const char *const *channel_gap_cause;  /* why channel_ok is 0 at this tick (NULL if ok) */
	const double *channel_gap_since_s;     /* t_s of the last good read while a gap is open, NaN if none */
	const uint64_t *channel_read_errors;   /* cumulative reads that failed */
	const uint64_t *channel_rejected;      /* cumulative reads rejected as implausible (and stalls) */
	const wm_gap_end *gap_ends;            /* gaps that ended at this sample */
	size_t n_gap_ends;
	double cgroup_cpu_s;         /* --cgroup: its CPU since the start (cpu.stat), process
	                                tier only; NaN otherwise */
} wm_sample;

/* What a sink learns at the end. */
typedef struct wm_stop_info {
	int exit_status;             /* -1 if none */
	double end_wall_s;
	double duration_s;
	double self_cpu_s;
	uint64_t samples;
	int write_errno;             /* first failure of a sink to write, 0 if none */
} wm_stop_info;

typedef struct wm_sink_ops {
	const char *name;
	/* After the probe, before the baseline sample. 0 or -errno (with err):
	 * a failing begin fails wm_meter_start. */
	int (*begin)(void *ctx, const wm_meter *m, char *err, size_t errlen);
	/* Every sample, on the sampler thread (the baseline on the caller's).
	 * 0 or -errno: the meter remembers the first error (write_errno). */
	int (*sample)(void *ctx, const wm_meter *m, const wm_sample *s);
	/* At stop, after the last sample. */
	int (*end)(void *ctx, const wm_meter *m, const wm_stop_info *st, char *err, size_t errlen);
	void (*free)(void *ctx);
} wm_sink_ops;

typedef struct wm_sink {
	const wm_sink_ops *ops;
	void *ctx;
} wm_sink;

/* Starts a meter that hands every sample to sinks, in their order (the
 * live snapshot is the meter's own). The caller composes them: the
 * recording is a sink of the recording layer (wm_meter_start_recorded in
 * recording/record.h adds it when output_dir is set), so the meter depends
 * on no layer above it. output_dir is still where the meter's windows.jsonl
 * goes. The meter takes ownership of the sinks (ops->free at
 * wm_meter_free), also when it fails to start. */
int wm_meter_start_sinks(const wm_meter_config *c, const wm_sink *sinks, size_t n_sinks, wm_meter **out,
			 char *err, size_t errlen);

/* Accessors for sinks (fixed after start). */
size_t wm_meter_n_devices(const wm_meter *m);
const wm_device *wm_meter_device(const wm_meter *m, size_t i);
size_t wm_meter_n_channels(const wm_meter *m);
const wm_meter_channel *wm_meter_channel_at(const wm_meter *m, size_t i);
const wm_sources *wm_meter_sources(const wm_meter *m);
const char *const *wm_meter_command(const wm_meter *m);  /* NULL-terminated, may be NULL */
double wm_meter_period_s(const wm_meter *m);
double wm_meter_proc_period_s(const wm_meter *m);
double wm_meter_mem_period_s(const wm_meter *m);
/* Memory-tier rounds so far: those that read smaps_rollup, and those that
 * kept the last figures (nothing seen to move them: proctree.h). 0 and 0
 * without a process tree. */
void wm_meter_memory_rounds(const wm_meter *m, uint64_t *read, uint64_t *reused);
double wm_meter_start_wall_s(const wm_meter *m);
const char *wm_meter_procfs_path(const wm_meter *m);
const char *wm_meter_host_json(const wm_meter *m);       /* "null" if unknown */
const char *wm_meter_warnings(const wm_meter *m);         /* '\n'-separated, "" if none */
/* Root pids measured (count_own), written into meta.json "pids". */
size_t wm_meter_root_pids(const wm_meter *m, int *out, size_t cap);
/* meta.json "included" (meter/include.c), or "null" when nothing is included. */
void wm_meter_included_json(const wm_meter *m, wm_buf *b);
/* meta.json ,"launcher":{...},"job":{...}|null (meter/job.c). */
void wm_meter_job_json(const wm_meter *m, wm_buf *b);
/* meta.json "cgroup" (--cgroup): {"path","version","cpu_source"} or "null". */
void wm_meter_cgroup_json(const wm_meter *m, wm_buf *b);

#endif
