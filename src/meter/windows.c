/* windows.c — windows of work (a step, an epoch, a request) read at their
 * own edges (docs/architecture.md "Windows", docs/recording.md "windows.jsonl").
 *
 * The caller's side (wm_meter_window_begin/_end, wm_meter_mark, any thread):
 * an edge is a CLOCK_MONOTONIC time stamp and an entry appended to a queue
 * under a short mutex (no I/O, no counter read; a JSON check of the
 * attributes and a malloc). The edge thread, started with the meter, takes
 * the whole queue at each wake-up and reads every counter once for all the
 * edges queued (edges a millisecond apart share one read), out of the
 * counter period: a window's energy is the counter difference at its own
 * edges, not an interpolation between periodic samples.
 *
 * The edge read is a peek: raw values are read through the sources (under
 * the meter's read_lock, so never at once with the sampler's tick) and
 * turned into energy against each channel's wm_counter without changing it,
 * so periodic samples, gaps and power are exactly as without windows. The
 * peek's step since the last tick is wrap-aware and plausibility-checked
 * like a tick's. A source that integrates a model itself (the CPU model,
 * WM_SRC_NEEDS_CPU_UTIL) is not peeked (its read integrates over dt): its
 * device is extrapolated from the last tick at the last tick's power and
 * the window says so in its notes.
 *
 * Attributed energy: the meter attributes energy on the process tier; a
 * window's attributed share of a device is that of the process intervals
 * completed between its edges, or, when no process scan fell inside it, of
 * the latest completed interval at its end. attributed_j = energy_j x share.
 *
 * GPUs: a counter that updates every update_interval_s (NVML, measured at
 * probe) cannot resolve a shorter window: such a window gets
 * uncertainty_j = the device's power x one update interval, and a note.
 */
#include "meter/windows.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/jsonl.h"
#include "base/safepath.h"
#include "meter/meter_priv.h"

enum { EV_BEGIN = 1, EV_END, EV_MARK, EV_STOP };

struct win_edge {
	int kind;
	int64_t id;
	uint64_t t_ns;
	char *name;   /* begin, mark */
	char *json;   /* attrs (begin, mark) or counts (end); compact JSON object, or NULL */
};

struct win_open {
	int64_t id;
	uint64_t t_ns, read_ns;
	char *name, *attrs;
	double *e0;        /* [n_dev] cumulative at the begin edge */
	double *a_last0, *e_last0; /* [n_dev] process-tier totals known at begin */
	uint64_t proc_seq0;
	unsigned char *note0; /* [n_dev] 1 gap at begin, 2 extrapolated */
};

struct wm_windows {
	pthread_mutex_t qlock;
	pthread_cond_t qcond, qdone;
	struct win_edge *q;
	size_t nq, capq;
	int64_t next_id;
	uint64_t queued, done;
	int stop;
	pthread_t thread;
	int started;
	int joined;               /* the edge thread has ended (under qlock) */
	double final_cpu_s;       /* its CPU when it ended (under qlock) */
	clockid_t cpu_clock;
	int have_cpu_clock;

	/* edge thread only */
	struct win_edge *work;
	size_t capw;
	struct win_open *open;
	size_t n_open, cap_open;
	double *e_now;            /* [n_dev] */
	unsigned char *note_now;  /* [n_dev] */
	double *pw_now;           /* [n_dev] power for uncertainty: last tick's */
	uint64_t *raw;            /* [n_ch] */
	unsigned char *ok;        /* [n_ch] */
	double *gauges;           /* scratch, largest source */
	double *upd_s;            /* [n_dev] largest update interval of its channels */
	uint64_t last_read_ns;

	/* process-tier totals, under the meter's read_lock (wm_windows_note_proc) */
	double *a_last, *e_last, *a_prev, *e_prev; /* [n_dev] */
	uint64_t proc_seq;

	int dir_fd;               /* the recording folder (O_PATH), until windows.jsonl exists */
	wm_jsonl file;            /* windows.jsonl, created at the first edge */
	wm_buf out;
};

