/* test_exporter.c — the public exporter API (wattmeter_exporter.h) end to
 * end, under the sanitizers: a fixture powercap tree whose counter the test
 * sets, a fake GPU source registered at run time (as test_core.c does) whose
 * counter advances at a known rate, the meter's sink, the HTTP server on
 * 127.0.0.1 port 0; then stop, an older config size, and start failures. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "fixture.h"
#include "sources/source.h"
#include "wattmeter.h"
#include "wattmeter_exporter.h"

#define GPU_W 40.0

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- a fake GPU: 40 W since its probe, utilisation 0.5, 1 GiB used ------ */

static double gpu_t0;

static int fake_probe(wm_source *s, const wm_source_ctx *ctx, char *err, size_t errlen)
{
	(void)ctx;
	(void)err;
	(void)errlen;
	gpu_t0 = mono_s();
	s->state = WM_SRC_OK;
	snprintf(s->detail, sizeof s->detail, "1 fake GPU");
	assert_non_null(wm_source_add_device(s, "gpu0", "gpu"));
	wm_device_decl *d = &s->devices[0];
	d->rule = WM_ATTR_SOURCE_SHARE;
	d->gauges = (1u << WM_GAUGE_UTIL) | (1u << WM_GAUGE_MEM_USED_BYTES);
	snprintf(d->info_json, sizeof d->info_json, "{\"uuid\":\"GPU-FAKE-0\",\"name\":\"Fake \\\"X\\\" 80GB\"}");
	assert_non_null(wm_source_add_channel(s, "gpu0", 0));
	s->channels[0].joules_per_unit = 1e-3;
	return 0;
}

static void fake_read(wm_source *s, const wm_tick *tick, uint64_t *raw, unsigned char *ok, double *gauges)
{
	(void)s;
	(void)tick;
	raw[0] = (uint64_t)llround(GPU_W * (mono_s() - gpu_t0) * 1e3);
	ok[0] = 1;
	gauges[WM_GAUGE_UTIL] = 0.5;
	gauges[WM_GAUGE_MEM_USED_BYTES] = 1073741824.0;
}

static const wm_source_ops fake_gpu = {.name = "fake-gpu", .probe = fake_probe, .read = fake_read};

/* ---- a tiny HTTP client ---------------------------------------------------- */

/* GET path; returns the body (malloc'd) and the status, or NULL if the
 * connection is refused. */
static char *http_get(int port, const char *path, const char *headers, int *status)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		close(fd);
		return NULL;
	}
	wm_buf req;
	wm_buf_init(&req);
	wm_buf_printf(&req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n", path, headers ? headers : "");
	assert_int_equal(wm_buf_error(&req), 0);
	assert_int_equal(wm_write_all(fd, req.data, req.len), 0);
	wm_buf_free(&req);
	wm_buf b;
	wm_buf_init(&b);
	for (;;) {
		assert_int_equal(wm_buf_reserve(&b, 65536), 0);
		ssize_t n = read(fd, b.data + b.len, b.cap - b.len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n >= 0);
		if (n == 0)
			break;
		b.len += (size_t)n;
		b.data[b.len] = '\0';
	}
	close(fd);
	assert_non_null(b.data);
	assert_int_equal(sscanf(b.data, "HTTP/1.%*d %d", status), 1);
	char *sep = strstr(b.data, "\r\n\r\n");
	assert_non_null(sep);
	char *body = strdup(sep + 4);
	wm_buf_free(&b);
	return body;
}

/* The value of the series line starting with `series ` in text, NAN if none. */
static double value_of(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return NAN;
}

static char *metrics_after_samples(int port, double min_samples)
{
	for (int i = 0; i < 400; i++) {
		int st = 0;
		char *body = http_get(port, "/metrics", NULL, &st);
		assert_non_null(body);
		if (st == 200 && value_of(body, "wattmeter_samples_total") >= min_samples)
			return body;
		free(body);
		sleep_ms(25);
	}
	fail_msg("fewer than %g samples after 10 s", min_samples);
	return NULL;
}

