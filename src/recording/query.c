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
 * The reader (record_read.c) takes every line's details into columns in its
 * one pass (wm_rec_detail_take_line, here, so the shapes live in one file);
 * every query then reads those columns: windows by binary search on t_s,
 * per-process energies from an index sorted by (pid, row) built once.
 * Columns are discovered while reading: a key first seen on line k is NaN
 * (JSON null) on the lines before.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recording/record_priv.h"
#include "recording/record_scan.h"
#include "wattmeter.h"

/* ---- growable sets of equal-length columns ------------------------------- */

static void qcols_free(struct wm_rec_cols *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->c[i].name);
		free(s->c[i].v);
	}
	free(s->c);
	memset(s, 0, sizeof *s);
}

int wm_rec_cols_row(struct wm_rec_cols *s)
{
	s->hint = 0;
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

const struct wm_rec_col *wm_rec_cols_find(const struct wm_rec_cols *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->c[i].name, name))
			return &s->c[i];
	return NULL;
}

static bool qcol_is(const struct wm_rec_col *c, const char *a, size_t al, const char *b, size_t bl)
{
	return c->nlen == al + bl && wm_scan_eq(c->name, a, al) && wm_scan_eq(c->name + al, b, bl);
}

/* As wm_rec_cols_find for the name a + b, but looks first where the last
 * name was found's successor is: lines repeat their keys in the same order,
 * so this is almost always one comparison. */
static struct wm_rec_col *qcols_find_next(struct wm_rec_cols *s, const char *a, size_t al, const char *b,
					  size_t bl)
{
	if (s->hint < s->n && qcol_is(&s->c[s->hint], a, al, b, bl))
		return &s->c[s->hint++];
	for (size_t i = 0; i < s->n; i++)
		if (qcol_is(&s->c[i], a, al, b, bl)) {
			s->hint = i + 1;
			return &s->c[i];
		}
	return NULL;
}

int wm_rec_cols_set(struct wm_rec_cols *s, const char *a, size_t al, const char *b, size_t bl, double v)
{
	if (!s->len)
		return -EINVAL;
	struct wm_rec_col *c = qcols_find_next(s, a, al, b, bl);
	if (!c) {
		if (s->n == s->cap) {
			size_t nc = s->cap ? s->cap * 2 : 8;
			struct wm_rec_col *n = realloc(s->c, nc * sizeof *n);
			if (!n)
				return -ENOMEM;
			s->c = n;
			s->cap = nc;
		}
		double *arr = malloc(s->rcap * sizeof *arr);
		char *nm = malloc(al + bl + 1);
		if (!arr || !nm) {
			free(arr);
			free(nm);
			return -ENOMEM;
		}
		memcpy(nm, a, al);
		memcpy(nm + al, b, bl);
		nm[al + bl] = '\0';
		for (size_t i = 0; i < s->len; i++)
			arr[i] = NAN;
		c = &s->c[s->n++];
		c->name = nm;
		c->nlen = al + bl;
		c->v = arr;
		s->hint = s->n;
	}
	c->v[s->len - 1] = v;
	return 0;
}

/* Sets name's value on the last row, creating the column (NaN before). */
static int qcols_set(struct wm_rec_cols *s, const char *name, double v)
{
	return wm_rec_cols_set(s, name, strlen(name), "", 0, v);
}

/* Sets "<prefix><key>" for every numeric member of obj (prefix may be ""). */
static int qcols_set_members(struct wm_rec_cols *s, const char *prefix, const json_t *obj)
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

static int qcols_json(const struct wm_rec_cols *s, wm_buf *b)
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

void wm_rec_detail_free(struct wm_recording *r)
{
	qcols_free(&r->drows);
	qcols_free(&r->dprocs);
	free(r->pidx);
	r->pidx = NULL;
}

int wm_rec_detail_take_line(struct wm_recording *r, const json_t *o, double t)
{
	struct wm_rec_cols *rows = &r->drows, *pr = &r->dprocs;
	rows->hint = 0;
	int rc = wm_rec_cols_row(rows);
	if (!rc)
		rc = qcols_set(rows, "t_s", t);
	const json_t *z = json_object_get(o, "zones_energy_j");
	if (!rc && json_is_object(z))
		rc = qcols_set_members(rows, "zones_energy_j.", z);
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
			rc = qcols_set_members(rows, prefix, gv);
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
			pr->hint = 0;
			rc = wm_rec_cols_row(pr);
			if (!rc)
				rc = qcols_set(pr, "row", (double)(rows->len - 1));
			if (!rc)
				rc = qcols_set(pr, "t_s", t);
			if (!rc)
				rc = qcols_set_members(pr, "", p);
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
				rc = qcols_set_members(pr, prefix, v);
			}
			if (rc)
				break;
		}
	}
	return rc;
}

