/* source.h — the one interface every energy source implements.
 *
 * A source (RAPL powercap, the CPU model, NVML ...) is an ops table plus a
 * wm_source object that its probe fills with data: its state and fix, the
 * devices it provides (cpu, dram, psys, gpu0 ...) and the channels it reads
 * (RAPL zones, GPUs), each channel counted in one device or only recorded.
 * The meter, `wattmeter sensors` and meta.json all walk the same registry
 * (registry.c) and the same probe: there is no second copy of any probe.
 *
 * What a source does, and what it does not:
 *   - probe: find what is there under the roots; never fails for "absent" or
 *     "forbidden" (that is a state, with a fix), only for ENOMEM or an option
 *     the user must correct (an --nvml-lib that does not load);
 *   - read:  raw counters into an array, with a gap flag per channel; called
 *     on the sampler thread every counter tick; never blocks for long, never
 *     allocates in steady state; the meter turns raw values into cumulative,
 *     wrap-aware energy (base/counter.h) — sources never integrate counters;
 *     a source that has no counter (a model, a GPU without the energy
 *     counter) integrates power itself and presents the result as a
 *     cumulative counter, labelled by its device's `method`/`source_detail`;
 *   - gauges: optional per-device instantaneous values (utilisation, memory,
 *     temperature, clocks, instantaneous and averaged power), NaN if absent;
 *   - proc_shares: optional per-process usage shares of a device over the
 *     last process interval (NVML's per-PID SM utilisation), for devices whose
 *     attribution rule is WM_ATTR_SOURCE_SHARE;
 *   - describe: optional JSON members (meta.json and `sensors --json`) and
 *     text (`wattmeter sensors`) about its channels;
 *   - close: release everything probe took.
 *
 * How to add a source:
 *   1. write src/sources/<name>.c defining `const wm_source_ops wm_source_<name>`
 *      (see rapl_powercap.c for a measured source, cpu_model.c for a model);
 *   2. add one line to the table in src/sources/registry.c, and the file to
 *      meson.build's core_sources.
 * The meter builds its device table from what the probes report; recording,
 * summary, live line, exporter and attribution follow without other changes.
 */
#ifndef WM_SOURCES_SOURCE_H
#define WM_SOURCES_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "base/util.h"
#include "sources/source_state.h"

struct wm_meter_config;

/* How a device's energy is split among processes (docs/recording.md,
 * "Attribution"). Data, not code paths: the meter applies the rule. */
typedef enum wm_attr_rule {
	WM_ATTR_NONE = 0,     /* not attributed (psys: the platform as a whole) */
	WM_ATTR_CPU_TICKS,    /* by share of the machine's busy CPU ticks */
	WM_ATTR_MEMORY,       /* by share of used memory (PSS, else RSS) */
	WM_ATTR_SOURCE_SHARE, /* by the source's per-process shares (GPU SM utilisation) */
} wm_attr_rule;

const char *wm_attr_rule_name(wm_attr_rule r); /* "none", "cpu-ticks", "memory", "source-share" */

/* Gauges a device may report each counter tick besides energy and power.
 * Units in the names. NaN when absent or unsupported. */
typedef enum wm_gauge {
	WM_GAUGE_UTIL = 0,          /* busy fraction 0..1 (GPU SM utilisation) */
	WM_GAUGE_MEM_UTIL,          /* memory controller busy fraction 0..1 */
	WM_GAUGE_MEM_USED_BYTES,
	WM_GAUGE_MEM_TOTAL_BYTES,
	WM_GAUGE_TEMP_C,
	WM_GAUGE_POWER_INSTANT_W,   /* the source's instantaneous power reading */
	WM_GAUGE_POWER_AVG_W,       /* the source's averaged power reading (NVML: ~1 s window) */
	WM_GAUGE_CLOCK_SM_MHZ,
	WM_GAUGE_CLOCK_MEM_MHZ,
	WM_GAUGE_N
} wm_gauge;

const char *wm_gauge_name(wm_gauge g); /* the key in recordings: "util", "mem_used_bytes", ... */

#define WM_NAME_MAX 32
#define WM_LABEL_MAX 128

/* A device this source provides. The meter's device table is the
 * concatenation of the active sources' devices. */
