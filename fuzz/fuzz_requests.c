/* fuzz_requests.c — the requests reader (src/recording/requests_read.c) on
 * arbitrary requests.jsonl and samples.jsonl.
 *
 * Input: the bytes before the first 0xFF are requests.jsonl, those after it
 * samples.jsonl (read for the last sample: the conservation check); without
 * 0xFF the whole input is requests.jsonl and samples.jsonl is one fixed line.
 * The JSON, the summary JSON, the text and the HTML section run on what
 * opens; errors are fine, crashes and leaks are not.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "recording/requests.h"
#include "jsonl_input.h"
#include "wattmeter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *scratch = fuzz_jsonl_dir("requests.jsonl", data, size);
	if (!scratch)
		return 0;
	char err[512];
	free(wm_report_requests_json(scratch, err, sizeof err));
	free(wm_requests_summary_json(scratch, err, sizeof err));
	wm_buf b;
	wm_buf_init(&b);
	(void)wm_requests_text(scratch, &b, err, sizeof err);
	static const double t_s[] = {0, 1, 2.5}, e_j[] = {0, 3, 9}, a_j[] = {0, NAN, 4};
	(void)wm_requests_html(scratch, t_s, e_j, a_j, 3, &b);
	wm_buf_free(&b);
	return 0;
}
