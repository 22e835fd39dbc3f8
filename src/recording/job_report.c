/* job_report.c — `wattmeter report --job DIR...`: one job's recordings, made
 * by a meter in every rank on every node (meter/job.h), merged into one
 * summary: energy per node and per device from each node's node meter (so a
 * device is counted once per node, not once per rank), energy attributed to
 * each rank, the total and the time span.
 *
 * A DIR is a recording, or a folder holding recordings (its subfolders with
 * a meta.json). A node whose recordings have no node meter (meters started
 * without a job) takes its longest recording, with a warning. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "recording/record.h"
#include "wattmeter.h"

struct jrec {
	char *dir;
	json_t *meta, *sum;
	const char *host;
	int node_meter;
	long long rank;         /* -1 none */
	double start_s, dur_s;
};

struct jlist {
	struct jrec *v;
	size_t n, cap;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static long long rank_of(const json_t *meta)
{
	const json_t *job = json_object_get(meta, "job");
	const json_t *r = json_object_get(job, "rank");
	if (json_is_integer(r))
		return (long long)json_integer_value(r);
	static const char *const vars[] = {"RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK"};
	const json_t *l = json_object_get(meta, "launcher");
	for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
		const char *s = json_string_value(json_object_get(l, vars[i]));
		char *end;
		if (s && *s) {
			long long v = strtoll(s, &end, 10);
			if (!*end && v >= 0)
				return v;
		}
	}
	return -1;
}

static int add_rec(struct jlist *l, const char *dir, char *err, size_t errlen)
{
	char e2[1024] = "";
	char *js = wm_report_json(dir, e2, sizeof e2);
	if (!js)
		return wm_err(err, errlen, -errno, "%s", e2);
	json_error_t je;
	json_t *sum = json_loads(js, 0, &je);
	free(js);
	char mp[4200];
	snprintf(mp, sizeof mp, "%s/meta.json", dir);
	json_t *meta = json_load_file(mp, 0, &je);
	if (!sum || !meta) {
		json_decref(sum);
		json_decref(meta);
		return wm_err(err, errlen, -EBADMSG, "cannot read the recording %s", dir);
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 8;
		struct jrec *v = realloc(l->v, cap * sizeof *v);
		if (!v) {
			json_decref(sum);
			json_decref(meta);
			return wm_err(err, errlen, -ENOMEM, "out of memory");
		}
		l->v = v;
		l->cap = cap;
	}
	struct jrec *r = &l->v[l->n];
	memset(r, 0, sizeof *r);
	r->dir = strdup(dir);
	if (!r->dir) {
		json_decref(sum);
		json_decref(meta);
		return wm_err(err, errlen, -ENOMEM, "out of memory");
	}
	l->n++;
	r->meta = meta;
	r->sum = sum;
	r->host = json_string_value(json_object_get(json_object_get(meta, "launcher"), "hostname"));
	if (!r->host)
		r->host = json_string_value(json_object_get(json_object_get(meta, "host"), "hostname"));
	if (!r->host)
		r->host = "?";
	const json_t *job = json_object_get(meta, "job");
	r->node_meter = json_is_object(job) ? json_is_true(json_object_get(job, "node_meter")) : 1;
	r->rank = rank_of(meta);
	r->start_s = json_number_value(json_object_get(meta, "start_unix_s"));
	r->dur_s = json_number_value(json_object_get(sum, "duration_s"));
	return 0;
}

/* A recording, or a folder of recordings. */
static int add_dir(struct jlist *l, const char *dir, char *err, size_t errlen)
{
	char mp[4200];
	struct stat st;
	snprintf(mp, sizeof mp, "%s/meta.json", dir);
	if (stat(mp, &st) == 0)
		return add_rec(l, dir, err, errlen);
	DIR *d = opendir(dir);
	if (!d)
		return wm_err(err, errlen, -errno, "no recording in %s: %s (give recordings, or a folder holding them)",
			      dir, strerror(errno));
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	struct dirent *e;
	while (!rc && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(mp, sizeof mp, "%s/%s/meta.json", dir, e->d_name);
		if (stat(mp, &st) != 0)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			char **nn = realloc(names, cap * sizeof *nn);
			if (!nn) {
				rc = -ENOMEM;
				break;
			}
			names = nn;
		}
		if (!(names[n] = malloc(strlen(dir) + strlen(e->d_name) + 2)))
			rc = -ENOMEM;
		else
			sprintf(names[n++], "%s/%s", dir, e->d_name); /* sized just above */
	}
	closedir(d);
	if (!rc && n == 0)
		rc = wm_err(err, errlen, -ENOENT, "no recording in %s (no meta.json there or in its subfolders)", dir);
	else if (rc == -ENOMEM)
		wm_err(err, errlen, rc, "out of memory");
	if (n)
		qsort(names, n, sizeof *names, cmp_str);
	for (size_t i = 0; i < n; i++) {
		if (!rc)
			rc = add_rec(l, names[i], err, errlen);
		free(names[i]);
	}
	free(names);
	return rc;
}

