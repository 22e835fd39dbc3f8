/* proxy_metrics.h — the proxy's Prometheus metrics, from the ledger's
 * finished request lines (wm_meter_set_request_callback):
 *
 *   wattmeter_request_energy_joules{model,device}        histogram (buckets in J)
 *   wattmeter_request_energy_joules_total{model,device}  counter: Σ energy_j
 *   wattmeter_requests_total{model,outcome}              counter
 *   wattmeter_tokens_total{model,kind="prompt|completion"} counter
 *
 * Energy is per device (cpu, dram, psys, gpu0 ...), as in the recording:
 * devices overlap (psys holds cpu), so they are never summed here. At most
 * WM_PROXY_METRICS_MAX_MODELS models get their own series; the rest are
 * counted under model="_other" (a client choosing the model name cannot
 * grow the exposition without bound). */
#ifndef WM_PROXY_PROXY_METRICS_H
#define WM_PROXY_PROXY_METRICS_H

#include <stddef.h>

#include "base/util.h"

#define WM_PROXY_METRICS_MAX_MODELS 64
#define WM_PROXY_METRICS_MAX_DEVICES 16

typedef struct wm_proxy_metrics wm_proxy_metrics;

wm_proxy_metrics *wm_proxy_metrics_new(void);
void wm_proxy_metrics_free(wm_proxy_metrics *pm);
/* Takes one requests.jsonl line (a JSON object); 0, or -EINVAL when it is
 * not one (nothing counted). Any thread. */
int wm_proxy_metrics_add(wm_proxy_metrics *pm, const char *line_json);
/* The wm_request_done_fn for wm_meter_set_request_callback (ctx: pm). */
void wm_proxy_metrics_on_request(void *ctx, const char *line_json);
/* Appends the exposition (Prometheus text format 0.0.4). 0 or -ENOMEM. */
int wm_proxy_metrics_format(wm_proxy_metrics *pm, wm_buf *out);

#endif
