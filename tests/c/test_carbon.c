/* test_carbon.c — kWh, CO2e and cost (carbon.h) against hand-computed values,
 * the shipped grid table, the option parsers' ranges, and the "carbon" object
 * of a recording's summary (summary.c). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"
#include "recording/carbon.h"
#include "recording/record.h"

#define assert_near(got, want, tol)                                                          \
	do {                                                                                 \
		double g_ = (got), w_ = (want);                                              \
		if (!(fabs(g_ - w_) <= (tol)))                                               \
			fail_msg("%s = %.12g, want %.12g (tol %g)", #got, g_, w_, (double)(tol)); \
	} while (0)

/* Hand-computed: 7.2 MJ = 2 kWh; x PUE 1.2 = 2.4 kWh; x 56.04 g = 134.496 g;
 * x 0.25 EUR = 0.6 EUR. */
static void test_arithmetic(void **state)
{
	(void)state;
	struct wm_carbon_opts o;
	wm_carbon_opts_init(&o);
	char err[512];
	assert_near(wm_carbon_kwh(&o, 3.6e6), 1.0, 1e-12);
	assert_true(isnan(wm_carbon_co2e_g(&o, 3.6e6))); /* never defaulted */
	assert_true(isnan(wm_carbon_cost(&o, 3.6e6)));
	assert_int_equal(wm_carbon_set_intensity(&o, "FR", err, sizeof err), 0);
	assert_int_equal(wm_carbon_set_pue(&o, "1.2", err, sizeof err), 0);
	assert_int_equal(wm_carbon_set_price(&o, "0.25", err, sizeof err), 0);
	assert_int_equal(wm_carbon_set_currency(&o, "eur", err, sizeof err), 0);
	assert_int_equal(wm_carbon_check(&o, err, sizeof err), 0);
	assert_near(wm_carbon_kwh(&o, 7.2e6), 2.4, 1e-12);
	assert_near(wm_carbon_co2e_g(&o, 7.2e6), 134.496, 1e-9);
	assert_near(wm_carbon_cost(&o, 7.2e6), 0.6, 1e-12);
	assert_string_equal(o.currency, "EUR");
	assert_string_equal(o.provenance, "France (FR) 2023, Ember Yearly Electricity Data");
	/* a user-given figure: 500 g/kWh, 360 kJ = 0.1 kWh -> 50 g */
	struct wm_carbon_opts u;
	wm_carbon_opts_init(&u);
	assert_int_equal(wm_carbon_set_intensity(&u, "500", err, sizeof err), 0);
	assert_string_equal(u.provenance, "user-given");
	assert_near(wm_carbon_co2e_g(&u, 360e3), 50.0, 1e-12);
	assert_int_equal(wm_carbon_set_intensity(&u, "0", err, sizeof err), 0);
	assert_near(wm_carbon_co2e_g(&u, 360e3), 0.0, 0);
}

static void test_table(void **state)
{
	(void)state;
	size_t n;
	const struct wm_grid_row *t = wm_grid_table(&n);
	assert_true(n >= 30);
	assert_true(strstr(wm_grid_source, "Ember") != NULL);
	for (size_t i = 0; i < n; i++) {
		assert_true(t[i].g_per_kwh > 0 && t[i].g_per_kwh < WM_CARBON_INTENSITY_MAX);
		assert_true(t[i].year >= 2020 && t[i].year <= 2030);
		assert_true(t[i].name && *t[i].name);
		if (i)
			assert_true(strcmp(t[i - 1].iso2, t[i].iso2) < 0); /* sorted, no duplicates */
		assert_ptr_equal(wm_grid_lookup(t[i].iso2), &t[i]);
		if (t[i].iso3)
			assert_ptr_equal(wm_grid_lookup(t[i].iso3), &t[i]);
	}
	assert_string_equal(wm_grid_lookup("fr")->name, "France");
	assert_string_equal(wm_grid_lookup("deu")->iso2, "DE");
	assert_string_equal(wm_grid_lookup("UK")->iso2, "GB");
	assert_null(wm_grid_lookup("XX"));
	assert_null(wm_grid_lookup(""));
	wm_buf b;
	wm_buf_init(&b);
	assert_int_equal(wm_carbon_table_text(&b), 0);
	assert_non_null(strstr(b.data, "Ember"));
	assert_non_null(strstr(b.data, "FRA"));
	wm_buf_free(&b);
}

