/* describe.c — the table `wattmeter sensors` prints: every source, its
 * state, and for each problem the fix. It runs the very probe the meter
 * runs (wm_probe_context, then the registry), so what it says is what a
 * run would measure. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "meter/meter_priv.h"

char *wm_sensors_describe(const wm_meter_config *cin, int as_json, char *err, size_t errlen)
{
	wm_meter_config c;
	int trc = wm_meter_take_config(cin, &c, err, errlen);
	if (trc < 0) {
		errno = -trc;
		return NULL;
	}
	wm_root sys = {.dirfd = -1}, proc = {.dirfd = -1};
	wm_sysstat st;
	int have_st = 0;
	wm_sources srcs = {0};
	wm_source_ctx ctx;
	char *result = NULL;
	wm_buf b;
	wm_buf_init(&b);

	int rc = wm_probe_context(&sys, &proc, &st, &have_st, &c, &ctx, &srcs, err, errlen);
	if (rc < 0) {
		errno = -rc;
		goto out;
	}
	if (as_json) {
		wm_buf_puts(&b, "{");
		(void)wm_sources_json(&srcs, &b);
		wm_buf_puts(&b, "}\n");
	} else {
		(void)wm_sources_text(&srcs, &b);
	}
	if (wm_buf_error(&b) || !b.data) {
		errno = ENOMEM;
		wm_err(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	result = b.data;
	wm_buf_init(&b);
out:
	wm_buf_free(&b);
	wm_sources_close(&srcs);
	if (have_st)
		wm_sysstat_close(&st);
	wm_root_close(&proc);
	wm_root_close(&sys);
	return result;
}
