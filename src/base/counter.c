/* counter.c — see counter.h. */
#include "base/counter.h"

void wm_counter_init(wm_counter *c, uint64_t range)
{
	c->last_raw = 0;
	c->range = range;
	c->total = 0;
	c->wraps = 0;
	c->resets = 0;
	c->primed = 0;
}

wm_counter_result wm_counter_update(wm_counter *c, uint64_t raw, uint64_t *delta)
{
	uint64_t d = 0;
	wm_counter_result r;
	if (!c->primed) {
		c->primed = 1;
		r = WM_COUNTER_FIRST;
	} else if (raw >= c->last_raw) {
		d = raw - c->last_raw;
		r = WM_COUNTER_DELTA;
	} else if (c->range && c->last_raw <= c->range) {
		/* RAPL counts 0..max_energy_range_uj then restarts at 0: the distance
		 * to the top plus what accrued after the wrap. (Only one wrap can be
		 * accounted; the sampler reads well inside the worst-case wrap time.) */
		d = (c->range - c->last_raw) + raw;
		c->wraps++;
		r = WM_COUNTER_WRAPPED;
	} else {
		/* Went backwards with no known range: a reset (driver reload). What
		 * accrued since the reset is the new raw value. */
		d = raw;
		c->resets++;
		r = WM_COUNTER_RESET;
	}
	c->last_raw = raw;
	c->total += d;
	if (delta)
		*delta = d;
	return r;
}
