/* record_read.c — the recording reader (record.h, docs/recording.md).
 *
 * meta.json is parsed whole (it is small). samples.jsonl is read one line at a
 * time with getline(3); each line is parsed with jansson, reduced to one row
 * of doubles plus updates of the device and process totals, and its JSON tree
 * freed at once. Energies are cumulative, so the totals are simply the last
 * values seen.
 *
 * A line is complete when it ends in '\n' (the writer appends line and
 * newline in one write(2)). The last line may be cut by a killed run: a last
 * line without '\n', or one that does not parse, is dropped and the recording
 * marked truncated. A bad line followed by more lines is damage, reported
 * with its line number. A recording with no readable sample at all (an empty
 * file, one garbage line, NUL bytes, binary data without a newline) is an
 * error that says what was found: a cut last line is tolerated only after
 * good ones, and "0 J" for a damaged file would be a wrong answer.
 *
 * The renderers (summary JSON, text, columns) are in summary.c.
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

/* ---- small helpers ------------------------------------------------------- */

static char *dup_or(const json_t *v, const char *dflt)
{
	const char *s = json_is_string(v) ? json_string_value(v) : dflt;
	return s ? strdup(s) : NULL;
}

/* A finite number (integer or real) from v, else fails. */
static bool get_num(const json_t *v, double *out)
{
	if (!json_is_number(v))
		return false;
	double d = json_number_value(v);
	if (!isfinite(d))
		return false;
	*out = d;
	return true;
}

static bool get_u64(const json_t *v, uint64_t *out)
{
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i < 0)
			return false;
		*out = (uint64_t)i;
		return true;
	}
	double d;
	if (!get_num(v, &d) || d < 0 || d >= 18446744073709551616.0)
		return false;
	*out = (uint64_t)d;
	return true;
}

static bool is_blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

/* ---- freeing --------------------------------------------------------------- */

void wm_recording_free(wm_recording *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_devs; i++) {
		free(r->devs[i].name);
		free(r->devs[i].method);
		free(r->devs[i].source);
		free(r->devs[i].kind);
		free(r->devs[i].source_detail);
		free(r->devs[i].info_name);
		free(r->devs[i].info_uuid);
		wm_rec_gaps_free(&r->devs[i]);
	}
	free(r->devs);
	for (size_t i = 0; i < r->n_sensors; i++) {
		free(r->sensors[i].name);
		free(r->sensors[i].state);
		free(r->sensors[i].detail);
		free(r->sensors[i].fix);
	}
	free(r->sensors);
	for (size_t i = 0; i < r->n_command; i++)
		free(r->command[i]);
	free(r->command);
	for (size_t i = 0; i < r->n_warnings; i++)
		free(r->warnings[i]);
	free(r->warnings);
	for (size_t i = 0; i < r->n_procs; i++) {
		free(r->procs[i].cmdline);
		free(r->procs[i].comm);
		free(r->procs[i].container);
		free(r->procs[i].pod);
		free(r->procs[i].energy_j);
		free(r->procs[i].energy_seen);
	}
	free(r->procs);
	for (size_t i = 0; i < r->n_unwritten; i++)
		free(r->unwritten[i].error);
	free(r->unwritten);
	free(r->ptab);
	free(r->rows);
	free(r->start_utc);
	free(r->model_name);
	free(r->cgroup_path);
	free(r->dir);
	free(r);
}

/* ---- meta.json --------------------------------------------------------------- */

