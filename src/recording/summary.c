/* summary.c — renders a read recording (record_priv.h): the summary JSON of
 * docs/recording.md "Summary", the human text of `wattmeter report DIR`, and
 * the columns for DataFrames. Keys come out in a fixed order: devices in the
 * order of meta.json, then their attributed keys; processes by PID.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recording/record_priv.h"
#include "recording/carbon.h"

#define TRY(expr)                   \
	do {                        \
		int rc_ = (expr);   \
		if (rc_ < 0)        \
			return rc_; \
	} while (0)

/* ---- shared ----------------------------------------------------------------- */

/* Energies reported for a process: the attributed devices, and any device a
 * process carried energy for. */
static bool proc_dev_key(const struct wm_recording *r, size_t k)
{
	if (r->devs[k].has_attr)
		return true;
	for (size_t i = 0; i < r->n_procs; i++)
		if (r->procs[i].energy_seen[k])
			return true;
	return false;
}

static double proc_total_j(const struct wm_recording *r, const struct wm_rec_proc *p)
{
	double t = 0;
	for (size_t k = 0; k < r->n_devs; k++)
		t += p->energy_j[k];
	return t;
}

static const char *proc_cmdline(const struct wm_rec_proc *p)
{
	if (p->cmdline && *p->cmdline)
		return p->cmdline;
	return p->comm ? p->comm : "";
}

static bool is_modeled(const struct wm_rec_dev *d)
{
	return strcmp(d->method, "modeled") == 0;
}

static bool is_gpu(const struct wm_rec_dev *d)
{
	return d->kind && strcmp(d->kind, "gpu") == 0;
}

/* The GPUs together: the whole machine's, the run's (CUDA_VISIBLE_DEVICES
 * of the command) and what was attributed to the measured processes. */
struct gpu_totals {
	size_t n;
	double energy_j, run_j, attributed_j;
	bool modeled;
};

static struct gpu_totals gpu_totals(const struct wm_recording *r)
{
	struct gpu_totals t = {0};
	for (size_t k = 0; k < r->n_devs; k++) {
		const struct wm_rec_dev *d = &r->devs[k];
		if (!is_gpu(d))
			continue;
		t.n++;
		t.energy_j += d->energy_j;
		t.attributed_j += d->attributed_j;
		if (d->used_by_run != 0)
			t.run_j += d->energy_j;
		t.modeled = t.modeled || is_modeled(d);
	}
	return t;
}

/* "gpus":[{index, name, uuid, energy_j, attributed_j, source, used_by_run}] */
static int json_gpus(const struct wm_recording *r, wm_buf *b)
{
	bool first = true;
	TRY(wm_buf_puts(b, ",\"gpus\":["));
	for (size_t k = 0; k < r->n_devs; k++) {
		const struct wm_rec_dev *d = &r->devs[k];
		if (!is_gpu(d))
			continue;
		TRY(wm_buf_puts(b, first ? "{\"device\":" : ",{\"device\":"));
		first = false;
		TRY(wm_buf_json_str(b, d->name));
		if (d->index >= 0)
			TRY(wm_buf_printf(b, ",\"index\":%lld", (long long)d->index));
		else
			TRY(wm_buf_puts(b, ",\"index\":null"));
		TRY(wm_buf_puts(b, ",\"name\":"));
		TRY(wm_buf_json_str(b, d->info_name));
		TRY(wm_buf_puts(b, ",\"uuid\":"));
		TRY(wm_buf_json_str(b, d->info_uuid));
		TRY(wm_buf_puts(b, ",\"energy_j\":"));
		TRY(wm_buf_json_double(b, d->energy_j));
		TRY(wm_buf_puts(b, ",\"attributed_j\":"));
		TRY(wm_buf_json_double(b, d->attributed_j));
		TRY(wm_buf_puts(b, ",\"source\":"));
		TRY(wm_buf_json_str(b, d->source_detail));
		TRY(wm_buf_printf(b, ",\"used_by_run\":%s}",
				  d->used_by_run < 0 ? "null" : d->used_by_run ? "true" : "false"));
	}
	return wm_buf_append(b, "]", 1);
}

struct proc_ref {
	const struct wm_rec_proc *p;
	double total_j;
};

static int by_pid(const void *a, const void *b)
{
	const struct proc_ref *x = a, *y = b;
	return (x->p->pid > y->p->pid) - (x->p->pid < y->p->pid);
}

/* most energy first, then most CPU, then lowest PID: deterministic */
static int by_energy(const void *a, const void *b)
{
	const struct proc_ref *x = a, *y = b;
	if (x->total_j != y->total_j)
		return x->total_j < y->total_j ? 1 : -1;
	if (x->p->cpu_s != y->p->cpu_s)
		return x->p->cpu_s < y->p->cpu_s ? 1 : -1;
	return by_pid(a, b);
}

/* A sorted array of the processes (caller frees); NULL with n_procs == 0 is
 * not an error. */
static struct proc_ref *sorted_procs(const struct wm_recording *r, int (*cmp)(const void *, const void *),
				     int *rc)
{
	*rc = 0;
	if (r->n_procs == 0)
		return NULL;
	struct proc_ref *v = calloc(r->n_procs, sizeof *v);
	if (!v) {
		*rc = -ENOMEM;
		return NULL;
	}
	for (size_t i = 0; i < r->n_procs; i++) {
		v[i].p = &r->procs[i];
		v[i].total_j = proc_total_j(r, &r->procs[i]);
	}
	qsort(v, r->n_procs, sizeof *v, cmp);
	return v;
}

/* energy / duration; NAN (JSON null) when the duration is not positive */
static double avg_w(const struct wm_recording *r, double energy_j)
{
	return r->duration_s > 0 ? energy_j / r->duration_s : NAN;
}