static void test_parsers_reject_with_the_range(void **state)
{
	(void)state;
	struct wm_carbon_opts o;
	wm_carbon_opts_init(&o);
	char err[512];
	static const char *const bad_g[] = {"-1", "2001", "1e9", "nan", "inf", "12abc", "ZZ", ""};
	for (size_t i = 0; i < WM_ARRAY_LEN(bad_g); i++) {
		err[0] = '\0';
		assert_int_equal(wm_carbon_set_intensity(&o, bad_g[i], err, sizeof err), -EINVAL);
		assert_non_null(strstr(err, "2000"));
		assert_false(o.has_intensity);
	}
	static const char *const bad_pue[] = {"0.9", "0", "5.5", "x", "-1"};
	for (size_t i = 0; i < WM_ARRAY_LEN(bad_pue); i++) {
		assert_int_equal(wm_carbon_set_pue(&o, bad_pue[i], err, sizeof err), -EINVAL);
		assert_non_null(strstr(err, "1.0 to 5.0"));
	}
	assert_near(o.pue, 1.0, 0);
	static const char *const bad_price[] = {"-0.1", "1001", "free"};
	for (size_t i = 0; i < WM_ARRAY_LEN(bad_price); i++) {
		assert_int_equal(wm_carbon_set_price(&o, bad_price[i], err, sizeof err), -EINVAL);
		assert_non_null(strstr(err, "0 to 1000"));
	}
	static const char *const bad_cur[] = {"EURO", "E1R", "", "\xc3\xa9UR", "<b>"};
	for (size_t i = 0; i < WM_ARRAY_LEN(bad_cur); i++)
		assert_int_equal(wm_carbon_set_currency(&o, bad_cur[i], err, sizeof err), -EINVAL);
	/* a price needs a currency, and a currency a price */
	assert_int_equal(wm_carbon_set_price(&o, "0.3", err, sizeof err), 0);
	assert_int_equal(wm_carbon_check(&o, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "--currency"));
	struct wm_carbon_opts c;
	wm_carbon_opts_init(&c);
	assert_int_equal(wm_carbon_set_currency(&c, "USD", err, sizeof err), 0);
	assert_int_equal(wm_carbon_check(&c, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "--price"));
}

static void test_formats(void **state)
{
	(void)state;
	char s[64];
	assert_int_equal(wm_carbon_fmt_co2e(s, sizeof s, 12.345), 0);
	assert_string_equal(s, "12.3 g CO2e");
	assert_int_equal(wm_carbon_fmt_co2e(s, sizeof s, 1500), 0);
	assert_string_equal(s, "1.50 kg CO2e");
	assert_int_equal(wm_carbon_fmt_co2e(s, sizeof s, 2.5e6), 0);
	assert_string_equal(s, "2.50 t CO2e");
	assert_int_equal(wm_carbon_fmt_kwh(s, sizeof s, 0.000102), 0);
	assert_string_equal(s, "0.000102 kWh");
	assert_int_equal(wm_carbon_fmt_cost(s, sizeof s, 0.6, "EUR"), 0);
	assert_string_equal(s, "0.600 EUR");
	assert_int_equal(wm_carbon_fmt_co2e(s, sizeof s, NAN), 0);
	assert_string_equal(s, "-");
	char tiny[4];
	assert_int_equal(wm_carbon_fmt_co2e(tiny, sizeof tiny, 123.0), -EINVAL); /* truncation detected */
}

/* A recording with cpu, dram, psys and two GPUs: the machine total is psys +
 * gpu0 + gpu1 (cpu and dram are inside psys), the attributed total cpu + dram
 * + gpu0; the summary's "carbon" object carries the hand-computed figures. */
