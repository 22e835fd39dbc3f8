/* test_counter.c — wrap-aware cumulative counters (counter.h).
 *
 * The rules under test: the first read is a baseline; a rise is a delta; a
 * fall with a known range is a wrap whose delta is the distance to the top
 * plus the new value; a fall with no usable range is a reset whose delta is
 * the new value; the total is the exact sum of deltas.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <setjmp.h>
#include <cmocka.h>

#include "base/counter.h"

static void first_read_is_a_baseline_with_zero_delta(void **state)
{
	(void)state;
	wm_counter c;
	uint64_t d = 99;
	wm_counter_init(&c, 1000);
	assert_int_equal(wm_counter_update(&c, 700, &d), WM_COUNTER_FIRST);
	assert_int_equal(d, 0);
	assert_int_equal(c.total, 0);
	assert_int_equal(c.last_raw, 700);
	assert_true(c.primed);
}

static void a_rise_is_the_difference(void **state)
{
	(void)state;
	wm_counter c;
	uint64_t d;
	wm_counter_init(&c, 1000);
	wm_counter_update(&c, 100, &d);
	assert_int_equal(wm_counter_update(&c, 350, &d), WM_COUNTER_DELTA);
	assert_int_equal(d, 250);
	assert_int_equal(c.total, 250);
}

static void an_unchanged_value_is_a_zero_delta_not_a_wrap(void **state)
{
	(void)state;
	wm_counter c;
	uint64_t d = 7;
	wm_counter_init(&c, 1000);
	wm_counter_update(&c, 500, &d);
	assert_int_equal(wm_counter_update(&c, 500, &d), WM_COUNTER_DELTA);
	assert_int_equal(d, 0);
	assert_int_equal(c.wraps, 0);
}

static void a_fall_with_known_range_is_a_wrap_distance_to_top_plus_new_value(void **state)
{
	(void)state;
	wm_counter c;
	uint64_t d;
	wm_counter_init(&c, 1000);
	wm_counter_update(&c, 900, &d);
	assert_int_equal(wm_counter_update(&c, 30, &d), WM_COUNTER_WRAPPED);
	assert_int_equal(d, 100 + 30);
	assert_int_equal(c.total, 130);
	assert_int_equal(c.wraps, 1);
	assert_int_equal(c.resets, 0);
}

static void a_wrap_from_the_top_to_zero(void **state)
{
	(void)state;
	wm_counter c;
	uint64_t d;
	wm_counter_init(&c, 1000);
	wm_counter_update(&c, 999, &d);
	assert_int_equal(wm_counter_update(&c, 0, &d), WM_COUNTER_WRAPPED);
	assert_int_equal(d, 1);
	assert_int_equal(c.wraps, 1);
	assert_int_equal(c.total, 1);
}

static void a_fall_without_range_is_a_reset_counting_the_new_value(void **state)
{
	(void)state;
	wm_counter c;
	uint64_t d;
	wm_counter_init(&c, 0);
	wm_counter_update(&c, 5000, &d);
	wm_counter_update(&c, 6000, &d);
	assert_int_equal(wm_counter_update(&c, 40, &d), WM_COUNTER_RESET);
	assert_int_equal(d, 40);
	assert_int_equal(c.total, 1000 + 40);
	assert_int_equal(c.resets, 1);
	assert_int_equal(c.wraps, 0);
}

static void a_value_above_the_range_is_a_glitch_not_a_baseline_nor_a_delta(void **state)
{
	(void)state;
	wm_counter c;
	uint64_t d = 7;
	/* a counter never holds a value past its range: garbage, whatever the
	 * time, so it neither primes the counter nor adds energy */
	wm_counter_init(&c, 1000);
	assert_int_equal(wm_counter_update(&c, 5000, &d), WM_COUNTER_GLITCH_RANGE);
	assert_int_equal(d, 0);
	assert_false(c.primed);
	assert_int_equal(wm_counter_update(&c, 100, &d), WM_COUNTER_FIRST);
	assert_int_equal(wm_counter_update(&c, 1001, &d), WM_COUNTER_GLITCH_RANGE);
	assert_int_equal(c.total, 0);
	assert_int_equal(c.last_raw, 100);
	/* the next good read counts from the last good one: measured across */
	assert_int_equal(wm_counter_update(&c, 300, &d), WM_COUNTER_DELTA);
	assert_int_equal(d, 200);
	assert_int_equal(c.glitches, 2);
}