typedef struct wm_device_decl {
	char name[WM_NAME_MAX];      /* unique in a recording: "cpu", "dram", "psys", "gpu0" */
	char kind[16];               /* what it is: "cpu", "dram", "psys", "gpu" (outputs group by it) */
	int modeled;                 /* 1: estimated; shown as "modeled" everywhere */
	char source_detail[48];      /* how its energy is obtained, e.g. "energy-counter",
	                                "power-integrated", "ccf-linear"; "" = the source's default */
	wm_attr_rule rule;
	unsigned gauges;             /* bit (1u << wm_gauge) for each gauge it reports */
	int used_by_run;             /* 1 if the measured command uses it (CUDA_VISIBLE_DEVICES);
	                                -1 unknown; meaningful for GPUs */
	char info_json[1024];        /* optional JSON object with identity (uuid, bus id, model,
	                                power limit ...) for meta.json "devices"; "" if none */
} wm_device_decl;

/* A raw counter the source reads. */
typedef struct wm_channel {
	char label[WM_LABEL_MAX];    /* unique in a recording: "package-0", "package-0/dram", "gpu0" */
	int device;                  /* index into the source's devices; -1: recorded, not counted */
	uint64_t range;              /* raw value at which it wraps to 0; 0 = unknown
	                                (then going backwards is a reset: a driver reload) */
	double joules_per_unit;      /* 1e-6 for microjoules, 1e-3 for millijoules */
	int readable;                /* 0: listed (probe found it) but never read (forbidden) */
	/* Plausibility (base/counter.h; docs/recording.md "Gaps"): the most power
	 * the channel can draw, so a counter step above max_power_w x elapsed
	 * time is a glitch, never energy; 0 = unchecked (a model's own count). */
	double max_power_w;
	double bound_window_s;       /* the bound applies over at least this long (s) */
	char bound_basis[64];        /* where max_power_w comes from, for meta.json */
	/* Set by read() when it leaves ok[i] = 0: why, as a short static string
	 * ("EIO", "ENODEV (vanished)", "malformed value", "GPU is lost"); NULL
	 * = unreadable, reason unknown. Written on the sampler thread only. */
	const char *read_error;
	/* How often the raw value changes (s), measured at probe (NVML's energy
	 * counter: 20-100 ms); 0 = at every read (RAPL) or unknown. A window
	 * shorter than this gets an uncertainty (src/meter/windows.c). */
	double update_interval_s;
} wm_channel;

/* What a source's probe sees. */
typedef struct wm_source_ctx {
	int sysfs_dirfd, procfs_dirfd;          /* roots (base/root.h) */
	const char *sysfs_path, *procfs_path;   /* for messages */
	const struct wm_meter_config *cfg;      /* options; NULL fields mean defaults */
	int n_cpus;                             /* CPUs from /proc/stat; 0 if it cannot be read */
	int for_describe;                       /* 1: `wattmeter sensors` (no sampling follows) */
} wm_source_ctx;

/* What a source's read sees, once per counter tick. */
typedef struct wm_tick {
	uint64_t now_ns;     /* CLOCK_MONOTONIC */
	double dt_s;         /* since the previous tick; 0 on the baseline */
	double cpu_util;     /* machine busy fraction over dt (NaN unknown); given to
	                        sources with WM_SRC_NEEDS_CPU_UTIL on every tick */
	int proc_tier;       /* 1 if the process tier runs at this tick */
} wm_tick;

/* A per-process share of a device over the last process interval. */
typedef struct wm_pid_share {
	int pid;             /* as the source sees it (NVML: host pids) */
	double share;        /* 0..1 of the device's activity; shares sum to <= 1 */
	uint64_t mem_bytes;  /* device memory the process holds (0 if unknown) */
} wm_pid_share;

typedef struct wm_source wm_source;

enum {
	WM_SRC_NEEDS_CPU_UTIL = 1u << 0, /* read() wants tick->cpu_util every tick */
};