static double self_pct(const struct wm_recording *r)
{
	return r->duration_s > 0 ? r->self_cpu_s / r->duration_s * 100.0 : NAN;
}

/* ---- summary JSON ---------------------------------------------------------- */

static int json_key(wm_buf *b, bool *first, const char *key)
{
	if (!*first)
		TRY(wm_buf_append(b, ",", 1));
	*first = false;
	TRY(wm_buf_json_str(b, key));
	return wm_buf_append(b, ":", 1);
}

/* "<name>_attributed" as a JSON key */
static int json_attr_key(wm_buf *b, bool *first, const char *name)
{
	wm_buf k;
	wm_buf_init(&k);
	int rc = wm_buf_printf(&k, "%s_attributed", name);
	if (!rc)
		rc = json_key(b, first, k.data);
	wm_buf_free(&k);
	return rc;
}

static int json_processes(const struct wm_recording *r, wm_buf *b)
{
	int rc;
	struct proc_ref *v = sorted_procs(r, by_pid, &rc);
	if (rc < 0)
		return rc;
	rc = wm_buf_append(b, "{", 1);
	for (size_t i = 0; !rc && i < r->n_procs; i++) {
		const struct wm_rec_proc *p = v[i].p;
		char pid[32];
		int n = snprintf(pid, sizeof pid, "%lld", (long long)p->pid);
		if (n < 0 || (size_t)n >= sizeof pid) {
			rc = -EINVAL;
			break;
		}
		if (i)
			rc = wm_buf_append(b, ",", 1);
		if (!rc)
			rc = wm_buf_printf(b, "\"%s\":{\"pid\":%s,\"cmdline\":", pid, pid);
		if (!rc)
			rc = wm_buf_json_str(b, proc_cmdline(p));
		if (!rc)
			rc = wm_buf_puts(b, ",\"energy_j\":{");
		bool first = true;
		for (size_t k = 0; !rc && k < r->n_devs; k++) {
			if (!proc_dev_key(r, k))
				continue;
			rc = json_key(b, &first, r->devs[k].name);
			if (!rc)
				rc = wm_buf_json_double(b, p->energy_j[k]);
		}
		if (!rc)
			rc = wm_buf_puts(b, "},\"cpu_s\":");
		if (!rc)
			rc = wm_buf_json_double(b, p->cpu_s);
		if (!rc)
			rc = wm_buf_printf(b, ",\"peak_rss_bytes\":%llu}", (unsigned long long)p->peak_rss_bytes);
	}
	if (!rc)
		rc = wm_buf_append(b, "}", 1);
	free(v);
	return rc;
}

int wm_recording_summary_json(const wm_recording *r, wm_buf *b)
{
	bool first;
	TRY(wm_buf_printf(b, "{\"schema_version\":%lld,\"duration_s\":", (long long)r->schema_version));
	TRY(wm_buf_json_double(b, r->duration_s));

	TRY(wm_buf_puts(b, ",\"energy_j\":{"));
	first = true;
	for (size_t k = 0; k < r->n_devs; k++) {
		TRY(json_key(b, &first, r->devs[k].name));
		TRY(wm_buf_json_double(b, r->devs[k].energy_j));
	}
	for (size_t k = 0; k < r->n_devs; k++) {
		if (!r->devs[k].has_attr)
			continue;
		TRY(json_attr_key(b, &first, r->devs[k].name));
		TRY(wm_buf_json_double(b, r->devs[k].attributed_j));
	}
	struct gpu_totals gt = gpu_totals(r);
	if (gt.n) {
		TRY(json_key(b, &first, "gpu"));
		TRY(wm_buf_json_double(b, gt.energy_j));
		TRY(json_key(b, &first, "gpu_attributed"));
		TRY(wm_buf_json_double(b, gt.attributed_j));
		TRY(json_key(b, &first, "gpu_run"));
		TRY(wm_buf_json_double(b, gt.run_j));
	}

	TRY(wm_buf_puts(b, "},\"unattributed_j\":{"));
	first = true;
	for (size_t k = 0; k < r->n_devs; k++) {
		if (!r->devs[k].has_attr)
			continue;
		TRY(json_key(b, &first, r->devs[k].name));
		TRY(wm_buf_json_double(b, r->devs[k].energy_j - r->devs[k].attributed_j));
	}
	if (gt.n) {
		TRY(json_key(b, &first, "gpu"));
		TRY(wm_buf_json_double(b, gt.energy_j - gt.attributed_j));
	}

	TRY(wm_buf_puts(b, "},\"method\":{"));
	first = true;
	for (size_t k = 0; k < r->n_devs; k++) {
		TRY(json_key(b, &first, r->devs[k].name));
		TRY(wm_buf_json_str(b, r->devs[k].method));
	}
	for (size_t k = 0; k < r->n_devs; k++) {
		if (!r->devs[k].has_attr)
			continue;
		TRY(json_attr_key(b, &first, r->devs[k].name));
		TRY(wm_buf_json_str(b, r->devs[k].method));
	}
	if (gt.n) {
		const char *gm = gt.modeled ? "modeled" : "measured";
		TRY(json_key(b, &first, "gpu"));
		TRY(wm_buf_json_str(b, gm));
		TRY(json_key(b, &first, "gpu_attributed"));
		TRY(wm_buf_json_str(b, gm));
		TRY(json_key(b, &first, "gpu_run"));
		TRY(wm_buf_json_str(b, gm));
	}

	TRY(wm_buf_puts(b, "},\"source\":{"));
	first = true;
	for (size_t k = 0; k < r->n_devs; k++) {
		TRY(json_key(b, &first, r->devs[k].name));
		TRY(wm_buf_json_str(b, r->devs[k].source));
	}

	TRY(wm_buf_puts(b, "},\"power_w\":{"));
	first = true;
	for (size_t k = 0; k < r->n_devs; k++) {
		TRY(json_key(b, &first, r->devs[k].name));
		TRY(wm_buf_puts(b, "{\"avg\":"));
		TRY(wm_buf_json_double(b, avg_w(r, r->devs[k].energy_j)));
		TRY(wm_buf_puts(b, ",\"peak\":"));
		TRY(wm_buf_json_double(b, r->devs[k].peak_w));
		TRY(wm_buf_append(b, "}", 1));
	}

	TRY(wm_buf_append(b, "}", 1));
	if (gt.n)
		TRY(json_gpus(r, b));
	TRY(wm_buf_puts(b, ",\"processes\":"));
	TRY(json_processes(r, b));

	TRY(wm_buf_puts(b, ",\"self\":{\"cpu_s\":"));
	TRY(wm_buf_json_double(b, r->self_cpu_s));
	TRY(wm_buf_puts(b, ",\"cpu_pct\":"));
	TRY(wm_buf_json_double(b, self_pct(r)));
	TRY(wm_buf_printf(b, "},\"samples\":%zu,\"truncated\":%s,\"complete\":%s,\"exit_status\":", r->n_rows,
			  r->truncated ? "true" : "false", r->complete ? "true" : "false"));
	if (r->has_exit)
		TRY(wm_buf_printf(b, "%lld", (long long)r->exit_status));
	else
		TRY(wm_buf_puts(b, "null"));

	TRY(wm_buf_puts(b, ",\"command\":"));
	if (r->has_command) {
		TRY(wm_buf_append(b, "[", 1));
		for (size_t i = 0; i < r->n_command; i++) {
			if (i)
				TRY(wm_buf_append(b, ",", 1));
			TRY(wm_buf_json_str(b, r->command[i]));
		}
		TRY(wm_buf_append(b, "]", 1));
	} else {
		TRY(wm_buf_puts(b, "null"));
	}
	TRY(wm_buf_puts(b, ",\"start_utc\":"));
	if (r->start_utc)
		TRY(wm_buf_json_str(b, r->start_utc));
	else
		TRY(wm_buf_puts(b, "null"));
	return wm_buf_append(b, "}", 1);
}