static int meta_devices(struct wm_recording *r, const json_t *arr)
{
	if (!json_is_array(arr))
		return 0;
	size_t n = json_array_size(arr);
	if (n == 0)
		return 0;
	r->devs = calloc(n, sizeof *r->devs);
	if (!r->devs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const json_t *d = json_array_get(arr, i);
		const char *name = json_string_value(json_object_get(d, "name"));
		if (!name || !*name)
			continue; /* not a device we can key anything on */
		bool seen = false;
		for (size_t k = 0; k < r->n_devs; k++)
			seen = seen || strcmp(r->devs[k].name, name) == 0;
		if (seen)
			continue; /* the first entry of a name wins */
		struct wm_rec_dev *dev = &r->devs[r->n_devs++];
		dev->name = strdup(name);
		dev->method = dup_or(json_object_get(d, "method"), "unknown");
		dev->source = dup_or(json_object_get(d, "source"), "");
		dev->kind = dup_or(json_object_get(d, "kind"), "");
		dev->source_detail = dup_or(json_object_get(d, "source_detail"), "");
		const json_t *info = json_object_get(d, "info");
		dev->info_name = dup_or(json_object_get(info, "name"), "");
		dev->info_uuid = dup_or(json_object_get(info, "uuid"), "");
		const json_t *idx = json_object_get(info, "index");
		dev->index = json_is_integer(idx) ? (int64_t)json_integer_value(idx) : -1;
		const json_t *ubr = json_object_get(d, "used_by_run");
		dev->used_by_run = json_is_boolean(ubr) ? json_is_true(ubr) : -1;
		if (!dev->name || !dev->method || !dev->source || !dev->kind || !dev->source_detail || !dev->info_name ||
		    !dev->info_uuid)
			return -ENOMEM;
		dev->peak_w = NAN;
		if (wm_rec_gaps_meta_device(dev, d) < 0)
			return -ENOMEM;
		/* The attributed devices: reported even when no process interval
		 * ran (then 0 J attributed, all unattributed). Recordings say so
		 * in "attribution"; older ones attributed cpu and dram. */
		const char *rule = json_string_value(json_object_get(d, "attribution"));
		dev->has_attr = rule ? strcmp(rule, "none") != 0
				     : strcmp(name, "cpu") == 0 || strcmp(name, "dram") == 0;
	}
	return 0;
}

static int meta_sensors(struct wm_recording *r, const json_t *arr)
{
	if (!json_is_array(arr))
		return 0;
	size_t n = json_array_size(arr);
	if (n == 0)
		return 0;
	r->sensors = calloc(n, sizeof *r->sensors);
	if (!r->sensors)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const json_t *s = json_array_get(arr, i);
		if (!json_is_object(s))
			continue;
		struct wm_rec_sensor *se = &r->sensors[r->n_sensors++];
		se->name = dup_or(json_object_get(s, "name"), "");
		se->state = dup_or(json_object_get(s, "state"), "");
		se->detail = dup_or(json_object_get(s, "detail"), "");
		se->fix = dup_or(json_object_get(s, "fix"), "");
		if (!se->name || !se->state || !se->detail || !se->fix)
			return -ENOMEM;
	}
	return 0;
}

/* The strings of a JSON array (other elements skipped) into *out. */
static int string_array(const json_t *arr, char ***out, size_t *n_out)
{
	size_t n = json_array_size(arr);
	if (n == 0)
		return 0;
	*out = calloc(n, sizeof **out);
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *s = json_string_value(json_array_get(arr, i));
		if (!s)
			continue;
		(*out)[*n_out] = strdup(s);
		if (!(*out)[*n_out])
			return -ENOMEM;
		(*n_out)++;
	}
	return 0;
}

/* ---- the writer's state: lock and unwritten spans (record_write.c) ------------ */

/* One {"from_s","to_s","samples","error","resumed"} object; others skipped.
 * Only -ENOMEM fails. */
static int take_unwritten(struct wm_recording *r, const json_t *o, bool resumed_default)
{
	double from, to, n = 0;
	if (!json_is_object(o) || !get_num(json_object_get(o, "from_s"), &from) ||
	    !get_num(json_object_get(o, "to_s"), &to))
		return 0;
	(void)get_num(json_object_get(o, "samples"), &n);
	if (r->n_unwritten == r->cap_unwritten) {
		size_t cap = r->cap_unwritten ? r->cap_unwritten * 2 : 8;
		struct wm_rec_unwritten *u = realloc(r->unwritten, cap * sizeof *u);
		if (!u)
			return -ENOMEM;
		r->unwritten = u;
		r->cap_unwritten = cap;
	}
	const json_t *res = json_object_get(o, "resumed");
	struct wm_rec_unwritten *u = &r->unwritten[r->n_unwritten];
	u->from_s = from;
	u->to_s = to;
	u->samples = n;
	u->resumed = json_is_boolean(res) ? json_is_true(res) : resumed_default;
	u->error = dup_or(json_object_get(o, "error"), "");
	if (!u->error)
		return -ENOMEM;
	r->n_unwritten++;
	return 0;
}