static void test_recording_carbon_json(void **state)
{
	(void)state;
	char root[4096];
	fx_mkdtemp(root, sizeof root);
	fx_write(root, "meta.json",
		 "{\"schema_version\":1,\"devices\":["
		 "{\"name\":\"cpu\",\"method\":\"measured\",\"source\":\"rapl-powercap\"},"
		 "{\"name\":\"dram\",\"method\":\"measured\",\"source\":\"rapl-powercap\"},"
		 "{\"name\":\"psys\",\"method\":\"measured\",\"source\":\"rapl-powercap\"},"
		 "{\"name\":\"gpu0\",\"kind\":\"gpu\",\"method\":\"measured\",\"source\":\"nvml\"},"
		 "{\"name\":\"gpu1\",\"kind\":\"gpu\",\"method\":\"measured\",\"source\":\"nvml\"}],"
		 "\"duration_s\":3600,\"complete\":true}");
	fx_write(root, "samples.jsonl",
		 "{\"t_s\":0,\"energy_j\":{\"cpu\":0,\"dram\":0,\"psys\":0,\"gpu0\":0,\"gpu1\":0}}\n"
		 "{\"t_s\":3600,\"energy_j\":{\"cpu\":1.8e6,\"dram\":0.36e6,\"psys\":3.6e6,\"gpu0\":7.2e6,\"gpu1\":1.8e6},"
		 "\"attributed_j\":{\"cpu\":0.9e6,\"dram\":0.18e6,\"gpu0\":3.6e6}}\n");
	wm_recording *r = NULL;
	char err[1024];
	assert_int_equal(wm_recording_open(root, &r, err, sizeof err), 0);
	wm_buf basis;
	wm_buf_init(&basis);
	/* 3.6 + 7.2 + 1.8 MJ = 12.6 MJ = 3.5 kWh */
	assert_near(wm_recording_total_j(r, &basis), 12.6e6, 1e-6);
	assert_string_equal(basis.data, "psys + gpu0 + gpu1");
	wm_buf_free(&basis);
	/* 0.9 + 0.18 + 3.6 MJ = 4.68 MJ = 1.3 kWh */
	assert_near(wm_recording_attributed_j(r), 4.68e6, 1e-6);

	struct wm_carbon_opts o;
	wm_carbon_opts_init(&o);
	assert_int_equal(wm_carbon_set_intensity(&o, "400", err, sizeof err), 0);
	assert_int_equal(wm_carbon_set_pue(&o, "1.5", err, sizeof err), 0);
	assert_int_equal(wm_carbon_set_price(&o, "0.2", err, sizeof err), 0);
	assert_int_equal(wm_carbon_set_currency(&o, "USD", err, sizeof err), 0);
	wm_buf b;
	wm_buf_init(&b);
	assert_int_equal(wm_recording_summary_json_carbon(r, &o, &b), 0);
	json_error_t je;
	json_t *j = json_loadb(b.data, b.len, 0, &je);
	if (!j)
		fail_msg("not JSON: %s", je.text);
	json_t *c = json_object_get(j, "carbon");
	assert_true(json_is_object(c));
	assert_near(json_number_value(json_object_get(j, "duration_s")), 3600, 0); /* the summary is intact */
	assert_near(json_number_value(json_object_get(c, "energy_j")), 12.6e6, 1e-6);
	assert_near(json_number_value(json_object_get(c, "kwh")), 5.25, 1e-9);      /* 3.5 x 1.5 */
	assert_near(json_number_value(json_object_get(c, "co2e_g")), 2100, 1e-6);   /* x 400 */
	assert_near(json_number_value(json_object_get(c, "cost")), 1.05, 1e-9);     /* x 0.2 */
	assert_near(json_number_value(json_object_get(c, "attributed_kwh")), 1.95, 1e-9); /* 1.3 x 1.5 */
	assert_near(json_number_value(json_object_get(c, "attributed_co2e_g")), 780, 1e-6);
	assert_near(json_number_value(json_object_get(json_object_get(json_object_get(c, "devices"), "gpu0"), "co2e_g")),
		    1200, 1e-6); /* 2 kWh x 1.5 x 400 */
	assert_string_equal(json_string_value(json_object_get(c, "grid_intensity_source")), "user-given");
	assert_string_equal(json_string_value(json_object_get(c, "currency")), "USD");
	assert_int_equal(json_array_size(json_object_get(c, "basis")), 3);
	assert_null(json_object_get(c, "note"));
	json_decref(j);

	/* no intensity: co2e is null and the note says how to get one */
	wm_carbon_opts_init(&o);
	wm_buf_reset(&b);
	assert_int_equal(wm_recording_summary_json_carbon(r, &o, &b), 0);
	j = json_loadb(b.data, b.len, 0, &je);
	assert_non_null(j);
	c = json_object_get(j, "carbon");
	assert_true(json_is_null(json_object_get(c, "co2e_g")));
	assert_true(json_is_null(json_object_get(c, "grid_intensity_source")));
	assert_true(json_is_null(json_object_get(c, "cost")));
	assert_near(json_number_value(json_object_get(c, "kwh")), 3.5, 1e-9);
	assert_non_null(strstr(json_string_value(json_object_get(c, "note")), "--grid-intensity"));
	json_decref(j);

	/* the text says the same */
	wm_buf_reset(&b);
	assert_int_equal(wm_recording_carbon_text(r, &o, &b), 0);
	assert_non_null(strstr(b.data, "3.50 kWh"));
	assert_non_null(strstr(b.data, "--grid-intensity"));
	assert_null(strstr(b.data, "g CO2e"));
	wm_buf_free(&b);
	wm_recording_free(r);
	fx_rmtree(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arithmetic),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_parsers_reject_with_the_range),
		cmocka_unit_test(test_formats),
		cmocka_unit_test(test_recording_carbon_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