static void total_is_exact_over_many_wraps_whatever_the_period(void **state)
{
	(void)state;
	/* a counter running 0..range-1 at a fixed step: the total after n reads
	 * is exactly (n - 1) * step, for steps small and close to the range */
	const uint64_t range = 262143328850ULL;
	const uint64_t steps[] = { 1, 61035, 1000000007ULL, range / 3, range - 1 };
	for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
		wm_counter c;
		uint64_t raw = range - 500;   /* start near the top */
		wm_counter_init(&c, range);
		wm_counter_update(&c, raw, NULL);
		const uint64_t n = 2000;
		for (uint64_t i = 1; i < n; i++) {
			raw = (raw + steps[s]) % range;
			wm_counter_update(&c, raw, NULL);
		}
		assert_int_equal(c.total, (n - 1) * steps[s]);
		assert_int_equal(c.resets, 0);
		assert_true(c.wraps > 0);
	}
}

static void a_full_64_bit_range_wraps_without_overflow(void **state)
{
	(void)state;
	wm_counter c;
	uint64_t d;
	wm_counter_init(&c, UINT64_MAX);
	wm_counter_update(&c, UINT64_MAX - 5, &d);
	assert_int_equal(wm_counter_update(&c, 10, &d), WM_COUNTER_WRAPPED);
	assert_int_equal(d, 15);
	assert_int_equal(c.total, 15);
}

static void delta_output_is_optional(void **state)
{
	(void)state;
	wm_counter c;
	wm_counter_init(&c, 100);
	assert_int_equal(wm_counter_update(&c, 10, NULL), WM_COUNTER_FIRST);
	assert_int_equal(wm_counter_update(&c, 20, NULL), WM_COUNTER_DELTA);
	assert_int_equal(wm_counter_update(&c, 5, NULL), WM_COUNTER_WRAPPED);
	assert_int_equal(c.total, 10 + 85);
}

static void init_forgets_everything_and_sets_the_range(void **state)
{
	(void)state;
	wm_counter c;
	wm_counter_init(&c, 100);
	wm_counter_update(&c, 10, NULL);
	wm_counter_update(&c, 5, NULL);
	wm_counter_init(&c, 7);
	assert_int_equal(c.range, 7);
	assert_int_equal(c.total, 0);
	assert_int_equal(c.wraps, 0);
	assert_int_equal(c.resets, 0);
	assert_false(c.primed);
	assert_int_equal(wm_counter_update(&c, 3, NULL), WM_COUNTER_FIRST);
}

/* ---- plausibility (wm_counter_set_bound, wm_counter_update_at) ----------------
 * A zone at a known rate, read every 0.1 s; the truth is rate x time. */

#define MS 1000000ull                      /* ns per ms */
#define RAPL_RANGE 262143328850ull         /* a real package's max_energy_range_uj */

static wm_counter bounded(uint64_t range, double max_w)
{
	wm_counter c;
	wm_counter_init(&c, range);
	wm_counter_set_bound(&c, max_w * 1e6, 0.05); /* uJ per second */
	return c;
}

static void five_joules_back_on_a_262_kJ_range_is_a_glitch_not_a_wrap(void **state)
{
	(void)state;
	/* 30 W: 3 J per 0.1 s; bound 60 W. The unchecked counter took the
	 * step back as a wrap: 262 kJ "measured" for 0.5 s at 30 W. */
	wm_counter c = bounded(RAPL_RANGE, 60);
	uint64_t d, v = 1000000000ull;
	assert_int_equal(wm_counter_update_at(&c, v, 0, &d), WM_COUNTER_FIRST);
	v += 3000000;
	assert_int_equal(wm_counter_update_at(&c, v, 100 * MS, &d), WM_COUNTER_DELTA);
	assert_int_equal(wm_counter_update_at(&c, v - 5000000, 200 * MS, &d), WM_COUNTER_GLITCH_STEP);
	assert_int_equal(d, 0);
	/* back on its track: the step from the last good value is plausible,
	 * so the energy across the glitch is measured */
	v += 6000000;
	assert_int_equal(wm_counter_update_at(&c, v, 300 * MS, &d), WM_COUNTER_DELTA);
	assert_int_equal(d, 6000000);
	assert_int_equal(c.total, 9000000); /* 0.3 s x 30 W, exactly */
	assert_int_equal(c.wraps, 0);
	assert_int_equal(c.glitches, 1);
}

static void a_read_plausible_from_both_values_is_ambiguous(void **state)
{
	(void)state;
	/* bound 2 kW: after a 5 J step back, the next read is plausible as a
	 * +6 J step from the last good value and as +11 J from the rejected
	 * one: which is true cannot be told */
	wm_counter c = bounded(RAPL_RANGE, 2000);
	uint64_t d, v = 1000000000ull;
	wm_counter_update_at(&c, v, 0, &d);
	assert_int_equal(wm_counter_update_at(&c, v - 5000000, 100 * MS, &d), WM_COUNTER_GLITCH_STEP);
	assert_int_equal(wm_counter_update_at(&c, v + 6000000, 200 * MS, &d), WM_COUNTER_REBASED);
	assert_int_equal(d, 6000000);
	assert_true(wm_counter_result_is_gap(WM_COUNTER_REBASED));
}

