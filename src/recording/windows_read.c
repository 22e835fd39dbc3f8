/* windows_read.c — reads a recording's windows.jsonl (docs/recording.md
 * "windows.jsonl") into the windows JSON of wm_report_windows_json: every
 * window, marks, and per-name groups (count, total, mean, p50, p99 of energy
 * and duration; counts and joules per count).
 *
 * The file is written as the samples are: whole lines, append-only. A last
 * line without '\n' (a killed run) is dropped and the result marked
 * truncated; a bad line before the last is damage (EBADMSG with its
 * number). A window begun but never ended (the run was killed) is reported
 * "open" up to the last sample of samples.jsonl, with the energy from its
 * begin edge to that sample. A recording without windows.jsonl (older, or
 * no windows) has no windows: not an error.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "recording/html.h"
#include "recording/jsonl_read.h"
#include "recording/windows.h"
#include "wattmeter.h"

static const char *str_or(const json_t *v)
{
	const char *s = json_string_value(v);
	return s ? s : "";
}

/* Groups by name, in order of first appearance. */
static json_t *groups(json_t *wins)
{
	json_t *out = json_array(), *names = json_object();
	size_t n = json_array_size(wins);
	double *e = calloc(n ? n : 1, sizeof *e), *d = calloc(n ? n : 1, sizeof *d);
	if (!out || !names || !e || !d)
		goto done;
	size_t i;
	json_t *w;
	json_array_foreach(wins, i, w) {
		const char *name = json_string_value(json_object_get(w, "name"));
		if (!name || json_object_get(names, name))
			continue;
		json_object_set_new(names, name, json_true());
		size_t k = 0, j;
		json_t *x, *counts = json_object();
		json_array_foreach(wins, j, x) {
			if (strcmp(str_or(json_object_get(x, "name")), name) != 0)
				continue;
			e[k] = json_number_value(json_object_get(x, "total_j"));
			d[k] = json_number_value(json_object_get(x, "duration_s"));
			k++;
			const char *ck;
			json_t *cv;
			json_object_foreach(json_object_get(x, "counts"), ck, cv) {
				double prev = json_number_value(json_object_get(counts, ck));
				json_object_set_new(counts, ck, json_real(prev + json_number_value(cv)));
			}
		}
		double tot = 0;
		for (size_t q = 0; q < k; q++)
			tot += e[q];
		json_t *jper = json_object();
		const char *ck;
		json_t *cv;
		json_object_foreach(counts, ck, cv) if (json_number_value(cv) > 0)
			json_object_set_new(jper, ck, json_real(tot / json_number_value(cv)));
		json_array_append_new(out, json_pack("{s:s,s:I,s:o,s:o,s:o,s:o}", "name", name, "count", (json_int_t)k,
						     "energy_j", wm_stats_json(e, k), "duration_s", wm_stats_json(d, k),
						     "counts", counts,
						     "j_per", jper));
	}
done:
	free(e);
	free(d);
	json_decref(names);
	return out;
}

struct wread {
	const char *name;
	json_t *wins, *marks, *open_w;
};

static int wread_line(void *ctx, json_t *o)
{
	struct wread *w = ctx;
	const char *ev = str_or(json_object_get(o, "event"));
	const char *nm = str_or(json_object_get(o, "name"));
	int want = !w->name || strcmp(nm, w->name) == 0;
	char key[32];
	(void)snprintf(key, sizeof key, "%lld", (long long)json_integer_value(json_object_get(o, "id")));
	if (!strcmp(ev, "begin")) {
		if (want)
			json_object_set(w->open_w, key, o);
	} else if (!strcmp(ev, "end")) {
		json_object_del(w->open_w, key);
		if (want) {
			json_object_del(o, "event");
			if (!json_object_get(o, "open"))
				json_object_set_new(o, "open", json_false());
			json_array_append(w->wins, o);
		}
	} else if (!strcmp(ev, "mark")) {
		if (want) {
			json_object_del(o, "event");
			json_array_append(w->marks, o);
		}
	}
	return 0;
}