/* meta.json's writer_pid and, at the end of a run, its "unwritten" list. */
static int meta_writer(struct wm_recording *r, const json_t *m)
{
	const json_t *v = json_object_get(m, "writer_pid");
	if (json_is_integer(v) && json_integer_value(v) > 0)
		r->writer_pid = (int64_t)json_integer_value(v);
	v = json_object_get(m, "unwritten");
	if (!json_is_array(v))
		return 0;
	r->unwritten_from_meta = true;
	size_t i;
	const json_t *o;
	json_array_foreach(v, i, o) {
		int rc = take_unwritten(r, o, false);
		if (rc)
			return rc;
	}
	return 0;
}

/* Fills r from meta.json; the version check comes before anything else is
 * trusted. */
static int read_meta(struct wm_recording *r, int dfd, const char *dir, char *err, size_t errlen)
{
	wm_buf b;
	wm_buf_init(&b);
	json_t *m = NULL;
	int rc = wm_read_file_buf_at(dfd, "meta.json", &b);
	if (rc == -ENOENT) {
		rc = wm_err(err, errlen, rc,
			    "no recording in %s: meta.json not found (is this the folder that `wattmeter run -o` or wattmeter.Meter(output_dir) wrote?)",
			    dir);
		goto out;
	}
	if (rc < 0) {
		rc = wm_err(err, errlen, rc, "cannot read %s/meta.json: %s%s", dir, strerror(-rc),
			    rc == -EACCES ? " (read it as the user who recorded it, or fix its permissions)" : "");
		goto out;
	}
	json_error_t je;
	m = json_loadb(b.data ? b.data : "", b.len, 0, &je);
	if (!m) {
		rc = wm_err(err, errlen, -EBADMSG,
			    "%s/meta.json is not valid JSON (line %d, column %d: %s); the recording is damaged",
			    dir, je.line, je.column, je.text);
		goto out;
	}
	if (!json_is_object(m)) {
		rc = wm_err(err, errlen, -EBADMSG, "%s/meta.json is not a JSON object; the recording is damaged",
			    dir);
		goto out;
	}
	const json_t *schema = json_object_get(m, "schema");
	if (schema && (!json_is_string(schema) ||
		       strcmp(json_string_value(schema), "wattmeter.recording") != 0)) {
		rc = wm_err(err, errlen, -EBADMSG,
			    "%s/meta.json is not a wattmeter recording (its \"schema\" is not \"wattmeter.recording\")",
			    dir);
		goto out;
	}
	const json_t *ver = json_object_get(m, "schema_version");
	if (!json_is_integer(ver) || json_integer_value(ver) < 1) {
		rc = wm_err(err, errlen, -EBADMSG,
			    "%s/meta.json has no valid schema_version (a positive integer); is this a wattmeter recording?",
			    dir);
		goto out;
	}
	r->schema_version = (int64_t)json_integer_value(ver);
	if (r->schema_version > WM_SCHEMA_VERSION) {
		rc = wm_err(err, errlen, -ENOTSUP,
			    "%s uses recording schema version %lld, but this wattmeter reads version %d at most: upgrade wattmeter to read it",
			    dir, (long long)r->schema_version, WM_SCHEMA_VERSION);
		goto out;
	}

	rc = meta_devices(r, json_object_get(m, "devices"));
	if (!rc)
		rc = meta_sensors(r, json_object_get(m, "sensors"));
	const json_t *v = json_object_get(m, "command");
	r->has_command = json_is_array(v);
	if (!rc)
		rc = string_array(v, &r->command, &r->n_command);
	if (!rc)
		rc = string_array(json_object_get(m, "warnings"), &r->warnings, &r->n_warnings);
	v = json_object_get(m, "start_utc");
	if (!rc && json_is_string(v) && !(r->start_utc = strdup(json_string_value(v))))
		rc = -ENOMEM;
	v = json_object_get(json_object_get(m, "model"), "name");
	if (!rc && json_is_string(v) && !(r->model_name = strdup(json_string_value(v))))
		rc = -ENOMEM;
	if (!rc)
		rc = meta_writer(r, m);
	if (rc) {
		rc = wm_err(err, errlen, rc, "cannot read %s/meta.json: out of memory", dir);
		goto out;
	}
	v = json_object_get(m, "exit_status");
	if (json_is_integer(v)) {
		r->has_exit = true;
		r->exit_status = (int64_t)json_integer_value(v);
	}
	r->complete = json_is_true(json_object_get(m, "complete"));
	double d;
	if (get_num(json_object_get(m, "duration_s"), &d) && d >= 0)
		r->duration_s = d;
	if (get_num(json_object_get(json_object_get(m, "self"), "cpu_s"), &d) && d >= 0)
		r->self_cpu_s = d;
	v = json_object_get(m, "cgroup");
	if (json_is_object(v) && json_is_string(json_object_get(v, "path"))) {
		if (!(r->cgroup_path = strdup(json_string_value(json_object_get(v, "path")))))
			rc = wm_err(err, errlen, -ENOMEM, "cannot read %s/meta.json: out of memory", dir);
		r->cgroup_version = (int)json_integer_value(json_object_get(v, "version"));
	}
out:
	json_decref(m);
	wm_buf_free(&b);
	return rc;
}

