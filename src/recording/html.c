/* html.c — the self-contained HTML report (html.h).
 *
 * One file, readable offline: CSS inline, plots as inline SVG drawn here, no
 * JavaScript, and a Content-Security-Policy that forbids scripts and every
 * fetch, so even a string that slipped through escaping could not run or
 * call out. Strings from the recording are escaped with wm_html_escape.
 *
 * Power plots are computed from the cumulative energy columns, not from the
 * per-sample power: each pair of successive samples that both carry a value
 * gives a segment (t0, t1] of constant power dE/dt, so the plot integrates to
 * the reported total whatever the sampling. The same is done for the
 * attributed energy, which only process-tier samples carry. Segments are
 * folded into at most WM_HTML_MAX_POINTS time buckets: per bucket the mean
 * (energy / time covered), the lowest and the highest segment power, so a
 * week-long recording gives a plot of the same size as a minute-long one.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recording/html.h"
#include "recording/record_priv.h"
#include "recording/requests.h"
#include "recording/windows.h"
#include "wattmeter.h"

/* Tableau 10: distinguishable, and legible for the common colour blindness */
static const char *const palette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
				      "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};

static const char *colour(size_t i)
{
	return palette[i % WM_ARRAY_LEN(palette)];
}

/* ---- escaping ---------------------------------------------------------------- */

int wm_html_escape_cut(wm_buf *b, const char *s, size_t max_chars)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t chars = 0;
	while (*p) {
		if (chars == max_chars) {
			wm_buf_puts(b, "\xE2\x80\xA6"); /* … */
			break;
		}
		chars++;
		unsigned c = *p;
		const char *rep = NULL;
		switch (c) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		case '\t':
		case '\n': break;
		default:
			if (c < 0x20 || c == 0x7F)
				rep = "&#xFFFD;";
		}
		if (rep) {
			wm_buf_puts(b, rep);
			p++;
			continue;
		}
		size_t n = wm_utf8_seq_len(p);
		if (n == 0) {
			wm_buf_puts(b, "&#xFFFD;");
			p++;
			continue;
		}
		wm_buf_append(b, (const char *)p, n);
		p += n;
	}
	return wm_buf_error(b);
}

int wm_html_escape(wm_buf *b, const char *s)
{
	return wm_html_escape_cut(b, s, SIZE_MAX);
}

/* ---- numbers -------------------------------------------------------------------- */

/* 1, 2 or 5 times a power of ten, so that about `ticks` steps cover max */
static double nice_step(double max, int ticks)
{
	if (!(max > 0) || !isfinite(max))
		return 1;
	double raw = max / ticks;
	double p = pow(10, floor(log10(raw)));
	double m = raw / p;
	/* a little slack, so 20.0000001 W still gets a 5 W step, not 10 */
	const double e = 1 + 1e-6;
	return (m <= e ? 1 : m <= 2 * e ? 2 : m <= 5 * e ? 5 : 10) * p;
}

/* An axis label: "0", "250", "1.5k", "2M" followed by unit */
static void axis_label(wm_buf *b, double v, const char *unit)
{
	static const char *const prefix[] = {"", "k", "M", "G", "T"};
	size_t i = 0;
	double a = fabs(v);
	while (a >= 1000 && i + 1 < WM_ARRAY_LEN(prefix)) {
		a /= 1000;
		v /= 1000;
		i++;
	}
	wm_buf_printf(b, "%g %s%s", round(v * 1000) / 1000, prefix[i], unit);
}

/* ---- the document --------------------------------------------------------------- */

static const char css[] =
	"body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#222;"
	"max-width:1000px;margin:24px auto;padding:0 16px;background:#fff}"
	"h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}"
	"h3{font-size:15px;margin:16px 0 4px}"
	"table{border-collapse:collapse;margin:6px 0 10px}"
	"td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}"
	"th{background:#f5f5f5}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
	"code{font:13px ui-monospace,Menlo,Consolas,monospace;background:#f5f5f5;padding:1px 4px;word-break:break-all}"
	".measured{color:#1b6e20;font-weight:600}.modeled{color:#b35c00;font-weight:600}"
	".note{background:#fff8e1;border-left:4px solid #f0b400;padding:6px 10px;margin:8px 0}"
	".muted{color:#666}svg{display:block;margin:4px 0 12px}"
	"svg text{font:11px system-ui,sans-serif;fill:#333}"
	"footer{margin-top:32px;color:#888;font-size:12px}";

static void doc_head(wm_buf *b, const char *title_raw)
{
	wm_buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		       "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
		       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
		       "<meta name=\"generator\" content=\"wattmeter report --html\">\n<title>wattmeter: ");
	wm_html_escape_cut(b, title_raw, 120);
	wm_buf_printf(b, "</title>\n<style>%s</style>\n</head>\n<body>\n", css);
}

/* argv joined by spaces, escaped (for display, not for a shell) */
static int put_command(wm_buf *b, const struct wm_recording *r, size_t max_chars)
{
	wm_buf c;
	wm_buf_init(&c);
	for (size_t i = 0; i < r->n_command; i++) {
		if (i)
			wm_buf_append(&c, " ", 1);
		wm_buf_puts(&c, r->command[i]);
	}
	/* c is a scratch buffer: its error is returned, not folded into b */
	int rc = wm_buf_error(&c);
	if (!rc)
		rc = wm_html_escape_cut(b, c.data ? c.data : "", max_chars);
	wm_buf_free(&c);
	return rc;
}

static bool is_modeled(const struct wm_rec_dev *d)
{
	return strcmp(d->method, "modeled") == 0;
}

/* ---- charts ------------------------------------------------------------------------ */

struct seg {
	double t0, t1, p_w;
};

/* Constant-power segments from the cumulative column col (NAN cells skipped). */
static int segments(const struct wm_recording *r, size_t col, struct seg **out, size_t *n_out)
{
	*out = NULL;
	*n_out = 0;
	if (r->n_rows < 2)
		return 0;
	struct seg *s = calloc(r->n_rows, sizeof *s);
	if (!s)
		return -ENOMEM;
	size_t n = 0;
	double pt = NAN, pe = NAN;
	for (size_t i = 0; i < r->n_rows; i++) {
		double t = wm_rec_cell(r, i, WM_COL_T), e = wm_rec_cell(r, i, col);
		if (isnan(e))
			continue;
		if (!isnan(pe) && t > pt) {
			double p = (e - pe) / (t - pt);
			s[n++] = (struct seg){pt, t, p > 0 ? p : 0};
		}
		pt = t;
		pe = e;
	}
	*out = s;
	*n_out = n;
	return 0;
}

