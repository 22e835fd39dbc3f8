/* record_meter.c — a meter with the recording composed in.
 *
 * The meter (src/meter/) hands samples to whatever sinks its caller gives
 * it and knows nothing of recordings; the recording sink (record_sink.c)
 * reads the meter's tables. The composition lives here, on the recording's
 * side of that dependency: the recording sink first (it creates the folder
 * at begin, before the meter's windows.jsonl goes into it), then the
 * caller's sinks. wm_meter_start, the public entry point (wattmeter.h), is
 * this with no extra sink: the CLI's run and the Python Meter; serve adds
 * the exporter's sink through wm_meter_start_recorded.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "meter/meter.h"
#include "recording/record.h"
#include "wattmeter.h"

static void free_sinks(const wm_sink *sinks, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (sinks[i].ops->free)
			sinks[i].ops->free(sinks[i].ctx);
}

int wm_meter_start_recorded(const wm_meter_config *c, const wm_sink *sinks, size_t n_sinks, wm_meter **out,
			    char *err, size_t errlen)
{
	*out = NULL;
	if (!c->output_dir)
		return wm_meter_start_sinks(c, sinks, n_sinks, out, err, errlen);
	wm_sink *all = calloc(n_sinks + 1, sizeof *all);
	int rc = all ? wm_record_sink_new(c->output_dir, &all[0]) : -ENOMEM;
	if (rc < 0) {
		free_sinks(sinks, n_sinks); /* owned here, as the meter would own them */
		free(all);
		return wm_err(err, errlen, rc, "out of memory");
	}
	if (n_sinks)
		memcpy(all + 1, sinks, n_sinks * sizeof *all);
	rc = wm_meter_start_sinks(c, all, n_sinks + 1, out, err, errlen); /* owns each sink from here */
	free(all);
	return rc;
}

int wm_meter_start(const wm_meter_config *c, wm_meter **out, char *err, size_t errlen)
{
	return wm_meter_start_recorded(c, NULL, 0, out, err, errlen);
}
