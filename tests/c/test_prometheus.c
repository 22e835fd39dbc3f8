/* test_prometheus.c — the Prometheus formatter on fixed samples: the exact
 * text of a small case in both formats, label escaping, value spellings,
 * GPU labels and gauges, per-process and per-cgroup counters with their cap,
 * and the pure parsers (cgroup file, Accept headers). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "meter/meter.h"
#include "outputs/prometheus.h"

static const wm_source_ops ops_rapl = {.name = "rapl-powercap"};
static const wm_source_ops ops_model = {.name = "cpu-model"};
static const wm_source_ops ops_nvml = {.name = "nvml"};

/* A machine: one RAPL package (cpu), its dram, its core sub-zone (recorded,
 * not counted), the CPU model (unused), and optionally one GPU. */
typedef struct fx {
	wm_device_decl decl[3];
	wm_source src[3];
	wm_sources sources;
	wm_device dev[3];
	wm_channel ch[4];
	wm_meter_channel mch[4];
	wm_prom_view view;
	wm_sample_dev sdev[3];
	double ch_e[4];
	unsigned char ch_ok[4];
	wm_sample s;
} fx;

static void fx_init(fx *f, int with_gpu)
{
	memset(f, 0, sizeof *f);
	f->src[0] = (wm_source){.ops = &ops_rapl, .state = WM_SRC_OK, .active = 1};
	f->src[1] = (wm_source){.ops = &ops_model, .state = WM_SRC_MODELED, .active = 0};
	f->src[2] = (wm_source){.ops = &ops_nvml, .state = with_gpu ? WM_SRC_OK : WM_SRC_ABSENT, .active = with_gpu};
	f->sources = (wm_sources){.v = f->src, .n = 3, .procfs_ok = 1};
	snprintf(f->decl[0].name, sizeof f->decl[0].name, "cpu");
	snprintf(f->decl[0].kind, sizeof f->decl[0].kind, "cpu");
	f->decl[0].rule = WM_ATTR_CPU_TICKS;
	snprintf(f->decl[1].name, sizeof f->decl[1].name, "dram");
	snprintf(f->decl[1].kind, sizeof f->decl[1].kind, "dram");
	f->decl[1].rule = WM_ATTR_MEMORY;
	snprintf(f->decl[2].name, sizeof f->decl[2].name, "gpu0");
	snprintf(f->decl[2].kind, sizeof f->decl[2].kind, "gpu");
	f->decl[2].rule = WM_ATTR_SOURCE_SHARE;
	f->decl[2].gauges = (1u << WM_GAUGE_UTIL) | (1u << WM_GAUGE_MEM_USED_BYTES) | (1u << WM_GAUGE_CLOCK_SM_MHZ);
	snprintf(f->decl[2].info_json, sizeof f->decl[2].info_json,
		 "{\"uuid\":\"GPU-1234\",\"name\":\"Tesla \\\"T4\\\"\\\\x\"}");
	for (int i = 0; i < 3; i++)
		f->dev[i] = (wm_device){.decl = &f->decl[i], .src = i < 2 ? &f->src[0] : &f->src[2], .src_dev = 0};
	const char *labels[4] = {"package-0", "package-0/dram", "package-0/core", "gpu0"};
	const int devs[4] = {0, 1, -1, 2};
	for (int i = 0; i < 4; i++) {
		snprintf(f->ch[i].label, sizeof f->ch[i].label, "%s", labels[i]);
		f->ch[i].device = devs[i];
		f->mch[i] = (wm_meter_channel){.ch = &f->ch[i], .src = i < 3 ? &f->src[0] : &f->src[2], .device = devs[i]};
		f->ch_ok[i] = 1;
	}
	size_t nd = with_gpu ? 3 : 2, nc = with_gpu ? 4 : 3;
	f->view = (wm_prom_view){.devices = f->dev, .n_devices = nd, .channels = f->mch, .n_channels = nc,
				 .sources = &f->sources, .version = "9.9.9", .period_s = 0.5};
	for (int i = 0; i < 3; i++) {
		for (int g = 0; g < WM_GAUGE_N; g++)
			f->sdev[i].gauge[g] = NAN;
		f->sdev[i].power_w = NAN;
	}
	f->s = (wm_sample){.seq = 0, .baseline = 1, .devices = f->sdev, .n_devices = nd, .channel_energy_j = f->ch_e,
			   .channel_ok = f->ch_ok, .n_channels = nc, .cpu_util = NAN};
}

