/* counter.c — see counter.h. */
#include "base/counter.h"

#include <math.h>
#include <stddef.h>

void wm_counter_init(wm_counter *c, uint64_t range)
{
	*c = (wm_counter){.range = range};
}

void wm_counter_set_bound(wm_counter *c, double max_per_s, double min_window_s)
{
	c->max_per_s = max_per_s > 0 && isfinite(max_per_s) ? max_per_s : 0;
	c->min_window_s = min_window_s > 0 && isfinite(min_window_s) ? min_window_s : 0;
}

double wm_counter_min_wrap_s(const wm_counter *c)
{
	return c->range && c->max_per_s > 0 ? (double)c->range / c->max_per_s : 0;
}

/* The advance from a to b: forward, through one wrap at the range, or (no
 * range) a restart from 0, whose delta is b. */
static uint64_t step_from(const wm_counter *c, uint64_t a, uint64_t b, wm_counter_result *kind)
{
	if (b >= a) {
		*kind = WM_COUNTER_DELTA;
		return b - a;
	}
	if (c->range && a <= c->range) {
		/* RAPL counts 0..max_energy_range_uj then restarts at 0: the distance
		 * to the top plus what accrued after the wrap. (Only one wrap can be
		 * accounted: a longer interval is a stall.) */
		*kind = WM_COUNTER_WRAPPED;
		return (c->range - a) + b;
	}
	*kind = WM_COUNTER_RESET;
	return b;
}

/* Is a step of `step` raw units possible in dt_s seconds? */
static int plausible(const wm_counter *c, uint64_t step, double dt_s)
{
	if (!(c->max_per_s > 0))
		return 1;
	double w = dt_s > c->min_window_s ? dt_s : c->min_window_s;
	return (double)step <= c->max_per_s * w;
}

static wm_counter_result take(wm_counter *c, uint64_t raw, uint64_t now_ns, uint64_t d, wm_counter_result r,
			      uint64_t *delta)
{
	if (r == WM_COUNTER_WRAPPED)
		c->wraps++;
	else if (r == WM_COUNTER_RESET)
		c->resets++;
	c->last_raw = raw;
	c->last_ns = now_ns;
	c->have_cand = 0;
	c->total += d;
	if (delta)
		*delta = d;
	return r;
}

static wm_counter_result update(wm_counter *c, uint64_t raw, uint64_t now_ns, int timed, uint64_t *delta)
{
	if (delta)
		*delta = 0;
	if (c->range && raw > c->range) {
		/* the counter never holds a value past its range: garbage */
		c->glitches++;
		return WM_COUNTER_GLITCH_RANGE;
	}
	if (!c->primed) {
		c->primed = 1;
		c->last_raw = raw;
		c->last_ns = now_ns;
		c->have_cand = 0;
		return WM_COUNTER_FIRST;
	}
	wm_counter_result kind;
	uint64_t d = step_from(c, c->last_raw, raw, &kind);
	if (!timed || !(c->max_per_s > 0))
		return take(c, raw, now_ns, d, kind, delta);

	double dt_s = now_ns > c->last_ns ? (double)(now_ns - c->last_ns) / 1e9 : 0.0;
	double wrap_s = wm_counter_min_wrap_s(c);
	if (wrap_s > 0 && dt_s >= wrap_s) {
		/* It may have wrapped any number of times since the last good
		 * read: whatever the step says, the energy is unknown. */
		c->stalls++;
		(void)take(c, raw, now_ns, 0, WM_COUNTER_DELTA, NULL);
		return WM_COUNTER_STALLED;
	}
	if (plausible(c, d, dt_s)) {
		if (c->have_cand) {
			/* Plausible from the last good value and from the rejected
			 * one: which the counter went on from cannot be told. Count
			 * the step from the last good value (what a one-off glitch
			 * gives) but call the gap's energy uncertain: missing. */
			wm_counter_result ck;
			uint64_t dc = step_from(c, c->cand_raw, raw, &ck);
			double dtc = now_ns > c->cand_ns ? (double)(now_ns - c->cand_ns) / 1e9 : 0.0;
			if ((wrap_s == 0 || dtc < wrap_s) && plausible(c, dc, dtc)) {
				(void)take(c, raw, now_ns, d, kind, delta);
				return WM_COUNTER_REBASED;
			}
		}
		return take(c, raw, now_ns, d, kind, delta);
	}
	if (c->have_cand) {
		/* Implausible from the last good value: is it plausible from the
		 * value rejected before? Then the counter really jumped. */
		wm_counter_result ck;
		uint64_t dc = step_from(c, c->cand_raw, raw, &ck);
		double dtc = now_ns > c->cand_ns ? (double)(now_ns - c->cand_ns) / 1e9 : 0.0;
		if ((wrap_s == 0 || dtc < wrap_s) && plausible(c, dc, dtc)) {
			(void)take(c, raw, now_ns, dc, ck == WM_COUNTER_WRAPPED ? ck : WM_COUNTER_DELTA, delta);
			return WM_COUNTER_REBASED;
		}
	}
	c->have_cand = 1;
	c->cand_raw = raw;
	c->cand_ns = now_ns;
	c->glitches++;
	return WM_COUNTER_GLITCH_STEP;
}

wm_counter_result wm_counter_update_at(wm_counter *c, uint64_t raw, uint64_t now_ns, uint64_t *delta)
{
	return update(c, raw, now_ns, 1, delta);
}

wm_counter_result wm_counter_update(wm_counter *c, uint64_t raw, uint64_t *delta)
{
	return update(c, raw, 0, 0, delta);
}

int wm_counter_result_is_gap(wm_counter_result r)
{
	return r == WM_COUNTER_GLITCH_RANGE || r == WM_COUNTER_GLITCH_STEP || r == WM_COUNTER_REBASED ||
	       r == WM_COUNTER_STALLED;
}

const char *wm_counter_result_cause(wm_counter_result r)
{
	switch (r) {
	case WM_COUNTER_GLITCH_RANGE: return "value above range";
	case WM_COUNTER_GLITCH_STEP: return "implausible step";
	case WM_COUNTER_REBASED: return "counter jumped";
	case WM_COUNTER_STALLED: return "stalled past wrap time";
	case WM_COUNTER_FIRST:
	case WM_COUNTER_DELTA:
	case WM_COUNTER_WRAPPED:
	case WM_COUNTER_RESET: return "";
	}
	return "";
}