static void free_edge(struct win_edge *e)
{
	free(e->name);
	free(e->json);
	e->name = e->json = NULL;
}

static void free_open(struct win_open *o)
{
	free(o->name);
	free(o->attrs);
	free(o->e0);
}

/* ---- the file ------------------------------------------------------------------ */

/* Creates windows.jsonl at the first edge (a recording without windows has
 * none), relative to the folder's fd taken at start. On the edge thread. */
static int open_file(struct wm_windows *w, const wm_meter *m)
{
	if (w->file.fd >= 0 || w->file.open_errno)
		return w->file.fd >= 0 ? 0 : -w->file.open_errno;
	wm_buf out;
	wm_buf_init(&out);
	wm_buf_puts(&out, "{\"windows_version\":1,\"devices\":[");
	for (size_t d = 0; d < m->n_dev; d++) {
		if (d)
			wm_buf_puts(&out, ",");
		wm_buf_json_str(&out, m->dev[d].decl->name);
	}
	wm_buf_puts(&out, "]}\n");
	int rc = wm_buf_error(&out) ? -ENOMEM : wm_jsonl_create(&w->file, w->dir_fd, "windows.jsonl", out.data, out.len);
	wm_buf_free(&out);
	return rc;
}

static int open_dir(struct wm_windows *w, const char *dir, char *err, size_t errlen)
{
	char why[512];
	w->dir_fd = wm_dir_open_safe(dir, 0, why, sizeof why);
	if (w->dir_fd < 0) {
		int rc = w->dir_fd;
		w->dir_fd = -1;
		return wm_err(err, errlen, rc, "cannot open the recording folder %s: %s", dir, why);
	}
	return 0;
}



/* ---- the edge read ----------------------------------------------------------------- */

/* Every counted device's cumulative energy now, in the frame of the samples
 * (joules since the start), without touching the counters. */
static void peek(wm_meter *m, struct wm_windows *w, uint64_t *read_ns)
{
	pthread_mutex_lock(&m->read_lock);
	uint64_t now = wm_now_mono_ns();
	wm_tick tick = {.now_ns = now, .dt_s = (double)(now - m->last_ns) / 1e9, .cpu_util = NAN, .proc_tier = 0};
	if (!(tick.dt_s > 0))
		tick.dt_s = 1e-9; /* not a baseline: sources skip their slow gauges */
	for (size_t d = 0; d < m->n_dev; d++) {
		w->e_now[d] = 0;
		w->note_now[d] = 0;
		double p = m->sdev[d].power_w;
		w->pw_now[d] = isfinite(p) ? p : m->power_smooth_w[d];
	}
	for (size_t k = 0; k < m->n_msrc; k++) {
		struct wm_msrc *ms = &m->msrc[k];
		wm_source *s = ms->src;
		int modeled = (s->ops->flags & WM_SRC_NEEDS_CPU_UTIL) != 0;
		if (!modeled)
			s->ops->read(s, &tick, w->raw + ms->ch0, w->ok + ms->ch0, w->gauges);
		for (size_t c = 0; c < s->n_channels; c++) {
			size_t i = ms->ch0 + c;
			int d = m->ch[i].device;
			if (d < 0)
				continue;
			const wm_channel *ch = m->ch[i].ch;
			if (!ch->readable)
				continue;
			double e = m->ch_energy_j[i];
			if (modeled) {
				double p = isfinite(m->sdev[d].power_w) ? m->sdev[d].power_w : 0.0;
				w->e_now[d] += e;
				w->e_now[d] += c == 0 ? p * tick.dt_s : 0.0;
				w->note_now[d] |= 2;
				continue;
			}
			const wm_counter *ct = &m->ctr[i];
			if (!w->ok[i] || !ct->primed || (ct->range && w->raw[i] > ct->range)) {
				w->e_now[d] += e;
				w->note_now[d] |= 1;
				continue;
			}
			uint64_t a = ct->last_raw, b = w->raw[i], step;
			if (b >= a)
				step = b - a;
			else if (ct->range && a <= ct->range)
				step = (ct->range - a) + b;
			else
				step = b; /* a reset (driver reload) */
			double dt_s = ct->last_ns && now > ct->last_ns ? (double)(now - ct->last_ns) / 1e9 : 0.0;
			double win = dt_s > ct->min_window_s ? dt_s : ct->min_window_s;
			if (ct->max_per_s > 0 && (double)step > ct->max_per_s * win) {
				w->e_now[d] += e; /* implausible: the last tick's value, noted */
				w->note_now[d] |= 1;
				continue;
			}
			w->e_now[d] += e + (double)step * ch->joules_per_unit;
		}
	}
	pthread_mutex_unlock(&m->read_lock);
	*read_ns = now;
}

