/* test_record.c — the recording writer and reader (record.h, docs/recording.md).
 *
 * Recordings are written with the real writer (wm_recorder_*) where they are
 * well formed, and byte by byte with fx_write where they are broken, then read
 * back; the summary and the columns are checked by parsing them with jansson.
 */
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
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"
#include "recording/record.h"
#include "recording/record_scan.h"
#include "wattmeter.h"

/* ---- helpers ---------------------------------------------------------------- */

#define DEVICES_MEASURED                                                                          \
	"[{\"name\":\"cpu\",\"method\":\"measured\",\"source\":\"rapl-powercap\",\"zones\":[\"package-0\"]}," \
	"{\"name\":\"dram\",\"method\":\"measured\",\"source\":\"rapl-powercap\",\"zones\":[\"package-0/dram\"]}," \
	"{\"name\":\"psys\",\"method\":\"measured\",\"source\":\"rapl-powercap\",\"zones\":[\"psys\"]}]"

#define DEVICES_MODELED                                                                      \
	"[{\"name\":\"cpu\",\"method\":\"modeled\",\"source\":\"cpu-model\",\"zones\":[]}]"

#define SENSORS_MODELED                                                                          \
	"[{\"name\":\"rapl-powercap\",\"state\":\"permission denied\",\"detail\":\"energy_uj is root-only\"," \
	"\"fix\":\"sudo chmod o+r /sys/class/powercap/*/energy_uj\"},"                               \
	"{\"name\":\"cpu-model\",\"state\":\"modeled\",\"detail\":\"\",\"fix\":\"\"}]"

#define END_FIELDS                                                                                   \
	",\"end_utc\":\"2026-11-25T12:00:12.500Z\",\"end_unix_s\":1795608012.5,\"duration_s\":12.5," \
	"\"exit_status\":0,\"complete\":true,\"self\":{\"cpu_s\":0.025,\"samples\":5}"

/* A meta.json: version, devices, sensors, then the end fields (or "") */
#define META_FMT                                                                    \
	"{\"schema\":\"wattmeter.recording\",\"schema_version\":%d,"                    \
	"\"tool\":{\"name\":\"wattmeter\",\"version\":\"0.1.0\"},"                      \
	"\"host\":{\"hostname\":\"node1\",\"n_cpus\":2},"                                \
	"\"command\":[\"python3\",\"train.py\",\"--lr\",\"0.1 x\"],\"pids\":[4242],"       \
	"\"period_s\":0.1,\"proc_period_s\":1.0,\"mem_period_s\":5.0,"                   \
	"\"start_utc\":\"2026-11-25T12:00:00.000Z\",\"start_unix_s\":1795608000.0,"      \
	"\"devices\":%s,\"zones\":[],\"sensors\":%s,"                                   \
	"\"model\":{\"name\":\"ccf-linear\"}%s}"

static char *meta_json(int version, const char *devices, const char *sensors, const char *end)
{
	wm_buf b;
	wm_buf_init(&b);
	assert_int_equal(wm_buf_printf(&b, META_FMT, version, devices, sensors, end), 0);
	return b.data; /* the caller frees */
}

/* Writes a recording in root/rec with the real writer; path into dir. */
static void write_rec(const char *root, char *dir, size_t dirlen, const char *meta,
		      const char *const *lines, size_t n_lines)
{
	int n = snprintf(dir, dirlen, "%s/rec", root);
	assert_true(n > 0 && (size_t)n < dirlen);
	wm_recorder w;
	char err[512] = "";
	int rc = wm_recorder_open(&w, dir, err, sizeof err);
	if (rc)
		fail_msg("wm_recorder_open: %s", err);
	assert_int_equal(wm_recorder_write_meta(&w, meta, strlen(meta)), 0);
	for (size_t i = 0; i < n_lines; i++)
		assert_int_equal(wm_recorder_append(&w, lines[i], strlen(lines[i])), 0);
	wm_recorder_close(&w);
	wm_recorder_close(&w); /* harmless twice */
}

static wm_recording *open_ok(const char *dir)
{
	wm_recording *r = NULL;
	char err[1024] = "";
	int rc = wm_recording_open(dir, &r, err, sizeof err);
	if (rc)
		fail_msg("wm_recording_open(%s): %d %s", dir, rc, err);
	assert_non_null(r);
	return r;
}

/* Opening must fail with rc; the message is returned in err. */
static void open_fails(const char *dir, int want_rc, char *err, size_t errlen)
{
	wm_recording *r = (wm_recording *)0x1;
	int rc = wm_recording_open(dir, &r, err, errlen);
	assert_int_equal(rc, want_rc);
	assert_null(r);
	assert_true(strlen(err) > 0);
}

static json_t *summary(const wm_recording *r)
{
	wm_buf b;
	wm_buf_init(&b);
	assert_int_equal(wm_recording_summary_json(r, &b), 0);
	json_error_t je;
	json_t *j = json_loadb(b.data, b.len, 0, &je);
	if (!j)
		fail_msg("summary is not JSON: %s in %s", je.text, b.data);
	wm_buf_free(&b);
	assert_true(json_is_object(j));
	return j;
}

static char *text(const wm_recording *r, int top_n)
{
	wm_buf b;
	wm_buf_init(&b);
	assert_int_equal(wm_recording_summary_text(r, top_n, &b), 0);
	assert_non_null(b.data);
	return b.data;
}