struct bucket {
	double e_j, cov_s, min_w, max_w;
};

static void fold(const struct seg *s, size_t n, double t0, double w, size_t nb, struct bucket *bk)
{
	for (size_t i = 0; i < nb; i++)
		bk[i] = (struct bucket){0, 0, INFINITY, -INFINITY};
	for (size_t j = 0; j < n; j++) {
		double a = floor((s[j].t0 - t0) / w);
		/* !(a >= 0) and not a < 0: a NaN (inf / inf for absurd times)
		 * must not reach the cast, whose result would be undefined */
		size_t i = !(a >= 0) ? 0 : a >= (double)nb ? nb - 1 : (size_t)a;
		for (; i < nb; i++) {
			double lo = t0 + (double)i * w, hi = lo + w;
			if (i == nb - 1)
				hi = INFINITY; /* the last bucket takes the rounding */
			if (lo >= s[j].t1)
				break;
			double ov = fmin(hi, s[j].t1) - fmax(lo, s[j].t0);
			if (ov <= 0)
				continue;
			bk[i].e_j += s[j].p_w * ov;
			bk[i].cov_s += ov;
			bk[i].min_w = fmin(bk[i].min_w, s[j].p_w);
			bk[i].max_w = fmax(bk[i].max_w, s[j].p_w);
		}
	}
}

enum { CW = 760, CH = 210, ML = 64, MR = 16, MT = 26, MB = 38 };
#define PW (CW - ML - MR)
#define PH (CH - MT - MB)

/* time axis: the unit that keeps labels short */
static void time_unit(double span_s, double *div, const char **unit)
{
	if (span_s <= 180) {
		*div = 1;
		*unit = "s";
	} else if (span_s <= 3 * 3600) {
		*div = 60;
		*unit = "min";
	} else if (span_s <= 3 * 86400) {
		*div = 3600;
		*unit = "h";
	} else {
		*div = 86400;
		*unit = "d";
	}
}

static void axes(wm_buf *b, double t0, double t1, double ymax, const char *yunit)
{
	double ystep = nice_step(ymax, 4);
	for (double v = 0; v <= ymax * 1.0001; v += ystep) {
		double y = MT + PH - v / ymax * PH;
		wm_buf_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>", ML, y,
			      ML + PW, y);
		wm_buf_printf(b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", ML - 6, y + 4);
		axis_label(b, v, yunit);
		wm_buf_puts(b, "</text>");
	}
	double div;
	const char *unit;
	double span = t1 - t0;
	time_unit(span, &div, &unit);
	double xstep = nice_step(span / div, 6) * div;
	for (double v = 0; v <= span * 1.0001; v += xstep) {
		double x = ML + v / span * PW;
		wm_buf_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#999\"/>", x, MT + PH, x,
			      MT + PH + 4);
		wm_buf_printf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>", x, MT + PH + 16,
			      round(v / div * 1000) / 1000);
	}
	wm_buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">time since start (%s)</text>",
		      ML + PW / 2, CH - 4, unit);
	wm_buf_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#999\"/>", ML, MT + PH, ML + PW,
		      MT + PH);
}

static void legend_item(wm_buf *b, int *x, const char *fill, double opacity, const char *text)
{
	wm_buf_printf(b, "<rect x=\"%d\" y=\"8\" width=\"12\" height=\"10\" fill=\"%s\" fill-opacity=\"%.2f\"/>", *x,
		      fill, opacity);
	wm_buf_printf(b, "<text x=\"%d\" y=\"17\">%s</text>", *x + 16, text);
	*x += 34 + (int)strlen(text) * 6;
}

