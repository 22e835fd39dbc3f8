/* test_windows.c — windows read at their own edges (src/meter/windows.c):
 * on a fixture tree whose counters the test sets by hand, a window's energy
 * is exactly the counters' advance between its edges (through a wrap),
 * nested windows included, with joules per count; and every misuse gets its
 * errno (bad name or JSON, unknown id, no recording, stopped, forked child). */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "wattmeter.h"

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void make_tree(const char *sys)
{
	fx_rapl_zone(sys, "intel-rapl", "intel-rapl:0", "package-0", 900000, 1000000);
	fx_rapl_zone(sys, "intel-rapl", "intel-rapl:0:0", "dram", 0, 1000000);
	fx_rapl_zone(sys, "intel-rapl-mmio", "intel-rapl-mmio:0", "package-0", 900000, 1000000);
	fx_rapl_limit(sys, "intel-rapl", "intel-rapl:0", 2000000);
	fx_rapl_limit(sys, "intel-rapl", "intel-rapl:0:0", 2000000);
	fx_rapl_limit(sys, "intel-rapl-mmio", "intel-rapl-mmio:0", 2000000);
}

static void set_pkg(const char *sys, unsigned long long uj)
{
	fx_rapl_set(sys, "intel-rapl:0", uj);
	fx_rapl_set(sys, "intel-rapl-mmio:0", uj);
}

static wm_meter *start(const char *sys, const char *out)
{
	wm_meter_config c;
	wm_meter_config_init(&c);
	c.output_dir = out;
	c.sysfs_root = sys;
	c.period_s = 30; /* no tick between the edges: only the edges' own reads count */
	c.proc_period_s = 30;
	c.measure_self = 1;
	wm_meter *m = NULL;
	char err[512] = "";
	if (wm_meter_start(&c, &m, err, sizeof err) < 0)
		fail_msg("wm_meter_start: %s", err);
	return m;
}

static json_t *windows_of(const char *dir, const char *name)
{
	char err[512] = "";
	char *s = wm_report_windows_json(dir, name, err, sizeof err);
	if (!s)
		fail_msg("wm_report_windows_json: %s", err);
	json_t *j = json_loads(s, 0, NULL);
	free(s);
	assert_non_null(j);
	return j;
}

static double num(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(o, a);
	if (b)
		v = json_object_get(v, b);
	if (!json_is_number(v))
		fail_msg("no number at %s.%s", a, b ? b : "");
	return json_number_value(v);
}

static void energy_is_the_counter_advance_between_the_edges(void **state)
{
	(void)state;
	char root[4096], sys[4200], out[4200];
	fx_mkdtemp(root, sizeof root);
	snprintf(sys, sizeof sys, "%s/sys", root);
	snprintf(out, sizeof out, "%s/rec", root);
	make_tree(sys);
	wm_meter *m = start(sys, out);

	int64_t a = wm_meter_window_begin(m, "outer", "{\"epoch\":3}");
	assert_true(a > 0);
	assert_int_equal(wm_meter_windows_flush(m), 0);
	sleep_ms(100);
	set_pkg(sys, 950000); /* +0.05 J */
	int64_t b = wm_meter_window_begin(m, "inner", NULL);
	assert_true(b > a);
	assert_int_equal(wm_meter_windows_flush(m), 0);
	sleep_ms(100);
	set_pkg(sys, 990000); /* +0.04 J */
	assert_int_equal(wm_meter_window_end(m, b, "{\"tokens\":4}"), 0);
	assert_int_equal(wm_meter_mark(m, "half", "{\"at\":\"middle\"}"), 0);
	assert_int_equal(wm_meter_windows_flush(m), 0);
	sleep_ms(100);
	set_pkg(sys, 9999); /* through the wrap at 1 J: +0.01 J + 0.009999 J */
	assert_int_equal(wm_meter_window_end(m, a, NULL), 0);
	assert_int_equal(wm_meter_windows_flush(m), 0);

	/* misuse */
	assert_int_equal(wm_meter_window_begin(m, "", NULL), -EINVAL);
	assert_int_equal(wm_meter_window_begin(m, "x", "[1,2]"), -EINVAL);
	assert_int_equal(wm_meter_window_begin(m, "x", "{bad"), -EINVAL);
	assert_int_equal(wm_meter_window_end(m, a, "{\"tokens\":\"many\"}"), -EINVAL);
	assert_int_equal(wm_meter_window_end(m, a, "{\"tokens\":-1}"), -EINVAL);
	assert_int_equal(wm_meter_window_end(m, 9999, NULL), -ENOENT);
	pid_t pid = fork();
	if (pid == 0)
		_exit(wm_meter_window_begin(m, "child", NULL) == -ECHILD ? 0 : 1);
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	int64_t open_at_stop = wm_meter_window_begin(m, "left-open", NULL);
	assert_true(open_at_stop > 0);
	char err[512] = "";
	assert_int_equal(wm_meter_stop(m, 0, err, sizeof err), 0);
	assert_int_equal(wm_meter_window_begin(m, "late", NULL), -ESHUTDOWN);
	wm_meter_free(m);

	json_t *j = windows_of(out, NULL);
	json_t *w = json_object_get(j, "windows");
	assert_int_equal(json_array_size(w), 3);
	json_t *inner = json_array_get(w, 0), *outer = json_array_get(w, 1), *left = json_array_get(w, 2);
	assert_string_equal(json_string_value(json_object_get(inner, "name")), "inner");
	assert_string_equal(json_string_value(json_object_get(outer, "name")), "outer");
	assert_float_equal(num(inner, "energy_j", "cpu"), 0.04, 1e-9);
	assert_float_equal(num(outer, "energy_j", "cpu"), 0.109999, 1e-9);
	assert_float_equal(num(outer, "energy_j", "dram"), 0.0, 1e-12);
	assert_float_equal(num(inner, "j_per", "tokens"), 0.01, 1e-9);
	assert_float_equal(num(outer, "attrs", "epoch"), 3, 0);
	assert_true(num(outer, "start_s", NULL) < num(inner, "start_s", NULL));
	assert_true(num(inner, "end_s", NULL) < num(outer, "end_s", NULL));
	assert_true(num(outer, "duration_s", NULL) >= 0.3);
	assert_true(json_is_true(json_object_get(left, "open")));
	assert_true(json_is_false(json_object_get(outer, "open")));
	json_t *marks = json_object_get(j, "marks");
	assert_int_equal(json_array_size(marks), 1);
	/* cumulative at the mark: 0.05 + 0.04 since the baseline */
	assert_float_equal(num(json_array_get(marks, 0), "energy_j", "cpu"), 0.09, 1e-9);
	json_t *g = json_array_get(json_object_get(j, "groups"), 1);
	assert_string_equal(json_string_value(json_object_get(g, "name")), "outer");
	assert_float_equal(num(g, "energy_j", "total"), 0.109999, 1e-9);
	json_decref(j);

	j = windows_of(out, "inner");
	assert_int_equal(json_array_size(json_object_get(j, "windows")), 1);
	json_decref(j);
	fx_rmtree(root);
}

