/* fuzz_recording.c — the recording reader on arbitrary meta.json and
 * samples.jsonl (input format: recording_input.h), then the summary JSON and
 * text, the columns, and query.c's answers from the parsed columns (details,
 * windows). The HTML,
 * carbon and comparison renderers have their own harness,
 * fuzz_report_html.c, on the same corpus: together they ran at a few
 * thousand inputs a second, apart the reader runs at over ten thousand.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "recording/record.h"
#include "recording_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	wm_recording *r = fuzz_recording_open(data, size);
	if (!r)
		return 0;
	char err[512];
	wm_buf b;
	wm_buf_init(&b);
	(void)wm_recording_summary_json(r, &b);
	wm_buf_reset(&b);
	(void)wm_recording_summary_text(r, 3, &b);
	wm_buf_reset(&b);
	(void)wm_recording_columns_json(r, &b);
	/* query.c, from what the reader parsed: the details, an open window
	 * or [0.1, 1] s, by the input's length */
	wm_buf_reset(&b);
	if (size % 3 == 0)
		(void)wm_recording_detail_json(r, &b, err, sizeof err);
	else if (size % 3 == 1)
		(void)wm_recording_window_json(r, NAN, NAN, &b, err, sizeof err);
	else
		(void)wm_recording_window_json(r, 0.1, 1.0, &b, err, sizeof err);
	wm_buf_free(&b);
	wm_recording_free(r);
	return 0;
}