/* The power plot of device k: min-max band, mean line, attributed area. */
static int power_chart(wm_buf *b, const struct wm_recording *r, size_t k)
{
	const struct wm_rec_dev *d = &r->devs[k];
	struct seg *ps = NULL, *as = NULL;
	size_t np = 0, na = 0;
	struct bucket *pb = NULL, *ab = NULL;
	int rc = segments(r, wm_rec_dcol(k, WM_DCOL_ENERGY), &ps, &np);
	if (!rc && d->has_attr)
		rc = segments(r, wm_rec_dcol(k, WM_DCOL_ATTR), &as, &na);
	if (rc)
		goto out;
	if (np == 0) {
		wm_buf_puts(b, "<p class=\"muted\">Too few samples to draw power over time.</p>\n");
		rc = wm_buf_error(b);
		goto out;
	}
	double t0 = ps[0].t0, t1 = ps[np - 1].t1;
	size_t nb = WM_HTML_MAX_POINTS < PW ? WM_HTML_MAX_POINTS : PW;
	double w = (t1 - t0) / (double)nb;
	if (!(w > 0) || !isfinite(w) || !isfinite(t0)) {
		/* the reader refuses such times; a chart of them would loop on its
		 * axis ticks forever */
		wm_buf_puts(b, "<p class=\"muted\">The samples' times cannot be drawn.</p>\n");
		rc = wm_buf_error(b);
		goto out;
	}
	pb = calloc(nb, sizeof *pb);
	ab = calloc(nb, sizeof *ab);
	if (!pb || !ab) {
		rc = -ENOMEM;
		goto out;
	}
	fold(ps, np, t0, w, nb, pb);
	fold(as, na, t0, w, nb, ab);
	double ymax = 0;
	bool band = false;
	for (size_t i = 0; i < nb; i++)
		if (pb[i].cov_s > 0) {
			ymax = fmax(ymax, pb[i].max_w);
			band = band || pb[i].max_w - pb[i].min_w > 1e-3 * pb[i].max_w; /* visible: over 0.1% */
		}
	double step = nice_step(ymax, 4);
	ymax = ymax > 0 ? ceil(ymax * 1.05 / step) * step : 1;
	const char *col = colour(k);
	/* (x of bucket centre, y) */
#define BX(i) (ML + ((double)(i) + 0.5) / (double)nb * PW)
#define BY(v) (MT + PH - (v) / ymax * PH)
	wm_buf_printf(b, "<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"power over time\">",
		      CW, CH, CW, CH);
	axes(b, t0, t1, ymax, "W");
	{
		/* windows of work (windows.jsonl): shaded behind the curves; those
		 * shorter than a plotted point are too thin to see and are left out */
		struct wm_window_span *sp = NULL;
		size_t nsp = 0;
		if (r->dir && t1 > t0 && wm_windows_spans(r->dir, (t1 - t0) / PW, 500, &sp, &nsp) == 0) {
			for (size_t i = 0; i < nsp; i++) {
				double a = fmax(sp[i].start_s, t0), z = fmin(sp[i].end_s, t1);
				if (z <= a)
					continue;
				wm_buf_printf(b, "<rect class=\"window\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" "
					      "fill=\"#888\" fill-opacity=\"0.12\"/>",
					      ML + (a - t0) / (t1 - t0) * PW, MT, (z - a) / (t1 - t0) * PW, PH);
			}
		}
		free(sp);
	}
	if (na > 0) {
		bool started = false;
		double lastx = 0;
		for (size_t i = 0; i < nb; i++) {
			if (ab[i].cov_s <= 0)
				continue;
			if (!started)
				wm_buf_printf(b, "<polygon fill=\"%s\" fill-opacity=\"0.45\" points=\"%.1f,%.1f", col, BX(i),
					      BY(0.0));
			started = true;
			wm_buf_printf(b, " %.1f,%.1f", BX(i), BY(ab[i].e_j / ab[i].cov_s));
			lastx = BX(i);
		}
		if (started)
			wm_buf_printf(b, " %.1f,%.1f\"/>", lastx, BY(0.0));
	}
	if (band) {
		wm_buf_printf(b, "<polygon fill=\"%s\" fill-opacity=\"0.18\" points=\"", col);
		for (size_t i = 0; i < nb; i++)
			if (pb[i].cov_s > 0)
				wm_buf_printf(b, "%.1f,%.1f ", BX(i), BY(pb[i].max_w));
		for (size_t i = nb; i-- > 0;)
			if (pb[i].cov_s > 0)
				wm_buf_printf(b, "%.1f,%.1f ", BX(i), BY(pb[i].min_w));
		wm_buf_puts(b, "\"/>");
	}
	wm_buf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" points=\"", col);
	for (size_t i = 0; i < nb; i++)
		if (pb[i].cov_s > 0)
			wm_buf_printf(b, "%.1f,%.1f ", BX(i), BY(pb[i].e_j / pb[i].cov_s));
	wm_buf_puts(b, "\"/>");
#undef BX
#undef BY
	int lx = ML;
	legend_item(b, &lx, col, 1.0, "mean power");
	if (band)
		legend_item(b, &lx, col, 0.18, "min-max within a plotted point");
	if (na > 0)
		legend_item(b, &lx, col, 0.45, "attributed to the measured processes");
	wm_buf_puts(b, "</svg>\n");
	rc = wm_buf_error(b);
out:
	free(ps);
	free(as);
	free(pb);
	free(ab);
	return rc;
}

/* Horizontal bars, one row per label: stacked (one bar of n_series parts)
 * or grouped (n_series thin bars). v is n_rows x n_series, in joules. */
struct hbars {
	size_t n_rows, n_series;
	const char *const *labels;     /* raw; escaped and cut here */
	const char *const *series;     /* raw names for the legend */
	const char *const *colours;
	const double *v;
	bool stacked;
};

static int hbar_chart(wm_buf *b, const struct hbars *h)
{
	enum { LW = 300, BW = 360, ROW = 24, SUB = 13 };
	size_t row_h = h->stacked ? ROW : h->n_series * SUB + 10;
	/* the legend wraps: one line per ~700 px of names */
	int legend_lines = 1, lx0 = LW;
	for (size_t j = 0; j < h->n_series; j++) {
		size_t len = strlen(h->series[j]);
		int wj = 28 + (int)(len > 40 ? 40 : len) * 7;
		if (lx0 + wj > CW && lx0 > 0) {
			legend_lines++;
			lx0 = 0;
		}
		lx0 += wj;
	}
	int top = 12 + legend_lines * 16;
	int height = top + (int)(h->n_rows * row_h) + 26;
	double vmax = 0;
	for (size_t i = 0; i < h->n_rows; i++) {
		double s = 0;
		for (size_t j = 0; j < h->n_series; j++) {
			double x = h->v[i * h->n_series + j];
			x = isfinite(x) && x > 0 ? x : 0;
			s = h->stacked ? s + x : fmax(s, x);
		}
		vmax = fmax(vmax, s);
	}
	double step = nice_step(vmax, 4);
	double xmax = vmax > 0 ? ceil(vmax * 1.02 / step) * step : 1;
	int rc;
	wm_buf_printf(b, "<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"energy\">", CW,
		      height, CW, height);
	for (double x = 0; x <= xmax * 1.0001; x += step) {
		double px = LW + x / xmax * BW;
		wm_buf_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e5e5e5\"/>", px, top - 4, px,
			      height - 22);
		wm_buf_printf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", px, height - 8);
		axis_label(b, x, "J");
		wm_buf_puts(b, "</text>");
	}
	for (size_t i = 0; i < h->n_rows; i++) {
		double y = top + (double)(i * row_h);
		wm_buf_printf(b, "<g><title>");
		wm_html_escape_cut(b, h->labels[i], 400);
		wm_buf_printf(b, "</title><text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", LW - 8, y + row_h / 2.0 + 4);
		wm_html_escape_cut(b, h->labels[i], 40);
		wm_buf_puts(b, "</text>");
		double x = LW, total = 0;
		for (size_t j = 0; j < h->n_series; j++) {
			double val = h->v[i * h->n_series + j];
			val = isfinite(val) && val > 0 ? val : 0;
			double wpx = val / xmax * BW;
			if (h->stacked) {
				wm_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>", x,
					      y + 3, wpx, ROW - 6, h->colours[j]);
				x += wpx;
				total += val;
			} else {
				double yy = y + 5 + (double)(j * SUB);
				wm_buf_printf(b, "<rect x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>", LW,
					      yy, wpx, SUB - 2, h->colours[j]);
				wm_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">", LW + wpx + 4, yy + SUB - 3);
				char e[96];
				rc = wm_recording_fmt_energy(e, sizeof e, val);
				if (rc)
					return rc;
				wm_buf_puts(b, e);
				wm_buf_puts(b, "</text>");
			}
		}
		if (h->stacked) {
			char e[96];
			rc = wm_recording_fmt_energy(e, sizeof e, total);
			if (rc)
				return rc;
			wm_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">%s</text>", x + 4, y + row_h / 2.0 + 4, e);
		}
		wm_buf_puts(b, "</g>");
	}
	int lx = LW, ly = 6;
	for (size_t j = 0; j < h->n_series; j++) {
		size_t len = strlen(h->series[j]);
		int wj = 28 + (int)(len > 40 ? 40 : len) * 7;
		if (lx + wj > CW && lx > 0) {
			lx = 0;
			ly += 16;
		}
		wm_buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"10\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">",
			      lx, ly, h->colours[j], lx + 16, ly + 9);
		wm_html_escape_cut(b, h->series[j], 40);
		wm_buf_puts(b, "</text>");
		lx += wj;
	}
	wm_buf_puts(b, "</svg>\n");
	return wm_buf_error(b);
}

