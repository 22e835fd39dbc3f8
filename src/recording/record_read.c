/* record_read.c — the recording reader (record.h, docs/recording.md).
 *
 * meta.json is parsed whole (it is small: over WM_REC_MAX_META_BYTES is
 * damage). samples.jsonl is read in chunks, one line at a time (never the
 * whole file; a line over WM_REC_MAX_LINE_BYTES is damage); each line is
 * parsed with jansson, reduced to one row of doubles, the details' columns
 * (query.c: zones, gauges, process rows) and updates of the device and
 * process totals, and its JSON tree freed at once: the one pass every query
 * reads from. Energies are
 * cumulative, so the totals are simply the last values seen. Only regular
 * files are read: a FIFO (which would block) or a character device such as
 * /dev/zero (which never ends) in the folder is refused at once.
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
 * A complete line whose numbers cannot be a recording's is damage too, never
 * a figure: a cumulative energy that goes down or below 0, t_s that goes
 * back, a step no device can draw (over WM_REC_MAX_DEVICE_W), a value no
 * measurement reaches (1.7e308), a meta.json "devices" that is not a list of
 * named devices, a meta duration shorter than its samples. The message names
 * the line, the value and what it should be.
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recording/record_priv.h"
#include "recording/record_scan.h"

/* No device wattmeter reads draws this much (a whole node's psys is a few
 * kW, a GPU board about 1 kW): a step above it is damage, not power. */
#define WM_REC_MAX_DEVICE_W 1e5
/* No recorded quantity reaches this (J, W, s or bytes): 1e15 J is a
 * megawatt for 31 years. Larger numbers are damage, and would only
 * overflow what shows them. */
#define WM_REC_MAX_VALUE 1e15
/* t_s and durations: 317 years. */
#define WM_REC_MAX_T_S 1e10

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

/* ---- regular files, lines ---------------------------------------------------- */

int wm_rec_open_regular(int dir_fd, const char *name, int *fd_out)
{
	int fd;
	*fd_out = -1;
	/* O_NONBLOCK: opening a FIFO without a writer would block here */
	do
		fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	*fd_out = fd;
	return 0;
}

/* What a non-regular file is, for the message. */
static const char *file_kind(int dir_fd, const char *name)
{
	struct stat st;
	if (fstatat(dir_fd, name, &st, 0) < 0)
		return "not a regular file";
	if (S_ISFIFO(st.st_mode))
		return "a FIFO (named pipe)";
	if (S_ISCHR(st.st_mode))
		return "a character device";
	if (S_ISBLK(st.st_mode))
		return "a block device";
	if (S_ISDIR(st.st_mode))
		return "a folder";
	if (S_ISSOCK(st.st_mode))
		return "a socket";
	return "not a regular file";
}

void wm_rec_lines_fd(struct wm_rec_lines *l, int fd)
{
	memset(l, 0, sizeof *l);
	l->fd = fd;
}

void wm_rec_lines_mem(struct wm_rec_lines *l, const char *data, size_t n)
{
	memset(l, 0, sizeof *l);
	l->fd = -1;
	l->mem = data ? data : "";
	l->mem_len = data ? n : 0;
}

void wm_rec_lines_close(struct wm_rec_lines *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	free(l->buf);
	l->buf = NULL;
}

int wm_rec_lines_next(struct wm_rec_lines *l, const char **line, size_t *n)
{
	if (l->fd < 0) {
		if (l->mem_pos >= l->mem_len)
			return 0;
		const char *p = l->mem + l->mem_pos;
		size_t left = l->mem_len - l->mem_pos;
		const char *nl = memchr(p, '\n', left);
		size_t len = nl ? (size_t)(nl - p) + 1 : left;
		if (len > WM_REC_MAX_LINE_BYTES)
			return -EFBIG;
		l->mem_pos += len;
		*line = p;
		*n = len;
		return 1;
	}
	for (;;) {
		/* (no arithmetic on buf before the first read: it is NULL) */
		char *nl = l->end > l->beg + l->scanned
				   ? memchr(l->buf + l->beg + l->scanned, '\n', l->end - l->beg - l->scanned)
				   : NULL;
		if (nl) {
			if ((size_t)(nl - (l->buf + l->beg)) >= WM_REC_MAX_LINE_BYTES)
				return -EFBIG;
			*line = l->buf + l->beg;
			*n = (size_t)(nl - (l->buf + l->beg)) + 1;
			l->beg += *n;
			l->scanned = 0;
			return 1;
		}
		l->scanned = l->end - l->beg;
		if (l->scanned > WM_REC_MAX_LINE_BYTES)
			return -EFBIG;
		if (l->eof) {
			if (l->end == l->beg)
				return 0;
			*line = l->buf + l->beg;
			*n = l->end - l->beg;
			l->beg = l->end;
			l->scanned = 0;
			return 1;
		}
		/* room for more: move the unread part down, grow if full */
		if (l->beg > 0) {
			memmove(l->buf, l->buf + l->beg, l->end - l->beg);
			l->end -= l->beg;
			l->beg = 0;
		}
		if (l->end == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 65536;
			if (cap > WM_REC_MAX_LINE_BYTES + 65536)
				cap = WM_REC_MAX_LINE_BYTES + 65536;
			char *nb = realloc(l->buf, cap);
			if (!nb)
				return -ENOMEM;
			l->buf = nb;
			l->cap = cap;
		}
		ssize_t got;
		do
			got = read(l->fd, l->buf + l->end, l->cap - l->end);
		while (got < 0 && errno == EINTR);
		if (got < 0)
			return -errno;
		if (got == 0)
			l->eof = true;
		l->end += (size_t)got;
	}
}

