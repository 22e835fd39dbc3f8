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

#endif
