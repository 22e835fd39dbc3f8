/* test_core.c — the core's contracts, end to end through the public API:
 *   1. a source defined here (two devices, per-process shares), registered
 *      through the same interface as RAPL and the model, shows up in the
 *      sensors table, meta.json, the samples, the summary and attribution;
 *   2. thousands of short-lived processes through one meter: memory stays
 *      flat and the CPU time billed matches the kernel's own accounting;
 *   3. the baseline is taken on the sampler thread: the caller's CPU before
 *      the start is neither the sampler's nor lost from the measured process;
 *   4. the library owns every default: NULL configs and NULL roots work;
 *   5. a config from an older, smaller header gets defaults for the rest.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#include "fixture.h"
#include "base/util.h"
#include "sources/source.h"
#include "wattmeter.h"

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void burn_cpu_s(double s)
{
	struct timespec a, b;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
	volatile double x = 1;
	do {
		for (int i = 0; i < 10000; i++)
			x = x * 1.0000001 + 1e-9;
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
	} while ((double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9 < s);
}

static json_t *load_json(const char *path)
{
	json_error_t e;
	json_t *j = json_load_file(path, 0, &e);
	if (!j)
		fail_msg("%s: %s", path, e.text);
	return j;
}

static json_t *summary_of(const char *dir)
{
	char err[512] = "";
	char *s = wm_report_json(dir, err, sizeof err);
	if (!s)
		fail_msg("report of %s failed: %s", dir, err);
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);
	free(s);
	assert_non_null(j);
	return j;
}

static double num(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(json_object_get(o, a), b);
	if (!json_is_number(v))
		fail_msg("no number at %s.%s", a, b);
	return json_number_value(v);
}

/* A scratch folder: root (4096 bytes), the fixture sysfs root sys/ (made,
 * empty: no RAPL) and the recording's path rec/ (4200 bytes each). */
static void make_scratch(char *root, char *sys, char *out)
{
	fx_mkdtemp(root, 4096);
	snprintf(sys, 4200, "%s/sys", root);
	snprintf(out, 4200, "%s/rec", root);
	fx_mkdir(root, "sys");
}

/* ---- 1. a fake source ------------------------------------------------------------
 * Two devices: "fake0" draws FAKE0_W and is shared among processes by the
 * source's shares (this process gets FAKE_SHARE_ME, pid 1 the rest: not
 * measured); "fake1" draws FAKE1_W and is not attributed. Counters in mJ
 * from the monotonic clock since the probe, so the truth is watts x time. */
#define FAKE0_W 40.0
#define FAKE1_W 7.0
#define FAKE_SHARE_ME 0.75

struct fake { double t0; };

static int fake_probe(wm_source *s, const wm_source_ctx *ctx, char *err, size_t errlen)
{
	(void)ctx;
	struct fake *f = calloc(1, sizeof *f);
	if (!f)
		return wm_err(err, errlen, -ENOMEM, "out of memory");
	f->t0 = mono_s();
	s->priv = f;
	s->state = WM_SRC_OK;
	snprintf(s->detail, sizeof s->detail, "2 fake accelerators");
	/* each add may move the list: take the pointers after the last one */
	assert_non_null(wm_source_add_device(s, "fake0", "gpu"));
	assert_non_null(wm_source_add_device(s, "fake1", "gpu"));
	wm_device_decl *d0 = &s->devices[0], *d1 = &s->devices[1];
	d0->rule = WM_ATTR_SOURCE_SHARE;
	d0->gauges = 1u << WM_GAUGE_UTIL;
	d0->used_by_run = 1;
	snprintf(d0->info_json, sizeof d0->info_json, "{\"uuid\":\"FAKE-0\"}");
	d1->rule = WM_ATTR_NONE;
	assert_non_null(wm_source_add_channel(s, "fake0", 0));
	assert_non_null(wm_source_add_channel(s, "fake1", 1));
	wm_channel *c0 = &s->channels[0], *c1 = &s->channels[1];
	c0->joules_per_unit = c1->joules_per_unit = 1e-3;
	return 0;
}

