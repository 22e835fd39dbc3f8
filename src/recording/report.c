/* report.c — the public reading API (wattmeter.h) over the reader (record.h). */
#include <errno.h>
#include <stdlib.h>

#include "recording/carbon.h"
#include "recording/record.h"
#include "wattmeter.h"

typedef int (*render_fn)(const wm_recording *r, int top_n, wm_buf *out);

static int render_json(const wm_recording *r, int top_n, wm_buf *out)
{
	(void)top_n;
	/* the "carbon" object with nothing given: kWh, no CO2e, and the note on
	 * how to get one (the same JSON as `wattmeter report --json`) */
	struct wm_carbon_opts none;
	wm_carbon_opts_init(&none);
	return wm_recording_summary_json_carbon(r, &none, out);
}

static int render_text(const wm_recording *r, int top_n, wm_buf *out)
{
	struct wm_carbon_opts none;
	wm_carbon_opts_init(&none);
	int rc = wm_recording_summary_text(r, top_n, out);
	return rc ? rc : wm_recording_carbon_text(r, &none, out); /* as `wattmeter report` */
}

static int render_columns(const wm_recording *r, int top_n, wm_buf *out)
{
	(void)top_n;
	return wm_recording_columns_json(r, out);
}

static char *render(const char *dir, int top_n, render_fn fn, char *err, size_t errlen)
{
	wm_recording *rec = NULL;
	int rc = wm_recording_open(dir, &rec, err, errlen);
	if (rc < 0) {
		errno = -rc;
		return NULL;
	}
	wm_buf b;
	wm_buf_init(&b);
	rc = fn(rec, top_n, &b);
	wm_recording_free(rec);
	if (rc < 0 || !b.data) {
		wm_buf_free(&b);
		errno = rc < 0 ? -rc : ENOMEM;
		wm_err(err, errlen, -errno, "cannot summarise %s: out of memory", dir);
		return NULL;
	}
	return b.data; /* ownership passes to the caller */
}

char *wm_report_json(const char *dir, char *err, size_t errlen)
{
	return render(dir, 0, render_json, err, errlen);
}

char *wm_report_text(const char *dir, int top_n, char *err, size_t errlen)
{
	return render(dir, top_n, render_text, err, errlen);
}

char *wm_report_columns_json(const char *dir, char *err, size_t errlen)
{
	return render(dir, 0, render_columns, err, errlen);
}

/* ---- a recording read once (Python's Results) ------------------------------ */

wm_recording *wm_report_load(const char *dir, char *err, size_t errlen)
{
	wm_recording *rec = NULL;
	int rc = wm_recording_open(dir, &rec, err, errlen);
	if (rc < 0) {
		errno = -rc;
		return NULL;
	}
	return rec;
}

void wm_report_release(wm_recording *r)
{
	wm_recording_free(r);
}

char *wm_report_render(const wm_recording *r, int what, int top_n, double start_s, double end_s, char *err,
		       size_t errlen)
{
	wm_buf b;
	wm_buf_init(&b);
	int rc;
	switch (what) {
	case WM_REPORT_SUMMARY:
		rc = render_json(r, top_n, &b);
		break;
	case WM_REPORT_TEXT:
		rc = render_text(r, top_n, &b);
		break;
	case WM_REPORT_COLUMNS:
		rc = render_columns(r, top_n, &b);
		break;
	case WM_REPORT_DETAIL:
		rc = wm_recording_detail_json(r, &b, err, errlen);
		break;
	case WM_REPORT_WINDOW:
		rc = wm_recording_window_json(r, start_s, end_s, &b, err, errlen);
		break;
	default:
		rc = wm_err(err, errlen, -EINVAL, "no rendering %d of a recording", what);
	}
	if (rc < 0 || !b.data) {
		wm_buf_free(&b);
		errno = rc < 0 ? -rc : ENOMEM;
		if (errno == ENOMEM)
			(void)wm_err(err, errlen, -ENOMEM, "cannot summarise the recording: out of memory");
		return NULL;
	}
	return b.data;
}
