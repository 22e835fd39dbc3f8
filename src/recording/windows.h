/* windows.h — reading windows.jsonl for reports (windows_read.c; not
 * installed; wm_report_windows_json in wattmeter.h is the JSON). */
#ifndef WM_RECORDING_WINDOWS_H
#define WM_RECORDING_WINDOWS_H

#include <stddef.h>

#include "base/util.h"

/* Appends the windows table of the recording in dir to out: per name
 * count, total, mean, p50 and p99 energy, mean duration and J per count;
 * with name, one line per window of that name instead. Nothing when the
 * recording has no windows and name is NULL. 0 or -errno (message in err). */
int wm_windows_text(const char *dir, const char *name, wm_buf *out, char *err, size_t errlen);

/* Spans of the windows that last at least min_s (the HTML power plots shade
 * them), in order of their end, max at most. *out is malloc'd (free it).
 * 0 or -errno; no windows.jsonl gives 0 spans. */
struct wm_window_span {
	double start_s, end_s;
};
int wm_windows_spans(const char *dir, double min_s, size_t max, struct wm_window_span **out, size_t *n);
/* Appends the HTML table "Energy per window" (per name) to b; nothing when
 * the recording has no windows. 0 or -errno. */
int wm_windows_html(const char *dir, wm_buf *b);
/* Runs side by side: per window name, each run's mean energy, count and J
 * per count (text), or as_json a JSON array of {"dir","groups"} appended to
 * out. Nothing when no run has windows. Returns how many runs have windows,
 * or -ENOMEM. */
int wm_windows_compare(const char *const *dirs, size_t n, int as_json, wm_buf *out);

#endif