/* ---- columns --------------------------------------------------------------- */

static int column(const struct wm_recording *r, wm_buf *b, bool *first, const char *prefix,
		  const char *name, size_t col)
{
	wm_buf k;
	wm_buf_init(&k);
	int rc = name ? wm_buf_printf(&k, "%s.%s", prefix, name) : wm_buf_puts(&k, prefix);
	if (!rc)
		rc = json_key(b, first, k.data);
	wm_buf_free(&k);
	if (!rc)
		rc = wm_buf_append(b, "[", 1);
	for (size_t i = 0; !rc && i < r->n_rows; i++) {
		if (i)
			rc = wm_buf_append(b, ",", 1);
		if (!rc)
			rc = wm_buf_json_double(b, wm_rec_cell(r, i, col)); /* NAN -> null */
	}
	if (!rc)
		rc = wm_buf_append(b, "]", 1);
	return rc;
}

int wm_recording_columns_json(const wm_recording *r, wm_buf *b)
{
	bool first = true;
	TRY(wm_buf_append(b, "{", 1));
	TRY(column(r, b, &first, "t_s", NULL, WM_COL_T));
	for (size_t k = 0; k < r->n_devs; k++)
		TRY(column(r, b, &first, "energy_j", r->devs[k].name, wm_rec_dcol(k, WM_DCOL_ENERGY)));
	for (size_t k = 0; k < r->n_devs; k++)
		TRY(column(r, b, &first, "power_w", r->devs[k].name, wm_rec_dcol(k, WM_DCOL_POWER)));
	for (size_t k = 0; k < r->n_devs; k++)
		if (r->devs[k].has_attr)
			TRY(column(r, b, &first, "attributed_j", r->devs[k].name, wm_rec_dcol(k, WM_DCOL_ATTR)));
	TRY(column(r, b, &first, "cpu_util", NULL, WM_COL_CPU_UTIL));
	TRY(column(r, b, &first, "self_cpu_s", NULL, WM_COL_SELF_CPU));
	TRY(column(r, b, &first, "mem_used_bytes", NULL, WM_COL_MEM_USED));
	return wm_buf_append(b, "}", 1);
}

/* ---- human text ------------------------------------------------------------ */

/* Appends s with control characters shown as '?': names and command lines
 * come from the recorded processes and must not drive the terminal. */
static int put_safe(wm_buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char c = (*p < 0x20 || *p == 0x7f) ? '?' : (char)*p;
		TRY(wm_buf_append(b, &c, 1));
	}
	return 0;
}

/* As put_safe, but newlines are kept: a multi-line fix (a udev rule written
 * with a here-document) must come out as lines that can be copied whole, at
 * column 0 (a here-document's terminator must start its line). */
static int put_safe_lines(wm_buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char c = *p == '\n' ? '\n' : (*p < 0x20 || *p == 0x7f) ? '?' : (char)*p;
		TRY(wm_buf_append(b, &c, 1));
	}
	return 0;
}

/* argv joined for display, quoting what a shell would need quoted */
static int put_command(wm_buf *b, char *const *argv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *a = argv[i];
		if (i)
			TRY(wm_buf_append(b, " ", 1));
		bool quote = !*a || strpbrk(a, " \t'\"\\$`!*?;&|<>()[]{}#~") != NULL;
		if (!quote) {
			TRY(put_safe(b, a));
			continue;
		}
		TRY(wm_buf_append(b, "'", 1));
		for (const char *p = a; *p; p++) {
			if (*p == '\'')
				TRY(wm_buf_puts(b, "'\\''"));
			else {
				char one[2] = {*p, '\0'};
				TRY(put_safe(b, one));
			}
		}
		TRY(wm_buf_append(b, "'", 1));
	}
	return 0;
}

