/* carbon.h — energy to kWh, CO2e and cost, with the grid intensity always
 * carried with its provenance (docs/recording.md "Carbon and cost").
 *
 * Nothing here is ever defaulted: with no intensity given there is no CO2e
 * figure, with no price no cost. The shipped table holds yearly average
 * intensities of electricity generation (lifecycle gCO2e/kWh) from Ember's
 * Yearly Electricity Data; each row names its year. Nothing is fetched.
 *
 * Arithmetic (units in the names):
 *   facility_kwh = energy_j * pue / 3.6e6
 *   co2e_g       = facility_kwh * intensity_g_per_kwh
 *   cost         = facility_kwh * price_per_kwh
 */
#ifndef WM_CARBON_H
#define WM_CARBON_H

#include <stdbool.h>
#include <stddef.h>

#include "base/util.h"

#define WM_J_PER_KWH 3.6e6

/* Accepted ranges (the CLI's exit-2 messages quote them). */
#define WM_CARBON_INTENSITY_MAX 2000.0 /* gCO2e/kWh; the dirtiest national grid is about 1300 */
#define WM_CARBON_PUE_MIN 1.0
#define WM_CARBON_PUE_MAX 5.0
#define WM_CARBON_PRICE_MAX 1000.0     /* per kWh, any currency */

/* One row of the shipped table. */
struct wm_grid_row {
	const char *iso2;       /* "FR"; "EU" and "WORLD" for the aggregates */
	const char *iso3;       /* "FRA"; NULL for the aggregates */
	const char *name;       /* "France" */
	int year;               /* the data year of the figure */
	double g_per_kwh;       /* lifecycle gCO2e per kWh generated */
};

/* The name of the table's source, shown with every figure taken from it. */
extern const char wm_grid_source[];

/* The table, in alphabetical order of iso2. */
const struct wm_grid_row *wm_grid_table(size_t *n);
/* The row for a country code (ISO 3166 alpha-2 or alpha-3, any case, "UK"
 * as GB) or NULL. */
const struct wm_grid_row *wm_grid_lookup(const char *code);

struct wm_carbon_opts {
	bool has_intensity;
	double intensity_g_per_kwh;
	char provenance[160];   /* "user-given" or "France (FR) 2023, Ember ..." */
	double pue;             /* >= 1; 1 when not given */
	bool pue_given;
	bool has_price;
	double price_per_kwh;
	char currency[8];       /* 3 letters, upper case (ISO 4217 style) */
};

/* has_intensity false, pue 1, no price. */
void wm_carbon_opts_init(struct wm_carbon_opts *o);

/* Each parser returns 0 or -EINVAL with a message naming the valid range. */
/* G: a number of gCO2e/kWh (0..WM_CARBON_INTENSITY_MAX, "user-given") or a
 * country code from the table. */
int wm_carbon_set_intensity(struct wm_carbon_opts *o, const char *arg, char *err, size_t errlen);
int wm_carbon_set_pue(struct wm_carbon_opts *o, const char *arg, char *err, size_t errlen);
int wm_carbon_set_price(struct wm_carbon_opts *o, const char *arg, char *err, size_t errlen);
int wm_carbon_set_currency(struct wm_carbon_opts *o, const char *arg, char *err, size_t errlen);
/* After all options: a price needs a currency and a currency a price. */
int wm_carbon_check(const struct wm_carbon_opts *o, char *err, size_t errlen);

/* energy at the meter (joules) -> facility kWh (PUE applied) */
double wm_carbon_kwh(const struct wm_carbon_opts *o, double energy_j);
/* grams of CO2e; NAN without an intensity */
double wm_carbon_co2e_g(const struct wm_carbon_opts *o, double energy_j);
/* cost in o->currency; NAN without a price */
double wm_carbon_cost(const struct wm_carbon_opts *o, double energy_j);

/* Human formats: "12.3 g", "4.56 kg", "1.20 t"; "0.0123 EUR". */
int wm_carbon_fmt_co2e(char *out, size_t len, double g);
int wm_carbon_fmt_kwh(char *out, size_t len, double kwh);
int wm_carbon_fmt_cost(char *out, size_t len, double cost, const char *currency);

/* The table as text (`wattmeter report --list-grids`), appended to b. */
int wm_carbon_table_text(wm_buf *b);

#endif