/* ---- processes ------------------------------------------------------------- */

static size_t pid_hash(int64_t pid, size_t cap)
{
	uint64_t x = (uint64_t)pid * 0x9E3779B97F4A7C15ull;
	return (size_t)(x >> 17) & (cap - 1);
}

static int ptab_grow(struct wm_recording *r)
{
	size_t cap = r->ptab_cap ? r->ptab_cap * 2 : 64;
	size_t *t = calloc(cap, sizeof *t);
	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < r->n_procs; i++) {
		size_t h = pid_hash(r->procs[i].pid, cap);
		while (t[h])
			h = (h + 1) & (cap - 1);
		t[h] = i + 1;
	}
	free(r->ptab);
	r->ptab = t;
	r->ptab_cap = cap;
	return 0;
}

/* The process with this pid, added if new; NULL on ENOMEM. */
static struct wm_rec_proc *proc_get(struct wm_recording *r, int64_t pid)
{
	if (r->ptab_cap) {
		size_t h = pid_hash(pid, r->ptab_cap);
		while (r->ptab[h]) {
			if (r->procs[r->ptab[h] - 1].pid == pid)
				return &r->procs[r->ptab[h] - 1];
			h = (h + 1) & (r->ptab_cap - 1);
		}
	}
	/* keep the table at most half full */
	if ((r->n_procs + 1) * 2 > r->ptab_cap && ptab_grow(r) < 0)
		return NULL;
	if (r->n_procs == r->cap_procs) {
		size_t cap = r->cap_procs ? r->cap_procs * 2 : 16;
		struct wm_rec_proc *p = realloc(r->procs, cap * sizeof *p);
		if (!p)
			return NULL;
		r->procs = p;
		r->cap_procs = cap;
	}
	struct wm_rec_proc *p = &r->procs[r->n_procs];
	memset(p, 0, sizeof *p);
	p->pid = pid;
	p->rank = -1;
	p->nspid = -1;
	size_t nd = r->n_devs ? r->n_devs : 1;
	p->energy_j = calloc(nd, sizeof *p->energy_j);
	p->energy_seen = calloc(nd, sizeof *p->energy_seen);
	if (!p->energy_j || !p->energy_seen) {
		free(p->energy_j);
		free(p->energy_seen);
		return NULL;
	}
	size_t h = pid_hash(pid, r->ptab_cap);
	while (r->ptab[h])
		h = (h + 1) & (r->ptab_cap - 1);
	r->ptab[h] = ++r->n_procs;
	return p;
}

static bool get_pid(const json_t *o, int64_t *pid)
{
	const json_t *v = json_object_get(o, "pid");
	if (!json_is_integer(v) || json_integer_value(v) <= 0)
		return false;
	*pid = (int64_t)json_integer_value(v);
	return true;
}

static int take_procs(struct wm_recording *r, const json_t *arr)
{
	size_t i;
	const json_t *o;
	json_array_foreach(arr, i, o) {
		int64_t pid;
		if (!get_pid(o, &pid))
			continue;
		struct wm_rec_proc *p = proc_get(r, pid);
		if (!p)
			return -ENOMEM;
		double d;
		uint64_t u;
		if (get_num(json_object_get(o, "cpu_s"), &d))
			p->cpu_s += d;
		if (get_u64(json_object_get(o, "rss_bytes"), &u) && u > p->peak_rss_bytes)
			p->peak_rss_bytes = u;
		/* the latest comm: a forked child shows its parent's until it execs */
		const char *comm = json_string_value(json_object_get(o, "comm"));
		if (comm && (!p->comm || strcmp(p->comm, comm) != 0)) {
			char *c = strdup(comm);
			if (!c)
				return -ENOMEM;
			free(p->comm);
			p->comm = c;
		}
		const json_t *e = json_object_get(o, "energy_j");
		if (!json_is_object(e))
			continue;
		for (size_t k = 0; k < r->n_devs; k++) {
			if (get_num(json_object_get(e, r->devs[k].name), &d)) {
				p->energy_j[k] = d;
				p->energy_seen[k] = true;
			}
		}
	}
	return 0;
}

