/* test_requests.c — the meter's request calls (src/meter/requests.c) on a
 * fixture RAPL tree whose counter the test advances by hand: requests.jsonl
 * adds up to the samples' energy per device (the machine: a whole-machine
 * meter), two equal streams in flight together get equal shares, the
 * done-callback sees every request line, flush waits for what overlaps an
 * open request, and every misuse gets its errno. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <pthread.h>
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

struct seen {
	pthread_mutex_t lock;
	int lines;
	char last[4096];
};

static void on_done(void *ctx, const char *line)
{
	struct seen *s = ctx;
	pthread_mutex_lock(&s->lock);
	s->lines++;
	snprintf(s->last, sizeof s->last, "%s", line);
	pthread_mutex_unlock(&s->lock);
}

static json_t *read_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	json_t *a = json_array();
	char buf[8192];
	while (fgets(buf, sizeof buf, f)) {
		json_t *o = json_loads(buf, 0, NULL);
		assert_non_null(o);
		json_array_append_new(a, o);
	}
	fclose(f);
	return a;
}

static double last_sample_cpu(const char *rec)
{
	char p[4300];
	snprintf(p, sizeof p, "%s/samples.jsonl", rec);
	json_t *a = read_lines(p);
	json_t *last = json_array_get(a, json_array_size(a) - 1);
	double e = json_number_value(json_object_get(json_object_get(last, "energy_j"), "cpu"));
	json_decref(a);
	return e;
}

static void requests_add_up_to_the_machine(void **state)
{
	(void)state;
	char root[4096], sys[4200], out[4200], path[4300];
	fx_mkdtemp(root, sizeof root);
	snprintf(sys, sizeof sys, "%s/sys", root);
	snprintf(out, sizeof out, "%s/rec", root);
	fx_rapl_zone(sys, "intel-rapl", "intel-rapl:0", "package-0", 0, 1000000000ull);
	fx_rapl_limit(sys, "intel-rapl", "intel-rapl:0", 200000000);

	wm_meter_config c;
	wm_meter_config_init(&c);
	c.output_dir = out;
	c.sysfs_root = sys;
	c.period_s = 0.02;
	c.proc_period_s = 0.02;
	c.whole_machine = 1;
	c.no_gpu = 1;
	wm_meter *m = NULL;
	char err[512] = "";
	if (wm_meter_start(&c, &m, err, sizeof err) < 0)
		fail_msg("wm_meter_start: %s", err);
	struct seen seen = {.lock = PTHREAD_MUTEX_INITIALIZER};
	assert_int_equal(wm_meter_set_request_callback(m, on_done, &seen), 0);

	unsigned long long uj = 0;
	sleep_ms(60);
	fx_rapl_set(sys, "intel-rapl:0", uj += 50000); /* idle: 0.05 J */
	sleep_ms(60);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint64_t begin_ns = (uint64_t)t0.tv_sec * 1000000000ull + (uint64_t)t0.tv_nsec;
	int64_t a = wm_meter_request_begin(m, begin_ns, "{\"path\":\"/v1/chat/completions\",\"model\":\"m\",\"stream\":true}");
	int64_t b = wm_meter_request_begin(m, begin_ns,
					   "{\"path\":\"/v1/chat/completions\",\"model\":\"m\",\"stream\":true,\"user\":7}");
	assert_true(a > 0 && b > a);
	for (int i = 0; i < 10; i++) {
		sleep_ms(15);
		/* one stamp for both: their chunks fall in the same interval */
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		assert_int_equal(wm_meter_request_tokens(m, a, now, 3), 0);
		assert_int_equal(wm_meter_request_tokens(m, b, now, 3), 0);
		fx_rapl_set(sys, "intel-rapl:0", uj += 20000);
	}
	sleep_ms(200); /* a tick reads the last step while both are in flight (ticks may lag under load) */
	assert_int_equal(wm_meter_request_end(m, b, 0, "{\"status\":200,\"prompt_tokens\":4,\"completion_tokens\":30}"), 0);
	/* b overlaps a, still open: b cannot be final yet */
	assert_int_equal(wm_meter_requests_flush(m, 0.3), -ETIMEDOUT);
	assert_int_equal(wm_meter_request_end(m, a, 0, "{\"status\":200,\"prompt_tokens\":4,\"completion_tokens\":30}"), 0);
	sleep_ms(60);
	fx_rapl_set(sys, "intel-rapl:0", uj += 70000); /* idle again */
	sleep_ms(60);
	int64_t e = wm_meter_request_begin(m, 0, "{\"path\":\"/v1/embeddings\"}");
	sleep_ms(40);
	fx_rapl_set(sys, "intel-rapl:0", uj += 30000);
	sleep_ms(40);
	assert_int_equal(wm_meter_request_end(m, e, 0, NULL), 0);
	assert_int_equal(wm_meter_requests_flush(m, 10), 0);
	pthread_mutex_lock(&seen.lock);
	assert_int_equal(seen.lines, 3);
	assert_non_null(strstr(seen.last, "\"path\":\"/v1/embeddings\""));
	assert_null(strchr(seen.last, '\n'));
	pthread_mutex_unlock(&seen.lock);

	/* misuse */
	assert_int_equal(wm_meter_request_begin(m, 0, "[1]"), -EINVAL);
	assert_int_equal(wm_meter_request_begin(m, 0, "{\"stream\":\"yes\"}"), -EINVAL);
	assert_int_equal(wm_meter_request_begin(m, 0, "{\"model\":3}"), -EINVAL);
	assert_int_equal(wm_meter_request_tokens(m, a, 0, 1), -ENOENT); /* ended */
	assert_int_equal(wm_meter_request_end(m, a, 0, NULL), -ENOENT);
	assert_int_equal(wm_meter_request_tokens(m, 999, 0, 1), -ENOENT);
	int64_t x = wm_meter_request_begin(m, 0, NULL);
	assert_true(x > 0);
	assert_int_equal(wm_meter_request_end(m, x, 0, "{\"prompt_tokens\":-2}"), -EINVAL);
	assert_int_equal(wm_meter_request_end(m, x, 0, "{\"status\":\"ok\"}"), -EINVAL);
	pid_t pid = fork();
	if (pid == 0)
		_exit(wm_meter_request_begin(m, 0, NULL) == -ECHILD ? 0 : 1);
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* x stays open: ended by the stop */
	assert_int_equal(wm_meter_stop(m, 0, err, sizeof err), 0);
	assert_int_equal(wm_meter_request_begin(m, 0, NULL), -ESHUTDOWN);
	wm_meter_free(m);

	snprintf(path, sizeof path, "%s/requests.jsonl", out);
	json_t *lines = read_lines(path);
	json_t *hdr = json_array_get(lines, 0);
	assert_string_equal(json_string_value(json_object_get(hdr, "server")), "machine");
	double req = 0, idle = 0, ea = NAN, eb = NAN;
	int n_req = 0, n_sum = 0, open_seen = 0;
	size_t i;
	json_t *o;
	json_array_foreach(lines, i, o) {
		const char *ev = json_string_value(json_object_get(o, "event"));
		double cpu = json_number_value(json_object_get(json_object_get(o, "energy_j"), "cpu"));
		if (ev && !strcmp(ev, "request")) {
			req += cpu;
			n_req++;
			int64_t id = json_integer_value(json_object_get(o, "id"));
			if (id == a)
				ea = cpu;
			if (id == b) {
				eb = cpu;
				assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "attrs"), "user")), 7);
				assert_string_equal(json_string_value(json_object_get(o, "tokens_source")), "usage");
			}
			if (id == x) {
				assert_string_equal(json_string_value(json_object_get(o, "outcome")), "open_at_stop");
				open_seen = 1;
			}
		} else if (ev && !strcmp(ev, "idle")) {
			idle += cpu;
		} else if (ev && !strcmp(ev, "summary")) {
			n_sum++;
		}
	}
	assert_int_equal(n_req, 4);
	assert_int_equal(n_sum, 1);
	assert_true(open_seen);
	/* the machine's whole energy, as the samples counted it (the fixture's 0.35 J) */
	double total = last_sample_cpu(out);
	assert_float_equal(total, 0.35, 1e-9);
	assert_float_equal(req + idle, total, 1e-5);
	/* equal streams, in flight together: equal shares */
	assert_float_equal(ea, eb, 1e-5);
	assert_true(ea > 0.05); /* at least their own 0.2 J between them, shared */
	assert_true(idle >= 0.05);
	json_decref(lines);

	/* the reader says the same */
	char *js = wm_report_requests_json(out, err, sizeof err);
	assert_non_null(js);
	json_t *doc = json_loads(js, 0, NULL);
	free(js);
	assert_int_equal(json_integer_value(json_object_get(doc, "count")), 4);
	assert_true(json_is_true(json_object_get(json_object_get(json_object_get(doc, "conservation"), "cpu"), "ok")));
	json_decref(doc);
	fx_rmtree(root);
}