/* j at a path of object keys, e.g. get(j, "energy_j", "cpu", NULL) */
static json_t *get(json_t *j, ...)
{
	va_list ap;
	va_start(ap, j);
	const char *k;
	while (j && (k = va_arg(ap, const char *)))
		j = json_object_get(j, k);
	va_end(ap);
	return j;
}

static double num(json_t *j, const char *a, const char *b)
{
	json_t *v = b ? get(j, a, b, NULL) : get(j, a, NULL);
	if (!json_is_number(v))
		fail_msg("%s.%s is not a number", a, b ? b : "");
	return json_number_value(v);
}

static const char *str(json_t *j, const char *a, const char *b)
{
	json_t *v = b ? get(j, a, b, NULL) : get(j, a, NULL);
	if (!json_is_string(v))
		fail_msg("%s.%s is not a string", a, b ? b : "");
	return json_string_value(v);
}

/* The samples of a small measured run: cumulative energies, one gap of psys on
 * the last line, attribution on lines 2 and 4. */
static const char *const RUN[] = {
	"{\"t_s\":0,\"energy_j\":{\"cpu\":0,\"dram\":0,\"psys\":0},\"cpu_util\":0,\"self_cpu_s\":0}",
	"{\"t_s\":0.1,\"energy_j\":{\"cpu\":2.5,\"dram\":0.25,\"psys\":4},"
	"\"power_w\":{\"cpu\":25,\"dram\":2.5,\"psys\":40},\"cpu_util\":0.5,\"self_cpu_s\":0.001,"
	"\"attributed_j\":{\"cpu\":2,\"dram\":0.125},\"mem_used_bytes\":4200000000,"
	"\"procs\":[{\"pid\":4242,\"ppid\":4241,\"comm\":\"python3\",\"alive\":true,\"cpu_s\":0.75,"
	"\"rss_bytes\":81920000,\"energy_j\":{\"cpu\":1.5,\"dram\":0.125}},"
	"{\"pid\":4300,\"ppid\":4242,\"comm\":\"python3\",\"alive\":true,\"cpu_s\":0.25,"
	"\"rss_bytes\":1000,\"energy_j\":{\"cpu\":0.5,\"dram\":0}}],"
	"\"new_procs\":[{\"pid\":4242,\"ppid\":4241,\"cmdline\":\"python3 train.py\"}],"
	"\"future_key\":{\"ignored\":[1,2,3]}}",
	"{\"t_s\":0.2,\"energy_j\":{\"cpu\":8.5,\"dram\":0.75,\"psys\":12},"
	"\"power_w\":{\"cpu\":60,\"dram\":5,\"psys\":80},\"cpu_util\":0.9,\"self_cpu_s\":0.002}",
	"{\"t_s\":0.3,\"energy_j\":{\"cpu\":10,\"dram\":1,\"psys\":15},"
	"\"power_w\":{\"cpu\":15,\"dram\":2.5,\"psys\":30},\"cpu_util\":0.25,\"self_cpu_s\":0.003,"
	"\"attributed_j\":{\"cpu\":9,\"dram\":0.5},"
	"\"procs\":[{\"pid\":4242,\"comm\":\"python3\",\"cpu_s\":0.5,\"rss_bytes\":90000000,"
	"\"energy_j\":{\"cpu\":7,\"dram\":0.375}},"
	"{\"pid\":4300,\"comm\":\"worker\",\"cpu_s\":0.5,\"rss_bytes\":500,\"energy_j\":{\"cpu\":2,\"dram\":0.125}}]}",
	"{\"t_s\":0.4,\"energy_j\":{\"cpu\":12.75,\"dram\":1.25},\"gaps\":[\"psys\"],"
	"\"power_w\":{\"cpu\":27.5,\"dram\":2.5},\"cpu_util\":0.5,\"self_cpu_s\":0.004}",
};

/* ---- tests ---------------------------------------------------------------------- */

/* Totals are the last complete line's cumulative values (psys: the last value
 * it had), attributed + unattributed = total, power avg = energy / duration
 * and peak = the highest sample, and everything else in the Summary. */
