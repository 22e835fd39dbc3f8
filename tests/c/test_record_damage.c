/* test_record_damage.c — damaged recordings read back (record.h, issue 14
 * item 6 and issue 15 item 6): every shape is an error naming the line and
 * the value, or a flagged figure, never a valid-looking number.
 *
 * Recordings are written byte by byte (fx_write): a real writer cannot make
 * these shapes. The truths are the bytes written: which line is damaged,
 * what energy a span holds, how long the samples run.
 */
#include <errno.h>
#include <fcntl.h>
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
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"
#include "recording/carbon.h"
#include "recording/html.h"
#include "recording/record.h"
#include "recording/record_priv.h"

/* ---- helpers ---------------------------------------------------------------- */

/* meta.json with these devices and these end fields ("" for a killed run) */
static char *meta(const char *devices, const char *end)
{
	wm_buf b;
	wm_buf_init(&b);
	assert_int_equal(wm_buf_printf(&b,
				       "{\"schema\":\"wattmeter.recording\",\"schema_version\":1,"
				       "\"command\":[\"train\"],\"period_s\":0.1,\"devices\":%s%s}",
				       devices, end),
			 0);
	return b.data;
}

#define CPU_PSYS                                                                                    \
	"[{\"name\":\"cpu\",\"method\":\"measured\",\"source\":\"rapl-powercap\",\"attribution\":\"cpu-ticks\"}," \
	"{\"name\":\"psys\",\"method\":\"measured\",\"source\":\"rapl-powercap\",\"attribution\":\"none\"}]"
#define DONE(d) ",\"duration_s\":" #d ",\"exit_status\":0,\"complete\":true"

static void put_rec(const char *root, const char *meta_json, const char *samples)
{
	fx_write(root, "meta.json", meta_json);
	fx_write(root, "samples.jsonl", samples);
}

/* Opening fails with -EBADMSG and a message holding every one of the
 * NULL-terminated strings. */
static void damaged(const char *root, ...)
{
	wm_recording *r = (wm_recording *)0x1;
	char err[1024] = "";
	int rc = wm_recording_open(root, &r, err, sizeof err);
	if (rc != -EBADMSG)
		fail_msg("want -EBADMSG, got %d (%s)", rc, err);
	assert_null(r);
	va_list ap;
	va_start(ap, root);
	for (const char *want; (want = va_arg(ap, const char *));)
		if (!strstr(err, want))
			fail_msg("the message does not say \"%s\": %s", want, err);
	va_end(ap);
}

static wm_recording *open_ok(const char *dir)
{
	wm_recording *r = NULL;
	char err[1024] = "";
	int rc = wm_recording_open(dir, &r, err, sizeof err);
	if (rc)
		fail_msg("wm_recording_open(%s): %d %s", dir, rc, err);
	return r;
}

static json_t *summary(const wm_recording *r)
{
	wm_buf b;
	wm_buf_init(&b);
	assert_int_equal(wm_recording_summary_json(r, &b), 0);
	json_error_t je;
	json_t *j = json_loadb(b.data, b.len, 0, &je);
	if (!j)
		fail_msg("summary is not JSON: %s", je.text);
	wm_buf_free(&b);
	return j;
}

static char *text(const wm_recording *r)
{
	wm_buf b;
	wm_buf_init(&b);
	int rc = wm_recording_summary_text(r, 5, &b);
	if (rc)
		fail_msg("the text summary fails: %s", strerror(-rc));
	return b.data;
}

