/* carbon.c — kWh, CO2e and cost from joules (carbon.h), and the shipped table
 * of yearly grid intensities.
 *
 * The table: Ember, "Yearly Electricity Data", emissions intensity of
 * electricity generation in lifecycle gCO2e per kWh (all gases, upstream
 * included; the domestic generation mix, imports excluded), the latest year
 * Ember had for each country when The Green Web Foundation compiled it into
 * co2.js (data/output/average-intensities.json, which records the year of
 * each figure). The EU-27 figures were cross-checked against Our World in
 * Data's "Carbon intensity of electricity generation" (Ember, 2023). Only
 * countries whose figure and year could be checked are listed; licence of
 * the data: CC BY 4.0 (Ember). To add a country, take the figure and its year
 * from Ember's data explorer and keep the alphabetical order of iso2.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "recording/carbon.h"

const char wm_grid_source[] = "Ember Yearly Electricity Data";

static const struct wm_grid_row grid[] = {
	{"AE", "ARE", "United Arab Emirates", 2022, 561.14},
	{"AR", "ARG", "Argentina", 2022, 394.62},
	{"AT", "AUT", "Austria", 2023, 110.81},
	{"AU", "AUS", "Australia", 2022, 570.35},
	{"BE", "BEL", "Belgium", 2023, 138.11},
	{"BG", "BGR", "Bulgaria", 2023, 335.33},
	{"BR", "BRA", "Brazil", 2022, 105.51},
	{"CA", "CAN", "Canada", 2022, 161.43},
	{"CH", "CHE", "Switzerland", 2023, 34.84},
	{"CL", "CHL", "Chile", 2022, 353.52},
	{"CN", "CHN", "China", 2022, 585.82},
	{"CO", "COL", "Colombia", 2022, 214.88},
	{"CZ", "CZE", "Czechia", 2023, 449.72},
	{"DE", "DEU", "Germany", 2023, 380.95},
	{"DK", "DNK", "Denmark", 2023, 151.65},
	{"EE", "EST", "Estonia", 2023, 416.67},
	{"EG", "EGY", "Egypt", 2022, 570.13},
	{"ES", "ESP", "Spain", 2023, 174.05},
	{"EU", NULL, "European Union", 2023, 243.83},
	{"FI", "FIN", "Finland", 2023, 79.16},
	{"FR", "FRA", "France", 2023, 56.04},
	{"GB", "GBR", "United Kingdom", 2023, 237.59},
	{"GR", "GRC", "Greece", 2023, 336.57},
	{"HK", "HKG", "Hong Kong", 2022, 699.5},
	{"HR", "HRV", "Croatia", 2023, 204.96},
	{"HU", "HUN", "Hungary", 2023, 204.19},
	{"ID", "IDN", "Indonesia", 2022, 675.93},
	{"IE", "IRL", "Ireland", 2023, 290.81},
	{"IL", "ISR", "Israel", 2022, 582.93},
	{"IN", "IND", "India", 2022, 705.13},
	{"IS", "ISL", "Iceland", 2022, 27.68},
	{"IT", "ITA", "Italy", 2023, 330.72},
	{"JP", "JPN", "Japan", 2022, 512.81},
	{"KE", "KEN", "Kenya", 2022, 83.33},
	{"KR", "KOR", "South Korea", 2022, 441.65},
	{"LT", "LTU", "Lithuania", 2023, 160.07},
	{"LU", "LUX", "Luxembourg", 2023, 105.26},
	{"LV", "LVA", "Latvia", 2023, 123.2},
	{"MX", "MEX", "Mexico", 2022, 475.36},
	{"MY", "MYS", "Malaysia", 2022, 605.83},
	{"NG", "NGA", "Nigeria", 2022, 516.23},
	{"NL", "NLD", "Netherlands", 2023, 267.62},
	{"NO", "NOR", "Norway", 2023, 30.08},
	{"NZ", "NZL", "New Zealand", 2022, 110.89},
	{"PK", "PAK", "Pakistan", 2022, 463.66},
	{"PL", "POL", "Poland", 2023, 661.93},
	{"PT", "PRT", "Portugal", 2023, 165.55},
	{"RO", "ROU", "Romania", 2023, 240.58},
	{"SA", "SAU", "Saudi Arabia", 2022, 706.79},
	{"SE", "SWE", "Sweden", 2023, 40.7},
	{"SG", "SGP", "Singapore", 2022, 474.0},
	{"SI", "SVN", "Slovenia", 2023, 231.28},
	{"SK", "SVK", "Slovakia", 2023, 116.77},
	{"TH", "THA", "Thailand", 2022, 560.74},
	{"TR", "TUR", "Turkey", 2023, 464.59},
	{"TW", "TWN", "Taiwan", 2022, 639.53},
	{"US", "USA", "United States", 2022, 385.98},
	{"VN", "VNM", "Viet Nam", 2022, 409.8},
	{"WORLD", NULL, "World", 2022, 485.99},
	{"ZA", "ZAF", "South Africa", 2022, 729.67},
};

const struct wm_grid_row *wm_grid_table(size_t *n)
{
	*n = WM_ARRAY_LEN(grid);
	return grid;
}

const struct wm_grid_row *wm_grid_lookup(const char *code)
{
	if (!code)
		return NULL;
	if (strcasecmp(code, "UK") == 0)
		code = "GB";
	for (size_t i = 0; i < WM_ARRAY_LEN(grid); i++)
		if (strcasecmp(code, grid[i].iso2) == 0 || (grid[i].iso3 && strcasecmp(code, grid[i].iso3) == 0))
			return &grid[i];
	return NULL;
}

void wm_carbon_opts_init(struct wm_carbon_opts *o)
{
	memset(o, 0, sizeof *o);
	o->pue = 1.0;
	o->intensity_g_per_kwh = NAN;
	o->price_per_kwh = NAN;
}

/* A finite number in [lo, hi] from the whole of s. */
static bool number_in(const char *s, double lo, double hi, double *out)
{
	double v;
	if (wm_parse_double_full(s, &v) < 0 || !isfinite(v) || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static bool looks_numeric(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return *s == '+' || *s == '-' || *s == '.' || isdigit((unsigned char)*s);
}

int wm_carbon_set_intensity(struct wm_carbon_opts *o, const char *arg, char *err, size_t errlen)
{
	double v;
	if (looks_numeric(arg)) {
		if (!number_in(arg, 0.0, WM_CARBON_INTENSITY_MAX, &v))
			return wm_err(err, errlen, -EINVAL,
				      "--grid-intensity wants gCO2e/kWh from 0 to %.0f or a country code, not '%s'",
				      WM_CARBON_INTENSITY_MAX, arg);
		o->has_intensity = true;
		o->intensity_g_per_kwh = v;
		(void)snprintf(o->provenance, sizeof o->provenance, "user-given");
		return 0;
	}
	const struct wm_grid_row *g = wm_grid_lookup(arg);
	if (!g)
		return wm_err(err, errlen, -EINVAL,
			      "--grid-intensity: '%s' is neither a number of gCO2e/kWh (0 to %.0f) nor a country code in the shipped table (`wattmeter report --list-grids` lists them; or give your grid's figure as a number)",
			      arg, WM_CARBON_INTENSITY_MAX);
	o->has_intensity = true;
	o->intensity_g_per_kwh = g->g_per_kwh;
	int n = snprintf(o->provenance, sizeof o->provenance, "%s (%s) %d, %s", g->name, g->iso2, g->year,
			 wm_grid_source);
	if (n < 0 || (size_t)n >= sizeof o->provenance)
		return wm_err(err, errlen, -EINVAL, "--grid-intensity: provenance of '%s' too long", arg);
	return 0;
}

int wm_carbon_set_pue(struct wm_carbon_opts *o, const char *arg, char *err, size_t errlen)
{
	double v;
	if (!number_in(arg, WM_CARBON_PUE_MIN, WM_CARBON_PUE_MAX, &v))
		return wm_err(err, errlen, -EINVAL,
			      "--pue wants the data centre's power usage effectiveness, a number from %.1f to %.1f (1.0: no overhead), not '%s'",
			      WM_CARBON_PUE_MIN, WM_CARBON_PUE_MAX, arg);
	o->pue = v;
	o->pue_given = true;
	return 0;
}

int wm_carbon_set_price(struct wm_carbon_opts *o, const char *arg, char *err, size_t errlen)
{
	double v;
	if (!number_in(arg, 0.0, WM_CARBON_PRICE_MAX, &v))
		return wm_err(err, errlen, -EINVAL,
			      "--price wants a price per kWh from 0 to %.0f (with --currency), not '%s'",
			      WM_CARBON_PRICE_MAX, arg);
	o->has_price = true;
	o->price_per_kwh = v;
	return 0;
}

int wm_carbon_set_currency(struct wm_carbon_opts *o, const char *arg, char *err, size_t errlen)
{
	size_t n = strlen(arg);
	bool ok = n == 3;
	for (size_t i = 0; ok && i < n; i++)
		ok = isalpha((unsigned char)arg[i]) && (unsigned char)arg[i] < 0x80;
	if (!ok)
		return wm_err(err, errlen, -EINVAL,
			      "--currency wants a three-letter currency code such as EUR, USD or GBP, not '%s'", arg);
	for (size_t i = 0; i < n; i++)
		o->currency[i] = (char)toupper((unsigned char)arg[i]);
	o->currency[n] = '\0';
	return 0;
}

int wm_carbon_check(const struct wm_carbon_opts *o, char *err, size_t errlen)
{
	if (o->has_price && !o->currency[0])
		return wm_err(err, errlen, -EINVAL,
			      "--price needs --currency (a three-letter code such as EUR): a cost is never shown in a guessed currency");
	if (!o->has_price && o->currency[0])
		return wm_err(err, errlen, -EINVAL, "--currency needs --price (the price of one kWh in %s)",
			      o->currency);
	return 0;
}

double wm_carbon_kwh(const struct wm_carbon_opts *o, double energy_j)
{
	return energy_j * o->pue / WM_J_PER_KWH;
}

double wm_carbon_co2e_g(const struct wm_carbon_opts *o, double energy_j)
{
	if (!o->has_intensity)
		return NAN;
	return wm_carbon_kwh(o, energy_j) * o->intensity_g_per_kwh;
}

double wm_carbon_cost(const struct wm_carbon_opts *o, double energy_j)
{
	if (!o->has_price)
		return NAN;
	return wm_carbon_kwh(o, energy_j) * o->price_per_kwh;
}

/* three significant digits, plain notation for the usual magnitudes */
static int fmt_sig3(char *out, size_t len, double v, const char *unit)
{
	int n;
	double a = fabs(v);
	if (isnan(v))
		n = snprintf(out, len, "-");
	else if (a == 0)
		n = snprintf(out, len, "0 %s", unit);
	else if (a >= 1000)
		n = snprintf(out, len, "%.0f %s", v, unit);
	else if (a >= 1e-6)
		n = snprintf(out, len, "%.*f %s", a >= 100 ? 0 : a >= 10 ? 1 : (int)(2 - floor(log10(a))), v, unit);
	else
		n = snprintf(out, len, "%.2e %s", v, unit);
	return (n < 0 || (size_t)n >= len) ? -EINVAL : 0;
}

int wm_carbon_fmt_co2e(char *out, size_t len, double g)
{
	double a = fabs(g);
	if (!isnan(g) && a >= 1e6)
		return fmt_sig3(out, len, g / 1e6, "t CO2e");
	if (!isnan(g) && a >= 1e3)
		return fmt_sig3(out, len, g / 1e3, "kg CO2e");
	return fmt_sig3(out, len, g, "g CO2e");
}

int wm_carbon_fmt_kwh(char *out, size_t len, double kwh)
{
	return fmt_sig3(out, len, kwh, "kWh");
}

int wm_carbon_fmt_cost(char *out, size_t len, double cost, const char *currency)
{
	return fmt_sig3(out, len, cost, currency && *currency ? currency : "?");
}

int wm_carbon_table_text(wm_buf *b)
{
	wm_buf_printf(b, "Grid intensities shipped with wattmeter (gCO2e/kWh, yearly averages of\n"
				  "electricity generation, lifecycle; source: %s, CC BY 4.0).\n"
				  "Give one with --grid-intensity CODE, or your own figure as a number.\n\n",
			       wm_grid_source);
	for (size_t i = 0; i < WM_ARRAY_LEN(grid); i++)
		wm_buf_printf(b, "  %-5s %-3s  %-22s %4d  %7.2f\n", grid[i].iso2, grid[i].iso3 ? grid[i].iso3 : "",
			      grid[i].name, grid[i].year, grid[i].g_per_kwh);
	return wm_buf_error(b);
}