/* ---- lines ------------------------------------------------------------------------ */

static double t_rel(const wm_meter *m, uint64_t ns)
{
	return ns > m->t0_ns ? (double)(ns - m->t0_ns) / 1e9 : 0.0;
}

static void put_energies(wm_buf *b, const wm_meter *m, const double *e)
{
	wm_buf_puts(b, "{");
	for (size_t d = 0; d < m->n_dev; d++) {
		if (d)
			wm_buf_puts(b, ",");
		wm_buf_json_str(b, m->dev[d].decl->name);
		wm_buf_puts(b, ":");
		wm_buf_json_fixed(b, e[d], 6);
	}
	wm_buf_puts(b, "}");
}

static void put_obj_or_empty(wm_buf *b, const char *json)
{
	wm_buf_puts(b, json && *json ? json : "{}");
}

static void line_begin_or_mark(struct wm_windows *w, const wm_meter *m, const struct win_edge *e, uint64_t read_ns)
{
	wm_buf *b = &w->out;
	if (e->kind == EV_BEGIN)
		wm_buf_printf(b, "{\"event\":\"begin\",\"id\":%lld,\"name\":", (long long)e->id);
	else
		wm_buf_puts(b, "{\"event\":\"mark\",\"name\":");
	wm_buf_json_str(b, e->name);
	wm_buf_puts(b, ",\"t_s\":");
	wm_buf_json_fixed(b, t_rel(m, e->t_ns), 6);
	wm_buf_puts(b, ",\"read_lag_s\":");
	wm_buf_json_fixed(b, read_ns > e->t_ns ? (double)(read_ns - e->t_ns) / 1e9 : 0.0, 6);
	wm_buf_puts(b, ",\"attrs\":");
	put_obj_or_empty(b, e->json);
	wm_buf_puts(b, ",\"energy_j\":");
	put_energies(b, m, w->e_now);
	wm_buf_puts(b, "}\n");
}