static void a_counter_that_really_moved_back_is_rebased_losing_one_interval(void **state)
{
	(void)state;
	/* The counter steps back 5 J and goes on from there (re-enumerated):
	 * the reads after it are plausible from the rejected value only. */
	wm_counter c = bounded(RAPL_RANGE, 2000);
	uint64_t d, v = 1000000000ull;
	wm_counter_update_at(&c, v, 0, &d);
	v -= 5000000;
	assert_int_equal(wm_counter_update_at(&c, v, 100 * MS, &d), WM_COUNTER_GLITCH_STEP);
	v += 3000000;
	assert_int_equal(wm_counter_update_at(&c, v, 200 * MS, &d), WM_COUNTER_REBASED);
	assert_int_equal(d, 3000000);
	v += 3000000;
	assert_int_equal(wm_counter_update_at(&c, v, 300 * MS, &d), WM_COUNTER_DELTA);
	/* 0.3 s at 30 W is 9 J; the first interval (3 J) is missing */
	assert_int_equal(c.total, 6000000);
	assert_int_equal(c.wraps, 0);
}

static void a_10_kJ_jump_is_a_glitch_and_the_energy_across_it_is_measured(void **state)
{
	(void)state;
	wm_counter c = bounded(RAPL_RANGE, 2000);
	uint64_t d, v = 5000000000ull;
	wm_counter_update_at(&c, v, 0, &d);
	assert_int_equal(wm_counter_update_at(&c, v + 3000000 + 10000000000ull, 100 * MS, &d),
			 WM_COUNTER_GLITCH_STEP);
	assert_int_equal(d, 0);
	assert_int_equal(wm_counter_update_at(&c, v + 6000000, 200 * MS, &d), WM_COUNTER_DELTA);
	assert_int_equal(c.total, 6000000);
}

static void a_value_above_the_range_with_a_bound_is_skipped(void **state)
{
	(void)state;
	wm_counter c = bounded(RAPL_RANGE, 2000);
	uint64_t d;
	wm_counter_update_at(&c, 1000, 0, &d);
	assert_int_equal(wm_counter_update_at(&c, RAPL_RANGE + 5000000000ull, 100 * MS, &d), WM_COUNTER_GLITCH_RANGE);
	assert_int_equal(wm_counter_update_at(&c, 1000 + 6000000, 200 * MS, &d), WM_COUNTER_DELTA);
	assert_int_equal(c.total, 6000000);
}

static void real_wraps_within_the_bound_are_counted_exactly(void **state)
{
	(void)state;
	/* 40 J range, 30 W, bound 60 W (wrap at best every 0.67 s): 300 reads
	 * 0.1 s apart wrap 22 times and total exactly 3 J per read */
	const uint64_t range = 40000000;
	wm_counter c = bounded(range, 60);
	uint64_t v = range - 1000;
	wm_counter_update_at(&c, v, 0, NULL);
	for (uint64_t i = 1; i < 300; i++) {
		v = (v + 3000000) % range;
		assert_false(wm_counter_result_is_gap(wm_counter_update_at(&c, v, i * 100 * MS, NULL)));
	}
	assert_int_equal(c.total, 299ull * 3000000);
	assert_true(c.wraps >= 22);
	assert_int_equal(c.glitches, 0);
}

static void a_stall_longer_than_the_shortest_wrap_is_not_counted(void **state)
{
	(void)state;
	/* 40 J range, bound 30 W: the shortest wrap is 1.33 s. After 4 s
	 * (SIGSTOP) at 10 W the counter shows 40 J mod 40 J = 0 J: the meter
	 * cannot know how many wraps it missed. */
	const uint64_t range = 40000000;
	wm_counter c = bounded(range, 30);
	assert_true(wm_counter_min_wrap_s(&c) > 1.33 && wm_counter_min_wrap_s(&c) < 1.34);
	uint64_t d, v = 1000000;
	wm_counter_update_at(&c, v, 0, &d);
	v += 1000000;
	wm_counter_update_at(&c, v, 100 * MS, &d);
	v = (v + 40000000) % range;
	assert_int_equal(wm_counter_update_at(&c, v, 4100 * MS, &d), WM_COUNTER_STALLED);
	assert_int_equal(d, 0);
	assert_int_equal(c.stalls, 1);
	/* and it goes on from the new value */
	v += 1000000;
	assert_int_equal(wm_counter_update_at(&c, v, 4200 * MS, &d), WM_COUNTER_DELTA);
	assert_int_equal(d, 1000000);
	assert_int_equal(c.total, 2000000);
	assert_true(wm_counter_result_is_gap(WM_COUNTER_STALLED));
}