char *wm_report_windows_json(const char *dir, const char *name, char *err, size_t errlen)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		int e = errno;
		wm_err(err, errlen, -e, "cannot open the recording %s: %s", dir, strerror(e));
		errno = e;
		return NULL;
	}
	json_t *root = json_object(), *wins = json_array(), *marks = json_array(), *open_w = json_object();
	struct wread wr = {.name = name, .wins = wins, .marks = marks, .open_w = open_w};
	int truncated = 0, found = 0;
	json_t *hdr = NULL;
	int rc = wm_jsonl_read(dfd, dir, "windows.jsonl", "windows_version", 1, &hdr, wread_line, &wr, &found,
			       &truncated, err, errlen);
	json_t *devices = hdr ? json_incref(json_object_get(hdr, "devices")) : json_null();
	json_decref(hdr);

	/* windows begun and never ended: open up to the last sample */
	if (!rc && json_object_size(open_w)) {
		json_t *last = wm_last_sample_line(dfd);
		double t_end = last ? json_number_value(json_object_get(last, "t_s")) : NAN;
		const char *k;
		json_t *b;
		json_object_foreach(open_w, k, b) {
			double t0 = json_number_value(json_object_get(b, "t_s"));
			json_t *e = json_object(), *b_e = json_object_get(b, "energy_j");
			double tot = 0;
			const char *dn;
			json_t *dv;
			json_object_foreach(b_e, dn, dv) {
				double e1 = last ? json_number_value(json_object_get(json_object_get(last, "energy_j"), dn)) : NAN;
				double x = isfinite(e1) && e1 >= json_number_value(dv) ? e1 - json_number_value(dv) : 0.0;
				json_object_set_new(e, dn, json_real(x));
				if (strcmp(dn, "psys") != 0)
					tot += x;
			}
			double t1 = isfinite(t_end) && t_end > t0 ? t_end : t0;
			json_t *w = json_pack("{s:O,s:O,s:f,s:f,s:f,s:b,s:O,s:{},s:o,s:{},s:f,s:{},s:{},s:[s]}", "id",
					      json_object_get(b, "id"), "name", json_object_get(b, "name"), "start_s", t0,
					      "end_s", t1, "duration_s", t1 - t0, "open", 1, "attrs",
					      json_object_get(b, "attrs"), "counts", "energy_j", e, "attributed_j", "total_j",
					      tot, "j_per", "uncertainty_j", "notes",
					      "never ended (the run was killed?): reported open up to the last sample");
			if (w)
				json_array_append_new(wins, w);
		}
		json_decref(last);
	}
	close(dfd);
	char *out = NULL;
	if (!rc) {
		json_object_set_new(root, "windows_version", found ? json_integer(1) : json_null());
		json_object_set(root, "devices", devices);
		json_object_set_new(root, "truncated", json_boolean(truncated));
		json_object_set_new(root, "groups", groups(wins));
		json_object_set(root, "windows", wins);
		json_object_set(root, "marks", marks);
		out = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(10));
		if (!out)
			rc = wm_err(err, errlen, -ENOMEM, "out of memory");
	}
	json_decref(root);
	json_decref(wins);
	json_decref(marks);
	json_decref(open_w);
	json_decref(devices);
	if (!out)
		errno = -rc;
	return out;
}

/* ---- the text table (`wattmeter report`) ----------------------------------------- */

static void put_jper(wm_buf *b, json_t *jper)
{
	const char *k;
	json_t *v;
	int first = 1;
	json_object_foreach(jper, k, v) {
		wm_buf_printf(b, "%s%.4g J/%.20s", first ? "" : ", ", json_number_value(v), k);
		first = 0;
	}
}