static void fake_read(wm_source *s, const wm_tick *tick, uint64_t *raw, unsigned char *ok, double *gauges)
{
	(void)tick;
	struct fake *f = s->priv;
	double t = mono_s() - f->t0;
	raw[0] = (uint64_t)llround(FAKE0_W * t * 1e3);
	raw[1] = (uint64_t)llround(FAKE1_W * t * 1e3);
	ok[0] = ok[1] = 1;
	gauges[0 * WM_GAUGE_N + WM_GAUGE_UTIL] = 0.5;
}

static int fake_shares(wm_source *s, size_t dev, wm_pid_share *out, size_t cap)
{
	(void)s;
	assert_int_equal(dev, 0);
	assert_true(cap >= 2);
	out[0] = (wm_pid_share){.pid = getpid(), .share = FAKE_SHARE_ME, .mem_bytes = 1 << 20};
	out[1] = (wm_pid_share){.pid = 1, .share = 1 - FAKE_SHARE_ME};
	return 2;
}

static int fake_describe_json(const wm_source *s, wm_buf *b)
{
	(void)s;
	wm_buf_puts(b, ",\"fake\":{\"boards\":2}");
	return wm_buf_error(b);
}

static void fake_close(wm_source *s)
{
	free(s->priv);
	s->priv = NULL;
}

static const wm_source_ops fake_source = {
	.name = "fake-accel",
	.probe = fake_probe,
	.read = fake_read,
	.proc_shares = fake_shares,
	.describe_json = fake_describe_json,
	.close = fake_close,
};

static void a_registered_source_reaches_every_output(void **state)
{
	(void)state;
	char root[4096], sys[4200], out[4200], path[4400];
	make_scratch(root, sys, out);

	/* sensors */
	wm_meter_config c;
	wm_meter_config_init(&c);
	c.sysfs_root = sys;
	char err[512] = "";
	char *text = wm_sensors_describe(&c, 0, err, sizeof err);
	assert_non_null(text);
	assert_non_null(strstr(text, "fake-accel"));
	assert_non_null(strstr(text, "2 fake accelerators"));
	free(text);

	/* a run: recording, summary, attribution */
	c.output_dir = out;
	c.period_s = 0.02;
	c.proc_period_s = 0.1;
	c.measure_self = 1;
	wm_meter *m = NULL;
	double t0 = mono_s();
	int rc = wm_meter_start(&c, &m, err, sizeof err);
	if (rc < 0)
		fail_msg("start: %s", err);
	sleep_ms(1200);
	rc = wm_meter_stop(m, 0, err, sizeof err);
	double wall = mono_s() - t0;
	if (rc < 0)
		fail_msg("stop: %s", err);
	wm_meter_free(m);

	snprintf(path, sizeof path, "%s/meta.json", out);
	json_t *meta = load_json(path);
	json_t *devs = json_object_get(meta, "devices");
	int found0 = 0;
	for (size_t i = 0; i < json_array_size(devs); i++) {
		json_t *d = json_array_get(devs, i);
		if (strcmp(json_string_value(json_object_get(d, "name")), "fake0") != 0)
			continue;
		found0 = 1;
		assert_string_equal(json_string_value(json_object_get(d, "source")), "fake-accel");
		assert_string_equal(json_string_value(json_object_get(d, "attribution")), "source-share");
		assert_string_equal(json_string_value(json_object_get(json_object_get(d, "info"), "uuid")), "FAKE-0");
	}
	assert_true(found0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(meta, "fake"), "boards")), 2);
	json_decref(meta);

	json_t *s = summary_of(out);
	double dur = json_number_value(json_object_get(s, "duration_s"));
	assert_true(dur > 1.0 && dur <= wall + 0.01);
	/* The counter advanced at FAKE0_W since the probe; the recording covers
	 * its duration: the truth is watts x duration, to the last sample. */
	double e0 = num(s, "energy_j", "fake0"), e1 = num(s, "energy_j", "fake1");
	assert_true(fabs(e0 - FAKE0_W * dur) < 0.01 * FAKE0_W * dur);
	assert_true(fabs(e1 - FAKE1_W * dur) < 0.01 * FAKE1_W * dur);
	/* Attribution by the source's shares: ours is FAKE_SHARE_ME of every
	 * process interval; pid 1 is not measured, so its share is not. */
	double a0 = num(s, "energy_j", "fake0_attributed");
	assert_true(fabs(a0 - FAKE_SHARE_ME * e0) < 0.03 * e0);
	assert_null(json_object_get(json_object_get(s, "energy_j"), "fake1_attributed"));
	/* and per process */
	char pid[32];
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	json_t *me = json_object_get(json_object_get(s, "processes"), pid);
	assert_non_null(me);
	assert_true(fabs(num(me, "energy_j", "fake0") - a0) < 1e-3);
	json_decref(s);

	/* gauges reach the samples */
	snprintf(path, sizeof path, "%s/samples.jsonl", out);
	FILE *f = fopen(path, "re");
	assert_non_null(f);
	char line[65536];
	int gauges = 0;
	while (fgets(line, sizeof line, f))
		gauges += strstr(line, "\"gauges\":{\"fake0\":{\"util\":0.5}}") != NULL;
	fclose(f);
	assert_true(gauges > 10);
	fx_rmtree(root);
}

