/* counter.h — wrap-aware cumulative energy counters.
 *
 * Hardware counters (RAPL energy_uj, NVML total energy) are raw uint64 values
 * that wrap at a known range (RAPL: max_energy_range_uj) or reset (a driver
 * reload). A wm_counter turns successive raw reads into an exact cumulative
 * total: the sum of deltas, modulo the range, whatever the sampling period.
 */
#ifndef WM_COUNTER_H
#define WM_COUNTER_H

#include <stdint.h>

typedef enum wm_counter_result {
	WM_COUNTER_FIRST = 0,   /* first read: baseline taken, delta 0 */
	WM_COUNTER_DELTA,       /* normal advance */
	WM_COUNTER_WRAPPED,     /* raw < last and a range is known: corrected */
	WM_COUNTER_RESET,       /* raw < last, no range: counter restarted; delta = raw */
} wm_counter_result;

typedef struct wm_counter {
	uint64_t last_raw;
	uint64_t range;          /* value at which the counter wraps to 0 (0 = unknown) */
	uint64_t total;          /* cumulative delta since the first read, raw units */
	uint64_t wraps;          /* number of wraps seen */
	uint64_t resets;         /* number of resets seen */
	int primed;
} wm_counter;

void wm_counter_init(wm_counter *c, uint64_t range);
/* Feeds one raw read; *delta (optional) receives the increment in raw units. */
wm_counter_result wm_counter_update(wm_counter *c, uint64_t raw, uint64_t *delta);

#endif
