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

/* ---- shared ----------------------------------------------------------------- */

/* Energies reported for a process: the attributed devices, and any device a
 * process carried energy for (noted by the reader, so this is O(1): a scan
 * of every process here, for every process, took minutes at 100,000). */
static bool proc_dev_key(const struct wm_recording *r, size_t k)
{
	return r->devs[k].has_attr || r->devs[k].proc_energy_seen;
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

/* "gpus":[{index, name, uuid, energy_j, attributed_j, source, source_detail,
 * used_by_run}]: source and source_detail as meta.json's devices[] name them
 * ("nvml", "energy-counter"), so "source" means the same everywhere. */
static void json_gpus(const struct wm_recording *r, wm_buf *b)
{
	bool first = true;
	wm_buf_puts(b, ",\"gpus\":[");
	for (size_t k = 0; k < r->n_devs; k++) {
		const struct wm_rec_dev *d = &r->devs[k];
		if (!is_gpu(d))
			continue;
		wm_buf_puts(b, first ? "{\"device\":" : ",{\"device\":");
		first = false;
		wm_buf_json_str(b, d->name);
		if (d->index >= 0)
			wm_buf_printf(b, ",\"index\":%lld", (long long)d->index);
		else
			wm_buf_puts(b, ",\"index\":null");
		wm_buf_puts(b, ",\"name\":");
		wm_buf_json_str(b, d->info_name);
		wm_buf_puts(b, ",\"uuid\":");
		wm_buf_json_str(b, d->info_uuid);
		wm_buf_puts(b, ",\"energy_j\":");
		wm_buf_json_double(b, d->energy_j);
		wm_buf_puts(b, ",\"attributed_j\":");
		wm_buf_json_double(b, d->attributed_j);
		wm_buf_puts(b, ",\"source\":");
		wm_buf_json_str(b, d->source);
		wm_buf_puts(b, ",\"source_detail\":");
		wm_buf_json_str(b, d->source_detail);
		wm_buf_printf(b, ",\"used_by_run\":%s}", d->used_by_run < 0 ? "null" : d->used_by_run ? "true" : "false");
	}
	wm_buf_append(b, "]", 1);
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

/* Device k's energy over the span its samples cover (energies are
 * cumulative from t_s = 0): not over meta's duration_s, which is longer when
 * the samples were cut short. NAN (JSON null, "-") when that span is not
 * positive: a baseline line alone closes no interval. */
double wm_recording_avg_w(const wm_recording *r, size_t k)
{
	const struct wm_rec_dev *d = &r->devs[k];
	return d->energy_t_s > 0 ? d->energy_j / d->energy_t_s : NAN;
}

static double self_pct(const struct wm_recording *r)
{
	return r->duration_s > 0 ? r->self_cpu_s / r->duration_s * 100.0 : NAN;
}

/* ---- summary JSON ---------------------------------------------------------- */

static void json_key(wm_buf *b, bool *first, const char *key)
{
	if (!*first)
		wm_buf_append(b, ",", 1);
	*first = false;
	wm_buf_json_str(b, key);
	wm_buf_append(b, ":", 1);
}

/* "<name>_attributed" as a JSON key */
/* "<prefix><suffix>" as a JSON key. The key is built in a scratch buffer, so
 * its ENOMEM is returned here (and is not b's): callers check the result. */
/* "<a><b2><c>" as a JSON key. The key is built in a scratch buffer, so its
 * ENOMEM is returned here (it is not b's): callers check the result. */
static int json_key_cat(wm_buf *b, bool *first, const char *a, const char *b2, const char *c)
{
	wm_buf k;
	wm_buf_init(&k);
	wm_buf_printf(&k, "%s%s%s", a, b2, c);
	int rc = wm_buf_error(&k);
	if (!rc) {
		json_key(b, first, k.data);
		rc = wm_buf_error(b);
	}
	wm_buf_free(&k);
	return rc;
}

/* The processes outside the command's tree (--include-*): how many, their
 * CPU and their attributed energy per device, apart (they are in the
 * attributed totals too). */
struct included_sum {
	size_t n;
	double cpu_s;
	double *energy_j;   /* [n_devs] */
};

static int included_sum(const struct wm_recording *r, struct included_sum *s)
{
	*s = (struct included_sum){0};
	s->energy_j = calloc(r->n_devs ? r->n_devs : 1, sizeof *s->energy_j);
	if (!s->energy_j)
		return -ENOMEM;
	for (size_t i = 0; i < r->n_procs; i++) {
		const struct wm_rec_proc *p = &r->procs[i];
		if (!p->included)
			continue;
		s->n++;
		s->cpu_s += p->cpu_s;
		for (size_t k = 0; k < r->n_devs; k++)
			if (p->energy_seen[k] && isfinite(p->energy_j[k]))
				s->energy_j[k] += p->energy_j[k];
	}
	return 0;
}

/* ",\"ranks\":{"R":{"n_procs","cpu_s","attributed_j":{dev:J}}}": the
 * energy attributed to each job rank's processes (meter/job.c); {} if none. */
static void json_ranks(const struct wm_recording *r, wm_buf *b)
{
	wm_buf_puts(b, ",\"ranks\":{");
	int64_t *seen = calloc(r->n_procs ? r->n_procs : 1, sizeof *seen);
	size_t ns = 0;
	for (size_t i = 0; seen && i < r->n_procs; i++) {
		int64_t rk = r->procs[i].rank;
		if (rk < 0)
			continue;
		bool dup = false;
		for (size_t k = 0; k < ns && !dup; k++)
			dup = seen[k] == rk;
		if (dup)
			continue;
		seen[ns++] = rk;
		size_t n = 0;
		double cpu = 0;
		wm_buf_printf(b, "%s\"%lld\":{", ns > 1 ? "," : "", (long long)rk);
		for (size_t j = 0; j < r->n_procs; j++)
			if (r->procs[j].rank == rk) {
				n++;
				cpu += r->procs[j].cpu_s;
			}
		wm_buf_printf(b, "\"n_procs\":%zu,\"cpu_s\":", n);
		wm_buf_json_double(b, cpu);
		wm_buf_puts(b, ",\"attributed_j\":{");
		bool first = true;
		for (size_t k = 0; k < r->n_devs; k++) {
			if (!proc_dev_key(r, k))
				continue;
			double e = 0;
			for (size_t j = 0; j < r->n_procs; j++)
				if (r->procs[j].rank == rk && r->procs[j].energy_seen[k])
					e += r->procs[j].energy_j[k];
			json_key(b, &first, r->devs[k].name);
			wm_buf_json_double(b, e);
		}
		wm_buf_puts(b, "}}");
	}
	free(seen);
	wm_buf_puts(b, "}");
}

/* ",\"included\":{...}" or ",\"included\":null" when nothing was included. */
static void json_included(const struct wm_recording *r, wm_buf *b)
{
	struct included_sum s;
	if (included_sum(r, &s) < 0) {
		wm_buf_puts(b, ",\"included\":null");
		return;
	}
	if (!s.n) {
		wm_buf_puts(b, ",\"included\":null");
		free(s.energy_j);
		return;
	}
	wm_buf_printf(b, ",\"included\":{\"n_procs\":%zu,\"cpu_s\":", s.n);
	wm_buf_json_double(b, s.cpu_s);
	wm_buf_puts(b, ",\"attributed_j\":{");
	bool first = true;
	for (size_t k = 0; k < r->n_devs; k++) {
		if (!proc_dev_key(r, k))
			continue;
		json_key(b, &first, r->devs[k].name);
		wm_buf_json_double(b, s.energy_j[k]);
	}
	wm_buf_puts(b, "}}");
	free(s.energy_j);
}

static int json_processes(const struct wm_recording *r, wm_buf *b)
{
	int rc;
	struct proc_ref *v = sorted_procs(r, by_pid, &rc);
	if (rc < 0)
		return rc;
	wm_buf_append(b, "{", 1);
	for (size_t i = 0; i < r->n_procs; i++) {
		const struct wm_rec_proc *p = v[i].p;
		char pid[32];
		int n = snprintf(pid, sizeof pid, "%lld", (long long)p->pid);
		if (n < 0 || (size_t)n >= sizeof pid) {
			free(v);
			return -EINVAL;
		}
		if (i)
			wm_buf_append(b, ",", 1);
		wm_buf_printf(b, "\"%s\":{\"pid\":%s,\"cmdline\":", pid, pid);
		wm_buf_json_str(b, proc_cmdline(p));
		wm_buf_puts(b, ",\"energy_j\":{");
		bool first = true;
		for (size_t k = 0; k < r->n_devs; k++) {
			if (!proc_dev_key(r, k))
				continue;
			json_key(b, &first, r->devs[k].name);
			wm_buf_json_double(b, p->energy_j[k]);
		}
		wm_buf_puts(b, "},\"cpu_s\":");
		wm_buf_json_double(b, p->cpu_s);
		wm_buf_printf(b, ",\"peak_rss_bytes\":%llu,\"included\":%s", (unsigned long long)p->peak_rss_bytes,
			      p->included ? "true" : "false");
		if (p->rank >= 0)
			wm_buf_printf(b, ",\"rank\":%lld", (long long)p->rank);
		else
			wm_buf_puts(b, ",\"rank\":null");
		wm_buf_puts(b, ",\"container\":");
		if (p->container)
			wm_buf_json_str(b, p->container);
		else
			wm_buf_puts(b, "null");
		wm_buf_puts(b, ",\"pod\":");
		if (p->pod)
			wm_buf_json_str(b, p->pod);
		else
			wm_buf_puts(b, "null");
		if (p->nspid > 0)
			wm_buf_printf(b, ",\"nspid\":%lld}", (long long)p->nspid);
		else
			wm_buf_puts(b, ",\"nspid\":null}");
	}
	wm_buf_append(b, "}", 1);
	free(v);
	return wm_buf_error(b);
}

/* ---- the writer's state: still running, lines not written ------------------- */

/* "running_pid" (the writer still holds the lock; null if not running) and
 * "unwritten" (spans of lines the writer could not write). */
static void json_writer_state(const struct wm_recording *r, wm_buf *b)
{
	wm_buf_puts(b, ",\"running_pid\":");
	if (r->running && r->writer_pid > 0)
		wm_buf_printf(b, "%lld", (long long)r->writer_pid);
	else
		wm_buf_puts(b, r->running ? "0" : "null");
	wm_buf_puts(b, ",\"unwritten\":[");
	for (size_t i = 0; i < r->n_unwritten; i++) {
		const struct wm_rec_unwritten *u = &r->unwritten[i];
		wm_buf_puts(b, i ? ",{\"from_s\":" : "{\"from_s\":");
		wm_buf_json_double(b, u->from_s);
		wm_buf_puts(b, ",\"to_s\":");
		wm_buf_json_double(b, u->to_s);
		wm_buf_puts(b, ",\"samples\":");
		wm_buf_json_double(b, u->samples);
		wm_buf_puts(b, ",\"error\":");
		wm_buf_json_str(b, u->error);
		wm_buf_printf(b, ",\"resumed\":%s}", u->resumed ? "true" : "false");
	}
	wm_buf_puts(b, "]");
}

int wm_recording_summary_json(const wm_recording *r, wm_buf *b)
{
	bool first;
	int rc;
	wm_buf_printf(b, "{\"schema_version\":%lld", (long long)r->schema_version);
	/* As an unrecorded run's summary says "recorded": false (cmd_run.c,
	 * meter.py): a summary read from a folder names it. */
	wm_buf_puts(b, ",\"recorded\":true,\"recording\":");
	if (r->dir)
		wm_buf_json_str(b, r->dir);
	else
		wm_buf_puts(b, "null");
	wm_buf_puts(b, ",\"duration_s\":");
	wm_buf_json_double(b, r->duration_s);

	wm_buf_puts(b, ",\"energy_j\":{");
	first = true;
	for (size_t k = 0; k < r->n_devs; k++) {
		json_key(b, &first, r->devs[k].name);
		wm_buf_json_double(b, r->devs[k].energy_j);
	}
	for (size_t k = 0; k < r->n_devs; k++) {
		if (!r->devs[k].has_attr)
			continue;
		rc = json_key_cat(b, &first, r->devs[k].name, "_attributed", "");
		if (rc)
			return rc;
		wm_buf_json_double(b, r->devs[k].attributed_j);
	}
	struct gpu_totals gt = gpu_totals(r);
	if (gt.n) {
		json_key(b, &first, "gpu");
		wm_buf_json_double(b, gt.energy_j);
		json_key(b, &first, "gpu_attributed");
		wm_buf_json_double(b, gt.attributed_j);
		json_key(b, &first, "gpu_run");
		wm_buf_json_double(b, gt.run_j);
	}

	wm_buf_puts(b, "},\"unattributed_j\":{");
	first = true;
	for (size_t k = 0; k < r->n_devs; k++) {
		if (!r->devs[k].has_attr)
			continue;
		json_key(b, &first, r->devs[k].name);
		wm_buf_json_double(b, r->devs[k].energy_j - r->devs[k].attributed_j);
	}
	if (gt.n) {
		json_key(b, &first, "gpu");
		wm_buf_json_double(b, gt.energy_j - gt.attributed_j);
	}

	wm_buf_puts(b, "},\"method\":{");
	first = true;
	for (size_t k = 0; k < r->n_devs; k++) {
		json_key(b, &first, r->devs[k].name);
		wm_buf_json_str(b, r->devs[k].method);
	}
	for (size_t k = 0; k < r->n_devs; k++) {
		if (!r->devs[k].has_attr)
			continue;
		rc = json_key_cat(b, &first, r->devs[k].name, "_attributed", "");
		if (rc)
			return rc;
		wm_buf_json_str(b, r->devs[k].method);
	}
	if (gt.n) {
		const char *gm = gt.modeled ? "modeled" : "measured";
		json_key(b, &first, "gpu");
		wm_buf_json_str(b, gm);
		json_key(b, &first, "gpu_attributed");
		wm_buf_json_str(b, gm);
		json_key(b, &first, "gpu_run");
		wm_buf_json_str(b, gm);
	}

	wm_buf_puts(b, "},\"source\":{");
	first = true;
	for (size_t k = 0; k < r->n_devs; k++) {
		json_key(b, &first, r->devs[k].name);
		wm_buf_json_str(b, r->devs[k].source);
	}

	wm_buf_puts(b, "},\"power_w\":{");
	first = true;
	for (size_t k = 0; k < r->n_devs; k++) {
		json_key(b, &first, r->devs[k].name);
		wm_buf_puts(b, "{\"avg\":");
		wm_buf_json_double(b, wm_recording_avg_w(r, k));
		wm_buf_puts(b, ",\"peak\":");
		wm_buf_json_double(b, r->devs[k].peak_w);
		wm_buf_append(b, "}", 1);
	}

	wm_buf_append(b, "}", 1);
	rc = wm_rec_gaps_json(r, b);
	if (rc)
		return rc;
	if (gt.n)
		json_gpus(r, b);
	wm_buf_puts(b, ",\"processes\":");
	rc = json_processes(r, b);
	if (rc)
		return rc;
	json_included(r, b);
	json_ranks(r, b);
	wm_buf_puts(b, ",\"cgroup\":");
	if (r->cgroup_path) {
		wm_buf_puts(b, "{\"path\":");
		wm_buf_json_str(b, r->cgroup_path);
		wm_buf_printf(b, ",\"version\":%d,\"cpu_s\":", r->cgroup_version);
		wm_buf_json_double(b, r->cgroup_cpu_s);
		wm_buf_puts(b, "}");
	} else {
		wm_buf_puts(b, "null");
	}

	wm_buf_puts(b, ",\"self\":{\"cpu_s\":");
	wm_buf_json_double(b, r->self_cpu_s);
	wm_buf_puts(b, ",\"cpu_pct\":");
	wm_buf_json_double(b, self_pct(r));
	wm_buf_printf(b, "},\"samples\":%zu,\"samples_end_s\":", r->n_rows);
	wm_buf_json_double(b, r->n_rows ? r->samples_end_s : NAN);
	wm_buf_printf(b, ",\"samples_short\":%s,\"truncated\":%s,\"complete\":%s,\"exit_status\":",
		      r->samples_short ? "true" : "false", r->truncated ? "true" : "false",
		      r->complete ? "true" : "false");
	if (r->has_exit)
		wm_buf_printf(b, "%lld", (long long)r->exit_status);
	else
		wm_buf_puts(b, "null");

	wm_buf_puts(b, ",\"command\":");
	if (r->has_command) {
		wm_buf_append(b, "[", 1);
		for (size_t i = 0; i < r->n_command; i++) {
			if (i)
				wm_buf_append(b, ",", 1);
			wm_buf_json_str(b, r->command[i]);
		}
		wm_buf_append(b, "]", 1);
	} else {
		wm_buf_puts(b, "null");
	}
	wm_buf_puts(b, ",\"start_utc\":");
	if (r->start_utc)
		wm_buf_json_str(b, r->start_utc);
	else
		wm_buf_puts(b, "null");
	json_writer_state(r, b);
	wm_buf_append(b, "}", 1);
	return wm_buf_error(b);
}

/* ---- columns --------------------------------------------------------------- */

static int column(const struct wm_recording *r, wm_buf *b, bool *first, const char *prefix,
		  const char *name, size_t col)
{
	int rc = name ? json_key_cat(b, first, prefix, ".", name) : json_key_cat(b, first, prefix, "", "");
	if (rc)
		return rc;
	wm_buf_append(b, "[", 1);
	for (size_t i = 0; i < r->n_rows; i++) {
		if (i)
			wm_buf_append(b, ",", 1);
		wm_buf_json_double(b, wm_rec_cell(r, i, col)); /* NAN -> null */
	}
	wm_buf_append(b, "]", 1);
	return wm_buf_error(b);
}

int wm_recording_columns_json(const wm_recording *r, wm_buf *b)
{
	bool first = true;
	wm_buf_append(b, "{", 1);
	/* column() fails on its own (the scratch key) as well as on b's error */
	int rc = column(r, b, &first, "t_s", NULL, WM_COL_T);
	for (size_t k = 0; !rc && k < r->n_devs; k++)
		rc = column(r, b, &first, "energy_j", r->devs[k].name, wm_rec_dcol(k, WM_DCOL_ENERGY));
	for (size_t k = 0; !rc && k < r->n_devs; k++)
		rc = column(r, b, &first, "power_w", r->devs[k].name, wm_rec_dcol(k, WM_DCOL_POWER));
	for (size_t k = 0; !rc && k < r->n_devs; k++)
		if (r->devs[k].has_attr)
			rc = column(r, b, &first, "attributed_j", r->devs[k].name, wm_rec_dcol(k, WM_DCOL_ATTR));
	if (!rc)
		rc = column(r, b, &first, "cpu_util", NULL, WM_COL_CPU_UTIL);
	if (!rc)
		rc = column(r, b, &first, "self_cpu_s", NULL, WM_COL_SELF_CPU);
	if (!rc)
		rc = column(r, b, &first, "mem_used_bytes", NULL, WM_COL_MEM_USED);
	if (rc)
		return rc;
	wm_buf_append(b, "}", 1);
	return wm_buf_error(b);
}

/* ---- human text ------------------------------------------------------------ */

/* Appends s with control characters shown as '?': names and command lines
 * come from the recorded processes and must not drive the terminal. */
static void put_safe(wm_buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char c = (*p < 0x20 || *p == 0x7f) ? '?' : (char)*p;
		wm_buf_append(b, &c, 1);
	}
}

/* As put_safe, but newlines are kept: a multi-line fix (a udev rule written
 * with a here-document) must come out as lines that can be copied whole, at
 * column 0 (a here-document's terminator must start its line). */
static void put_safe_lines(wm_buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char c = *p == '\n' ? '\n' : (*p < 0x20 || *p == 0x7f) ? '?' : (char)*p;
		wm_buf_append(b, &c, 1);
	}
}