/* ---- one run ------------------------------------------------------------------------ */

struct pref {
	const struct wm_rec_proc *p;
	double total_j;
};

static int by_energy(const void *a, const void *b)
{
	const struct pref *x = a, *y = b;
	if (x->total_j != y->total_j)
		return x->total_j < y->total_j ? 1 : -1;
	return (x->p->pid > y->p->pid) - (x->p->pid < y->p->pid);
}

static const char *proc_name(const struct wm_rec_proc *p)
{
	if (p->cmdline && *p->cmdline)
		return p->cmdline;
	return p->comm ? p->comm : "";
}

/* For chart labels: the command line without the directory of its program
 * ("/usr/bin/python3 train.py" -> "python3 train.py"); the table keeps it. */
static const char *short_name(const char *cmd)
{
	const char *end = strchr(cmd, ' ');
	const char *slash = NULL;
	for (const char *p = cmd; *p && (!end || p < end); p++)
		if (*p == '/')
			slash = p;
	return slash && slash[1] && slash[1] != ' ' ? slash + 1 : cmd;
}

static int td_energy(wm_buf *b, double j)
{
	char e[96];
	int rc = wm_recording_fmt_energy(e, sizeof e, j);
	if (rc)
		return rc;
	wm_buf_printf(b, "<td class=\"n\">%s</td>", e);
	return wm_buf_error(b);
}

static int facts(wm_buf *b, const struct wm_recording *r)
{
	int rc;
	wm_buf_puts(b, "<table>\n<tr><th>command</th><td><code>");
	if (r->has_command && r->n_command) {
		rc = put_command(b, r, 2000);
		if (rc)
			return rc;
	} else {
		wm_buf_puts(b, "(none recorded)");
	}
	wm_buf_puts(b, "</code></td></tr>\n<tr><th>recording</th><td><code>");
	wm_html_escape(b, r->dir);
	wm_buf_puts(b, "</code></td></tr>\n<tr><th>started (UTC)</th><td>");
	wm_html_escape(b, r->start_utc ? r->start_utc : "unknown");
	char dur[64];
	rc = wm_recording_fmt_duration(dur, sizeof dur, r->duration_s);
	if (rc)
		return rc;
	wm_buf_printf(b, "</td></tr>\n<tr><th>duration</th><td>%s</td></tr>\n", dur);
	if (r->has_exit)
		wm_buf_printf(b, "<tr><th>exit status</th><td>%lld</td></tr>\n", (long long)r->exit_status);
	wm_buf_printf(b, "<tr><th>samples</th><td>%zu</td></tr>\n<tr><th>state</th><td>%s%s</td></tr>\n", r->n_rows,
		      r->complete  ? "complete"
		      : r->running ? "still running: totals up to the last sample written so far"
				   : "incomplete: the run was killed; totals up to the last complete sample",
		      r->truncated ? " (the last line was cut mid-write and ignored)" : "");
	if (r->samples_short && r->n_rows) {
		char end[64];
		rc = wm_recording_fmt_duration(end, sizeof end, r->samples_end_s);
		if (rc)
			return rc;
		wm_buf_printf(b, "<tr><th>samples end</th><td>at %s, before the run's end (the disk filled, or the folder was copied while the run wrote): energies are those up to %s, average powers over the samples' span</td></tr>\n",
			      end, end);
	}
	if (!isnan(r->self_cpu_s))
		wm_buf_printf(b, "<tr><th>measuring cost</th><td>%.2f s CPU%s", r->self_cpu_s,
			      r->duration_s > 0 ? "" : "</td></tr>\n");
	if (!isnan(r->self_cpu_s) && r->duration_s > 0)
		wm_buf_printf(b, " (%.2f%% of one core)</td></tr>\n", r->self_cpu_s / r->duration_s * 100);
	wm_buf_puts(b, "</table>\n");
	return wm_buf_error(b);
}

static void method_cell(wm_buf *b, const struct wm_recording *r, const struct wm_rec_dev *d)
{
	if (is_modeled(d)) {
		wm_buf_puts(b, "<td><span class=\"modeled\">modelled</span> (an estimate, no energy counter: ");
		wm_html_escape(b, *d->source ? d->source : "model");
		if (r->model_name) {
			wm_buf_puts(b, " ");
			wm_html_escape(b, r->model_name);
		}
		wm_buf_puts(b, ")</td>");
		return;
	}
	bool measured = strcmp(d->method, "measured") == 0;
	wm_buf_printf(b, "<td><span class=\"%s\">", measured ? "measured" : "muted");
	wm_html_escape(b, d->method);
	wm_buf_puts(b, "</span>");
	if (*d->source) {
		wm_buf_puts(b, " (");
		wm_html_escape(b, d->source);
		wm_buf_puts(b, ")");
	}
	wm_buf_puts(b, "</td>");
}

