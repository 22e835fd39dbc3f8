/* requests_read.c — reads a recording's requests.jsonl (docs/recording.md
 * "requests.jsonl") into the requests JSON of wm_report_requests_json, and
 * the text and HTML sections `wattmeter report` shows from it.
 *
 * Figures: J per request (mean, p50, p99 of total_j), J per prompt token
 * and per completion token (all the requests' energy over all their tokens
 * of that kind, as J/token is usually quoted), tokens per joule, energy by
 * model, the idle share of the server's energy, the "active" energy (the
 * server's idle power, from the summary line, times each request's share
 * of the server's time, taken off), and the conservation check per device:
 * Σ request lines + Σ idle lines against the summary's server energy and,
 * independently, the cumulative energy of samples.jsonl's last line
 * (attributed_j for a measured set, energy_j for the machine).
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
#include "recording/requests.h"
#include "wattmeter.h"

struct rread {
	json_t *reqs, *idle_sum, *req_sum, *summary;
	double idle_lines_s;
	size_t idle_lines;
};

static void add_devs(json_t *sum, json_t *e)
{
	const char *k;
	json_t *v;
	json_object_foreach(e, k, v) {
		double prev = json_number_value(json_object_get(sum, k));
		json_object_set_new(sum, k, json_real(prev + json_number_value(v)));
	}
}

static int rread_line(void *ctx, json_t *o)
{
	struct rread *r = ctx;
	const char *ev = json_string_value(json_object_get(o, "event"));
	if (!ev)
		return 0;
	if (!strcmp(ev, "request")) {
		add_devs(r->req_sum, json_object_get(o, "energy_j"));
		json_object_del(o, "event");
		json_array_append(r->reqs, o);
	} else if (!strcmp(ev, "idle")) {
		add_devs(r->idle_sum, json_object_get(o, "energy_j"));
		r->idle_lines_s += json_number_value(json_object_get(o, "t_end_s")) -
				   json_number_value(json_object_get(o, "t_start_s"));
		r->idle_lines++;
	} else if (!strcmp(ev, "summary")) {
		json_decref(r->summary);
		r->summary = json_incref(o);
	}
	return 0;
}

static double num_or0(json_t *v)
{
	return json_is_number(v) ? json_number_value(v) : 0.0;
}

/* Σ over devices that do not overlap (all but psys) */
static double total_devs(json_t *e)
{
	double t = 0;
	const char *k;
	json_t *v;
	json_object_foreach(e, k, v) if (strcmp(k, "psys") != 0) t += json_number_value(v);
	return t;
}

static json_t *per_token(double j, double tokens)
{
	return tokens > 0 ? json_real(j / tokens) : json_null();
}

/* The figures over the requests of one model (NULL: all). */
static json_t *figures(json_t *reqs, const char *model, json_t *idle_w)
{
	size_t n = json_array_size(reqs), k = 0;
	double *e = calloc(n ? n : 1, sizeof *e), *a = calloc(n ? n : 1, sizeof *a);
	if (!e || !a) {
		free(e);
		free(a);
		return NULL;
	}
	double pt = 0, ct = 0, tot = 0;
	size_t i;
	json_t *r;
	json_array_foreach(reqs, i, r) {
		const char *m = json_string_value(json_object_get(r, "model"));
		if (model && (!m || strcmp(m, model) != 0))
			continue;
		double t = num_or0(json_object_get(r, "total_j"));
		e[k] = t;
		/* active, with the final idle power (the line's own may be older) */
		double share = num_or0(json_object_get(r, "server_share_s")), idle = 0;
		const char *dk;
		json_t *dv;
		json_object_foreach(idle_w, dk, dv) if (strcmp(dk, "psys") != 0) idle += json_number_value(dv);
		a[k] = t - idle * share;
		k++;
		tot += t;
		pt += num_or0(json_object_get(r, "prompt_tokens"));
		ct += num_or0(json_object_get(r, "completion_tokens"));
	}
	json_t *o = json_pack("{s:I,s:o,s:o,s:f,s:f,s:o,s:o,s:o}", "count", (json_int_t)k, "energy_j", wm_stats_json(e, k),
			      "active_energy_j", json_is_object(idle_w) ? wm_stats_json(a, k) : json_null(), "prompt_tokens", pt,
			      "completion_tokens", ct, "j_per_prompt_token", per_token(tot, pt),
			      "j_per_completion_token", per_token(tot, ct), "tokens_per_j",
			      tot > 0 ? json_real((pt + ct) / tot) : json_null());
	free(e);
	free(a);
	return o;
}

