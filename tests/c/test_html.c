/* test_html.c — the HTML report (html.h): escaping of every string from a
 * recording, the plots' content against known energies, bounded size for
 * long recordings, GPUs, any number of devices, and the comparison. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"
#include "recording/carbon.h"
#include "recording/html.h"
#include "recording/record.h"

static char *esc(const char *s, size_t max)
{
	wm_buf b;
	wm_buf_init(&b);
	assert_int_equal(wm_html_escape_cut(&b, s, max), 0);
	if (!b.data)
		return strdup("");
	return b.data;
}

#define ASSERT_ESC(in, want)                        \
	do {                                        \
		char *got_ = esc((in), SIZE_MAX);   \
		assert_string_equal(got_, (want));  \
		free(got_);                         \
	} while (0)

static void test_escape(void **state)
{
	(void)state;
	ASSERT_ESC("<script>alert(\"x\")</script>&'", "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;");
	ASSERT_ESC("plain text 1.5 W", "plain text 1.5 W");
	ASSERT_ESC("a\x01" "b\x7f" "c\x1b[2J", "a&#xFFFD;b&#xFFFD;c&#xFFFD;[2J");
	ASSERT_ESC("tab\tnl\n", "tab\tnl\n");
	ASSERT_ESC("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x8b", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x8b"); /* é € 🔋 kept */
	ASSERT_ESC("\xff", "&#xFFFD;");
	ASSERT_ESC("\xc0\xaf", "&#xFFFD;&#xFFFD;");           /* overlong '/' */
	ASSERT_ESC("\xed\xa0\x80", "&#xFFFD;&#xFFFD;&#xFFFD;"); /* a surrogate */
	ASSERT_ESC("\xe2\x82", "&#xFFFD;&#xFFFD;");           /* cut sequence at the end */
	ASSERT_ESC("\xf4\x90\x80\x80", "&#xFFFD;&#xFFFD;&#xFFFD;&#xFFFD;"); /* above U+10FFFF */
	char *c = esc("abcdef", 3);
	assert_string_equal(c, "abc\xe2\x80\xa6");
	free(c);
	c = esc("\xc3\xa9\xc3\xa9\xc3\xa9", 2); /* cut counts code points, never splits one */
	assert_string_equal(c, "\xc3\xa9\xc3\xa9\xe2\x80\xa6");
	free(c);
	c = esc("abc", 3);
	assert_string_equal(c, "abc");
	free(c);
}

/* Writes meta.json and samples.jsonl into dir: devices named in devs (gpuN
 * are GPUs), n_rows samples every dt_s with device k at (k + 1) * 10 W and
 * attributed energy (half of cpu's, all of gpu0's half) on every 5th row. */
static void write_recording(const char *dir, const char *const *devs, size_t nd, size_t n_rows, double dt_s,
			    const char *cmdline, const char *comm, const char *sensor_detail)
{
	wm_buf m;
	wm_buf_init(&m);
	assert_int_equal(wm_buf_puts(&m, "{\"schema_version\":1,\"command\":[\"python3\",\"train.py\"],\"devices\":["), 0);
	for (size_t k = 0; k < nd; k++)
		assert_int_equal(wm_buf_printf(&m, "%s{\"name\":\"%s\",\"method\":\"measured\",\"source\":\"%s\"}", k ? "," : "",
					       devs[k], strncmp(devs[k], "gpu", 3) ? "rapl-powercap" : "nvml"),
				 0);
	assert_int_equal(wm_buf_puts(&m, "],\"sensors\":[{\"name\":\"rapl-powercap\",\"state\":\"ok\",\"detail\":"), 0);
	assert_int_equal(wm_buf_json_str(&m, sensor_detail), 0);
	assert_int_equal(wm_buf_printf(&m, ",\"fix\":\"\"}],\"start_utc\":\"2026-11-25T12:00:00.000Z\",\"duration_s\":%.17g,"
					   "\"exit_status\":0,\"complete\":true}",
				       (double)(n_rows - 1) * dt_s),
			 0);
	fx_write(dir, "meta.json", m.data);
	wm_buf_free(&m);

	wm_buf s;
	wm_buf_init(&s);
	for (size_t i = 0; i < n_rows; i++) {
		double t = (double)i * dt_s;
		assert_int_equal(wm_buf_printf(&s, "{\"t_s\":%.17g,\"energy_j\":{", t), 0);
		for (size_t k = 0; k < nd; k++)
			assert_int_equal(wm_buf_printf(&s, "%s\"%s\":%.17g", k ? "," : "", devs[k], (double)(k + 1) * 10.0 * t), 0);
		assert_int_equal(wm_buf_puts(&s, "}"), 0);
		if (i % 5 == 0) {
			/* cpu (device 0, 10 W): 5 W attributed; gpu0 if any: half its power */
			assert_int_equal(wm_buf_printf(&s, ",\"attributed_j\":{\"%s\":%.17g", devs[0], 5.0 * t), 0);
			for (size_t k = 0; k < nd; k++)
				if (strcmp(devs[k], "gpu0") == 0)
					assert_int_equal(wm_buf_printf(&s, ",\"gpu0\":%.17g", (double)(k + 1) * 5.0 * t), 0);
			assert_int_equal(wm_buf_printf(&s, "},\"procs\":[{\"pid\":4242,\"comm\":"), 0);
			assert_int_equal(wm_buf_json_str(&s, comm), 0);
			assert_int_equal(wm_buf_printf(&s, ",\"cpu_s\":0.1,\"energy_j\":{\"%s\":%.17g}}]", devs[0], 5.0 * t), 0);
			if (i == 0) {
				assert_int_equal(wm_buf_puts(&s, ",\"new_procs\":[{\"pid\":4242,\"cmdline\":"), 0);
				assert_int_equal(wm_buf_json_str(&s, cmdline), 0);
				assert_int_equal(wm_buf_puts(&s, "}]"), 0);
			}
		}
		assert_int_equal(wm_buf_puts(&s, "}\n"), 0);
	}
	fx_write(dir, "samples.jsonl", s.data);
	wm_buf_free(&s);
}

