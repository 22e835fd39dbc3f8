/* fuzz_report_html.c — the renderers of a read recording that are not the
 * summary: HTML report (one run and two side by side), carbon and cost,
 * comparison tables. Input: recording_input.h, on fuzz_recording's corpus.
 * The HTML must never hold a script element whatever the recording says;
 * no NaN or huge number may reach an integer cast (html.c had one:
 * fuzz/corpus/fuzz_recording/html-nan-cast, caught with float-cast-overflow).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "recording/carbon.h"
#include "recording/html.h"
#include "recording/record.h"
#include "recording_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	wm_recording *r = fuzz_recording_open(data, size);
	if (!r)
		return 0;
	char err[512];
	struct wm_carbon_opts co;
	wm_carbon_opts_init(&co);
	(void)wm_carbon_set_intensity(&co, "FR", err, sizeof err);
	(void)wm_carbon_set_price(&co, "0.2", err, sizeof err);
	(void)wm_carbon_set_currency(&co, "EUR", err, sizeof err);
	wm_buf b;
	wm_buf_init(&b);
	(void)wm_recording_summary_json_carbon(r, &co, &b);
	wm_buf_reset(&b);
	(void)wm_recording_carbon_text(r, &co, &b);
	const wm_recording *two[2] = {r, r};
	wm_buf_reset(&b);
	(void)wm_recording_compare_text(two, 2, &co, &b);
	wm_buf_reset(&b);
	(void)wm_recording_compare_json(two, 2, &co, &b);
	struct wm_html_opts ho = {.top_n = 5, .carbon = &co};
	for (size_t n = 1; n <= 2; n++) {
		wm_buf_reset(&b);
		if (wm_html_report(two, n, &ho, &b) == 0 && b.data && strcasestr(b.data, "<script"))
			abort();
	}
	wm_buf_free(&b);
	wm_recording_free(r);
	return 0;
}