int wm_windows_text(const char *dir, const char *name, wm_buf *out, char *err, size_t errlen)
{
	char *js = wm_report_windows_json(dir, name, err, errlen);
	if (!js)
		return -errno;
	json_t *doc = json_loads(js, 0, NULL);
	free(js);
	if (!doc)
		return wm_err(err, errlen, -ENOMEM, "out of memory");
	json_t *groups_a = json_object_get(doc, "groups"), *wins = json_object_get(doc, "windows");
	size_t i;
	json_t *g;
	if (!name) {
		if (json_array_size(groups_a)) {
			wm_buf_puts(out, "\nWindows (energy between each window's own edges; cpu+dram+gpu, psys apart)\n");
			wm_buf_printf(out, "  %-20s %7s %12s %11s %11s %11s %10s  %s\n", "name", "count", "total J", "mean J",
				      "p50 J", "p99 J", "mean s", "per count");
		}
		json_array_foreach(groups_a, i, g) {
			json_t *e = json_object_get(g, "energy_j"), *d = json_object_get(g, "duration_s");
			wm_buf_printf(out, "  %-20.20s %7lld %12.4f %11.4f %11.4f %11.4f %10.4f  ",
				      json_string_value(json_object_get(g, "name")),
				      (long long)json_integer_value(json_object_get(g, "count")),
				      json_number_value(json_object_get(e, "total")), json_number_value(json_object_get(e, "mean")),
				      json_number_value(json_object_get(e, "p50")), json_number_value(json_object_get(e, "p99")),
				      json_number_value(json_object_get(d, "mean")));
			put_jper(out, json_object_get(g, "j_per"));
			wm_buf_puts(out, "\n");
		}
	} else {
		wm_buf_printf(out, "Windows named '%s': %zu\n", name, json_array_size(wins));
		wm_buf_printf(out, "  %6s %11s %11s %10s %12s  %s\n", "id", "start s", "end s", "s", "energy J",
			      "attributes, per count, notes");
		json_array_foreach(wins, i, g) {
			char *attrs = json_dumps(json_object_get(g, "attrs"), JSON_COMPACT);
			wm_buf_printf(out, "  %6lld %11.4f %11.4f %10.4f %12.4f  %s ",
				      (long long)json_integer_value(json_object_get(g, "id")),
				      json_number_value(json_object_get(g, "start_s")),
				      json_number_value(json_object_get(g, "end_s")),
				      json_number_value(json_object_get(g, "duration_s")),
				      json_number_value(json_object_get(g, "total_j")), attrs ? attrs : "{}");
			free(attrs);
			put_jper(out, json_object_get(g, "j_per"));
			if (json_is_true(json_object_get(g, "open")))
				wm_buf_puts(out, " (open)");
			size_t k;
			json_t *nt;
			json_array_foreach(json_object_get(g, "notes"), k, nt)
				wm_buf_printf(out, "\n         note: %s", json_string_value(nt));
			wm_buf_puts(out, "\n");
		}
	}
	json_decref(doc);
	return wm_buf_error(out) ? -ENOMEM : 0;
}

/* ---- for the HTML report (html.c) -------------------------------------------------- */

static json_t *doc_of(const char *dir)
{
	char err[256];
	char *js = wm_report_windows_json(dir, NULL, err, sizeof err);
	if (!js)
		return NULL;
	json_t *doc = json_loads(js, 0, NULL);
	free(js);
	return doc;
}

int wm_windows_spans(const char *dir, double min_s, size_t max, struct wm_window_span **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	json_t *doc = doc_of(dir);
	if (!doc)
		return 0; /* a damaged windows.jsonl: no shading (the table says why) */
	json_t *wins = json_object_get(doc, "windows");
	size_t cap = json_array_size(wins) < max ? json_array_size(wins) : max;
	*out = calloc(cap ? cap : 1, sizeof **out);
	if (!*out) {
		json_decref(doc);
		return -ENOMEM;
	}
	size_t i;
	json_t *w;
	json_array_foreach(wins, i, w) {
		double a = json_number_value(json_object_get(w, "start_s")), b = json_number_value(json_object_get(w, "end_s"));
		if (*n < cap && b - a >= min_s)
			(*out)[(*n)++] = (struct wm_window_span){.start_s = a, .end_s = b};
	}
	json_decref(doc);
	return 0;
}