/* ---- freeing --------------------------------------------------------------- */

static void rows_unmap(struct wm_recording *r);

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
	rows_unmap(r);
	wm_rec_detail_free(r);
	free(r->start_utc);
	free(r->model_name);
	free(r->cgroup_path);
	free(r->dir);
	free(r);
}

/* ---- meta.json --------------------------------------------------------------- */

/* meta.json "devices": a non-empty array of objects with a name. Anything
 * else is damage (-EBADMSG, why in msg): read as no device, it would show an
 * empty table that looks like a run that measured nothing. */
static int meta_devices(struct wm_recording *r, const json_t *arr, char *msg, size_t msglen)
{
	if (!json_is_array(arr)) {
		(void)snprintf(msg, msglen, "\"devices\" is %s, not a list of devices",
			       !arr ? "missing" : json_is_string(arr) ? "a string" : json_is_object(arr) ? "an object" :
			       json_is_null(arr) ? "null" : "not an array");
		return -EBADMSG;
	}
	size_t n = json_array_size(arr);
	if (n == 0) {
		(void)snprintf(msg, msglen,
			       "\"devices\" is empty, yet every recording has at least one (the CPU, measured or modelled)");
		return -EBADMSG;
	}
	r->devs = calloc(n, sizeof *r->devs);
	if (!r->devs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const json_t *d = json_array_get(arr, i);
		const char *name = json_string_value(json_object_get(d, "name"));
		if (!json_is_object(d) || !name || !*name) {
			(void)snprintf(msg, msglen, "\"devices\"[%zu] is %s", i,
				       !json_is_object(d) ? "not an object" : "without a \"name\" string");
			return -EBADMSG;
		}
		bool seen = false;
		for (size_t k = 0; k < r->n_devs; k++)
			seen = seen || strcmp(r->devs[k].name, name) == 0;
		if (seen)
			continue; /* the first entry of a name wins */
		struct wm_rec_dev *dev = &r->devs[r->n_devs++];
		dev->name = strdup(name);
		dev->name_len = strlen(name);
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
		dev->energy_t_s = NAN; /* no value yet */
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

/* Fills r from meta.json's text; the version check comes before anything
 * else is trusted. label names the recording in messages. */
static int parse_meta(struct wm_recording *r, const char *label, const char *data, size_t len, char *err,
		      size_t errlen)
{
	json_t *m = NULL;
	int rc;
	json_error_t je;
	m = json_loadb(data ? data : "", len, 0, &je);
	if (!m) {
		rc = wm_err(err, errlen, -EBADMSG,
			    "%s/meta.json is not valid JSON (line %d, column %d: %s); the recording is damaged",
			    label, je.line, je.column, je.text);
		goto out;
	}
	if (!json_is_object(m)) {
		rc = wm_err(err, errlen, -EBADMSG, "%s/meta.json is not a JSON object; the recording is damaged",
			    label);
		goto out;
	}
	const json_t *schema = json_object_get(m, "schema");
	if (schema && (!json_is_string(schema) ||
		       strcmp(json_string_value(schema), "wattmeter.recording") != 0)) {
		rc = wm_err(err, errlen, -EBADMSG,
			    "%s/meta.json is not a wattmeter recording (its \"schema\" is not \"wattmeter.recording\")",
			    label);
		goto out;
	}
	const json_t *ver = json_object_get(m, "schema_version");
	if (!json_is_integer(ver) || json_integer_value(ver) < 1) {
		rc = wm_err(err, errlen, -EBADMSG,
			    "%s/meta.json has no valid schema_version (a positive integer); is this a wattmeter recording?",
			    label);
		goto out;
	}
	r->schema_version = (int64_t)json_integer_value(ver);
	if (r->schema_version > WM_SCHEMA_VERSION) {
		rc = wm_err(err, errlen, -ENOTSUP,
			    "%s uses recording schema version %lld, but this wattmeter reads version %d at most: upgrade wattmeter to read it",
			    label, (long long)r->schema_version, WM_SCHEMA_VERSION);
		goto out;
	}

	char why[160] = "";
	rc = meta_devices(r, json_object_get(m, "devices"), why, sizeof why);
	if (rc == -EBADMSG) {
		rc = wm_err(err, errlen, rc, "%s/meta.json: %s; the recording is damaged", label, why);
		goto out;
	}
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
		rc = wm_err(err, errlen, rc, "cannot read %s/meta.json: out of memory", label);
		goto out;
	}
	v = json_object_get(m, "exit_status");
	if (json_is_integer(v)) {
		r->has_exit = true;
		r->exit_status = (int64_t)json_integer_value(v);
	}
	r->complete = json_is_true(json_object_get(m, "complete"));
	double d;
	v = json_object_get(m, "duration_s");
	if (v && !json_is_null(v)) {
		if (!get_num(v, &d) || d < 0 || d > WM_REC_MAX_T_S) {
			rc = wm_err(err, errlen, -EBADMSG,
				    "%s/meta.json: \"duration_s\" is not a duration (a number of seconds from 0 to %.0e); the recording is damaged",
				    label, WM_REC_MAX_T_S);
			goto out;
		}
		r->duration_s = d;
	}
	if (get_num(json_object_get(m, "period_s"), &d) && d > 0 && d <= WM_REC_MAX_T_S)
		r->period_s = d;
	if (get_num(json_object_get(json_object_get(m, "self"), "cpu_s"), &d) && d >= 0 && d <= WM_REC_MAX_VALUE)
		r->self_cpu_s = d;
	v = json_object_get(m, "cgroup");
	if (json_is_object(v) && json_is_string(json_object_get(v, "path"))) {
		if (!(r->cgroup_path = strdup(json_string_value(json_object_get(v, "path")))))
			rc = wm_err(err, errlen, -ENOMEM, "cannot read %s/meta.json: out of memory", label);
		r->cgroup_version = (int)json_integer_value(json_object_get(v, "version"));
	}
out:
	json_decref(m);
	return rc;
}

/* Reads dir_fd/meta.json (a regular file, at most WM_REC_MAX_META_BYTES)
 * and parses it. */
static int read_meta(struct wm_recording *r, int dfd, const char *dir, char *err, size_t errlen)
{
	wm_buf b;
	wm_buf_init(&b);
	int fd = -1;
	int rc = wm_rec_open_regular(dfd, "meta.json", &fd);
	if (rc == -ENOENT) {
		rc = wm_err(err, errlen, rc,
			    "no recording in %s: meta.json not found (is this the folder that `wattmeter run -o` or wattmeter.Meter(output_dir) wrote?)",
			    dir);
		goto out;
	}
	if (rc == -EINVAL) {
		rc = wm_err(err, errlen, rc,
			    "%s/meta.json is %s, not a regular file: a recording holds regular files (give the folder that `wattmeter run -o` wrote)",
			    dir, file_kind(dfd, "meta.json"));
		goto out;
	}
	while (!rc) {
		if (b.len > WM_REC_MAX_META_BYTES) {
			rc = wm_err(err, errlen, -EFBIG,
				    "%s/meta.json is over %zu MiB, yet a real one is a few kB: it is not a wattmeter meta.json; the recording is damaged",
				    dir, WM_REC_MAX_META_BYTES >> 20);
			goto out;
		}
		rc = wm_buf_reserve(&b, 65536);
		if (rc)
			break;
		ssize_t n = read(fd, b.data + b.len, b.cap - b.len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		b.len += (size_t)n;
		b.data[b.len] = '\0';
	}
	if (rc < 0) {
		rc = wm_err(err, errlen, rc, "cannot read %s/meta.json: %s%s", dir, strerror(-rc),
			    rc == -EACCES ? " (read it as the user who recorded it, or fix its permissions)" : "");
		goto out;
	}
	rc = parse_meta(r, dir, b.data, b.len, err, errlen);
out:
	if (fd >= 0)
		close(fd);
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

/* A device name as messages show it: at most 40 bytes, control characters
 * as '?' (the name comes from the file, the message goes to a terminal). */
static const char *shown(const char *name, char buf[44])
{
	size_t i = 0;
	for (; name[i] && i < 40; i++)
		buf[i] = ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) ? '?' : name[i];
	buf[i] = '\0';
	return buf;
}

/* A quantity that cannot be negative, nor beyond WM_REC_MAX_VALUE. */
static bool plausible(double d)
{
	return d >= 0 && d <= WM_REC_MAX_VALUE;
}

/* A process's cpu_s on a line (summed over lines): 0, or -EDOM with why. */
static int proc_cpu(struct wm_rec_proc *p, double d, char *msg, size_t msglen)
{
	if (!plausible(d)) {
		(void)snprintf(msg, msglen, "gives process %lld a cpu_s of %g s, which no process has", (long long)p->pid,
			       d);
		return -EDOM;
	}
	p->cpu_s += d;
	return 0;
}

/* The latest comm (n bytes, no NUL among them in a scanned line; jansson's
 * strings end at their first): a forked child shows its parent's until it
 * execs. 0 or -ENOMEM. */
static int proc_comm(struct wm_rec_proc *p, const char *comm, size_t n)
{
	if (p->comm && strlen(p->comm) == n && !memcmp(p->comm, comm, n))
		return 0;
	char *c = strndup(comm, n);
	if (!c)
		return -ENOMEM;
	free(p->comm);
	p->comm = c;
	return 0;
}

/* A process's cumulative attributed energy of device k: 0, or -EDOM. */
static int proc_energy(struct wm_recording *r, struct wm_rec_proc *p, size_t k, double d, char *msg,
		       size_t msglen)
{
	if (!plausible(d)) {
		char nb[44];
		(void)snprintf(msg, msglen, "gives process %lld an energy_j.%s of %g J, which no energy is",
			       (long long)p->pid, shown(r->devs[k].name, nb), d);
		return -EDOM;
	}
	p->energy_j[k] = d;
	p->energy_seen[k] = true;
	r->devs[k].proc_energy_seen = true;
	return 0;
}

static int take_procs(struct wm_recording *r, const json_t *arr, char *msg, size_t msglen)
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
		if (get_num(json_object_get(o, "cpu_s"), &d) && proc_cpu(p, d, msg, msglen) < 0)
			return -EDOM;
		if (get_u64(json_object_get(o, "rss_bytes"), &u) && u > p->peak_rss_bytes)
			p->peak_rss_bytes = u;
		const char *comm = json_string_value(json_object_get(o, "comm"));
		if (comm && proc_comm(p, comm, strlen(comm)) < 0)
			return -ENOMEM;
		const json_t *e = json_object_get(o, "energy_j");
		if (!json_is_object(e))
			continue;
		for (size_t k = 0; k < r->n_devs; k++)
			if (get_num(json_object_get(e, r->devs[k].name), &d) && proc_energy(r, p, k, d, msg, msglen) < 0)
				return -EDOM;
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

/* ---- the fast path: lines of the writer's own shape (record_scan.c) ----------- */

/* A line, parsed by jansson (o) or scanned (f): what take_line reads. */
struct line_in {
	const json_t *o;
	const struct wm_scan *f;
};

static const char *const line_nums[WM_SL_NUMS] = {"t_s", "cpu_util", "self_cpu_s", "mem_used_bytes",
						  "cgroup_cpu_s"};
static const char *const line_objs[WM_SO_N] = {"energy_j", "power_w", "attributed_j", "zones_energy_j"};

static bool li_num(const struct line_in *l, int which, double *out)
{
	if (l->o)
		return get_num(json_object_get(l->o, line_nums[which]), out);
	if (!l->f->has[which])
		return false;
	*out = l->f->num[which];
	return true;
}

/* Device dev's member of object obj of a parsed line (li_dev's slow way). */
static bool __attribute__((noinline)) li_dev_json(const json_t *o, int obj, const struct wm_rec_dev *dev,
						  double *out)
{
	return get_num(json_object_get(json_object_get(o, line_objs[obj]), dev->name), out);
}

/* Device dev's member of object obj; k: the device's index in meta.json.
 * Inline: six per device per line, each a few comparisons on a scanned
 * line. */
static inline __attribute__((always_inline)) bool li_dev(const struct line_in *l, int obj,
							 const struct wm_rec_dev *dev, size_t k, double *out)
{
	if (l->o)
		return li_dev_json(l->o, obj, dev, out);
	const struct wm_scan_obj *o = &l->f->obj[obj];
	if (!o->present)
		return false;
	/* the writer writes the devices in meta.json's order: the member at
	 * the device's own index first, then the search */
	const struct wm_scan_val *v = k < o->n && o->m[k].kl == dev->name_len &&
					      wm_scan_eq(o->m[k].k, dev->name, dev->name_len)
					      ? &o->m[k]
					      : wm_scan_find(o->m, o->n, dev->name, dev->name_len);
	if (!v || v->kind != WM_SV_NUM)
		return false;
	*out = v->v;
	return true;
}

/* A device's energy, power and attributed energy on a line (WM_SO_*). */
struct dev_vals {
	double v[WM_SO_ZONES];
	bool has[WM_SO_ZONES];
};
/* take_line keeps the values of this many devices between its check and
 * its taking (on the stack); others it looks up twice. */
#define LINE_DEVS_KEPT 16

static inline void li_dev_vals(const struct line_in *l, const struct wm_rec_dev *dev, size_t k, struct dev_vals *v)
{
	for (int obj = WM_SO_ENERGY; obj < WM_SO_ZONES; obj++)
		v->has[obj] = li_dev(l, obj, dev, k, &v->v[obj]);
}

/* Member WM_SP_* which of a scanned process, or NULL. */
static const struct wm_scan_val *fp_get(const struct wm_scan *f, const struct wm_scan_proc *pr, int which)
{
	return pr->known[which] >= 0 ? &f->vals[pr->first + (size_t)pr->known[which]] : NULL;
}

/* A scanned process's pid: a positive integer, else 0 (skipped, as jansson
 * skips it). */
static int64_t fp_pid(const struct wm_scan *f, const struct wm_scan_proc *pr)
{
	const struct wm_scan_val *v = fp_get(f, pr, WM_SP_PID);
	return v && v->kind == WM_SV_NUM && v->integer && v->iv > 0 ? v->iv : 0;
}

/* take_procs for a scanned line: the same checks, the same order. */
static int fast_procs(struct wm_recording *r, const struct wm_scan *f, char *msg, size_t msglen)
{
	for (size_t i = 0; i < f->n_procs; i++) {
		const struct wm_scan_proc *pr = &f->procs[i];
		int64_t pid = fp_pid(f, pr);
		if (!pid)
			continue;
		struct wm_rec_proc *p = proc_get(r, pid);
		if (!p)
			return -ENOMEM;
		const struct wm_scan_val *v = fp_get(f, pr, WM_SP_CPU_S);
		if (v && v->kind == WM_SV_NUM && proc_cpu(p, v->v, msg, msglen) < 0)
			return -EDOM;
		v = fp_get(f, pr, WM_SP_RSS);
		if (v && v->kind == WM_SV_NUM && (v->integer ? v->iv >= 0 : v->v >= 0 && v->v < 18446744073709551616.0)) {
			uint64_t u = v->integer ? (uint64_t)v->iv : (uint64_t)v->v;
			if (u > p->peak_rss_bytes)
				p->peak_rss_bytes = u;
		}
		v = fp_get(f, pr, WM_SP_COMM);
		if (v && v->kind == WM_SV_STR && proc_comm(p, v->s, v->sl) < 0)
			return -ENOMEM;
		v = fp_get(f, pr, WM_SP_ENERGY);
		if (!v || v->kind != WM_SV_OBJ)
			continue;
		const struct wm_scan_val *em = f->subs + v->sub;
		for (size_t k = 0; k < r->n_devs; k++) {
			const struct wm_scan_val *ev = wm_scan_find(em, v->nsub, r->devs[k].name, r->devs[k].name_len);
			if (ev && ev->kind == WM_SV_NUM && proc_energy(r, p, k, ev->v, msg, msglen) < 0)
				return -EDOM;
		}
	}
	return 0;
}

/* Every number of a flat object into the last row of s, named
 * "<prefix><key>", in the object's order (as query.c's jansson path). */
static int fast_members(struct wm_rec_cols *s, const char *prefix, size_t pl, const struct wm_scan_val *m,
			size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (m[i].kind != WM_SV_NUM)
			continue;
		int rc = wm_rec_cols_set(s, prefix, pl, m[i].k, m[i].kl, m[i].v);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* The details of a scanned line into the details' columns, as
 * wm_rec_detail_take_line takes them from a parsed one: t_s, the zones, the
 * gauges, then one row per process (row, t_s, its numbers, then its
 * objects' numbers). */
static int fast_detail(struct wm_recording *r, const struct wm_scan *f, double t)
{
	struct wm_rec_cols *rows = &r->drows, *pr = &r->dprocs;
	int rc = wm_rec_cols_row(rows);
	if (!rc)
		rc = wm_rec_cols_set(rows, "t_s", 3, "", 0, t);
	const struct wm_scan_obj *z = &f->obj[WM_SO_ZONES];
	for (size_t i = 0; !rc && z->present && i < z->n; i++) {
		/* a zone key of any length: the jansson path's bound on the
		 * name (511 bytes) kept */
		if (z->m[i].kind != WM_SV_NUM || z->m[i].kl + 15 >= 512)
			continue;
		rc = wm_rec_cols_set(rows, "zones_energy_j.", 15, z->m[i].k, z->m[i].kl, z->m[i].v);
	}
	for (size_t g = 0; !rc && g < f->n_gauges; g++) {
		const struct wm_scan_val *dv = &f->vals[f->gauges_first + g];
		char prefix[256];
		int n = snprintf(prefix, sizeof prefix, "gauges.%.*s.", (int)dv->kl, dv->k);
		if (n < 0 || (size_t)n >= sizeof prefix)
			continue;
		rc = fast_members(rows, prefix, (size_t)n, f->subs + dv->sub, dv->nsub);
	}
	for (size_t i = 0; !rc && i < f->n_procs; i++) {
		const struct wm_scan_val *m = f->vals + f->procs[i].first;
		size_t n = f->procs[i].n;
		if (!fp_pid(f, &f->procs[i]))
			continue; /* as the summary skips it */
		rc = wm_rec_cols_row(pr);
		if (!rc)
			rc = wm_rec_cols_set(pr, "row", 3, "", 0, (double)(rows->len - 1));
		if (!rc)
			rc = wm_rec_cols_set(pr, "t_s", 3, "", 0, t);
		if (!rc)
			rc = fast_members(pr, "", 0, m, n);
		for (size_t j = 0; !rc && j < n; j++) {
			if (m[j].kind != WM_SV_OBJ)
				continue;
			char prefix[256];
			int w = snprintf(prefix, sizeof prefix, "%.*s.", (int)m[j].kl, m[j].k);
			if (w < 0 || (size_t)w >= sizeof prefix)
				continue;
			rc = fast_members(pr, prefix, (size_t)w, f->subs + m[j].sub, m[j].nsub);
		}
	}
	return rc;
}

/* ---- samples.jsonl ----------------------------------------------------------- */

/* The rows' block: its own anonymous mapping (page-aligned), so that
 * growing can hand each old column's pages back as soon as it is copied. */
static double *rows_map(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void rows_unmap(struct wm_recording *r)
{
	if (r->rows)
		(void)munmap(r->rows, r->cap_rows * r->stride * sizeof *r->rows);
	r->rows = NULL;
}

/* The whole pages within [p, p + n) back to the kernel (their contents are
 * no longer needed; the mapping stays until munmap). */
static void pages_release(void *p, size_t n)
{
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t b = ((uintptr_t)p + pg - 1) & ~(pg - 1), e = ((uintptr_t)p + n) & ~(pg - 1);
	if (e > b)
		(void)madvise((void *)b, e - b, MADV_DONTNEED);
}

/* Adds a row of NaN; its index, or (size_t)-1 on ENOMEM. The columns are
 * stored one after the other (column c at rows + c * cap_rows), so a query
 * or a DataFrame reads each as one contiguous array; growing moves them:
 * into a new mapping twice the size (untouched pages cost no memory), one
 * column at a time, each old column's pages released once copied, so the
 * peak is the rows once plus one column, not twice the rows.
 *
 * A read for the summary only (r->summary_only) keeps one row, rewritten
 * line after line: n_rows counts the lines, memory stays the same whatever
 * the recording's length. */
static size_t row_add(struct wm_recording *r)
{
	if (r->summary_only && r->cap_rows) {
		r->n_rows++;
		for (size_t c = 0; c < r->stride; c++)
			r->rows[c] = NAN;
		return 0;
	}
	if (r->n_rows == r->cap_rows) {
		size_t cap = r->summary_only ? 1 : r->cap_rows ? r->cap_rows * 2 : 32;
		if (cap > SIZE_MAX / sizeof(double) / r->stride)
			return (size_t)-1;
		double *p = rows_map(cap * r->stride * sizeof *p);
		if (!p)
			return (size_t)-1;
		for (size_t c = 0; c < r->stride && r->n_rows; c++) {
			memcpy(p + c * cap, r->rows + c * r->cap_rows, r->n_rows * sizeof *p);
			pages_release(r->rows + c * r->cap_rows, r->cap_rows * sizeof *p);
		}
		rows_unmap(r);
		r->rows = p;
		r->cap_rows = cap;
	}
	size_t i = r->summary_only ? 0 : r->n_rows;
	r->n_rows++;
	for (size_t c = 0; c < r->stride; c++)
		r->rows[c * r->cap_rows + i] = NAN;
	return i;
}

/* Checks a cumulative energy (J) of device dev at t: never negative, never
 * down, never a step above WM_REC_MAX_DEVICE_W. prev/prev_t: the last value
 * and its time (0 at 0 before any). 0, or -EDOM with why in msg. */
static int check_energy(const char *what, const char *name, double e, double prev, double prev_t, double t,
			char *msg, size_t msglen)
{
	char nb[44]; /* the name as shown, made only for a message */
	if (!plausible(e)) {
		(void)snprintf(msg, msglen, "has %s.%s = %g J, which no energy counter reads (it counts up from 0)",
			       what, shown(name, nb), e);
		return -EDOM;
	}
	/* values are written with 6 decimals: equal ones may differ by that */
	if (e < prev - 1e-6 - 1e-12 * prev) {
		(void)snprintf(msg, msglen,
			       "has %s.%s = %.6g J, down from %.6g J on an earlier line: energies are cumulative and never go down",
			       what, shown(name, nb), e, prev);
		return -EDOM;
	}
	/* t_s has microsecond resolution: 2 us of slack between two stamps.
	 * A device's first value steps from 0 at t = 0, where every energy
	 * starts; a first value at t = 0 itself closes no interval. */
	if (isnan(prev_t)) {
		if (t == 0)
			return 0;
		prev_t = 0;
	}
	double w = (e - prev) / (t - prev_t + 2e-6);
	if (w > WM_REC_MAX_DEVICE_W) {
		(void)snprintf(msg, msglen,
			       "has %s.%s rise by %.6g J in %.6g s, that is %.3g W: no device draws over %.0f kW",
			       what, shown(name, nb), e - prev, t - prev_t, w, WM_REC_MAX_DEVICE_W / 1000);
		return -EDOM;
	}
	return 0;
}

/* Validates a parsed line and takes its values. -EBADMSG (why in msg,
 * nothing changed) for a line of the wrong shape, which may be a cut last
 * line; -EDOM (why in msg) for a complete line whose numbers cannot be a
 * recording's, which is damage wherever it is; -ENOMEM. */
static int take_line(struct wm_recording *r, const struct line_in *l, char *msg, size_t msglen)
{
	double t;
	const json_t *o = l->o;
	if (!l->f && !json_is_object(o)) {
		(void)snprintf(msg, msglen, "is not a JSON object");
		return -EBADMSG;
	}
	if (!li_num(l, WM_SL_T, &t)) {
		(void)snprintf(msg, msglen, "has no numeric \"t_s\"");
		return -EBADMSG;
	}
	if (t < 0 || t > WM_REC_MAX_T_S) {
		(void)snprintf(msg, msglen, "has t_s = %g s, outside 0 to %.0e s since the start", t, WM_REC_MAX_T_S);
		return -EDOM;
	}
	double prev_t = r->n_rows ? r->samples_end_s : 0.0;
	if (t < prev_t) {
		(void)snprintf(msg, msglen, "has t_s = %.6g s, back from %.6g s on the line before: time never goes back",
			       t, prev_t);
		return -EDOM;
	}
	double prev_row_t = r->n_rows ? r->samples_end_s : NAN; /* for the gaps */

	double d;
	/* every value is checked before any is taken; the first devices'
	 * values are kept for the taking (looked up once, not twice) */
	struct dev_vals kept[LINE_DEVS_KEPT];
	for (size_t k = 0; k < r->n_devs; k++) {
		const struct wm_rec_dev *dev = &r->devs[k];
		struct dev_vals dv, *v = k < LINE_DEVS_KEPT ? &kept[k] : &dv;
		li_dev_vals(l, dev, k, v);
		int rc = 0;
		if (v->has[WM_SO_ENERGY])
			rc = check_energy("energy_j", dev->name, v->v[WM_SO_ENERGY], dev->energy_j, dev->energy_t_s, t,
					  msg, msglen);
		if (!rc && v->has[WM_SO_ATTR])
			rc = check_energy("attributed_j", dev->name, v->v[WM_SO_ATTR], dev->attributed_j, NAN, t, msg,
					  msglen);
		if (!rc && v->has[WM_SO_POWER] && !(v->v[WM_SO_POWER] >= 0 && v->v[WM_SO_POWER] <= WM_REC_MAX_DEVICE_W)) {
			char nb[44];
			(void)snprintf(msg, msglen, "has power_w.%s = %g W, outside 0 to %.0f kW", shown(dev->name, nb),
				       v->v[WM_SO_POWER], WM_REC_MAX_DEVICE_W / 1000);
			rc = -EDOM;
		}
		if (rc)
			return rc;
	}

	size_t ri = row_add(r);
	if (ri == (size_t)-1)
		return -ENOMEM;
#define row_set(col, v) (r->rows[(size_t)(col) * r->cap_rows + ri] = (v))
	row_set(WM_COL_T, t);
	r->samples_end_s = t;
	if (wm_rec_gaps_take_line(r, o, t, prev_row_t) < 0)
		return -ENOMEM;
	if (li_num(l, WM_SL_CPU_UTIL, &d))
		row_set(WM_COL_CPU_UTIL, d);
	if (li_num(l, WM_SL_SELF_CPU, &d) && plausible(d))
		row_set(WM_COL_SELF_CPU, r->last_self_cpu_s = d);
	if (li_num(l, WM_SL_CGROUP_CPU, &d) && d >= 0)
		r->cgroup_cpu_s = d;
	if (li_num(l, WM_SL_MEM_USED, &d))
		row_set(WM_COL_MEM_USED, d);

	for (size_t k = 0; k < r->n_devs; k++) {
		struct wm_rec_dev *dev = &r->devs[k];
		struct dev_vals dv, *v = k < LINE_DEVS_KEPT ? &kept[k] : &dv;
		if (v == &dv)
			li_dev_vals(l, dev, k, v);
		if (v->has[WM_SO_ENERGY]) {
			d = v->v[WM_SO_ENERGY];
			row_set(wm_rec_dcol(k, WM_DCOL_ENERGY), d);
			dev->energy_j = d;
			dev->energy_t_s = t;
		}
		if (v->has[WM_SO_POWER]) {
			d = v->v[WM_SO_POWER];
			row_set(wm_rec_dcol(k, WM_DCOL_POWER), d);
			/* an interval in a gap or ending one has no power of its own */
			if (!wm_rec_gaps_in_gap(dev) && (isnan(dev->peak_w) || d > dev->peak_w))
				dev->peak_w = d;
		}
		if (v->has[WM_SO_ATTR]) {
			d = v->v[WM_SO_ATTR];
			row_set(wm_rec_dcol(k, WM_DCOL_ATTR), d);
			dev->attributed_j = d;
			dev->has_attr = true;
		}
	}
	int rc = l->f ? fast_procs(r, l->f, msg, msglen) : take_procs(r, json_object_get(o, "procs"), msg, msglen);
	/* (a scanned line has neither: the scanner leaves them to jansson) */
	if (!rc && o)
		rc = take_new_procs(r, json_object_get(o, "new_procs"));
	/* lines written after a gap name it (meta.json's list, when there is
	 * one, has them all) */
	if (!rc && o && !r->unwritten_from_meta)
		rc = take_unwritten(r, json_object_get(o, "unwritten"), true);
	/* the details too, in this one pass: no query reads the file again */
	if (!rc && !r->summary_only)
		rc = l->f ? fast_detail(r, l->f, t) : wm_rec_detail_take_line(r, o, t);
	return rc;
#undef row_set
}

/* Reads every line of l into r. label names the recording in messages. */
static int read_lines(struct wm_recording *r, struct wm_rec_lines *l, const char *label, char *err,
		      size_t errlen)
{
	const char *line = NULL;
	size_t lineno = 0, bad_line = 0;
	char bad_msg[256] = "";
	char first_bad[300] = "";   /* what the first unreadable line was */
	size_t n_bytes = 0;         /* what the file held, for the no-sample message */
	int rc = 0;
	struct wm_scan fl;
	memset(&fl, 0, sizeof fl);
	for (;;) {
		size_t n = 0;
		int got = wm_rec_lines_next(l, &line, &n);
		if (got == -EFBIG) {
			rc = wm_err(err, errlen, -EBADMSG,
				    "%s/samples.jsonl line %zu is longer than %zu MiB: it is not a sample line (is the file something else, or zeroed by a crash?); the recording is damaged",
				    label, lineno + 1, WM_REC_MAX_LINE_BYTES >> 20);
			break;
		}
		if (got < 0) {
			rc = wm_err(err, errlen, got, "cannot read %s/samples.jsonl after line %zu: %s", label, lineno,
				    strerror(-got));
			break;
		}
		if (got == 0)
			break;
		lineno++;
		n_bytes += n;
		if (is_blank(line, n))
			continue;
		if (bad_line) {
			/* the bad line was not the last one: damage, not a cut */
			rc = wm_err(err, errlen, -EBADMSG,
				    "%s/samples.jsonl line %zu %s; only a cut last line is tolerated, so the recording is damaged (lines before it are intact)",
				    label, bad_line, bad_msg);
			break;
		}
		if (line[n - 1] != '\n') {
			/* the line in flight when the run was killed */
			r->truncated = true;
			if (!first_bad[0])
				(void)snprintf(first_bad, sizeof first_bad,
					       "line %zu (%zu bytes%s) has no newline, so it is not a complete line",
					       lineno, n, memchr(line, '\0', n) ? ", NUL bytes among them" : "");
			break;
		}
		int lrc = 1;
		json_t *o = NULL;
		json_error_t je;
		if (!r->no_fast && wm_scan_line(line, n, &fl) == 1) {
			struct line_in li = {NULL, &fl};
			lrc = take_line(r, &li, bad_msg, sizeof bad_msg);
		}
		if (lrc == 1)
			o = memchr(line, '\0', n) ? NULL : json_loadb(line, n, 0, &je);
		if (lrc != 1) {
			/* taken by the fast path */
		} else if (!o) {
			if (memchr(line, '\0', n))
				(void)snprintf(bad_msg, sizeof bad_msg,
					       "holds NUL bytes (blocks zeroed by a crash or a full disk)");
			else
				(void)snprintf(bad_msg, sizeof bad_msg, "is not valid JSON (column %d: %s)",
					       je.column, je.text);
			lrc = -EBADMSG;
		} else {
			struct line_in li = {o, NULL};
			lrc = take_line(r, &li, bad_msg, sizeof bad_msg);
			json_decref(o);
		}
		if (lrc == -EDOM) {
			rc = wm_err(err, errlen, -EBADMSG,
				    "%s/samples.jsonl line %zu %s; the recording is damaged (the lines before it are intact)",
				    label, lineno, bad_msg);
			break;
		}
		if (lrc == -EBADMSG) {
			bad_line = lineno;
			if (!first_bad[0])
				(void)snprintf(first_bad, sizeof first_bad, "line %zu %s", lineno, bad_msg);
			continue;
		}
		if (lrc < 0) {
			rc = wm_err(err, errlen, lrc, "cannot read %s/samples.jsonl line %zu: %s", label, lineno,
				    strerror(-lrc));
			break;
		}
	}
	wm_scan_free(&fl);
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
				    label, first_bad, meta_says);
		else
			rc = wm_err(err, errlen, -EBADMSG,
				    "%s/samples.jsonl holds no sample: it is %s; %s. The recording is damaged or was never written: record the run again",
				    label, n_bytes ? "only blank lines" : "empty (0 bytes)", meta_says);
	}
	return rc;
}

static int read_samples(struct wm_recording *r, int dfd, const char *dir, char *err, size_t errlen)
{
	int fd;
	int rc = wm_rec_open_regular(dfd, "samples.jsonl", &fd);
	if (rc == -ENOENT)
		return wm_err(err, errlen, rc,
			      "%s has meta.json but no samples.jsonl; the recording is incomplete or damaged", dir);
	if (rc == -EINVAL)
		return wm_err(err, errlen, rc,
			      "%s/samples.jsonl is %s, not a regular file: a recording holds regular files (give the folder that `wattmeter run -o` wrote)",
			      dir, file_kind(dfd, "samples.jsonl"));
	if (rc < 0)
		return wm_err(err, errlen, rc, "cannot open %s/samples.jsonl: %s%s", dir, strerror(-rc),
			      rc == -EACCES ? " (read it as the user who recorded it, or fix its permissions)" : "");
	struct wm_rec_lines l;
	wm_rec_lines_fd(&l, fd);
	rc = read_lines(r, &l, dir, err, errlen);
	wm_rec_lines_close(&l);
	return rc;
}

static struct wm_recording *recording_new(const char *label)
{
	struct wm_recording *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->self_cpu_s = NAN;
	r->cgroup_cpu_s = NAN;
	r->duration_s = NAN;
	r->period_s = NAN;
	r->samples_end_s = NAN;
	r->last_self_cpu_s = NAN;
	r->dir = strdup(label);
	if (!r->dir) {
		free(r);
		return NULL;
	}
	return r;
}

/* After every line: what the samples say against what meta.json says. */
static int finish_read(struct wm_recording *r, const char *label, char *err, size_t errlen)
{
	double end = r->n_rows ? r->samples_end_s : 0.0;
	wm_rec_gaps_finish(r, end);
	if (wm_rec_detail_finish(r) < 0)
		return wm_err(err, errlen, -ENOMEM, "cannot read the recording %s: out of memory", label);
	if (!isnan(r->duration_s) && end > r->duration_s + 0.05 + 1e-6 * r->duration_s)
		return wm_err(err, errlen, -EBADMSG,
			      "%s/meta.json says the run lasted %.6g s, but its samples run to %.6g s: one of the two is damaged",
			      label, r->duration_s, end);
	/* A killed run has no end fields: its length is that of its samples. */
	if (isnan(r->duration_s))
		r->duration_s = end;
	/* Samples that stop more than a period before the run's end were cut
	 * short (a full disk, a copy taken while the run wrote): the energies
	 * are those of the span they cover, and the summary says so. */
	double period = isnan(r->period_s) ? 0.5 : r->period_s;
	r->samples_short = r->duration_s - end > period + 0.01;
	if (isnan(r->self_cpu_s))
		r->self_cpu_s = r->last_self_cpu_s; /* the last line's that had one */
	return 0;
}

static int parse_mem(const char *label, const char *meta, size_t meta_len, const char *samples,
		     size_t samples_len, bool no_fast, bool summary_only, wm_recording **out, char *err,
		     size_t errlen)
{
	*out = NULL;
	struct wm_recording *r = recording_new(label);
	if (!r)
		return wm_err(err, errlen, -ENOMEM, "cannot read the recording %s: out of memory", label);
	r->no_fast = no_fast;
	r->summary_only = summary_only;
	int rc = meta_len > WM_REC_MAX_META_BYTES
			 ? wm_err(err, errlen, -EFBIG, "%s/meta.json is over %zu MiB: it is not a wattmeter meta.json",
				  label, WM_REC_MAX_META_BYTES >> 20)
			 : parse_meta(r, label, meta, meta_len, err, errlen);
	if (!rc) {
		r->stride = WM_COL_FIXED + r->n_devs * WM_DCOL_N;
		struct wm_rec_lines l;
		wm_rec_lines_mem(&l, samples, samples_len);
		rc = read_lines(r, &l, label, err, errlen);
		wm_rec_lines_close(&l);
	}
	if (!rc)
		rc = finish_read(r, label, err, errlen);
	if (rc < 0) {
		wm_recording_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

int wm_recording_parse(const char *label, const char *meta, size_t meta_len, const char *samples,
		       size_t samples_len, wm_recording **out, char *err, size_t errlen)
{
	return parse_mem(label, meta, meta_len, samples, samples_len, false, false, out, err, errlen);
}

int wm_recording_parse_jansson(const char *label, const char *meta, size_t meta_len, const char *samples,
			       size_t samples_len, wm_recording **out, char *err, size_t errlen)
{
	return parse_mem(label, meta, meta_len, samples, samples_len, true, false, out, err, errlen);
}

int wm_recording_parse_summary(const char *label, const char *meta, size_t meta_len, const char *samples,
			       size_t samples_len, wm_recording **out, char *err, size_t errlen)
{
	return parse_mem(label, meta, meta_len, samples, samples_len, false, true, out, err, errlen);
}

static int open_dir(const char *dir, bool summary_only, wm_recording **out, char *err, size_t errlen)
{
	*out = NULL;
	struct wm_recording *r = recording_new(dir);
	if (!r)
		return wm_err(err, errlen, -ENOMEM, "cannot read the recording %s: out of memory", dir);
	r->summary_only = summary_only;

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
	if (!rc)
		rc = finish_read(r, dir, err, errlen);
	if (rc < 0) {
		wm_recording_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

int wm_recording_open(const char *dir, wm_recording **out, char *err, size_t errlen)
{
	return open_dir(dir, false, out, err, errlen);
}

int wm_recording_open_summary(const char *dir, wm_recording **out, char *err, size_t errlen)
{
	return open_dir(dir, true, out, err, errlen);
}