static wm_recording *open_ok(const char *dir)
{
	wm_recording *r = NULL;
	char err[1024] = "";
	if (wm_recording_open(dir, &r, err, sizeof err))
		fail_msg("open %s: %s", dir, err);
	return r;
}

static char *render(const wm_recording *const *recs, size_t n, const struct wm_carbon_opts *c, size_t *len)
{
	struct wm_html_opts o = {.top_n = 10, .carbon = c};
	wm_buf b;
	wm_buf_init(&b);
	assert_int_equal(wm_html_report(recs, n, &o, &b), 0);
	assert_non_null(b.data);
	if (len)
		*len = b.len;
	return b.data;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static bool contains_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (const char *p = hay; *p; p++)
		if (strncasecmp(p, needle, n) == 0)
			return true;
	return false;
}

/* A hostile process name, command line, sensor detail and folder name can
 * neither add an element nor leave an attribute. */
static void test_injection_is_impossible(void **state)
{
	(void)state;
	char root[4096], dir[4200];
	fx_mkdtemp(root, sizeof root);
	int n = snprintf(dir, sizeof dir, "%s/run<script>x", root);
	assert_true(n > 0 && (size_t)n < sizeof dir);
	fx_mkdir(root, "run<script>x");
	static const char *const devs[] = {"cpu", "dram"};
	write_recording(dir, devs, 2, 50, 0.1, "<script>alert(1)</script> --x='\"><img src=x onerror=alert(2)>",
			"\"><svg onload=alert(3)>", "<iframe src=//evil>");
	wm_recording *r = open_ok(dir);
	struct wm_carbon_opts c;
	wm_carbon_opts_init(&c);
	char *h = render((const wm_recording *const *)&r, 1, &c, NULL);
	assert_false(contains_ci(h, "<script"));
	assert_false(contains_ci(h, "<img"));
	assert_false(contains_ci(h, "<iframe"));
	assert_false(contains_ci(h, "<svg onload"));
	assert_non_null(strstr(h, "&lt;script&gt;alert(1)&lt;/script&gt;"));
	assert_non_null(strstr(h, "&lt;iframe src=//evil&gt;"));
	assert_non_null(strstr(h, "run&lt;script&gt;x"));
	/* the policy forbids scripts and fetches even if something slipped */
	assert_non_null(strstr(h, "Content-Security-Policy\" content=\"default-src 'none'"));
	assert_false(contains_ci(h, "http://") || contains_ci(h, "https://"));
	free(h);
	wm_recording_free(r);
	fx_rmtree(root);
}

/* Parses the points of the first <polyline> after `after`: count and the
 * y range. */
static void polyline_after(const char *h, const char *after, size_t *npts, double *ymin, double *ymax)
{
	const char *p = strstr(h, after);
	assert_non_null(p);
	p = strstr(p, "<polyline");
	assert_non_null(p);
	p = strstr(p, "points=\"");
	assert_non_null(p);
	p += 8;
	*npts = 0;
	*ymin = INFINITY;
	*ymax = -INFINITY;
	while (*p && *p != '"') {
		char *end;
		strtod(p, &end);
		assert_true(end != p && *end == ',');
		double y = strtod(end + 1, &end);
		*ymin = fmin(*ymin, y);
		*ymax = fmax(*ymax, y);
		(*npts)++;
		p = end;
		while (*p == ' ')
			p++;
	}
}