static double num_at(const json_t *j, const char *a, const char *b, const char *c)
{
	const json_t *v = json_object_get(j, a);
	if (b)
		v = json_object_get(v, b);
	if (c)
		v = json_object_get(v, c);
	if (!json_is_number(v))
		return NAN;
	return json_number_value(v);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- values no recording holds ------------------------------------------------- */

/* An energy that drops (100 J then 0.5 J) or is negative: cumulative
 * counters never do either. Before: printed as they were. */
static void test_energy_that_drops_or_is_negative_is_damage(void **state)
{
	(void)state;
	char root[4096];
	fx_mkdtemp(root, sizeof root);
	char *m = meta(CPU_PSYS, DONE(0.3));
	put_rec(root, m,
		"{\"t_s\":0,\"energy_j\":{\"cpu\":0,\"psys\":0}}\n"
		"{\"t_s\":0.1,\"energy_j\":{\"cpu\":5,\"psys\":8}}\n"
		"{\"t_s\":0.2,\"energy_j\":{\"cpu\":0.5,\"psys\":9}}\n"
		"{\"t_s\":0.3,\"energy_j\":{\"cpu\":6,\"psys\":10}}\n");
	damaged(root, "samples.jsonl line 3", "energy_j.cpu = 0.5 J", "down from 5 J", "damaged", NULL);

	put_rec(root, m,
		"{\"t_s\":0,\"energy_j\":{\"cpu\":0,\"psys\":0}}\n"
		"{\"t_s\":0.1,\"energy_j\":{\"cpu\":2,\"psys\":-1000}}\n");
	damaged(root, "line 2", "energy_j.psys = -1000 J", NULL);

	/* attributed energy is cumulative too, and a process's energy is never
	 * negative */
	put_rec(root, m,
		"{\"t_s\":0,\"energy_j\":{\"cpu\":0,\"psys\":0}}\n"
		"{\"t_s\":0.1,\"energy_j\":{\"cpu\":2,\"psys\":3},\"attributed_j\":{\"cpu\":1.5}}\n"
		"{\"t_s\":0.2,\"energy_j\":{\"cpu\":4,\"psys\":6},\"attributed_j\":{\"cpu\":1}}\n");
	damaged(root, "line 3", "attributed_j.cpu", "down", NULL);
	put_rec(root, m,
		"{\"t_s\":0,\"energy_j\":{\"cpu\":0,\"psys\":0}}\n"
		"{\"t_s\":0.1,\"energy_j\":{\"cpu\":2,\"psys\":3},"
		"\"procs\":[{\"pid\":7,\"cpu_s\":0.1,\"energy_j\":{\"cpu\":-3}}]}\n");
	damaged(root, "line 2", "process 7", "-3 J", NULL);
	free(m);
	fx_rmtree(root);
}

/* A device name from the file reaches the message with its control
 * characters shown as '?': the message goes to a terminal. */
static void test_damage_messages_do_not_pass_control_characters(void **state)
{
	(void)state;
	char root[4096], err[1024];
	fx_mkdtemp(root, sizeof root);
	char *m = meta("[{\"name\":\"cpu\\u001b]0;pwned\\u0007\"}]", "");
	put_rec(root, m,
		"{\"t_s\":0,\"energy_j\":{\"cpu\\u001b]0;pwned\\u0007\":0}}\n"
		"{\"t_s\":0.1,\"energy_j\":{\"cpu\\u001b]0;pwned\\u0007\":-1}}\n");
	wm_recording *r = NULL;
	assert_int_equal(wm_recording_open(root, &r, err, sizeof err), -EBADMSG);
	assert_non_null(strstr(err, "energy_j.cpu?]0;pwned? = -1 J"));
	assert_null(strchr(err, '\033'));
	assert_null(strchr(err, '\007'));
	free(m);
	fx_rmtree(root);
}

/* t_s going back: before, a killed run said "duration -100.0 s". */
static void test_time_going_back_is_damage(void **state)
{
	(void)state;
	char root[4096];
	fx_mkdtemp(root, sizeof root);
	char *m = meta(CPU_PSYS, ""); /* killed: its duration is its samples' */
	put_rec(root, m,
		"{\"t_s\":0,\"energy_j\":{\"cpu\":0,\"psys\":0}}\n"
		"{\"t_s\":100,\"energy_j\":{\"cpu\":10,\"psys\":20}}\n"
		"{\"t_s\":-100,\"energy_j\":{\"cpu\":11,\"psys\":21}}\n");
	damaged(root, "line 3", "t_s = -100", NULL);
	put_rec(root, m,
		"{\"t_s\":0,\"energy_j\":{\"cpu\":0,\"psys\":0}}\n"
		"{\"t_s\":100,\"energy_j\":{\"cpu\":10,\"psys\":20}}\n"
		"{\"t_s\":50,\"energy_j\":{\"cpu\":11,\"psys\":21}}\n");
	damaged(root, "line 3", "t_s = 50 s, back from 100 s", NULL);
	free(m);
	fx_rmtree(root);
}

/* meta.json "devices" of the wrong type, empty, or with unnamed entries:
 * before, an empty table and exit 0, as if nothing had been measured. */
static void test_devices_not_a_list_of_named_devices_is_damage(void **state)
{
	(void)state;
	char root[4096];
	fx_mkdtemp(root, sizeof root);
	static const struct {
		const char *devices, *says;
	} cases[] = {
		{"\"cpu\"", "\"devices\" is a string"},
		{"[]", "\"devices\" is empty"},
		{"{\"name\":\"cpu\"}", "\"devices\" is an object"},
		{"null", "\"devices\" is null"},
		{"[\"cpu\"]", "\"devices\"[0] is not an object"},
		{"[{\"name\":\"cpu\"},{\"method\":\"measured\"}]", "\"devices\"[1] is without a \"name\""},
	};
	for (size_t i = 0; i < WM_ARRAY_LEN(cases); i++) {
		char *m = meta(cases[i].devices, DONE(0.1));
		put_rec(root, m, "{\"t_s\":0,\"energy_j\":{\"cpu\":0}}\n{\"t_s\":0.1,\"energy_j\":{\"cpu\":1}}\n");
		damaged(root, "meta.json", cases[i].says, "damaged", NULL);
		free(m);
	}
	/* the key missing altogether */
	fx_write(root, "meta.json", "{\"schema\":\"wattmeter.recording\",\"schema_version\":1}");
	damaged(root, "\"devices\" is missing", NULL);
	fx_rmtree(root);
}

/* 1.7e308 J: before, the text renderer failed with "Invalid argument" while
 * --json printed it. A step no device draws (10 MJ in 0.1 s) is damage too. */
static void test_values_no_device_reaches_are_damage(void **state)
{
	(void)state;
	char root[4096];
	fx_mkdtemp(root, sizeof root);
	char *m = meta(CPU_PSYS, DONE(0.2));
	put_rec(root, m,
		"{\"t_s\":0,\"energy_j\":{\"cpu\":0,\"psys\":0}}\n"
		"{\"t_s\":0.1,\"energy_j\":{\"cpu\":1.7e308,\"psys\":1}}\n");
	damaged(root, "line 2", "energy_j.cpu = 1.7e+308 J", NULL);
	put_rec(root, m,
		"{\"t_s\":0,\"energy_j\":{\"cpu\":0,\"psys\":0}}\n"
		"{\"t_s\":0.1,\"energy_j\":{\"cpu\":1e7,\"psys\":1}}\n");
	damaged(root, "line 2", "rise by 1e+07 J in 0.1 s", "no device draws over 100 kW", NULL);
	put_rec(root, m,
		"{\"t_s\":0,\"energy_j\":{\"cpu\":0,\"psys\":0}}\n"
		"{\"t_s\":0.1,\"energy_j\":{\"cpu\":1,\"psys\":1},\"power_w\":{\"psys\":1.7e308}}\n");
	damaged(root, "line 2", "power_w.psys", NULL);
	put_rec(root, m,
		"{\"t_s\":0,\"energy_j\":{\"cpu\":0,\"psys\":0}}\n"
		"{\"t_s\":0.1,\"energy_j\":{\"cpu\":1,\"psys\":1},"
		"\"procs\":[{\"pid\":9,\"cpu_s\":1.7e308}]}\n");
	damaged(root, "line 2", "process 9", "cpu_s", NULL);
	put_rec(root, m,
		"{\"t_s\":0,\"energy_j\":{\"cpu\":0,\"psys\":0}}\n"
		"{\"t_s\":1.7e308,\"energy_j\":{\"cpu\":1,\"psys\":1}}\n");
	damaged(root, "line 2", "t_s = 1.7e+308", NULL);
	free(m);
	fx_rmtree(root);
}

/* meta's duration shorter than its samples (1e-300 s: before, "1e+287 PW"),
 * and a first line at 1e-300 s carrying energy. */
static void test_durations_that_cannot_hold_the_samples_are_damage(void **state)
{
	(void)state;
	char root[4096];
	fx_mkdtemp(root, sizeof root);
	char *m = meta(CPU_PSYS, DONE(1e-300));
	put_rec(root, m,
		"{\"t_s\":0,\"energy_j\":{\"cpu\":0,\"psys\":0}}\n"
		"{\"t_s\":0.1,\"energy_j\":{\"cpu\":1,\"psys\":2}}\n");
	damaged(root, "meta.json says the run lasted 1e-300 s", "samples run to 0.1 s", NULL);
	free(m);
	m = meta(CPU_PSYS, "");
	put_rec(root, m, "{\"t_s\":1e-300,\"energy_j\":{\"cpu\":1,\"psys\":2}}\n");
	damaged(root, "line 1", "no device draws", NULL);
	free(m);
	m = meta(CPU_PSYS, ",\"duration_s\":-5,\"complete\":true");
	put_rec(root, m, "{\"t_s\":0,\"energy_j\":{\"cpu\":0,\"psys\":0}}\n");
	damaged(root, "\"duration_s\" is not a duration", NULL);
	free(m);
	fx_rmtree(root);
}

/* ---- samples cut short under a complete meta.json (issue 15 item 6) ----------- */

/* 175.1 J by 3.5 s, meta says 5.1 s: before, 34.3 W (over 5.1 s); the truth
 * is 50 W over the span the samples cover, and the summary says they stop
 * early. */
static void test_samples_cut_short_average_over_their_span(void **state)
{
	(void)state;
	char root[4096];
	fx_mkdtemp(root, sizeof root);
	char *m = meta(CPU_PSYS, DONE(5.1));
	wm_buf s;
	wm_buf_init(&s);
	wm_buf_puts(&s, "{\"t_s\":0,\"energy_j\":{\"cpu\":0,\"psys\":0}}\n");
	for (int i = 1; i <= 35; i++) /* 50 W on cpu, 80 W on psys, to 3.5 s; no power_w, so 50.0 W is the average */
		wm_buf_printf(&s, "{\"t_s\":%.1f,\"energy_j\":{\"cpu\":%.6f,\"psys\":%.6f}}\n",
			      i * 0.1, i * 0.1 * 50.0 + (i == 35 ? 0.1 : 0), i * 0.1 * 80.0);
	put_rec(root, m, s.data);
	wm_recording *r = open_ok(root);
	json_t *j = summary(r);
	assert_true(fabs(num_at(j, "energy_j", "cpu", NULL) - 175.1) < 1e-9);
	assert_true(fabs(num_at(j, "power_w", "cpu", "avg") - 175.1 / 3.5) < 1e-9);
	assert_true(fabs(num_at(j, "power_w", "psys", "avg") - 80.0) < 1e-9);
	assert_true(num_at(j, "duration_s", NULL, NULL) == 5.1); /* the run's, as meta says */
	assert_true(num_at(j, "samples_end_s", NULL, NULL) == 3.5);
	assert_true(json_is_true(json_object_get(j, "samples_short")));
	char *t = text(r);
	if (!strstr(t, "the samples stop at 3.5 s, before the run's end at 5.1 s") || !strstr(t, "50.0 W"))
		fail_msg("the text does not say where the samples stop, or averages over 5.1 s:\n%s", t);
	free(t);
	json_decref(j);
	wm_recording_free(r);

	/* samples to the end: no note */
	put_rec(root, m,
		"{\"t_s\":0,\"energy_j\":{\"cpu\":0,\"psys\":0}}\n"
		"{\"t_s\":5.1,\"energy_j\":{\"cpu\":255,\"psys\":408}}\n");
	r = open_ok(root);
	j = summary(r);
	assert_true(json_is_false(json_object_get(j, "samples_short")));
	assert_true(fabs(num_at(j, "power_w", "cpu", "avg") - 50.0) < 1e-9);
	t = text(r);
	assert_null(strstr(t, "samples stop"));
	free(t);
	json_decref(j);
	wm_recording_free(r);

	/* a single baseline line: before, "0.0 J 0.0 W" and no note. No interval
	 * was closed: no average, and the note says the samples stop at 0 */
	put_rec(root, m, "{\"t_s\":0,\"energy_j\":{\"cpu\":0,\"psys\":0}}\n");
	r = open_ok(root);
	j = summary(r);
	assert_true(json_is_null(json_object_get(json_object_get(json_object_get(j, "power_w"), "cpu"), "avg")));
	assert_true(json_is_true(json_object_get(j, "samples_short")));
	t = text(r);
	if (!strstr(t, "the samples stop at 0.0 s, before the run's end at 5.1 s") || strstr(t, "0.0 W"))
		fail_msg("a lone baseline line is shown as a figure:\n%s", t);
	free(t);
	json_decref(j);
	wm_recording_free(r);
	wm_buf_free(&s);
	free(m);
	fx_rmtree(root);
}

/* ---- files that are not recordings ------------------------------------------- */

/* A FIFO as samples.jsonl or meta.json: before, report hung (open blocks
 * until a writer comes). /dev/zero: before, memory grew without bound. Both
 * are refused at once. */
static void test_fifo_and_character_device_are_refused_at_once(void **state)
{
	(void)state;
	char root[4096], p[4200], err[1024];
	fx_mkdtemp(root, sizeof root);
	char *m = meta(CPU_PSYS, DONE(0.1));
	fx_write(root, "meta.json", m);
	assert_true(snprintf(p, sizeof p, "%s/samples.jsonl", root) < (int)sizeof p);
	assert_int_equal(mkfifo(p, 0600), 0);
	wm_recording *r = NULL;
	double t0 = now_s();
	assert_int_equal(wm_recording_open(root, &r, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "samples.jsonl is a FIFO"));
	assert_non_null(strstr(err, "not a regular file"));
	assert_true(now_s() - t0 < 5); /* not a timing target: a hang would never return */

	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink("/dev/zero", p), 0);
	assert_int_equal(wm_recording_open(root, &r, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "samples.jsonl is a character device"));

	assert_true(snprintf(p, sizeof p, "%s/meta.json", root) < (int)sizeof p);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(wm_recording_open(root, &r, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "meta.json is a FIFO"));
	assert_null(r);
	free(m);
	fx_rmtree(root);
}