static json_t *by_model(json_t *reqs, json_t *idle_w)
{
	json_t *out = json_array(), *seen = json_object();
	size_t i;
	json_t *r;
	json_array_foreach(reqs, i, r) {
		const char *m = json_string_value(json_object_get(r, "model"));
		const char *key = m ? m : "";
		if (json_object_get(seen, key))
			continue;
		json_object_set_new(seen, key, json_true());
		json_t *f = m ? figures(reqs, m, idle_w) : NULL;
		if (!m) {
			/* requests without a model: those whose model is null */
			json_t *none = json_array();
			size_t j;
			json_t *x;
			json_array_foreach(reqs, j, x) if (!json_is_string(json_object_get(x, "model")))
				json_array_append(none, x);
			f = figures(none, NULL, idle_w);
			json_decref(none);
		}
		if (f) {
			json_object_set_new(f, "model", m ? json_string(m) : json_null());
			json_array_append_new(out, f);
		}
	}
	json_decref(seen);
	return out;
}

/* Per device: requests + idle vs the summary's server energy and the last
 * sample's cumulative energy. Lines carry energies at full precision: the
 * sum of n lines is exact to the doubles' rounding, n x 1e-16 relative. */
static json_t *conservation(json_t *devices, json_t *req_sum, json_t *idle_sum, json_t *summary, json_t *last,
			    const char *server, size_t n_lines)
{
	json_t *out = json_object();
	json_t *srv = json_object_get(summary, "server_energy_j");
	json_t *cum = json_object_get(last, !strcmp(server, "machine") ? "energy_j" : "attributed_j");
	double tol = 1e-12 * (double)(n_lines + 1);
	size_t i;
	json_t *d;
	json_array_foreach(devices, i, d) {
		const char *dn = json_string_value(d);
		if (!dn)
			continue;
		double rq = num_or0(json_object_get(req_sum, dn)), id = num_or0(json_object_get(idle_sum, dn));
		json_t *sv = json_object_get(srv, dn), *cv = json_object_get(cum, dn);
		double s = json_number_value(sv);
		int ok = json_is_number(sv) && fabs(rq + id - s) <= tol * (1 + fabs(s)) + 1e-9 * fabs(s);
		json_t *o = json_pack("{s:f,s:f,s:f}", "requests_j", rq, "idle_j", id, "sum_j", rq + id);
		json_object_set_new(o, "server_j", json_is_number(sv) ? json_real(s) : json_null());
		json_object_set_new(o, "samples_j", json_is_number(cv) ? json_real(json_number_value(cv)) : json_null());
		json_object_set_new(o, "ok", json_is_number(sv) ? json_boolean(ok) : json_null());
		json_object_set_new(out, dn, o);
	}
	return out;
}

static json_t *load_doc(const char *dir, char *err, size_t errlen, int *rc_out)
{
	*rc_out = 0;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		int e = errno;
		*rc_out = wm_err(err, errlen, -e, "cannot open the recording %s: %s", dir, strerror(e));
		return NULL;
	}
	struct rread rr = {.reqs = json_array(), .idle_sum = json_object(), .req_sum = json_object()};
	json_t *hdr = NULL;
	int found = 0, truncated = 0;
	int rc = wm_jsonl_read(dfd, dir, "requests.jsonl", "requests_version", 1, &hdr, rread_line, &rr, &found,
			       &truncated, err, errlen);
	json_t *doc = NULL;
	if (!rc) {
		json_t *devices = hdr ? json_object_get(hdr, "devices") : NULL;
		const char *server = hdr ? json_string_value(json_object_get(hdr, "server")) : NULL;
		if (!server)
			server = "machine";
		json_t *idle_w = json_object_get(rr.summary, "idle_power_w");
		json_t *last = found ? wm_last_sample_line(dfd) : NULL;
		doc = json_object();
		json_object_set_new(doc, "requests_version", found ? json_integer(1) : json_null());
		json_object_set_new(doc, "devices", devices ? json_incref(devices) : json_array());
		json_object_set_new(doc, "server", json_string(server));
		json_object_set_new(doc, "truncated", json_boolean(truncated));
		json_object_set_new(doc, "complete", json_boolean(rr.summary != NULL));
		json_t *all = figures(rr.reqs, NULL, idle_w);
		if (all)
			json_object_update(doc, all);
		json_decref(all);
		double srv_tot = total_devs(json_object_get(rr.summary, "server_energy_j"));
		double idle_tot = total_devs(rr.idle_sum);
		json_t *idle = json_pack("{s:O,s:f,s:o,s:O}", "energy_j", rr.idle_sum, "s",
					 rr.summary ? num_or0(json_object_get(rr.summary, "idle_s")) : rr.idle_lines_s,
					 "share", srv_tot > 0 ? json_real(idle_tot / srv_tot) : json_null(), "power_w",
					 idle_w ? idle_w : json_null());
		json_object_set_new(doc, "idle", idle);
		json_object_set_new(doc, "by_model", by_model(rr.reqs, idle_w));
		json_object_set_new(doc, "conservation",
				    conservation(devices, rr.req_sum, rr.idle_sum, rr.summary, last, server,
						 json_array_size(rr.reqs) + rr.idle_lines));
		json_object_set(doc, "summary", rr.summary ? rr.summary : json_null());
		json_object_set(doc, "requests", rr.reqs);
		json_decref(last);
	} else {
		*rc_out = rc;
	}
	json_decref(hdr);
	json_decref(rr.reqs);
	json_decref(rr.idle_sum);
	json_decref(rr.req_sum);
	json_decref(rr.summary);
	close(dfd);
	return doc;
}