static void without_a_recording_requests_are_not_supported(void **state)
{
	(void)state;
	char root[4096], sys[4200];
	fx_mkdtemp(root, sizeof root);
	snprintf(sys, sizeof sys, "%s/sys", root);
	fx_rapl_zone(sys, "intel-rapl", "intel-rapl:0", "package-0", 0, 1000000000ull);
	wm_meter_config c;
	wm_meter_config_init(&c);
	c.sysfs_root = sys;
	c.whole_machine = 1;
	c.no_gpu = 1;
	wm_meter *m = NULL;
	char err[512] = "";
	if (wm_meter_start(&c, &m, err, sizeof err) < 0)
		fail_msg("wm_meter_start: %s", err);
	assert_int_equal(wm_meter_request_begin(m, 0, NULL), -ENOTSUP);
	assert_int_equal(wm_meter_requests_flush(m, 1), -ENOTSUP);
	assert_int_equal(wm_meter_set_request_callback(m, on_done, NULL), -ENOTSUP);
	wm_meter_free(m);
	/* a recording without requests has no requests.jsonl: the reader says null */
	char *js = wm_report_requests_json(root, err, sizeof err);
	assert_non_null(js);
	assert_non_null(strstr(js, "\"requests_version\":null"));
	free(js);
	fx_rmtree(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(requests_add_up_to_the_machine),
		cmocka_unit_test(without_a_recording_requests_are_not_supported),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
