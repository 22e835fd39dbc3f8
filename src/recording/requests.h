/* requests.h — reading requests.jsonl for reports (requests_read.c; not
 * installed; wm_report_requests_json in wattmeter.h is the JSON). */
#ifndef WM_RECORDING_REQUESTS_H
#define WM_RECORDING_REQUESTS_H

#include <stddef.h>

#include "base/util.h"

/* Appends the requests section of `wattmeter report` (count, J per request,
 * per token, idle share, by model, the conservation check per device) to
 * out; nothing when the recording has no requests.jsonl. 0 or -errno. */
int wm_requests_text(const char *dir, wm_buf *out, char *err, size_t errlen);
/* wm_report_requests_json without the list of requests: what `report
 * --json` splices in as "requests". malloc'd; NULL with errno and err. */
char *wm_requests_summary_json(const char *dir, char *err, size_t errlen);
/* Appends the HTML section: the text above, energy against tokens per
 * request, and the server's power beside the requests in flight. t_s[i],
 * and per sample the cumulative J of the devices but psys, whole (machine_j)
 * and attributed to the measured set (attributed_j, NaN on lines without
 * it): the server's power is from the one the header names. Nothing
 * without requests. */
int wm_requests_html(const char *dir, const double *t_s, const double *machine_j, const double *attributed_j,
		     size_t n, wm_buf *b);

#endif