/* Second sample of the small machine: 2 s in, package 12.5 J, dram 3 J,
 * core 8 J (it was 0 at the baseline: 4 W). */
static void fx_tick(fx *f)
{
	f->s.seq = 4;
	f->s.baseline = 0;
	f->s.proc_tier = 1;
	f->s.t_s = 2.0;
	f->sdev[0].energy_j = f->ch_e[0] = 12.5;
	f->sdev[0].power_w = 6.25;
	f->sdev[1].energy_j = f->ch_e[1] = 3.0;
	f->sdev[1].power_w = 1.5;
	f->ch_e[2] = 8.0;
	f->s.cpu_util = 0.25;
	f->s.self_cpu_s = 0.01;
	f->s.sample_cost_s = 0.0002;
	f->s.mem_used_bytes = 1000;
	f->s.mem_total_bytes = 4000;
}

static char *render(wm_prom *p, int om)
{
	wm_buf b;
	wm_buf_init(&b);
	assert_int_equal(wm_prom_format(p, om, &b), 0);
	return b.data;
}

static const char small_text[] =
	"# HELP wattmeter_build_info wattmeter's version (value 1).\n"
	"# TYPE wattmeter_build_info gauge\n"
	"wattmeter_build_info{version=\"9.9.9\"} 1\n"
	"# HELP wattmeter_sensor_up 1 if the energy source is in use (measured or modeled), 0 if absent, forbidden, "
	"failing or unused; state says which.\n"
	"# TYPE wattmeter_sensor_up gauge\n"
	"wattmeter_sensor_up{sensor=\"rapl-powercap\",state=\"ok\"} 1\n"
	"wattmeter_sensor_up{sensor=\"cpu-model\",state=\"unused\"} 0\n"
	"wattmeter_sensor_up{sensor=\"nvml\",state=\"absent\"} 0\n"
	"wattmeter_sensor_up{sensor=\"procfs\",state=\"ok\"} 1\n"
	"# HELP wattmeter_sensor_read_errors_total Counter reads that failed (EIO, vanished zone, malformed value, lost GPU) since the exporter started.\n"
	"# TYPE wattmeter_sensor_read_errors_total counter\n"
	"wattmeter_sensor_read_errors_total{sensor=\"rapl-powercap\"} 0\n"
	"# HELP wattmeter_sensor_rejected_readings_total Counter readings rejected as physically impossible (above the range, a step above the power bound, a stall past the wrap time): never counted as energy.\n"
	"# TYPE wattmeter_sensor_rejected_readings_total counter\n"
	"wattmeter_sensor_rejected_readings_total{sensor=\"rapl-powercap\"} 0\n"
	"# HELP wattmeter_cpu_energy_joules_total Energy spent by cpu devices since the exporter started, monotonic "
	"across counter wraps and resets.\n"
	"# TYPE wattmeter_cpu_energy_joules_total counter\n"
	"wattmeter_cpu_energy_joules_total{device=\"cpu\",zone=\"package-0\",source=\"rapl-powercap\",method="
	"\"measured\"} 12.5\n"
	"# HELP wattmeter_cpu_power_watts Power of cpu devices over the last sampling period.\n"
	"# TYPE wattmeter_cpu_power_watts gauge\n"
	"wattmeter_cpu_power_watts{device=\"cpu\",source=\"rapl-powercap\",method=\"measured\"} 6.25\n"
	"# HELP wattmeter_dram_energy_joules_total Energy spent by dram devices since the exporter started, "
	"monotonic across counter wraps and resets.\n"
	"# TYPE wattmeter_dram_energy_joules_total counter\n"
	"wattmeter_dram_energy_joules_total{device=\"dram\",zone=\"package-0/dram\",source=\"rapl-powercap\","
	"method=\"measured\"} 3\n"
	"# HELP wattmeter_dram_power_watts Power of dram devices over the last sampling period.\n"
	"# TYPE wattmeter_dram_power_watts gauge\n"
	"wattmeter_dram_power_watts{device=\"dram\",source=\"rapl-powercap\",method=\"measured\"} 1.5\n"
	"# HELP wattmeter_cpu_utilization_ratio Busy fraction (0..1) of the machine's CPUs over the last sampling "
	"period.\n"
	"# TYPE wattmeter_cpu_utilization_ratio gauge\n"
	"wattmeter_cpu_utilization_ratio 0.25\n"
	"# HELP wattmeter_memory_used_bytes Memory in use on the machine (MemTotal - MemAvailable).\n"
	"# TYPE wattmeter_memory_used_bytes gauge\n"
	"wattmeter_memory_used_bytes 1000\n"
	"# HELP wattmeter_memory_total_bytes Memory on the machine (MemTotal).\n"
	"# TYPE wattmeter_memory_total_bytes gauge\n"
	"wattmeter_memory_total_bytes 4000\n"
	"# HELP wattmeter_self_cpu_seconds_total CPU time spent by wattmeter's sampler thread.\n"
	"# TYPE wattmeter_self_cpu_seconds_total counter\n"
	"wattmeter_self_cpu_seconds_total 0.01\n"
	"# HELP wattmeter_sample_duration_seconds Wall time the last sample took to gather.\n"
	"# TYPE wattmeter_sample_duration_seconds gauge\n"
	"wattmeter_sample_duration_seconds 0.0002\n"
	"# HELP wattmeter_samples_total Samples taken since the exporter started.\n"
	"# TYPE wattmeter_samples_total counter\n"
	"wattmeter_samples_total 5\n"
	"# HELP wattmeter_sample_period_seconds Configured sampling period of the energy counters.\n"
	"# TYPE wattmeter_sample_period_seconds gauge\n"
	"wattmeter_sample_period_seconds 0.5\n"
	"# HELP power_draw_cpu cpu consumption for the specified process\n"
	"# TYPE power_draw_cpu gauge\n"
	"power_draw_cpu 4\n"
	"# HELP intel_power total rapl power\n"
	"# TYPE intel_power gauge\n"
	"intel_power 6.25\n"
	"# HELP mem_used_cpu total cpu memory used (uss)\n"
	"# TYPE mem_used_cpu gauge\n"
	"mem_used_cpu 1000\n"
	"# HELP mem_used_gpu average memory used by the gpu\n"
	"# TYPE mem_used_gpu gauge\n"
	"mem_used_gpu 0\n"
	"# HELP power_draw_gpu Power consumed by gpu as given by nvidia-smi\n"
	"# TYPE power_draw_gpu gauge\n"
	"power_draw_gpu 0\n";