static void line_end(struct wm_windows *w, const wm_meter *m, const struct win_open *o, uint64_t t_ns,
		     uint64_t read_ns, const char *counts, int open_at_stop)
{
	wm_buf *b = &w->out;
	size_t nd = m->n_dev;
	double dur = t_ns > o->t_ns ? (double)(t_ns - o->t_ns) / 1e9 : 0.0;
	wm_buf_printf(b, "{\"event\":\"end\",\"id\":%lld,\"name\":", (long long)o->id);
	wm_buf_json_str(b, o->name);
	wm_buf_puts(b, ",\"start_s\":");
	wm_buf_json_fixed(b, t_rel(m, o->t_ns), 6);
	wm_buf_puts(b, ",\"end_s\":");
	wm_buf_json_fixed(b, t_rel(m, t_ns), 6);
	wm_buf_puts(b, ",\"duration_s\":");
	wm_buf_json_fixed(b, dur, 6);
	wm_buf_puts(b, ",\"read_lag_s\":");
	double lag0 = o->read_ns > o->t_ns ? (double)(o->read_ns - o->t_ns) / 1e9 : 0.0;
	double lag1 = read_ns > t_ns ? (double)(read_ns - t_ns) / 1e9 : 0.0;
	wm_buf_json_fixed(b, lag0 > lag1 ? lag0 : lag1, 6);
	if (open_at_stop)
		wm_buf_puts(b, ",\"open\":true");
	wm_buf_puts(b, ",\"attrs\":");
	put_obj_or_empty(b, o->attrs);
	wm_buf_puts(b, ",\"counts\":");
	put_obj_or_empty(b, counts);

	double tot = 0;
	wm_buf_puts(b, ",\"energy_j\":{");
	for (size_t d = 0; d < nd; d++) {
		double e = w->e_now[d] - o->e0[d];
		if (e < 0)
			e = 0;
		if (d)
			wm_buf_puts(b, ",");
		wm_buf_json_str(b, m->dev[d].decl->name);
		wm_buf_puts(b, ":");
		wm_buf_json_fixed(b, e, 6);
		if (strcmp(m->dev[d].decl->kind, "psys") != 0)
			tot += e;
	}
	wm_buf_puts(b, "},\"attributed_j\":{");
	int first = 1;
	for (size_t d = 0; d < nd; d++) {
		if (m->dev[d].decl->rule == WM_ATTR_NONE)
			continue;
		double de, da;
		if (w->proc_seq != o->proc_seq0) {
			de = w->e_last[d] - o->e_last0[d];
			da = w->a_last[d] - o->a_last0[d];
		} else {
			de = w->e_last[d] - w->e_prev[d];
			da = w->a_last[d] - w->a_prev[d];
		}
		double share = de > 0 ? da / de : 0.0;
		if (share < 0)
			share = 0;
		if (share > 1)
			share = 1;
		double e = w->e_now[d] - o->e0[d];
		wm_buf_puts(b, first ? "" : ",");
		first = 0;
		wm_buf_json_str(b, m->dev[d].decl->name);
		wm_buf_puts(b, ":");
		wm_buf_json_fixed(b, (e > 0 ? e : 0) * share, 6);
	}
	wm_buf_puts(b, "}");
	/* total over devices that do not overlap: psys contains the others */
	wm_buf_puts(b, ",\"total_j\":");
	wm_buf_json_fixed(b, tot, 6);

	/* joules per count */
	json_t *cj = counts ? json_loads(counts, 0, NULL) : NULL;
	wm_buf_puts(b, ",\"j_per\":{");
	if (json_is_object(cj)) {
		const char *k;
		json_t *v;
		int f = 1;
		json_object_foreach(cj, k, v) {
			double n = json_number_value(v);
			if (!json_is_number(v) || !(n > 0))
				continue;
			wm_buf_puts(b, f ? "" : ",");
			f = 0;
			wm_buf_json_str(b, k);
			wm_buf_puts(b, ":");
			wm_buf_json_double(b, tot / n);
		}
	}
	json_decref(cj);
	wm_buf_puts(b, "}");

	/* uncertainty and notes */
	wm_buf_puts(b, ",\"uncertainty_j\":{");
	first = 1;
	wm_buf notes;
	wm_buf_init(&notes);
	for (size_t d = 0; d < nd; d++) {
		const char *dn = m->dev[d].decl->name;
		if (w->upd_s[d] > 0 && dur < w->upd_s[d]) {
			double u = (w->pw_now[d] > 0 ? w->pw_now[d] : 0.0) * w->upd_s[d];
			wm_buf_puts(b, first ? "" : ",");
			first = 0;
			wm_buf_json_str(b, dn);
			wm_buf_puts(b, ":");
			wm_buf_json_fixed(b, u, 6);
			char msg[256];
			(void)snprintf(msg, sizeof msg,
				       "%s: its energy counter updates every %.3f s, longer than this %.3f s window: "
				       "energy is +- one update interval's energy",
				       dn, w->upd_s[d], dur);
			wm_buf_puts(&notes, notes.len ? "," : "");
			wm_buf_json_str(&notes, msg);
		}
		unsigned char nt = (unsigned char)(o->note0[d] | w->note_now[d]);
		if (nt & 1) {
			char msg[160];
			(void)snprintf(msg, sizeof msg, "%s: unreadable or implausible at an edge: the last tick's value used",
				       dn);
			wm_buf_puts(&notes, notes.len ? "," : "");
			wm_buf_json_str(&notes, msg);
		}
		if (nt & 2) {
			char msg[160];
			(void)snprintf(msg, sizeof msg, "%s: modeled; extrapolated from the last tick at its power", dn);
			wm_buf_puts(&notes, notes.len ? "," : "");
			wm_buf_json_str(&notes, msg);
		}
	}
	if (open_at_stop) {
		wm_buf_puts(&notes, notes.len ? "," : "");
		wm_buf_json_str(&notes, "still open when the meter stopped: ended at the stop");
	}
	wm_buf_puts(b, "},\"notes\":[");
	if (notes.len)
		wm_buf_append(b, notes.data, notes.len);
	wm_buf_free(&notes);
	wm_buf_puts(b, "]}\n");
}