/* v with an SI prefix, e.g. "12.35 kJ"; "-" when unknown. */
static int fmt_si(char *out, size_t len, double v, const char *unit)
{
	static const char *const prefix[] = {"", "k", "M", "G", "T", "P"};
	int n;
	if (isnan(v)) {
		n = snprintf(out, len, "-");
	} else {
		size_t i = 0;
		double a = fabs(v);
		while (a >= 1000.0 && i + 1 < WM_ARRAY_LEN(prefix)) {
			a /= 1000.0;
			i++;
		}
		double shown = v < 0 ? -a : a;
		if (a >= 1000.0)
			n = snprintf(out, len, "%.3g %s%s", shown, prefix[i], unit);
		else if (i > 0)
			n = snprintf(out, len, "%.2f %s%s", shown, prefix[i], unit);
		else if (a != 0 && a < 1.0)
			n = snprintf(out, len, "%.2f %s", shown, unit);
		else
			n = snprintf(out, len, "%.1f %s", shown, unit);
	}
	return (n < 0 || (size_t)n >= len) ? -EINVAL : 0;
}

/* joules, with watt-hours added from 1 Wh up: "12.35 kJ (3.43 Wh)" */
static int fmt_energy(char *out, size_t len, double j)
{
	TRY(fmt_si(out, len, j, "J"));
	if (isnan(j) || fabs(j) < 3600.0)
		return 0;
	char wh[48];
	TRY(fmt_si(wh, sizeof wh, j / 3600.0, "Wh"));
	size_t used = strlen(out);
	int n = snprintf(out + used, len - used, " (%s)", wh);
	return (n < 0 || (size_t)n >= len - used) ? -EINVAL : 0;
}

static int fmt_duration(char *out, size_t len, double s)
{
	int n;
	if (isnan(s))
		n = snprintf(out, len, "? s");
	else if (s < 60.0 || s >= 1e9)
		n = snprintf(out, len, "%.1f s", s);
	else {
		long long t = (long long)(s + 0.5);
		n = snprintf(out, len, "%.1f s = %lld:%02lld:%02lld", s, t / 3600, t / 60 % 60, t % 60);
	}
	return (n < 0 || (size_t)n >= len) ? -EINVAL : 0;
}

/* A small aligned table: cells are owned copies, shown with put_safe. */
struct table {
	char **cells;
	size_t ncols, nrows, cap;
};

static void table_free(struct table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
}

static int table_row(struct table *t, const char *const *cols)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		char **c = realloc(t->cells, cap * t->ncols * sizeof *c);
		if (!c)
			return -ENOMEM;
		t->cells = c;
		t->cap = cap;
	}
	char **row = t->cells + t->nrows * t->ncols;
	for (size_t i = 0; i < t->ncols; i++) {
		row[i] = strdup(cols[i]);
		if (!row[i]) {
			while (i-- > 0)
				free(row[i]);
			return -ENOMEM;
		}
	}
	t->nrows++;
	return 0;
}

/* display width: UTF-8 code points (all we print is single-width) */
static size_t text_width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		w += ((unsigned char)*s & 0xC0) != 0x80;
	return w;
}

/* Two spaces between columns; the last column is not padded. */
static int table_render(const struct table *t, const char *indent, wm_buf *b)
{
	size_t width[8] = {0};
	if (t->ncols > WM_ARRAY_LEN(width))
		return -EINVAL;
	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t w = text_width(t->cells[r * t->ncols + c]);
			if (w > width[c])
				width[c] = w;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		TRY(wm_buf_puts(b, indent));
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			TRY(put_safe(b, cell));
			if (c + 1 < t->ncols)
				TRY(wm_buf_printf(b, "%*s", (int)(width[c] - text_width(cell) + 2), ""));
		}
		TRY(wm_buf_append(b, "\n", 1));
	}
	return 0;
}

static int text_devices(const struct wm_recording *r, wm_buf *b)
{
	struct table t = {.ncols = 5};
	static const char *const head[] = {"device", "energy", "avg power", "peak power", "method"};
	wm_buf method;
	wm_buf_init(&method);
	int rc = table_row(&t, head);
	for (size_t k = 0; !rc && k < r->n_devs; k++) {
		const struct wm_rec_dev *d = &r->devs[k];
		char e[96], avg[48], peak[48];
		rc = fmt_energy(e, sizeof e, d->energy_j);
		if (!rc)
			rc = fmt_si(avg, sizeof avg, avg_w(r, d->energy_j), "W");
		if (!rc)
			rc = fmt_si(peak, sizeof peak, d->peak_w, "W");
		wm_buf_reset(&method);
		if (!rc && is_modeled(d))
			rc = wm_buf_printf(&method, "MODELED (%s%s%s: an estimate, no energy counter was read — see `wattmeter sensors`)",
					   *d->source ? d->source : "model",
					   r->model_name ? " " : "", r->model_name ? r->model_name : "");
		else if (!rc && is_gpu(d))
			rc = wm_buf_printf(&method, "%s (%s%s%s%s)", d->method, d->source, *d->source_detail ? " " : "",
					   d->source_detail,
					   d->used_by_run == 1 ? ", used by the run" :
					   d->used_by_run == 0 ? ", not used by the run" : "");
		else if (!rc)
			rc = wm_buf_printf(&method, "%s%s%s%s", d->method, *d->source ? " (" : "", d->source,
					   *d->source ? ")" : "");
		if (!rc) {
			const char *row[] = {d->name, e, avg, peak, method.data};
			rc = table_row(&t, row);
		}
	}
	if (!rc)
		rc = table_render(&t, "  ", b);
	wm_buf_free(&method);
	table_free(&t);
	struct gpu_totals gt = gpu_totals(r);
	if (!rc && gt.n > 1) {
		char all[96], run[96];
		rc = fmt_energy(all, sizeof all, gt.energy_j);
		if (!rc)
			rc = fmt_energy(run, sizeof run, gt.run_j);
		if (!rc)
			rc = wm_buf_printf(b, "  GPUs: %s on the whole machine, %s on the GPUs the run uses\n", all, run);
	}
	return rc;
}

