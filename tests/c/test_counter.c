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

static void a_fall_from_above_the_range_is_a_reset_not_a_wrap(void **state)
{
	(void)state;
	wm_counter c;
	uint64_t d;
	/* a value past the range cannot have wrapped at it: the range was wrong
	 * or the counter restarted (driver reload), so no giant corrected delta */
	wm_counter_init(&c, 1000);
	wm_counter_update(&c, 5000, &d);
	assert_int_equal(wm_counter_update(&c, 10, &d), WM_COUNTER_RESET);
	assert_int_equal(d, 10);
	assert_int_equal(c.resets, 1);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(first_read_is_a_baseline_with_zero_delta),
		cmocka_unit_test(a_rise_is_the_difference),
		cmocka_unit_test(an_unchanged_value_is_a_zero_delta_not_a_wrap),
		cmocka_unit_test(a_fall_with_known_range_is_a_wrap_distance_to_top_plus_new_value),
		cmocka_unit_test(a_wrap_from_the_top_to_zero),
		cmocka_unit_test(a_fall_without_range_is_a_reset_counting_the_new_value),
		cmocka_unit_test(a_fall_from_above_the_range_is_a_reset_not_a_wrap),
		cmocka_unit_test(total_is_exact_over_many_wraps_whatever_the_period),
		cmocka_unit_test(a_full_64_bit_range_wraps_without_overflow),
		cmocka_unit_test(delta_output_is_optional),
		cmocka_unit_test(init_forgets_everything_and_sets_the_range),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