/* argv joined for display, quoting what a shell would need quoted */
static void put_command(wm_buf *b, char *const *argv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *a = argv[i];
		if (i)
			wm_buf_append(b, " ", 1);
		bool quote = !*a || strpbrk(a, " \t'\"\\$`!*?;&|<>()[]{}#~") != NULL;
		if (!quote) {
			put_safe(b, a);
			continue;
		}
		wm_buf_append(b, "'", 1);
		for (const char *p = a; *p; p++) {
			if (*p == '\'')
				wm_buf_puts(b, "'\\''");
			else {
				char one[2] = {*p, '\0'};
				put_safe(b, one);
			}
		}
		wm_buf_append(b, "'", 1);
	}
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
		if (!isfinite(a))
			n = snprintf(out, len, "%s%s", v < 0 ? "-inf " : "inf ", unit);
		else if (a >= 1000.0)
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
	int rc = fmt_si(out, len, j, "J");
	if (rc)
		return rc;
	if (isnan(j) || fabs(j) < 3600.0)
		return 0;
	char wh[48];
	rc = fmt_si(wh, sizeof wh, j / 3600.0, "Wh");
	if (rc)
		return rc;
	size_t used = strlen(out);
	int n = snprintf(out + used, len - used, " (%s)", wh);
	return (n < 0 || (size_t)n >= len - used) ? -EINVAL : 0;
}