static int take_new_procs(struct wm_recording *r, const json_t *arr)
{
	size_t i;
	const json_t *o;
	json_array_foreach(arr, i, o) {
		int64_t pid;
		const char *cmd = json_string_value(json_object_get(o, "cmdline"));
		if (!get_pid(o, &pid))
			continue;
		struct wm_rec_proc *p = proc_get(r, pid);
		if (!p)
			return -ENOMEM;
		if (json_is_true(json_object_get(o, "included")))
			p->included = true;
		const json_t *rk = json_object_get(o, "rank");
		if (json_is_integer(rk) && json_integer_value(rk) >= 0)
			p->rank = (int64_t)json_integer_value(rk);
		const json_t *ns = json_object_get(o, "nspid");
		if (json_is_integer(ns) && json_integer_value(ns) > 0)
			p->nspid = (int64_t)json_integer_value(ns);
		static const char *const keys[] = {"container", "pod"};
		for (size_t q = 0; q < 2; q++) {
			const char *v = json_string_value(json_object_get(o, keys[q]));
			char **slot = q ? &p->pod : &p->container;
			if (v) {
				char *c = strdup(v);
				if (!c)
					return -ENOMEM;
				free(*slot);
				*slot = c;
			}
		}
		if (!cmd)
			continue;
		/* a pid seen anew (reused) takes its latest command line */
		char *c = strdup(cmd);
		if (!c)
			return -ENOMEM;
		free(p->cmdline);
		p->cmdline = c;
	}
	return 0;
}

/* ---- samples.jsonl ----------------------------------------------------------- */

static double *row_add(struct wm_recording *r)
{
	if (r->n_rows == r->cap_rows) {
		size_t cap = r->cap_rows ? r->cap_rows * 2 : 256;
		if (cap > SIZE_MAX / sizeof(double) / r->stride)
			return NULL;
		double *p = realloc(r->rows, cap * r->stride * sizeof *p);
		if (!p)
			return NULL;
		r->rows = p;
		r->cap_rows = cap;
	}
	double *row = r->rows + r->n_rows * r->stride;
	for (size_t i = 0; i < r->stride; i++)
		row[i] = NAN;
	r->n_rows++;
	return row;
}

/* Validates a parsed line (-EBADMSG with why in msg, nothing changed) and
 * takes its values (-ENOMEM only). */
static int take_line(struct wm_recording *r, const json_t *o, char *msg, size_t msglen)
{
	double t;
	if (!json_is_object(o)) {
		(void)snprintf(msg, msglen, "is not a JSON object");
		return -EBADMSG;
	}
	if (!get_num(json_object_get(o, "t_s"), &t)) {
		(void)snprintf(msg, msglen, "has no numeric \"t_s\"");
		return -EBADMSG;
	}
	double prev_t = r->n_rows ? wm_rec_cell(r, r->n_rows - 1, WM_COL_T) : NAN;
	double *row = row_add(r);
	if (!row)
		return -ENOMEM;
	row[WM_COL_T] = t;
	if (wm_rec_gaps_take_line(r, o, t, prev_t) < 0)
		return -ENOMEM;
	double d;
	if (get_num(json_object_get(o, "cpu_util"), &d))
		row[WM_COL_CPU_UTIL] = d;
	if (get_num(json_object_get(o, "self_cpu_s"), &d))
		row[WM_COL_SELF_CPU] = d;
	if (get_num(json_object_get(o, "cgroup_cpu_s"), &d) && d >= 0)
		r->cgroup_cpu_s = d;
	if (get_num(json_object_get(o, "mem_used_bytes"), &d))
		row[WM_COL_MEM_USED] = d;

	const json_t *energy = json_object_get(o, "energy_j");
	const json_t *power = json_object_get(o, "power_w");
	const json_t *attr = json_object_get(o, "attributed_j");
	for (size_t k = 0; k < r->n_devs; k++) {
		struct wm_rec_dev *dev = &r->devs[k];
		if (get_num(json_object_get(energy, dev->name), &d)) {
			row[wm_rec_dcol(k, WM_DCOL_ENERGY)] = d;
			dev->energy_j = d;
		}
		if (get_num(json_object_get(power, dev->name), &d)) {
			row[wm_rec_dcol(k, WM_DCOL_POWER)] = d;
			/* an interval in a gap or ending one has no power of its own */
			if (!wm_rec_gaps_in_gap(dev) && (isnan(dev->peak_w) || d > dev->peak_w))
				dev->peak_w = d;
		}
		if (get_num(json_object_get(attr, dev->name), &d)) {
			row[wm_rec_dcol(k, WM_DCOL_ATTR)] = d;
			dev->attributed_j = d;
			dev->has_attr = true;
		}
	}
	int rc = take_procs(r, json_object_get(o, "procs"));
	if (!rc)
		rc = take_new_procs(r, json_object_get(o, "new_procs"));
	/* lines written after a gap name it (meta.json's list, when there is
	 * one, has them all) */
	if (!rc && !r->unwritten_from_meta)
		rc = take_unwritten(r, json_object_get(o, "unwritten"), true);
	return rc;
}