/* ---- 2. long runs ------------------------------------------------------------------- */

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	assert_non_null(f);
	char line[256];
	long kib = -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* n short-lived processes, one after the other: posix_spawn (vfork-like,
 * cheap even under AddressSanitizer) of a program that exits at once. */
static void spawn_and_reap(int n)
{
	char *argv[] = {"true", NULL};
	for (int i = 0; i < n; i++) {
		pid_t p;
		int rc = posix_spawn(&p, "/bin/true", NULL, NULL, argv, environ);
		if (rc != 0)
			fail_msg("posix_spawn /bin/true: %s", strerror(rc));
		int st;
		assert_int_equal(waitpid(p, &st, 0), p);
		if (i % 50 == 49)
			sleep_ms(2); /* let the process tier see some of them alive */
	}
}

#define N_WARMUP 1000
#define N_CHILDREN 6000

static void thousands_of_short_processes_keep_memory_flat(void **state)
{
	(void)state;
	char root[4096], sys[4200], out[4200];
	make_scratch(root, sys, out);

	wm_meter_config c;
	wm_meter_config_init(&c);
	c.sysfs_root = sys;
	c.output_dir = out;
	c.period_s = 0.005;
	c.proc_period_s = 0.01;
	c.mem_period_s = 0;
	c.measure_self = 1;
	char err[512] = "";
	struct rusage ru0;
	getrusage(RUSAGE_CHILDREN, &ru0);
	wm_meter *m = NULL;
	if (wm_meter_start(&c, &m, err, sizeof err) < 0)
		fail_msg("start: %s", err);

	spawn_and_reap(N_WARMUP);
	sleep_ms(50);
	long rss_warm = rss_kib();
	spawn_and_reap(N_CHILDREN);
	sleep_ms(50);
	long rss_end = rss_kib();
	wm_snapshot *snap = wm_meter_snapshot(m);
	assert_non_null(snap);
	/* only this process is alive in the measured set now */
	assert_true(snap->n_procs_alive <= 2);
	wm_snapshot_free(snap);
	if (wm_meter_stop(m, 0, err, sizeof err) < 0)
		fail_msg("stop: %s", err);
	wm_meter_free(m);
	struct rusage ru1;
	getrusage(RUSAGE_CHILDREN, &ru1);

	/* Six times more processes after the warm-up must not grow the meter:
	 * allow 1 MiB for allocator noise (a table that kept every exited
	 * process, with its energy and texts, would take several). */
	print_message("RSS after %d children: %ld KiB, after %d more: %ld KiB\n", N_WARMUP, rss_warm, N_CHILDREN,
		      rss_end);
	assert_true(rss_end - rss_warm < 1024);

	/* Totals: the children's CPU time, as the kernel accounts it for their
	 * reaper (us), is billed to the measured set: the recording's per-process
	 * CPU (own + reaped tails) covers at least it, to the clock tick. */
	double kids_s = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec -
				 ru0.ru_stime.tv_sec) +
			(double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
				 ru0.ru_stime.tv_usec) / 1e6;
	json_t *s = summary_of(out);
	json_t *procs = json_object_get(s, "processes"), *p;
	const char *key;
	double billed_s = 0;
	size_t n_procs = json_object_size(procs);
	json_object_foreach(procs, key, p)
		billed_s += json_number_value(json_object_get(p, "cpu_s"));
	print_message("%zu processes in the recording\n", n_procs);
	print_message("children CPU (rusage) %.3f s, billed CPU (all processes) %.3f s\n", kids_s, billed_s);
	assert_true(billed_s >= kids_s - 0.05);
	double total = num(s, "energy_j", "cpu"), attr = num(s, "energy_j", "cpu_attributed");
	assert_true(attr > 0 && attr <= total + 1e-6);
	json_decref(s);
	fx_rmtree(root);
}

