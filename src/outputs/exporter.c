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
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/root.h"
#include "base/util.h"
#include "meter/meter.h"
#include "outputs/http.h"
#include "outputs/prometheus.h"
#include "outputs/web_config.h"
#include "recording/record.h"

typedef struct cg_entry {
	int pid;
	uint64_t starttime_ticks;
	char *path;               /* NULL: unknown (v1-only host, vanished) */
} cg_entry;

/* What the re-probe (the exporter) and the sink of the current meter share:
 * the last text published (for the counters to carry over a switch), the
 * carry itself, and since when each source's counters all fail. */
typedef struct exp_shared {
	pthread_mutex_t lock;
	int keep_text;            /* re-probe on: keep a copy of the last text */
	char *last_text;
	char **carry_key;         /* sorted series ("name{labels}") -> joules to add */
	double *carry_val;
	size_t n_carry;
	double *fail_since_s;     /* [n_src] t_s since which every counted channel of
	                             source i failed; NaN while one reads */
	size_t n_src;
	double last_t_s;
} exp_shared;

typedef struct exp_sink {
	wm_http *http;            /* not owned */
	exp_shared *sh;           /* not owned */
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
	wm_meter *meter;          /* NULL only between a failed switch and the next try */
	int stopped;
	/* re-probe */
	exp_shared sh;
	wm_meter_config mc;       /* the meter's config, strings owned below */
	char *sysfs, *procfs, *nvml, *record_dir;
	wm_prom_opts opts;
	double reprobe_s;
	void (*on_event)(void *, const char *);
	void *on_event_arg;
	pthread_mutex_t lock;     /* meter, quit */
	pthread_cond_t cond;
	pthread_t thread;
	int thread_started, quit;
	unsigned switches;
};

void wm_exporter_config_init(wm_exporter_config *c)
{
	memset(c, 0, sizeof *c);
	c->size = sizeof *c;
	c->listen = WM_EXPORTER_DEFAULT_LISTEN;
	c->max_series = WM_EXPORTER_DEFAULT_MAX_SERIES;
	c->reprobe_s = WM_EXPORTER_DEFAULT_REPROBE_S;
}

/* ---- counters carried over a switch of meters --------------------------------- */

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void carry_free(exp_shared *sh)
{
	for (size_t i = 0; i < sh->n_carry; i++)
		free(sh->carry_key[i]);
	free(sh->carry_key);
	free(sh->carry_val);
	sh->carry_key = NULL;
	sh->carry_val = NULL;
	sh->n_carry = 0;
}

/* From the last text published: every counter series ("..._total{...} v")
 * and its value, to be added to the same series of the next meter. */
static int carry_take(exp_shared *sh)
{
	carry_free(sh);
	const char *t = sh->last_text;
	size_t cap = 0;
	while (t && *t) {
		const char *nl = strchr(t, '\n');
		size_t len = nl ? (size_t)(nl - t) : strlen(t);
		const char *sp = len ? memrchr(t, ' ', len) : NULL;
		const char *name_end = t;
		while (name_end < t + len && *name_end != '{' && *name_end != ' ')
			name_end++;
		if (*t != '#' && sp && name_end - t > 6 && memcmp(name_end - 6, "_total", 6) == 0) {
			if (sh->n_carry == cap) {
				size_t nc = cap ? 2 * cap : 64;
				char **k = realloc(sh->carry_key, nc * sizeof *k);
				if (!k)
					return -ENOMEM;
				sh->carry_key = k;
				double *v = realloc(sh->carry_val, nc * sizeof *v);
				if (!v)
					return -ENOMEM;
				sh->carry_val = v;
				cap = nc;
			}
			char *key = strndup(t, (size_t)(sp - t));
			if (!key)
				return -ENOMEM;
			sh->carry_key[sh->n_carry] = key;
			sh->carry_val[sh->n_carry] = strtod(sp + 1, NULL);
			sh->n_carry++;
		}
		t += len + (nl ? 1 : 0);
	}
	/* sort keys with their values (insertion sort: a few dozen series) */
	for (size_t i = 1; i < sh->n_carry; i++)
		for (size_t j = i; j > 0 && strcmp(sh->carry_key[j - 1], sh->carry_key[j]) > 0; j--) {
			char *k = sh->carry_key[j];
			sh->carry_key[j] = sh->carry_key[j - 1];
			sh->carry_key[j - 1] = k;
			double v = sh->carry_val[j];
			sh->carry_val[j] = sh->carry_val[j - 1];
			sh->carry_val[j - 1] = v;
		}
	return 0;
}