static int devices_table(wm_buf *b, const struct wm_recording *r, const struct wm_carbon_opts *o)
{
	if (r->n_devs == 0) {
		wm_buf_puts(b, "<p class=\"note\">No energy source was recorded (see <code>wattmeter sensors</code>).</p>\n");
		return wm_buf_error(b);
	}
	int rc;
	wm_buf_puts(b, "<table>\n<tr><th>device</th><th>energy</th><th>kWh</th><th>avg power</th><th>peak power</th>"
		       "<th>attributed</th><th>method (source)</th></tr>\n");
	for (size_t k = 0; k < r->n_devs; k++) {
		const struct wm_rec_dev *d = &r->devs[k];
		char s[96];
		wm_buf_puts(b, "<tr><td>");
		wm_html_escape(b, d->name);
		wm_buf_puts(b, "</td>");
		rc = td_energy(b, d->energy_j);
		if (rc)
			return rc;
		rc = wm_carbon_fmt_kwh(s, sizeof s, wm_carbon_kwh(o, d->energy_j));
		if (rc)
			return rc;
		wm_buf_printf(b, "<td class=\"n\">%s</td>", s);
		rc = wm_recording_fmt_power(s, sizeof s, wm_recording_avg_w(r, k));
		if (rc)
			return rc;
		wm_buf_printf(b, "<td class=\"n\">%s</td>", s);
		rc = wm_recording_fmt_power(s, sizeof s, d->peak_w);
		if (rc)
			return rc;
		wm_buf_printf(b, "<td class=\"n\">%s</td>", s);
		if (d->has_attr) {
			rc = wm_recording_fmt_energy(s, sizeof s, d->attributed_j);
			if (rc)
				return rc;
			wm_buf_printf(b, "<td class=\"n\">%s", s);
			if (d->energy_j > 0)
				wm_buf_printf(b, " (%.0f%%)", d->attributed_j / d->energy_j * 100);
			wm_buf_puts(b, "</td>");
		} else {
			wm_buf_puts(b, "<td class=\"n\">-</td>");
		}
		method_cell(b, r, d);
		wm_buf_puts(b, "</tr>\n");
	}
	wm_buf_puts(b, "</table>\n");
	return wm_buf_error(b);
}

static int carbon_section(wm_buf *b, const struct wm_recording *r, const struct wm_carbon_opts *o)
{
	wm_buf basis;
	wm_buf_init(&basis);
	double total = wm_recording_total_j(r, &basis);
	double attr = wm_recording_attributed_j(r);
	char s[96];
	/* basis is a scratch buffer: on its ENOMEM total is NAN, not a figure */
	int rc = wm_buf_error(&basis);
	if (rc) {
		wm_buf_free(&basis);
		return rc;
	}
	wm_buf_puts(b, "<h2>Energy, carbon and cost</h2>\n<table>\n<tr><th></th><th>machine (");
	wm_html_escape(b, basis.data ? basis.data : "");
	wm_buf_free(&basis);
	wm_buf_puts(b, ")</th><th>attributed to the measured processes</th></tr>\n<tr><th>energy</th>");
	rc = td_energy(b, total);
	if (rc)
		return rc;
	rc = td_energy(b, attr);
	if (rc)
		return rc;
	wm_buf_printf(b, "</tr>\n<tr><th>kWh%s</th>", o->pue_given ? " (PUE applied)" : "");
	rc = wm_carbon_fmt_kwh(s, sizeof s, wm_carbon_kwh(o, total));
	if (rc)
		return rc;
	wm_buf_printf(b, "<td class=\"n\">%s</td>", s);
	rc = wm_carbon_fmt_kwh(s, sizeof s, wm_carbon_kwh(o, attr));
	if (rc)
		return rc;
	wm_buf_printf(b, "<td class=\"n\">%s</td></tr>\n", s);
	if (o->has_intensity) {
		wm_buf_puts(b, "<tr><th>CO2e</th>");
		rc = wm_carbon_fmt_co2e(s, sizeof s, wm_carbon_co2e_g(o, total));
		if (rc)
			return rc;
		wm_buf_printf(b, "<td class=\"n\">%s</td>", s);
		rc = wm_carbon_fmt_co2e(s, sizeof s, wm_carbon_co2e_g(o, attr));
		if (rc)
			return rc;
		wm_buf_printf(b, "<td class=\"n\">%s</td></tr>\n", s);
	}
	if (o->has_price) {
		wm_buf_puts(b, "<tr><th>cost</th>");
		rc = wm_carbon_fmt_cost(s, sizeof s, wm_carbon_cost(o, total), o->currency);
		if (rc)
			return rc;
		wm_buf_printf(b, "<td class=\"n\">%s</td>", s);
		rc = wm_carbon_fmt_cost(s, sizeof s, wm_carbon_cost(o, attr), o->currency);
		if (rc)
			return rc;
		wm_buf_printf(b, "<td class=\"n\">%s</td></tr>\n", s);
	}
	wm_buf_puts(b, "</table>\n<ul>\n");
	if (o->has_intensity) {
		wm_buf_printf(b, "<li>grid intensity: %g gCO2e/kWh, ", o->intensity_g_per_kwh);
		wm_html_escape(b, o->provenance);
		wm_buf_puts(b, "</li>\n");
	} else {
		wm_buf_puts(b, "<li class=\"note\">");
		wm_html_escape(b, wm_carbon_hint);
		wm_buf_puts(b, "</li>\n");
	}
	if (o->has_price)
		wm_buf_printf(b, "<li>electricity price: %g %s/kWh, user-given</li>\n", o->price_per_kwh, o->currency);
	else
		wm_buf_puts(b, "<li class=\"muted\">no price given, so no cost: add --price P --currency CUR</li>\n");
	wm_buf_printf(b, "<li>PUE %.2f%s</li>\n", o->pue, o->pue_given ? " (user-given)" : " (none given: energy at the machine only)");
	wm_buf_puts(b, "<li class=\"muted\">machine: the devices that do not overlap (psys already holds cpu and dram)</li>\n</ul>\n");
	return wm_buf_error(b);
}