static void a_meter_without_recording_refuses_windows(void **state)
{
	(void)state;
	char root[4096], sys[4200];
	fx_mkdtemp(root, sizeof root);
	snprintf(sys, sizeof sys, "%s/sys", root);
	make_tree(sys);
	wm_meter *m = start(sys, NULL);
	assert_int_equal(wm_meter_window_begin(m, "x", NULL), -ENOTSUP);
	assert_int_equal(wm_meter_mark(m, "x", NULL), -ENOTSUP);
	wm_meter_free(m);
	fx_rmtree(root);
}

/* A killed run: a begin line and no end. The reader reports the window open
 * up to the last sample, with the energy from its begin to that sample. */
static void a_window_never_ended_is_open_to_the_last_sample(void **state)
{
	(void)state;
	char root[4096], dir[4200];
	fx_mkdtemp(root, sizeof root);
	snprintf(dir, sizeof dir, "%s/rec", root);
	fx_mkdir(root, "rec");
	fx_write(dir, "windows.jsonl",
		 "{\"windows_version\":1,\"devices\":[\"cpu\"]}\n"
		 "{\"event\":\"begin\",\"id\":1,\"name\":\"epoch\",\"t_s\":1.5,\"attrs\":{\"epoch\":0},\"energy_j\":{\"cpu\":10.0}}\n"
		 "{\"event\":\"end\",\"id\":2,\"na"); /* cut by the kill */
	fx_write(dir, "samples.jsonl",
		 "{\"t_s\":0,\"energy_j\":{\"cpu\":0}}\n{\"t_s\":4.0,\"energy_j\":{\"cpu\":35.0}}\n{\"t_s\":5.0,\"ener");
	json_t *j = windows_of(dir, NULL);
	assert_true(json_is_true(json_object_get(j, "truncated")));
	json_t *w = json_array_get(json_object_get(j, "windows"), 0);
	assert_non_null(w);
	assert_true(json_is_true(json_object_get(w, "open")));
	assert_float_equal(num(w, "end_s", NULL), 4.0, 1e-9);
	assert_float_equal(num(w, "duration_s", NULL), 2.5, 1e-9);
	assert_float_equal(num(w, "energy_j", "cpu"), 25.0, 1e-9);
	json_decref(j);

	/* damage before the last line is an error naming the line */
	fx_unlink(dir, "windows.jsonl");
	fx_write(dir, "windows.jsonl", "{\"windows_version\":1,\"devices\":[]}\nnot json\n{\"event\":\"mark\"}\n");
	char err[512] = "";
	assert_null(wm_report_windows_json(dir, NULL, err, sizeof err));
	assert_int_equal(errno, EBADMSG);
	assert_non_null(strstr(err, "line 2"));
	fx_unlink(dir, "windows.jsonl");
	fx_write(dir, "windows.jsonl", "{\"windows_version\":2}\n");
	assert_null(wm_report_windows_json(dir, NULL, err, sizeof err));
	assert_int_equal(errno, ENOTSUP);
	fx_rmtree(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(energy_is_the_counter_advance_between_the_edges),
		cmocka_unit_test(a_meter_without_recording_refuses_windows),
		cmocka_unit_test(a_window_never_ended_is_open_to_the_last_sample),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
