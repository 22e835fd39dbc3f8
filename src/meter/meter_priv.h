/* meter_priv.h — the meter's state, shared by meter.c (sampling, lifecycle)
 * and attribution.c (splitting energy among processes). Not installed. */
#ifndef WM_METER_METER_PRIV_H
#define WM_METER_METER_PRIV_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/counter.h"
#include "base/root.h"
#include "base/util.h"
#include "meter/meter.h"
#include "procs/procfs.h"
#include "procs/proctree.h"
#include "sources/source.h"

/* An active source, as the meter reads it. */
struct wm_msrc {
	wm_source *src;
	size_t ch0;          /* its first channel in the meter's channel table */
	int *dev_map;        /* its device d -> meter device, -1 if replaced */
	double *gauges;      /* scratch [n_devices * WM_GAUGE_N] */
};

/* What the meter keeps per process (wm_proc.user). */
struct wm_mproc {
	char announced_comm[64]; /* comm when last announced in new_procs ("" never) */
	double *energy_j;        /* [n_dev] cumulative attributed */
	double *dev_mem_bytes;   /* [n_dev] device memory (GPU) last seen, NaN if none */
	double storage[];        /* 2 * n_dev doubles */
};

/* Per-process text copied for the sinks (the tree may move under
 * wm_meter_add_pid once the lock is released). */
struct wm_sproc_text {
	char comm[64];
	char cmdline[512];
	char container[64];      /* "docker:4f1e2a9b7c3d", "" none (at announce) */
	char pod[64];            /* Kubernetes pod UID, "" none */
};

struct wm_meter {
	pid_t owner_pid;
	pthread_mutex_t lock;       /* guards the tree, stop flag, baseline handshake */
	pthread_mutex_t read_lock;  /* guards the sources' reads, counters, energies, power
	                               and last_ns: the sampler's tick and window edges */
	struct wm_windows *win;     /* windows.c; NULL without a recording */
	struct wm_requests *req;    /* requests.c; NULL without a recording */
	pthread_cond_t cond;
	pthread_t thread;
	int thread_started;
	int stop_requested;
	int stopped;
	int baseline_done;
	int baseline_errno;

	/* configuration (owned copies) */
	double period_s, proc_period_s, mem_period_s;
	unsigned proc_every, mem_every; /* in counter ticks; mem_every 0 = off */
	char **command;
	int measure_self;
	int gpu_exclusive;
	char *cuda_visible, *nvml_lib;
	long clk_tck;

	wm_root sysroot, procroot;
	wm_sysstat sysstat;
	int have_sysstat;
	wm_sources sources;
	struct wm_msrc *msrc;
	size_t n_msrc;
	int needs_util;             /* a source wants /proc/stat every tick */

	/* the device table and its per-device state */
	wm_device *dev;
	size_t n_dev;
	double *dev_dbl;            /* one allocation behind the arrays below */
	double *energy_j, *before_j, *power_smooth_w, *attributed_j, *energy_at_proc_j, *d_energy_j;
	int have_power;
	wm_sample_dev *sdev;

	/* the channel table */
	wm_meter_channel *ch;
	size_t n_ch;
	wm_counter *ctr;
	uint64_t *raw;
	unsigned char *ch_ok;
	double *ch_energy_j;
	/* gaps, per channel (read_sources) */
	const char **gap_cause;     /* this tick's cause, NULL if read and counted */
	const char **gap_open_cause;/* the cause that opened the current gap */
	double *gap_since_s;        /* t_s of the last good read of an open gap, NaN none */
	double *last_good_s;        /* t_s of the last good read */
	uint64_t *read_errors, *rejected;
	wm_gap_end *gap_ends;       /* [n_ch] at most one per channel per tick */
	size_t n_gap_ends;
	unsigned char *dev_gap;     /* [n_dev] a counted channel is in a gap or ended one */

	/* processes */
	wm_proctree *tree;          /* NULL for a whole-machine meter */
	struct wm_include *inc;     /* --include-*, NULL none (meter/include.c) */
	struct wm_job *job;         /* the job across ranks, NULL none (meter/job.c) */
	int own_rank;               /* this process's launcher rank, -1 none */
	/* --cgroup: the cgroup's CPU, cumulative since the start */
	int cg_fd;                  /* -1 none */
	int cg_v1;                  /* cpuacct.usage rather than cpu.stat */
	char *cg_path;
	uint64_t cg_usec0, cg_usec;  /* at the start; since the start */
	int cg_have;                 /* cg_usec read at least once */
	uint64_t cg_set_ticks;       /* CPU given to the measured set so far (ticks) */
	int *roots;                 /* measured root pids, for meta.json */
	size_t n_roots, cap_roots;
	uint64_t procs_folded;
	wm_sample_proc *sprocs;
	struct wm_sproc_text *sproc_text;
	size_t cap_sprocs;
	wm_pid_share *shares;
	size_t cap_shares;

	/* the counter tier */
	uint64_t t0_ns, last_ns;
	double wall0_s;
	uint64_t ticks;
	wm_cpu_times last_ct;
	int have_last_ct;
	double last_util;

	/* the process tier */
	uint64_t busy_at_proc;
	double self_cpu_at_proc_s;
	uint64_t mem_used_bytes, mem_total_bytes;

	double self_cpu_s;          /* the sampler thread's CPU time, cumulative */
	wm_buf warnings;            /* '\n'-separated */
	int write_errno;            /* first failure of a sink, 0 if none */
	wm_buf host_json;           /* read once: /proc/cpuinfo is large on big machines */

	wm_sink *sinks;
	size_t n_sinks;

	/* the live snapshot, under its own lock */
	pthread_mutex_t snap_lock;
	wm_snapshot_device *snap_dev;
	double snap_elapsed_s, snap_self_cpu_s;
	size_t snap_alive;
	size_t snap_seen;
	uint64_t snap_samples;
};

int wm_meter_is_owner(const wm_meter *m);
/* Copies a caller's config of any header version into out: the fields
 * within c->size, defaults for the rest and for NULL roots; NULL c means
 * all defaults. -EINVAL with the fix if c->size is not a config's. */
int wm_meter_take_config(const wm_meter_config *c, wm_meter_config *out, char *err, size_t errlen);
void wm_meter_warn(wm_meter *m, const char *msg);

/* attribution.c: splits the energy of the process interval among the
 * measured processes, device by device, by each device's rule, and fills
 * s->procs. Called with m->lock held, after the scan. */
void wm_attribute(wm_meter *m, const wm_cpu_times *ct, wm_sample *s);

/* Probe context shared by the meter and wm_sensors_describe. */
int wm_probe_context(wm_root *sysroot, wm_root *procroot, wm_sysstat *st, int *have_st,
		     const wm_meter_config *c, wm_source_ctx *ctx, wm_sources *srcs, char *err, size_t errlen);

#endif