static void a_read_after_a_short_gap_counts_the_energy_across_it(void **state)
{
	(void)state;
	/* unreadable (EIO) for 1 s on a 1.33 s-wrap zone: the next read still
	 * knows there was at most one wrap, and counts it all */
	const uint64_t range = 40000000;
	wm_counter c = bounded(range, 30);
	uint64_t d, v = 30000000;
	wm_counter_update_at(&c, v, 0, &d);
	v = (v + 20000000) % range; /* 20 W for 1 s, through a wrap */
	assert_int_equal(wm_counter_update_at(&c, v, 1000 * MS, &d), WM_COUNTER_WRAPPED);
	assert_int_equal(d, 20000000);
}

static void a_plausible_reset_without_range_counts_an_implausible_one_does_not(void **state)
{
	(void)state;
	/* NVML's mJ counter, no range, bound 1400 W over >= 1 s */
	wm_counter c;
	wm_counter_init(&c, 0);
	wm_counter_set_bound(&c, 1400 * 1e3, 1.0);
	uint64_t d;
	wm_counter_update_at(&c, 90000000, 0, &d);
	/* driver reload: restarted at 0, 25 J since */
	assert_int_equal(wm_counter_update_at(&c, 25000, 100 * MS, &d), WM_COUNTER_RESET);
	assert_int_equal(d, 25000);
	/* a "reset" to 80 MJ in 0.1 s is no reset: a glitch */
	assert_int_equal(wm_counter_update_at(&c, 80000000000ull, 200 * MS, &d), WM_COUNTER_GLITCH_STEP);
	assert_int_equal(c.total, 25000);
}

static void the_bound_applies_over_the_minimum_window(void **state)
{
	(void)state;
	/* A counter that updates every 100 ms, read 1 ms after an update: the
	 * step is 100 ms worth of energy, plausible over the window */
	wm_counter c;
	wm_counter_init(&c, 0);
	wm_counter_set_bound(&c, 1000 * 1e3, 0.2); /* 1 kW in mJ/s, 0.2 s */
	uint64_t d;
	wm_counter_update_at(&c, 0, 0, &d);
	assert_int_equal(wm_counter_update_at(&c, 70000, 1 * MS, &d), WM_COUNTER_DELTA); /* 700 W x 0.1 s */
	assert_int_equal(wm_counter_update_at(&c, 70000 + 300000, 2 * MS, &d), WM_COUNTER_GLITCH_STEP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(first_read_is_a_baseline_with_zero_delta),
		cmocka_unit_test(a_rise_is_the_difference),
		cmocka_unit_test(an_unchanged_value_is_a_zero_delta_not_a_wrap),
		cmocka_unit_test(a_fall_with_known_range_is_a_wrap_distance_to_top_plus_new_value),
		cmocka_unit_test(a_wrap_from_the_top_to_zero),
		cmocka_unit_test(a_fall_without_range_is_a_reset_counting_the_new_value),
		cmocka_unit_test(a_value_above_the_range_is_a_glitch_not_a_baseline_nor_a_delta),
		cmocka_unit_test(five_joules_back_on_a_262_kJ_range_is_a_glitch_not_a_wrap),
		cmocka_unit_test(a_counter_that_really_moved_back_is_rebased_losing_one_interval),
		cmocka_unit_test(a_read_plausible_from_both_values_is_ambiguous),
		cmocka_unit_test(a_10_kJ_jump_is_a_glitch_and_the_energy_across_it_is_measured),
		cmocka_unit_test(a_value_above_the_range_with_a_bound_is_skipped),
		cmocka_unit_test(real_wraps_within_the_bound_are_counted_exactly),
		cmocka_unit_test(a_stall_longer_than_the_shortest_wrap_is_not_counted),
		cmocka_unit_test(a_read_after_a_short_gap_counts_the_energy_across_it),
		cmocka_unit_test(a_plausible_reset_without_range_counts_an_implausible_one_does_not),
		cmocka_unit_test(the_bound_applies_over_the_minimum_window),
		cmocka_unit_test(total_is_exact_over_many_wraps_whatever_the_period),
		cmocka_unit_test(a_full_64_bit_range_wraps_without_overflow),
		cmocka_unit_test(delta_output_is_optional),
		cmocka_unit_test(init_forgets_everything_and_sets_the_range),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
