/* nvml.c — NVIDIA GPUs through NVML, loaded at run time (see nvml.h).
 *
 * Loading. libnvidia-ml is dlopen'd (RTLD_NOW | RTLD_LOCAL) from, in order:
 * cfg->nvml_lib (--nvml-lib), $WATTMETER_NVML_LIB, libnvidia-ml.so.1,
 * libnvidia-ml.so. Nothing of NVIDIA's is needed to build (nvml_api.h holds
 * our declarations), so one binary runs with and without the driver. Each
 * symbol is looked up newest version first (nvmlInit_v2, then nvmlInit); a
 * symbol an old driver lacks disables only what needs it. NVML is
 * initialised once per probe and shut down at close, never per sample.
 *
 * Per GPU N: a device "gpuN" (kind "gpu", attributed by the per-process SM
 * shares of proc_shares) and a channel "gpuN" whose raw value is in
 * millijoules:
 *   - "energy-counter": nvmlDeviceGetTotalEnergyConsumption (Volta and newer),
 *     a driver counter since the driver loaded; going backwards is a driver
 *     reload, which the core's counter takes as a reset (range 0);
 *   - "power-integrated-instant": no counter; the instantaneous power field
 *     (NVML_FI_DEV_POWER_INSTANT) integrated here with the trapezoid rule over
 *     the counter ticks, presented as a cumulative counter;
 *   - "power-integrated-average": the same with nvmlDeviceGetPowerUsage,
 *     which on Ampere and newer (except GA100) is a 1 s average: the curve is
 *     smoothed and lags by about half a second; totals over long runs hold.
 * A MIG-enabled GPU reports board-level energy only (no per-instance
 * figures are invented); its processes are not attributed.
 *
 * Per tick (sampler thread): one power-field call and one energy call per
 * GPU; utilisation, memory, temperature and clocks only on process-tier ticks
 * (cached in between): they are averages the driver updates slowly anyway.
 * A call answering NVML_ERROR_GPU_IS_LOST marks the GPU lost: its channel is
 * a gap from then on and it is not called again (the driver needs a reset).
 *
 * Per process (process tier): nvmlDeviceGetProcessUtilization with each
 * GPU's last-seen timestamp (0 would average the whole driver buffer and
 * lag), and the memory each PID holds from the compute and graphics
 * running-process lists (_v3, _v2, then the unversioned call).
 */
#include "sources/nvml.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "sources/nvml_api.h"
#include "wattmeter.h"

#define PROBE_POLL_MAX_NS 250000000ull  /* counter update measurement: at most 250 ms */
#define PROBE_POLL_STEP_NS 1000000l      /* polled every 1 ms */
#define PERIOD_MIN_UPDATES 10.0          /* warn below this many counter updates per period */
#define LAST_SM_MAX 32                   /* processes per GPU whose last SM split is kept */

typedef enum energy_method {
	EM_NONE = 0,
	EM_COUNTER,
	EM_POWER_INSTANT,
	EM_POWER_AVERAGE,
} energy_method;

static const char *method_name(energy_method m)
{
	switch (m) {
	case EM_COUNTER: return "energy-counter";
	case EM_POWER_INSTANT: return "power-integrated-instant";
	case EM_POWER_AVERAGE: return "power-integrated-average";
	case EM_NONE: break;
	}
	return "none";
}

