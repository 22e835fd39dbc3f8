/* fuzz_reader_diff.c — the reader's fast path for the writer's own line
 * shape against jansson: every input (recording_input.h's format, the
 * fuzz_recording corpus) is read both ways, and both must give the same
 * error message, or the same recording: the same summary JSON and text, the
 * same columns, details and windows, byte for byte. A difference aborts. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recording/record.h"
#include "recording_input.h"

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
}

static int read_with(parse_fn fn, const uint8_t *data, size_t size, wm_buf *out)
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
	render_all(r, out);
	wm_recording_free(r);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	wm_buf fast, ref;
	wm_buf_init(&fast);
	wm_buf_init(&ref);
	(void)read_with(wm_recording_parse, data, size, &fast);
	(void)read_with(wm_recording_parse_jansson, data, size, &ref);
	if (wm_buf_error(&fast) || wm_buf_error(&ref)) {
		wm_buf_free(&fast);
		wm_buf_free(&ref);
		return 0; /* out of memory on one side: nothing to compare */
	}
	if (fast.len != ref.len || memcmp(fast.data, ref.data, fast.len) != 0) {
		fprintf(stderr, "fast path and jansson differ\n--- fast:\n%.*s\n--- jansson:\n%.*s\n", (int)fast.len,
			fast.data ? fast.data : "", (int)ref.len, ref.data ? ref.data : "");
		abort();
	}
	wm_buf_free(&fast);
	wm_buf_free(&ref);
	return 0;
}