/* A line longer than the bound (a 64 MiB file of NUL bytes without a
 * newline, sparse, so the test writes nothing) and an oversized meta.json
 * are damage, read in bounded chunks. Before: getline grew a buffer as big
 * as the file. */
static void test_lines_and_meta_are_bounded(void **state)
{
	(void)state;
	char root[4096], p[4200];
	fx_mkdtemp(root, sizeof root);
	char *m = meta(CPU_PSYS, "");
	fx_write(root, "meta.json", m);
	assert_true(snprintf(p, sizeof p, "%s/samples.jsonl", root) < (int)sizeof p);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)64 << 20), 0);
	close(fd);
	damaged(root, "line 1 is longer than 32 MiB", NULL);

	/* a good first line, then the long one */
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	static const char first[] = "{\"t_s\":0,\"energy_j\":{\"cpu\":0}}\n";
	assert_int_equal(write(fd, first, sizeof first - 1), (ssize_t)(sizeof first - 1));
	assert_int_equal(ftruncate(fd, (off_t)40 << 20), 0);
	close(fd);
	damaged(root, "line 2 is longer than 32 MiB", NULL);

	assert_true(snprintf(p, sizeof p, "%s/meta.json", root) < (int)sizeof p);
	fd = open(p, O_WRONLY | O_TRUNC | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)20 << 20), 0);
	close(fd);
	wm_recording *r = NULL;
	char err[1024];
	assert_int_equal(wm_recording_open(root, &r, err, sizeof err), -EFBIG);
	assert_non_null(strstr(err, "meta.json is over 16 MiB"));
	free(m);
	fx_rmtree(root);
}