typedef struct nvml_gpu {
	nvmlDevice_t h;
	unsigned index;
	char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
	char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
	char bus_id[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
	double power_limit_w;        /* NaN unknown */
	int mig;                     /* 1 enabled, 0 disabled, -1 unknown */
	int used_by_run;
	energy_method method;
	int field_instant, field_avg; /* the power fields answer */
	int power_usage;             /* nvmlDeviceGetPowerUsage answers */
	int lost;
	double counter_update_s;     /* measured at probe; NaN unknown */
	/* power integration (no counter): millijoules since the probe */
	double integ_mj;
	uint64_t integ_last_ns;
	double integ_last_w;
	int integ_primed;
	/* slow gauges, refreshed on process-tier ticks */
	double slow[WM_GAUGE_N];
	int slow_read;
	/* per-process utilisation */
	unsigned long long util_last_seen_us;
	int util_supported;          /* 0 once the driver says NOT_SUPPORTED */
	/* the SM split of the last interval that had samples, for intervals
	 * the driver has not sampled yet (shorter than its sampling period) */
	struct {
		int pid;
		double sm;
	} last_sm[LAST_SM_MAX];
	size_t n_last_sm;
} nvml_gpu;

typedef struct nvml_fns {
	nvml_init_fn init;
	nvml_shutdown_fn shutdown;
	nvml_error_string_fn error_string;
	nvml_get_count_fn get_count;
	nvml_get_handle_fn get_handle;
	nvml_sys_string_fn driver_version, nvml_version;
	nvml_dev_string_fn name, uuid;
	nvml_dev_pci_fn pci;
	nvml_dev_uint_fn power_limit, power_usage;
	nvml_dev_ull_fn total_energy;
	nvml_dev_util_fn util;
	nvml_dev_mem_fn mem;
	nvml_dev_temp_fn temp;
	nvml_dev_clock_fn clock;
	nvml_dev_mig_mode_fn mig_mode;
	nvml_dev_fields_fn fields;
	nvml_dev_procs_fn compute_procs, graphics_procs;
	int compute_procs_v, graphics_procs_v;   /* 1, 2 or 3: which layout */
	nvml_dev_proc_util_fn proc_util;
	nvml_dev_uint_fn max_mig_count;
	nvml_dev_mig_handle_fn mig_handle;
} nvml_fns;

typedef struct nvml_priv {
	void *lib;
	char lib_path[512];
	int inited;
	nvml_fns fn;
	char driver_version[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
	char nvml_version[NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE];
	nvml_gpu *gpus;
	size_t n_gpus;
	/* process tier buffers, grown when the driver asks for more */
	nvmlProcessUtilizationSample_t *util_buf;
	unsigned util_cap;
	unsigned char *proc_buf;     /* proc_cap entries of the largest layout (v2) */
	unsigned proc_cap;
	wm_pid_share *merge;
	size_t merge_cap;
} nvml_priv;

/* ---- CUDA_VISIBLE_DEVICES ------------------------------------------------ */

/* Index of the GPU entry `tok` (len bytes) names, or -1. */
static long visible_entry(const char *tok, size_t len, const char *const *uuids, size_t n,
			  const wm_nvml_mig_id *migs, size_t n_migs)
{
	if (len == 0)
		return -1;
	if (tok[0] >= '0' && tok[0] <= '9') {
		unsigned long v = 0;
		for (size_t i = 0; i < len; i++) {
			if (tok[i] < '0' || tok[i] > '9' || v > 100000ul)
				return -1;
			v = v * 10ul + (unsigned long)(tok[i] - '0');
		}
		return v < n ? (long)v : -1;
	}
	if (len > 4 && strncmp(tok, "MIG-", 4) == 0) {
		/* older form: MIG-GPU-<gpu uuid>/<gi>/<ci> names its GPU itself */
		if (len > 8 && strncmp(tok + 4, "GPU-", 4) == 0) {
			const char *slash = memchr(tok, '/', len);
			size_t ulen = (slash ? (size_t)(slash - tok) : len) - 4;
			for (size_t i = 0; i < n; i++)
				if (uuids[i] && strlen(uuids[i]) == ulen && strncmp(uuids[i], tok + 4, ulen) == 0)
					return (long)i;
			return -1;
		}
		for (size_t i = 0; i < n_migs; i++)
			if (migs[i].uuid && strlen(migs[i].uuid) == len && strncmp(migs[i].uuid, tok, len) == 0)
				return migs[i].parent < n ? (long)migs[i].parent : -1;
		return -1;
	}
	if (len > 4 && strncmp(tok, "GPU-", 4) == 0) {
		/* CUDA accepts any unique prefix of the UUID */
		long found = -1;
		for (size_t i = 0; i < n; i++) {
			if (uuids[i] && strlen(uuids[i]) >= len && strncmp(uuids[i], tok, len) == 0) {
				if (found >= 0)
					return -1; /* ambiguous */
				found = (long)i;
			}
		}
		return found;
	}
	return -1;
}

size_t wm_nvml_visible_parse(const char *spec, const char *const *uuids, size_t n, const wm_nvml_mig_id *migs,
			     size_t n_migs, int *used)
{
	size_t count = 0;
	for (size_t i = 0; i < n; i++)
		used[i] = spec ? 0 : 1;
	if (!spec)
		return n;
	const char *p = spec;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t' || p[len - 1] == '\n'))
			len--;
		long idx = visible_entry(p, len, uuids, n, migs, n_migs);
		if (idx < 0)
			break;
		if (used[idx]) {
			/* a repeated MIG instance of the same GPU is fine; a repeated
			 * GPU index or UUID ends the list, as in CUDA */
			if (!(len > 4 && strncmp(p, "MIG-", 4) == 0))
				break;
		} else {
			used[idx] = 1;
			count++;
		}
		if (!end)
			break;
		p = end + 1;
	}
	return count;
}

/* ---- helpers --------------------------------------------------------------- */

static const char *nvml_errstr(const nvml_priv *P, nvmlReturn_t r)
{
	const char *s = P->fn.error_string ? P->fn.error_string(r) : NULL;
	return s ? s : "NVML error";
}

static void *sym_first(void *lib, const char *const *names, int *which)
{
	for (int i = 0; names[i]; i++) {
		void *p = dlsym(lib, names[i]);
		if (p) {
			if (which)
				*which = i;
			return p;
		}
	}
	return NULL;
}

#define SYM1(lib, name) dlsym((lib), (name))

static void load_symbols(nvml_priv *P)
{
	void *L = P->lib;
	nvml_fns *f = &P->fn;
	static const char *const init_names[] = {"nvmlInit_v2", "nvmlInit", NULL};
	static const char *const count_names[] = {"nvmlDeviceGetCount_v2", "nvmlDeviceGetCount", NULL};
	static const char *const handle_names[] = {"nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex",
						   NULL};
	static const char *const compute_names[] = {"nvmlDeviceGetComputeRunningProcesses_v3",
						    "nvmlDeviceGetComputeRunningProcesses_v2",
						    "nvmlDeviceGetComputeRunningProcesses", NULL};
	static const char *const graphics_names[] = {"nvmlDeviceGetGraphicsRunningProcesses_v3",
						     "nvmlDeviceGetGraphicsRunningProcesses_v2",
						     "nvmlDeviceGetGraphicsRunningProcesses", NULL};
	int which = 0;
	/* POSIX guarantees that a dlsym'd object pointer converts to a function pointer. */
	f->init = (nvml_init_fn)sym_first(L, init_names, NULL);
	f->shutdown = (nvml_shutdown_fn)SYM1(L, "nvmlShutdown");
	f->error_string = (nvml_error_string_fn)SYM1(L, "nvmlErrorString");
	f->get_count = (nvml_get_count_fn)sym_first(L, count_names, NULL);
	f->get_handle = (nvml_get_handle_fn)sym_first(L, handle_names, NULL);
	f->driver_version = (nvml_sys_string_fn)SYM1(L, "nvmlSystemGetDriverVersion");
	f->nvml_version = (nvml_sys_string_fn)SYM1(L, "nvmlSystemGetNVMLVersion");
	f->name = (nvml_dev_string_fn)SYM1(L, "nvmlDeviceGetName");
	f->uuid = (nvml_dev_string_fn)SYM1(L, "nvmlDeviceGetUUID");
	{
		static const char *const pci_names[] = {"nvmlDeviceGetPciInfo_v3", "nvmlDeviceGetPciInfo_v2",
							"nvmlDeviceGetPciInfo", NULL};
		f->pci = (nvml_dev_pci_fn)sym_first(L, pci_names, NULL);
	}
	f->power_limit = (nvml_dev_uint_fn)SYM1(L, "nvmlDeviceGetEnforcedPowerLimit");
	f->power_usage = (nvml_dev_uint_fn)SYM1(L, "nvmlDeviceGetPowerUsage");
	f->total_energy = (nvml_dev_ull_fn)SYM1(L, "nvmlDeviceGetTotalEnergyConsumption");
	f->util = (nvml_dev_util_fn)SYM1(L, "nvmlDeviceGetUtilizationRates");
	f->mem = (nvml_dev_mem_fn)SYM1(L, "nvmlDeviceGetMemoryInfo");
	f->temp = (nvml_dev_temp_fn)SYM1(L, "nvmlDeviceGetTemperature");
	f->clock = (nvml_dev_clock_fn)SYM1(L, "nvmlDeviceGetClockInfo");
	f->mig_mode = (nvml_dev_mig_mode_fn)SYM1(L, "nvmlDeviceGetMigMode");
	f->fields = (nvml_dev_fields_fn)SYM1(L, "nvmlDeviceGetFieldValues");
	f->compute_procs = (nvml_dev_procs_fn)sym_first(L, compute_names, &which);
	f->compute_procs_v = 3 - which;
	which = 0;
	f->graphics_procs = (nvml_dev_procs_fn)sym_first(L, graphics_names, &which);
	f->graphics_procs_v = 3 - which;
	f->proc_util = (nvml_dev_proc_util_fn)SYM1(L, "nvmlDeviceGetProcessUtilization");
	f->max_mig_count = (nvml_dev_uint_fn)SYM1(L, "nvmlDeviceGetMaxMigDeviceCount");
	f->mig_handle = (nvml_dev_mig_handle_fn)SYM1(L, "nvmlDeviceGetMigDeviceHandleByIndex");
}

static void copy_str(char *dst, size_t cap, const char *src)
{
	int n = snprintf(dst, cap, "%s", src);
	if (n < 0)
		dst[0] = '\0';
	/* truncation keeps a prefix: only used for names and messages */
}

static void set_detail(wm_source *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_detail(wm_source *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(s->detail, sizeof s->detail, fmt, ap);
	va_end(ap);
	if (n < 0)
		s->detail[0] = '\0';
}

static void set_fix(wm_source *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_fix(wm_source *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(s->fix, sizeof s->fix, fmt, ap);
	va_end(ap);
	if (n < 0)
		s->fix[0] = '\0';
}

static void sleep_ns(long ns)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = ns};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void priv_free(nvml_priv *P)
{
	if (!P)
		return;
	if (P->inited && P->fn.shutdown)
		(void)P->fn.shutdown();
	if (P->lib)
		dlclose(P->lib);
	free(P->gpus);
	free(P->util_buf);
	free(P->proc_buf);
	free(P->merge);
	free(P);
}

/* ---- reading power ---------------------------------------------------------- */

/* Instantaneous and averaged power of g in watts (NaN when not available).
 * Returns the NVML status of the call that failed with GPU_IS_LOST, if any. */
static nvmlReturn_t read_power(const nvml_priv *P, const nvml_gpu *g, double *inst_w, double *avg_w)
{
	*inst_w = NAN;
	*avg_w = NAN;
	if (P->fn.fields && (g->field_instant || g->field_avg)) {
		nvmlFieldValue_t v[2];
		memset(v, 0, sizeof v);
		v[0].fieldId = NVML_FI_DEV_POWER_INSTANT;
		v[1].fieldId = NVML_FI_DEV_POWER_AVERAGE;
		nvmlReturn_t r = P->fn.fields(g->h, 2, v);
		if (r == NVML_ERROR_GPU_IS_LOST)
			return r;
		if (r == NVML_SUCCESS) {
			if (g->field_instant && v[0].nvmlReturn == NVML_SUCCESS)
				*inst_w = (double)v[0].value.uiVal / 1000.0;
			if (g->field_avg && v[1].nvmlReturn == NVML_SUCCESS)
				*avg_w = (double)v[1].value.uiVal / 1000.0;
		}
	}
	/* nvmlDeviceGetPowerUsage is the averaged reading where the average
	 * field is unknown (and a 1 s average on Ampere+ anyway) */
	if (isnan(*avg_w) && g->power_usage && P->fn.power_usage) {
		unsigned mw = 0;
		nvmlReturn_t r = P->fn.power_usage(g->h, &mw);
		if (r == NVML_ERROR_GPU_IS_LOST)
			return r;
		if (r == NVML_SUCCESS)
			*avg_w = (double)mw / 1000.0;
	}
	return NVML_SUCCESS;
}

static nvmlReturn_t read_slow_gauges(const nvml_priv *P, nvml_gpu *g)
{
	nvmlReturn_t r;
	for (int k = 0; k < WM_GAUGE_N; k++)
		g->slow[k] = NAN;
	if (P->fn.util) {
		nvmlUtilization_t u;
		r = P->fn.util(g->h, &u);
		if (r == NVML_ERROR_GPU_IS_LOST)
			return r;
		if (r == NVML_SUCCESS) {
			g->slow[WM_GAUGE_UTIL] = (double)u.gpu / 100.0;
			g->slow[WM_GAUGE_MEM_UTIL] = (double)u.memory / 100.0;
		}
	}
	if (P->fn.mem) {
		nvmlMemory_t m;
		r = P->fn.mem(g->h, &m);
		if (r == NVML_ERROR_GPU_IS_LOST)
			return r;
		if (r == NVML_SUCCESS) {
			g->slow[WM_GAUGE_MEM_USED_BYTES] = (double)m.used;
			g->slow[WM_GAUGE_MEM_TOTAL_BYTES] = (double)m.total;
		}
	}
	if (P->fn.temp) {
		unsigned c;
		r = P->fn.temp(g->h, NVML_TEMPERATURE_GPU, &c);
		if (r == NVML_ERROR_GPU_IS_LOST)
			return r;
		if (r == NVML_SUCCESS)
			g->slow[WM_GAUGE_TEMP_C] = (double)c;
	}
	if (P->fn.clock) {
		unsigned mhz;
		r = P->fn.clock(g->h, NVML_CLOCK_SM, &mhz);
		if (r == NVML_ERROR_GPU_IS_LOST)
			return r;
		if (r == NVML_SUCCESS)
			g->slow[WM_GAUGE_CLOCK_SM_MHZ] = (double)mhz;
		r = P->fn.clock(g->h, NVML_CLOCK_MEM, &mhz);
		if (r == NVML_ERROR_GPU_IS_LOST)
			return r;
		if (r == NVML_SUCCESS)
			g->slow[WM_GAUGE_CLOCK_MEM_MHZ] = (double)mhz;
	}
	g->slow_read = 1;
	return NVML_SUCCESS;
}

#define NVML_LIMIT_FACTOR 2.0
#define NVML_CEILING_W 3000.0 /* no board draws this (B200: 1 kW); the bound without a limit */

static void nvml_read(wm_source *s, const wm_tick *tick, uint64_t *raw, unsigned char *ok, double *gauges)
{
	nvml_priv *P = s->priv;
	if (!P)
		return;
	for (size_t i = 0; i < P->n_gpus && i < s->n_channels; i++) {
		nvml_gpu *g = &P->gpus[i];
		double *gv = gauges ? gauges + i * WM_GAUGE_N : NULL;
		ok[i] = 0;
		s->channels[i].read_error = g->lost ? "GPU is lost" : "NVML error";
		if (g->lost || g->method == EM_NONE)
			continue;
		/* the counter first: it is the value the tick's time stamps */
		nvmlReturn_t r;
		if (g->method == EM_COUNTER) {
			unsigned long long mj = 0;
			r = P->fn.total_energy(g->h, &mj);
			if (r == NVML_ERROR_GPU_IS_LOST)
				goto lost;
			if (r == NVML_SUCCESS) {
				raw[i] = (uint64_t)mj;
				ok[i] = 1;
			}
		}
		double inst_w, avg_w;
		r = read_power(P, g, &inst_w, &avg_w);
		if (r == NVML_ERROR_GPU_IS_LOST)
			goto lost;
		if (g->method != EM_COUNTER) {
			double w = g->method == EM_POWER_INSTANT ? inst_w : avg_w;
			if (isnan(w)) {
				/* a gap: do not bridge it with a guess */
				g->integ_primed = 0;
			} else {
				if (g->integ_primed && tick->now_ns > g->integ_last_ns) {
					double dt_s = (double)(tick->now_ns - g->integ_last_ns) / 1e9;
					g->integ_mj += (g->integ_last_w + w) / 2.0 * dt_s * 1000.0;
				}
				g->integ_primed = 1;
				g->integ_last_ns = tick->now_ns;
				g->integ_last_w = w;
				raw[i] = (uint64_t)g->integ_mj;
				ok[i] = 1;
			}
		}
		if (!g->slow_read || tick->proc_tier || tick->dt_s <= 0) {
			r = read_slow_gauges(P, g);
			if (r == NVML_ERROR_GPU_IS_LOST)
				goto lost;
		}
		if (gv) {
			for (int k = 0; k < WM_GAUGE_N; k++)
				if (!isnan(g->slow[k]))
					gv[k] = g->slow[k];
			gv[WM_GAUGE_POWER_INSTANT_W] = inst_w;
			gv[WM_GAUGE_POWER_AVG_W] = avg_w;
		}
		continue;
	lost:
		/* The driver needs a GPU reset to bring it back: stop asking (a lost
		 * GPU's calls can be slow) and leave a gap for the rest of the run. */
		g->lost = 1;
		ok[i] = 0;
		s->channels[i].read_error = "GPU is lost";
		if (gv)
			for (int k = 0; k < WM_GAUGE_N; k++)
				gv[k] = NAN;
	}
}

/* ---- per-process shares ---------------------------------------------------------- */

static int merge_find(nvml_priv *P, size_t n, int pid, size_t *at)
{
	for (size_t i = 0; i < n; i++)
		if (P->merge[i].pid == pid) {
			*at = i;
			return 0;
		}
	if (n >= P->merge_cap) {
		size_t cap = P->merge_cap ? P->merge_cap * 2 : 32;
		wm_pid_share *m = realloc(P->merge, cap * sizeof *m);
		if (!m)
			return -ENOMEM;
		P->merge = m;
		P->merge_cap = cap;
	}
	P->merge[n].pid = pid;
	P->merge[n].share = 0.0;
	P->merge[n].mem_bytes = 0;
	*at = n;
	return 1;
}

/* Adds the processes of one running-process list to the merge table
 * (memory per pid: the larger of its compute and graphics figures). */
static int add_proc_list(nvml_priv *P, const nvml_gpu *g, nvml_dev_procs_fn fn, int ver, size_t *n)
{
	if (!fn)
		return 0;
	for (int attempt = 0; attempt < 3; attempt++) {
		unsigned count = P->proc_cap;
		nvmlReturn_t r = fn(g->h, &count, P->proc_buf);
		if (r == NVML_ERROR_INSUFFICIENT_SIZE) {
			unsigned cap = count > P->proc_cap ? count + 16 : P->proc_cap * 2 + 16;
			unsigned char *b = realloc(P->proc_buf, (size_t)cap * sizeof(nvmlProcessInfo_v2_t));
			if (!b)
				return -ENOMEM;
			P->proc_buf = b;
			P->proc_cap = cap;
			continue;
		}
		if (r != NVML_SUCCESS)
			return r == NVML_ERROR_GPU_IS_LOST ? -ENODEV : 0;
		if (count > P->proc_cap)
			count = P->proc_cap;
		for (unsigned k = 0; k < count; k++) {
			unsigned pid;
			unsigned long long mem;
			if (ver == 1) {
				const nvmlProcessInfo_v1_t *e = (const nvmlProcessInfo_v1_t *)(const void *)P->proc_buf + k;
				pid = e->pid;
				mem = e->usedGpuMemory;
			} else {
				const nvmlProcessInfo_v2_t *e = (const nvmlProcessInfo_v2_t *)(const void *)P->proc_buf + k;
				pid = e->pid;
				mem = e->usedGpuMemory;
			}
			if (pid == 0 || pid > 0x7fffffffu)
				continue;
			size_t at;
			int rc = merge_find(P, *n, (int)pid, &at);
			if (rc < 0)
				return rc;
			if (rc == 1)
				(*n)++;
			if (mem != NVML_VALUE_NOT_AVAILABLE && mem > P->merge[at].mem_bytes)
				P->merge[at].mem_bytes = mem;
		}
		return 0;
	}
	return 0;
}

static int nvml_proc_shares(wm_source *s, size_t dev, wm_pid_share *out, size_t cap)
{
	nvml_priv *P = s->priv;
	if (!P || dev >= P->n_gpus)
		return -EINVAL;
	nvml_gpu *g = &P->gpus[dev];
	if (g->lost)
		return -ENODEV;
	if (g->mig == 1)
		return -EOPNOTSUPP; /* board-level energy only: no per-instance split */

	size_t n = 0;
	double sm_sum = 0.0;
	int no_new_samples = 0;

	/* 1. SM utilisation per pid since the last call */
	if (P->fn.proc_util && g->util_supported) {
		for (int attempt = 0; attempt < 3; attempt++) {
			unsigned count = P->util_cap;
			nvmlReturn_t r = P->fn.proc_util(g->h, P->util_buf, &count, g->util_last_seen_us);
			if (r == NVML_ERROR_INSUFFICIENT_SIZE) {
				unsigned ncap = count > P->util_cap ? count + 32 : P->util_cap * 2 + 32;
				nvmlProcessUtilizationSample_t *b = realloc(P->util_buf, (size_t)ncap * sizeof *b);
				if (!b)
					return -ENOMEM;
				P->util_buf = b;
				P->util_cap = ncap;
				continue;
			}
			if (r == NVML_ERROR_NOT_FOUND) {
				no_new_samples = 1; /* none since the last call */
				break;
			}
			if (r == NVML_ERROR_NOT_SUPPORTED) {
				g->util_supported = 0;
				break;
			}
			if (r == NVML_ERROR_GPU_IS_LOST) {
				g->lost = 1;
				return -ENODEV;
			}
			if (r != NVML_SUCCESS)
				break;
			if (count > P->util_cap)
				count = P->util_cap;
			for (unsigned k = 0; k < count; k++) {
				const nvmlProcessUtilizationSample_t *e = &P->util_buf[k];
				if (e->timeStamp > g->util_last_seen_us)
					g->util_last_seen_us = e->timeStamp;
				if (e->pid == 0 || e->pid > 0x7fffffffu)
					continue;
				size_t at;
				int rc = merge_find(P, n, (int)e->pid, &at);
				if (rc < 0)
					return rc;
				if (rc == 1)
					n++;
				double sm = e->smUtil > 100 ? 100.0 : (double)e->smUtil;
				P->merge[at].share += sm;
				sm_sum += sm;
			}
			break;
		}
	}

	/* 2. memory per pid, and the processes present on the GPU */
	int rc = add_proc_list(P, g, P->fn.compute_procs, P->fn.compute_procs_v, &n);
	if (rc == 0)
		rc = add_proc_list(P, g, P->fn.graphics_procs, P->fn.graphics_procs_v, &n);
	if (rc == -ENODEV) {
		g->lost = 1;
		return rc;
	}
	if (rc < 0)
		return rc;

	/* 3. shares: by SM utilisation over the interval. An interval the
	 * driver has not sampled (it samples every ~1/6 s; the last interval
	 * of a run can be shorter) keeps the split of the last sampled one,
	 * for the processes still present. With no SM split known (an idle
	 * GPU, or no per-process utilisation from this driver): equally among
	 * the processes present. None present: none (unattributed). */
	if (sm_sum > 0.0) {
		g->n_last_sm = 0;
		for (size_t i = 0; i < n && g->n_last_sm < LAST_SM_MAX; i++) {
			if (P->merge[i].share > 0.0) {
				g->last_sm[g->n_last_sm].pid = P->merge[i].pid;
				g->last_sm[g->n_last_sm].sm = P->merge[i].share;
				g->n_last_sm++;
			}
		}
	} else if (no_new_samples) {
		for (size_t i = 0; i < n; i++)
			for (size_t k = 0; k < g->n_last_sm; k++)
				if (g->last_sm[k].pid == P->merge[i].pid) {
					P->merge[i].share = g->last_sm[k].sm;
					sm_sum += g->last_sm[k].sm;
				}
	}
	if (sm_sum > 0.0) {
		for (size_t i = 0; i < n; i++)
			P->merge[i].share /= sm_sum;
	} else if (n > 0) {
		for (size_t i = 0; i < n; i++)
			P->merge[i].share = 1.0 / (double)n;
	}
	size_t w = n < cap ? n : cap;
	for (size_t i = 0; i < w; i++)
		out[i] = P->merge[i];
	return (int)w;
}

/* ---- probe ---------------------------------------------------------------------------- */

static const char FIX_NO_LIB[] =
	"No NVML library (libnvidia-ml.so.1) was found: GPUs are not measured. If this machine has an "
	"NVIDIA GPU, install the NVIDIA driver (it provides libnvidia-ml.so.1), or point --nvml-lib or "
	"WATTMETER_NVML_LIB at libnvidia-ml.so.1 (in a container, mount the driver's libraries, e.g. "
	"`docker run --gpus all` with the NVIDIA Container Toolkit).";

/* Whether <sysfs>/bus/pci/devices lists an NVIDIA device (vendor 0x10de):
 * 1 yes, 0 no, -1 unknown (no PCI listing under this root). With no NVML
 * library and no NVIDIA device there is nothing for the user to fix, and the
 * run's summary need not say so every time. */
static int has_nvidia_pci(int sysfs_dirfd)
{
	int fd;
	do
		fd = openat(sysfs_dirfd, "bus/pci/devices", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -1;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	int found = 0;
	struct dirent *e;
	while (!found && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char vendor[16], path[300];
		if (snprintf(path, sizeof path, "%s/vendor", e->d_name) >= (int)sizeof path)
			continue;
		if (wm_read_file_at(dirfd(d), path, vendor, sizeof vendor) > 0 && strncmp(vendor, "0x10de", 6) == 0)
			found = 1;
	}
	closedir(d);
	return found;
}

/* Fills state/detail/fix for an nvmlInit failure. */
static void init_failed(wm_source *s, const nvml_priv *P, nvmlReturn_t r)
{
	const char *es = nvml_errstr(P, r);
	switch (r) {
	case NVML_ERROR_DRIVER_NOT_LOADED:
		s->state = WM_SRC_ABSENT;
		set_detail(s, "NVML loaded from %s, but the NVIDIA kernel driver is not running (%s)", P->lib_path, es);
		set_fix(s, "Load the NVIDIA kernel driver (`sudo modprobe nvidia`; `nvidia-smi` should then list "
			   "the GPUs), or pass --no-gpu to stop looking for GPUs.");
		break;
	case NVML_ERROR_NO_PERMISSION:
		s->state = WM_SRC_FORBIDDEN;
		set_detail(s, "NVML loaded from %s, but initialising it was refused (%s)", P->lib_path, es);
		set_fix(s, "Give this user access to the GPU device files (/dev/nvidia*: usually the `video` "
			   "group, `sudo usermod -aG video $USER`, then log in again), or run wattmeter as root.");
		break;
	case NVML_ERROR_LIB_RM_VERSION_MISMATCH:
		s->state = WM_SRC_ERROR;
		set_detail(s, "NVML from %s does not match the running NVIDIA kernel driver (%s)", P->lib_path, es);
		set_fix(s, "The driver was upgraded without reloading the kernel module: reboot, or reload the "
			   "nvidia modules; or point --nvml-lib at the library matching the running driver.");
		break;
	default:
		s->state = WM_SRC_ERROR;
		set_detail(s, "NVML from %s failed to initialise: %s (%d)", P->lib_path, es, (int)r);
		set_fix(s, "Check that `nvidia-smi` works; if it does not, reinstall or reload the NVIDIA "
			   "driver. --no-gpu stops looking for GPUs.");
		break;
	}
}

/* Polls the energy counters of the GPUs that have one until each has
 * advanced PROBE_ADVANCES times or PROBE_POLL_MAX_NS has passed, and takes
 * the mean time between advances as the update interval.  An advance happened
 * between the last read that saw the old value and the first that saw the new
 * one; its time is taken as the middle of that bracket, so a read delayed by
 * the scheduler widens one bracket by its delay but biases neither end (taking
 * the later read alone made a 20 ms counter read as 18 ms under load).  The
 * mean over up to PROBE_ADVANCES - 1 intervals divides what is left. */
#define PROBE_ADVANCES 5
static void measure_update_intervals(nvml_priv *P)
{
	size_t n = P->n_gpus, todo = 0;
	unsigned long long *last = calloc(n ? n : 1, sizeof *last);
	uint64_t *prev_read_ns = calloc(n ? n : 1, sizeof *prev_read_ns);
	double *first_mid_ns = calloc(n ? n : 1, sizeof *first_mid_ns);
	double *last_mid_ns = calloc(n ? n : 1, sizeof *last_mid_ns);
	int *advances = calloc(n ? n : 1, sizeof *advances);
	if (!last || !prev_read_ns || !first_mid_ns || !last_mid_ns || !advances)
		goto out;
	for (size_t i = 0; i < n; i++) {
		nvml_gpu *g = &P->gpus[i];
		g->counter_update_s = NAN;
		if (g->method != EM_COUNTER)
			continue;
		if (P->fn.total_energy(g->h, &last[i]) != NVML_SUCCESS)
			continue;
		prev_read_ns[i] = wm_now_mono_ns();
		todo++;
		g->counter_update_s = -1.0; /* in progress */
	}
	uint64_t t0 = wm_now_mono_ns();
	while (todo > 0 && wm_now_mono_ns() - t0 < PROBE_POLL_MAX_NS) {
		sleep_ns(PROBE_POLL_STEP_NS);
		for (size_t i = 0; i < n; i++) {
			nvml_gpu *g = &P->gpus[i];
			if (!(g->counter_update_s < 0.0) || advances[i] >= PROBE_ADVANCES)
				continue;
			unsigned long long v;
			nvmlReturn_t r = P->fn.total_energy(g->h, &v);
			uint64_t read_ns = wm_now_mono_ns();
			if (r != NVML_SUCCESS)
				continue;
			if (v != last[i]) {
				double mid_ns = 0.5 * ((double)prev_read_ns[i] + (double)read_ns);
				if (advances[i] == 0)
					first_mid_ns[i] = mid_ns;
				last_mid_ns[i] = mid_ns;
				last[i] = v;
				if (++advances[i] >= PROBE_ADVANCES)
					todo--;
			}
			prev_read_ns[i] = read_ns;
		}
	}
	for (size_t i = 0; i < n; i++) {
		nvml_gpu *g = &P->gpus[i];
		if (!(g->counter_update_s < 0.0))
			continue;
		g->counter_update_s = advances[i] >= 2
					      ? (last_mid_ns[i] - first_mid_ns[i]) / 1e9 / (double)(advances[i] - 1)
					      : NAN;
	}
out:
	free(last);
	free(prev_read_ns);
	free(first_mid_ns);
	free(last_mid_ns);
	free(advances);
}

/* Decides how g's energy is read: the counter, else integrated power. */
static void probe_energy_method(nvml_priv *P, nvml_gpu *g)
{
	g->method = EM_NONE;
	if (P->fn.fields) {
		nvmlFieldValue_t v[2];
		memset(v, 0, sizeof v);
		v[0].fieldId = NVML_FI_DEV_POWER_INSTANT;
		v[1].fieldId = NVML_FI_DEV_POWER_AVERAGE;
		if (P->fn.fields(g->h, 2, v) == NVML_SUCCESS) {
			g->field_instant = v[0].nvmlReturn == NVML_SUCCESS;
			g->field_avg = v[1].nvmlReturn == NVML_SUCCESS;
		}
	}
	if (P->fn.power_usage) {
		unsigned mw;
		g->power_usage = P->fn.power_usage(g->h, &mw) == NVML_SUCCESS;
	}
	if (P->fn.total_energy) {
		unsigned long long mj;
		if (P->fn.total_energy(g->h, &mj) == NVML_SUCCESS) {
			g->method = EM_COUNTER;
			return;
		}
	}
	if (g->field_instant)
		g->method = EM_POWER_INSTANT;
	else if (g->field_avg || g->power_usage)
		g->method = EM_POWER_AVERAGE;
}

static int info_json(const nvml_gpu *g, char *out, size_t cap)
{
	wm_buf b;
	wm_buf_init(&b);
	wm_buf_printf(&b, "{\"index\":%u,\"name\":", g->index);
	wm_buf_json_str(&b, g->name);
	wm_buf_puts(&b, ",\"uuid\":");
	wm_buf_json_str(&b, g->uuid);
	wm_buf_puts(&b, ",\"pci_bus_id\":");
	wm_buf_json_str(&b, g->bus_id);
	wm_buf_puts(&b, ",\"power_limit_w\":");
	wm_buf_json_fixed(&b, g->power_limit_w, 3);
	wm_buf_printf(&b, ",\"mig_mode\":%s,\"energy_source\":\"%s\",\"energy_scope\":\"%s\","
		      "\"counter_update_s\":",
		      g->mig == 1 ? "\"enabled\"" : g->mig == 0 ? "\"disabled\"" : "null",
		      method_name(g->method), g->mig == 1 ? "board (MIG: no per-instance energy)" : "board");
	wm_buf_json_fixed(&b, g->counter_update_s, 4);
	wm_buf_printf(&b, ",\"used_by_run\":%s}", g->used_by_run ? "true" : "false");
	int rc = wm_buf_error(&b);
	if (!rc) {
		if (b.len >= cap)
			rc = -ENAMETOOLONG;
		else
			memcpy(out, b.data, b.len + 1);
	}
	wm_buf_free(&b);
	return rc;
}

/* MIG device UUIDs and their parent GPUs, for CUDA_VISIBLE_DEVICES "MIG-..."
 * entries. Best effort: none when the driver lacks the calls. */
static size_t collect_migs(nvml_priv *P, wm_nvml_mig_id *ids, char (*uuids)[NVML_DEVICE_UUID_V2_BUFFER_SIZE],
			   size_t cap)
{
	size_t n = 0;
	if (!P->fn.max_mig_count || !P->fn.mig_handle || !P->fn.uuid)
		return 0;
	for (size_t i = 0; i < P->n_gpus; i++) {
		nvml_gpu *g = &P->gpus[i];
		unsigned max = 0;
		if (g->mig != 1 || P->fn.max_mig_count(g->h, &max) != NVML_SUCCESS)
			continue;
		for (unsigned k = 0; k < max && n < cap; k++) {
			nvmlDevice_t mh;
			if (P->fn.mig_handle(g->h, k, &mh) != NVML_SUCCESS)
				continue;
			if (P->fn.uuid(mh, uuids[n], NVML_DEVICE_UUID_V2_BUFFER_SIZE) != NVML_SUCCESS)
				continue;
			uuids[n][NVML_DEVICE_UUID_V2_BUFFER_SIZE - 1] = '\0';
			ids[n].uuid = uuids[n];
			ids[n].parent = i;
			n++;
		}
	}
	return n;
}

#define MAX_MIG_IDS 64

static int mark_visible(nvml_priv *P, const wm_meter_config *cfg)
{
	const char *spec = cfg && cfg->cuda_visible_devices ? cfg->cuda_visible_devices : getenv("CUDA_VISIBLE_DEVICES");
	size_t n = P->n_gpus;
	const char **uuids = calloc(n ? n : 1, sizeof *uuids);
	int *used = calloc(n ? n : 1, sizeof *used);
	wm_nvml_mig_id *migs = calloc(MAX_MIG_IDS, sizeof *migs);
	char(*mig_uuids)[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = calloc(MAX_MIG_IDS, sizeof *mig_uuids);
	int rc = 0;
	if (!uuids || !used || !migs || !mig_uuids) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		uuids[i] = P->gpus[i].uuid;
	size_t n_migs = spec && strstr(spec, "MIG-") ? collect_migs(P, migs, mig_uuids, MAX_MIG_IDS) : 0;
	wm_nvml_visible_parse(spec, uuids, n, migs, n_migs, used);
	for (size_t i = 0; i < n; i++)
		P->gpus[i].used_by_run = used[i];
out:
	free(uuids);
	free(used);
	free(migs);
	free(mig_uuids);
	return rc;
}

static int nvml_probe(wm_source *s, const wm_source_ctx *ctx, char *err, size_t errlen)
{
	const wm_meter_config *cfg = ctx ? ctx->cfg : NULL;
	s->state = WM_SRC_ABSENT;
	s->detail[0] = '\0';
	s->fix[0] = '\0';
	s->priv = NULL;

	if (cfg && cfg->no_gpu) {
		set_detail(s, "turned off (--no-gpu)");
		return 0;
	}

	const char *explicit_lib = cfg && cfg->nvml_lib && cfg->nvml_lib[0] ? cfg->nvml_lib : NULL;
	const char *env_lib = getenv("WATTMETER_NVML_LIB");
	if (env_lib && !env_lib[0])
		env_lib = NULL;

	nvml_priv *P = calloc(1, sizeof *P);
	if (!P)
		return wm_err(err, errlen, -ENOMEM, "out of memory probing NVML");

	const char *tried = NULL;
	if (explicit_lib || env_lib) {
		tried = explicit_lib ? explicit_lib : env_lib;
		P->lib = dlopen(tried, RTLD_NOW | RTLD_LOCAL);
		if (!P->lib) {
			const char *why = dlerror();
			int e = access(tried, R_OK) == 0 ? ELIBBAD : (errno ? errno : ENOENT);
			if (explicit_lib) {
				priv_free(P);
				return wm_err(err, errlen, -e,
					      "--nvml-lib %s: cannot load it (%s); give the path of libnvidia-ml.so.1 "
					      "(e.g. /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1), or drop --nvml-lib",
					      tried, why ? why : "dlopen failed");
			}
			/* a stale environment variable must not stop every command */
			s->state = WM_SRC_ERROR;
			set_detail(s, "WATTMETER_NVML_LIB=%s does not load: %s", tried, why ? why : "dlopen failed");
			set_fix(s, "Point WATTMETER_NVML_LIB at libnvidia-ml.so.1 (e.g. "
				   "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1), or unset it.");
			priv_free(P);
			return 0;
		}
	} else {
		static const char *const names[] = {"libnvidia-ml.so.1", "libnvidia-ml.so"};
		for (size_t i = 0; i < WM_ARRAY_LEN(names) && !P->lib; i++) {
			P->lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
			tried = names[i];
		}
		if (!P->lib) {
			s->state = WM_SRC_ABSENT;
			if (ctx && has_nvidia_pci(ctx->sysfs_dirfd) == 0) {
				set_detail(s, "no NVIDIA GPU (no PCI device of vendor 0x10de) and no NVML library");
			} else {
				set_detail(s, "no NVML library (libnvidia-ml.so.1 not found)");
				copy_str(s->fix, sizeof s->fix, FIX_NO_LIB);
			}
			priv_free(P);
			return 0;
		}
	}
	copy_str(P->lib_path, sizeof P->lib_path, tried);
	load_symbols(P);

	if (!P->fn.init || !P->fn.shutdown || !P->fn.get_count || !P->fn.get_handle) {
		if (explicit_lib) {
			priv_free(P);
			return wm_err(err, errlen, -ELIBBAD,
				      "--nvml-lib %s is not an NVML library (it lacks nvmlInit, nvmlShutdown, "
				      "nvmlDeviceGetCount or nvmlDeviceGetHandleByIndex); give the path of "
				      "libnvidia-ml.so.1",
				      tried);
		}
		s->state = WM_SRC_ERROR;
		set_detail(s, "%s is not a usable NVML library (no nvmlInit/nvmlDeviceGetCount)", tried);
		set_fix(s, "Reinstall the NVIDIA driver, or point --nvml-lib or WATTMETER_NVML_LIB at its "
			   "libnvidia-ml.so.1.");
		priv_free(P);
		return 0;
	}

	nvmlReturn_t r = P->fn.init();
	if (r != NVML_SUCCESS) {
		init_failed(s, P, r);
		priv_free(P);
		return 0;
	}
	P->inited = 1;

	copy_str(P->driver_version, sizeof P->driver_version, "unknown");
	copy_str(P->nvml_version, sizeof P->nvml_version, "unknown");
	if (P->fn.driver_version && P->fn.driver_version(P->driver_version, sizeof P->driver_version) != NVML_SUCCESS)
		copy_str(P->driver_version, sizeof P->driver_version, "unknown");
	if (P->fn.nvml_version && P->fn.nvml_version(P->nvml_version, sizeof P->nvml_version) != NVML_SUCCESS)
		copy_str(P->nvml_version, sizeof P->nvml_version, "unknown");
	P->driver_version[sizeof P->driver_version - 1] = '\0';
	P->nvml_version[sizeof P->nvml_version - 1] = '\0';

	unsigned count = 0;
	r = P->fn.get_count(&count);
	if (r != NVML_SUCCESS) {
		s->state = r == NVML_ERROR_NO_PERMISSION ? WM_SRC_FORBIDDEN : WM_SRC_ERROR;
		set_detail(s, "NVML %s (driver %s) cannot count the GPUs: %s", P->nvml_version, P->driver_version,
			   nvml_errstr(P, r));
		set_fix(s, "Check that `nvidia-smi` lists the GPUs; give this user access to /dev/nvidia* "
			   "(the `video` group) or run as root.");
		priv_free(P);
		return 0;
	}
	if (count == 0) {
		s->state = WM_SRC_ABSENT;
		set_detail(s, "NVML %s (driver %s, %s): no NVIDIA GPU", P->nvml_version, P->driver_version, P->lib_path);
		priv_free(P);
		return 0;
	}
	if (count > 4096)
		count = 4096;

	unsigned n_unopened = 0;
	nvmlReturn_t first_unopened = NVML_SUCCESS;
	P->gpus = calloc(count, sizeof *P->gpus);
	if (!P->gpus) {
		priv_free(P);
		return wm_err(err, errlen, -ENOMEM, "out of memory probing NVML");
	}
	for (unsigned i = 0; i < count; i++) {
		nvml_gpu *g = &P->gpus[P->n_gpus];
		memset(g, 0, sizeof *g);
		g->index = i;
		g->power_limit_w = NAN;
		g->counter_update_s = NAN;
		g->mig = -1;
		g->util_supported = 1;
		for (int k = 0; k < WM_GAUGE_N; k++)
			g->slow[k] = NAN;
		nvmlReturn_t hr = P->fn.get_handle(i, &g->h);
		if (hr != NVML_SUCCESS) {
			/* a GPU NVML lists but cannot open (lost, or forbidden by a
			 * container's device cgroup): skipped, said below */
			if (!n_unopened++)
				first_unopened = hr;
			continue;
		}
		if (!P->fn.name || P->fn.name(g->h, g->name, sizeof g->name) != NVML_SUCCESS)
			copy_str(g->name, sizeof g->name, "NVIDIA GPU");
		g->name[sizeof g->name - 1] = '\0';
		if (!P->fn.uuid || P->fn.uuid(g->h, g->uuid, sizeof g->uuid) != NVML_SUCCESS)
			g->uuid[0] = '\0';
		g->uuid[sizeof g->uuid - 1] = '\0';
		nvmlPciInfo_t pci;
		memset(&pci, 0, sizeof pci);
		if (P->fn.pci && P->fn.pci(g->h, &pci) == NVML_SUCCESS) {
			pci.busId[sizeof pci.busId - 1] = '\0';
			copy_str(g->bus_id, sizeof g->bus_id, pci.busId);
		}
		unsigned v = 0;
		if (P->fn.power_limit && P->fn.power_limit(g->h, &v) == NVML_SUCCESS)
			g->power_limit_w = (double)v / 1000.0;
		unsigned cur = 0, pend = 0;
		if (P->fn.mig_mode) {
			nvmlReturn_t mr = P->fn.mig_mode(g->h, &cur, &pend);
			if (mr == NVML_SUCCESS)
				g->mig = cur == NVML_DEVICE_MIG_ENABLE;
			else if (mr == NVML_ERROR_NOT_SUPPORTED)
				g->mig = 0; /* a GPU without MIG */
		}
		probe_energy_method(P, g);
		P->n_gpus++;
	}

	int rc = mark_visible(P, cfg);
	if (rc) {
		priv_free(P);
		return wm_err(err, errlen, rc, "out of memory probing NVML");
	}

	if (!ctx || !ctx->for_describe) {
		measure_update_intervals(P);
		/* Prime each GPU's last-seen timestamp: the driver keeps a buffer of
		 * recent samples, and the first call with 0 returns all of it. Taking
		 * its newest timestamp now makes the first interval start here. */
		for (size_t i = 0; i < P->n_gpus; i++) {
			nvml_gpu *g = &P->gpus[i];
			if (!P->fn.proc_util || g->mig == 1)
				continue;
			nvmlProcessUtilizationSample_t smp[64];
			unsigned c = WM_ARRAY_LEN(smp);
			nvmlReturn_t ur = P->fn.proc_util(g->h, smp, &c, 0);
			if (ur == NVML_SUCCESS) {
				for (unsigned k = 0; k < c && k < WM_ARRAY_LEN(smp); k++)
					if (smp[k].timeStamp > g->util_last_seen_us)
						g->util_last_seen_us = smp[k].timeStamp;
			} else if (ur == NVML_ERROR_INSUFFICIENT_SIZE || ur == NVML_ERROR_NOT_FOUND) {
				/* a full buffer: the first interval may include older
				 * samples; nothing active: the first call returns nothing old */
			} else if (ur == NVML_ERROR_NOT_SUPPORTED) {
				g->util_supported = 0;
			}
		}
		P->util_cap = 256;
		P->util_buf = calloc(P->util_cap, sizeof *P->util_buf);
		P->proc_cap = 64;
		P->proc_buf = calloc(P->proc_cap, sizeof(nvmlProcessInfo_v2_t));
		P->merge_cap = 64;
		P->merge = calloc(P->merge_cap, sizeof *P->merge);
		if (!P->util_buf || !P->proc_buf || !P->merge) {
			priv_free(P);
			return wm_err(err, errlen, -ENOMEM, "out of memory probing NVML");
		}
	}

	/* devices and channels */
	size_t n_measured = 0;
	for (size_t i = 0; i < P->n_gpus; i++) {
		nvml_gpu *g = &P->gpus[i];
		char name[WM_NAME_MAX];
		int n = snprintf(name, sizeof name, "gpu%u", g->index);
		if (n < 0 || (size_t)n >= sizeof name) {
			priv_free(P);
			return wm_err(err, errlen, -EOVERFLOW, "GPU name too long");
		}
		wm_device_decl *d = wm_source_add_device(s, name, "gpu");
		if (!d) {
			priv_free(P);
			return wm_err(err, errlen, -ENOMEM, "out of memory probing NVML");
		}
		d->modeled = 0;
		copy_str(d->source_detail, sizeof d->source_detail, method_name(g->method));
		d->rule = WM_ATTR_SOURCE_SHARE;
		d->gauges = (1u << WM_GAUGE_UTIL) | (1u << WM_GAUGE_MEM_UTIL) | (1u << WM_GAUGE_MEM_USED_BYTES) |
			    (1u << WM_GAUGE_MEM_TOTAL_BYTES) | (1u << WM_GAUGE_TEMP_C) |
			    (1u << WM_GAUGE_CLOCK_SM_MHZ) | (1u << WM_GAUGE_CLOCK_MEM_MHZ);
		if (g->field_instant)
			d->gauges |= 1u << WM_GAUGE_POWER_INSTANT_W;
		if (g->field_avg || g->power_usage)
			d->gauges |= 1u << WM_GAUGE_POWER_AVG_W;
		d->used_by_run = g->used_by_run;
		rc = info_json(g, d->info_json, sizeof d->info_json);
		if (rc)
			d->info_json[0] = '\0'; /* a name too long for 1 KiB: identity kept in describe_json */
		wm_channel *c = wm_source_add_channel(s, name, (int)(s->n_devices - 1));
		if (!c) {
			priv_free(P);
			return wm_err(err, errlen, -ENOMEM, "out of memory probing NVML");
		}
		c->range = 0;               /* backwards = a driver reload (reset) */
		c->joules_per_unit = 1e-3;  /* millijoules */
		/* Plausibility: twice the board's power limit (transients exceed
		 * it briefly), else a ceiling for any board; over >= 1 s, as the
		 * counter moves in steps of up to ~100 ms. */
		if (g->power_limit_w > 0) {
			c->max_power_w = NVML_LIMIT_FACTOR * g->power_limit_w;
			copy_str(c->bound_basis, sizeof c->bound_basis, "2 x enforced power limit");
		} else {
			c->max_power_w = NVML_CEILING_W;
			copy_str(c->bound_basis, sizeof c->bound_basis, "ceiling for a GPU");
		}
		c->bound_window_s = 1.0;
		/* windows shorter than this get an uncertainty; a power-integrated
		 * GPU's "counter" moves with its power reading (~100 ms, assumed) */
		c->update_interval_s = isfinite(g->counter_update_s) && g->counter_update_s > 0 ? g->counter_update_s
					: g->method != EM_COUNTER && g->method != EM_NONE ? 0.1 : 0.0;
		c->readable = g->method != EM_NONE;
		n_measured += g->method != EM_NONE;
	}
	s->priv = P;

	if (P->n_gpus == 0) {
		s->state = WM_SRC_ERROR;
		set_detail(s, "NVML %s (driver %s) lists %u GPU(s) but none can be opened", P->nvml_version,
			   P->driver_version, count);
		set_fix(s, "Check `nvidia-smi`; a GPU that fell off the bus needs a reset or a reboot.");
		return 0;
	}
	if (n_measured == 0) {
		s->state = WM_SRC_ERROR;
		set_detail(s, "NVML %s (driver %s): %zu GPU(s), none reports energy or power", P->nvml_version,
			   P->driver_version, P->n_gpus);
		set_fix(s, "This GPU or driver gives no power readings (nvidia-smi shows N/A): upgrade the "
			   "NVIDIA driver, or use a GPU that reports power.");
		return 0;
	}
	s->state = WM_SRC_OK;
	size_t n_used = 0;
	for (size_t i = 0; i < P->n_gpus; i++)
		n_used += P->gpus[i].used_by_run == 1;
	set_detail(s, "NVML %s, driver %s: %zu GPU(s) (%s%s), %zu used by the run (CUDA_VISIBLE_DEVICES)", P->nvml_version,
		   P->driver_version, P->n_gpus, P->gpus[0].name, P->n_gpus > 1 ? ", ..." : "", n_used);
	size_t n_integrated = 0;
	for (size_t i = 0; i < P->n_gpus; i++)
		n_integrated += P->gpus[i].method == EM_POWER_INSTANT || P->gpus[i].method == EM_POWER_AVERAGE;
	if (n_unopened) {
		size_t len = strlen(s->detail);
		int w = snprintf(s->detail + len, sizeof s->detail - len, "; %u more cannot be opened (%s)", n_unopened,
				 nvml_errstr(P, first_unopened));
		if (w < 0)
			s->detail[len] = '\0';
		set_fix(s, "`nvidia-smi` should list every GPU: a GPU that fell off the bus (GPU is lost) needs a "
			   "reset or a reboot; one refused (insufficient permissions) needs access to its "
			   "/dev/nvidiaN.");
	} else if (n_measured < P->n_gpus)
		set_fix(s, "Some GPUs report no energy or power (see the GPU table): upgrade the NVIDIA driver.");
	else if (n_integrated && !P->fn.total_energy)
		set_fix(s, "This NVML has no nvmlDeviceGetTotalEnergyConsumption (a driver older than R410): GPU energy "
			   "is integrated from power readings, good to a few percent. Upgrade the NVIDIA driver for "
			   "the exact energy counter (Volta and newer GPUs).");
	return 0;
}

/* ---- describe -------------------------------------------------------------------------------- */

static int nvml_describe_json(const wm_source *s, wm_buf *b)
{
	const nvml_priv *P = s->priv;
	if (!P)
		return 0;
	wm_buf_puts(b, ",\"nvml\":{\"driver_version\":");
	wm_buf_json_str(b, P->driver_version);
	wm_buf_puts(b, ",\"nvml_version\":");
	wm_buf_json_str(b, P->nvml_version);
	wm_buf_puts(b, ",\"library\":");
	wm_buf_json_str(b, P->lib_path);
	wm_buf_printf(b, ",\"process_utilization\":%s,\"gpus\":[", P->fn.proc_util ? "true" : "false");
	for (size_t i = 0; i < P->n_gpus; i++) {
		char info[1024];
		const nvml_gpu *g = &P->gpus[i];
		if (i)
			wm_buf_puts(b, ",");
		/* a GPU whose description fails (too long, ENOMEM) is listed by index only */
		if (info_json(g, info, sizeof info) == 0)
			wm_buf_puts(b, info);
		else
			wm_buf_printf(b, "{\"index\":%u}", g->index);
	}
	wm_buf_puts(b, "]}");
	return wm_buf_error(b);
}

static int nvml_describe_text(const wm_source *s, wm_buf *b)
{
	const nvml_priv *P = s->priv;
	if (!P || !P->n_gpus)
		return 0;
	wm_buf_printf(b, "\nNVIDIA GPUs (NVML %s, driver %s, %s):\n  %-5s %-28s %-11s %-26s %-9s %-8s %s\n",
		      P->nvml_version, P->driver_version, P->lib_path, "GPU", "NAME", "USED BY RUN", "ENERGY",
		      "LIMIT", "MIG", "UUID");
	for (size_t i = 0; i < P->n_gpus; i++) {
		const nvml_gpu *g = &P->gpus[i];
		char limit[32];
		if (isnan(g->power_limit_w))
			copy_str(limit, sizeof limit, "?");
		else
			(void)snprintf(limit, sizeof limit, "%.0f W", g->power_limit_w);
		wm_buf_printf(b, "  %-5u %-28s %-11s %-26s %-9s %-8s %s\n", g->index, g->name,
			      g->used_by_run ? "yes" : "no", method_name(g->method), limit,
			      g->mig == 1 ? "enabled" : g->mig == 0 ? "off" : "?", g->uuid);
	}
	if (!P->fn.proc_util)
		wm_buf_puts(b, "  note: this driver has no per-process utilisation; a GPU's energy is "
			       "split equally among its processes\n");
	return wm_buf_error(b);
}

static void nvml_check_period(const wm_source *s, double period_s, char *warn, size_t warnlen)
{
	const nvml_priv *P = s->priv;
	if (warnlen)
		warn[0] = '\0';
	if (!P)
		return;
	const nvml_gpu *worst = NULL;
	for (size_t i = 0; i < P->n_gpus; i++) {
		const nvml_gpu *g = &P->gpus[i];
		if (g->method == EM_COUNTER && g->counter_update_s > 0 &&
		    (!worst || g->counter_update_s > worst->counter_update_s))
			worst = g;
	}
	if (!worst || period_s >= PERIOD_MIN_UPDATES * worst->counter_update_s)
		return;
	int n = snprintf(warn, warnlen,
			 "the energy counter of gpu%u updates about every %.0f ms: a counter period of %g s "
			 "spans fewer than %.0f updates, so per-sample GPU power is stepped (totals stay exact; "
			 "use --period %.2g or longer for smooth curves)",
			 worst->index, worst->counter_update_s * 1000.0, period_s, PERIOD_MIN_UPDATES,
			 PERIOD_MIN_UPDATES * worst->counter_update_s);
	if (n < 0 && warnlen)
		warn[0] = '\0';
}

static void nvml_close(wm_source *s)
{
	priv_free(s->priv);
	s->priv = NULL;
}

const wm_source_ops wm_source_nvml = {
	.name = "nvml",
	.flags = 0,
	.fallback_for = NULL,
	.probe = nvml_probe,
	.read = nvml_read,
	.proc_shares = nvml_proc_shares,
	.describe_json = nvml_describe_json,
	.describe_text = nvml_describe_text,
	.check_period = nvml_check_period,
	.close = nvml_close,
};