/* Power plotted from the energy counters: device 0 at a constant 10 W is a
 * flat line at the 10 W height (axis step 5 W, top 15 W = 10 W + 5% rounded
 * up to a step; plot height 146 px from y = 26: 10 W at 26 + 146 - 10/15 x
 * 146 = 74.67). The
 * attributed part is shaded; the process and its command line appear. */
static void test_power_plot_from_known_energy(void **state)
{
	(void)state;
	char root[4096];
	fx_mkdtemp(root, sizeof root);
	static const char *const devs[] = {"cpu", "dram"};
	write_recording(root, devs, 2, 201, 0.05, "python3 train.py --epochs 1", "python3", "ok");
	wm_recording *r = open_ok(root);
	struct wm_carbon_opts c;
	wm_carbon_opts_init(&c);
	char err[256];
	assert_int_equal(wm_carbon_set_intensity(&c, "DE", err, sizeof err), 0);
	char *h = render((const wm_recording *const *)&r, 1, &c, NULL);
	size_t n;
	double y0, y1;
	polyline_after(h, "<h3>cpu", &n, &y0, &y1);
	assert_true(n >= 150 && n <= WM_HTML_MAX_POINTS); /* 200 segments over <= 600 buckets */
	assert_true(fabs(y0 - 74.67) < 0.1 && fabs(y1 - 74.67) < 0.1);
	/* dram at 20 W: ymax 25 (step 5), y = 172 - 20/25 x 146 = 55.2 */
	polyline_after(h, "<h3>dram", &n, &y0, &y1);
	assert_true(fabs(y0 - 55.2) < 0.1 && fabs(y1 - 55.2) < 0.1);
	assert_true(count(h, "fill-opacity=\"0.45\" points=") >= 1); /* attributed shading */
	assert_non_null(strstr(h, "attributed to the measured processes"));
	assert_non_null(strstr(h, "python3 train.py --epochs 1"));
	assert_non_null(strstr(h, "Energy per process"));
	/* 10 s: cpu 100 J, dram 200 J; machine 300 J = 8.33e-5 kWh; at DE 380.95 g -> 0.0317 g */
	assert_non_null(strstr(h, "100.0 J"));
	assert_non_null(strstr(h, "300.0 J"));
	assert_non_null(strstr(h, "0.0317 g CO2e"));
	assert_non_null(strstr(h, "Germany (DE) 2023, Ember"));
	assert_null(strstr(h, "Energy per GPU")); /* no GPU here */
	free(h);

	/* without an intensity: no CO2e figure, and how to get one */
	wm_carbon_opts_init(&c);
	h = render((const wm_recording *const *)&r, 1, &c, NULL);
	assert_null(strstr(h, "g CO2e"));
	assert_non_null(strstr(h, "--grid-intensity"));
	free(h);
	wm_recording_free(r);
	fx_rmtree(root);
}

/* A week at one sample per 4 s (151,200 samples) gives a file no bigger than a few
 * minutes' worth: every plot is reduced to at most WM_HTML_MAX_POINTS. */
static void test_long_recording_is_downsampled(void **state)
{
	(void)state;
	char root[4096], a[4200], b[4200];
	fx_mkdtemp(root, sizeof root);
	int n1 = snprintf(a, sizeof a, "%s/short", root), n2 = snprintf(b, sizeof b, "%s/week", root);
	assert_true(n1 > 0 && n2 > 0 && (size_t)n1 < sizeof a && (size_t)n2 < sizeof b);
	fx_mkdir(root, "short");
	fx_mkdir(root, "week");
	static const char *const devs[] = {"cpu", "dram", "psys"};
	write_recording(a, devs, 3, 3000, 0.1, "x", "x", "ok");
	write_recording(b, devs, 3, 151201, 4.0, "x", "x", "ok");
	struct wm_carbon_opts c;
	wm_carbon_opts_init(&c);
	wm_recording *ra = open_ok(a), *rb = open_ok(b);
	size_t la, lb;
	char *ha = render((const wm_recording *const *)&ra, 1, &c, &la);
	char *hb = render((const wm_recording *const *)&rb, 1, &c, &lb);
	assert_true(lb < 200000);
	assert_true(lb < la * 1.3);
	size_t n;
	double y0, y1;
	polyline_after(hb, "<h3>psys", &n, &y0, &y1);
	assert_true(n <= WM_HTML_MAX_POINTS);
	assert_non_null(strstr(hb, "time since start (d)")); /* a week on a day axis */
	free(ha);
	free(hb);
	wm_recording_free(ra);
	wm_recording_free(rb);
	fx_rmtree(root);
}

/* Any number of devices, GPUs among them: one power plot each, and the GPU
 * chart lists every GPU. */