/* Why counters were missing, when a device had to be modelled. */
static int text_sensor_notes(const struct wm_recording *r, wm_buf *b)
{
	bool modeled = false;
	for (size_t k = 0; k < r->n_devs; k++)
		modeled = modeled || is_modeled(&r->devs[k]);
	if (!modeled)
		return 0;
	for (size_t i = 0; i < r->n_sensors; i++) {
		const struct wm_rec_sensor *s = &r->sensors[i];
		if (strcmp(s->state, "absent") && strcmp(s->state, "permission denied") && strcmp(s->state, "error"))
			continue;
		TRY(wm_buf_puts(b, "  note: "));
		TRY(put_safe(b, s->name));
		TRY(wm_buf_puts(b, " "));
		TRY(put_safe(b, s->state));
		if (*s->detail) {
			TRY(wm_buf_puts(b, ": "));
			TRY(put_safe(b, s->detail));
		}
		if (*s->fix && strchr(s->fix, '\n')) {
			TRY(wm_buf_puts(b, "; fix, these lines:\n"));
			TRY(put_safe_lines(b, s->fix));
		} else if (*s->fix) {
			TRY(wm_buf_puts(b, "; fix: "));
			TRY(put_safe(b, s->fix));
		}
		TRY(wm_buf_append(b, "\n", 1));
	}
	return 0;
}

static int text_attributed(const struct wm_recording *r, wm_buf *b)
{
	bool any = false;
	for (size_t k = 0; k < r->n_devs; k++) {
		const struct wm_rec_dev *d = &r->devs[k];
		if (!d->has_attr)
			continue;
		char e[96];
		TRY(fmt_energy(e, sizeof e, d->attributed_j));
		TRY(wm_buf_puts(b, any ? ", " : "  attributed to the measured processes: "));
		any = true;
		TRY(put_safe(b, d->name));
		TRY(wm_buf_printf(b, " %s", e));
		if (d->energy_j > 0)
			TRY(wm_buf_printf(b, " (%.0f%%)", d->attributed_j / d->energy_j * 100.0));
	}
	return any ? wm_buf_append(b, "\n", 1) : 0;
}

static int text_processes(const struct wm_recording *r, int top_n, wm_buf *b)
{
	if (top_n <= 0 || r->n_procs == 0)
		return 0;
	int rc;
	struct proc_ref *v = sorted_procs(r, by_energy, &rc);
	if (rc < 0)
		return rc;
	size_t shown = r->n_procs < (size_t)top_n ? r->n_procs : (size_t)top_n;
	struct table t = {.ncols = 4};
	rc = wm_buf_puts(b, "  top processes by energy:\n");
	for (size_t i = 0; !rc && i < shown; i++) {
		char pid[32], e[96], cpu[48];
		int n = snprintf(pid, sizeof pid, "%lld", (long long)v[i].p->pid);
		rc = (n < 0 || (size_t)n >= sizeof pid) ? -EINVAL : 0;
		if (!rc)
			rc = fmt_energy(e, sizeof e, v[i].total_j);
		if (!rc) {
			n = snprintf(cpu, sizeof cpu, "%.1f s CPU", v[i].p->cpu_s);
			rc = (n < 0 || (size_t)n >= sizeof cpu) ? -EINVAL : 0;
		}
		if (!rc) {
			const char *row[] = {pid, e, cpu, proc_cmdline(v[i].p)};
			rc = table_row(&t, row);
		}
	}
	if (!rc)
		rc = table_render(&t, "    ", b);
	if (!rc && shown < r->n_procs)
		rc = wm_buf_printf(b, "    ... and %zu more (`wattmeter report --json` lists them all)\n",
				   r->n_procs - shown);
	table_free(&t);
	free(v);
	return rc;
}

int wm_recording_summary_text(const wm_recording *r, int top_n, wm_buf *b)
{
	char dur[64];
	TRY(fmt_duration(dur, sizeof dur, r->duration_s));
	TRY(wm_buf_puts(b, "wattmeter: "));
	if (r->has_command && r->n_command)
		TRY(put_command(b, r->command, r->n_command));
	else {
		TRY(wm_buf_puts(b, "recording "));
		TRY(put_safe(b, r->dir));
	}
	TRY(wm_buf_puts(b, "  ("));
	if (r->has_exit)
		TRY(wm_buf_printf(b, "exit %lld, ", (long long)r->exit_status));
	TRY(wm_buf_printf(b, "%s, %zu sample%s)\n", dur, r->n_rows, r->n_rows == 1 ? "" : "s"));

	if (r->n_devs)
		TRY(text_devices(r, b));
	else
		TRY(wm_buf_puts(b, "  no energy source was recorded (see `wattmeter sensors`)\n"));
	TRY(text_sensor_notes(r, b));
	TRY(text_attributed(r, b));
	TRY(text_processes(r, top_n, b));
	if (!isnan(r->self_cpu_s)) {
		TRY(wm_buf_printf(b, "  measuring cost %.2f s CPU", r->self_cpu_s));
		double pct = self_pct(r);
		if (!isnan(pct))
			TRY(wm_buf_printf(b, " (%.2f%% of one core)", pct));
		TRY(wm_buf_append(b, "\n", 1));
	}
	for (size_t i = 0; i < r->n_warnings; i++) {
		TRY(wm_buf_puts(b, "  warning: "));
		TRY(put_safe(b, r->warnings[i]));
		TRY(wm_buf_append(b, "\n", 1));
	}
	if (r->n_rows == 0)
		TRY(wm_buf_puts(b, "  no samples were recorded: the run ended or was killed before the first one\n"));
	if (!r->complete)
		TRY(wm_buf_puts(b, "  recording incomplete: the run was killed; totals up to the last complete sample\n"));
	if (r->truncated)
		TRY(wm_buf_puts(b, "  note: the last line of samples.jsonl was cut mid-write and was ignored\n"));
	return 0;
}

