/* source.c — helpers shared by every source: growing the device and channel
 * lists a probe fills, and the names of rules and gauges as recordings spell
 * them. */
#include "sources/source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *wm_attr_rule_name(wm_attr_rule r)
{
	switch (r) {
	case WM_ATTR_NONE: return "none";
	case WM_ATTR_CPU_TICKS: return "cpu-ticks";
	case WM_ATTR_MEMORY: return "memory";
	case WM_ATTR_SOURCE_SHARE: return "source-share";
	}
	return "?";
}

const char *wm_gauge_name(wm_gauge g)
{
	static const char *const names[WM_GAUGE_N] = {
		[WM_GAUGE_UTIL] = "util",
		[WM_GAUGE_MEM_UTIL] = "mem_util",
		[WM_GAUGE_MEM_USED_BYTES] = "mem_used_bytes",
		[WM_GAUGE_MEM_TOTAL_BYTES] = "mem_total_bytes",
		[WM_GAUGE_TEMP_C] = "temp_c",
		[WM_GAUGE_POWER_INSTANT_W] = "power_instant_w",
		[WM_GAUGE_POWER_AVG_W] = "power_avg_w",
		[WM_GAUGE_CLOCK_SM_MHZ] = "clock_sm_mhz",
		[WM_GAUGE_CLOCK_MEM_MHZ] = "clock_mem_mhz",
	};
	return (unsigned)g < WM_GAUGE_N ? names[g] : "?";
}

/* Grows *v (n elements of size sz) by one zeroed element. */
static void *grow_one(void **v, size_t *n, size_t sz)
{
	void *p = realloc(*v, (*n + 1) * sz);
	if (!p)
		return NULL;
	*v = p;
	void *e = (char *)p + *n * sz;
	memset(e, 0, sz);
	(*n)++;
	return e;
}

wm_device_decl *wm_source_add_device(wm_source *s, const char *name, const char *kind)
{
	wm_device_decl *d = grow_one((void **)&s->devices, &s->n_devices, sizeof *d);
	if (!d)
		return NULL;
	(void)snprintf(d->name, sizeof d->name, "%s", name);
	(void)snprintf(d->kind, sizeof d->kind, "%s", kind);
	d->used_by_run = -1;
	return d;
}

wm_channel *wm_source_add_channel(wm_source *s, const char *label, int device)
{
	wm_channel *c = grow_one((void **)&s->channels, &s->n_channels, sizeof *c);
	if (!c)
		return NULL;
	(void)snprintf(c->label, sizeof c->label, "%s", label);
	c->device = device;
	c->joules_per_unit = 1e-6;
	c->readable = 1;
	return c;
}

void wm_source_release(wm_source *s)
{
	free(s->devices);
	free(s->channels);
	s->devices = NULL;
	s->channels = NULL;
	s->n_devices = s->n_channels = 0;
}