static void free_list(struct jlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].dir);
		json_decref(l->v[i].meta);
		json_decref(l->v[i].sum);
	}
	free(l->v);
}

/* Device names of a recording (meta.json devices[].name), in order. */
static void add_energy(json_t *acc, const struct jrec *r)
{
	const json_t *devs = json_object_get(r->meta, "devices");
	const json_t *e = json_object_get(r->sum, "energy_j");
	size_t i;
	const json_t *d;
	json_array_foreach(devs, i, d) {
		const char *name = json_string_value(json_object_get(d, "name"));
		const json_t *v = name ? json_object_get(e, name) : NULL;
		if (!json_is_number(v))
			continue;
		double prev = json_number_value(json_object_get(acc, name));
		json_object_set_new(acc, name, json_real(prev + json_number_value(v)));
	}
}

/* psys holds cpu and dram: where it is, they are left out of the total. */
static double total_of(const json_t *energy)
{
	int psys = json_object_get(energy, "psys") != NULL;
	double t = 0;
	const char *k;
	const json_t *v;
	json_object_foreach((json_t *)energy, k, v) {
		if (psys && (!strcmp(k, "cpu") || !strcmp(k, "dram")))
			continue;
		t += json_number_value(v);
	}
	return t;
}

static json_t *merge(struct jlist *l)
{
	json_t *o = json_object(), *nodes = json_object(), *energy = json_object(), *ranks = json_object();
	json_t *recs = json_array(), *warn = json_array();
	const char *key = NULL;
	double t0 = INFINITY, t1 = -INFINITY;
	for (size_t i = 0; i < l->n; i++) {
		struct jrec *r = &l->v[i];
		const char *k = json_string_value(json_object_get(json_object_get(r->meta, "job"), "key"));
		if (k && !key)
			key = k;
		else if (k && key && strcmp(k, key) != 0) {
			char w[600];
			snprintf(w, sizeof w, "%s belongs to job %s, not %s", r->dir, k, key);
			json_array_append_new(warn, json_string(w));
		}
		if (isfinite(r->start_s) && r->start_s > 0) {
			t0 = fmin(t0, r->start_s);
			t1 = fmax(t1, r->start_s + (isfinite(r->dur_s) ? r->dur_s : 0));
		}
		json_t *jr = json_pack("{s:s,s:s,s:b}", "recording", r->dir, "node", r->host, "node_meter", r->node_meter);
		json_object_set_new(jr, "rank", r->rank >= 0 ? json_integer(r->rank) : json_null());
		json_array_append_new(recs, jr);
	}
	/* nodes: the node meters' recordings, else the longest one */
	for (size_t i = 0; i < l->n; i++) {
		const char *host = l->v[i].host;
		if (json_object_get(nodes, host))
			continue;
		json_t *node = json_object(), *ne = json_object(), *meters = json_array(), *nranks = json_array();
		int any = 0;
		for (size_t j = 0; j < l->n; j++)
			any |= !strcmp(l->v[j].host, host) && l->v[j].node_meter;
		size_t longest = i;
		for (size_t j = 0; j < l->n; j++)
			if (!strcmp(l->v[j].host, host) && l->v[j].dur_s > l->v[longest].dur_s)
				longest = j;
		if (!any) {
			char w[700];
			snprintf(w, sizeof w, "node %s: no node meter among its recordings (started without a job?): "
				 "its devices are taken from %s alone", host, l->v[longest].dir);
			json_array_append_new(warn, json_string(w));
		}
		for (size_t j = 0; j < l->n; j++) {
			struct jrec *r = &l->v[j];
			if (strcmp(r->host, host) != 0)
				continue;
			if (r->rank >= 0)
				json_array_append_new(nranks, json_integer(r->rank));
			if (any ? !r->node_meter : j != longest)
				continue;
			json_array_append_new(meters, json_string(r->dir));
			add_energy(ne, r);
			/* the ranks this node meter attributed */
			const char *rk;
			json_t *rv;
			json_object_foreach(json_object_get(r->sum, "ranks"), rk, rv) {
				json_t *x = json_object_get(ranks, rk);
				if (!x) {
					x = json_pack("{s:s,s:o,s:f}", "node", host, "attributed_j", json_object(), "cpu_s", 0.0);
					json_object_set_new(ranks, rk, x);
				}
				json_t *xa = json_object_get(x, "attributed_j");
				const char *dk;
				json_t *dv;
				json_object_foreach(json_object_get(rv, "attributed_j"), dk, dv)
					json_object_set_new(xa, dk, json_real(json_number_value(json_object_get(xa, dk)) +
									      json_number_value(dv)));
				json_object_set_new(x, "cpu_s", json_real(json_number_value(json_object_get(x, "cpu_s")) +
									  json_number_value(json_object_get(rv, "cpu_s"))));
			}
		}
		const char *dk;
		json_t *dv;
		json_object_foreach(ne, dk, dv)
			json_object_set_new(energy, dk, json_real(json_number_value(json_object_get(energy, dk)) +
								  json_number_value(dv)));
		json_object_set_new(node, "node_meters", meters);
		json_object_set_new(node, "total_j", json_real(total_of(ne)));
		json_object_set_new(node, "energy_j", ne);
		json_object_set_new(node, "ranks", nranks);
		json_object_set_new(nodes, host, node);
	}
	/* a rank with a recording but no node meter's attribution */
	for (size_t i = 0; i < l->n; i++) {
		char rk[32];
		if (l->v[i].rank < 0)
			continue;
		snprintf(rk, sizeof rk, "%lld", l->v[i].rank);
		if (!json_object_get(ranks, rk)) {
			char w[700];
			snprintf(w, sizeof w, "rank %s (%s): not attributed by a node meter (it registered after the node "
				 "meter ended, or ran without a job)", rk, l->v[i].dir);
			json_array_append_new(warn, json_string(w));
		}
	}
	json_object_set_new(o, "job", key ? json_string(key) : json_null());
	json_object_set_new(o, "n_nodes", json_integer((json_int_t)json_object_size(nodes)));
	json_object_set_new(o, "total_j", json_real(total_of(energy)));
	json_object_set_new(o, "energy_j", energy);
	json_object_set_new(o, "nodes", nodes);
	json_object_set_new(o, "ranks", ranks);
	json_object_set_new(o, "start_unix_s", isfinite(t0) ? json_real(t0) : json_null());
	json_object_set_new(o, "end_unix_s", isfinite(t1) ? json_real(t1) : json_null());
	json_object_set_new(o, "duration_s", isfinite(t0) ? json_real(t1 - t0) : json_null());
	json_object_set_new(o, "recordings", recs);
	json_object_set_new(o, "warnings", warn);
	return o;
}