/* ---- 3. the baseline belongs to the sampler thread ------------------------------------ */

static void the_callers_cpu_before_start_is_not_the_samplers(void **state)
{
	(void)state;
	char root[4096], sys[4200], out[4200], path[4400];
	make_scratch(root, sys, out);
	burn_cpu_s(0.5); /* work before measuring: not ours to bill, not the sampler's */

	wm_meter_config c;
	wm_meter_config_init(&c);
	c.sysfs_root = sys;
	c.output_dir = out;
	c.period_s = 0.05;
	c.proc_period_s = 0.5;
	c.measure_self = 1;
	char err[512] = "";
	wm_meter *m = NULL;
	struct timespec p0, p1;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &p0);
	if (wm_meter_start(&c, &m, err, sizeof err) < 0)
		fail_msg("start: %s", err);
	burn_cpu_s(0.8);
	if (wm_meter_stop(m, 0, err, sizeof err) < 0)
		fail_msg("stop: %s", err);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &p1);
	wm_meter_free(m);
	double proc_s = (double)(p1.tv_sec - p0.tv_sec) + (double)(p1.tv_nsec - p0.tv_nsec) / 1e9;

	snprintf(path, sizeof path, "%s/samples.jsonl", out);
	FILE *f = fopen(path, "re");
	assert_non_null(f);
	char line[65536];
	double first_self = NAN, first_proc_cpu = NAN, prev_self = 0, billed_s = 0;
	int lines = 0;
	while (fgets(line, sizeof line, f)) {
		json_error_t e;
		json_t *j = json_loads(line, 0, &e);
		assert_non_null(j);
		double self = json_number_value(json_object_get(j, "self_cpu_s"));
		if (lines++ == 0)
			first_self = self;
		assert_true(self >= prev_self); /* cumulative: never drops */
		prev_self = self;
		json_t *procs = json_object_get(j, "procs");
		if (lines > 1 && isnan(first_proc_cpu) && json_array_size(procs) > 0)
			first_proc_cpu = json_number_value(json_object_get(json_array_get(procs, 0), "cpu_s"));
		for (size_t i = 0; lines > 1 && i < json_array_size(procs); i++)
			billed_s += json_number_value(json_object_get(json_array_get(procs, i), "cpu_s"));
		json_decref(j);
	}
	fclose(f);
	print_message("first self_cpu_s %.4f s, first process interval cpu_s %.3f s; billed %.3f s of the "
		      "process's %.3f s, sampler %.3f s\n", first_self, first_proc_cpu, billed_s, proc_s, prev_self);
	/* the 0.5 s burnt before the start are not the sampler's ... */
	assert_true(first_self < 0.1);
	/* ... and the first interval of a busy thread is not zero ... */
	assert_true(first_proc_cpu > 0.05);
	/* ... and what is billed is the process's CPU since the start less the
	 * sampler's own, as the kernel counts it (to a few 10 ms ticks). */
	assert_true(fabs(billed_s - (proc_s - prev_self)) < 0.06);
	fx_rmtree(root);
}

/* ---- 6. forcing the model beside RAPL and another source ------------------------------
 * The model replaces RAPL's cpu device; dram, psys and the fake source's
 * devices that come after stay, each counted once. */
