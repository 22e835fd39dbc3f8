/* counter.h — wrap-aware, plausibility-checked cumulative energy counters.
 *
 * Hardware counters (RAPL energy_uj, NVML total energy) are raw uint64 values
 * that wrap at a known range (RAPL: max_energy_range_uj) or reset (a driver
 * reload). A wm_counter turns successive raw reads into a cumulative total:
 * the sum of deltas, modulo the range, whatever the sampling period.
 *
 * A step that cannot be physical is a glitch, never energy (docs/recording.md,
 * "Gaps"). With a bound set (wm_counter_set_bound: the most the counter can
 * advance per second, from the zone's power limit or a per-kind ceiling) and
 * a time for every read (wm_counter_update_at):
 *   - a value above the range is a glitch (WM_COUNTER_GLITCH_RANGE);
 *   - a step, forward or through a wrap, above bound x elapsed time is a
 *     glitch (WM_COUNTER_GLITCH_STEP): a 5 J step back on a 262 kJ range is
 *     not a 262 kJ wrap, a +10 kJ jump in 0.1 s is not 100 kW;
 *   - a read more than the shortest wrap time (range / bound) after the last
 *     good one cannot know how many wraps it missed (WM_COUNTER_STALLED): the
 *     interval is not counted and the counter restarts from the new value.
 * A glitch counts nothing and keeps the last good value; the rejected value
 * is remembered: if the next read is plausible from it but not from the last
 * good value, the counter really moved (a reset, a re-enumeration) and
 * restarts from it (WM_COUNTER_REBASED: what lay between is missing).
 * A read plausible from the last good value only, after a glitch or a gap,
 * counts the whole step: the energy across the gap is measured by the
 * counter. Plausible from both, it is ambiguous: the step from the last good
 * value is counted and the result is WM_COUNTER_REBASED (the gap's energy is
 * then reported missing: uncertain).
 *
 * Without a bound (the legacy wm_counter_update) only the range check
 * applies.
 */
#ifndef WM_COUNTER_H
#define WM_COUNTER_H

#include <stdint.h>

typedef enum wm_counter_result {
	WM_COUNTER_FIRST = 0,    /* first read: baseline taken, delta 0 */
	WM_COUNTER_DELTA,        /* normal advance */
	WM_COUNTER_WRAPPED,      /* raw < last and a range is known: corrected */
	WM_COUNTER_RESET,        /* raw < last, no range: counter restarted; delta = raw */
	WM_COUNTER_GLITCH_RANGE, /* raw above the range: not counted, last good value kept */
	WM_COUNTER_GLITCH_STEP,  /* step above the physical bound: not counted, kept */
	WM_COUNTER_REBASED,      /* after a glitch, the counter really moved: restarted
	                            from the glitch value; delta = the plausible step since */
	WM_COUNTER_STALLED,      /* longer than the shortest wrap time since the last good
	                            read: not counted (wraps unknown), restarted from raw */
} wm_counter_result;

typedef struct wm_counter {
	uint64_t last_raw;
	uint64_t range;          /* value at which the counter wraps to 0 (0 = unknown) */
	uint64_t total;          /* cumulative delta since the first read, raw units */
	uint64_t wraps;          /* number of wraps seen */
	uint64_t resets;         /* number of resets seen */
	uint64_t glitches;       /* reads rejected as implausible (range or step) */
	uint64_t stalls;         /* intervals not counted: longer than the shortest wrap */
	int primed;
	/* plausibility (wm_counter_set_bound); 0 = unbounded */
	double max_per_s;        /* most raw units the counter can advance in one second */
	double min_window_s;     /* the bound applies over at least this long (counter
	                            update granularity, reads that are a little stale) */
	uint64_t last_ns;        /* time of the last good read (wm_counter_update_at) */
	int have_cand;           /* a rejected value is remembered */
	uint64_t cand_raw, cand_ns;
} wm_counter;

void wm_counter_init(wm_counter *c, uint64_t range);
/* Sets the physical bound: max_per_s raw units per second (0: none),
 * applied over max(elapsed, min_window_s). Keeps the counter's state. */
void wm_counter_set_bound(wm_counter *c, double max_per_s, double min_window_s);
/* Shortest time in which the counter can wrap (range / bound), 0 when either
 * is unknown. */
double wm_counter_min_wrap_s(const wm_counter *c);
/* Feeds one raw read taken at now_ns (CLOCK_MONOTONIC); *delta (optional)
 * receives the increment counted, in raw units. */
wm_counter_result wm_counter_update_at(wm_counter *c, uint64_t raw, uint64_t now_ns, uint64_t *delta);
/* The same with no time: no bound or stall check (the range check stays). */
wm_counter_result wm_counter_update(wm_counter *c, uint64_t raw, uint64_t *delta);
/* 1 for the results that are a gap (GLITCH_*, REBASED, STALLED). */
int wm_counter_result_is_gap(wm_counter_result r);
/* "implausible step", "value above range", ... for messages and recordings. */
const char *wm_counter_result_cause(wm_counter_result r);

#endif