/* A long recording read in chunks: the reader's line source against the
 * bytes written, across chunk edges (lines of every length around 64 KiB). */
static void test_lines_across_chunk_edges(void **state)
{
	(void)state;
	char root[4096];
	fx_mkdtemp(root, sizeof root);
	char *m = meta(CPU_PSYS, "");
	wm_buf s;
	wm_buf_init(&s);
	wm_buf_puts(&s, "{\"t_s\":0,\"energy_j\":{\"cpu\":0,\"psys\":0}}\n");
	size_t n_lines = 1;
	for (int i = 1; s.len < (3u << 20); i++, n_lines++) {
		/* padding of varying length pushes line ends over every offset */
		int pad = (i * 7919) % 70000;
		wm_buf_printf(&s, "{\"t_s\":%d,\"energy_j\":{\"cpu\":%d,\"psys\":%d},\"pad\":\"%*s\"}\n", i, i, 2 * i,
			      pad, "");
	}
	put_rec(root, m, s.data);
	wm_recording *r = open_ok(root);
	json_t *j = summary(r);
	assert_int_equal((size_t)num_at(j, "samples", NULL, NULL), n_lines);
	assert_true(num_at(j, "energy_j", "cpu", NULL) == (double)(n_lines - 1));

	/* the same bytes parsed in memory give the same summary */
	wm_recording *mr = NULL;
	char err[512];
	assert_int_equal(wm_recording_parse(root, m, strlen(m), s.data, s.len, &mr, err, sizeof err), 0);
	wm_buf a, b;
	wm_buf_init(&a);
	wm_buf_init(&b);
	assert_int_equal(wm_recording_summary_json(r, &a), 0);
	assert_int_equal(wm_recording_summary_json(mr, &b), 0);
	assert_string_equal(a.data, b.data);
	/* and query.c's second pass reads the memory too */
	wm_buf_reset(&a);
	wm_buf_reset(&b);
	assert_int_equal(wm_recording_detail_json(r, &a, err, sizeof err), 0);
	assert_int_equal(wm_recording_detail_json(mr, &b, err, sizeof err), 0);
	assert_string_equal(a.data, b.data);
	wm_buf_free(&a);
	wm_buf_free(&b);
	wm_recording_free(mr);
	json_decref(j);
	wm_recording_free(r);
	wm_buf_free(&s);
	free(m);
	fx_rmtree(root);
}