static void small_case_text_exact(void **state)
{
	(void)state;
	fx f;
	fx_init(&f, 0);
	wm_prom *p;
	char err[256];
	assert_int_equal(wm_prom_new(&f.view, NULL, &p, err, sizeof err), 0);
	assert_int_equal(wm_prom_update(p, &f.s, NULL), 0); /* baseline: core at 0 J, t 0 */
	fx_tick(&f);
	assert_int_equal(wm_prom_update(p, &f.s, NULL), 0);
	char *t = render(p, 0);
	assert_string_equal(t, small_text);
	free(t);
	wm_prom_free(p);
}

/* OpenMetrics: counters' families lose "_total", units are declared, the
 * build info is an info family, and the text ends in "# EOF". */
static void small_case_openmetrics(void **state)
{
	(void)state;
	fx f;
	fx_init(&f, 0);
	wm_prom *p;
	assert_int_equal(wm_prom_new(&f.view, NULL, &p, NULL, 0), 0);
	assert_int_equal(wm_prom_update(p, &f.s, NULL), 0);
	fx_tick(&f);
	assert_int_equal(wm_prom_update(p, &f.s, NULL), 0);
	char *t = render(p, 1);
	size_t n = strlen(t);
	assert_true(n > 6);
	assert_string_equal(t + n - 6, "# EOF\n");
	assert_non_null(strstr(t, "# HELP wattmeter_build wattmeter's version (value 1).\n"
				  "# TYPE wattmeter_build info\n"
				  "wattmeter_build_info{version=\"9.9.9\"} 1\n"));
	assert_non_null(strstr(t, "# TYPE wattmeter_cpu_energy_joules counter\n"
				  "# UNIT wattmeter_cpu_energy_joules joules\n"
				  "wattmeter_cpu_energy_joules_total{device=\"cpu\",zone=\"package-0\",source=\"rapl-powercap\","
				  "method=\"measured\"} 12.5\n"));
	assert_non_null(strstr(t, "# TYPE wattmeter_cpu_power_watts gauge\n# UNIT wattmeter_cpu_power_watts watts\n"));
	assert_non_null(strstr(t, "# TYPE wattmeter_samples counter\nwattmeter_samples_total 5\n"));
	assert_null(strstr(t, "# TYPE wattmeter_cpu_energy_joules_total"));
	assert_null(strstr(t, "# UNIT power_draw_cpu")); /* AIPowerMeter's names carry no unit */
	/* Exactly one EOF, at the end. */
	assert_ptr_equal(strstr(t, "# EOF"), t + n - 6);
	free(t);
	wm_prom_free(p);
}