/* Rewrites the sample lines of in whose series has a carry. */
static int carry_apply(const exp_shared *sh, wm_buf *in)
{
	if (!sh->n_carry || !in->len)
		return 0;
	wm_buf out;
	wm_buf_init(&out);
	if (wm_buf_reserve(&out, in->len + 64))
		return -ENOMEM;
	const char *t = in->data, *end = in->data + in->len;
	while (t < end) {
		const char *nl = memchr(t, '\n', (size_t)(end - t));
		size_t len = nl ? (size_t)(nl - t) : (size_t)(end - t);
		const char *sp = len && *t != '#' ? memrchr(t, ' ', len) : NULL;
		char **hit = NULL;
		if (sp) {
			char key[1024];
			size_t kl = (size_t)(sp - t);
			if (kl < sizeof key) {
				memcpy(key, t, kl);
				key[kl] = '\0';
				char *kp = key;
				hit = bsearch(&kp, sh->carry_key, sh->n_carry, sizeof *sh->carry_key, key_cmp);
			}
		}
		if (hit) {
			double v = strtod(sp + 1, NULL) + sh->carry_val[hit - sh->carry_key];
			wm_buf_append(&out, t, (size_t)(sp - t) + 1);
			wm_prom_value(&out, v);
		} else {
			wm_buf_append(&out, t, len);
		}
		if (nl)
			wm_buf_append(&out, "\n", 1);
		t += len + (nl ? 1 : 0);
	}
	if (wm_buf_error(&out)) {
		wm_buf_free(&out);
		return -ENOMEM;
	}
	wm_buf_free(in);
	*in = out;
	return 0;
}

/* Since when each source's counted channels have all failed (the re-probe
 * tries again a source failing for a whole interval). */
