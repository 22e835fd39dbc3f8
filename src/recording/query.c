/* query.c — questions asked of a recording beyond its summary (record.h):
 *
 *  - the energy of a time window, cut at sample boundaries, from the
 *    cumulative counters (so exact whatever the period: no integration);
 *  - the per-sample details the summary folds away: every RAPL zone's
 *    counter, each device's gauges (GPU utilisation, memory ...), and one row
 *    per process per process-tier line (CPU share, memory, attributed energy).
 *
 * Python's Results and the AIPowerMeter compatibility layer build on these,
 * so no total is recomputed outside C.
 *
 * The recording is first read by wm_recording_open (which validates every
 * line and counts the complete ones); samples.jsonl is then read a second time
 * for the details, taking exactly those complete lines (a cut last line is
 * left out as the reader left it out). Columns are discovered while reading:
 * a key first seen on line k is NaN (JSON null) on the lines before.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recording/record_priv.h"
#include "wattmeter.h"

/* ---- growable sets of equal-length columns ------------------------------- */

struct qcol {
	char *name;
	double *v;
};

struct qcols {
	struct qcol *c;
	size_t n, cap;  /* columns */
	size_t len;     /* rows in every column */
	size_t rcap;    /* rows allocated in every column */
};

static void qcols_free(struct qcols *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->c[i].name);
		free(s->c[i].v);
	}
	free(s->c);
	memset(s, 0, sizeof *s);
}

/* Adds a row of NaN to every column. 0 or -ENOMEM. */
static int qcols_row(struct qcols *s)
{
	if (s->len == s->rcap) {
		size_t nc = s->rcap ? s->rcap * 2 : 64;
		for (size_t i = 0; i < s->n; i++) {
			double *nv = realloc(s->c[i].v, nc * sizeof *nv);
			if (!nv)
				return -ENOMEM;
			s->c[i].v = nv;
		}
		s->rcap = nc;
	}
	for (size_t i = 0; i < s->n; i++)
		s->c[i].v[s->len] = NAN;
	s->len++;
	return 0;
}

static struct qcol *qcols_find(const struct qcols *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->c[i].name, name))
			return &s->c[i];
	return NULL;
}

/* Sets name's value on the last row, creating the column (NaN before). */
static int qcols_set(struct qcols *s, const char *name, double v)
{
	if (!s->len)
		return -EINVAL;
	struct qcol *c = qcols_find(s, name);
	if (!c) {
		if (s->n == s->cap) {
			size_t nc = s->cap ? s->cap * 2 : 8;
			struct qcol *n = realloc(s->c, nc * sizeof *n);
			if (!n)
				return -ENOMEM;
			s->c = n;
			s->cap = nc;
		}
		double *arr = malloc(s->rcap * sizeof *arr);
		char *nm = strdup(name);
		if (!arr || !nm) {
			free(arr);
			free(nm);
			return -ENOMEM;
		}
		for (size_t i = 0; i < s->len; i++)
			arr[i] = NAN;
		c = &s->c[s->n++];
		c->name = nm;
		c->v = arr;
	}
	c->v[s->len - 1] = v;
	return 0;
}