static void a_forced_model_replaces_only_the_cpu(void **state)
{
	(void)state;
	char root[4096], sys[4200], out[4200], path[4400];
	make_scratch(root, sys, out);
	fx_rapl_zone(sys, "intel-rapl", "intel-rapl:0", "package-0", 0, 1000000000);
	fx_rapl_zone(sys, "intel-rapl", "intel-rapl:0:0", "dram", 0, 1000000000);
	wm_meter_config c;
	wm_meter_config_init(&c);
	c.sysfs_root = sys;
	c.output_dir = out;
	c.period_s = 0.05;
	c.force_model = 1;
	c.no_gpu = 1;
	char err[512] = "";
	wm_meter *m = NULL;
	if (wm_meter_start(&c, &m, err, sizeof err) < 0)
		fail_msg("start: %s", err);
	sleep_ms(200);
	assert_int_equal(wm_meter_stop(m, 0, err, sizeof err), 0);
	wm_meter_free(m);
	snprintf(path, sizeof path, "%s/meta.json", out);
	json_t *meta = load_json(path);
	json_t *devs = json_object_get(meta, "devices");
	const char *want[][2] = {{"dram", "rapl-powercap"}, {"cpu", "cpu-model"}, {"fake0", "fake-accel"},
				 {"fake1", "fake-accel"}};
	assert_int_equal(json_array_size(devs), WM_ARRAY_LEN(want));
	for (size_t i = 0; i < WM_ARRAY_LEN(want); i++) {
		json_t *d = json_array_get(devs, i);
		assert_string_equal(json_string_value(json_object_get(d, "name")), want[i][0]);
		assert_string_equal(json_string_value(json_object_get(d, "source")), want[i][1]);
	}
	assert_string_equal(json_string_value(json_object_get(json_array_get(devs, 1), "method")), "modeled");
	json_decref(meta);
	fx_rmtree(root);
}

/* ---- 4, 5. defaults are the library's ------------------------------------------------- */

static void null_configs_mean_defaults(void **state)
{
	(void)state;
	char err[512] = "";
	char *t = wm_sensors_describe(NULL, 0, err, sizeof err);
	assert_non_null(t);
	assert_non_null(strstr(t, "rapl-powercap"));
	free(t);
	wm_meter_config c;
	wm_meter_config_init(&c);
	c.sysfs_root = NULL;
	c.procfs_root = NULL;
	t = wm_sensors_describe(&c, 1, err, sizeof err);
	assert_non_null(t);
	assert_non_null(strstr(t, "\"procfs\""));
	free(t);
}

static void an_older_smaller_config_gets_defaults(void **state)
{
	(void)state;
	char root[4096], sys[4200];
	fx_mkdtemp(root, sizeof root);
	snprintf(sys, sizeof sys, "%s/sys", root);
	fx_mkdir(root, "sys");
	/* As a program built against the 0.1 header would pass it: the fields
	 * up to force_model; garbage beyond must not be read. */
	wm_meter_config *c = malloc(sizeof *c);
	assert_non_null(c);
	memset(c, 0xA5, sizeof *c);
	wm_meter_config d;
	wm_meter_config_init(&d);
	memcpy(c, &d, offsetof(wm_meter_config, nvml_lib));
	c->size = offsetof(wm_meter_config, nvml_lib);
	c->sysfs_root = sys;
	c->whole_machine = 0x5a5a5a5a;
	char err[512] = "";
	wm_meter *m = NULL;
	int rc = wm_meter_start(c, &m, err, sizeof err);
	if (rc < 0)
		fail_msg("start: %s", err);
	assert_int_equal(wm_meter_stop(m, -1, err, sizeof err), 0);
	wm_meter_free(m);
	/* and a size that is not a config at all is refused with the fix */
	c->size = 3;
	assert_int_equal(wm_meter_start(c, &m, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "wm_meter_config_init"));
	free(c);
	fx_rmtree(root);
}

int main(void)
{
	if (wm_source_register(&fake_source) < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_registered_source_reaches_every_output),
		cmocka_unit_test(thousands_of_short_processes_keep_memory_flat),
		cmocka_unit_test(the_callers_cpu_before_start_is_not_the_samplers),
		cmocka_unit_test(a_forced_model_replaces_only_the_cpu),
		cmocka_unit_test(null_configs_mean_defaults),
		cmocka_unit_test(an_older_smaller_config_gets_defaults),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
