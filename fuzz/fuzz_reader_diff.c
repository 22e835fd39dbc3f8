/* fuzz_reader_diff.c — the reader's fast path for the writer's own line
 * shape (record_scan.c) against jansson: every input (recording_input.h's
 * format, the fuzz_recording corpus) is read both ways, and both must give
 * the same error message, or the same recording: the same summary JSON and
 * text (per-process totals among them), the same columns, details (one row
 * per process per process-tier line) and windows (per-process energies),
 * the same count, sum and maximum of every series of every table, byte for
 * byte (doubles as the shortest text that round-trips, so a parsed number
 * one bit off shows). The summary-only read (report's streaming pass) must
 * give the full read's summaries and errors. The number scanner alone is
 * set against libc too (number_diff): its fast paths (eight digits a step,
 * one exact division) must give strtod's double, bit for bit, and strtoll's
 * integer. A difference aborts. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recording/record.h"
#include "recording/record_scan.h"
#include "recording_input.h"
#include "wattmeter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef int (*parse_fn)(const char *, const char *, size_t, const char *, size_t, wm_recording **, char *,
			size_t);

/* Everything a reader's caller can see of a recording, as one text. */
static void render_all(const wm_recording *r, wm_buf *b)
{
	char err[512] = "";
	(void)wm_recording_summary_json(r, b);
	(void)wm_recording_summary_text(r, 3, b);
	(void)wm_recording_columns_json(r, b);
	(void)wm_recording_detail_json(r, b, err, sizeof err);
	if (wm_recording_window_json(r, NAN, NAN, b, err, sizeof err) < 0)
		wm_buf_puts(b, err);
	if (wm_recording_window_json(r, 0.1, 1.0, b, err, sizeof err) < 0)
		wm_buf_puts(b, err);
	if (wm_recording_window_json(r, 0.25, 0.45, b, err, sizeof err) < 0)
		wm_buf_puts(b, err);
	/* every series of every table: the queries' own path (binary search
	 * on t_s, the stats loop), whole and over a window */
	for (int table = WM_TABLE_COLUMNS; table <= WM_TABLE_PROCS; table++) {
		const char *name;
		for (size_t i = 0; wm_report_series(r, table, i, &name, NULL), name; i++) {
			wm_buf_printf(b, "\n%d %s", table, name); /* (name: valid until the next call) */
			for (int w = 0; w < 2; w++) {
				size_t count = 0;
				double sum = NAN, max = NAN;
				int rc = wm_report_series_stats(r, table, i, w ? 0.15 : NAN, w ? 0.35 : NAN, &count,
								&sum, &max);
				wm_buf_printf(b, " %d %zu ", rc, count);
				wm_buf_json_double(b, sum);
				wm_buf_puts(b, " ");
				wm_buf_json_double(b, max);
			}
		}
	}
}

/* What the summary-only read gives: the summaries alone. */
static void render_summary(const wm_recording *r, wm_buf *b)
{
	(void)wm_recording_summary_json(r, b);
	(void)wm_recording_summary_text(r, 3, b);
}

static int read_with(parse_fn fn, const uint8_t *data, size_t size, wm_buf *out,
		     void (*render)(const wm_recording *, wm_buf *))
{
	const uint8_t *sep = size ? memchr(data, 0xFF, size) : NULL;
	const char *meta = fuzz_fixed_meta, *samples = (const char *)data;
	size_t meta_len = sizeof fuzz_fixed_meta - 1, samples_len = size;
	if (sep) {
		meta = (const char *)data;
		meta_len = (size_t)(sep - data);
		samples = (const char *)sep + 1;
		samples_len = size - meta_len - 1;
	}
	wm_recording *r = NULL;
	char err[512] = "";
	int rc = fn("fuzz", meta, meta_len, samples, samples_len, &r, err, sizeof err);
	if (rc < 0) {
		wm_buf_printf(out, "error %d: ", rc);
		wm_buf_puts(out, err);
		return rc;
	}
	render(r, out);
	wm_recording_free(r);
	return 0;
}

/* The number at every byte of the input that starts one (up to 64 of
 * them), as wm_scan_number reads it, against what jansson would make of
 * the same bytes: strtoll for an integer, strtod for a real. */
static void number_diff(const uint8_t *data, size_t size)
{
	const char *e = (const char *)data + size;
	int tried = 0;
	for (const char *p = (const char *)data; p < e && tried < 64; p++) {
		if (*p != '-' && (*p < '0' || *p > '9'))
			continue;
		double v;
		bool integer;
		int64_t iv;
		const char *end = wm_scan_number(p, e, &v, &integer, &iv);
		if (!end)
			continue;
		tried++;
		char tmp[512];
		size_t len = (size_t)(end - p);
		if (len >= sizeof tmp)
			continue;
		memcpy(tmp, p, len);
		tmp[len] = '\0';
		bool same;
		if (integer) {
			errno = 0;
			long long ll = strtoll(tmp, NULL, 10);
			same = errno == 0 && ll == iv && (double)ll == v;
		} else {
			double d = strtod(tmp, NULL);
			same = memcmp(&d, &v, sizeof d) == 0;
		}
		if (!same) {
			fprintf(stderr, "wm_scan_number(\"%s\") = %.17g (%s %lld), not libc's\n", tmp, v,
				integer ? "integer" : "real", (long long)iv);
			abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	number_diff(data, size);
	wm_buf fast, ref, sum_only, sum_full;
	wm_buf_init(&fast);
	wm_buf_init(&ref);
	wm_buf_init(&sum_only);
	wm_buf_init(&sum_full);
	(void)read_with(wm_recording_parse, data, size, &fast, render_all);
	(void)read_with(wm_recording_parse_jansson, data, size, &ref, render_all);
	(void)read_with(wm_recording_parse_summary, data, size, &sum_only, render_summary);
	(void)read_with(wm_recording_parse, data, size, &sum_full, render_summary);
	if (!wm_buf_error(&fast) && !wm_buf_error(&ref) &&
	    (fast.len != ref.len || memcmp(fast.data, ref.data, fast.len) != 0)) {
		fprintf(stderr, "fast path and jansson differ\n--- fast:\n%.*s\n--- jansson:\n%.*s\n", (int)fast.len,
			fast.data ? fast.data : "", (int)ref.len, ref.data ? ref.data : "");
		abort();
	}
	if (!wm_buf_error(&sum_only) && !wm_buf_error(&sum_full) &&
	    (sum_only.len != sum_full.len || memcmp(sum_only.data, sum_full.data, sum_only.len) != 0)) {
		fprintf(stderr, "summary-only and full reads differ\n--- summary only:\n%.*s\n--- full:\n%.*s\n",
			(int)sum_only.len, sum_only.data ? sum_only.data : "", (int)sum_full.len,
			sum_full.data ? sum_full.data : "");
		abort();
	}
	/* (out of memory on one side: nothing to compare) */
	wm_buf_free(&fast);
	wm_buf_free(&ref);
	wm_buf_free(&sum_only);
	wm_buf_free(&sum_full);
	return 0;
}