static int fmt_duration(char *out, size_t len, double s)
{
	int n;
	if (isnan(s))
		n = snprintf(out, len, "? s");
	else if (!(fabs(s) < 1e9)) /* "%.1f" of 1.7e308 is 310 characters */
		n = snprintf(out, len, "%.3g s", s);
	else if (s < 60.0)
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
		wm_buf_puts(b, indent);
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			put_safe(b, cell);
			if (c + 1 < t->ncols)
				wm_buf_printf(b, "%*s", (int)(width[c] - text_width(cell) + 2), "");
		}
		wm_buf_append(b, "\n", 1);
	}
	return wm_buf_error(b);
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
			rc = fmt_si(avg, sizeof avg, wm_recording_avg_w(r, k), "W");
		if (!rc)
			rc = fmt_si(peak, sizeof peak, d->peak_w, "W");
		if (rc)
			break;
		wm_buf_reset(&method);
		if (is_modeled(d))
			wm_buf_printf(&method, "MODELED (%s%s%s: an estimate, no energy counter was read — see `wattmeter sensors`)",
				      *d->source ? d->source : "model", r->model_name ? " " : "",
				      r->model_name ? r->model_name : "");
		else if (is_gpu(d))
			wm_buf_printf(&method, "%s (%s%s%s%s)", d->method, d->source, *d->source_detail ? " " : "",
				      d->source_detail,
				      d->used_by_run == 1 ? ", used by the run" :
				      d->used_by_run == 0 ? ", not used by the run" : "");
		else
			wm_buf_printf(&method, "%s%s%s%s", d->method, *d->source ? " (" : "", d->source,
				      *d->source ? ")" : "");
		/* checked before the next reset, which would clear it */
		rc = wm_buf_error(&method);
		if (!rc) {
			const char *row[] = {d->name, e, avg, peak, method.data};
			rc = table_row(&t, row);
		}
	}
	if (!rc)
		rc = table_render(&t, "  ", b);
	wm_buf_free(&method);
	table_free(&t);
	if (rc)
		return rc;
	struct gpu_totals gt = gpu_totals(r);
	if (gt.n > 1) {
		char all[96], run[96];
		rc = fmt_energy(all, sizeof all, gt.energy_j);
		if (!rc)
			rc = fmt_energy(run, sizeof run, gt.run_j);
		if (rc)
			return rc;
		wm_buf_printf(b, "  GPUs: %s on the whole machine, %s on the GPUs the run uses\n", all, run);
	}
	return wm_buf_error(b);
}