/* Sets "<prefix><key>" for every numeric member of obj (prefix may be ""). */
static int qcols_set_members(struct qcols *s, const char *prefix, const json_t *obj)
{
	const char *k;
	json_t *v;
	char name[512];
	json_object_foreach((json_t *)obj, k, v) {
		if (!json_is_number(v))
			continue;
		int n = snprintf(name, sizeof name, "%s%s", prefix, k);
		if (n < 0 || (size_t)n >= sizeof name)
			continue; /* an absurdly long key: left out rather than cut */
		int rc = qcols_set(s, name, json_number_value(v));
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int qcols_json(const struct qcols *s, wm_buf *b)
{
	wm_buf_puts(b, "{");
	for (size_t i = 0; !wm_buf_error(b) && i < s->n; i++) {
		wm_buf_puts(b, i ? ",\n" : "\n");
		wm_buf_json_str(b, s->c[i].name);
		wm_buf_puts(b, ":[");
		for (size_t j = 0; j < s->len; j++) {
			if (j)
				wm_buf_puts(b, ",");
			wm_buf_json_double(b, s->c[i].v[j]);
		}
		wm_buf_puts(b, "]");
	}
	wm_buf_puts(b, "}");
	return wm_buf_error(b);
}

/* ---- the details of every sample line ------------------------------------ */

struct qdetail {
	struct qcols rows;   /* t_s, zones_energy_j.<label>, gauges.<dev>.<name> */
	struct qcols procs;  /* row, t_s, pid, cpu_s, cpu_share, ..., energy_j.<dev> */
};

static void qdetail_free(struct qdetail *d)
{
	qcols_free(&d->rows);
	qcols_free(&d->procs);
}

static int take_detail_line(struct qdetail *d, const json_t *o, double t)
{
	int rc = qcols_row(&d->rows);
	if (!rc)
		rc = qcols_set(&d->rows, "t_s", t);
	const json_t *z = json_object_get(o, "zones_energy_j");
	if (!rc && json_is_object(z))
		rc = qcols_set_members(&d->rows, "zones_energy_j.", z);
	const json_t *g = json_object_get(o, "gauges");
	if (!rc && json_is_object(g)) {
		const char *dev;
		json_t *gv;
		char prefix[256];
		json_object_foreach((json_t *)g, dev, gv) {
			if (!json_is_object(gv))
				continue;
			int n = snprintf(prefix, sizeof prefix, "gauges.%s.", dev);
			if (n < 0 || (size_t)n >= sizeof prefix)
				continue;
			rc = qcols_set_members(&d->rows, prefix, gv);
			if (rc)
				break;
		}
	}
	const json_t *procs = json_object_get(o, "procs");
	if (!rc && json_is_array(procs)) {
		size_t i;
		json_t *p;
		json_array_foreach(procs, i, p) {
			const json_t *pid = json_object_get(p, "pid");
			if (!json_is_integer(pid) || json_integer_value(pid) <= 0)
				continue; /* as the summary skips it */
			rc = qcols_row(&d->procs);
			if (!rc)
				rc = qcols_set(&d->procs, "row", (double)(d->rows.len - 1));
			if (!rc)
				rc = qcols_set(&d->procs, "t_s", t);
			if (!rc)
				rc = qcols_set_members(&d->procs, "", p);
			/* nested numeric objects: energy_j.<dev>, and any per-device
			 * share a source adds (e.g. a GPU's per-process utilisation) */
			const char *k;
			json_t *v;
			char prefix[256];
			json_object_foreach(p, k, v) {
				if (rc || !json_is_object(v))
					continue;
				int n = snprintf(prefix, sizeof prefix, "%s.", k);
				if (n < 0 || (size_t)n >= sizeof prefix)
					continue;
				rc = qcols_set_members(&d->procs, prefix, v);
			}
			if (rc)
				break;
		}
	}
	return rc;
}

static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

/* Reads the details of the r->n_rows complete lines of dir/samples.jsonl
 * (or of the samples in memory, for a recording parsed from memory), with
 * the reader's line source: regular files only, in chunks, lines bounded. */
static int qdetail_read(const wm_recording *r, const char *dir, struct qdetail *d, char *err,
			size_t errlen)
{
	char path[4096];
	int n = snprintf(path, sizeof path, "%s/samples.jsonl", dir);
	if (n < 0 || (size_t)n >= sizeof path)
		return wm_err(err, errlen, -ENAMETOOLONG, "the recording path %s is too long; give a shorter one",
			      dir);
	struct wm_rec_lines l;
	if (r->mem_samples) {
		wm_rec_lines_mem(&l, r->mem_samples, r->mem_samples_len);
	} else {
		int dfd;
		do
			dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		while (dfd < 0 && errno == EINTR);
		int fd = -1;
		int rc = dfd < 0 ? -errno : wm_rec_open_regular(dfd, "samples.jsonl", &fd);
		if (dfd >= 0)
			close(dfd);
		if (rc < 0)
			return wm_err(err, errlen, rc, "cannot open %s: %s (was the recording moved while being read?)",
				      path, rc == -EINVAL ? "it is no longer a regular file" : strerror(-rc));
		wm_rec_lines_fd(&l, fd);
	}
	const char *line = NULL;
	size_t lineno = 0, taken = 0;
	int rc = 0;
	while (taken < r->n_rows) {
		size_t len = 0;
		int got = wm_rec_lines_next(&l, &line, &len);
		if (got <= 0) {
			rc = wm_err(err, errlen, got < 0 ? got : -EIO,
				    "%s ended after line %zu while %zu sample lines were expected: the file changed while being read; read it again",
				    path, lineno, r->n_rows);
			break;
		}
		lineno++;
		if (blank(line, len))
			continue;
		json_error_t je;
		json_t *o = json_loadb(line, len, 0, &je);
		if (!json_is_object(o)) {
			json_decref(o);
			rc = wm_err(err, errlen, -EBADMSG,
				    "%s line %zu no longer parses: the file changed while being read; read it again",
				    path, lineno);
			break;
		}
		rc = take_detail_line(d, o, wm_rec_cell(r, taken, WM_COL_T));
		json_decref(o);
		if (rc < 0) {
			rc = wm_err(err, errlen, rc, "cannot read %s line %zu: %s", path, lineno, strerror(-rc));
			break;
		}
		taken++;
	}
	wm_rec_lines_close(&l);
	return rc;
}

int wm_recording_detail_json(const wm_recording *r, wm_buf *out, char *err, size_t errlen)
{
	struct qdetail d;
	memset(&d, 0, sizeof d);
	int rc = qdetail_read(r, r->dir, &d, err, errlen);
	if (rc < 0) {
		qdetail_free(&d);
		return rc;
	}
	wm_buf_puts(out, "{\"rows\":");
	qcols_json(&d.rows, out);
	wm_buf_puts(out, ",\n\"procs\":");
	qcols_json(&d.procs, out);
	wm_buf_puts(out, "}\n");
	qdetail_free(&d);
	return wm_buf_error(out);
}

/* ---- the energy of a window ---------------------------------------------- */

/* The cumulative value of column col at row b: the last value given at or
 * before b, 0 before any (every energy is 0 at the start of the recording).
 * For a counter on every line this is its value at b; for one given only on
 * process-tier lines (attributed energy) it is the value at the last such
 * line: the window is then cut at that series' own sample boundaries. */
static double ffill_at(const wm_recording *r, size_t col, size_t b)
{
	for (size_t i = b + 1; i-- > 0;) {
		double v = wm_rec_cell(r, i, col);
		if (!isnan(v))
			return v;
	}
	return 0.0;
}

struct pentry {
	double pid, row;
	size_t idx;
};

static int pentry_cmp(const void *a, const void *b)
{
	const struct pentry *x = a, *y = b;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	if (x->row != y->row)
		return x->row < y->row ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Per process: its attributed energy in rows (b0, b1], for every device. */
static int window_procs(const wm_recording *r, const struct qcols *p, size_t b0, size_t b1, wm_buf *out)
{
	const struct qcol *pid = qcols_find(p, "pid"), *row = qcols_find(p, "row");
	wm_buf_puts(out, "\"processes\":{");
	if (!pid || !row || !p->len) {
		wm_buf_puts(out, "}");
		return wm_buf_error(out);
	}
	int rc = 0;
	struct pentry *e = malloc(p->len * sizeof *e);
	const struct qcol **ec = calloc(r->n_devs ? r->n_devs : 1, sizeof *ec);
	double *base = calloc(r->n_devs ? r->n_devs : 1, sizeof *base);
	double *last = calloc(r->n_devs ? r->n_devs : 1, sizeof *last);
	if (!e || !ec || !base || !last) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t k = 0; k < r->n_devs; k++) {
		char name[300];
		int n = snprintf(name, sizeof name, "energy_j.%s", r->devs[k].name);
		if (n > 0 && (size_t)n < sizeof name)
			ec[k] = qcols_find(p, name);
	}
	for (size_t i = 0; i < p->len; i++)
		e[i] = (struct pentry){pid->v[i], row->v[i], i};
	qsort(e, p->len, sizeof *e, pentry_cmp);
	bool first = true;
	for (size_t i = 0; !wm_buf_error(out) && i < p->len;) {
		size_t j = i;
		for (size_t k = 0; k < r->n_devs; k++)
			base[k] = last[k] = 0.0;
		/* entries of one pid, by row: values at or before b0 are the base,
		 * values at or before b1 the end */
		for (; j < p->len && e[j].pid == e[i].pid; j++) {
			double rw = e[j].row;
			for (size_t k = 0; k < r->n_devs; k++) {
				if (!ec[k])
					continue;
				double v = ec[k]->v[e[j].idx];
				if (isnan(v))
					continue;
				if (rw <= (double)b0)
					base[k] = v;
				if (rw <= (double)b1)
					last[k] = v;
			}
		}
		/* a process seen only outside the window is left out */
		bool inside = false;
		for (size_t q = i; q < j; q++)
			if (e[q].row > (double)b0 && e[q].row <= (double)b1)
				inside = true;
		if (inside) {
			wm_buf_printf(out, "%s\"%.0f\":{", first ? "" : ",", e[i].pid);
			first = false;
			bool f2 = true;
			for (size_t k = 0; k < r->n_devs; k++) {
				if (!ec[k])
					continue;
				wm_buf_puts(out, f2 ? "" : ",");
				f2 = false;
				wm_buf_json_str(out, r->devs[k].name);
				wm_buf_puts(out, ":");
				wm_buf_json_double(out, last[k] - base[k]);
			}
			wm_buf_puts(out, "}");
		}
		i = j;
	}
	wm_buf_puts(out, "}");
	rc = wm_buf_error(out);
out:
	free(e);
	free(ec);
	free(base);
	free(last);
	return rc;
}

int wm_recording_window_json(const wm_recording *r, double start_s, double end_s, wm_buf *out,
			     char *err, size_t errlen)
{
	if (!r->n_rows)
		return wm_err(err, errlen, -ENODATA,
			      "%s has no complete sample line, so no window can be taken; record for longer",
			      r->dir);
	double t_first = wm_rec_cell(r, 0, WM_COL_T), t_last = wm_rec_cell(r, r->n_rows - 1, WM_COL_T);
	if (!isnan(start_s) && !isnan(end_s) && start_s > end_s)
		return wm_err(err, errlen, -EINVAL,
			      "the window starts (%g s) after it ends (%g s); give start <= end (seconds since the start of the recording)",
			      start_s, end_s);
	/* b0: the first line at or after start; b1: the last at or before end */
	size_t b0 = 0, b1 = r->n_rows - 1;
	if (!isnan(start_s))
		while (b0 < r->n_rows && wm_rec_cell(r, b0, WM_COL_T) < start_s)
			b0++;
	if (!isnan(end_s))
		while (b1 + 1 > 0 && wm_rec_cell(r, b1, WM_COL_T) > end_s) {
			if (b1 == 0) {
				b1 = (size_t)-1;
				break;
			}
			b1--;
		}
	if (b0 >= r->n_rows || b1 == (size_t)-1 || b1 < b0)
		return wm_err(err, errlen, -ERANGE,
			      "no sample of %s lies in the window [%g, %g] s: its samples span %g to %g s; widen the window",
			      r->dir, isnan(start_s) ? t_first : start_s, isnan(end_s) ? t_last : end_s, t_first,
			      t_last);

	struct qdetail d;
	memset(&d, 0, sizeof d);
	int rc = qdetail_read(r, r->dir, &d, err, errlen);
	if (rc < 0)
		return rc;
	double t0 = wm_rec_cell(r, b0, WM_COL_T), t1 = wm_rec_cell(r, b1, WM_COL_T);
	wm_buf_puts(out, "{\"start_s\":");
	wm_buf_json_double(out, t0);
	wm_buf_puts(out, ",\"end_s\":");
	wm_buf_json_double(out, t1);
	wm_buf_puts(out, ",\"duration_s\":");
	wm_buf_json_double(out, t1 - t0);
	wm_buf_printf(out, ",\"first_row\":%zu,\"last_row\":%zu,\"energy_j\":{", b0, b1);
	bool first = true;
	for (size_t k = 0; k < r->n_devs; k++) {
		size_t c = wm_rec_dcol(k, WM_DCOL_ENERGY);
		wm_buf_puts(out, first ? "" : ",");
		first = false;
		wm_buf_json_str(out, r->devs[k].name);
		wm_buf_puts(out, ":");
		wm_buf_json_double(out, ffill_at(r, c, b1) - ffill_at(r, c, b0));
	}
	for (size_t k = 0; k < r->n_devs; k++) {
		bool attr = r->devs[k].has_attr || !strcmp(r->devs[k].name, "cpu") ||
			    !strcmp(r->devs[k].name, "dram");
		if (!attr)
			continue;
		size_t c = wm_rec_dcol(k, WM_DCOL_ATTR);
		char key[300];
		int n = snprintf(key, sizeof key, "%s_attributed", r->devs[k].name);
		if (n < 0 || (size_t)n >= sizeof key)
			continue; /* a device name too long for a key: left out */
		wm_buf_puts(out, first ? "" : ",");
		wm_buf_json_str(out, key);
		wm_buf_puts(out, ":");
		first = false;
		wm_buf_json_double(out, ffill_at(r, c, b1) - ffill_at(r, c, b0));
	}
	wm_buf_puts(out, "},");
	/* window_procs can also fail on its own allocations (-ENOMEM), which
	 * do not go through the buffer */
	rc = window_procs(r, &d.procs, b0, b1, out);
	if (!rc) {
		wm_buf_puts(out, "}\n");
		rc = wm_buf_error(out);
	}
	qdetail_free(&d);
	return rc;
}

/* ---- the public wrappers (wattmeter.h) ----------------------------------- */

static char *finish(wm_recording *rec, wm_buf *b, int rc, const char *dir, char *err, size_t errlen)
{
	wm_recording_free(rec);
	if (rc < 0 || !b->data) {
		wm_buf_free(b);
		errno = rc < 0 ? -rc : ENOMEM;
		if (errno == ENOMEM)
			(void)wm_err(err, errlen, -ENOMEM, "cannot read %s: out of memory", dir);
		return NULL;
	}
	return b->data;
}

char *wm_report_detail_json(const char *dir, char *err, size_t errlen)
{
	wm_recording *rec = NULL;
	int rc = wm_recording_open(dir, &rec, err, errlen);
	if (rc < 0) {
		errno = -rc;
		return NULL;
	}
	wm_buf b;
	wm_buf_init(&b);
	rc = wm_recording_detail_json(rec, &b, err, errlen);
	return finish(rec, &b, rc, dir, err, errlen);
}

char *wm_report_window_json(const char *dir, double start_s, double end_s, char *err, size_t errlen)
{
	wm_recording *rec = NULL;
	int rc = wm_recording_open(dir, &rec, err, errlen);
	if (rc < 0) {
		errno = -rc;
		return NULL;
	}
	wm_buf b;
	wm_buf_init(&b);
	rc = wm_recording_window_json(rec, start_s, end_s, &b, err, errlen);
	return finish(rec, &b, rc, dir, err, errlen);
}