static void test_totals_exact(void **state)
{
	(void)state;
	char root[4096], dir[4200];
	fx_mkdtemp(root, sizeof root);
	char *meta = meta_json(1, DEVICES_MEASURED, "[]", END_FIELDS);
	write_rec(root, dir, sizeof dir, meta, RUN, WM_ARRAY_LEN(RUN));
	wm_recording *r = open_ok(dir);
	json_t *j = summary(r);

	assert_int_equal((int)num(j, "schema_version", NULL), 1);
	assert_true(num(j, "duration_s", NULL) == 12.5);
	assert_true(num(j, "energy_j", "cpu") == 12.75);
	assert_true(num(j, "energy_j", "dram") == 1.25);
	assert_true(num(j, "energy_j", "psys") == 15);
	assert_true(num(j, "energy_j", "cpu_attributed") == 9);
	assert_true(num(j, "energy_j", "dram_attributed") == 0.5);
	assert_null(get(j, "energy_j", "psys_attributed", NULL));
	assert_int_equal(json_object_size(get(j, "energy_j", NULL)), 5);
	assert_true(num(j, "unattributed_j", "cpu") == 12.75 - 9);
	assert_true(num(j, "unattributed_j", "dram") == 1.25 - 0.5);
	assert_int_equal(json_object_size(get(j, "unattributed_j", NULL)), 2);
	/* method: every key of energy_j */
	const char *keys[] = {"cpu", "dram", "psys", "cpu_attributed", "dram_attributed"};
	for (size_t i = 0; i < WM_ARRAY_LEN(keys); i++)
		assert_string_equal(str(j, "method", keys[i]), "measured");
	assert_int_equal(json_object_size(get(j, "method", NULL)), 5);
	assert_string_equal(str(j, "source", "cpu"), "rapl-powercap");
	assert_int_equal(json_object_size(get(j, "source", NULL)), 3);
	/* over the samples' span (0.4 s), not meta's 12.5 s: they stop early */
	assert_true(num(get(j, "power_w", NULL), "cpu", "avg") == 12.75 / 0.4);
	assert_true(num(j, "samples_end_s", NULL) == 0.4);
	assert_true(json_is_true(get(j, "samples_short", NULL)));
	assert_true(num(get(j, "power_w", NULL), "cpu", "peak") == 60);
	assert_true(num(get(j, "power_w", NULL), "psys", "peak") == 80);
	assert_true(num(j, "self", "cpu_s") == 0.025); /* meta's, not the last sample's */
	assert_true(fabs(num(j, "self", "cpu_pct") - 0.2) < 1e-12);
	assert_int_equal((int)num(j, "samples", NULL), 5);
	assert_true(json_is_false(get(j, "truncated", NULL)));
	assert_true(json_is_true(get(j, "complete", NULL)));
	assert_int_equal((int)num(j, "exit_status", NULL), 0);
	json_t *cmd = get(j, "command", NULL);
	assert_int_equal(json_array_size(cmd), 4);
	assert_string_equal(json_string_value(json_array_get(cmd, 3)), "0.1 x");
	assert_string_equal(str(j, "start_utc", NULL), "2026-11-25T12:00:00.000Z");

	/* keys in the documented order, whatever the input order */
	const char *order[] = {"schema_version", "duration_s", "energy_j", "unattributed_j", "method",
			       "source", "power_w", "processes", "self", "samples", "truncated",
			       "complete", "exit_status", "command", "start_utc"};
	wm_buf b;
	wm_buf_init(&b);
	assert_int_equal(wm_recording_summary_json(r, &b), 0);
	const char *prev = b.data;
	for (size_t i = 0; i < WM_ARRAY_LEN(order); i++) {
		char k[64];
		assert_true(snprintf(k, sizeof k, "\"%s\":", order[i]) < (int)sizeof k);
		const char *at = strstr(b.data, k);
		assert_non_null(at);
		assert_true(at >= prev);
		prev = at;
	}
	/* deterministic: a second rendering is byte-identical */
	wm_buf b2;
	wm_buf_init(&b2);
	assert_int_equal(wm_recording_summary_json(r, &b2), 0);
	assert_string_equal(b.data, b2.data);
	wm_buf_free(&b);
	wm_buf_free(&b2);

	char *t = text(r, 5);
	assert_non_null(strstr(t, "wattmeter: python3 train.py --lr '0.1 x'  (exit 0, 12.5 s, 5 samples)"));
	assert_non_null(strstr(t, "measured (rapl-powercap)"));
	assert_non_null(strstr(t, "12.8 J"));
	assert_non_null(strstr(t, "attributed to the measured processes: cpu 9.0 J (71%), dram 0.50 J (40%)"));
	assert_non_null(strstr(t, "measuring cost 0.03 s CPU (0.20% of one core)"));
	assert_null(strstr(t, "MODELED"));
	assert_null(strstr(t, "incomplete"));
	free(t);

	json_decref(j);
	wm_recording_free(r);
	wm_recording_free(NULL);
	free(meta);
	fx_rmtree(root);
}

/* Processes keyed by PID: cmdline from new_procs (comm when none came),
 * cumulative energy from their last line, cpu_s summed, peak RSS; the text
 * lists the top ones by energy. */
static void test_processes(void **state)
{
	(void)state;
	char root[4096], dir[4200];
	fx_mkdtemp(root, sizeof root);
	char *meta = meta_json(1, DEVICES_MEASURED, "[]", END_FIELDS);
	write_rec(root, dir, sizeof dir, meta, RUN, WM_ARRAY_LEN(RUN));
	wm_recording *r = open_ok(dir);
	json_t *j = summary(r);
	json_t *procs = get(j, "processes", NULL);
	assert_int_equal(json_object_size(procs), 2);

	json_t *p = json_object_get(procs, "4242");
	assert_non_null(p);
	assert_int_equal((int)num(p, "pid", NULL), 4242);
	assert_string_equal(str(p, "cmdline", NULL), "python3 train.py");
	assert_true(num(p, "energy_j", "cpu") == 7);
	assert_true(num(p, "energy_j", "dram") == 0.375);
	assert_null(get(p, "energy_j", "psys", NULL));
	assert_true(num(p, "cpu_s", NULL) == 1.25);
	assert_true(num(p, "peak_rss_bytes", NULL) == 90000000);

	p = json_object_get(procs, "4300");
	assert_non_null(p);
	assert_string_equal(str(p, "cmdline", NULL), "worker"); /* no new_procs: latest comm (after exec) */
	assert_true(num(p, "energy_j", "cpu") == 2);
	assert_true(num(p, "cpu_s", NULL) == 0.75);
	assert_true(num(p, "peak_rss_bytes", NULL) == 1000);

	/* processes in PID order in the JSON */
	wm_buf b;
	wm_buf_init(&b);
	assert_int_equal(wm_recording_summary_json(r, &b), 0);
	assert_true(strstr(b.data, "\"4242\":") < strstr(b.data, "\"4300\":"));
	wm_buf_free(&b);

	char *t = text(r, 1);
	assert_non_null(strstr(t, "top processes by energy:\n    4242  7.4 J  1.2 s CPU  python3 train.py\n"));
	assert_non_null(strstr(t, "and 1 more"));
	assert_null(strstr(t, "worker"));
	free(t);
	t = text(r, 0); /* no process section */
	assert_null(strstr(t, "top processes"));
	free(t);

	json_decref(j);
	wm_recording_free(r);
	free(meta);
	fx_rmtree(root);
}