/* ---- carbon and cost (carbon.h) --------------------------------------------- */

/* Devices that do not overlap: psys (the platform) already holds the CPU
 * package and DRAM, so where it exists cpu and dram are left out of the
 * machine total; everything else (gpuN, ...) is added. */
static bool in_total(const struct wm_recording *r, size_t k)
{
	const char *n = r->devs[k].name;
	if (strcmp(n, "cpu") && strcmp(n, "dram"))
		return true;
	for (size_t i = 0; i < r->n_devs; i++)
		if (strcmp(r->devs[i].name, "psys") == 0)
			return false;
	return true;
}

double wm_recording_total_j(const wm_recording *r, wm_buf *basis)
{
	double t = 0;
	bool first = true;
	for (size_t k = 0; k < r->n_devs; k++) {
		if (!in_total(r, k))
			continue;
		t += r->devs[k].energy_j;
		if (basis) {
			if (!first && wm_buf_puts(basis, " + ") < 0)
				return NAN;
			if (wm_buf_puts(basis, r->devs[k].name) < 0)
				return NAN;
		}
		first = false;
	}
	return t;
}

double wm_recording_attributed_j(const wm_recording *r)
{
	double t = 0;
	for (size_t k = 0; k < r->n_devs; k++)
		/* the attributed devices (cpu, dram, gpuN) do not overlap one
		 * another; psys is never split among processes */
		if (r->devs[k].has_attr && strcmp(r->devs[k].name, "psys") != 0)
			t += r->devs[k].attributed_j;
	return t;
}

int wm_recording_fmt_energy(char *out, size_t len, double energy_j)
{
	return fmt_energy(out, len, energy_j);
}

int wm_recording_fmt_duration(char *out, size_t len, double s)
{
	return fmt_duration(out, len, s);
}

int wm_recording_fmt_power(char *out, size_t len, double power_w)
{
	return fmt_si(out, len, power_w, "W");
}

static int json_opt_double(wm_buf *b, bool *first, const char *key, double v)
{
	TRY(json_key(b, first, key));
	return wm_buf_json_double(b, v); /* NAN -> null */
}

static int json_money(const struct wm_carbon_opts *o, wm_buf *b, bool *first, const char *prefix, double energy_j)
{
	wm_buf k;
	wm_buf_init(&k);
	int rc = wm_buf_printf(&k, "%skwh", prefix);
	if (!rc)
		rc = json_opt_double(b, first, k.data, wm_carbon_kwh(o, energy_j));
	wm_buf_reset(&k);
	if (!rc)
		rc = wm_buf_printf(&k, "%sco2e_g", prefix);
	if (!rc)
		rc = json_opt_double(b, first, k.data, wm_carbon_co2e_g(o, energy_j));
	wm_buf_reset(&k);
	if (!rc)
		rc = wm_buf_printf(&k, "%scost", prefix);
	if (!rc)
		rc = json_opt_double(b, first, k.data, wm_carbon_cost(o, energy_j));
	wm_buf_free(&k);
	return rc;
}

const char wm_carbon_hint[] =
	"no grid intensity given, so no CO2e figure: add --grid-intensity G (gCO2e/kWh, or a country code from `wattmeter report --list-grids`)";

int wm_recording_carbon_json(const wm_recording *r, const struct wm_carbon_opts *o, wm_buf *b)
{
	bool first = true;
	double total = wm_recording_total_j(r, NULL);
	TRY(wm_buf_append(b, "{", 1));
	TRY(json_opt_double(b, &first, "energy_j", total));
	TRY(json_key(b, &first, "basis"));
	TRY(wm_buf_append(b, "[", 1));
	bool f2 = true;
	for (size_t k = 0; k < r->n_devs; k++) {
		if (!in_total(r, k))
			continue;
		if (!f2)
			TRY(wm_buf_append(b, ",", 1));
		f2 = false;
		TRY(wm_buf_json_str(b, r->devs[k].name));
	}
	TRY(wm_buf_append(b, "]", 1));
	TRY(json_opt_double(b, &first, "pue", o->pue));
	TRY(json_opt_double(b, &first, "grid_intensity_g_per_kwh", o->has_intensity ? o->intensity_g_per_kwh : NAN));
	TRY(json_key(b, &first, "grid_intensity_source"));
	TRY(o->has_intensity ? wm_buf_json_str(b, o->provenance) : wm_buf_puts(b, "null"));
	TRY(json_opt_double(b, &first, "price_per_kwh", o->has_price ? o->price_per_kwh : NAN));
	TRY(json_key(b, &first, "currency"));
	TRY(o->has_price ? wm_buf_json_str(b, o->currency) : wm_buf_puts(b, "null"));
	TRY(json_money(o, b, &first, "", total));
	double attr = wm_recording_attributed_j(r);
	TRY(json_opt_double(b, &first, "attributed_energy_j", attr));
	TRY(json_money(o, b, &first, "attributed_", attr));
	TRY(json_key(b, &first, "devices"));
	TRY(wm_buf_append(b, "{", 1));
	bool f3 = true;
	for (size_t k = 0; k < r->n_devs; k++) {
		TRY(json_key(b, &f3, r->devs[k].name));
		bool f4 = true;
		TRY(wm_buf_append(b, "{", 1));
		TRY(json_money(o, b, &f4, "", r->devs[k].energy_j));
		TRY(wm_buf_append(b, "}", 1));
	}
	TRY(wm_buf_append(b, "}", 1));
	if (!o->has_intensity) {
		TRY(json_key(b, &first, "note"));
		TRY(wm_buf_json_str(b, wm_carbon_hint));
	}
	return wm_buf_append(b, "}", 1);
}