/* ---- many processes ------------------------------------------------------------ */

/* 20,000 processes; energy on psys (a device without attribution) for the
 * last one only: every process lists cpu (attributed) and psys (some
 * process carried it), none lists a device no process carried. The key
 * choice was quadratic (minutes at 100,000; bench/reader_scale.py). */
static void test_many_processes_list_the_devices_some_process_carried(void **state)
{
	(void)state;
	enum { N = 20000 };
	char *m = meta("[{\"name\":\"cpu\",\"attribution\":\"cpu-ticks\"},"
		       "{\"name\":\"psys\",\"attribution\":\"none\"},{\"name\":\"gpu0\",\"kind\":\"gpu\",\"attribution\":\"none\"}]",
		       "");
	wm_buf s;
	wm_buf_init(&s);
	wm_buf_puts(&s, "{\"t_s\":0,\"energy_j\":{\"cpu\":0,\"psys\":0,\"gpu0\":0}}\n");
	wm_buf_puts(&s, "{\"t_s\":1,\"energy_j\":{\"cpu\":50,\"psys\":80,\"gpu0\":10},\"attributed_j\":{\"cpu\":40},\"procs\":[");
	for (int i = 0; i < N; i++)
		wm_buf_printf(&s, "%s{\"pid\":%d,\"cpu_s\":0.001,\"energy_j\":{\"cpu\":0.002%s}}", i ? "," : "", 100 + i,
			      i == N - 1 ? ",\"psys\":0.5" : "");
	wm_buf_puts(&s, "]}\n");
	assert_int_equal(wm_buf_error(&s), 0);
	wm_recording *r = NULL;
	char err[512];
	assert_int_equal(wm_recording_parse("many", m, strlen(m), s.data, s.len, &r, err, sizeof err), 0);
	json_t *j = summary(r);
	json_t *procs = json_object_get(j, "processes");
	assert_int_equal(json_object_size(procs), N);
	const char *pid;
	json_t *p;
	json_object_foreach(procs, pid, p) {
		json_t *e = json_object_get(p, "energy_j");
		assert_non_null(json_object_get(e, "cpu"));
		assert_non_null(json_object_get(e, "psys"));
		assert_null(json_object_get(e, "gpu0"));
		double want_psys = strcmp(pid, "20099") == 0 ? 0.5 : 0.0;
		assert_true(json_number_value(json_object_get(e, "psys")) == want_psys);
	}
	json_decref(j);
	wm_recording_free(r);
	wm_buf_free(&s);
	free(m);
}