/* A modelled CPU: "modeled" for the device and its attributed energy, and a
 * loud MODELED in the text with the sensor's fix. */
static void test_modeled(void **state)
{
	(void)state;
	char root[4096], dir[4200];
	fx_mkdtemp(root, sizeof root);
	char *meta = meta_json(1, DEVICES_MODELED, SENSORS_MODELED,
			       END_FIELDS ",\"warnings\":[\"counters are root-only\\u001b\",7]");
	const char *lines[] = {
		"{\"t_s\":0,\"energy_j\":{\"cpu\":0},\"cpu_util\":0,\"self_cpu_s\":0}",
		"{\"t_s\":1,\"energy_j\":{\"cpu\":3.5},\"power_w\":{\"cpu\":3.5},\"cpu_util\":0.5,"
		"\"self_cpu_s\":0.001,\"attributed_j\":{\"cpu\":3}}",
	};
	write_rec(root, dir, sizeof dir, meta, lines, WM_ARRAY_LEN(lines));
	wm_recording *r = open_ok(dir);
	json_t *j = summary(r);
	assert_string_equal(str(j, "method", "cpu"), "modeled");
	assert_string_equal(str(j, "method", "cpu_attributed"), "modeled");
	assert_string_equal(str(j, "source", "cpu"), "cpu-model");
	assert_true(num(j, "energy_j", "cpu_attributed") == 3);
	assert_null(get(j, "energy_j", "dram", NULL));
	assert_null(get(j, "energy_j", "dram_attributed", NULL));

	char *t = text(r, 5);
	assert_non_null(strstr(t, "MODELED (cpu-model"));
	assert_non_null(strstr(t, "wattmeter sensors"));
	assert_non_null(strstr(t, "rapl-powercap permission denied"));
	assert_non_null(strstr(t, "sudo chmod o+r"));
	assert_non_null(strstr(t, "  warning: counters are root-only?\n"));
	free(t);

	json_decref(j);
	wm_recording_free(r);
	free(meta);
	fx_rmtree(root);
}

/* A killed run: a cut last line is dropped (truncated), totals come from the
 * line before, complete=false, duration from the last sample, exit null. */
static void test_truncated_and_incomplete(void **state)
{
	(void)state;
	char root[4096];
	fx_mkdtemp(root, sizeof root);
	char *meta = meta_json(1, DEVICES_MEASURED, "[]", "");
	fx_write(root, "meta.json", meta);

	/* 1: cut without a newline */
	fx_write(root, "samples.jsonl",
		 "{\"t_s\":0,\"energy_j\":{\"cpu\":0,\"dram\":0}}\n"
		 "{\"t_s\":0.5,\"energy_j\":{\"cpu\":5,\"dram\":1},\"power_w\":{\"cpu\":10}}\n"
		 "{\"t_s\":1.0,\"energy_j\":{\"cpu\":9");
	wm_recording *r = open_ok(root);
	json_t *j = summary(r);
	assert_true(json_is_true(get(j, "truncated", NULL)));
	assert_true(json_is_false(get(j, "complete", NULL)));
	assert_true(json_is_null(get(j, "exit_status", NULL)));
	assert_int_equal((int)num(j, "samples", NULL), 2);
	assert_true(num(j, "energy_j", "cpu") == 5);
	assert_true(num(j, "duration_s", NULL) == 0.5);
	assert_true(num(get(j, "power_w", NULL), "cpu", "avg") == 10);
	assert_true(json_is_null(get(j, "self", "cpu_s", NULL)));
	char *t = text(r, 5);
	assert_non_null(strstr(t, "recording incomplete: the run was killed; totals up to the last complete sample"));
	assert_non_null(strstr(t, "cut"));
	assert_non_null(strstr(t, "(0.5 s, 2 samples)")); /* no exit status */
	free(t);
	json_decref(j);
	wm_recording_free(r);

	/* 2: a complete JSON object without its newline is still the line in flight */
	fx_write(root, "samples.jsonl",
		 "{\"t_s\":0,\"energy_j\":{\"cpu\":0}}\n{\"t_s\":0.5,\"energy_j\":{\"cpu\":5}}");
	r = open_ok(root);
	j = summary(r);
	assert_true(json_is_true(get(j, "truncated", NULL)));
	assert_true(num(j, "energy_j", "cpu") == 0);
	json_decref(j);
	wm_recording_free(r);

	/* 3: a last line that ends in \n but does not parse, then blank lines */
	fx_write(root, "samples.jsonl",
		 "{\"t_s\":0,\"energy_j\":{\"cpu\":0}}\n{\"t_s\":0.5,\"energy_j\":{\"cpu\":5}}\n{\"t_s\":1,\"ener\n\n");
	r = open_ok(root);
	j = summary(r);
	assert_true(json_is_true(get(j, "truncated", NULL)));
	assert_true(num(j, "energy_j", "cpu") == 5);
	assert_int_equal((int)num(j, "samples", NULL), 2);
	json_decref(j);
	wm_recording_free(r);

	/* 4: no samples at all is an error (issue 7: not "0 J"); see
	 * test_no_readable_sample for every shape of it */
	fx_write(root, "samples.jsonl", "");
	char err[1024];
	open_fails(root, -EBADMSG, err, sizeof err);
	assert_non_null(strstr(err, "empty"));
	assert_non_null(strstr(err, "did not complete"));

	free(meta);
	fx_rmtree(root);
}