static int processes_section(wm_buf *b, const struct wm_recording *r, int top_n)
{
	if (r->n_procs == 0 || top_n <= 0)
		return 0;
	/* series: devices any process carried energy for, or attributed ones */
	size_t *ser = calloc(r->n_devs ? r->n_devs : 1, sizeof *ser);
	struct pref *v = calloc(r->n_procs, sizeof *v);
	const char **labels = NULL, **names = NULL, **cols = NULL;
	double *vals = NULL;
	size_t *off = NULL;
	wm_buf lab;
	wm_buf_init(&lab);
	int rc = 0;
	if (!ser || !v) {
		rc = -ENOMEM;
		goto out;
	}
	size_t ns = 0;
	for (size_t k = 0; k < r->n_devs; k++) {
		bool any = r->devs[k].has_attr;
		for (size_t i = 0; !any && i < r->n_procs; i++)
			any = r->procs[i].energy_seen[k];
		if (any)
			ser[ns++] = k;
	}
	for (size_t i = 0; i < r->n_procs; i++) {
		v[i].p = &r->procs[i];
		for (size_t j = 0; j < ns; j++)
			v[i].total_j += r->procs[i].energy_j[ser[j]];
	}
	qsort(v, r->n_procs, sizeof *v, by_energy);
	size_t shown = r->n_procs < (size_t)top_n ? r->n_procs : (size_t)top_n;
	if (ns > 0) {
		labels = calloc(shown, sizeof *labels);
		names = calloc(ns, sizeof *names);
		cols = calloc(ns, sizeof *cols);
		vals = calloc(shown * ns, sizeof *vals);
		/* labels: "pid cmdline", kept in one buffer as NUL-separated strings */
		off = calloc(shown, sizeof *off);
		if (!labels || !names || !cols || !vals || !off) {
			rc = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < shown; i++) {
			off[i] = lab.len;
			wm_buf_printf(&lab, "%lld %s%s", (long long)v[i].p->pid, v[i].p->included ? "[included] " : "",
				      short_name(proc_name(v[i].p)));
			wm_buf_append(&lab, "", 1); /* keep the NUL: the next string starts after it */
			for (size_t j = 0; j < ns; j++)
				vals[i * ns + j] = v[i].p->energy_j[ser[j]];
		}
		/* lab is a scratch buffer: its error is returned, not folded into b */
		rc = wm_buf_error(&lab);
		if (rc)
			goto out;
		for (size_t i = 0; i < shown; i++)
			labels[i] = lab.data + off[i];
		for (size_t j = 0; j < ns; j++) {
			names[j] = r->devs[ser[j]].name;
			cols[j] = colour(ser[j]);
		}
		wm_buf_printf(b, "<h2>Energy per process (top %zu of %zu)</h2>\n", shown, r->n_procs);
		struct hbars h = {shown, ns, labels, names, cols, vals, true};
		rc = hbar_chart(b, &h);
		if (rc)
			goto out;
	} else {
		wm_buf_printf(b, "<h2>Processes (top %zu of %zu)</h2>\n", shown, r->n_procs);
	}
	wm_buf_puts(b, "<table>\n<tr><th>PID</th><th>energy</th><th>CPU time</th><th>peak RSS</th><th>command line</th></tr>\n");
	for (size_t i = 0; i < shown; i++) {
		wm_buf_printf(b, "<tr><td class=\"n\">%lld</td>", (long long)v[i].p->pid);
		rc = td_energy(b, v[i].total_j);
		if (rc)
			goto out;
		wm_buf_printf(b, "<td class=\"n\">%.1f s</td><td class=\"n\">%.1f MiB</td><td><code>", v[i].p->cpu_s,
			      (double)v[i].p->peak_rss_bytes / 1048576.0);
		if (v[i].p->included)
			wm_buf_puts(b, "</code><span class=\"muted\">included</span> <code>");
		wm_html_escape_cut(b, proc_name(v[i].p), 500);
		wm_buf_puts(b, "</code></td></tr>\n");
	}
	wm_buf_puts(b, "</table>\n");
	if (shown < r->n_procs)
		wm_buf_printf(b, "<p class=\"muted\">... and %zu more (<code>wattmeter report --json</code> lists them all; <code>--top N</code> shows more here).</p>\n",
			      r->n_procs - shown);
	rc = wm_buf_error(b);
out:
	wm_buf_free(&lab);
	free(off);
	free(labels);
	free(names);
	free(cols);
	free(vals);
	free(ser);
	free(v);
	return rc;
}