/* Why counters were missing, when a device had to be modelled. */
static void text_sensor_notes(const struct wm_recording *r, wm_buf *b)
{
	bool modeled = false;
	for (size_t k = 0; k < r->n_devs; k++)
		modeled = modeled || is_modeled(&r->devs[k]);
	if (!modeled)
		return;
	for (size_t i = 0; i < r->n_sensors; i++) {
		const struct wm_rec_sensor *s = &r->sensors[i];
		if (strcmp(s->state, "absent") && strcmp(s->state, "permission denied") && strcmp(s->state, "error"))
			continue;
		if (!strcmp(s->state, "absent") && !*s->fix)
			continue; /* nothing here, and nothing to do about it (no NVIDIA GPU) */
		wm_buf_puts(b, "  note: ");
		put_safe(b, s->name);
		wm_buf_puts(b, " ");
		put_safe(b, s->state);
		if (*s->detail) {
			wm_buf_puts(b, ": ");
			put_safe(b, s->detail);
		}
		if (*s->fix && strchr(s->fix, '\n')) {
			wm_buf_puts(b, "; fix, these lines:\n");
			put_safe_lines(b, s->fix);
		} else if (*s->fix) {
			wm_buf_puts(b, "; fix: ");
			put_safe(b, s->fix);
		}
		wm_buf_append(b, "\n", 1);
	}
}

