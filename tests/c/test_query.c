/* test_query.c — a recording's details and the energy of a window (query.c).
 *
 * The recording is written byte by byte (fx_write) with round numbers, so the
 * expected figures are read off the lines below, not recomputed.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"
#include "recording/record.h"
#include "wattmeter.h"

static const char META[] =
	"{\"schema\":\"wattmeter.recording\",\"schema_version\":1,"
	"\"start_utc\":\"2026-11-25T12:00:00.000Z\",\"start_unix_s\":1795608000.0,"
	"\"devices\":[{\"name\":\"cpu\",\"method\":\"measured\",\"source\":\"rapl-powercap\"},"
	"{\"name\":\"gpu0\",\"method\":\"measured\",\"source\":\"nvml\"}],"
	"\"duration_s\":0.4,\"complete\":true}";

/* cpu 10 W, gpu0 100 W; process tier at 0, 0.2, 0.4; a blank line; a cut last line */
static const char SAMPLES[] =
	"{\"t_s\":0,\"energy_j\":{\"cpu\":0,\"gpu0\":0},\"zones_energy_j\":{\"package-0\":0,\"package-0/core\":0},"
	"\"attributed_j\":{\"cpu\":0,\"gpu0\":0},\"procs\":[{\"pid\":7,\"cpu_s\":0,\"energy_j\":{\"cpu\":0,\"gpu0\":0}}]}\n"
	"{\"t_s\":0.1,\"energy_j\":{\"cpu\":1,\"gpu0\":10},\"power_w\":{\"cpu\":10,\"gpu0\":100},"
	"\"gauges\":{\"gpu0\":{\"util\":0.5,\"mem_used_bytes\":1000}}}\n"
	"\n"
	"{\"t_s\":0.2,\"energy_j\":{\"cpu\":2,\"gpu0\":20},\"power_w\":{\"cpu\":10,\"gpu0\":100},"
	"\"zones_energy_j\":{\"package-0\":2,\"package-0/core\":1.5},\"attributed_j\":{\"cpu\":1,\"gpu0\":15},"
	"\"procs\":[{\"pid\":7,\"cpu_s\":0.1,\"cpu_share\":0.5,\"energy_j\":{\"cpu\":0.75,\"gpu0\":15},"
	"\"dev_mem_bytes\":{\"gpu0\":500}},{\"pid\":9,\"cpu_s\":0.05,\"energy_j\":{\"cpu\":0.25,\"gpu0\":0}}]}\n"
	"{\"t_s\":0.3,\"energy_j\":{\"cpu\":3,\"gpu0\":30},\"power_w\":{\"cpu\":10,\"gpu0\":100}}\n"
	"{\"t_s\":0.4,\"energy_j\":{\"cpu\":4,\"gpu0\":40},\"power_w\":{\"cpu\":10,\"gpu0\":100},"
	"\"zones_energy_j\":{\"package-0\":4,\"package-0/core\":3},\"attributed_j\":{\"cpu\":3,\"gpu0\":30},"
	"\"procs\":[{\"pid\":7,\"cpu_s\":0.2,\"energy_j\":{\"cpu\":2.5,\"gpu0\":30}},"
	"{\"pid\":-1,\"cpu_s\":9}]}\n"
	"{\"t_s\":0.5,\"energy_j\":{\"cpu\":5";

static json_t *parse(const char *s)
{
	json_error_t je;
	json_t *j = json_loads(s, 0, &je);
	if (!j)
		fail_msg("not JSON: %s: %s", je.text, s);
	return j;
}

static double num_at(const json_t *o, const char *k1, const char *k2)
{
	const json_t *v = json_object_get(o, k1);
	if (k2)
		v = json_object_get(v, k2);
	if (!json_is_number(v))
		fail_msg("%s.%s is not a number", k1, k2 ? k2 : "");
	return json_number_value(v);
}

static char *window(const char *dir, double s, double e)
{
	char err[512] = "";
	char *out = wm_report_window_json(dir, s, e, err, sizeof err);
	if (!out)
		fail_msg("window [%g, %g]: %s", s, e, err);
	return out;
}

static void make(char *root, size_t rootlen, char *dir, size_t dirlen)
{
	fx_mkdtemp(root, rootlen);
	int n = snprintf(dir, dirlen, "%s/rec", root);
	assert_true(n > 0 && (size_t)n < dirlen);
	fx_write(root, "rec/meta.json", META);
	fx_write(root, "rec/samples.jsonl", SAMPLES);
}