/* Before any sample only what is known at start is written; the baseline
 * (power unknown) writes energy counters at zero but no power gauges. */
static void before_and_at_baseline(void **state)
{
	(void)state;
	fx f;
	fx_init(&f, 0);
	wm_prom *p;
	assert_int_equal(wm_prom_new(&f.view, NULL, &p, NULL, 0), 0);
	char *t = render(p, 0);
	assert_non_null(strstr(t, "wattmeter_build_info{version=\"9.9.9\"} 1\n"));
	assert_non_null(strstr(t, "wattmeter_samples_total 0\n"));
	assert_null(strstr(t, "energy_joules"));
	free(t);
	assert_int_equal(wm_prom_update(p, &f.s, NULL), 0);
	t = render(p, 0);
	assert_non_null(strstr(t, "wattmeter_cpu_energy_joules_total{device=\"cpu\",zone=\"package-0\","
				  "source=\"rapl-powercap\",method=\"measured\"} 0\n"));
	assert_null(strstr(t, "wattmeter_cpu_power_watts"));
	assert_null(strstr(t, "NaN"));
	free(t);
	wm_prom_free(p);
}

static void label_values_are_escaped(void **state)
{
	(void)state;
	wm_buf b;
	wm_buf_init(&b);
	assert_int_equal(wm_prom_label_value(&b, "a\\b\"c\nd"), 0);
	assert_string_equal(b.data, "a\\\\b\\\"c\\nd");
	wm_buf_reset(&b);
	/* Valid UTF-8 stays; a stray byte becomes U+FFFD; a cut sequence too. */
	assert_int_equal(wm_prom_label_value(&b, "\xC3\xA9t\xE9\xFF" "x\xE2\x82"), 0);
	assert_string_equal(b.data, "\xC3\xA9t\xEF\xBF\xBD\xEF\xBF\xBDx\xEF\xBF\xBD\xEF\xBF\xBD");
	wm_buf_reset(&b);
	/* Overlong encodings and surrogates are not valid UTF-8. */
	assert_int_equal(wm_prom_label_value(&b, "\xC0\xAF\xED\xA0\x80"), 0);
	assert_null(strstr(b.data, "\xC0"));
	assert_null(strstr(b.data, "\xED\xA0"));
	wm_buf_reset(&b);
	assert_int_equal(wm_prom_label_value(&b, ""), 0);
	assert_int_equal(b.len, 0);
	wm_buf_free(&b);
}

static void values_spell_nan_and_inf(void **state)
{
	(void)state;
	wm_buf b;
	wm_buf_init(&b);
	assert_int_equal(wm_prom_value(&b, NAN), 0);
	assert_int_equal(wm_buf_puts(&b, " "), 0);
	assert_int_equal(wm_prom_value(&b, INFINITY), 0);
	assert_int_equal(wm_buf_puts(&b, " "), 0);
	assert_int_equal(wm_prom_value(&b, -INFINITY), 0);
	assert_int_equal(wm_buf_puts(&b, " "), 0);
	assert_int_equal(wm_prom_value(&b, 0.1), 0);
	assert_int_equal(wm_buf_puts(&b, " "), 0);
	assert_int_equal(wm_prom_value(&b, 123456789012.0), 0);
	assert_int_equal(wm_buf_puts(&b, " "), 0);
	assert_int_equal(wm_prom_value(&b, -0.0), 0);
	assert_int_equal(wm_buf_puts(&b, " "), 0);
	assert_int_equal(wm_prom_value(&b, 1e300), 0);
	assert_string_equal(b.data, "NaN +Inf -Inf 0.1 123456789012 0 1e+300");
	wm_buf_free(&b);
}

