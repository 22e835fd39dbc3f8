/* fuzz_windows.c — the windows reader (src/recording/windows_read.c) on
 * arbitrary windows.jsonl and samples.jsonl.
 *
 * Input: the bytes before the first 0xFF are windows.jsonl, those after it
 * samples.jsonl (read for the last sample, for windows never ended); without
 * 0xFF the whole input is windows.jsonl and samples.jsonl is one fixed line.
 * The JSON, text (all windows and one name), HTML table and plot spans run on
 * what opens; errors are fine, crashes and leaks are not.
 */
#include <stdint.h>
#include <stdlib.h>

#include "recording/windows.h"
#include "jsonl_input.h"
#include "wattmeter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *scratch = fuzz_jsonl_dir("windows.jsonl", data, size);
	if (!scratch)
		return 0;
	char err[512];
	free(wm_report_windows_json(scratch, NULL, err, sizeof err));
	free(wm_report_windows_json(scratch, "step", err, sizeof err));
	wm_buf b;
	wm_buf_init(&b);
	(void)wm_windows_text(scratch, NULL, &b, err, sizeof err);
	(void)wm_windows_text(scratch, "step", &b, err, sizeof err);
	(void)wm_windows_html(scratch, &b);
	wm_buf_free(&b);
	struct wm_window_span *sp = NULL;
	size_t n = 0;
	(void)wm_windows_spans(scratch, 0.0, 100, &sp, &n);
	free(sp);
	return 0;
}