/* Writes n bytes (NULs allowed) to root/name. */
static void write_bytes(const char *root, const char *name, const char *data, size_t n)
{
	char p[4200];
	int w = snprintf(p, sizeof p, "%s/%s", root, name);
	assert_true(w > 0 && (size_t)w < sizeof p);
	FILE *f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

/* A recording whose samples.jsonl has no readable sample is an error that
 * says what was found, whatever meta.json says; only a cut last line after
 * good ones is tolerated (test_truncated_and_incomplete). */
static void test_no_readable_sample(void **state)
{
	(void)state;
	char root[4096], err[1024];
	fx_mkdtemp(root, sizeof root);
	char *meta = meta_json(1, DEVICES_MEASURED, "[]", END_FIELDS); /* completed after 12.5 s */
	fx_write(root, "meta.json", meta);
	static const struct {
		const char *data;
		size_t n;
		const char *says; /* in the message */
	} cases[] = {
		{"", 0, "empty (0 bytes)"},
		{"\n\n  \n", 5, "only blank lines"},
		{"garbage\n", 8, "line 1 is not valid JSON"},
		{"\0\0\0\0\0\0\0\0\n", 9, "NUL bytes"},
		{"\x7f" "ELF\x02\x01\x01\0\0\xff\xfe", 12, "no newline"},
		{"{\"t_s\":0,\"energy_j\":{\"cpu\":1", 28, "no newline"},
		{"[1]\n", 4, "line 1 is not a JSON object"},
	};
	for (size_t i = 0; i < WM_ARRAY_LEN(cases); i++) {
		write_bytes(root, "samples.jsonl", cases[i].data, cases[i].n);
		open_fails(root, -EBADMSG, err, sizeof err);
		if (!strstr(err, cases[i].says) || !strstr(err, "no") || !strstr(err, "completed after 12.5 s") ||
		    !strstr(err, root))
			fail_msg("case %zu: message does not say '%s', the meta.json state and the folder: %s", i,
				 cases[i].says, err);
	}
	/* the same file with one good line before the cut one is fine */
	static const char good_then_cut[] = "{\"t_s\":0,\"energy_j\":{\"cpu\":1}}\ngarbage";
	write_bytes(root, "samples.jsonl", good_then_cut, sizeof good_then_cut - 1);
	wm_recording *r = open_ok(root);
	wm_recording_free(r);
	free(meta);
	fx_rmtree(root);
}

/* Damage before the last line is an error naming the line. */
static void test_malformed_middle_line(void **state)
{
	(void)state;
	char root[4096], err[1024];
	fx_mkdtemp(root, sizeof root);
	char *meta = meta_json(1, DEVICES_MEASURED, "[]", END_FIELDS);
	fx_write(root, "meta.json", meta);

	static const char *const bad[] = {
		"{\"t_s\":1,\"energy_j\":{\"cpu\":",   /* not JSON */
		"[1,2,3]",                            /* not an object */
		"{\"energy_j\":{\"cpu\":1}}",         /* no t_s */
		"{\"t_s\":\"1\"}",                    /* t_s not a number */
		"{\"t_s\":1} trailing",               /* garbage after the object */
	};
	for (size_t i = 0; i < WM_ARRAY_LEN(bad); i++) {
		char content[512];
		int n = snprintf(content, sizeof content,
				 "{\"t_s\":0,\"energy_j\":{\"cpu\":0}}\n\n%s\n{\"t_s\":2,\"energy_j\":{\"cpu\":2}}\n",
				 bad[i]);
		assert_true(n > 0 && (size_t)n < sizeof content);
		fx_write(root, "samples.jsonl", content);
		open_fails(root, -EBADMSG, err, sizeof err);
		if (!strstr(err, "samples.jsonl line 3 "))
			fail_msg("case %zu: message does not name line 3: %s", i, err);
		assert_non_null(strstr(err, root));
	}
	free(meta);
	fx_rmtree(root);
}

/* No meta.json, no folder, a damaged meta.json, no samples.jsonl. */
static void test_missing_meta(void **state)
{
	(void)state;
	char root[4096], path[4200], err[1024];
	fx_mkdtemp(root, sizeof root);

	open_fails(root, -ENOENT, err, sizeof err);
	assert_non_null(strstr(err, "meta.json not found"));
	assert_non_null(strstr(err, "wattmeter run -o"));
	assert_non_null(strstr(err, root));

	assert_true(snprintf(path, sizeof path, "%s/nope", root) < (int)sizeof path);
	open_fails(path, -ENOENT, err, sizeof err);
	assert_non_null(strstr(err, "does not exist"));

	fx_write(root, "meta.json", "{\"schema_version\":1,");
	open_fails(root, -EBADMSG, err, sizeof err);
	assert_non_null(strstr(err, "meta.json is not valid JSON"));

	fx_write(root, "meta.json", "{\"schema\":\"something.else\",\"schema_version\":1}");
	open_fails(root, -EBADMSG, err, sizeof err);
	assert_non_null(strstr(err, "not a wattmeter recording"));

	fx_write(root, "meta.json", "{\"schema\":\"wattmeter.recording\"}");
	open_fails(root, -EBADMSG, err, sizeof err);
	assert_non_null(strstr(err, "schema_version"));

	fx_write(root, "meta.json", "{\"schema\":\"wattmeter.recording\",\"schema_version\":1,\"devices\":[{\"name\":\"cpu\"}]}");
	open_fails(root, -ENOENT, err, sizeof err);
	assert_non_null(strstr(err, "no samples.jsonl"));

	/* the public wrapper passes the message on */
	char *s = wm_report_json(root, err, sizeof err);
	assert_null(s);
	assert_non_null(strstr(err, "no samples.jsonl"));
	fx_rmtree(root);
}

/* A recording from a newer wattmeter is refused, naming both versions. */
static void test_newer_schema(void **state)
{
	(void)state;
	char root[4096], dir[4200], err[1024];
	fx_mkdtemp(root, sizeof root);
	char *meta = meta_json(WM_SCHEMA_VERSION + 1, DEVICES_MEASURED, "[]", END_FIELDS);
	write_rec(root, dir, sizeof dir, meta, RUN, 1);
	open_fails(dir, -ENOTSUP, err, sizeof err);
	char v_new[64], v_ours[64];
	assert_true(snprintf(v_new, sizeof v_new, "version %d", WM_SCHEMA_VERSION + 1) < (int)sizeof v_new);
	assert_true(snprintf(v_ours, sizeof v_ours, "version %d", WM_SCHEMA_VERSION) < (int)sizeof v_ours);
	assert_non_null(strstr(err, v_new));
	assert_non_null(strstr(err, v_ours));
	assert_non_null(strstr(err, "upgrade wattmeter"));
	free(meta);
	fx_rmtree(root);
}

/* Columns: one array per series, all as long as the samples, null where a
 * line lacked the value (attribution only on process lines). */
static void test_columns(void **state)
{
	(void)state;
	char root[4096], dir[4200];
	fx_mkdtemp(root, sizeof root);
	char *meta = meta_json(1, DEVICES_MEASURED, "[]", END_FIELDS);
	write_rec(root, dir, sizeof dir, meta, RUN, WM_ARRAY_LEN(RUN));
	wm_recording *r = open_ok(dir);
	wm_buf b;
	wm_buf_init(&b);
	assert_int_equal(wm_recording_columns_json(r, &b), 0);
	json_error_t je;
	json_t *j = json_loadb(b.data, b.len, 0, &je);
	if (!j)
		fail_msg("columns are not JSON: %s", je.text);
	const char *want[] = {"t_s", "energy_j.cpu", "energy_j.dram", "energy_j.psys", "power_w.cpu",
			      "power_w.dram", "power_w.psys", "attributed_j.cpu", "attributed_j.dram",
			      "cpu_util", "self_cpu_s", "mem_used_bytes"};
	assert_int_equal(json_object_size(j), WM_ARRAY_LEN(want));
	for (size_t i = 0; i < WM_ARRAY_LEN(want); i++) {
		json_t *col = json_object_get(j, want[i]);
		if (!json_is_array(col))
			fail_msg("column %s missing", want[i]);
		assert_int_equal(json_array_size(col), WM_ARRAY_LEN(RUN));
	}
	json_t *t = json_object_get(j, "t_s");
	assert_true(json_number_value(json_array_get(t, 1)) == 0.1);
	json_t *a = json_object_get(j, "attributed_j.cpu");
	assert_true(json_is_null(json_array_get(a, 0)));
	assert_true(json_number_value(json_array_get(a, 1)) == 2);
	assert_true(json_is_null(json_array_get(a, 2)));
	assert_true(json_number_value(json_array_get(a, 3)) == 9);
	json_t *psys = json_object_get(j, "energy_j.psys");
	assert_true(json_is_null(json_array_get(psys, 4))); /* the gap */
	json_t *p = json_object_get(j, "power_w.cpu");
	assert_true(json_is_null(json_array_get(p, 0))); /* the baseline has no power */
	assert_true(json_number_value(json_array_get(p, 2)) == 60);
	json_decref(j);
	wm_buf_free(&b);

	/* the public wrappers give the same renderings */
	char err[512];
	char *s = wm_report_columns_json(dir, err, sizeof err);
	assert_non_null(s);
	assert_non_null(strstr(s, "\"energy_j.cpu\":[0,2.5,8.5,10,12.75]"));
	free(s);
	s = wm_report_text(dir, 3, err, sizeof err);
	assert_non_null(s);
	assert_non_null(strstr(s, "wattmeter: python3"));
	free(s);
	s = wm_report_json(dir, err, sizeof err);
	assert_non_null(s);
	assert_non_null(strstr(s, "\"samples\":5"));
	free(s);

	wm_recording_free(r);
	free(meta);
	fx_rmtree(root);
}

/* The writer never writes into an earlier recording, nor where it cannot. */
static void test_recorder_refuses(void **state)
{
	(void)state;
	char root[4096], dir[4200], err[1024];
	fx_mkdtemp(root, sizeof root);
	char *meta = meta_json(1, DEVICES_MEASURED, "[]", END_FIELDS);
	write_rec(root, dir, sizeof dir, meta, RUN, 2);

	wm_recorder w;
	err[0] = '\0';
	assert_int_equal(wm_recorder_open(&w, dir, err, sizeof err), -EEXIST);
	assert_non_null(strstr(err, dir));
	assert_non_null(strstr(err, "-o"));
	assert_int_equal(w.dir_fd, -1);
	assert_int_equal(w.samples_fd, -1);
	wm_recorder_close(&w);
	/* the earlier recording is intact */
	wm_recording *r = open_ok(dir);
	json_t *j = summary(r);
	assert_int_equal((int)num(j, "samples", NULL), 2);
	json_decref(j);
	wm_recording_free(r);

	/* /proc/self cannot hold a recording, not even for root */
	err[0] = '\0';
	int rc = wm_recorder_open(&w, "/proc/self/wattmeter-test-rec", err, sizeof err);
	assert_true(rc < 0);
	assert_non_null(strstr(err, "/proc/self/wattmeter-test-rec"));
	wm_recorder_close(&w);

	/* a read-only folder, where permissions bind (not for root) */
	if (geteuid() != 0) {
		fx_mkdir(root, "ro");
		fx_chmod(root, "ro", 0555);
		assert_true(snprintf(dir, sizeof dir, "%s/ro", root) < (int)sizeof dir);
		err[0] = '\0';
		assert_int_equal(wm_recorder_open(&w, dir, err, sizeof err), -EACCES);
		assert_non_null(strstr(err, "writable"));
		wm_recorder_close(&w);
		fx_chmod(root, "ro", 0755);
	}
	free(meta);
	fx_rmtree(root);
}

/* wm_buf_json_str output always parses, and round-trips what is valid. */
static void test_json_str_escaping(void **state)
{
	(void)state;
	static const struct {
		const char *in, *want; /* want: what jansson reads back */
	} cases[] = {
		{"plain", "plain"},
		{"quote \" backslash \\ slash /", "quote \" backslash \\ slash /"},
		{"\n\t\r\b\f\x01\x1f\x7f", "\n\t\r\b\f\x01\x1f\x7f"},
		{"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
		/* invalid UTF-8 bytes come back as U+00XX */
		{"a\xff" "b", "a\xc3\xbf" "b"},
		{"\xc3", "\xc3\x83"},                      /* a cut sequence */
		{"\xc0\xaf", "\xc3\x80\xc2\xaf"},          /* an overlong '/' */
		{"\xed\xa0\x80", "\xc3\xad\xc2\xa0\xc2\x80"}, /* a surrogate */
		{"", ""},
	};
	for (size_t i = 0; i < WM_ARRAY_LEN(cases); i++) {
		wm_buf b;
		wm_buf_init(&b);
		assert_int_equal(wm_buf_json_str(&b, cases[i].in), 0);
		json_error_t je;
		json_t *j = json_loadb(b.data, b.len, JSON_DECODE_ANY, &je);
		if (!j)
			fail_msg("case %zu: %s does not parse: %s", i, b.data, je.text);
		assert_true(json_is_string(j));
		assert_string_equal(json_string_value(j), cases[i].want);
		json_decref(j);
		wm_buf_free(&b);
	}
}

/* Strings with control characters and invalid UTF-8 from a recording come
 * out of the summary as valid JSON and out of the text without control
 * characters. */
static void test_hostile_strings(void **state)
{
	(void)state;
	char root[4096];
	fx_mkdtemp(root, sizeof root);
	fx_write(root, "meta.json",
		 "{\"schema_version\":1,\"command\":[\"evil\\u001b[2J\",\"x\"],"
		 "\"devices\":[{\"name\":\"cpu\\\"\\n\",\"method\":\"measured\",\"source\":\"s\\u0007\"}]}");
	fx_write(root, "samples.jsonl",
		 "{\"t_s\":0,\"energy_j\":{\"cpu\\\"\\n\":1}}\n"
		 "{\"t_s\":1,\"energy_j\":{\"cpu\\\"\\n\":2},\"procs\":[{\"pid\":7,\"comm\":\"a\\u001bb\","
		 "\"energy_j\":{\"cpu\\\"\\n\":1}},{\"pid\":-3},{\"pid\":\"8\"},{\"pid\":9.5}]}\n");
	wm_recording *r = open_ok(root);
	json_t *j = summary(r);
	assert_true(num(j, "energy_j", "cpu\"\n") == 2);
	assert_null(get(j, "energy_j", "cpu\"\n_attributed", NULL)); /* not cpu or dram */
	assert_true(num(get(j, "processes", "7", NULL), "energy_j", "cpu\"\n") == 1);
	assert_string_equal(str(get(j, "processes", NULL), "7", "cmdline"), "a\x1b" "b");
	assert_int_equal(json_object_size(get(j, "processes", NULL)), 1); /* bad pids skipped */
	assert_true(json_is_null(get(j, "start_utc", NULL)));
	char *t = text(r, 5);
	for (const char *p = t; *p; p++)
		assert_true(*p == '\n' || (unsigned char)*p >= 0x20);
	free(t);
	json_decref(j);
	wm_recording_free(r);
	fx_rmtree(root);
}

/* Large values: kJ and Wh in the text. */
static void test_text_units(void **state)
{
	(void)state;
	char root[4096];
	fx_mkdtemp(root, sizeof root);
	/* 4.5 GJ takes a day at 52 kW: a step no device draws would be damage */
	char *meta = meta_json(1, DEVICES_MEASURED, "[]", ",\"duration_s\":86400,\"complete\":true");
	fx_write(root, "meta.json", meta);
	fx_write(root, "samples.jsonl",
		 "{\"t_s\":0,\"energy_j\":{\"cpu\":0,\"dram\":0,\"psys\":0}}\n"
		 "{\"t_s\":86400,\"energy_j\":{\"cpu\":7200,\"dram\":12345.5,\"psys\":4.5e9},"
		 "\"power_w\":{\"cpu\":1500,\"dram\":0.25,\"psys\":0}}\n");
	wm_recording *r = open_ok(root);
	char *t = text(r, 5);
	assert_non_null(strstr(t, "7.20 kJ (2.0 Wh)"));
	assert_non_null(strstr(t, "12.35 kJ (3.4 Wh)"));
	assert_non_null(strstr(t, "4.50 GJ (1.25 MWh)"));
	assert_non_null(strstr(t, "1.50 kW"));
	assert_non_null(strstr(t, "0.25 W"));
	/* the table is aligned: "method" and every "measured (" start at one column */
	const char *head = strstr(t, "\n  device");
	assert_non_null(head);
	long want = strstr(head, "method") - (head + 1);
	int rows = 0;
	for (const char *l = strchr(head + 1, '\n'); l && l[1]; l = strchr(l + 1, '\n')) {
		const char *end = strchr(l + 1, '\n');
		const char *m = strstr(l + 1, "measured (");
		if (!m || (end && m > end))
			continue;
		assert_int_equal(m - (l + 1), want);
		rows++;
	}
	assert_int_equal(rows, 3);
	free(t);
	wm_recording_free(r);
	free(meta);
	fx_rmtree(root);
}

/* The scanner's numbers are libc's: each of the shapes below, printed as
 * the writer prints them (%.6f, %.3f, %.4f, integers) and as others may
 * (%.17g, exponents, long fractions, denormals, -0), gives strtod's double
 * bit for bit (strtoll's integer), whatever its length around the scanner's
 * eight-byte steps; the number's end is where strtod stops. */
static void check_number(const char *text)
{
	size_t n = strlen(text);
	double v = NAN;
	bool integer = false;
	int64_t iv = 0;
	/* the number followed by the line's rest, as in a line */
	char line[128];
	(void)snprintf(line, sizeof line, "%s},\"t\":1}\n", text);
	const char *end = wm_scan_number(line, line + strlen(line), &v, &integer, &iv);
	if (!end) {
		/* refused: only what jansson might read otherwise */
		assert_true(n > 19 || strpbrk(text, "eE") || strlen(text) >= 64 || isinf(strtod(text, NULL)));
		return;
	}
	assert_int_equal(end - line, n);
	char *libc_end;
	double want = strtod(text, &libc_end);
	assert_int_equal(libc_end - text, n);
	assert_true(integer == !strpbrk(text, ".eE"));
	if (integer) {
		/* jansson's integer: "-0" is 0 */
		assert_int_equal(iv, strtoll(text, NULL, 10));
		want = (double)strtoll(text, NULL, 10);
	}
	if (memcmp(&want, &v, sizeof v) != 0)
		fail_msg("%s: scanned %.17g, libc %.17g", text, v, want);
}

static void test_scan_numbers_are_libc(void **state)
{
	(void)state;
	static const char *const fixed[] = {"0", "-0", "0.0", "-0.0", "-0.000000", "1", "12345678", "123456789",
					    "1234567812345678", "123456781234567812", "0.1", "0.3",
					    "0.30000000000000004", "9007199254740992.0", "9007199254740993.0",
					    "9007199254740993", "4.9406564584124654e-324", "2.2250738585072014e-308",
					    "1.7976931348623157e308", "1e22", "1e23", "1.5E+1", "2.5e-1",
					    "0.1000000000000000055511151231257827", "12345678.12345678",
					    "99999.99999999999", "0.0000000000000000000001", "123456789012345.678901",
					    "-604800.000000", "8000409600", "0.4100", "1.000"};
	for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
		check_number(fixed[i]);
	/* the writer's shapes over many magnitudes, and %.17g of the same */
	uint64_t x = 88172645463325252ull;
	char buf[64];
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		double mag = pow(10, (double)(x % 19) - 4);
		double v = (double)(x >> 11) / 9007199254740992.0 * mag;
		switch (i % 7) {
		case 0:
			(void)snprintf(buf, sizeof buf, "%.6f", v);
			break;
		case 1:
			(void)snprintf(buf, sizeof buf, "%.3f", v);
			break;
		case 2:
			(void)snprintf(buf, sizeof buf, "%.4f", v);
			break;
		case 3:
			(void)snprintf(buf, sizeof buf, "%.17g", v);
			break;
		case 4:
			(void)snprintf(buf, sizeof buf, "%.0f", v);
			break;
		case 5:
			(void)snprintf(buf, sizeof buf, "%.9f", v);
			break;
		default:
			(void)snprintf(buf, sizeof buf, "-%.6f", v);
			break;
		}
		check_number(buf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_totals_exact),
		cmocka_unit_test(test_scan_numbers_are_libc),
		cmocka_unit_test(test_processes),
		cmocka_unit_test(test_modeled),
		cmocka_unit_test(test_truncated_and_incomplete),
		cmocka_unit_test(test_malformed_middle_line),
		cmocka_unit_test(test_no_readable_sample),
		cmocka_unit_test(test_missing_meta),
		cmocka_unit_test(test_newer_schema),
		cmocka_unit_test(test_columns),
		cmocka_unit_test(test_recorder_refuses),
		cmocka_unit_test(test_json_str_escaping),
		cmocka_unit_test(test_hostile_strings),
		cmocka_unit_test(test_text_units),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
