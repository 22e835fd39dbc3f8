/* exporter.c — wattmeter_exporter.h: a meter whose sink publishes metrics
 * snapshots to the HTTP server (http.c).
 *
 * On the sampler thread, per sample: take the sample into the formatter's
 * state, write both exposition formats into fresh buffers (no lock held),
 * then swap them in (wm_http_publish: one pointer under a small mutex). The
 * cgroup of each process is read once per process lifetime from
 * <procfs>/<pid>/cgroup and cached by (pid, start time).
 */
#include "wattmeter_exporter.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "meter/meter.h"
#include "outputs/http.h"
#include "outputs/prometheus.h"
#include "outputs/web_config.h"

typedef struct cg_entry {
	int pid;
	uint64_t starttime_ticks;
	char *path;               /* NULL: unknown (v1-only host, vanished) */
} cg_entry;

typedef struct exp_sink {
	wm_http *http;            /* not owned */
	wm_prom_opts opts;
	wm_prom *prom;
	wm_device *devices;
	wm_meter_channel *channels;
	int procfs_fd;
	size_t last_text_len, last_om_len;
	/* cgroup cache, sorted by (pid, start time) */
	cg_entry *cg;
	size_t n_cg;
	const char **row_cg;      /* [cap_rows] cgroup per sample row */
	size_t cap_rows;
} exp_sink;

struct wm_exporter {
	pid_t owner_pid;          /* in a forked child every call is a no-op */
	wm_http *http;
	wm_meter *meter;
	int stopped;
};

void wm_exporter_config_init(wm_exporter_config *c)
{
	memset(c, 0, sizeof *c);
	c->size = sizeof *c;
	c->listen = WM_EXPORTER_DEFAULT_LISTEN;
	c->max_series = WM_EXPORTER_DEFAULT_MAX_SERIES;
}

/* ---- the sink --------------------------------------------------------------- */

static int cg_cmp(const void *a, const void *b)
{
	const cg_entry *x = a, *y = b;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->starttime_ticks < y->starttime_ticks ? -1 : x->starttime_ticks > y->starttime_ticks;
}

static char *read_cgroup(int procfs_fd, int pid)
{
	char path[32], text[4096], cg[4096];
	int n = snprintf(path, sizeof path, "%d/cgroup", pid);
	if (n < 0 || (size_t)n >= sizeof path)
		return NULL;
	if (wm_read_file_at(procfs_fd, path, text, sizeof text) < 0)
		return NULL;
	if (wm_prom_parse_cgroup(text, cg, sizeof cg) < 0)
		return NULL;
	return strdup(cg);
}

/* Fills x->row_cg for the rows of s; keeps cache entries of live rows only. */
static int resolve_cgroups(exp_sink *x, const wm_sample *s)
{
	if (s->n_procs > x->cap_rows) {
		const char **r = realloc(x->row_cg, s->n_procs * sizeof *r);
		if (!r)
			return -ENOMEM;
		x->row_cg = r;
		x->cap_rows = s->n_procs;
	}
	cg_entry *next = calloc(s->n_procs ? s->n_procs : 1, sizeof *next);
	if (!next)
		return -ENOMEM;
	size_t nn = 0;
	for (size_t i = 0; i < s->n_procs; i++) {
		const wm_sample_proc *p = &s->procs[i];
		cg_entry key = {.pid = p->pid, .starttime_ticks = p->starttime_ticks};
		cg_entry *hit = x->n_cg ? bsearch(&key, x->cg, x->n_cg, sizeof *x->cg, cg_cmp) : NULL;
		char *path;
		if (hit) {
			path = hit->path;
			hit->path = NULL; /* moved */
		} else {
			path = x->procfs_fd >= 0 ? read_cgroup(x->procfs_fd, p->pid) : NULL;
		}
		x->row_cg[i] = path;
		if (p->alive) {
			key.path = path;
			next[nn++] = key;
		}
	}
	/* Exited rows: their path is used for this update, then freed below. */
	for (size_t i = 0; i < x->n_cg; i++)
		free(x->cg[i].path);
	free(x->cg);
	qsort(next, nn, sizeof *next, cg_cmp);
	x->cg = next;
	x->n_cg = nn;
	return 0;
}