static void test_window_whole_and_cut(void **state)
{
	(void)state;
	char root[4096], dir[4200];
	make(root, sizeof root, dir, sizeof dir);

	char *s = window(dir, NAN, NAN);
	json_t *j = parse(s);
	assert_true(num_at(j, "start_s", NULL) == 0 && num_at(j, "end_s", NULL) == 0.4);
	assert_true(num_at(j, "energy_j", "cpu") == 4); /* the cut line 0.5 is not counted */
	assert_true(num_at(j, "energy_j", "gpu0") == 40);
	assert_true(num_at(j, "energy_j", "cpu_attributed") == 3);
	assert_true(num_at(j, "energy_j", "gpu0_attributed") == 30);
	json_t *p7 = json_object_get(json_object_get(j, "processes"), "7");
	assert_true(num_at(p7, "cpu", NULL) == 2.5 && num_at(p7, "gpu0", NULL) == 30);
	assert_non_null(json_object_get(json_object_get(j, "processes"), "9"));
	assert_null(json_object_get(json_object_get(j, "processes"), "-1")); /* as the summary skips it */
	json_decref(j);
	free(s);

	/* [0.15, 0.35]: from the line at 0.2 to the line at 0.3 */
	s = window(dir, 0.15, 0.35);
	j = parse(s);
	assert_true(num_at(j, "start_s", NULL) == 0.2 && num_at(j, "end_s", NULL) == 0.3);
	assert_true(fabs(num_at(j, "duration_s", NULL) - 0.1) < 1e-12);
	assert_true(num_at(j, "energy_j", "cpu") == 1 && num_at(j, "energy_j", "gpu0") == 10);
	/* attributed energy is on process-tier lines only: at 0.3 it is still that of 0.2 */
	assert_true(num_at(j, "energy_j", "cpu_attributed") == 0);
	json_decref(j);
	free(s);

	/* [0.1, 0.4]: attributed 3 - 0 (the last process line at or before 0.1 is 0) */
	s = window(dir, 0.1, 0.4);
	j = parse(s);
	assert_true(num_at(j, "energy_j", "cpu") == 3);
	assert_true(num_at(j, "energy_j", "cpu_attributed") == 3);
	p7 = json_object_get(json_object_get(j, "processes"), "7");
	assert_true(num_at(p7, "cpu", NULL) == 2.5);
	/* pid 9, seen only at 0.2 (inside): 0.25 since 0 */
	assert_true(num_at(json_object_get(json_object_get(j, "processes"), "9"), "cpu", NULL) == 0.25);
	json_decref(j);
	free(s);

	/* a window after pid 9's last line leaves it out */
	s = window(dir, 0.3, NAN);
	j = parse(s);
	assert_null(json_object_get(json_object_get(j, "processes"), "9"));
	assert_true(num_at(j, "energy_j", "cpu") == 1);
	json_decref(j);
	free(s);
	fx_rmtree(root);
}

static void test_window_errors(void **state)
{
	(void)state;
	char root[4096], dir[4200], err[512];
	make(root, sizeof root, dir, sizeof dir);
	errno = 0;
	assert_null(wm_report_window_json(dir, 0.3, 0.1, err, sizeof err));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(err, "give start <= end"));
	errno = 0;
	assert_null(wm_report_window_json(dir, 5, 6, err, sizeof err));
	assert_int_equal(errno, ERANGE);
	assert_non_null(strstr(err, "widen the window"));
	errno = 0;
	assert_null(wm_report_window_json(dir, 0.21, 0.29, err, sizeof err)); /* between two lines */
	assert_int_equal(errno, ERANGE);
	errno = 0;
	assert_null(wm_report_window_json("/nonexistent/rec", NAN, NAN, err, sizeof err));
	assert_int_equal(errno, ENOENT);

	/* no complete line at all */
	fx_write(root, "rec/samples.jsonl", "{\"t_s\":0,\"energy");
	errno = 0;
	char *s = wm_report_window_json(dir, NAN, NAN, err, sizeof err);
	if (s) {
		free(s);
		fail_msg("a recording without lines has no window");
	}
	assert_true(errno == ENODATA || errno == EBADMSG);
	fx_rmtree(root);
}

static void test_detail(void **state)
{
	(void)state;
	char root[4096], dir[4200], err[512];
	make(root, sizeof root, dir, sizeof dir);
	char *s = wm_report_detail_json(dir, err, sizeof err);
	if (!s)
		fail_msg("detail: %s", err);
	json_t *j = parse(s);
	json_t *rows = json_object_get(j, "rows"), *procs = json_object_get(j, "procs");
	json_t *t = json_object_get(rows, "t_s");
	assert_int_equal(json_array_size(t), 5); /* blank line skipped, cut line left out */
	json_t *core = json_object_get(rows, "zones_energy_j.package-0/core");
	assert_int_equal(json_array_size(core), 5);
	assert_true(json_number_value(json_array_get(core, 2)) == 1.5);
	assert_true(json_is_null(json_array_get(core, 1)));
	json_t *util = json_object_get(rows, "gauges.gpu0.util");
	assert_true(json_is_null(json_array_get(util, 0))); /* first seen on line 2: null before */
	assert_true(json_number_value(json_array_get(util, 1)) == 0.5);
	assert_true(json_is_null(json_array_get(util, 2)));
	json_t *pid = json_object_get(procs, "pid"), *row = json_object_get(procs, "row");
	assert_int_equal(json_array_size(pid), 4); /* 7 @0, 7 and 9 @2(0.2), 7 @4(0.4); pid -1 skipped */
	assert_true(json_number_value(json_array_get(row, 1)) == 2);
	assert_true(json_number_value(json_array_get(pid, 2)) == 9);
	json_t *share = json_object_get(procs, "cpu_share");
	assert_true(json_is_null(json_array_get(share, 0)) && json_number_value(json_array_get(share, 1)) == 0.5);
	json_t *gm = json_object_get(procs, "dev_mem_bytes.gpu0");
	assert_true(json_number_value(json_array_get(gm, 1)) == 500 && json_is_null(json_array_get(gm, 3)));
	assert_non_null(json_object_get(procs, "energy_j.gpu0"));
	json_decref(j);
	free(s);
	fx_rmtree(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_window_whole_and_cut),
		cmocka_unit_test(test_window_errors),
		cmocka_unit_test(test_detail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