static int read_samples(struct wm_recording *r, int dfd, const char *dir, char *err, size_t errlen)
{
	int fd;
	do
		fd = openat(dfd, "samples.jsonl", O_RDONLY | O_CLOEXEC | O_NOCTTY);
	while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			return wm_err(err, errlen, -e,
				      "%s has meta.json but no samples.jsonl; the recording is incomplete or damaged",
				      dir);
		return wm_err(err, errlen, -e, "cannot open %s/samples.jsonl: %s%s", dir, strerror(e),
			      e == EACCES ? " (read it as the user who recorded it, or fix its permissions)" : "");
	}
	FILE *f = fdopen(fd, "r");
	if (!f) {
		int e = errno;
		close(fd);
		return wm_err(err, errlen, -e, "cannot read %s/samples.jsonl: %s", dir, strerror(e));
	}

	char *line = NULL;
	size_t cap = 0;
	size_t lineno = 0, bad_line = 0;
	char bad_msg[256] = "";
	char first_bad[300] = "";   /* what the first unreadable line was */
	size_t n_bytes = 0;         /* what the file held, for the no-sample message */
	int rc = 0;
	for (;;) {
		errno = 0;
		ssize_t n = getline(&line, &cap, f);
		if (n < 0) {
			if (!feof(f))
				rc = wm_err(err, errlen, errno ? -errno : -EIO,
					    "cannot read %s/samples.jsonl after line %zu: %s", dir, lineno,
					    strerror(errno ? errno : EIO));
			break;
		}
		lineno++;
		n_bytes += (size_t)n;
		if (is_blank(line, (size_t)n))
			continue;
		if (bad_line) {
			/* the bad line was not the last one: damage, not a cut */
			rc = wm_err(err, errlen, -EBADMSG,
				    "%s/samples.jsonl line %zu %s; only a cut last line is tolerated, so the recording is damaged (lines before it are intact)",
				    dir, bad_line, bad_msg);
			break;
		}
		if (line[n - 1] != '\n') {
			/* the line in flight when the run was killed */
			r->truncated = true;
			if (!first_bad[0])
				(void)snprintf(first_bad, sizeof first_bad,
					       "line %zu (%zd bytes%s) has no newline, so it is not a complete line",
					       lineno, n, memchr(line, '\0', (size_t)n) ? ", NUL bytes among them" : "");
			break;
		}
		json_error_t je;
		json_t *o = memchr(line, '\0', (size_t)n) ? NULL : json_loadb(line, (size_t)n, 0, &je);
		int lrc;
		if (!o) {
			if (memchr(line, '\0', (size_t)n))
				(void)snprintf(bad_msg, sizeof bad_msg,
					       "holds NUL bytes (blocks zeroed by a crash or a full disk)");
			else
				(void)snprintf(bad_msg, sizeof bad_msg, "is not valid JSON (column %d: %s)",
					       je.column, je.text);
			lrc = -EBADMSG;
		} else {
			lrc = take_line(r, o, bad_msg, sizeof bad_msg);
			json_decref(o);
		}
		if (lrc == -EBADMSG) {
			bad_line = lineno;
			if (!first_bad[0])
				(void)snprintf(first_bad, sizeof first_bad, "line %zu %s", lineno, bad_msg);
			continue;
		}
		if (lrc < 0) {
			rc = wm_err(err, errlen, lrc, "cannot read %s/samples.jsonl line %zu: %s", dir, lineno,
				    strerror(-lrc));
			break;
		}
	}
	if (!rc && bad_line)
		r->truncated = true; /* a bad last line: cut mid-write */
	if (!rc && r->n_rows == 0) {
		char meta_says[96];
		if (r->complete && !isnan(r->duration_s))
			(void)snprintf(meta_says, sizeof meta_says, "meta.json says the run completed after %.1f s",
				       r->duration_s);
		else if (r->complete)
			(void)snprintf(meta_says, sizeof meta_says, "meta.json says the run completed");
		else
			(void)snprintf(meta_says, sizeof meta_says,
				       "meta.json says the run did not complete (killed while starting?)");
		if (first_bad[0])
			rc = wm_err(err, errlen, -EBADMSG,
				    "%s/samples.jsonl holds no readable sample: %s; %s. The recording is damaged: record the run again",
				    dir, first_bad, meta_says);
		else
			rc = wm_err(err, errlen, -EBADMSG,
				    "%s/samples.jsonl holds no sample: it is %s; %s. The recording is damaged or was never written: record the run again",
				    dir, n_bytes ? "only blank lines" : "empty (0 bytes)", meta_says);
	}
	free(line);
	fclose(f);
	return rc;
}