/* ---- the edge thread ---------------------------------------------------------------- */

static int take_open(struct wm_windows *w, const wm_meter *m, const struct win_edge *e, uint64_t read_ns)
{
	if (w->n_open == w->cap_open) {
		size_t cap = w->cap_open ? 2 * w->cap_open : 16;
		struct win_open *p = realloc(w->open, cap * sizeof *p);
		if (!p)
			return -ENOMEM;
		w->open = p;
		w->cap_open = cap;
	}
	size_t nd = m->n_dev ? m->n_dev : 1;
	struct win_open *o = &w->open[w->n_open];
	memset(o, 0, sizeof *o);
	o->e0 = calloc(3 * nd + nd, sizeof(double)); /* e0, a_last0, e_last0, note0 (bytes) */
	if (!o->e0)
		return -ENOMEM;
	o->a_last0 = o->e0 + nd;
	o->e_last0 = o->e0 + 2 * nd;
	o->note0 = (unsigned char *)(o->e0 + 3 * nd);
	memcpy(o->e0, w->e_now, m->n_dev * sizeof(double));
	memcpy(o->a_last0, w->a_last, m->n_dev * sizeof(double));
	memcpy(o->e_last0, w->e_last, m->n_dev * sizeof(double));
	memcpy(o->note0, w->note_now, m->n_dev);
	o->proc_seq0 = w->proc_seq;
	o->id = e->id;
	o->t_ns = e->t_ns;
	o->read_ns = read_ns;
	o->name = e->name;
	o->attrs = e->json;
	w->n_open++;
	return 1; /* took the strings */
}

static void handle(wm_meter *m, struct wm_windows *w, struct win_edge *e, uint64_t read_ns)
{
	if (e->kind == EV_BEGIN) {
		line_begin_or_mark(w, m, e, read_ns);
		if (take_open(w, m, e, read_ns) == 1)
			e->name = e->json = NULL;
	} else if (e->kind == EV_MARK) {
		line_begin_or_mark(w, m, e, read_ns);
	} else if (e->kind == EV_END) {
		for (size_t i = 0; i < w->n_open; i++) {
			if (w->open[i].id != e->id)
				continue;
			line_end(w, m, &w->open[i], e->t_ns, read_ns, e->json, 0);
			free_open(&w->open[i]);
			w->open[i] = w->open[--w->n_open];
			break;
		}
		/* an end of a window ended already, or never begun: nothing to do */
	}
}