/* gpuN: "gpu" followed by digits only */
static bool is_gpu(const char *name)
{
	if (strncmp(name, "gpu", 3) != 0 || !name[3])
		return false;
	for (const char *p = name + 3; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

static int gpu_section(wm_buf *b, const struct wm_recording *r)
{
	size_t ng = 0;
	for (size_t k = 0; k < r->n_devs; k++)
		ng += is_gpu(r->devs[k].name);
	if (ng == 0)
		return 0;
	const char **labels = calloc(ng, sizeof *labels);
	double *vals = calloc(ng * 2, sizeof *vals);
	int rc = -ENOMEM;
	if (labels && vals) {
		size_t i = 0;
		for (size_t k = 0; k < r->n_devs; k++) {
			const struct wm_rec_dev *d = &r->devs[k];
			if (!is_gpu(d->name))
				continue;
			labels[i] = d->name;
			double a = d->has_attr ? fmin(d->attributed_j, d->energy_j) : 0;
			vals[i * 2] = a;
			vals[i * 2 + 1] = d->energy_j - a;
			i++;
		}
		static const char *const names[] = {"attributed to the measured processes", "not attributed"};
		static const char *const cols[] = {"#e15759", "#f4b6b7"};
		struct hbars h = {ng, 2, labels, names, cols, vals, true};
		wm_buf_printf(b, "<h2>Energy per GPU</h2>\n");
		rc = hbar_chart(b, &h);
	}
	free(labels);
	free(vals);
	return rc;
}

static void provenance_section(wm_buf *b, const struct wm_recording *r)
{
	wm_buf_puts(b, "<h2>Provenance</h2>\n<ul>\n");
	for (size_t k = 0; k < r->n_devs; k++) {
		const struct wm_rec_dev *d = &r->devs[k];
		wm_buf_puts(b, "<li><b>");
		wm_html_escape(b, d->name);
		if (is_modeled(d)) {
			wm_buf_puts(b, "</b>: <span class=\"modeled\">modelled</span> by ");
			wm_html_escape(b, *d->source ? d->source : "a model");
			if (r->model_name) {
				wm_buf_puts(b, " (");
				wm_html_escape(b, r->model_name);
				wm_buf_puts(b, ")");
			}
			wm_buf_puts(b, ": an estimate from CPU utilisation, not a measurement</li>\n");
		} else {
			wm_buf_puts(b, "</b>: <span class=\"measured\">");
			wm_html_escape(b, d->method);
			wm_buf_puts(b, "</span> from ");
			wm_html_escape(b, *d->source ? d->source : "an unnamed source");
			wm_buf_puts(b, "</li>\n");
		}
	}
	wm_buf_puts(b, "</ul>\n");
	if (r->n_sensors) {
		wm_buf_puts(b, "<table>\n<tr><th>sensor</th><th>state</th><th>detail</th><th>fix</th></tr>\n");
		for (size_t i = 0; i < r->n_sensors; i++) {
			const struct wm_rec_sensor *s = &r->sensors[i];
			wm_buf_puts(b, "<tr><td>");
			wm_html_escape(b, s->name);
			wm_buf_puts(b, "</td><td>");
			wm_html_escape(b, s->state);
			wm_buf_puts(b, "</td><td>");
			wm_html_escape(b, s->detail);
			wm_buf_puts(b, "</td><td>");
			if (*s->fix) {
				wm_buf_puts(b, "<code>");
				wm_html_escape(b, s->fix);
				wm_buf_puts(b, "</code>");
			}
			wm_buf_puts(b, "</td></tr>\n");
		}
		wm_buf_puts(b, "</table>\n");
	}
	for (size_t i = 0; i < r->n_warnings; i++) {
		wm_buf_puts(b, "<p class=\"note\">warning: ");
		wm_html_escape(b, r->warnings[i]);
		wm_buf_puts(b, "</p>\n");
	}
	for (size_t k = 0; k < r->n_devs; k++) {
		wm_buf line;
		wm_buf_init(&line);
		if (wm_rec_gaps_line(r, k, &line) == 0 && line.len) {
			wm_buf_puts(b, "<p class=\"note gap\">gap: ");
			wm_html_escape(b, line.data);
			wm_buf_puts(b, "</p>\n");
		}
		wm_buf_free(&line);
	}
}

/* The requests (requests.jsonl), with the cumulative energy of the devices
 * but psys per sample, whole and attributed, through the public series API
 * (WM_TABLE_COLUMNS; NaN where a line lacks it). */
static int requests_section(wm_buf *b, const struct wm_recording *r)
{
	const char *name;
	size_t n = wm_report_series(r, WM_TABLE_COLUMNS, 0, &name, NULL);
	size_t sz = n ? n : 1;
	double *t = calloc(sz, sizeof *t), *e = calloc(sz, sizeof *e), *a = calloc(sz, sizeof *a);
	double *col = calloc(sz, sizeof *col);
	unsigned char *has_a = calloc(sz, 1);
	int rc = t && e && a && col && has_a ? 0 : -ENOMEM;
	for (size_t i = 0; !rc && wm_report_series(r, WM_TABLE_COLUMNS, i, &name, NULL) == n && name; i++) {
		int whole = !strncmp(name, "energy_j.", 9), attr = !strncmp(name, "attributed_j.", 13);
		if (!strcmp(name, "t_s")) {
			(void)wm_report_series(r, WM_TABLE_COLUMNS, i, &name, t);
		} else if ((whole || attr) && strcmp(strchr(name, '.') + 1, "psys") != 0) {
			(void)wm_report_series(r, WM_TABLE_COLUMNS, i, &name, col);
			for (size_t k = 0; k < n; k++) {
				if (!isfinite(col[k]))
					continue;
				if (whole)
					e[k] += col[k];
				else {
					a[k] += col[k];
					has_a[k] = 1;
				}
			}
		}
	}
	for (size_t k = 0; !rc && k < n; k++)
		if (!has_a[k])
			a[k] = NAN; /* attributed on process-tier lines only */
	if (!rc)
		rc = wm_requests_html(r->dir, t, e, a, n, b);
	free(t);
	free(e);
	free(a);
	free(col);
	free(has_a);
	return rc;
}

static int run_section(wm_buf *b, const struct wm_recording *r, const struct wm_html_opts *o, const char *heading_id)
{
	wm_buf_printf(b, "<section id=\"%s\">\n", heading_id);
	int rc = facts(b, r);
	if (rc)
		return rc;
	if (r->n_rows == 0)
		wm_buf_puts(b, "<p class=\"note\">No samples were recorded: the run ended or was killed before the first one.</p>\n");
	wm_buf_puts(b, "<h2>Energy per device</h2>\n");
	rc = devices_table(b, r, o->carbon);
	if (!rc)
		rc = carbon_section(b, r, o->carbon);
	if (!rc && r->dir)
		rc = wm_windows_html(r->dir, b);
	if (!rc && r->dir)
		rc = requests_section(b, r);
	if (rc)
		return rc;
	if (r->n_devs)
		wm_buf_puts(b, "<h2>Power over time</h2>\n");
	for (size_t k = 0; k < r->n_devs; k++) {
		const struct wm_rec_dev *d = &r->devs[k];
		wm_buf_puts(b, "<h3>");
		wm_html_escape(b, d->name);
		wm_buf_printf(b, " <span class=\"%s\">", is_modeled(d) ? "modeled" : "measured");
		wm_buf_puts(b, is_modeled(d) ? "modelled" : "measured");
		wm_buf_puts(b, "</span></h3>\n");
		rc = power_chart(b, r, k);
		if (rc)
			return rc;
	}
	rc = gpu_section(b, r);
	if (!rc)
		rc = processes_section(b, r, o->top_n);
	if (rc)
		return rc;
	provenance_section(b, r);
	wm_buf_puts(b, "</section>\n");
	return wm_buf_error(b);
}

/* ---- several runs ---------------------------------------------------------------------- */

static int compare_section(wm_buf *b, const wm_recording *const *recs, size_t n, const struct wm_carbon_opts *o)
{
	const char **devs = NULL;
	size_t nd = 0;
	int rc = wm_recording_union_devices(recs, n, &devs, &nd);
	if (rc)
		return rc;
	const char **names = NULL, **cols = NULL;
	double *vals = NULL;
	size_t *off = NULL;
	wm_buf lab;
	wm_buf_init(&lab);
	char s[96];
	wm_buf_printf(b, "<h2>%zu runs side by side</h2>\n<table>\n<tr><th>run</th><th>duration</th>", n);
	for (size_t j = 0; j < nd; j++) {
		wm_buf_puts(b, "<th>");
		wm_html_escape(b, devs[j]);
		wm_buf_puts(b, "</th>");
	}
	wm_buf_printf(b, "<th>machine</th><th>attributed</th><th>kWh</th>%s%s</tr>\n",
		      o->has_intensity ? "<th>CO2e</th>" : "", o->has_price ? "<th>cost</th>" : "");
	for (size_t i = 0; i < n; i++) {
		const struct wm_recording *r = recs[i];
		double total = wm_recording_total_j(r, NULL);
		wm_buf_printf(b, "<tr><td><a href=\"#run%zu\">run %zu</a>: <code>", i + 1, i + 1);
		wm_html_escape(b, r->dir);
		wm_buf_printf(b, "</code></td><td class=\"n\">%.1f s</td>", r->duration_s);
		for (size_t j = 0; j < nd; j++) {
			long k = -1;
			for (size_t q = 0; q < r->n_devs && k < 0; q++)
				if (strcmp(r->devs[q].name, devs[j]) == 0)
					k = (long)q;
			if (k < 0) {
				wm_buf_puts(b, "<td class=\"n\">-</td>");
				continue;
			}
			rc = wm_recording_fmt_energy(s, sizeof s, r->devs[k].energy_j);
			if (rc)
				goto out;
			wm_buf_printf(b, "<td class=\"n\">%s%s</td>", s,
				      is_modeled(&r->devs[k]) ? " <span class=\"modeled\">(modelled)</span>" : "");
		}
		rc = td_energy(b, total);
		if (!rc)
			rc = td_energy(b, wm_recording_attributed_j(r));
		if (!rc)
			rc = wm_carbon_fmt_kwh(s, sizeof s, wm_carbon_kwh(o, total));
		if (rc)
			goto out;
		wm_buf_printf(b, "<td class=\"n\">%s</td>", s);
		if (o->has_intensity) {
			rc = wm_carbon_fmt_co2e(s, sizeof s, wm_carbon_co2e_g(o, total));
			if (rc)
				goto out;
			wm_buf_printf(b, "<td class=\"n\">%s</td>", s);
		}
		if (o->has_price) {
			rc = wm_carbon_fmt_cost(s, sizeof s, wm_carbon_cost(o, total), o->currency);
			if (rc)
				goto out;
			wm_buf_printf(b, "<td class=\"n\">%s</td>", s);
		}
		wm_buf_puts(b, "</tr>\n");
	}
	wm_buf_puts(b, "</table>\n");
	if (o->has_intensity) {
		wm_buf_printf(b, "<p>CO2e at %g gCO2e/kWh, ", o->intensity_g_per_kwh);
		wm_html_escape(b, o->provenance);
		wm_buf_puts(b, ".</p>\n");
	} else {
		wm_buf_puts(b, "<p class=\"note\">");
		wm_html_escape(b, wm_carbon_hint);
		wm_buf_puts(b, "</p>\n");
	}

	/* grouped bars: one group per device, one bar per run */
	names = calloc(n, sizeof *names);
	cols = calloc(n, sizeof *cols);
	vals = calloc(nd * n + 1, sizeof *vals);
	off = calloc(n, sizeof *off);
	if (!names || !cols || !vals || !off) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		off[i] = lab.len;
		wm_buf_printf(&lab, "run %zu: %s", i + 1, recs[i]->dir);
		wm_buf_append(&lab, "", 1);
		cols[i] = colour(i);
		for (size_t j = 0; j < nd; j++)
			for (size_t q = 0; q < recs[i]->n_devs; q++)
				if (strcmp(recs[i]->devs[q].name, devs[j]) == 0)
					vals[j * n + i] = recs[i]->devs[q].energy_j;
	}
	/* lab is a scratch buffer: its error is returned, not folded into b */
	rc = wm_buf_error(&lab);
	if (rc)
		goto out;
	for (size_t i = 0; i < n; i++)
		names[i] = lab.data + off[i];
	if (nd > 0) {
		wm_buf_puts(b, "<h3>Energy per device</h3>\n");
		struct hbars h = {nd, n, devs, names, cols, vals, false};
		rc = hbar_chart(b, &h);
		if (rc)
			goto out;
	}
	rc = wm_buf_error(b);
out:
	wm_buf_free(&lab);
	free(off);
	free(names);
	free(cols);
	free(vals);
	free(devs);
	return rc;
}

int wm_html_report(const wm_recording *const *recs, size_t n, const struct wm_html_opts *o, wm_buf *b)
{
	if (n == 0 || !o || !o->carbon)
		return -EINVAL;
	wm_buf title;
	wm_buf_init(&title);
	if (n == 1 && recs[0]->has_command && recs[0]->n_command) {
		for (size_t i = 0; i < recs[0]->n_command; i++)
			wm_buf_printf(&title, "%s%s", i ? " " : "", recs[0]->command[i]);
	} else if (n == 1) {
		wm_buf_puts(&title, recs[0]->dir);
	} else {
		wm_buf_printf(&title, "%zu runs compared", n);
	}
	/* title is a scratch buffer: its error is returned, not folded into b */
	int rc = wm_buf_error(&title);
	if (!rc)
		doc_head(b, title.data ? title.data : "");
	wm_buf_free(&title);
	if (rc)
		return rc;
	wm_buf_puts(b, "<h1>wattmeter report</h1>\n");
	if (n > 1) {
		rc = compare_section(b, recs, n, o->carbon);
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < n; i++) {
		char id[32];
		int m = snprintf(id, sizeof id, "run%zu", i + 1);
		if (m < 0 || (size_t)m >= sizeof id)
			return -EINVAL;
		if (n > 1) {
			wm_buf_printf(b, "<h2 id=\"h%s\" style=\"margin-top:48px\">Run %zu: <code>", id, i + 1);
			wm_html_escape(b, recs[i]->dir);
			wm_buf_puts(b, "</code></h2>\n");
		}
		rc = run_section(b, recs[i], o, id);
		if (rc)
			return rc;
	}
	wm_buf_puts(b, "<footer>Written by <code>wattmeter report --html</code>: one self-contained file, no scripts, "
		       "nothing fetched. Energies come from cumulative counters (exact totals); plotted power is "
		       "averaged per plotted point.</footer>\n</body>\n</html>\n");
	return wm_buf_error(b);
}