#define CPU_SERIES "wattmeter_cpu_energy_joules_total{device=\"cpu\",zone=\"package-0\",source=\"rapl-powercap\"," \
		   "method=\"measured\"}"
#define GPU_LABELS "{gpu=\"gpu0\",uuid=\"GPU-FAKE-0\",name=\"Fake \\\"X\\\" 80GB\",source=\"fake-gpu\"," \
		   "method=\"measured\"}"

static void exports_fixture_counters_and_a_registered_gpu(void **state)
{
	(void)state;
	char root[4096], sys[4200];
	fx_mkdtemp(root, sizeof root);
	snprintf(sys, sizeof sys, "%s/sys", root);
	fx_rapl_zone(sys, "intel-rapl", "intel-rapl:0", "package-0", 1000000, 10000000);
	/* bound 80 W: the 2.5 J and 7 J steps below are plausible within two
	 * 50 ms periods; the 10 J range wraps at best every 125 ms */
	fx_rapl_limit(sys, "intel-rapl", "intel-rapl:0", 40000000);

	wm_exporter_config ec;
	wm_exporter_config_init(&ec);
	ec.listen = "127.0.0.1:0";
	ec.per_cgroup = 1;
	wm_meter_config mc;
	wm_meter_config_init(&mc);
	mc.sysfs_root = sys;
	mc.period_s = 0.05;
	mc.proc_period_s = 0.2;
	char err[1024] = "";
	wm_exporter *e = NULL;
	double t_start = mono_s();
	int rc = wm_exporter_start(&ec, &mc, &e, err, sizeof err);
	if (rc < 0)
		fail_msg("start: %s", err);
	int port = wm_exporter_port(e);
	assert_true(port > 0);
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
	assert_string_equal(wm_exporter_url(e), url);

	/* The package counter moves by exactly 2.5 J (microjoules in the file). */
	char *t = metrics_after_samples(port, 2);
	assert_true(value_of(t, CPU_SERIES) == 0.0);
	free(t);
	fx_rapl_set(sys, "intel-rapl:0", 3500000);
	double before = value_of(t = metrics_after_samples(port, 1), "wattmeter_samples_total");
	free(t);
	t = metrics_after_samples(port, before + 2);
	assert_true(fabs(value_of(t, CPU_SERIES) - 2.5) < 1e-9);
	assert_non_null(strstr(t, "wattmeter_sensor_up{sensor=\"fake-gpu\",state=\"ok\"} 1\n"));
	assert_non_null(strstr(t, "wattmeter_sensor_up{sensor=\"rapl-powercap\",state=\"ok\"} 1\n"));

	/* The GPU: 40 W since its probe (before start returned), read by the
	 * last sample (at most a period and a scrape before now). */
	double e_gpu = value_of(t, "wattmeter_gpu_energy_joules_total" GPU_LABELS);
	double elapsed = mono_s() - t_start;
	assert_true(e_gpu > 0 && e_gpu <= GPU_W * elapsed + 1e-6);
	assert_true(value_of(t, "wattmeter_gpu_utilization_ratio" GPU_LABELS) == 0.5);
	assert_true(value_of(t, "wattmeter_gpu_memory_used_bytes" GPU_LABELS) == 1073741824.0);
	assert_true(value_of(t, "mem_used_gpu") == 1073741824.0);
	/* over one 50 ms period, whose ends the meter and the fake read a few ms
	 * apart on a loaded machine: 25% */
	assert_true(fabs(value_of(t, "power_draw_gpu") - GPU_W) < 0.25 * GPU_W);
	free(t);

	/* A wrap (the file goes back to a small value) keeps the counter rising. */
	fx_rapl_set(sys, "intel-rapl:0", 500000);
	before = value_of(t = metrics_after_samples(port, 1), "wattmeter_samples_total");
	free(t);
	t = metrics_after_samples(port, before + 2);
	double wrapped = value_of(t, CPU_SERIES);
	assert_true(wrapped > 2.5 && wrapped < 2.5 + 10.0 + 1e-6);
	free(t);

	/* OpenMetrics on request. */
	int st;
	t = http_get(port, "/metrics", "Accept: application/openmetrics-text; version=1.0.0\r\n", &st);
	assert_int_equal(st, 200);
	assert_non_null(strstr(t, "# TYPE wattmeter_gpu_energy_joules counter\n"));
	assert_string_equal(t + strlen(t) - 6, "# EOF\n");
	free(t);

	rc = wm_exporter_stop(e, err, sizeof err);
	if (rc < 0)
		fail_msg("stop: %s", err);
	assert_int_equal(wm_exporter_stop(e, err, sizeof err), 0); /* twice: harmless */
	assert_null(http_get(port, "/metrics", NULL, &st));        /* the port is closed */
	wm_exporter_free(e);
	wm_exporter_free(NULL);
	fx_rmtree(root);
}