/* GPUs: gpu, uuid, name labels (escaped), gauges in base units. */
static void gpu_labels_and_gauges(void **state)
{
	(void)state;
	fx f;
	fx_init(&f, 1);
	wm_prom *p;
	assert_int_equal(wm_prom_new(&f.view, NULL, &p, NULL, 0), 0);
	assert_int_equal(wm_prom_update(p, &f.s, NULL), 0);
	fx_tick(&f);
	f.sdev[2].energy_j = 100.0;
	f.sdev[2].power_w = 70.0;
	f.sdev[2].gauge[WM_GAUGE_UTIL] = 0.5;
	f.sdev[2].gauge[WM_GAUGE_MEM_USED_BYTES] = 2e9;
	f.sdev[2].gauge[WM_GAUGE_CLOCK_SM_MHZ] = 1500;
	assert_int_equal(wm_prom_update(p, &f.s, NULL), 0);
	char *t = render(p, 0);
	const char *lbl = "{gpu=\"gpu0\",uuid=\"GPU-1234\",name=\"Tesla \\\"T4\\\"\\\\x\",source=\"nvml\",method=\"measured\"}";
	char want[512];
	snprintf(want, sizeof want, "wattmeter_gpu_energy_joules_total%s 100\n", lbl);
	assert_non_null(strstr(t, want));
	snprintf(want, sizeof want, "wattmeter_gpu_power_watts%s 70\n", lbl);
	assert_non_null(strstr(t, want));
	snprintf(want, sizeof want, "wattmeter_gpu_utilization_ratio%s 0.5\n", lbl);
	assert_non_null(strstr(t, want));
	snprintf(want, sizeof want, "wattmeter_gpu_memory_used_bytes%s 2000000000\n", lbl);
	assert_non_null(strstr(t, want));
	snprintf(want, sizeof want, "wattmeter_gpu_sm_clock_hertz%s 1500000000\n", lbl);
	assert_non_null(strstr(t, want));
	assert_null(strstr(t, "wattmeter_gpu_temperature_celsius")); /* not reported */
	assert_non_null(strstr(t, "\npower_draw_gpu 70\n"));
	assert_non_null(strstr(t, "\nmem_used_gpu 2000000000\n"));
	assert_non_null(strstr(t, "wattmeter_sensor_up{sensor=\"nvml\",state=\"ok\"} 1\n"));
	free(t);
	wm_prom_free(p);
}

/* A modelled CPU is labelled method="modeled"; without a core zone,
 * power_draw_cpu is the packages' power. */
static void modeled_cpu_is_labelled(void **state)
{
	(void)state;
	fx f;
	fx_init(&f, 0);
	f.decl[0].modeled = 1;
	f.dev[0].src = &f.src[1];
	f.mch[0].src = &f.src[1];
	f.src[0].state = WM_SRC_ABSENT;
	f.src[0].active = 0;
	f.src[1].active = 1;
	f.view.n_devices = 1;
	f.view.n_channels = 1;
	f.s.n_devices = 1;
	f.s.n_channels = 1;
	wm_prom *p;
	assert_int_equal(wm_prom_new(&f.view, NULL, &p, NULL, 0), 0);
	assert_int_equal(wm_prom_update(p, &f.s, NULL), 0);
	fx_tick(&f);
	assert_int_equal(wm_prom_update(p, &f.s, NULL), 0);
	char *t = render(p, 0);
	assert_non_null(strstr(t, "wattmeter_cpu_energy_joules_total{device=\"cpu\",zone=\"package-0\",source=\"cpu-model\","
				  "method=\"modeled\"} 12.5\n"));
	assert_non_null(strstr(t, "wattmeter_sensor_up{sensor=\"rapl-powercap\",state=\"absent\"} 0\n"));
	assert_non_null(strstr(t, "wattmeter_sensor_up{sensor=\"cpu-model\",state=\"modeled\"} 1\n"));
	assert_non_null(strstr(t, "\npower_draw_cpu 6.25\n"));
	free(t);
	wm_prom_free(p);
}

/* Per-process counters: the cap keeps the biggest spenders and counts the
 * rest; per-cgroup counters keep exited processes' energy. */
/* Per-cgroup series carry the SLURM job, container and pod their path
 * names (issue 18 item 5), so that Prometheus sums a job across nodes. */