typedef struct wm_source_ops {
	const char *name;          /* "rapl-powercap", "cpu-model", "nvml" */
	unsigned flags;            /* WM_SRC_* */
	/* If set, the source is a fallback for that device: it is activated only
	 * when no earlier source in the registry measures it, or when the user
	 * forces it (cfg->force_model for "cpu"). Otherwise its state is
	 * "unused". */
	const char *fallback_for;

	/* Fills s (state, detail, fix, devices, channels, priv). Returns 0 — also
	 * when absent or forbidden — or -errno with a message in err (ENOMEM, or
	 * an explicit option that cannot be honoured). */
	int (*probe)(wm_source *s, const wm_source_ctx *ctx, char *err, size_t errlen);

	/* raw[i], ok[i] for every channel i (ok 0 = a gap this tick: vanished,
	 * unreadable, lost GPU). gauges[d * WM_GAUGE_N + g] for its devices,
	 * pre-filled with NaN. On the sampler thread. */
	void (*read)(wm_source *s, const wm_tick *tick, uint64_t *raw, unsigned char *ok, double *gauges);

	/* Optional. On the process tier, after read: the per-process shares of
	 * the source's device dev over the interval since the previous call.
	 * Returns how many were written (<= cap), or -errno (no data: the
	 * interval stays unattributed). */
	int (*proc_shares)(wm_source *s, size_t dev, wm_pid_share *out, size_t cap);

	/* Optional. Appends JSON members, each starting with ',' (e.g.
	 * ,"zones":[...]), to meta.json and to `sensors --json`. */
	int (*describe_json)(const wm_source *s, wm_buf *b);
	/* Optional. Appends text lines for `wattmeter sensors` after the table. */
	int (*describe_text)(const wm_source *s, wm_buf *b);
	/* Optional. A warning for the recording (e.g. "period not well inside the
	 * RAPL wrap time"), given the counter period; "" for none. */
	void (*check_period)(const wm_source *s, double period_s, char *warn, size_t warnlen);

	void (*close)(wm_source *s); /* frees priv; devices/channels are freed by the caller */
} wm_source_ops;

struct wm_source {
	const wm_source_ops *ops;
	wm_source_state state;      /* OK, ABSENT, FORBIDDEN, MODELED, ERROR; "unused" is
	                               active == 0 with state OK/MODELED */
	int active;                 /* set by the registry: counted in the meter's devices */
	char detail[256];           /* one line: what was found */
	char fix[1024];             /* what the user can do ("" if nothing to fix) */
	wm_device_decl *devices;    /* malloc'd by probe (wm_source_add_device) */
	size_t n_devices;
	wm_channel *channels;       /* malloc'd by probe (wm_source_add_channel) */
	size_t n_channels;
	void *priv;
};

/* Helpers for probes: append a zeroed entry, return it (NULL on ENOMEM).
 * The lists grow with realloc: a pointer returned by one call is valid only
 * until the next add to the same list (keep indices, as rapl_powercap.c does). */
wm_device_decl *wm_source_add_device(wm_source *s, const char *name, const char *kind);
wm_channel *wm_source_add_channel(wm_source *s, const char *label, int device);
/* Frees devices and channels (after ops->close). */
void wm_source_release(wm_source *s);

/* ---- the registry (registry.c) --------------------------------------------- */

typedef struct wm_sources {
	wm_source *v;   /* one per registered source, in registry order */
	size_t n;
	/* /proc itself: not an energy source, but every attribution and the
	 * CPU model depend on it, so it is a row of the sensors table. */
	int procfs_ok;
	char procfs_detail[512];
	char procfs_fix[256];
} wm_sources;

/* The registry's table (registry.c): one line per source. */
extern const wm_source_ops *const wm_source_registry[];
extern const size_t wm_source_registry_len;

/* Registers one more source at run time, probed after the built-in ones
 * (the C tests' fake source goes through here). Not thread-safe: call
 * before starting meters. 0, -EINVAL or -ENOSPC. */
int wm_source_register(const wm_source_ops *ops);

/* Probes every registered source against ctx and decides which are active
 * (fallbacks, cfg->force_model, cfg->no_gpu). 0 or -errno with a message. */
int wm_sources_probe(wm_sources *all, const wm_source_ctx *ctx, char *err, size_t errlen);
void wm_sources_close(wm_sources *all);   /* harmless on a zeroed struct */

/* Appends `"sensors":[{name, state, detail, fix} ...]` (the sources, then
 * procfs) followed by every source's describe_json members: the part of
 * meta.json and of `sensors --json` that describes what was found. No
 * braces; the first member has no leading comma. Errors stick in b. */
int wm_sources_json(const wm_sources *all, wm_buf *b);
/* The text table of `wattmeter sensors`. */
int wm_sources_text(const wm_sources *all, wm_buf *b);
/* The source providing device `name` among the active ones, or NULL. */
const wm_source *wm_sources_find_device(const wm_sources *all, const char *name, size_t *dev);
const char *wm_source_state_label(const wm_source *s);   /* "ok", "unused", "modeled", ... */

#endif