static void put_energy(wm_buf *b, const json_t *e)
{
	const char *k;
	json_t *v;
	int first = 1;
	json_object_foreach((json_t *)e, k, v) {
		wm_buf_printf(b, "%s%s %.6g J", first ? "" : ", ", k, json_number_value(v));
		first = 0;
	}
	if (first)
		wm_buf_puts(b, "-");
}

int wm_job_report(const char *const *dirs, size_t n, int as_json, wm_buf *out, char *err, size_t errlen)
{
	struct jlist l = {0};
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++)
		rc = add_dir(&l, dirs[i], err, errlen);
	if (rc) {
		free_list(&l);
		return rc;
	}
	json_t *o = merge(&l);
	if (as_json) {
		char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10));
		if (s)
			wm_buf_puts(out, s);
		free(s);
	} else {
		const char *key = json_string_value(json_object_get(o, "job"));
		wm_buf_printf(out, "wattmeter job %s: %zu recordings on %lld node%s, %.1f s\n", key ? key : "(none)", l.n,
			      (long long)json_integer_value(json_object_get(o, "n_nodes")),
			      json_integer_value(json_object_get(o, "n_nodes")) == 1 ? "" : "s",
			      json_number_value(json_object_get(o, "duration_s")));
		const char *host;
		json_t *node;
		json_object_foreach(json_object_get(o, "nodes"), host, node) {
			wm_buf_puts(out, "  node ");
			wm_buf_puts(out, host);
			wm_buf_puts(out, ": ");
			put_energy(out, json_object_get(node, "energy_j"));
			wm_buf_printf(out, "  (node meter: %zu recording%s)\n", json_array_size(json_object_get(node, "node_meters")),
				      json_array_size(json_object_get(node, "node_meters")) == 1 ? "" : "s");
		}
		wm_buf_puts(out, "  job total: ");
		put_energy(out, json_object_get(o, "energy_j"));
		wm_buf_printf(out, " = %.6g J\n", json_number_value(json_object_get(o, "total_j")));
		const char *rk;
		json_t *rv;
		json_object_foreach(json_object_get(o, "ranks"), rk, rv) {
			wm_buf_printf(out, "  rank %s (%s): ", rk, json_string_value(json_object_get(rv, "node")));
			put_energy(out, json_object_get(rv, "attributed_j"));
			wm_buf_printf(out, ", %.1f s CPU\n", json_number_value(json_object_get(rv, "cpu_s")));
		}
		size_t i;
		json_t *w;
		json_array_foreach(json_object_get(o, "warnings"), i, w)
			wm_buf_printf(out, "  warning: %s\n", json_string_value(w));
	}
	json_decref(o);
	free_list(&l);
	return wm_buf_error(out);
}

char *wm_report_job_json(const char *const *dirs, size_t n, char *err, size_t errlen)
{
	wm_buf b;
	wm_buf_init(&b);
	int rc = wm_job_report(dirs, n, 1, &b, err, errlen);
	if (rc < 0 || !b.data) {
		wm_buf_free(&b);
		errno = rc < 0 ? -rc : ENOMEM;
		return NULL;
	}
	return b.data; /* the buffer's storage, malloc'd: the caller frees it */
}
