/* requests.h — the meter's hooks into requests.c (not installed).
 *
 * The public calls (wm_meter_request_begin/_tokens/_end, _set_request_callback,
 * _requests_flush) are in wattmeter.h. The meter calls these: start after
 * the recording exists and before the sampler thread, note_sample on the
 * sampler thread after each sample's attribution (the baseline included),
 * stop after the sampler's last sample, free at the end.
 */
#ifndef WM_METER_REQUESTS_H
#define WM_METER_REQUESTS_H

#include <stddef.h>
#include <stdint.h>

#include "wattmeter.h"

struct wm_requests;

/* Starts the ledger thread; requests.jsonl is created at the first request.
 * With no output_dir, does nothing (the request calls answer -ENOTSUP). */
int wm_requests_start(wm_meter *m, const char *output_dir, char *err, size_t errlen);
void wm_requests_note_sample(wm_meter *m, uint64_t now_ns, int proc_tier, int baseline);
/* Ends requests still open at the last sample, finalises every interval,
 * writes the summary line, joins the thread. Harmless twice. */
void wm_requests_stop(wm_meter *m);
/* The ledger thread's CPU so far (s): part of the meter's own cost. */
double wm_requests_cpu_s(const wm_meter *m);
void wm_requests_free(wm_meter *m);

#endif