static int text_attributed(const struct wm_recording *r, wm_buf *b)
{
	bool any = false;
	for (size_t k = 0; k < r->n_devs; k++) {
		const struct wm_rec_dev *d = &r->devs[k];
		if (!d->has_attr)
			continue;
		char e[96];
		int rc = fmt_energy(e, sizeof e, d->attributed_j);
		if (rc)
			return rc;
		wm_buf_puts(b, any ? ", " : "  attributed to the measured processes: ");
		any = true;
		put_safe(b, d->name);
		wm_buf_printf(b, " %s", e);
		if (d->energy_j > 0)
			wm_buf_printf(b, " (%.0f%%)", d->attributed_j / d->energy_j * 100.0);
	}
	if (any)
		wm_buf_append(b, "\n", 1);
	struct included_sum s;
	if (any && included_sum(r, &s) == 0) {
		bool first = true;
		for (size_t k = 0; s.n && k < r->n_devs; k++) {
			if (!r->devs[k].has_attr)
				continue;
			char e[96];
			if (fmt_energy(e, sizeof e, s.energy_j[k]))
				break;
			if (first)
				wm_buf_printf(b, "    of which included (outside the command's tree, %zu process%s): ", s.n,
					      s.n == 1 ? "" : "es");
			else
				wm_buf_puts(b, ", ");
			first = false;
			put_safe(b, r->devs[k].name);
			wm_buf_printf(b, " %s", e);
		}
		if (!first)
			wm_buf_printf(b, "; %.1f s CPU\n", s.cpu_s);
		free(s.energy_j);
	}
	return wm_buf_error(b);
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
	wm_buf_puts(b, "  top processes by energy:\n");
	for (size_t i = 0; !rc && i < shown; i++) {
		char pid[32], e[96], cpu[48];
		int n = snprintf(pid, sizeof pid, "%lld", (long long)v[i].p->pid);
		rc = (n < 0 || (size_t)n >= sizeof pid) ? -EINVAL : 0;
		if (!rc)
			rc = fmt_energy(e, sizeof e, v[i].total_j);
		if (!rc) {
			n = snprintf(cpu, sizeof cpu, v[i].p->cpu_s < 1e9 ? "%.1f s CPU" : "%.3g s CPU", v[i].p->cpu_s);
			rc = (n < 0 || (size_t)n >= sizeof cpu) ? -EINVAL : 0;
		}
		if (!rc) {
			char label[600];
			char ctr[100] = "";
			if (v[i].p->container)
				snprintf(ctr, sizeof ctr, "[%.60s] ", v[i].p->container);
			n = snprintf(label, sizeof label, "%s%s%s", v[i].p->included ? "[included] " : "", ctr,
				     proc_cmdline(v[i].p));
			const char *row[] = {pid, e, cpu, n >= 0 ? label : proc_cmdline(v[i].p)};
			rc = table_row(&t, row);
		}
	}
	if (!rc)
		rc = table_render(&t, "    ", b);
	table_free(&t);
	free(v);
	if (rc)
		return rc;
	if (shown < r->n_procs)
		wm_buf_printf(b, "    ... and %zu more (`wattmeter report --json` lists them all)\n", r->n_procs - shown);
	return wm_buf_error(b);
}