int wm_windows_html(const char *dir, wm_buf *b)
{
	char err[512] = "";
	char *js = wm_report_windows_json(dir, NULL, err, sizeof err);
	if (!js) {
		wm_buf_puts(b, "<p class=\"note\">Windows not shown: ");
		wm_html_escape(b, err);
		wm_buf_puts(b, "</p>\n");
		return wm_buf_error(b) ? -ENOMEM : 0;
	}
	json_t *doc = json_loads(js, 0, NULL);
	free(js);
	json_t *groups_a = json_object_get(doc, "groups");
	if (json_array_size(groups_a)) {
		wm_buf_puts(b, "<h2>Energy per window</h2>\n<p class=\"muted\">Each window's energy is the counter "
			       "difference at its own edges (shaded on the power plots); psys is not added.</p>\n"
			       "<table><tr><th>window</th><th>count</th><th>total J</th><th>mean J</th><th>p50 J</th>"
			       "<th>p99 J</th><th>mean s</th><th>per count</th></tr>\n");
		size_t i;
		json_t *g;
		json_array_foreach(groups_a, i, g) {
			json_t *e = json_object_get(g, "energy_j"), *d = json_object_get(g, "duration_s");
			wm_buf_puts(b, "<tr><td>");
			wm_html_escape_cut(b, json_string_value(json_object_get(g, "name")), 60);
			wm_buf_printf(b, "</td><td>%lld</td><td>%.4g</td><td>%.4g</td><td>%.4g</td><td>%.4g</td><td>%.4g</td><td>",
				      (long long)json_integer_value(json_object_get(g, "count")),
				      json_number_value(json_object_get(e, "total")), json_number_value(json_object_get(e, "mean")),
				      json_number_value(json_object_get(e, "p50")), json_number_value(json_object_get(e, "p99")),
				      json_number_value(json_object_get(d, "mean")));
			const char *k;
			json_t *v;
			int first = 1;
			json_object_foreach(json_object_get(g, "j_per"), k, v) {
				wm_buf_printf(b, "%s%.4g J/", first ? "" : ", ", json_number_value(v));
				wm_html_escape_cut(b, k, 30);
				first = 0;
			}
			wm_buf_puts(b, "</td></tr>\n");
		}
		wm_buf_puts(b, "</table>\n");
	}
	json_decref(doc);
	return wm_buf_error(b) ? -ENOMEM : 0;
}

/* ---- comparing runs (`wattmeter report A B ...`) ----------------------------------- */

int wm_windows_compare(const char *const *dirs, size_t n, int as_json, wm_buf *out)
{
	json_t **docs = calloc(n ? n : 1, sizeof *docs);
	json_t *names = json_array();
	if (!docs || !names) {
		free(docs);
		json_decref(names);
		return -ENOMEM;
	}
	size_t with = 0;
	for (size_t r = 0; r < n; r++) {
		docs[r] = doc_of(dirs[r]);
		size_t i;
		json_t *g;
		json_array_foreach(json_object_get(docs[r], "groups"), i, g) {
			with += i == 0;
			const char *nm = json_string_value(json_object_get(g, "name"));
			size_t k;
			json_t *x;
			int seen = 0;
			json_array_foreach(names, k, x) seen |= nm && !strcmp(json_string_value(x), nm);
			if (nm && !seen)
				json_array_append_new(names, json_string(nm));
		}
	}
	if (with && as_json) {
		json_t *arr = json_array();
		for (size_t r = 0; r < n; r++)
			json_array_append_new(arr, json_pack("{s:s,s:O}", "dir", dirs[r], "groups",
							     docs[r] ? json_object_get(docs[r], "groups") : json_array()));
		char *s = json_dumps(arr, JSON_COMPACT | JSON_REAL_PRECISION(10));
		if (s)
			wm_buf_puts(out, s);
		free(s);
		json_decref(arr);
	} else if (with) {
		wm_buf_puts(out, "\nWindows: mean energy per window (J) and J per count, run by run\n");
		size_t k;
		json_t *x;
		json_array_foreach(names, k, x) {
			const char *nm = json_string_value(x);
			wm_buf_printf(out, "  %-20.20s", nm);
			for (size_t r = 0; r < n; r++) {
				json_t *hit = NULL, *g;
				size_t i;
				json_array_foreach(json_object_get(docs[r], "groups"), i, g)
					if (!strcmp(json_string_value(json_object_get(g, "name")), nm))
						hit = g;
				if (!hit) {
					wm_buf_printf(out, "  [%zu] -", r + 1);
					continue;
				}
				wm_buf_printf(out, "  [%zu] %.4g J x%lld", r + 1,
					      json_number_value(json_object_get(json_object_get(hit, "energy_j"), "mean")),
					      (long long)json_integer_value(json_object_get(hit, "count")));
				const char *ck;
				json_t *cv;
				json_object_foreach(json_object_get(hit, "j_per"), ck, cv)
					wm_buf_printf(out, ", %.4g J/%.20s", json_number_value(cv), ck);
			}
			wm_buf_puts(out, "\n");
		}
	}
	for (size_t r = 0; r < n; r++)
		json_decref(docs[r]);
	free(docs);
	json_decref(names);
	return wm_buf_error(out) ? -ENOMEM : (int)with;
}
