/* prometheus.h — the meter's samples as Prometheus metrics (a pure formatter).
 *
 * Two steps, both on the sampler thread (the exporter's sink):
 *   wm_prom_update  keeps from each wm_sample what a scrape needs (values that
 *                   only some samples carry: memory on the process tier,
 *                   per-process energies, per-cgroup totals that outlive
 *                   their processes);
 *   wm_prom_format  writes the kept state as text exposition 0.0.4 or
 *                   OpenMetrics 1.0 into a wm_buf.
 * Nothing here reads files or touches hardware: the cgroup of each process is
 * given by the caller (wm_prom_parse_cgroup parses /proc/<pid>/cgroup text),
 * so the formatter is tested on fixed samples (tests/c/test_prometheus.c).
 *
 * Metric names and meanings: docs/exporter.md and README "Monitoring a
 * machine with Prometheus". Energy is exported as counters in joules (never
 * a gauge), power as gauges in watts; a gauge whose value is unknown (NaN:
 * the baseline's power, a GPU without that reading) is left out of the
 * snapshot rather than exported as NaN, as node_exporter does for absent data.
 */
#ifndef WM_OUTPUTS_PROMETHEUS_H
#define WM_OUTPUTS_PROMETHEUS_H

#include <stddef.h>

#include "base/util.h"
#include "meter/meter.h"

/* Default cap on per-process and per-cgroup series together (--max-series). */
#define WM_PROM_DEFAULT_MAX_SERIES 2000
/* A cgroup with no live process is forgotten this long after its last one
 * (its series disappear; a counter that vanishes is what Prometheus expects
 * of a finished job), so pod churn does not fill the cap. */
#define WM_PROM_CGROUP_LINGER_S 600.0

#define WM_PROM_CONTENT_TYPE_TEXT "text/plain; version=0.0.4; charset=utf-8"
#define WM_PROM_CONTENT_TYPE_OPENMETRICS "application/openmetrics-text; version=1.0.0; charset=utf-8"

/* What the meter is made of, fixed for its life (pointers stay valid while
 * the wm_prom lives). Tests build these by hand. */
typedef struct wm_prom_view {
	const wm_device *devices;          /* [n_devices], meter order */
	size_t n_devices;
	const wm_meter_channel *channels;  /* [n_channels], meter order */
	size_t n_channels;
	const wm_sources *sources;         /* every registered source, with its state */
	const char *version;               /* wattmeter_build_info{version} */
	double period_s;                   /* counter period, for wattmeter_sample_period_seconds */
} wm_prom_view;

typedef struct wm_prom_opts {
	int per_process;     /* wattmeter_process_energy_joules_total{pid,comm,device} */
	int per_cgroup;      /* wattmeter_cgroup_energy_joules_total{cgroup,device} */
	size_t max_series;   /* cap on process + cgroup series; 0: WM_PROM_DEFAULT_MAX_SERIES */
} wm_prom_opts;

typedef struct wm_prom wm_prom;

/* Copies the view's arrays' pointers and the options. 0 or -ENOMEM/-EINVAL
 * with a message. */
int wm_prom_new(const wm_prom_view *v, const wm_prom_opts *o, wm_prom **out, char *err, size_t errlen);
void wm_prom_free(wm_prom *p);

/* Takes in one sample. proc_cgroup[i] is the cgroup v2 path of s->procs[i]
 * ("/system.slice/x.service"), or NULL where unknown (counted under
 * cgroup="unknown"); proc_cgroup itself may be NULL when per_cgroup is off.
 * 0 or -ENOMEM (the state stays consistent: the previous values are kept). */
int wm_prom_update(wm_prom *p, const wm_sample *s, const char *const *proc_cgroup);

/* Appends the state as exposition text (openmetrics 0: version 0.0.4; 1:
 * OpenMetrics 1.0 ending in "# EOF"). 0 or -ENOMEM. Before the first
 * update only the build, sensor and self metrics are written. */
int wm_prom_format(const wm_prom *p, int openmetrics, wm_buf *out);

/* ---- pure helpers, exported for tests and the fuzz target ---------------- */

/* Appends v as a Prometheus label value: \\ \" \n escaped, bytes that are
 * not valid UTF-8 replaced by U+FFFD (Prometheus requires UTF-8). */
int wm_prom_label_value(wm_buf *b, const char *v);
/* Appends a sample value: an integer where it is one, else 15 significant
 * digits; NaN, +Inf, -Inf spelt as Prometheus reads them. */
int wm_prom_value(wm_buf *b, double v);
/* Finds the cgroup v2 line ("0::<path>") of /proc/<pid>/cgroup text and
 * copies the path into out. 0; -ENOENT if there is no v2 line (a v1-only
 * host); -ENAMETOOLONG if it does not fit; -EINVAL if malformed. */
int wm_prom_parse_cgroup(const char *text, char *out, size_t outlen);
/* Content negotiation on an Accept header value (may be NULL): 1 if the
 * client prefers OpenMetrics (application/openmetrics-text with q > 0, not
 * ranked below text/plain), else 0. */
int wm_prom_wants_openmetrics(const char *accept);
/* 1 if an Accept-Encoding header value (may be NULL) accepts gzip (q > 0). */
int wm_prom_accepts_gzip(const char *accept_encoding);

#endif