/* The notes of the text summary on lines not written (json_writer_state); at most 5 spans listed. */
static void text_unwritten(const struct wm_recording *r, wm_buf *b)
{
	size_t shown = r->n_unwritten < 5 ? r->n_unwritten : 5;
	for (size_t i = 0; i < shown; i++) {
		const struct wm_rec_unwritten *u = &r->unwritten[i];
		wm_buf_printf(b, "  note: %.0f sample%s from %.2f s to %.2f s could not be written to samples.jsonl",
			      u->samples, u->samples == 1 ? "" : "s", u->from_s, u->to_s);
		if (u->error[0]) {
			wm_buf_puts(b, " (");
			put_safe(b, u->error);
			wm_buf_puts(b, ")");
		}
		wm_buf_puts(b, u->resumed ? ": a gap in the time series; the totals are whole (energies are cumulative)\n"
					  : ": the totals stop at the last sample written\n");
	}
	if (shown < r->n_unwritten) {
		double n = 0;
		for (size_t i = shown; i < r->n_unwritten; i++)
			n += r->unwritten[i].samples;
		wm_buf_printf(b, "  note: ... and %zu more spans (%.0f samples) not written (`wattmeter report --json` lists them)\n",
			      r->n_unwritten - shown, n);
	}
}

int wm_recording_summary_text(const wm_recording *r, int top_n, wm_buf *b)
{
	char dur[64];
	int rc = fmt_duration(dur, sizeof dur, r->duration_s);
	if (rc)
		return rc;
	wm_buf_puts(b, "wattmeter: ");
	if (r->has_command && r->n_command) {
		put_command(b, r->command, r->n_command);
	} else {
		wm_buf_puts(b, "recording ");
		put_safe(b, r->dir);
	}
	wm_buf_puts(b, "  (");
	if (r->has_exit)
		wm_buf_printf(b, "exit %lld, ", (long long)r->exit_status);
	wm_buf_printf(b, "%s, %zu sample%s)\n", dur, r->n_rows, r->n_rows == 1 ? "" : "s");

	if (r->n_devs)
		rc = text_devices(r, b);
	else
		wm_buf_puts(b, "  no energy source was recorded (see `wattmeter sensors`)\n");
	if (rc)
		return rc;
	text_sensor_notes(r, b);
	rc = wm_rec_gaps_text(r, b);
	if (!rc)
		rc = text_attributed(r, b);
	if (!rc)
		rc = text_processes(r, top_n, b);
	if (rc)
		return rc;
	if (r->cgroup_path) {
		wm_buf_puts(b, "  cgroup ");
		put_safe(b, r->cgroup_path);
		if (!isnan(r->cgroup_cpu_s))
			wm_buf_printf(b, ": %.2f s CPU (%s, exited processes included)", r->cgroup_cpu_s,
				      r->cgroup_version == 1 ? "cpuacct.usage" : "cpu.stat usage_usec");
		wm_buf_append(b, "\n", 1);
	}
	if (!isnan(r->self_cpu_s)) {
		wm_buf_printf(b, "  measuring cost %.2f s CPU", r->self_cpu_s);
		double pct = self_pct(r);
		if (!isnan(pct))
			wm_buf_printf(b, " (%.2f%% of one core)", pct);
		wm_buf_append(b, "\n", 1);
	}
	for (size_t i = 0; i < r->n_warnings; i++) {
		wm_buf_puts(b, "  warning: ");
		put_safe(b, r->warnings[i]);
		wm_buf_append(b, "\n", 1);
	}
	if (r->n_rows == 0)
		wm_buf_puts(b, "  no samples were recorded: the run ended or was killed before the first one\n");
	if (r->running && r->writer_pid > 0)
		wm_buf_printf(b, "  still running (pid %lld): totals up to the last sample written so far\n",
			      (long long)r->writer_pid);
	else if (r->running)
		wm_buf_puts(b, "  still running: totals up to the last sample written so far\n");
	else if (!r->complete)
		wm_buf_puts(b, "  recording incomplete: the run was killed; totals up to the last complete sample\n");
	text_unwritten(r, b);
	if (r->truncated)
		wm_buf_puts(b, "  note: the last line of samples.jsonl was cut mid-write and was ignored\n");
	if (r->samples_short && r->n_rows) {
		char end[64];
		rc = fmt_duration(end, sizeof end, r->samples_end_s);
		if (rc)
			return rc;
		wm_buf_printf(b, "  note: the samples stop at %s, before the run's end at %s (the disk filled, or the folder was copied while the run wrote): energies are those up to %s, average powers are over the samples' span\n",
			      end, dur, end);
	}
	return wm_buf_error(b);
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

static void json_opt_double(wm_buf *b, bool *first, const char *key, double v)
{
	json_key(b, first, key);
	wm_buf_json_double(b, v); /* NAN -> null */
}

static int json_money(const struct wm_carbon_opts *o, wm_buf *b, bool *first, const char *prefix, double energy_j)
{
	int rc = json_key_cat(b, first, prefix, "kwh", "");
	if (rc)
		return rc;
	wm_buf_json_double(b, wm_carbon_kwh(o, energy_j)); /* NAN -> null */
	rc = json_key_cat(b, first, prefix, "co2e_g", "");
	if (rc)
		return rc;
	wm_buf_json_double(b, wm_carbon_co2e_g(o, energy_j));
	rc = json_key_cat(b, first, prefix, "cost", "");
	if (rc)
		return rc;
	wm_buf_json_double(b, wm_carbon_cost(o, energy_j));
	return wm_buf_error(b);
}

const char wm_carbon_hint[] =
	"no grid intensity given, so no CO2e figure: add --grid-intensity G (gCO2e/kWh, or a country code from `wattmeter report --list-grids`)";

int wm_recording_carbon_json(const wm_recording *r, const struct wm_carbon_opts *o, wm_buf *b)
{
	bool first = true;
	double total = wm_recording_total_j(r, NULL);
	wm_buf_append(b, "{", 1);
	json_opt_double(b, &first, "energy_j", total);
	json_key(b, &first, "basis");
	wm_buf_append(b, "[", 1);
	bool f2 = true;
	for (size_t k = 0; k < r->n_devs; k++) {
		if (!in_total(r, k))
			continue;
		if (!f2)
			wm_buf_append(b, ",", 1);
		f2 = false;
		wm_buf_json_str(b, r->devs[k].name);
	}
	wm_buf_append(b, "]", 1);
	json_opt_double(b, &first, "pue", o->pue);
	json_opt_double(b, &first, "grid_intensity_g_per_kwh", o->has_intensity ? o->intensity_g_per_kwh : NAN);
	json_key(b, &first, "grid_intensity_source");
	if (o->has_intensity)
		wm_buf_json_str(b, o->provenance);
	else
		wm_buf_puts(b, "null");
	json_opt_double(b, &first, "price_per_kwh", o->has_price ? o->price_per_kwh : NAN);
	json_key(b, &first, "currency");
	if (o->has_price)
		wm_buf_json_str(b, o->currency);
	else
		wm_buf_puts(b, "null");
	int rc = json_money(o, b, &first, "", total);
	if (rc)
		return rc;
	double attr = wm_recording_attributed_j(r);
	json_opt_double(b, &first, "attributed_energy_j", attr);
	rc = json_money(o, b, &first, "attributed_", attr);
	if (rc)
		return rc;
	json_key(b, &first, "devices");
	wm_buf_append(b, "{", 1);
	bool f3 = true;
	for (size_t k = 0; k < r->n_devs; k++) {
		json_key(b, &f3, r->devs[k].name);
		bool f4 = true;
		wm_buf_append(b, "{", 1);
		rc = json_money(o, b, &f4, "", r->devs[k].energy_j);
		if (rc)
			return rc;
		wm_buf_append(b, "}", 1);
	}
	wm_buf_append(b, "}", 1);
	if (!o->has_intensity) {
		json_key(b, &first, "note");
		wm_buf_json_str(b, wm_carbon_hint);
	}
	wm_buf_append(b, "}", 1);
	return wm_buf_error(b);
}

int wm_recording_summary_json_carbon(const wm_recording *r, const struct wm_carbon_opts *o, wm_buf *b)
{
	size_t start = b->len;
	int rc = wm_recording_summary_json(r, b);
	if (rc)
		return rc;
	/* reopen the object: drop its closing brace, add "carbon" */
	if (b->len == start || b->data[b->len - 1] != '}')
		return -EINVAL;
	b->len--;
	b->data[b->len] = '\0';
	wm_buf_puts(b, ",\"carbon\":");
	rc = wm_recording_carbon_json(r, o, b);
	if (rc)
		return rc;
	wm_buf_append(b, "}", 1);
	return wm_buf_error(b);
}

/* "12.3 g CO2e" / cost, with the attributed share in brackets */
static int text_money(wm_buf *b, const struct wm_carbon_opts *o, double total, double attr, bool is_cost)
{
	char v[64], a[64];
	int rc;
	if (is_cost) {
		rc = wm_carbon_fmt_cost(v, sizeof v, wm_carbon_cost(o, total), o->currency);
		if (!rc)
			rc = wm_carbon_fmt_cost(a, sizeof a, wm_carbon_cost(o, attr), o->currency);
	} else {
		rc = wm_carbon_fmt_co2e(v, sizeof v, wm_carbon_co2e_g(o, total));
		if (!rc)
			rc = wm_carbon_fmt_co2e(a, sizeof a, wm_carbon_co2e_g(o, attr));
	}
	if (rc)
		return rc;
	wm_buf_puts(b, v);
	if (attr > 0)
		wm_buf_printf(b, " (%s attributed)", a);
	return wm_buf_error(b);
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
	/* basis is a scratch buffer: on its ENOMEM total is NAN, not a figure */
	int rc = wm_buf_error(&basis);
	if (!rc)
		rc = fmt_energy(e, sizeof e, total);
	if (!rc)
		rc = wm_carbon_fmt_kwh(kwh, sizeof kwh, wm_carbon_kwh(o, total));
	if (rc) {
		wm_buf_free(&basis);
		return rc;
	}
	wm_buf_printf(b, "  machine energy: %s = %s", e, kwh);
	wm_buf_puts(b, " (");
	put_safe(b, basis.data ? basis.data : "");
	wm_buf_free(&basis);
	if (o->pue_given)
		wm_buf_printf(b, ", PUE %.2f applied to kWh, CO2e and cost", o->pue);
	wm_buf_puts(b, ")\n");
	if (o->has_intensity) {
		wm_buf_puts(b, "  CO2e: ");
		rc = text_money(b, o, total, attr, false);
		if (rc)
			return rc;
		wm_buf_printf(b, " at %g gCO2e/kWh (", o->intensity_g_per_kwh);
		put_safe(b, o->provenance);
		wm_buf_puts(b, ")\n");
	} else {
		wm_buf_printf(b, "  CO2e: %s\n", wm_carbon_hint);
	}
	if (o->has_price) {
		wm_buf_puts(b, "  cost: ");
		rc = text_money(b, o, total, attr, true);
		if (rc)
			return rc;
		wm_buf_printf(b, " at %g %s/kWh (user-given)\n", o->price_per_kwh, o->currency);
	}
	return wm_buf_error(b);
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
	int rc = union_devices(recs, n, &devs, &nd);
	if (rc)
		return rc;
	wm_buf_puts(b, "{\"devices\":[");
	for (size_t j = 0; j < nd; j++) {
		if (j)
			wm_buf_append(b, ",", 1);
		wm_buf_json_str(b, devs[j]);
	}
	free(devs);
	wm_buf_puts(b, "],\"runs\":[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			wm_buf_append(b, ",", 1);
		wm_buf_puts(b, "{\"dir\":");
		wm_buf_json_str(b, recs[i]->dir);
		wm_buf_puts(b, ",\"summary\":");
		rc = wm_recording_summary_json_carbon(recs[i], o, b);
		if (rc)
			return rc;
		wm_buf_append(b, "}", 1);
	}
	wm_buf_puts(b, "]}");
	return wm_buf_error(b);
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
	int rc = union_devices(recs, n, &devs, &nd);
	if (rc)
		return rc;
	wm_buf_printf(b, "wattmeter: %zu recordings compared\n", n);
	for (size_t i0 = 0; !rc && i0 < n; i0 += 7) {
		if (i0)
			wm_buf_puts(b, "\n");
		rc = compare_chunk(recs, i0, i0 + 7 < n ? i0 + 7 : n, devs, nd, o, b);
	}
	free(devs);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		wm_buf_printf(b, "  run %zu: ", i + 1);
		put_safe(b, recs[i]->dir);
		if (recs[i]->has_command && recs[i]->n_command) {
			wm_buf_puts(b, "  (");
			put_command(b, recs[i]->command, recs[i]->n_command);
			wm_buf_puts(b, ")");
		}
		if (recs[i]->running)
			wm_buf_puts(b, "  [still running]");
		else if (!recs[i]->complete)
			wm_buf_puts(b, "  [incomplete: the run was killed]");
		wm_buf_puts(b, "\n");
	}
	if (o->has_intensity) {
		wm_buf_printf(b, "  CO2e at %g gCO2e/kWh (", o->intensity_g_per_kwh);
		put_safe(b, o->provenance);
		wm_buf_puts(b, ")\n");
	} else {
		wm_buf_printf(b, "  CO2e: %s\n", wm_carbon_hint);
	}
	if (o->has_price)
		wm_buf_printf(b, "  cost at %g %s/kWh (user-given)\n", o->price_per_kwh, o->currency);
	if (o->pue_given)
		wm_buf_printf(b, "  kWh, CO2e and cost include a PUE of %.2f\n", o->pue);
	wm_buf_puts(b, "  machine total: devices that do not overlap (psys holds cpu and dram where present)\n");
	return wm_buf_error(b);
}