static void *edge_main(void *arg)
{
	wm_meter *m = arg;
	struct wm_windows *w = m->win;
	pthread_mutex_lock(&w->qlock);
	for (;;) {
		while (!w->nq && !w->stop)
			pthread_cond_wait(&w->qcond, &w->qlock);
		int stop = w->stop && !w->nq;
		struct win_edge *batch = w->q;
		size_t n = w->nq;
		w->q = w->work;
		size_t cap = w->capq;
		w->capq = w->capw;
		w->work = batch;
		w->capw = cap;
		w->nq = 0;
		pthread_mutex_unlock(&w->qlock);

		uint64_t read_ns = 0;
		if (n || (stop && w->n_open))
			peek(m, w, &read_ns);
		wm_buf_reset(&w->out);
		for (size_t i = 0; i < n; i++) {
			handle(m, w, &batch[i], read_ns);
			free_edge(&batch[i]);
		}
		if (stop) {
			/* windows still open at stop end at the stop, marked open */
			for (size_t i = 0; i < w->n_open; i++) {
				line_end(w, m, &w->open[i], read_ns, read_ns, NULL, 1);
				free_open(&w->open[i]);
			}
			w->n_open = 0;
		}
		if (w->out.len && open_file(w, m) == 0)
			(void)wm_jsonl_append(&w->file, w->out.data, w->out.len);
		w->last_read_ns = read_ns;

		pthread_mutex_lock(&w->qlock);
		w->done += n;
		pthread_cond_broadcast(&w->qdone);
		if (stop) {
			struct timespec ts;
			if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
				w->final_cpu_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
			break;
		}
	}
	pthread_mutex_unlock(&w->qlock);
	return NULL;
}

/* ---- the caller's side -------------------------------------------------------------- */

uint64_t wm_meter_edge_ns(const wm_meter *m, uint64_t t_ns)
{
	uint64_t t = wm_now_mono_ns();
	if (t_ns) {
		/* another process's stamp (the control socket): not in the future,
		 * not before the start */
		if (t_ns < t)
			t = t_ns;
		if (t < m->t0_ns)
			t = m->t0_ns;
	}
	return t;
}

static int enqueue(wm_meter *m, uint64_t t_ns, int kind, int64_t *id, const char *name, const char *json)
{
	struct wm_windows *w = m->win;
	uint64_t t = wm_meter_edge_ns(m, t_ns); /* the edge: before anything else */
	char *nm = name ? strdup(name) : NULL;
	char *js = NULL;
	if (json && *json) {
		json_error_t je;
		json_t *o = json_loads(json, JSON_REJECT_DUPLICATES, &je);
		if (!json_is_object(o)) {
			json_decref(o);
			free(nm);
			return -EINVAL;
		}
		js = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
		json_decref(o);
	}
	if ((name && !nm) || (json && *json && !js)) {
		free(nm);
		free(js);
		return -ENOMEM;
	}
	pthread_mutex_lock(&w->qlock);
	int rc = 0;
	if (w->stop) {
		rc = -ESHUTDOWN;
	} else if (w->nq == w->capq) {
		size_t cap = w->capq ? 2 * w->capq : 64;
		struct win_edge *p = realloc(w->q, cap * sizeof *p);
		if (!p)
			rc = -ENOMEM;
		else {
			w->q = p;
			w->capq = cap;
		}
	}
	if (!rc) {
		if (kind == EV_BEGIN)
			*id = ++w->next_id;
		else if (kind == EV_END && (*id <= 0 || *id > w->next_id))
			rc = -ENOENT;
	}
	if (!rc) {
		w->q[w->nq++] = (struct win_edge){.kind = kind, .id = id ? *id : 0, .t_ns = t, .name = nm, .json = js};
		w->queued++;
		pthread_cond_signal(&w->qcond);
	}
	pthread_mutex_unlock(&w->qlock);
	if (rc) {
		free(nm);
		free(js);
	}
	return rc;
}

static int check_name(const char *name)
{
	if (!name || !*name || strlen(name) > 200)
		return -EINVAL;
	return 0;
}

static int usable(wm_meter *m)
{
	if (!wm_meter_is_owner(m))
		return -ECHILD;
	if (!m->win || !m->win->started)
		return -ENOTSUP;
	pthread_mutex_lock(&m->win->qlock);
	int gone = m->win->stop;
	pthread_mutex_unlock(&m->win->qlock);
	if (gone)
		return -ESHUTDOWN;
	return 0;
}