static void cgroup_series_carry_job_container_pod(void **state)
{
	(void)state;
	fx f;
	fx_init(&f, 0);
	wm_prom_opts o = {.per_cgroup = 1, .max_series = 100};
	wm_prom *p;
	assert_int_equal(wm_prom_new(&f.view, &o, &p, NULL, 0), 0);
	double e[3][2] = {{2.0, 0.5}, {3.0, 1.0}, {7.0, 1.0}};
	wm_sample_proc rows[3] = {
		{.pid = 10, .comm = "a", .alive = 1, .energy_j = e[0]},
		{.pid = 11, .comm = "b", .alive = 1, .energy_j = e[1]},
		{.pid = 12, .comm = "c", .alive = 1, .energy_j = e[2]},
	};
	const char *cg[3] = {"/slurm/uid_1000/job_4242/step_0",
			     "/kubepods/burstable/pod0d5e7c4a-1111-2222-3333-444455556666/"
			     "4f1e2a9b7c3d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7",
			     "/system.slice/sshd.service"};
	fx_tick(&f);
	f.s.procs = rows;
	f.s.n_procs = 3;
	assert_int_equal(wm_prom_update(p, &f.s, cg), 0);
	char *t = render(p, 0);
	assert_non_null(strstr(t, "{cgroup=\"/slurm/uid_1000/job_4242/step_0\",device=\"cpu\",slurm_job=\"4242\"} 2\n"));
	assert_non_null(strstr(t, ",device=\"cpu\",container=\"kubepods:4f1e2a9b7c3d\","
				  "pod=\"0d5e7c4a-1111-2222-3333-444455556666\"} 3\n"));
	assert_non_null(strstr(t, "{cgroup=\"/system.slice/sshd.service\",device=\"cpu\"} 7\n"));
	free(t);
	wm_prom_free(p);
}

static void per_process_and_cgroup(void **state)
{
	(void)state;
	fx f;
	fx_init(&f, 0);
	wm_prom_opts o = {.per_process = 1, .per_cgroup = 1, .max_series = 4}; /* 2 devices: 2 entities */
	wm_prom *p;
	assert_int_equal(wm_prom_new(&f.view, &o, &p, NULL, 0), 0);
	double e[3][2] = {{1.0, 0.5}, {5.0, 1.0}, {3.0, NAN}};
	wm_sample_proc rows[3] = {
		{.pid = 10, .comm = "small", .alive = 1, .energy_j = e[0]},
		{.pid = 11, .comm = "big\"one", .alive = 1, .energy_j = e[1]},
		{.pid = 12, .comm = "mid", .alive = 1, .energy_j = e[2]},
	};
	const char *cg[3] = {"/a", "/b", "/a"};
	fx_tick(&f);
	f.s.procs = rows;
	f.s.n_procs = 3;
	assert_int_equal(wm_prom_update(p, &f.s, cg), 0);
	char *t = render(p, 0);
	assert_non_null(strstr(t, "wattmeter_process_energy_joules_total{pid=\"11\",comm=\"big\\\"one\",device=\"cpu\"} 5\n"));
	assert_non_null(strstr(t, "wattmeter_process_energy_joules_total{pid=\"12\",comm=\"mid\",device=\"cpu\"} 3\n"));
	assert_null(strstr(t, "pid=\"12\",comm=\"mid\",device=\"dram\"")); /* NaN: not attributed */
	assert_null(strstr(t, "pid=\"10\""));                              /* over the cap */
	assert_non_null(strstr(t, "wattmeter_exporter_dropped_series_total{family=\"process\"} 2\n"));
	assert_non_null(strstr(t, "wattmeter_cgroup_energy_joules_total{cgroup=\"/a\",device=\"cpu\"} 4\n"));
	assert_non_null(strstr(t, "wattmeter_cgroup_energy_joules_total{cgroup=\"/a\",device=\"dram\"} 0.5\n"));
	assert_non_null(strstr(t, "wattmeter_cgroup_energy_joules_total{cgroup=\"/b\",device=\"cpu\"} 5\n"));
	assert_non_null(strstr(t, "wattmeter_exporter_dropped_series_total{family=\"cgroup\"} 0\n"));
	free(t);

	/* pid 10 exits (its last row), 12 grows; then 10 is gone: /a keeps 10's 2 J. */
	e[0][0] = 2.0;
	e[2][0] = 4.0;
	rows[0].alive = 0;
	f.s.t_s = 3.0;
	assert_int_equal(wm_prom_update(p, &f.s, cg), 0);
	const char *cg2[2] = {"/a", "/b"};
	wm_sample_proc rows2[2] = {rows[2], rows[1]};
	f.s.procs = rows2;
	f.s.n_procs = 2;
	f.s.t_s = 4.0;
	assert_int_equal(wm_prom_update(p, &f.s, cg2), 0);
	t = render(p, 0);
	assert_non_null(strstr(t, "wattmeter_cgroup_energy_joules_total{cgroup=\"/a\",device=\"cpu\"} 6\n"));
	/* A third cgroup does not fit (cap 2 entities): counted as dropped. */
	free(t);
	const char *cg3[2] = {"/a", "/c"};
	assert_int_equal(wm_prom_update(p, &f.s, cg3), 0);
	t = render(p, 0);
	assert_non_null(strstr(t, "wattmeter_exporter_dropped_series_total{family=\"cgroup\"} 2\n"));
	assert_null(strstr(t, "cgroup=\"/c\""));
	free(t);
	wm_prom_free(p);
}