char *wm_report_requests_json(const char *dir, char *err, size_t errlen)
{
	int rc;
	json_t *doc = load_doc(dir, err, errlen, &rc);
	char *out = doc ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
	json_decref(doc);
	if (doc && !out)
		rc = wm_err(err, errlen, -ENOMEM, "out of memory");
	if (!out)
		errno = rc < 0 ? -rc : ENOMEM;
	return out;
}

char *wm_requests_summary_json(const char *dir, char *err, size_t errlen)
{
	int rc;
	json_t *doc = load_doc(dir, err, errlen, &rc);
	if (!doc) {
		errno = -rc;
		return NULL;
	}
	json_object_del(doc, "requests"); /* the figures; every request is in wm_report_requests_json */
	char *out = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(10));
	json_decref(doc);
	if (!out)
		errno = ENOMEM;
	return out;
}

/* ---- the text section (`wattmeter report`) ------------------------------------------ */

static void put_j(wm_buf *b, json_t *v)
{
	if (json_is_number(v))
		wm_buf_printf(b, "%.4g", json_number_value(v));
	else
		wm_buf_puts(b, "-");
}

/* "mean M  p50 P  p99 Q" of a per-request stats object (wm_stats_json). */
static void put_stats(wm_buf *b, json_t *st)
{
	wm_buf_puts(b, "mean ");
	put_j(b, json_object_get(st, "mean"));
	wm_buf_puts(b, "  p50 ");
	put_j(b, json_object_get(st, "p50"));
	wm_buf_puts(b, "  p99 ");
	put_j(b, json_object_get(st, "p99"));
}