static int pentry_cmp(const void *a, const void *b)
{
	const struct wm_rec_pidx *x = a, *y = b;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	if (x->row != y->row)
		return x->row < y->row ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* A pid's entries, while pidx_place counts and places them. */
struct pid_slot {
	double pid;
	size_t count, next; /* count: 0 = an empty slot */
};

static size_t pid_slot_of(const struct pid_slot *t, size_t cap, double pid)
{
	uint64_t x;
	memcpy(&x, &pid, sizeof x);
	size_t h = (size_t)((x * 0x9E3779B97F4A7C15ull) >> 20) & (cap - 1);
	while (t[h].count && t[h].pid != pid)
		h = (h + 1) & (cap - 1);
	return h;
}

static int slot_cmp(const void *a, const void *b)
{
	const struct pid_slot *x = *(const struct pid_slot *const *)a, *y = *(const struct pid_slot *const *)b;
	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/* out[0, n) = the entries (pid[i], row[i], i) sorted as pentry_cmp sorts
 * them, in linear time when the rows never go back along i (as the reader
 * adds them): each pid's entries are then placed in i order, which is row
 * order, after those of the smaller pids (the distinct pids alone are
 * sorted: a few, or a few thousand). 1 when a row goes back (a process
 * object's own "row" member overwrote one: the caller sorts), 0, -ENOMEM. */
static int pidx_place(struct wm_rec_pidx *out, const double *pid, const double *row, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (!(row[i] >= row[i - 1]))
			return 1;
	size_t cap = 64, used = 0;
	struct pid_slot *t = calloc(cap, sizeof *t);
	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t h = pid_slot_of(t, cap, pid[i]);
		if (!t[h].count) {
			if ((used + 1) * 2 > cap) { /* at most half full: rehash into twice the room */
				struct pid_slot *nt = calloc(cap * 2, sizeof *nt);
				if (!nt) {
					free(t);
					return -ENOMEM;
				}
				for (size_t j = 0; j < cap; j++)
					if (t[j].count)
						nt[pid_slot_of(nt, cap * 2, t[j].pid)] = t[j];
				free(t);
				t = nt;
				cap *= 2;
				h = pid_slot_of(t, cap, pid[i]);
			}
			t[h].pid = pid[i];
			used++;
		}
		t[h].count++;
	}
	struct pid_slot **order = malloc(used * sizeof *order);
	if (!order) {
		free(t);
		return -ENOMEM;
	}
	size_t k = 0;
	for (size_t j = 0; j < cap; j++)
		if (t[j].count)
			order[k++] = &t[j];
	qsort(order, used, sizeof *order, slot_cmp);
	size_t at = 0;
	for (k = 0; k < used; k++) {
		order[k]->next = at;
		at += order[k]->count;
	}
	free(order);
	for (size_t i = 0; i < n; i++)
		out[t[pid_slot_of(t, cap, pid[i])].next++] = (struct wm_rec_pidx){pid[i], row[i], i};
	free(t);
	return 0;
}

int wm_rec_detail_finish(struct wm_recording *r)
{
	const struct wm_rec_col *pid = wm_rec_cols_find(&r->dprocs, "pid"),
				*row = wm_rec_cols_find(&r->dprocs, "row");
	free(r->pidx);
	r->pidx = NULL;
	if (!pid || !row || !r->dprocs.len)
		return 0;
	r->pidx = malloc(r->dprocs.len * sizeof *r->pidx);
	if (!r->pidx)
		return -ENOMEM;
	int rc = pidx_place(r->pidx, pid->v, row->v, r->dprocs.len);
	if (rc != 1)
		return rc;
	for (size_t i = 0; i < r->dprocs.len; i++)
		r->pidx[i] = (struct wm_rec_pidx){pid->v[i], row->v[i], i};
	qsort(r->pidx, r->dprocs.len, sizeof *r->pidx, pentry_cmp);
	return 0;
}

size_t wm_report_nbytes(const wm_recording *r)
{
	size_t n = r->n_rows * r->stride * sizeof(double);
	n += r->drows.len * r->drows.n * sizeof(double) + r->dprocs.len * r->dprocs.n * sizeof(double);
	if (r->pidx)
		n += r->dprocs.len * sizeof *r->pidx;
	return n;
}

int wm_recording_detail_json(const wm_recording *r, wm_buf *out, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	wm_buf_puts(out, "{\"rows\":");
	qcols_json(&r->drows, out);
	wm_buf_puts(out, ",\n\"procs\":");
	qcols_json(&r->dprocs, out);
	wm_buf_puts(out, "}\n");
	return wm_buf_error(out);
}

/* ---- the energy of a window ---------------------------------------------- */

size_t wm_rec_row_at_or_after(const struct wm_recording *r, double t)
{
	size_t lo = 0, hi = r->n_rows; /* the answer is in [lo, hi] */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (wm_rec_cell(r, mid, WM_COL_T) < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

size_t wm_rec_row_at_or_before(const struct wm_recording *r, double t)
{
	size_t lo = 0, hi = r->n_rows; /* first row with t_s > t */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (wm_rec_cell(r, mid, WM_COL_T) <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? lo - 1 : (size_t)-1;
}

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

/* In the entries e[lo, hi) of one pid (by row): the first with row > b. */
static size_t first_row_after(const struct wm_rec_pidx *e, size_t lo, size_t hi, double b)
{
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (e[mid].row <= b)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The last value of column c among entries e[lo, end) (by row), 0 if none. */
static double last_value(const struct wm_rec_pidx *e, size_t lo, size_t end, const double *c)
{
	for (size_t q = end; q-- > lo;)
		if (!isnan(c[e[q].idx]))
			return c[e[q].idx];
	return 0.0;
}

/* Per process: its attributed energy in rows (b0, b1], for every device,
 * from the index sorted by (pid, row): two binary searches per process. */
static int window_procs(const wm_recording *r, size_t b0, size_t b1, wm_buf *out)
{
	const struct wm_rec_cols *p = &r->dprocs;
	const struct wm_rec_pidx *e = r->pidx;
	wm_buf_puts(out, "\"processes\":{");
	if (!e || !p->len) {
		wm_buf_puts(out, "}");
		return wm_buf_error(out);
	}
	const struct wm_rec_col **ec = calloc(r->n_devs ? r->n_devs : 1, sizeof *ec);
	if (!ec)
		return -ENOMEM;
	for (size_t k = 0; k < r->n_devs; k++) {
		char name[300];
		int n = snprintf(name, sizeof name, "energy_j.%s", r->devs[k].name);
		if (n > 0 && (size_t)n < sizeof name)
			ec[k] = wm_rec_cols_find(p, name);
	}
	bool first = true;
	for (size_t i = 0; !wm_buf_error(out) && i < p->len;) {
		size_t j = i + 1;
		while (j < p->len && e[j].pid == e[i].pid)
			j++;
		/* entries of one pid, by row: values at or before b0 are the base,
		 * values at or before b1 the end; a process seen only outside the
		 * window is left out */
		size_t u0 = first_row_after(e, i, j, (double)b0), u1 = first_row_after(e, u0, j, (double)b1);
		if (u1 > u0) {
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
				wm_buf_json_double(out, last_value(e, i, u1, ec[k]->v) - last_value(e, i, u0, ec[k]->v));
			}
			wm_buf_puts(out, "}");
		}
		i = j;
	}
	wm_buf_puts(out, "}");
	free(ec);
	return wm_buf_error(out);
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
	size_t b0 = isnan(start_s) ? 0 : wm_rec_row_at_or_after(r, start_s);
	size_t b1 = isnan(end_s) ? r->n_rows - 1 : wm_rec_row_at_or_before(r, end_s);
	if (b0 >= r->n_rows || b1 == (size_t)-1 || b1 < b0)
		return wm_err(err, errlen, -ERANGE,
			      "no sample of %s lies in the window [%g, %g] s: its samples span %g to %g s; widen the window",
			      r->dir, isnan(start_s) ? t_first : start_s, isnan(end_s) ? t_last : end_s, t_first,
			      t_last);

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
	/* window_procs can also fail on its own allocation (-ENOMEM), which
	 * does not go through the buffer */
	int rc = window_procs(r, b0, b1, out);
	if (!rc) {
		wm_buf_puts(out, "}\n");
		rc = wm_buf_error(out);
	}
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

/* ---- series by table (wattmeter.h: Python's Results reads these) --------- */

/* Series i of a table: name, values at base[row * stride], n rows; false
 * past the last. The columns table follows wm_recording_columns_json's
 * order and names. */
struct qseries {
	const char *name;
	const double *base;
	size_t stride, n;
	const double *t;     /* t_s of each element, same stride */
	size_t t_stride;
};

static bool series_get(const wm_recording *r, int table, size_t i, struct qseries *q, char *scratch,
		       size_t scratch_len)
{
	if (table == WM_TABLE_ROWS || table == WM_TABLE_PROCS) {
		const struct wm_rec_cols *s = table == WM_TABLE_ROWS ? &r->drows : &r->dprocs;
		if (i >= s->n)
			return false;
		const struct wm_rec_col *t = wm_rec_cols_find(s, "t_s");
		*q = (struct qseries){s->c[i].name, s->c[i].v, 1, s->len, t ? t->v : NULL, 1};
		return true;
	}
	if (table != WM_TABLE_COLUMNS)
		return false;
	size_t col;
	const char *prefix = NULL, *fixed = NULL;
	size_t n_attr = 0;
	for (size_t k = 0; k < r->n_devs; k++)
		n_attr += r->devs[k].has_attr;
	size_t nd = r->n_devs;
	if (i == 0) {
		fixed = "t_s";
		col = WM_COL_T;
	} else if (i < 1 + nd) {
		prefix = "energy_j";
		col = wm_rec_dcol(i - 1, WM_DCOL_ENERGY);
		fixed = r->devs[i - 1].name;
	} else if (i < 1 + 2 * nd) {
		prefix = "power_w";
		col = wm_rec_dcol(i - 1 - nd, WM_DCOL_POWER);
		fixed = r->devs[i - 1 - nd].name;
	} else if (i < 1 + 2 * nd + n_attr) {
		size_t want = i - 1 - 2 * nd, k = 0;
		for (;; k++)
			if (r->devs[k].has_attr && want-- == 0)
				break;
		prefix = "attributed_j";
		col = wm_rec_dcol(k, WM_DCOL_ATTR);
		fixed = r->devs[k].name;
	} else {
		static const char *const tail[] = {"cpu_util", "self_cpu_s", "mem_used_bytes"};
		static const size_t tcol[] = {WM_COL_CPU_UTIL, WM_COL_SELF_CPU, WM_COL_MEM_USED};
		size_t j = i - 1 - 2 * nd - n_attr;
		if (j >= 3)
			return false;
		fixed = tail[j];
		col = tcol[j];
	}
	if (prefix) {
		int n = snprintf(scratch, scratch_len, "%s.%s", prefix, fixed);
		if (n < 0 || (size_t)n >= scratch_len)
			(void)snprintf(scratch, scratch_len, "%s.?", prefix);
		fixed = scratch;
	}
	*q = (struct qseries){fixed, r->rows ? r->rows + col * r->cap_rows : NULL, 1, r->n_rows,
			      r->rows ? r->rows + WM_COL_T * r->cap_rows : NULL, 1};
	return true;
}

size_t wm_report_series(const wm_recording *r, int table, size_t i, const char **name, double *out)
{
	/* a columns series' name is made in a buffer per thread: the caller
	 * reads it before its next call */
	static _Thread_local char scratch[320];
	struct qseries q;
	if (!series_get(r, table, i, &q, scratch, sizeof scratch)) {
		*name = NULL;
		return 0;
	}
	*name = q.name;
	if (out)
		for (size_t j = 0; j < q.n; j++)
			out[j] = q.base[j * q.stride];
	return q.n;
}

int wm_report_series_stats(const wm_recording *r, int table, size_t i, double start_s, double end_s,
			   size_t *count, double *sum, double *max)
{
	char scratch[320];
	struct qseries q;
	*count = 0;
	*sum = 0.0;
	*max = NAN;
	if (!series_get(r, table, i, &q, scratch, sizeof scratch))
		return -EINVAL;
	size_t lo = 0, hi = q.n;
	if (table != WM_TABLE_PROCS) { /* rows: cut by binary search on t_s */
		if (!isnan(start_s))
			lo = wm_rec_row_at_or_after(r, start_s);
		if (!isnan(end_s)) {
			size_t b = wm_rec_row_at_or_before(r, end_s);
			hi = b == (size_t)-1 ? 0 : b + 1;
		}
	}
	if (table != WM_TABLE_PROCS && q.stride == 1) {
		/* one contiguous array: a tight loop (NaN compares false, so it
		 * falls out of both the count and the max) */
		size_t c = 0;
		double sm = 0.0, mx = -INFINITY;
		for (size_t j = lo; j < hi; j++) {
			double v = q.base[j];
			bool ok = v == v;
			c += ok;
			sm += ok ? v : 0.0;
			mx = (ok && v > mx) ? v : mx;
		}
		*count = c;
		*sum = sm;
		*max = c ? mx : NAN;
		return 0;
	}
	for (size_t j = lo; j < hi; j++) {
		double v = q.base[j * q.stride];
		if (isnan(v))
			continue;
		if (table == WM_TABLE_PROCS && q.t) {
			double t = q.t[j];
			if (isnan(t) || (!isnan(start_s) && t < start_s) || (!isnan(end_s) && t > end_s))
				continue;
		}
		(*count)++;
		*sum += v;
		if (isnan(*max) || v > *max)
			*max = v;
	}
	return 0;
}