static void test_many_devices_and_gpus(void **state)
{
	(void)state;
	char root[4096];
	fx_mkdtemp(root, sizeof root);
	static const char *const devs[] = {"cpu", "dram", "gpu0", "gpu1", "gpu2", "gpu3",
					   "gpu4", "gpu5", "gpu6", "gpu7", "gpu8", "gpu9"};
	write_recording(root, devs, WM_ARRAY_LEN(devs), 40, 0.25, "train", "train", "ok");
	wm_recording *r = open_ok(root);
	struct wm_carbon_opts c;
	wm_carbon_opts_init(&c);
	char *h = render((const wm_recording *const *)&r, 1, &c, NULL);
	assert_int_equal(count(h, "<h3>"), WM_ARRAY_LEN(devs));
	assert_int_equal(count(h, "aria-label=\"power over time\""), WM_ARRAY_LEN(devs));
	const char *g = strstr(h, "Energy per GPU");
	assert_non_null(g);
	for (size_t k = 2; k < WM_ARRAY_LEN(devs); k++) {
		char want[64];
		(void)snprintf(want, sizeof want, "<title>%s</title>", devs[k]);
		assert_non_null(strstr(g, want));
	}
	free(h);
	wm_recording_free(r);
	fx_rmtree(root);
}

/* Two runs with different devices: table, grouped bars, both reports. */
static void test_compare(void **state)
{
	(void)state;
	char root[4096], a[4200], b[4200];
	fx_mkdtemp(root, sizeof root);
	(void)snprintf(a, sizeof a, "%s/cpu-only", root);
	(void)snprintf(b, sizeof b, "%s/with-gpu", root);
	fx_mkdir(root, "cpu-only");
	fx_mkdir(root, "with-gpu");
	static const char *const d1[] = {"cpu", "dram"};
	static const char *const d2[] = {"cpu", "gpu0"};
	write_recording(a, d1, 2, 11, 1.0, "a", "a", "ok");
	write_recording(b, d2, 2, 21, 1.0, "b", "b", "ok");
	wm_recording *rs[2] = {open_ok(a), open_ok(b)};
	struct wm_carbon_opts c;
	wm_carbon_opts_init(&c);
	char *h = render((const wm_recording *const *)rs, 2, &c, NULL);
	assert_non_null(strstr(h, "2 runs side by side"));
	assert_non_null(strstr(h, "cpu-only"));
	assert_non_null(strstr(h, "with-gpu"));
	assert_int_equal(count(h, "<section id=\"run"), 2);
	/* run 1 cpu 10 s x 10 W = 100 J, run 2 cpu 20 s x 10 W = 200 J, gpu0 400 J */
	assert_non_null(strstr(h, "100.0 J"));
	assert_non_null(strstr(h, "400.0 J"));
	free(h);
	wm_buf t;
	wm_buf_init(&t);
	assert_int_equal(wm_recording_compare_text((const wm_recording *const *)rs, 2, &c, &t), 0);
	assert_non_null(strstr(t.data, "run 1"));
	assert_non_null(strstr(t.data, "gpu0"));
	assert_non_null(strstr(t.data, "--grid-intensity"));
	wm_buf_free(&t);
	wm_recording_free(rs[0]);
	wm_recording_free(rs[1]);
	fx_rmtree(root);
}

/* A killed run (no end fields, a cut last line) still renders, and says so. */
static void test_incomplete_recording(void **state)
{
	(void)state;
	char root[4096];
	fx_mkdtemp(root, sizeof root);
	fx_write(root, "meta.json", "{\"schema_version\":1,\"devices\":[{\"name\":\"cpu\",\"method\":\"modeled\",\"source\":\"cpu-model\"}],"
				    "\"sensors\":[{\"name\":\"rapl-powercap\",\"state\":\"absent\",\"detail\":\"no powercap\",\"fix\":\"sudo modprobe intel_rapl_msr\"}]}");
	fx_write(root, "samples.jsonl", "{\"t_s\":0,\"energy_j\":{\"cpu\":0}}\n{\"t_s\":1,\"energy_j\":{\"cpu\":7}}\n{\"t_s\":2,\"ener");
	wm_recording *r = open_ok(root);
	struct wm_carbon_opts c;
	wm_carbon_opts_init(&c);
	char *h = render((const wm_recording *const *)&r, 1, &c, NULL);
	assert_non_null(strstr(h, "incomplete: the run was killed"));
	assert_non_null(strstr(h, "cut mid-write"));
	assert_non_null(strstr(h, "modelled"));
	assert_non_null(strstr(h, "sudo modprobe intel_rapl_msr")); /* the fix, from meta.json */
	assert_non_null(strstr(h, "7.0 J"));
	free(h);
	wm_recording_free(r);
	fx_rmtree(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_injection_is_impossible),
		cmocka_unit_test(test_power_plot_from_known_energy),
		cmocka_unit_test(test_long_recording_is_downsampled),
		cmocka_unit_test(test_many_devices_and_gpus),
		cmocka_unit_test(test_compare),
		cmocka_unit_test(test_incomplete_recording),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