int wm_recording_summary_json_carbon(const wm_recording *r, const struct wm_carbon_opts *o, wm_buf *b)
{
	size_t start = b->len;
	TRY(wm_recording_summary_json(r, b));
	/* reopen the object: drop its closing brace, add "carbon" */
	if (b->len == start || b->data[b->len - 1] != '}')
		return -EINVAL;
	b->len--;
	b->data[b->len] = '\0';
	TRY(wm_buf_puts(b, ",\"carbon\":"));
	TRY(wm_recording_carbon_json(r, o, b));
	return wm_buf_append(b, "}", 1);
}

/* "12.3 g CO2e" / cost, with the attributed share in brackets */
static int text_money(wm_buf *b, const struct wm_carbon_opts *o, double total, double attr, bool is_cost)
{
	char v[64], a[64];
	if (is_cost) {
		TRY(wm_carbon_fmt_cost(v, sizeof v, wm_carbon_cost(o, total), o->currency));
		TRY(wm_carbon_fmt_cost(a, sizeof a, wm_carbon_cost(o, attr), o->currency));
	} else {
		TRY(wm_carbon_fmt_co2e(v, sizeof v, wm_carbon_co2e_g(o, total)));
		TRY(wm_carbon_fmt_co2e(a, sizeof a, wm_carbon_co2e_g(o, attr)));
	}
	TRY(wm_buf_puts(b, v));
	if (attr > 0)
		TRY(wm_buf_printf(b, " (%s attributed)", a));
	return 0;
}

int wm_recording_carbon_text(const wm_recording *r, const struct wm_carbon_opts *o, wm_buf *b)
{
	if (r->n_devs == 0)
		return 0;
	wm_buf basis;
	wm_buf_init(&basis);
	double total = wm_recording_total_j(r, &basis);
	double attr = wm_recording_attributed_j(r);
	char e[96], kwh[64];
	int rc = fmt_energy(e, sizeof e, total);
	if (!rc)
		rc = wm_carbon_fmt_kwh(kwh, sizeof kwh, wm_carbon_kwh(o, total));
	if (!rc)
		rc = wm_buf_printf(b, "  machine energy: %s = %s", e, kwh);
	if (!rc)
		rc = wm_buf_puts(b, " (");
	if (!rc)
		rc = put_safe(b, basis.data ? basis.data : "");
	if (!rc && o->pue_given)
		rc = wm_buf_printf(b, ", PUE %.2f applied to kWh, CO2e and cost", o->pue);
	if (!rc)
		rc = wm_buf_puts(b, ")\n");
	wm_buf_free(&basis);
	if (rc)
		return rc;
	if (o->has_intensity) {
		TRY(wm_buf_puts(b, "  CO2e: "));
		TRY(text_money(b, o, total, attr, false));
		TRY(wm_buf_printf(b, " at %g gCO2e/kWh (", o->intensity_g_per_kwh));
		TRY(put_safe(b, o->provenance));
		TRY(wm_buf_puts(b, ")\n"));
	} else {
		TRY(wm_buf_printf(b, "  CO2e: %s\n", wm_carbon_hint));
	}
	if (o->has_price) {
		TRY(wm_buf_puts(b, "  cost: "));
		TRY(text_money(b, o, total, attr, true));
		TRY(wm_buf_printf(b, " at %g %s/kWh (user-given)\n", o->price_per_kwh, o->currency));
	}
	return 0;
}

/* ---- several runs side by side ------------------------------------------------ */

/* The devices of all runs, first appearance first; names borrowed. */
static int union_devices(const wm_recording *const *recs, size_t n, const char ***out, size_t *n_out)
{
	size_t cap = 0;
	for (size_t i = 0; i < n; i++)
		cap += recs[i]->n_devs;
	*n_out = 0;
	*out = calloc(cap ? cap : 1, sizeof **out);
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < recs[i]->n_devs; k++) {
			const char *name = recs[i]->devs[k].name;
			bool seen = false;
			for (size_t j = 0; j < *n_out && !seen; j++)
				seen = strcmp((*out)[j], name) == 0;
			if (!seen)
				(*out)[(*n_out)++] = name;
		}
	return 0;
}

int wm_recording_union_devices(const wm_recording *const *recs, size_t n, const char ***out, size_t *n_out)
{
	return union_devices(recs, n, out, n_out);
}

/* The device's index in r, or -1 */
static long dev_index(const struct wm_recording *r, const char *name)
{
	for (size_t k = 0; k < r->n_devs; k++)
		if (strcmp(r->devs[k].name, name) == 0)
			return (long)k;
	return -1;
}

int wm_recording_compare_json(const wm_recording *const *recs, size_t n, const struct wm_carbon_opts *o, wm_buf *b)
{
	const char **devs = NULL;
	size_t nd = 0;
	TRY(union_devices(recs, n, &devs, &nd));
	int rc = wm_buf_puts(b, "{\"devices\":[");
	for (size_t j = 0; !rc && j < nd; j++) {
		if (j)
			rc = wm_buf_append(b, ",", 1);
		if (!rc)
			rc = wm_buf_json_str(b, devs[j]);
	}
	free(devs);
	if (!rc)
		rc = wm_buf_puts(b, "],\"runs\":[");
	for (size_t i = 0; !rc && i < n; i++) {
		if (i)
			rc = wm_buf_append(b, ",", 1);
		if (!rc)
			rc = wm_buf_puts(b, "{\"dir\":");
		if (!rc)
			rc = wm_buf_json_str(b, recs[i]->dir);
		if (!rc)
			rc = wm_buf_puts(b, ",\"summary\":");
		if (!rc)
			rc = wm_recording_summary_json_carbon(recs[i], o, b);
		if (!rc)
			rc = wm_buf_append(b, "}", 1);
	}
	if (!rc)
		rc = wm_buf_puts(b, "]}");
	return rc;
}