int wm_requests_text(const char *dir, wm_buf *out, char *err, size_t errlen)
{
	int rc;
	json_t *doc = load_doc(dir, err, errlen, &rc);
	if (!doc)
		return rc;
	if (json_is_null(json_object_get(doc, "requests_version"))) {
		json_decref(doc);
		return 0;
	}
	json_t *e = json_object_get(doc, "energy_j"), *a = json_object_get(doc, "active_energy_j");
	json_t *idle = json_object_get(doc, "idle"), *sum = json_object_get(doc, "summary");
	wm_buf_printf(out, "\nRequests (requests.jsonl; the %s's energy split among requests in flight, by tokens, else "
			   "time)\n",
		      strcmp(json_string_value(json_object_get(doc, "server")), "machine") ? "measured set" : "machine");
	wm_buf_printf(out, "  requests         %lld", (long long)json_integer_value(json_object_get(doc, "count")));
	if (json_integer_value(json_object_get(sum, "open_at_stop")))
		wm_buf_printf(out, " (%lld open at the stop)", (long long)json_integer_value(json_object_get(sum, "open_at_stop")));
	if (!json_is_true(json_object_get(doc, "complete")))
		wm_buf_puts(out, " (no summary line: the run was cut short)");
	if (json_integer_value(json_object_get(sum, "lines_lost")))
		wm_buf_printf(out, " (%lld lines lost to write errors, a full disk: the check below cannot add up)",
			      (long long)json_integer_value(json_object_get(sum, "lines_lost")));
	wm_buf_puts(out, "\n  J per request    ");
	put_stats(out, e);
	wm_buf_puts(out, "  total ");
	put_j(out, json_object_get(e, "total"));
	if (json_is_object(a)) {
		wm_buf_puts(out, "\n  active J/request ");
		put_stats(out, a);
		wm_buf_puts(out, "  (the server's idle power taken off)");
	}
	wm_buf_puts(out, "\n  per token        ");
	put_j(out, json_object_get(doc, "j_per_prompt_token"));
	wm_buf_puts(out, " J/prompt token, ");
	put_j(out, json_object_get(doc, "j_per_completion_token"));
	wm_buf_puts(out, " J/completion token, ");
	put_j(out, json_object_get(doc, "tokens_per_j"));
	wm_buf_printf(out, " tokens/J (%.0f prompt, %.0f completion tokens)\n",
		      num_or0(json_object_get(doc, "prompt_tokens")), num_or0(json_object_get(doc, "completion_tokens")));
	wm_buf_puts(out, "  idle             ");
	double idle_j = total_devs(json_object_get(idle, "energy_j"));
	wm_buf_printf(out, "%.4g J over %.1f s", idle_j, num_or0(json_object_get(idle, "s")));
	if (json_is_number(json_object_get(idle, "share")))
		wm_buf_printf(out, " (%.1f %% of the server's energy)", 100 * json_number_value(json_object_get(idle, "share")));
	wm_buf_puts(out, "\n");
	size_t i;
	json_t *m;
	json_array_foreach(json_object_get(doc, "by_model"), i, m) {
		const char *mn = json_string_value(json_object_get(m, "model"));
		wm_buf_printf(out, "  model %-10.40s %lld requests, ", mn ? mn : "(none)",
			      (long long)json_integer_value(json_object_get(m, "count")));
		put_j(out, json_object_get(json_object_get(m, "energy_j"), "total"));
		wm_buf_puts(out, " J, ");
		put_j(out, json_object_get(m, "j_per_completion_token"));
		wm_buf_puts(out, " J/completion token\n");
	}
	const char *dn;
	json_t *c;
	json_object_foreach(json_object_get(doc, "conservation"), dn, c) {
		wm_buf_printf(out, "  check %-10.20s requests %.6f + idle %.6f = %.6f J; server ", dn,
			      num_or0(json_object_get(c, "requests_j")), num_or0(json_object_get(c, "idle_j")),
			      num_or0(json_object_get(c, "sum_j")));
		put_j(out, json_object_get(c, "server_j"));
		wm_buf_puts(out, " J, samples ");
		put_j(out, json_object_get(c, "samples_j"));
		json_t *ok = json_object_get(c, "ok");
		wm_buf_printf(out, " J: %s\n", json_is_true(ok) ? "adds up" : json_is_false(ok) ? "DOES NOT ADD UP" : "no summary");
	}
	json_decref(doc);
	return wm_buf_error(out);
}

/* ---- the HTML section ---------------------------------------------------------------- */

/* A scatter of points (x[i], y[i]) in an SVG of w x h, axes labelled. */
static void svg_scatter(wm_buf *b, const double *x, const double *y, size_t n, const char *xl, const char *yl,
			int steps)
{
	const double w = 640, h = 240, l = 56, bt = 30;
	double xmax = 0, ymax = 0;
	for (size_t i = 0; i < n; i++) {
		if (x[i] > xmax)
			xmax = x[i];
		if (y[i] > ymax)
			ymax = y[i];
	}
	if (!(xmax > 0))
		xmax = 1;
	if (!(ymax > 0))
		ymax = 1;
	wm_buf_printf(b, "<svg class=\"plot\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\">\n", w, h, w, h);
	wm_buf_printf(b, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#888\"/>", l, h - bt, w - 8, h - bt);
	wm_buf_printf(b, "<line x1=\"%.0f\" y1=\"8\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#888\"/>\n", l, l, h - bt);
	wm_buf_printf(b, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" text-anchor=\"end\">%.3g</text>", l - 4, 14.0, ymax);
	wm_buf_printf(b, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" text-anchor=\"end\">%.3g</text>", w - 8, h - 8, xmax);
	wm_buf_printf(b, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\">", l + 4, h - 8);
	wm_html_escape(b, xl);
	wm_buf_puts(b, "</text><text x=\"4\" y=\"14\" font-size=\"11\">");
	wm_html_escape(b, yl);
	wm_buf_puts(b, "</text>\n");
	if (steps && n > 1) {
		wm_buf_puts(b, "<polyline fill=\"none\" stroke=\"#c44\" points=\"");
		for (size_t i = 0; i < n; i++)
			wm_buf_printf(b, "%.1f,%.1f ", l + (w - 8 - l) * x[i] / xmax, (h - bt) - (h - bt - 8) * y[i] / ymax);
		wm_buf_puts(b, "\"/>\n");
	} else {
		for (size_t i = 0; i < n; i++)
			wm_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"#36c\"/>", l + (w - 8 - l) * x[i] / xmax,
				      (h - bt) - (h - bt - 8) * y[i] / ymax);
	}
	wm_buf_puts(b, "</svg>\n");
}