int wm_recording_open(const char *dir, wm_recording **out, char *err, size_t errlen)
{
	*out = NULL;
	struct wm_recording *r = calloc(1, sizeof *r);
	if (!r)
		return wm_err(err, errlen, -ENOMEM, "cannot read the recording %s: out of memory", dir);
	r->self_cpu_s = NAN;
	r->cgroup_cpu_s = NAN;
	r->duration_s = NAN;
	r->dir = strdup(dir);
	if (!r->dir) {
		wm_recording_free(r);
		return wm_err(err, errlen, -ENOMEM, "cannot read the recording %s: out of memory", dir);
	}

	int rc;
	int dfd;
	do
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	while (dfd < 0 && errno == EINTR);
	if (dfd < 0) {
		int e = errno;
		if (e == ENOENT)
			rc = wm_err(err, errlen, -e,
				    "no recording in %s: the folder does not exist (give the folder that `wattmeter run -o` or wattmeter.Meter(output_dir) wrote)",
				    dir);
		else if (e == ENOTDIR)
			rc = wm_err(err, errlen, -e,
				    "no recording in %s: it is not a folder (give the folder that `wattmeter run -o` or wattmeter.Meter(output_dir) wrote)",
				    dir);
		else
			rc = wm_err(err, errlen, -e, "cannot open the recording folder %s: %s%s", dir,
				    strerror(e),
				    e == EACCES ? " (read it as the user who recorded it, or fix its permissions)" : "");
		wm_recording_free(r);
		return rc;
	}

	/* Incomplete: killed, or still being written? The writer holds a lock
	 * on samples.jsonl for as long as it runs (record_write.c) and writes
	 * its final meta.json before it lets go, so the lock is looked at
	 * before meta.json is read: a run that ends in between reads as
	 * complete, never as killed. */
	bool locked = false;
	int sfd = openat(dfd, "samples.jsonl", O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (sfd >= 0) {
		locked = wm_recorder_lock_held(sfd) == 1;
		close(sfd);
	}
	rc = read_meta(r, dfd, dir, err, errlen);
	r->running = !rc && locked && !r->complete;
	if (!rc) {
		r->stride = WM_COL_FIXED + r->n_devs * WM_DCOL_N;
		rc = read_samples(r, dfd, dir, err, errlen);
	}
	close(dfd);
	if (rc < 0) {
		wm_recording_free(r);
		return rc;
	}

	wm_rec_gaps_finish(r, r->n_rows ? wm_rec_cell(r, r->n_rows - 1, WM_COL_T) : 0.0);
	/* A killed run has no end fields: its length is that of its samples. */
	if (isnan(r->duration_s))
		r->duration_s = r->n_rows ? wm_rec_cell(r, r->n_rows - 1, WM_COL_T) : 0.0;
	if (isnan(r->self_cpu_s)) {
		for (size_t i = r->n_rows; i-- > 0;) {
			double s = wm_rec_cell(r, i, WM_COL_SELF_CPU);
			if (!isnan(s)) {
				r->self_cpu_s = s;
				break;
			}
		}
	}
	*out = r;
	return 0;
}