/* One table of runs [i0, i1) (at most 7: the table has 8 columns). */
static int compare_chunk(const wm_recording *const *recs, size_t i0, size_t i1, const char **devs, size_t nd,
			 const struct wm_carbon_opts *o, wm_buf *b)
{
	enum { CELL = 160 };
	size_t n = i1 - i0;
	struct table t = {.ncols = n + 1};
	char cells[8][CELL];
	const char *row_ptrs[8];
	int rc = 0;
	for (size_t i = 0; i <= n; i++)
		row_ptrs[i] = cells[i];
	cells[0][0] = '\0';
	for (size_t i = 1; !rc && i <= n; i++) {
		int m = snprintf(cells[i], CELL, "run %zu", i0 + i);
		rc = (m < 0 || m >= CELL) ? -EINVAL : 0;
	}
	if (!rc)
		rc = table_row(&t, row_ptrs);
	for (size_t row = 0; !rc && row < nd + 6; row++) {
		if ((row == nd + 4 && !o->has_intensity) || (row == nd + 5 && !o->has_price))
			continue;
		for (size_t i = 0; !rc && i < n; i++) {
			const struct wm_recording *r = recs[i0 + i];
			char *c = cells[i + 1];
			double total = wm_recording_total_j(r, NULL);
			if (row == 0) {
				rc = fmt_duration(c, CELL, r->duration_s);
			} else if (row <= nd) {
				long k = dev_index(r, devs[row - 1]);
				if (k < 0) {
					(void)snprintf(c, CELL, "-");
				} else {
					rc = fmt_energy(c, CELL, r->devs[k].energy_j);
					if (!rc && is_modeled(&r->devs[k])) {
						size_t used = strlen(c);
						(void)snprintf(c + used, CELL - used, " (modeled)");
					}
				}
			} else if (row == nd + 1) {
				rc = fmt_energy(c, CELL, total);
			} else if (row == nd + 2) {
				rc = fmt_energy(c, CELL, wm_recording_attributed_j(r));
			} else if (row == nd + 3) {
				rc = wm_carbon_fmt_kwh(c, CELL, wm_carbon_kwh(o, total));
			} else if (row == nd + 4) {
				rc = wm_carbon_fmt_co2e(c, CELL, wm_carbon_co2e_g(o, total));
			} else {
				rc = wm_carbon_fmt_cost(c, CELL, wm_carbon_cost(o, total), o->currency);
			}
		}
		if (rc)
			break;
		int m;
		if (row == 0)
			m = snprintf(cells[0], CELL, "duration");
		else if (row <= nd)
			m = snprintf(cells[0], CELL, "%s", devs[row - 1]);
		else
			m = snprintf(cells[0], CELL, "%s",
				     row == nd + 1 ? "machine total" : row == nd + 2 ? "attributed" : row == nd + 3 ? "kWh" : row == nd + 4 ? "CO2e" : "cost");
		if (m < 0 || m >= CELL)
			(void)snprintf(cells[0], CELL, "?");
		rc = table_row(&t, row_ptrs);
	}
	if (!rc)
		rc = table_render(&t, "  ", b);
	table_free(&t);
	return rc;
}

int wm_recording_compare_text(const wm_recording *const *recs, size_t n, const struct wm_carbon_opts *o, wm_buf *b)
{
	const char **devs = NULL;
	size_t nd = 0;
	TRY(union_devices(recs, n, &devs, &nd));
	int rc = wm_buf_printf(b, "wattmeter: %zu recordings compared\n", n);
	for (size_t i0 = 0; !rc && i0 < n; i0 += 7) {
		if (i0)
			rc = wm_buf_puts(b, "\n");
		if (!rc)
			rc = compare_chunk(recs, i0, i0 + 7 < n ? i0 + 7 : n, devs, nd, o, b);
	}
	free(devs);
	for (size_t i = 0; !rc && i < n; i++) {
		rc = wm_buf_printf(b, "  run %zu: ", i + 1);
		if (!rc)
			rc = put_safe(b, recs[i]->dir);
		if (!rc && recs[i]->has_command && recs[i]->n_command) {
			rc = wm_buf_puts(b, "  (");
			if (!rc)
				rc = put_command(b, recs[i]->command, recs[i]->n_command);
			if (!rc)
				rc = wm_buf_puts(b, ")");
		}
		if (!rc && !recs[i]->complete)
			rc = wm_buf_puts(b, "  [incomplete: the run was killed]");
		if (!rc)
			rc = wm_buf_puts(b, "\n");
	}
	if (!rc && o->has_intensity) {
		rc = wm_buf_printf(b, "  CO2e at %g gCO2e/kWh (", o->intensity_g_per_kwh);
		if (!rc)
			rc = put_safe(b, o->provenance);
		if (!rc)
			rc = wm_buf_puts(b, ")\n");
	} else if (!rc) {
		rc = wm_buf_printf(b, "  CO2e: %s\n", wm_carbon_hint);
	}
	if (!rc && o->has_price)
		rc = wm_buf_printf(b, "  cost at %g %s/kWh (user-given)\n", o->price_per_kwh, o->currency);
	if (!rc && o->pue_given)
		rc = wm_buf_printf(b, "  kWh, CO2e and cost include a PUE of %.2f\n", o->pue);
	if (!rc)
		rc = wm_buf_puts(b, "  machine total: devices that do not overlap (psys holds cpu and dram where present)\n");
	return rc;
}