int wm_requests_html(const char *dir, const double *t_s, const double *machine_j, const double *attributed_j,
		     size_t n_samples, wm_buf *b)
{
	char err[512] = "";
	int rc;
	json_t *doc = load_doc(dir, err, sizeof err, &rc);
	if (!doc) {
		wm_buf_puts(b, "<p class=\"note\">Requests not shown: ");
		wm_html_escape(b, err);
		wm_buf_puts(b, "</p>\n");
		return wm_buf_error(b) ? -ENOMEM : 0;
	}
	json_t *reqs = json_object_get(doc, "requests");
	if (json_is_null(json_object_get(doc, "requests_version"))) {
		json_decref(doc);
		return 0;
	}
	wm_buf text;
	wm_buf_init(&text);
	(void)wm_requests_text(dir, &text, err, sizeof err);
	wm_buf_puts(b, "<h2>Energy per request</h2>\n<p class=\"muted\">The server's energy split among the requests in "
		       "flight in each interval, by the tokens each produced, else by time; idle intervals are the "
		       "server's idle energy (docs/architecture.md \"Requests\").</p>\n<pre>");
	if (text.len)
		wm_html_escape(b, text.data);
	wm_buf_puts(b, "</pre>\n");
	wm_buf_free(&text);
	size_t n = json_array_size(reqs);
	double *x = calloc(n ? n : 1, sizeof *x), *y = calloc(n ? n : 1, sizeof *y);
	if (x && y && n) {
		size_t i;
		json_t *r;
		json_array_foreach(reqs, i, r) {
			x[i] = num_or0(json_object_get(r, "prompt_tokens")) + num_or0(json_object_get(r, "completion_tokens"));
			y[i] = num_or0(json_object_get(r, "total_j"));
		}
		wm_buf_puts(b, "<h3>Energy against tokens, per request</h3>\n");
		svg_scatter(b, x, y, n, "tokens (prompt + completion)", "J", 0);
	}
	free(x);
	free(y);
	/* the server's power (Σ devices but psys, from the cumulative energy the
	 * header names) and the requests in flight, at each sample that has it */
	const double *cum = strcmp(json_string_value(json_object_get(doc, "server")), "machine") ? attributed_j : machine_j;
	if (n_samples > 1 && n) {
		double *pt = calloc(n_samples, sizeof *pt), *pw = calloc(n_samples, sizeof *pw);
		double *in = calloc(n_samples, sizeof *in);
		size_t m = 0;
		for (size_t k = 0, prev = (size_t)-1; pt && pw && in && k < n_samples; k++) {
			if (!isfinite(cum[k]))
				continue;
			if (prev != (size_t)-1 && t_s[k] > t_s[prev]) {
				pt[m] = t_s[k];
				pw[m] = (cum[k] - cum[prev]) / (t_s[k] - t_s[prev]);
				size_t i;
				json_t *r;
				json_array_foreach(reqs, i, r) {
					double a = num_or0(json_object_get(r, "t_start_s")), e = num_or0(json_object_get(r, "t_end_s"));
					if (a < t_s[k] && e > t_s[prev])
						in[m] += 1; /* in flight in the interval */
				}
				m++;
			}
			prev = k;
		}
		if (m > 1) {
			wm_buf_puts(b, "<h3>Server power and requests in flight</h3>\n");
			svg_scatter(b, pt, pw, m, "t (s)", "server W", 1);
			svg_scatter(b, pt, in, m, "t (s)", "requests in flight", 1);
		}
		free(pt);
		free(pw);
		free(in);
	}
	json_decref(doc);
	return wm_buf_error(b) ? -ENOMEM : 0;
}