int64_t wm_meter_window_begin_at(wm_meter *m, uint64_t mono_ns, const char *name, const char *attrs_json)
{
	int rc = usable(m);
	if (!rc)
		rc = check_name(name);
	int64_t id = 0;
	if (!rc)
		rc = enqueue(m, mono_ns, EV_BEGIN, &id, name, attrs_json);
	return rc < 0 ? rc : id;
}

int64_t wm_meter_window_begin(wm_meter *m, const char *name, const char *attrs_json)
{
	return wm_meter_window_begin_at(m, 0, name, attrs_json);
}

int wm_meter_window_end(wm_meter *m, int64_t id, const char *counts_json)
{
	return wm_meter_window_end_at(m, 0, id, counts_json);
}

int wm_meter_mark(wm_meter *m, const char *name, const char *attrs_json)
{
	return wm_meter_mark_at(m, 0, name, attrs_json);
}

int wm_meter_window_end_at(wm_meter *m, uint64_t mono_ns, int64_t id, const char *counts_json)
{
	int rc = usable(m);
	if (rc)
		return rc;
	if (counts_json && *counts_json) {
		/* counts are numbers (tokens, samples, steps ...) */
		json_t *o = json_loads(counts_json, 0, NULL);
		int bad = !json_is_object(o);
		const char *k;
		json_t *v;
		if (!bad)
			json_object_foreach(o, k, v) if (!json_is_number(v) || json_number_value(v) < 0) bad = 1;
		json_decref(o);
		if (bad)
			return -EINVAL;
	}
	return enqueue(m, mono_ns, EV_END, &id, NULL, counts_json);
}

int wm_meter_mark_at(wm_meter *m, uint64_t mono_ns, const char *name, const char *attrs_json)
{
	int rc = usable(m);
	if (!rc)
		rc = check_name(name);
	if (!rc)
		rc = enqueue(m, mono_ns, EV_MARK, NULL, name, attrs_json);
	return rc;
}

int wm_meter_windows_flush(wm_meter *m)
{
	int rc = usable(m);
	if (rc)
		return rc;
	struct wm_windows *w = m->win;
	pthread_mutex_lock(&w->qlock);
	uint64_t target = w->queued;
	while (w->done < target && !w->joined)
		pthread_cond_wait(&w->qdone, &w->qlock);
	rc = w->file.write_errno ? -w->file.write_errno : 0;
	pthread_mutex_unlock(&w->qlock);
	return rc;
}

/* ---- the meter's hooks (windows.h) ----------------------------------------------------- */

int wm_windows_start(wm_meter *m, const char *output_dir, char *err, size_t errlen)
{
	if (!output_dir)
		return 0; /* windows are recorded: without a recording the API answers ENOTSUP */
	struct wm_windows *w = calloc(1, sizeof *w);
	if (!w)
		return wm_err(err, errlen, -ENOMEM, "out of memory");
	w->dir_fd = -1;
	wm_jsonl_init(&w->file);
	wm_buf_init(&w->out);
	pthread_mutex_init(&w->qlock, NULL);
	pthread_cond_init(&w->qcond, NULL);
	pthread_cond_init(&w->qdone, NULL);
	m->win = w;
	size_t nd = m->n_dev ? m->n_dev : 1, nc = m->n_ch ? m->n_ch : 1, ng = 1;
	for (size_t k = 0; k < m->n_msrc; k++)
		if (m->msrc[k].src->n_devices * WM_GAUGE_N > ng)
			ng = m->msrc[k].src->n_devices * WM_GAUGE_N;
	w->e_now = calloc(nd * 8, sizeof(double));
	w->note_now = calloc(nd, 1);
	w->raw = calloc(nc, sizeof *w->raw);
	w->ok = calloc(nc, 1);
	w->gauges = calloc(ng, sizeof *w->gauges);
	if (!w->e_now || !w->note_now || !w->raw || !w->ok || !w->gauges)
		return wm_err(err, errlen, -ENOMEM, "out of memory");
	w->pw_now = w->e_now + nd;
	w->upd_s = w->e_now + 2 * nd;
	w->a_last = w->e_now + 3 * nd;
	w->e_last = w->e_now + 4 * nd;
	w->a_prev = w->e_now + 5 * nd;
	w->e_prev = w->e_now + 6 * nd;
	for (size_t i = 0; i < m->n_ch; i++) {
		int d = m->ch[i].device;
		if (d >= 0 && m->ch[i].ch->update_interval_s > w->upd_s[d])
			w->upd_s[d] = m->ch[i].ch->update_interval_s;
	}
	int rc = open_dir(w, output_dir, err, errlen);
	if (rc < 0)
		return rc;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&w->thread, NULL, edge_main, m);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0)
		return wm_err(err, errlen, rc, "cannot start the windows thread: %s", strerror(-rc));
	w->started = 1;
	w->have_cpu_clock = pthread_getcpuclockid(w->thread, &w->cpu_clock) == 0;
	return 0;
}