static void free_exited_paths(exp_sink *x, const wm_sample *s)
{
	for (size_t i = 0; i < s->n_procs; i++)
		if (!s->procs[i].alive)
			free((char *)x->row_cg[i]);
}

static int sink_begin(void *ctx, const wm_meter *m, char *err, size_t errlen)
{
	exp_sink *x = ctx;
	size_t nd = wm_meter_n_devices(m), nc = wm_meter_n_channels(m);
	x->devices = calloc(nd ? nd : 1, sizeof *x->devices);
	x->channels = calloc(nc ? nc : 1, sizeof *x->channels);
	if (!x->devices || !x->channels)
		return wm_err(err, errlen, -ENOMEM, "out of memory");
	for (size_t i = 0; i < nd; i++)
		x->devices[i] = *wm_meter_device(m, i);
	for (size_t i = 0; i < nc; i++)
		x->channels[i] = *wm_meter_channel_at(m, i);
	wm_prom_view v = {
		.devices = x->devices, .n_devices = nd, .channels = x->channels, .n_channels = nc,
		.sources = wm_meter_sources(m), .version = WM_VERSION, .period_s = wm_meter_period_s(m),
	};
	int rc = wm_prom_new(&v, &x->opts, &x->prom, err, errlen);
	if (rc)
		return rc;
	if (x->opts.per_cgroup) {
		x->procfs_fd = open(wm_meter_procfs_path(m), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (x->procfs_fd < 0) {
			int e = errno;
			return wm_err(err, errlen, -e, "--per-cgroup: cannot open %s: %s; check --procfs-root",
				      wm_meter_procfs_path(m), strerror(e));
		}
	}
	return 0;
}

static int sink_sample(void *ctx, const wm_meter *m, const wm_sample *s)
{
	(void)m;
	exp_sink *x = ctx;
	int cg = x->opts.per_cgroup && s->proc_tier;
	int rc = cg ? resolve_cgroups(x, s) : 0;
	if (rc)
		return rc;
	rc = wm_prom_update(x->prom, s, cg ? x->row_cg : NULL);
	if (cg)
		free_exited_paths(x, s);
	if (rc)
		return rc;
	wm_buf text, om;
	wm_buf_init(&text);
	wm_buf_init(&om);
	/* Reserve what the last snapshot took: one allocation each. */
	if (wm_buf_reserve(&text, x->last_text_len + 256) || wm_buf_reserve(&om, x->last_om_len + 256) ||
	    wm_prom_format(x->prom, 0, &text) || wm_prom_format(x->prom, 1, &om)) {
		wm_buf_free(&text);
		wm_buf_free(&om);
		return -ENOMEM;
	}
	x->last_text_len = text.len;
	x->last_om_len = om.len;
	return wm_http_publish(x->http, text.data, text.len, om.data, om.len);
}

static void sink_free(void *ctx)
{
	exp_sink *x = ctx;
	if (!x)
		return;
	wm_prom_free(x->prom);
	for (size_t i = 0; i < x->n_cg; i++)
		free(x->cg[i].path);
	free(x->cg);
	free(x->row_cg);
	if (x->procfs_fd >= 0)
		close(x->procfs_fd);
	free(x->devices);
	free(x->channels);
	free(x);
}

static const wm_sink_ops exporter_sink_ops = {
	.name = "prometheus",
	.begin = sink_begin,
	.sample = sink_sample,
	.end = NULL,
	.free = sink_free,
};

/* ---- the public API ------------------------------------------------------- */

int wm_exporter_start(const wm_exporter_config *cin, const wm_meter_config *meter_cfg, wm_exporter **out,
		      char *err, size_t errlen)
{
	*out = NULL;
	wm_exporter_config c;
	wm_exporter_config_init(&c);
	if (cin) {
		if (cin->size < offsetof(wm_exporter_config, listen) || cin->size > sizeof c)
			return wm_err(err, errlen, -EINVAL,
				      "wm_exporter_config.size is %zu; set it with wm_exporter_config_init", cin->size);
		memcpy(&c, cin, cin->size);
		c.size = sizeof c;
	}
	wm_meter_config mc;
	wm_meter_config_init(&mc);
	if (meter_cfg) {
		if (meter_cfg->size < offsetof(wm_meter_config, output_dir) || meter_cfg->size > sizeof mc)
			return wm_err(err, errlen, -EINVAL,
				      "wm_meter_config.size is %zu; set it with wm_meter_config_init", meter_cfg->size);
		memcpy(&mc, meter_cfg, meter_cfg->size);
		mc.size = sizeof mc;
	}
	/* Whole machine: no command. Per-process and per-cgroup series need
	 * the process tree, so then every descendant of pid 1 (every process
	 * of the procfs root's namespace but kernel threads) is measured. */
	static const int init_pid[1] = {1};
	mc.output_dir = c.record_dir;
	mc.command = NULL;
	mc.reaper_pid = 0;
	mc.measure_self = 0;
	if (c.per_process || c.per_cgroup) {
		mc.whole_machine = 0;
		mc.pids = init_pid;
		mc.n_pids = 1;
		/* No PSS walks over every process of the machine: smaps_rollup
		 * stalls its target while it walks the page tables. DRAM is then
		 * attributed by RSS. */
		mc.mem_period_s = 0;
	} else {
		mc.whole_machine = 1;
		mc.pids = NULL;
		mc.n_pids = 0;
	}
	int rc = wm_meter_config_check(&mc, err, errlen);
	if (rc)
		return rc;

	wm_web_config web = {0};
	if (c.web_config_file && (rc = wm_web_config_load(c.web_config_file, &web, err, errlen)) < 0)
		return rc;
	wm_exporter *e = calloc(1, sizeof *e);
	if (!e) {
		wm_web_config_release(&web);
		return wm_err(err, errlen, -ENOMEM, "out of memory");
	}
	wm_http_opts ho = {
		.listen = c.listen, .web = &web,
		/* /healthz: stale after ten periods without a sample, at least 10 s */
		.stale_after_s = 10.0 * mc.period_s > 10.0 ? 10.0 * mc.period_s : 10.0,
	};
	rc = wm_http_start(&ho, &e->http, err, errlen);
	wm_web_config_release(&web);
	if (rc) {
		free(e);
		return rc;
	}
	exp_sink *x = calloc(1, sizeof *x);
	if (!x) {
		wm_http_free(e->http);
		free(e);
		return wm_err(err, errlen, -ENOMEM, "out of memory");
	}
	x->http = e->http;
	x->procfs_fd = -1;
	x->opts = (wm_prom_opts){.per_process = c.per_process, .per_cgroup = c.per_cgroup, .max_series = c.max_series};
	wm_sink sink = {.ops = &exporter_sink_ops, .ctx = x};
	rc = wm_meter_start_sinks(&mc, &sink, 1, &e->meter, err, errlen); /* owns x from here */
	if (rc) {
		wm_http_free(e->http);
		free(e);
		return rc;
	}
	e->owner_pid = getpid();
	*out = e;
	return 0;
}

int wm_exporter_port(const wm_exporter *e)
{
	return e ? wm_http_port(e->http) : -1;
}

const char *wm_exporter_url(const wm_exporter *e)
{
	return e ? wm_http_url(e->http) : "";
}

const char *wm_exporter_warnings(const wm_exporter *e)
{
	return e ? wm_http_warnings(e->http) : "";
}

int wm_exporter_stop(wm_exporter *e, char *err, size_t errlen)
{
	if (!e || e->stopped || e->owner_pid != getpid())
		return 0;
	e->stopped = 1;
	int rc = wm_meter_stop(e->meter, -1, err, errlen);
	/* The sink publishes into the server: free the meter (and the sink)
	 * before the server. */
	wm_meter_free(e->meter);
	e->meter = NULL;
	wm_http_free(e->http);
	e->http = NULL;
	return rc;
}

void wm_exporter_free(wm_exporter *e)
{
	/* A forked child has neither the sampler nor the server threads: it
	 * must not join them, nor free what its parent still uses. */
	if (!e || e->owner_pid != getpid())
		return;
	if (!e->stopped)
		(void)wm_exporter_stop(e, NULL, 0);
	free(e);
}