static void cgroup_file_parsing(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(wm_prom_parse_cgroup("0::/system.slice/docker-ab.scope\n", out, sizeof out), 0);
	assert_string_equal(out, "/system.slice/docker-ab.scope");
	/* Hybrid hierarchy: the v2 line among v1 lines. */
	assert_int_equal(wm_prom_parse_cgroup("12:cpu,cpuacct:/x\n1:name=systemd:/y\n0::/user.slice\n", out, sizeof out),
			 0);
	assert_string_equal(out, "/user.slice");
	assert_int_equal(wm_prom_parse_cgroup("0::/\n", out, sizeof out), 0);
	assert_string_equal(out, "/");
	assert_int_equal(wm_prom_parse_cgroup("3:memory:/x\n", out, sizeof out), -ENOENT);
	assert_int_equal(wm_prom_parse_cgroup("", out, sizeof out), -ENOENT);
	assert_int_equal(wm_prom_parse_cgroup("0::relative\n", out, sizeof out), -EINVAL);
	assert_int_equal(wm_prom_parse_cgroup("0::\n", out, sizeof out), -EINVAL);
	assert_int_equal(wm_prom_parse_cgroup("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice\n", out,
					      sizeof out),
			 -ENAMETOOLONG);
}

static void accept_negotiation(void **state)
{
	(void)state;
	/* What Prometheus 2.x sends. */
	assert_true(wm_prom_wants_openmetrics("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
					      "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"));
	assert_false(wm_prom_wants_openmetrics(NULL));
	assert_false(wm_prom_wants_openmetrics("*/*"));
	assert_false(wm_prom_wants_openmetrics("text/plain"));
	assert_false(wm_prom_wants_openmetrics("application/openmetrics-text;q=0"));
	assert_false(wm_prom_wants_openmetrics("text/plain;q=1, application/openmetrics-text;q=0.5"));
	assert_true(wm_prom_wants_openmetrics("Application/OpenMetrics-Text"));
	assert_true(wm_prom_accepts_gzip("gzip"));
	assert_true(wm_prom_accepts_gzip("deflate, gzip;q=1.0, *;q=0.5"));
	assert_false(wm_prom_accepts_gzip("gzip;q=0"));
	assert_false(wm_prom_accepts_gzip("identity"));
	assert_false(wm_prom_accepts_gzip(NULL));
	assert_false(wm_prom_accepts_gzip("xgzip"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(small_case_text_exact),
		cmocka_unit_test(small_case_openmetrics),
		cmocka_unit_test(before_and_at_baseline),
		cmocka_unit_test(label_values_are_escaped),
		cmocka_unit_test(values_spell_nan_and_inf),
		cmocka_unit_test(gpu_labels_and_gauges),
		cmocka_unit_test(modeled_cpu_is_labelled),
		cmocka_unit_test(per_process_and_cgroup),
		cmocka_unit_test(cgroup_series_carry_job_container_pod),
		cmocka_unit_test(cgroup_file_parsing),
		cmocka_unit_test(accept_negotiation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
