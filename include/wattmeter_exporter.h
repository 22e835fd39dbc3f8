/* wattmeter_exporter.h — the Prometheus exporter of libwattmeter.
 *
 * A whole-machine meter (no measured command) whose samples feed an HTTP
 * server answering GET /metrics from the last snapshot: a scrape never
 * touches hardware and never waits for the sampler. `wattmeter serve` and
 * Python's wattmeter.serve() are thin layers over these four calls.
 * Metric names and meanings: docs/exporter.md.
 *
 * Conventions as in wattmeter.h: 0 or a negative errno with a message in
 * (err, errlen) naming the problem and the fix; _free(NULL) is harmless; the
 * library never exits or prints.
 */
#ifndef WATTMETER_EXPORTER_H
#define WATTMETER_EXPORTER_H

#include <stddef.h>

#include "wattmeter.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WM_EXPORTER_DEFAULT_LISTEN "127.0.0.1:5001" /* AIPowerMeter's port, loopback only */
#define WM_EXPORTER_DEFAULT_MAX_SERIES 2000
#define WM_EXPORTER_DEFAULT_REPROBE_S 30.0  /* re-probe absent, forbidden or failing sources */

/* Size-tagged like wm_meter_config: set `size` with wm_exporter_config_init;
 * fields are only ever appended. */
typedef struct wm_exporter_config {
	size_t size;
	const char *listen;            /* "HOST:PORT", "[V6]:PORT", ":PORT" (every interface);
	                                  NULL: WM_EXPORTER_DEFAULT_LISTEN; port 0: any free port */
	const char *web_config_file;   /* exporter-toolkit web config (TLS, basic auth); NULL: none */
	int per_process;               /* per-process energy counters (scans every process) */
	int per_cgroup;                /* per-cgroup (v2) energy counters (idem) */
	size_t max_series;             /* cap per family of per-process/per-cgroup series;
	                                  0: WM_EXPORTER_DEFAULT_MAX_SERIES */
	const char *record_dir;        /* also keep a recording there; NULL: none */
	/* Every reprobe_s seconds, sources that are absent, forbidden, failing
	 * or whose counters have all failed to read for that long are probed
	 * again; when one becomes readable the meter is restarted on it (the
	 * CPU model gives way to RAPL), exported counters carry on from their
	 * last values (monotonic), and a recording goes on in record_dir-N.
	 * 0 or less: never. Default WM_EXPORTER_DEFAULT_REPROBE_S. */
	double reprobe_s;
	/* Called (from the re-probe thread) with one line saying what changed;
	 * NULL: nothing is said. The library itself never prints. */
	void (*on_event)(void *arg, const char *msg);
	void *on_event_arg;
} wm_exporter_config;

void wm_exporter_config_init(wm_exporter_config *c);

typedef struct wm_exporter wm_exporter;

/* Reads the web config, binds the address, then starts the meter with
 * meter_cfg's sampling options (period, roots, NVML; its output_dir,
 * pids and whole_machine are set by the exporter) and serves. meter_cfg may
 * be NULL for defaults. Fails without side effects: a bad web config, an
 * address in use or a meter that cannot start are reported here. */
int wm_exporter_start(const wm_exporter_config *cfg, const wm_meter_config *meter_cfg, wm_exporter **out,
		      char *err, size_t errlen);

int wm_exporter_port(const wm_exporter *e);        /* the bound port (the chosen one for 0) */
const char *wm_exporter_url(const wm_exporter *e); /* "http://127.0.0.1:5001" */

/* What start found worth a warning (a TLS key file readable by others), one
 * line each, "" if nothing: the library never prints, `serve` does. */
const char *wm_exporter_warnings(const wm_exporter *e);

/* Stops sampling (completing the recording, if any) and then the server. */
int wm_exporter_stop(wm_exporter *e, char *err, size_t errlen);
void wm_exporter_free(wm_exporter *e);              /* stops first if needed */

#ifdef __cplusplus
}
#endif

#endif