/* ---- the HTML report on times the reader would refuse --------------------------- */

/* html.c cast floor(NaN) to size_t (undefined: caught by
 * -fsanitize=float-cast-overflow on fuzz/corpus/fuzz_recording/html-nan-cast)
 * and looped forever on an infinite time axis. Times are set past the
 * reader here, as an older reader let them through. */
static void test_html_survives_absurd_times(void **state)
{
	(void)state;
	char *m = meta(CPU_PSYS, "");
	static const char s[] = "{\"t_s\":0,\"energy_j\":{\"cpu\":0,\"psys\":0}}\n"
				"{\"t_s\":1,\"energy_j\":{\"cpu\":1,\"psys\":1}}\n"
				"{\"t_s\":2,\"energy_j\":{\"cpu\":2,\"psys\":2}}\n";
	wm_recording *r = NULL;
	char err[512];
	assert_int_equal(wm_recording_parse("absurd", m, strlen(m), s, sizeof s - 1, &r, err, sizeof err), 0);
	r->rows[WM_COL_T * r->cap_rows + 0] = -1.7e308;
	r->rows[WM_COL_T * r->cap_rows + 1] = 1.7e308;
	r->rows[WM_COL_T * r->cap_rows + 2] = 1.75e308;
	wm_buf b;
	wm_buf_init(&b);
	const wm_recording *one[1] = {r};
	struct wm_carbon_opts co;
	wm_carbon_opts_init(&co);
	struct wm_html_opts ho = {.top_n = 5, .carbon = &co};
	assert_int_equal(wm_html_report(one, 1, &ho, &b), 0);
	assert_non_null(strstr(b.data, "cannot be drawn"));
	wm_buf_free(&b);
	wm_recording_free(r);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_energy_that_drops_or_is_negative_is_damage),
		cmocka_unit_test(test_damage_messages_do_not_pass_control_characters),
		cmocka_unit_test(test_time_going_back_is_damage),
		cmocka_unit_test(test_devices_not_a_list_of_named_devices_is_damage),
		cmocka_unit_test(test_values_no_device_reaches_are_damage),
		cmocka_unit_test(test_durations_that_cannot_hold_the_samples_are_damage),
		cmocka_unit_test(test_samples_cut_short_average_over_their_span),
		cmocka_unit_test(test_fifo_and_character_device_are_refused_at_once),
		cmocka_unit_test(test_lines_and_meta_are_bounded),
		cmocka_unit_test(test_lines_across_chunk_edges),
		cmocka_unit_test(test_many_processes_list_the_devices_some_process_carried),
		cmocka_unit_test(test_html_survives_absurd_times),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