/* A caller built against an older header (only size, listen and the web
 * config) gets the defaults for the rest; a bad config refuses to start. */
static void older_config_size_and_refusals(void **state)
{
	(void)state;
	char root[4096], sys[4200];
	fx_mkdtemp(root, sizeof root);
	snprintf(sys, sizeof sys, "%s/sys", root);
	fx_mkdir(root, "sys");
	wm_meter_config mc;
	wm_meter_config_init(&mc);
	mc.sysfs_root = sys;
	mc.period_s = 0.05;

	wm_exporter_config ec;
	wm_exporter_config_init(&ec);
	ec.listen = "127.0.0.1:0";
	ec.per_process = 12345; /* beyond the old size: must be ignored */
	ec.size = offsetof(wm_exporter_config, per_process);
	char err[1024] = "";
	wm_exporter *e = NULL;
	int rc = wm_exporter_start(&ec, &mc, &e, err, sizeof err);
	if (rc < 0)
		fail_msg("start: %s", err);
	char *t = metrics_after_samples(wm_exporter_port(e), 2);
	assert_null(strstr(t, "wattmeter_process_energy_joules")); /* per_process stayed off */
	/* No RAPL in this tree: the CPU is modelled and says so. */
	assert_non_null(strstr(t, "wattmeter_sensor_up{sensor=\"rapl-powercap\",state=\"absent\"} 0\n"));
	assert_non_null(strstr(t, "method=\"modeled\""));
	free(t);

	/* The same port again: refused, with the reason. */
	char addr[64];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", wm_exporter_port(e));
	wm_exporter_config ec2;
	wm_exporter_config_init(&ec2);
	ec2.listen = addr;
	wm_exporter *e2 = NULL;
	assert_int_equal(wm_exporter_start(&ec2, &mc, &e2, err, sizeof err), -EADDRINUSE);
	assert_null(e2);
	assert_non_null(strstr(err, "another program uses that port"));
	wm_exporter_free(e);

	/* A web config that is not there; a period out of range. */
	ec2.listen = "127.0.0.1:0";
	ec2.web_config_file = "/nonexistent/web.yml";
	assert_int_equal(wm_exporter_start(&ec2, &mc, &e2, err, sizeof err), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/web.yml"));
	ec2.web_config_file = NULL;
	mc.period_s = -1;
	assert_true(wm_exporter_start(&ec2, &mc, &e2, err, sizeof err) < 0);
	assert_null(e2);
	ec2.size = 3;
	assert_int_equal(wm_exporter_start(&ec2, NULL, &e2, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "wm_exporter_config_init"));
	fx_rmtree(root);
}

/* serve started before the RAPL tree exists: the CPU is modelled; when the
 * zone appears the re-probe switches the meter to it, says so, and every
 * counter present before and after goes on rising (carried over). */
static pthread_mutex_t events_lock = PTHREAD_MUTEX_INITIALIZER;
static char events[2048];

static void on_event(void *arg, const char *msg)
{
	(void)arg;
	pthread_mutex_lock(&events_lock);
	size_t n = strlen(events);
	snprintf(events + n, sizeof events - n, "%s\n", msg);
	pthread_mutex_unlock(&events_lock);
}

static void reprobe_switches_to_rapl_when_it_appears_and_counters_carry_on(void **state)
{
	(void)state;
	char root[4096], sys[4200];
	fx_mkdtemp(root, sizeof root);
	snprintf(sys, sizeof sys, "%s/sys", root);
	fx_mkdir(root, "sys");
	wm_meter_config mc;
	wm_meter_config_init(&mc);
	mc.sysfs_root = sys;
	mc.period_s = 0.05;
	mc.proc_period_s = 0.2;
	wm_exporter_config ec;
	wm_exporter_config_init(&ec);
	ec.listen = "127.0.0.1:0";
	ec.reprobe_s = 0.2;
	ec.on_event = on_event;
	char err[1024] = "";
	wm_exporter *e = NULL;
	if (wm_exporter_start(&ec, &mc, &e, err, sizeof err) < 0)
		fail_msg("start: %s", err);
	int port = wm_exporter_port(e);
	char *t = metrics_after_samples(port, 3);
	assert_non_null(strstr(t, "method=\"modeled\""));
	assert_true(isnan(value_of(t, CPU_SERIES)));
	double samples0 = value_of(t, "wattmeter_samples_total");
	double gpu0 = value_of(t, "wattmeter_gpu_energy_joules_total" GPU_LABELS);
	assert_true(gpu0 > 0);
	free(t);

	fx_rapl_zone(sys, "intel-rapl", "intel-rapl:0", "package-0", 1000000, 100000000);
	fx_rapl_limit(sys, "intel-rapl", "intel-rapl:0", 40000000);
	double cpu = NAN;
	for (int i = 0; i < 200 && isnan(cpu); i++) {
		sleep_ms(25);
		t = metrics_after_samples(port, 0);
		cpu = value_of(t, CPU_SERIES);
		if (!isnan(cpu)) {
			/* counters of both meters never went back */
			assert_true(value_of(t, "wattmeter_samples_total") >= samples0);
			assert_true(value_of(t, "wattmeter_gpu_energy_joules_total" GPU_LABELS) >= gpu0);
			assert_non_null(strstr(t, "wattmeter_sensor_up{sensor=\"rapl-powercap\",state=\"ok\"} 1\n"));
		}
		free(t);
	}
	assert_false(isnan(cpu));
	/* the new counter counts: 2.5 J more in the file, 2.5 J more exported */
	fx_rapl_set(sys, "intel-rapl:0", 3500000);
	double before = value_of(t = metrics_after_samples(port, 0), CPU_SERIES);
	free(t);
	for (int i = 0; i < 200; i++) {
		t = metrics_after_samples(port, 0);
		double now = value_of(t, CPU_SERIES);
		free(t);
		if (now - before > 2.5 - 1e-9 || now > cpu + 2.5 - 1e-9)
			break;
		sleep_ms(25);
	}
	t = metrics_after_samples(port, 0);
	assert_true(fabs(value_of(t, CPU_SERIES) - (cpu + 2.5)) < 1e-6);
	free(t);
	assert_int_equal(wm_exporter_stop(e, err, sizeof err), 0);
	wm_exporter_free(e);
	pthread_mutex_lock(&events_lock);
	assert_non_null(strstr(events, "re-probe: rapl-powercap now readable (was absent)"));
	pthread_mutex_unlock(&events_lock);
	fx_rmtree(root);
}

int main(void)
{
	if (wm_source_register(&fake_gpu) < 0) {
		fprintf(stderr, "cannot register the fake GPU source\n");
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(exports_fixture_counters_and_a_registered_gpu),
		cmocka_unit_test(older_config_size_and_refusals),
		cmocka_unit_test(reprobe_switches_to_rapl_when_it_appears_and_counters_carry_on),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