static void note_failing(exp_sink *x, const wm_meter *m, const wm_sample *s)
{
	exp_shared *sh = x->sh;
	const wm_sources *all = wm_meter_sources(m);
	pthread_mutex_lock(&sh->lock);
	sh->last_t_s = s->t_s;
	for (size_t i = 0; i < all->n && i < sh->n_src; i++) {
		int counted = 0, ok = 0;
		for (size_t c = 0; c < s->n_channels; c++) {
			if (x->channels[c].src != &all->v[i] || x->channels[c].device < 0)
				continue;
			counted = 1;
			ok |= s->channel_ok[c];
		}
		if (!counted || ok)
			sh->fail_since_s[i] = NAN;
		else if (isnan(sh->fail_since_s[i]))
			sh->fail_since_s[i] = s->t_s;
	}
	pthread_mutex_unlock(&sh->lock);
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
	if (x->sh) {
		const wm_sources *all = wm_meter_sources(m);
		pthread_mutex_lock(&x->sh->lock);
		free(x->sh->fail_since_s);
		x->sh->n_src = 0;
		x->sh->fail_since_s = calloc(all->n ? all->n : 1, sizeof *x->sh->fail_since_s);
		if (x->sh->fail_since_s) {
			x->sh->n_src = all->n;
			for (size_t i = 0; i < all->n; i++)
				x->sh->fail_since_s[i] = NAN;
		}
		pthread_mutex_unlock(&x->sh->lock);
	}
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
	if (x->sh) {
		note_failing(x, m, s);
		pthread_mutex_lock(&x->sh->lock);
		rc = carry_apply(x->sh, &text);
		if (!rc)
			rc = carry_apply(x->sh, &om);
		if (!rc && x->sh->keep_text) {
			char *copy = strndup(text.data, text.len);
			if (copy) {
				free(x->sh->last_text);
				x->sh->last_text = copy;
			}
		}
		pthread_mutex_unlock(&x->sh->lock);
		if (rc) {
			wm_buf_free(&text);
			wm_buf_free(&om);
			return rc;
		}
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

/* ---- the meter, and switching meters (re-probe) --------------------------- */

static int start_meter(wm_exporter *e, const wm_meter_config *mc, wm_meter **out, char *err, size_t errlen)
{
	exp_sink *x = calloc(1, sizeof *x);
	if (!x)
		return wm_err(err, errlen, -ENOMEM, "out of memory");
	x->http = e->http;
	x->sh = &e->sh;
	x->procfs_fd = -1;
	x->opts = e->opts;
	wm_sink sink = {.ops = &exporter_sink_ops, .ctx = x};
	/* the recording (serve --record) first, then the exporter */
	return wm_meter_start_recorded(mc, &sink, 1, out, err, errlen); /* owns x from here */
}

static void exporter_release(wm_exporter *e)
{
	free(e->sh.last_text);
	free(e->sh.fail_since_s);
	carry_free(&e->sh);
	pthread_mutex_destroy(&e->sh.lock);
	pthread_mutex_destroy(&e->lock);
	pthread_cond_destroy(&e->cond);
	free(e->sysfs);
	free(e->procfs);
	free(e->nvml);
	free(e->record_dir);
	free(e);
}

static void say(wm_exporter *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(wm_exporter *e, const char *fmt, ...)
{
	if (!e->on_event)
		return;
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	e->on_event(e->on_event_arg, msg);
}

/* Probes again each source that is not measuring now (absent, forbidden,
 * failing at probe) or whose counters have all failed for an interval;
 * 1 with why in `why` if one of them now reads. */
static int something_new(wm_exporter *e, char *why, size_t whylen)
{
	const wm_sources *cur = wm_meter_sources(e->meter);
	wm_root sys = {.dirfd = -1}, proc = {.dirfd = -1};
	char err[512];
	if (wm_root_open(&sys, e->mc.sysfs_root ? e->mc.sysfs_root : WM_DEFAULT_SYSFS_ROOT, err, sizeof err) < 0 ||
	    wm_root_open(&proc, e->mc.procfs_root ? e->mc.procfs_root : WM_DEFAULT_PROCFS_ROOT, err, sizeof err) < 0) {
		wm_root_close(&sys);
		return 0;
	}
	wm_source_ctx ctx = {.sysfs_dirfd = sys.dirfd, .procfs_dirfd = proc.dirfd, .sysfs_path = sys.path,
			     .procfs_path = proc.path, .cfg = &e->mc, .for_describe = 1};
	int found = 0;
	for (size_t i = 0; i < cur->n && !found; i++) {
		const wm_source *s = &cur->v[i];
		if (s->ops->fallback_for)
			continue; /* a model gives way; it is not what appears */
		if (e->mc.no_gpu && strcmp(s->ops->name, "nvml") == 0)
			continue;
		int measuring = s->active && s->state == WM_SRC_OK;
		if (measuring) {
			pthread_mutex_lock(&e->sh.lock);
			double since = i < e->sh.n_src ? e->sh.fail_since_s[i] : NAN;
			int failing = !isnan(since) && e->sh.last_t_s - since >= e->reprobe_s;
			pthread_mutex_unlock(&e->sh.lock);
			if (!failing)
				continue;
		}
		wm_source t = {.ops = s->ops};
		char perr[256] = "";
		int rc = s->ops->probe(&t, &ctx, perr, sizeof perr);
		if (rc == 0 && t.state == WM_SRC_OK && t.n_devices > 0) {
			found = 1;
			(void)snprintf(why, whylen, "%s %s (was %s): %s", s->ops->name,
				       measuring ? "readable again" : "now readable",
				       measuring ? "failing" : wm_source_state_label(s), t.detail);
		}
		if (s->ops->close)
			s->ops->close(&t);
		wm_source_release(&t);
	}
	wm_root_close(&proc);
	wm_root_close(&sys);
	return found;
}

/* Stops the meter and starts a new one on what the probe now finds; the
 * exported counters carry on from their last values. */
static void switch_meter(wm_exporter *e, const char *why)
{
	char err[1024] = "";
	pthread_mutex_lock(&e->sh.lock);
	int rc = carry_take(&e->sh);
	pthread_mutex_unlock(&e->sh.lock);
	if (rc) {
		say(e, "re-probe: %s, but out of memory: staying as is", why);
		return;
	}
	wm_meter_config mc = e->mc;
	char rec[4200] = "";
	e->switches++;
	if (e->record_dir) {
		(void)snprintf(rec, sizeof rec, "%s-%u", e->record_dir, e->switches);
		mc.output_dir = rec;
	}
	wm_meter *old = e->meter;
	if (old) {
		(void)wm_meter_stop(old, -1, NULL, 0);
		pthread_mutex_lock(&e->lock);
		e->meter = NULL;
		pthread_mutex_unlock(&e->lock);
		wm_meter_free(old);
	}
	wm_meter *m = NULL;
	rc = start_meter(e, &mc, &m, err, sizeof err);
	pthread_mutex_lock(&e->lock);
	e->meter = m;
	pthread_mutex_unlock(&e->lock);
	if (rc < 0) {
		say(e, "re-probe: %s, but the meter cannot restart: %s (trying again in %g s)", why, err, e->reprobe_s);
		return;
	}
	say(e, "re-probe: %s; switched to it, counters carry on%s%s", why, e->record_dir ? "; recording now in " : "",
	    rec);
}

static void *reprobe_main(void *arg)
{
	wm_exporter *e = arg;
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	pthread_mutex_lock(&e->lock);
	while (!e->quit) {
		double add = e->reprobe_s;
		next.tv_sec += (time_t)add;
		next.tv_nsec += (long)((add - floor(add)) * 1e9);
		if (next.tv_nsec >= 1000000000L) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000L;
		}
		while (!e->quit && pthread_cond_timedwait(&e->cond, &e->lock, &next) != ETIMEDOUT)
			;
		if (e->quit)
			break;
		pthread_mutex_unlock(&e->lock);
		char why[512] = "";
		if (!e->meter)
			switch_meter(e, "the meter was down");
		else if (something_new(e, why, sizeof why))
			switch_meter(e, why);
		clock_gettime(CLOCK_MONOTONIC, &next);
		pthread_mutex_lock(&e->lock);
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

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
	e->opts = (wm_prom_opts){.per_process = c.per_process, .per_cgroup = c.per_cgroup, .max_series = c.max_series};
	e->reprobe_s = c.reprobe_s > 0 && isfinite(c.reprobe_s) ? c.reprobe_s : 0;
	e->on_event = c.on_event;
	e->on_event_arg = c.on_event_arg;
	pthread_mutex_init(&e->sh.lock, NULL);
	pthread_mutex_init(&e->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->cond, &ca);
	pthread_condattr_destroy(&ca);
	e->sh.keep_text = e->reprobe_s > 0;
	/* own copies of what the re-probe needs after start returns */
	e->mc = mc;
	e->sysfs = mc.sysfs_root ? strdup(mc.sysfs_root) : NULL;
	e->procfs = mc.procfs_root ? strdup(mc.procfs_root) : NULL;
	e->nvml = mc.nvml_lib ? strdup(mc.nvml_lib) : NULL;
	e->record_dir = c.record_dir ? strdup(c.record_dir) : NULL;
	e->mc.sysfs_root = e->sysfs;
	e->mc.procfs_root = e->procfs;
	e->mc.nvml_lib = e->nvml;
	e->mc.output_dir = e->record_dir;
	e->mc.cuda_visible_devices = NULL;
	if ((mc.sysfs_root && !e->sysfs) || (mc.procfs_root && !e->procfs) || (mc.nvml_lib && !e->nvml) ||
	    (c.record_dir && !e->record_dir))
		rc = wm_err(err, errlen, -ENOMEM, "out of memory");
	else
		rc = start_meter(e, &e->mc, &e->meter, err, errlen);
	if (rc == 0 && e->reprobe_s > 0) {
		rc = -pthread_create(&e->thread, NULL, reprobe_main, e);
		if (rc)
			wm_err(err, errlen, rc, "cannot start the re-probe thread: %s", strerror(-rc));
		else
			e->thread_started = 1;
	}
	if (rc) {
		if (e->meter) {
			(void)wm_meter_stop(e->meter, -1, NULL, 0);
			wm_meter_free(e->meter);
		}
		wm_http_free(e->http);
		exporter_release(e);
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
	if (e->thread_started) {
		pthread_mutex_lock(&e->lock);
		e->quit = 1;
		pthread_cond_broadcast(&e->cond);
		pthread_mutex_unlock(&e->lock);
		(void)pthread_join(e->thread, NULL);
		e->thread_started = 0;
	}
	int rc = e->meter ? wm_meter_stop(e->meter, -1, err, errlen) : 0;
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
	exporter_release(e);
}
