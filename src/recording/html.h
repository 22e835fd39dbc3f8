/* html.h — `wattmeter report DIR... --html FILE`: one self-contained HTML
 * file (no scripts, no network: a Content-Security-Policy forbids both) with
 * the summary, provenance, carbon and cost, and inline SVG plots drawn here.
 *
 * Every string that comes from a recording (command lines, process names,
 * device and sensor names, folder names) goes through wm_html_escape. Long
 * series are reduced to at most WM_HTML_MAX_POINTS buckets per plot (min,
 * max and mean power per bucket), so the file size does not grow with the
 * length of the recording.
 */
#ifndef WM_HTML_H
#define WM_HTML_H

#include <stddef.h>

#include "base/util.h"
#include "recording/carbon.h"
#include "recording/record.h"

#define WM_HTML_MAX_POINTS 600

struct wm_html_opts {
	int top_n;                          /* processes in the bar chart and table */
	const struct wm_carbon_opts *carbon; /* required */
};

/* Appends s with & < > " ' escaped, control characters (other than tab and
 * newline) and invalid UTF-8 shown as U+FFFD: safe inside element text and
 * quoted attribute values. */
int wm_html_escape(wm_buf *b, const char *s);
/* The same for at most max_chars code points, with "…" added when cut. */
int wm_html_escape_cut(wm_buf *b, const char *s, size_t max_chars);

/* One recording: the full report. Several: the comparison (table, grouped
 * bar chart of energy per device) followed by each run's report. */
int wm_html_report(const wm_recording *const *recs, size_t n, const struct wm_html_opts *o, wm_buf *out);

#endif