void wm_windows_note_proc(wm_meter *m)
{
	struct wm_windows *w = m->win;
	if (!w)
		return;
	pthread_mutex_lock(&m->read_lock);
	memcpy(w->a_prev, w->a_last, m->n_dev * sizeof(double));
	memcpy(w->e_prev, w->e_last, m->n_dev * sizeof(double));
	memcpy(w->a_last, m->attributed_j, m->n_dev * sizeof(double));
	memcpy(w->e_last, m->energy_j, m->n_dev * sizeof(double));
	w->proc_seq++;
	pthread_mutex_unlock(&m->read_lock);
}

double wm_windows_cpu_s(const wm_meter *m)
{
	struct wm_windows *w = m->win;
	if (!w || !w->started)
		return 0.0;
	struct timespec ts;
	pthread_mutex_lock(&w->qlock);
	double s = w->final_cpu_s;
	if (!w->joined && w->have_cpu_clock && clock_gettime(w->cpu_clock, &ts) == 0)
		s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	pthread_mutex_unlock(&w->qlock);
	return s;
}

void wm_windows_stop(wm_meter *m)
{
	struct wm_windows *w = m->win;
	if (!w || !w->started)
		return;
	pthread_mutex_lock(&w->qlock);
	w->stop = 1;
	pthread_cond_signal(&w->qcond);
	pthread_mutex_unlock(&w->qlock);
	pthread_mutex_lock(&w->qlock);
	int was = w->joined;
	pthread_mutex_unlock(&w->qlock);
	if (was)
		return;
	(void)pthread_join(w->thread, NULL);
	pthread_mutex_lock(&w->qlock);
	w->joined = 1;
	pthread_cond_broadcast(&w->qdone);
	pthread_mutex_unlock(&w->qlock);
	wm_jsonl_close(&w->file, 1);
	if (w->dir_fd >= 0) {
		close(w->dir_fd);
		w->dir_fd = -1;
	}
}

void wm_windows_free(wm_meter *m)
{
	struct wm_windows *w = m->win;
	if (!w)
		return;
	wm_windows_stop(m);
	for (size_t i = 0; i < w->nq; i++)
		free_edge(&w->q[i]);
	for (size_t i = 0; i < w->n_open; i++)
		free_open(&w->open[i]);
	free(w->q);
	free(w->work);
	free(w->open);
	free(w->e_now);
	free(w->note_now);
	free(w->raw);
	free(w->ok);
	free(w->gauges);
	wm_jsonl_close(&w->file, 0);
	if (w->dir_fd >= 0)
		close(w->dir_fd);
	wm_buf_free(&w->out);
	pthread_mutex_destroy(&w->qlock);
	pthread_cond_destroy(&w->qcond);
	pthread_cond_destroy(&w->qdone);
	free(w);
	m->win = NULL;
}
