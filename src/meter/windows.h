/* windows.h — the meter's hooks into windows.c (not installed).
 *
 * The public calls (wm_meter_window_begin/_end, wm_meter_mark,
 * wm_meter_windows_flush) are in wattmeter.h. The meter calls these: start
 * after the recording exists and before the sampler thread, note_proc on the
 * sampler thread after each process-tier attribution, cpu_s for the
 * meter's own CPU, stop before the sampler's last sample, free at the end.
 */
#ifndef WM_METER_WINDOWS_H
#define WM_METER_WINDOWS_H

#include <stddef.h>
#include <stdint.h>

#include "wattmeter.h"

struct wm_windows;

/* Opens output_dir/windows.jsonl and starts the edge thread; with no
 * output_dir, does nothing (the window calls then answer -ENOTSUP). */
int wm_windows_start(wm_meter *m, const char *output_dir, char *err, size_t errlen);
void wm_windows_note_proc(wm_meter *m);
double wm_windows_cpu_s(const wm_meter *m);
/* Reads and writes every edge queued, ends windows still open (marked
 * "open"), joins the edge thread. Harmless twice. */
void wm_windows_stop(wm_meter *m);
void wm_windows_free(wm_meter *m);
/* An edge's time: now, or a caller's CLOCK_MONOTONIC stamp (mono_ns > 0)
 * taken no later than now and no earlier than the meter's start. */
uint64_t wm_meter_edge_ns(const wm_meter *m, uint64_t mono_ns);

#endif
