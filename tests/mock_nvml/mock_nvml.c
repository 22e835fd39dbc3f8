/* mock_nvml.c — a stand-in libnvidia-ml for the tests, built by meson.
 *
 * To build it by hand (outside meson), give the source tree's src/ as an
 * include path, for sources/nvml_api.h, from the repository root:
 *   cc -shared -fPIC -Isrc -o libmock_nvml.so tests/mock_nvml/mock_nvml.c -lm
 *
 * It exports the NVML functions wattmeter calls (declared as in
 * src/sources/nvml_api.h) and plays a scenario read at nvmlInit from the
 * file named by $WM_MOCK_NVML_SCENARIO: `key=value` lines, `#` comments.
 *
 *   gpus=2                       number of GPUs (default 1)
 *   driver=550.54.15             nvmlSystemGetDriverVersion
 *   nvml=12.550.54.15            nvmlSystemGetNVMLVersion
 *   init_error=9                 nvmlInit returns this nvmlReturn_t
 *   util_period_s=0.1            per-process utilisation sample spacing
 *   keep_clock=1                 a later nvmlInit in the same process keeps the
 *                                time base (a real driver's counter runs from its
 *                                load, not from nvmlInit; AIPowerMeter calls
 *                                nvmlInit at every sample); default: restart it
 *   gpuN.name=NVIDIA H200        gpuN.uuid=GPU-...   gpuN.bus_id=00000000:17:00.0
 *   gpuN.watts=250               constant power (energy advances at this rate
 *                                by CLOCK_MONOTONIC since nvmlInit)
 *   gpuN.ripple_w=0              power ripples: watts + ripple_w * sin(2 pi ripple_hz t),
 *   gpuN.ripple_hz=0.37          the counter its exact integral (real power is never
 *                                constant; Zeus's power poller keeps changes only)
 *   gpuN.power_update_ms=100     power readings (not the counter) change only this
 *                                often, as a driver's do (Zeus infers its poll period
 *                                from the changes; 0 = every call)
 *   gpuN.energy_counter=1        nvmlDeviceGetTotalEnergyConsumption answers
 *   gpuN.field_power=1           NVML_FI_DEV_POWER_INSTANT/AVERAGE answer
 *   gpuN.power_usage=1           nvmlDeviceGetPowerUsage answers
 *   gpuN.update_ms=0             counter quantised to this update interval
 *   gpuN.start_mj=0              counter value at nvmlInit
 *   gpuN.reset_at_s=1.5          counter restarts from 0 at this time (driver reload)
 *   gpuN.lost_at_s=2             every call on the GPU answers GPU_IS_LOST from then
 *   gpuN.mig=1                   MIG mode enabled   gpuN.mig_uuid=MIG-... (repeatable)
 *   gpuN.handle_error=15         nvmlDeviceGetHandleByIndex fails with this nvmlReturn_t
 *   gpuN.power_limit_w=700       gpuN.util=50 (percent)   gpuN.temp=40
 *   gpuN.proc=PID:SM:MEM_MIB     a process on the GPU (repeatable); PID is a
 *                                number, `self` (the process that loaded us), or
 *                                @FILE (a pid read from FILE at each call; absent
 *                                file = not running yet)
 *
 * If $WM_MOCK_NVML_LOG names a file, every call appends its function name
 * there (tests check "init once, never per sample").
 *
 * Built twice: mock_nvml (a current driver) and, with MOCK_OLD_DRIVER, a
 * driver that lacks the _v2/_v3 entry points, the energy counter, field
 * values and per-process utilisation, so dlsym fails for them.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sources/nvml_api.h"

#define MAX_GPUS 8
#define MAX_PROCS 8
#define MAX_MIGS 4

struct mproc {
	char pid[256];      /* "123", "self" or "@file" */
	unsigned sm;
	double mem_mib;
};

struct nvmlDevice_st {
	int gpu;
	int mig;            /* -1: the GPU itself; else a MIG device index */
};

struct mgpu {
	char name[96], uuid[96], bus_id[32];
	double watts, ripple_w, ripple_hz, power_update_ms, update_ms, reset_at_s, lost_at_s, power_limit_w, util, temp;
	unsigned long long start_mj;
	int energy_counter, field_power, power_usage, mig, handle_error;
	struct mproc procs[MAX_PROCS];
	int n_procs;
	char mig_uuids[MAX_MIGS][96];
	int n_migs;
};

static struct {
	int inited;
	int n_gpus;
	struct mgpu g[MAX_GPUS];
	struct nvmlDevice_st dev[MAX_GPUS];
	struct nvmlDevice_st mig_dev[MAX_GPUS][MAX_MIGS];
	char driver[80], nvml[80];
	int init_error;
	int keep_clock;
	double util_period_s;
	uint64_t t0_ns;
	unsigned long long t0_wall_us;
} M;

static void log_call(const char *fn)
{
	const char *path = getenv("WM_MOCK_NVML_LOG");
	if (!path || !path[0])
		return;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	char line[128];
	int n = snprintf(line, sizeof line, "%s\n", fn);
	if (n > 0 && (size_t)n < sizeof line) {
		ssize_t w;
		do
			w = write(fd, line, (size_t)n);
		while (w < 0 && errno == EINTR);
	}
	close(fd);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double elapsed_s(void)
{
	return (double)(mono_ns() - M.t0_ns) / 1e9;
}

/* Power at t seconds since nvmlInit (W), and its integral from 0 to t (J). */
static double power_at_w(const struct mgpu *g, double t)
{
	if (g->ripple_w == 0 || g->ripple_hz <= 0)
		return g->watts;
	if (g->power_update_ms > 0)
		t = floor(t * 1000.0 / g->power_update_ms) * g->power_update_ms / 1000.0;
	return g->watts + g->ripple_w * sin(2 * 3.14159265358979323846 * g->ripple_hz * t);
}

#ifndef MOCK_OLD_DRIVER /* the old driver has no counter */
static double energy_to_j(const struct mgpu *g, double t)
{
	if (g->ripple_w == 0 || g->ripple_hz <= 0)
		return g->watts * t;
	double w = 2 * 3.14159265358979323846 * g->ripple_hz;
	return g->watts * t + g->ripple_w / w * (1 - cos(w * t));
}
#endif

static void set_str(char *dst, size_t cap, const char *v)
{
	int n = snprintf(dst, cap, "%s", v);
	if (n < 0)
		dst[0] = '\0';
}

static void defaults(void)
{
	memset(&M, 0, sizeof M);
	M.n_gpus = 1;
	M.util_period_s = 0.1;
	set_str(M.driver, sizeof M.driver, "550.54.15");
	set_str(M.nvml, sizeof M.nvml, "12.550.54.15");
	for (int i = 0; i < MAX_GPUS; i++) {
		struct mgpu *g = &M.g[i];
		(void)snprintf(g->name, sizeof g->name, "Mock GPU %d", i);
		(void)snprintf(g->uuid, sizeof g->uuid, "GPU-%08x-0000-4000-8000-00000000000%d", 0xabcd0000u + (unsigned)i, i);
		(void)snprintf(g->bus_id, sizeof g->bus_id, "00000000:%02X:00.0", 0x10 + i);
		g->watts = 100.0;
		g->energy_counter = 1;
		g->field_power = 1;
		g->power_usage = 1;
		g->power_limit_w = 300.0;
		g->util = 0.0;
		g->temp = 35.0;
		M.dev[i].gpu = i;
		M.dev[i].mig = -1;
		for (int k = 0; k < MAX_MIGS; k++) {
			M.mig_dev[i][k].gpu = i;
			M.mig_dev[i][k].mig = k;
		}
	}
}

static void set_gpu_key(struct mgpu *g, const char *k, const char *v)
{
	if (!strcmp(k, "name"))
		set_str(g->name, sizeof g->name, v);
	else if (!strcmp(k, "uuid"))
		set_str(g->uuid, sizeof g->uuid, v);
	else if (!strcmp(k, "bus_id"))
		set_str(g->bus_id, sizeof g->bus_id, v);
	else if (!strcmp(k, "watts"))
		g->watts = strtod(v, NULL);
	else if (!strcmp(k, "ripple_w"))
		g->ripple_w = strtod(v, NULL);
	else if (!strcmp(k, "ripple_hz"))
		g->ripple_hz = strtod(v, NULL);
	else if (!strcmp(k, "power_update_ms"))
		g->power_update_ms = strtod(v, NULL);
	else if (!strcmp(k, "energy_counter"))
		g->energy_counter = atoi(v);
	else if (!strcmp(k, "field_power"))
		g->field_power = atoi(v);
	else if (!strcmp(k, "power_usage"))
		g->power_usage = atoi(v);
	else if (!strcmp(k, "update_ms"))
		g->update_ms = strtod(v, NULL);
	else if (!strcmp(k, "start_mj"))
		g->start_mj = strtoull(v, NULL, 10);
	else if (!strcmp(k, "reset_at_s"))
		g->reset_at_s = strtod(v, NULL);
	else if (!strcmp(k, "lost_at_s"))
		g->lost_at_s = strtod(v, NULL);
	else if (!strcmp(k, "mig"))
		g->mig = atoi(v);
	else if (!strcmp(k, "handle_error"))
		g->handle_error = atoi(v);
	else if (!strcmp(k, "mig_uuid") && g->n_migs < MAX_MIGS)
		set_str(g->mig_uuids[g->n_migs++], sizeof g->mig_uuids[0], v);
	else if (!strcmp(k, "power_limit_w"))
		g->power_limit_w = strtod(v, NULL);
	else if (!strcmp(k, "util"))
		g->util = strtod(v, NULL);
	else if (!strcmp(k, "temp"))
		g->temp = strtod(v, NULL);
	else if (!strcmp(k, "proc") && g->n_procs < MAX_PROCS) {
		/* PID:SM:MEM_MIB, PID may itself hold no ':' */
		struct mproc *p = &g->procs[g->n_procs];
		const char *c1 = strchr(v, ':');
		const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c1 || !c2 || (size_t)(c1 - v) >= sizeof p->pid)
			return;
		memcpy(p->pid, v, (size_t)(c1 - v));
		p->pid[c1 - v] = '\0';
		p->sm = (unsigned)strtoul(c1 + 1, NULL, 10);
		p->mem_mib = strtod(c2 + 1, NULL);
		g->n_procs++;
	}
}

static void load_scenario(void)
{
	defaults();
	const char *path = getenv("WM_MOCK_NVML_SCENARIO");
	if (!path || !path[0])
		return;
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof line, f)) {
		size_t n = strlen(line);
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		const char *k = line, *v = eq + 1;
		if (!strcmp(k, "gpus"))
			M.n_gpus = atoi(v) < 0 ? 0 : atoi(v) > MAX_GPUS ? MAX_GPUS : atoi(v);
		else if (!strcmp(k, "driver"))
			set_str(M.driver, sizeof M.driver, v);
		else if (!strcmp(k, "nvml"))
			set_str(M.nvml, sizeof M.nvml, v);
		else if (!strcmp(k, "init_error"))
			M.init_error = atoi(v);
		else if (!strcmp(k, "keep_clock"))
			M.keep_clock = atoi(v);
		else if (!strcmp(k, "util_period_s"))
			M.util_period_s = strtod(v, NULL);
		else if (!strncmp(k, "gpu", 3)) {
			char *dot = strchr(k, '.');
			int i = atoi(k + 3);
			if (dot && i >= 0 && i < MAX_GPUS)
				set_gpu_key(&M.g[i], dot + 1, v);
		}
	}
	fclose(f);
}

/* ---- device helpers -------------------------------------------------------- */

static nvmlReturn_t dev_check(nvmlDevice_t d, struct mgpu **out)
{
	if (!M.inited)
		return NVML_ERROR_UNINITIALIZED;
	if (!d || d->gpu < 0 || d->gpu >= M.n_gpus)
		return NVML_ERROR_INVALID_ARGUMENT;
	struct mgpu *g = &M.g[d->gpu];
	if (g->lost_at_s > 0 && elapsed_s() >= g->lost_at_s)
		return NVML_ERROR_GPU_IS_LOST;
	*out = g;
	return NVML_SUCCESS;
}

static int proc_pid(const struct mproc *p)
{
	if (!strcmp(p->pid, "self"))
		return (int)getpid();
	if (p->pid[0] == '@') {
		FILE *f = fopen(p->pid + 1, "re");
		if (!f)
			return 0;
		int pid = 0;
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
		return pid;
	}
	return atoi(p->pid);
}

static nvmlReturn_t fill_str(char *buf, unsigned len, const char *v)
{
	if (!buf)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (strlen(v) + 1 > len)
		return NVML_ERROR_INSUFFICIENT_SIZE;
	memcpy(buf, v, strlen(v) + 1);
	return NVML_SUCCESS;
}

/* ---- init and system ------------------------------------------------------------- */

static nvmlReturn_t do_init(const char *fn)
{
	log_call(fn);
	uint64_t old_t0_ns = M.t0_ns;
	unsigned long long old_t0_wall_us = M.t0_wall_us;
	load_scenario();
	if (M.init_error)
		return (nvmlReturn_t)M.init_error;
	if (M.keep_clock && old_t0_ns) {
		M.t0_ns = old_t0_ns;
		M.t0_wall_us = old_t0_wall_us;
		M.inited = 1;
		return NVML_SUCCESS;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	M.t0_wall_us = (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000ull;
	M.t0_ns = mono_ns();
	M.inited = 1;
	return NVML_SUCCESS;
}

#ifndef MOCK_OLD_DRIVER
nvmlReturn_t nvmlInit_v2(void)
{
	return do_init("nvmlInit_v2");
}

/* what pynvml (nvidia-ml-py) calls: lets bench/gpu_real.py be tried on the mock */
nvmlReturn_t nvmlInitWithFlags(unsigned flags)
{
	(void)flags;
	return do_init("nvmlInitWithFlags");
}
#endif

nvmlReturn_t nvmlInit(void)
{
	return do_init("nvmlInit");
}

nvmlReturn_t nvmlShutdown(void)
{
	log_call("nvmlShutdown");
	M.inited = 0;
	return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t r)
{
	switch (r) {
	case NVML_SUCCESS: return "Success";
	case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
	case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
	case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
	case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
	case NVML_ERROR_LIB_RM_VERSION_MISMATCH: return "RM has detected an NVML/RM version mismatch.";
	default: return "Unknown Error";
	}
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *buf, unsigned len)
{
	log_call("nvmlSystemGetDriverVersion");
	return M.inited ? fill_str(buf, len, M.driver) : NVML_ERROR_UNINITIALIZED;
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char *buf, unsigned len)
{
	log_call("nvmlSystemGetNVMLVersion");
	return M.inited ? fill_str(buf, len, M.nvml) : NVML_ERROR_UNINITIALIZED;
}

/* What the peers' bindings ask before measuring (bench/gpu_accuracy.py runs
 * Zeus and perun on this mock): Zeus reads the energy counter only from Volta
 * on, so a GPU with the counter is a Hopper (9), one without a Pascal (4),
 * as on real hardware; perun records the CUDA driver version. */
nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *v);
nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *v)
{
	log_call("nvmlSystemGetCudaDriverVersion");
	if (!M.inited)
		return NVML_ERROR_UNINITIALIZED;
	*v = 12040;
	return NVML_SUCCESS;
}

static nvmlReturn_t get_count(const char *fn, unsigned *count)
{
	log_call(fn);
	if (!M.inited)
		return NVML_ERROR_UNINITIALIZED;
	*count = (unsigned)M.n_gpus;
	return NVML_SUCCESS;
}

static nvmlReturn_t get_handle(const char *fn, unsigned i, nvmlDevice_t *d)
{
	log_call(fn);
	if (!M.inited)
		return NVML_ERROR_UNINITIALIZED;
	if (i >= (unsigned)M.n_gpus)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (M.g[i].handle_error)
		return (nvmlReturn_t)M.g[i].handle_error;
	*d = &M.dev[i];
	return NVML_SUCCESS;
}

#ifndef MOCK_OLD_DRIVER
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned *count)
{
	return get_count("nvmlDeviceGetCount_v2", count);
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned i, nvmlDevice_t *d)
{
	return get_handle("nvmlDeviceGetHandleByIndex_v2", i, d);
}
#endif

nvmlReturn_t nvmlDeviceGetCount(unsigned *count)
{
	return get_count("nvmlDeviceGetCount", count);
}

nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned i, nvmlDevice_t *d)
{
	return get_handle("nvmlDeviceGetHandleByIndex", i, d);
}

/* ---- identity ------------------------------------------------------------------- */

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *buf, unsigned len)
{
	struct mgpu *g;
	log_call("nvmlDeviceGetName");
	nvmlReturn_t r = dev_check(d, &g);
	return r ? r : fill_str(buf, len, g->name);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *buf, unsigned len)
{
	struct mgpu *g;
	log_call("nvmlDeviceGetUUID");
	nvmlReturn_t r = dev_check(d, &g);
	if (r)
		return r;
	if (d->mig >= 0)
		return d->mig < g->n_migs ? fill_str(buf, len, g->mig_uuids[d->mig]) : NVML_ERROR_NOT_FOUND;
	return fill_str(buf, len, g->uuid);
}

static nvmlReturn_t pci_info(nvmlDevice_t d, nvmlPciInfo_t *pci)
{
	struct mgpu *g;
	log_call("nvmlDeviceGetPciInfo");
	nvmlReturn_t r = dev_check(d, &g);
	if (r)
		return r;
	memset(pci, 0, sizeof *pci);
	set_str(pci->busId, sizeof pci->busId, g->bus_id);
	return NVML_SUCCESS;
}

#ifndef MOCK_OLD_DRIVER
nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *pci)
{
	return pci_info(d, pci);
}
#endif

nvmlReturn_t nvmlDeviceGetPciInfo(nvmlDevice_t d, nvmlPciInfo_t *pci)
{
	return pci_info(d, pci);
}

nvmlReturn_t nvmlDeviceGetArchitecture(nvmlDevice_t d, unsigned *arch);
nvmlReturn_t nvmlDeviceGetArchitecture(nvmlDevice_t d, unsigned *arch)
{
	struct mgpu *g;
	log_call("nvmlDeviceGetArchitecture");
	nvmlReturn_t r = dev_check(d, &g);
	if (!r)
		*arch = g->energy_counter ? 9u : 4u;
	return r;
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t d, unsigned *mw)
{
	struct mgpu *g;
	log_call("nvmlDeviceGetEnforcedPowerLimit");
	nvmlReturn_t r = dev_check(d, &g);
	if (!r)
		*mw = (unsigned)(g->power_limit_w * 1000.0);
	return r;
}

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t d, unsigned *current, unsigned *pending)
{
	struct mgpu *g;
	log_call("nvmlDeviceGetMigMode");
	nvmlReturn_t r = dev_check(d, &g);
	if (r)
		return r;
	*current = *pending = (unsigned)g->mig;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t d, unsigned *count)
{
	struct mgpu *g;
	log_call("nvmlDeviceGetMaxMigDeviceCount");
	nvmlReturn_t r = dev_check(d, &g);
	if (!r)
		*count = g->mig ? (unsigned)g->n_migs : 0;
	return r;
}

nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t d, unsigned k, nvmlDevice_t *mig)
{
	struct mgpu *g;
	log_call("nvmlDeviceGetMigDeviceHandleByIndex");
	nvmlReturn_t r = dev_check(d, &g);
	if (r)
		return r;
	if (!g->mig || k >= (unsigned)g->n_migs)
		return NVML_ERROR_NOT_FOUND;
	*mig = &M.mig_dev[d->gpu][k];
	return NVML_SUCCESS;
}

/* ---- energy and power -------------------------------------------------------------- */

#ifndef MOCK_OLD_DRIVER
nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long *mj)
{
	struct mgpu *g;
	log_call("nvmlDeviceGetTotalEnergyConsumption");
	nvmlReturn_t r = dev_check(d, &g);
	if (r)
		return r;
	if (!g->energy_counter)
		return NVML_ERROR_NOT_SUPPORTED;
	double t = elapsed_s();
	if (g->update_ms > 0)
		t = floor(t * 1000.0 / g->update_ms) * g->update_ms / 1000.0;
	double e_mj;
	if (g->reset_at_s > 0 && t >= g->reset_at_s)
		e_mj = 1000.0 * (energy_to_j(g, t) - energy_to_j(g, g->reset_at_s)); /* restarted from 0 */
	else
		e_mj = (double)g->start_mj + 1000.0 * energy_to_j(g, t);
	*mj = (unsigned long long)e_mj;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t d, int count, nvmlFieldValue_t *v)
{
	struct mgpu *g;
	log_call("nvmlDeviceGetFieldValues");
	nvmlReturn_t r = dev_check(d, &g);
	if (r)
		return r;
	for (int i = 0; i < count; i++) {
		v[i].valueType = NVML_VALUE_TYPE_UNSIGNED_INT;
		if (g->field_power &&
		    (v[i].fieldId == NVML_FI_DEV_POWER_INSTANT || v[i].fieldId == NVML_FI_DEV_POWER_AVERAGE)) {
			v[i].nvmlReturn = NVML_SUCCESS;
			v[i].value.uiVal = (unsigned)(power_at_w(g, elapsed_s()) * 1000.0);
		} else {
			v[i].nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
		}
	}
	return NVML_SUCCESS;
}
#endif

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned *mw)
{
	struct mgpu *g;
	log_call("nvmlDeviceGetPowerUsage");
	nvmlReturn_t r = dev_check(d, &g);
	if (r)
		return r;
	if (!g->power_usage)
		return NVML_ERROR_NOT_SUPPORTED;
	*mw = (unsigned)(power_at_w(g, elapsed_s()) * 1000.0);
	return NVML_SUCCESS;
}

/* ---- gauges --------------------------------------------------------------------------- */

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u)
{
	struct mgpu *g;
	log_call("nvmlDeviceGetUtilizationRates");
	nvmlReturn_t r = dev_check(d, &g);
	if (!r) {
		u->gpu = (unsigned)g->util;
		u->memory = (unsigned)(g->util / 2);
	}
	return r;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m)
{
	struct mgpu *g;
	log_call("nvmlDeviceGetMemoryInfo");
	nvmlReturn_t r = dev_check(d, &g);
	if (r)
		return r;
	m->total = 80ull << 30;
	m->used = 0;
	for (int i = 0; i < g->n_procs; i++)
		m->used += (unsigned long long)(g->procs[i].mem_mib * 1048576.0);
	m->free = m->total - m->used;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, nvmlTemperatureSensors_t s, unsigned *c)
{
	struct mgpu *g;
	log_call("nvmlDeviceGetTemperature");
	nvmlReturn_t r = dev_check(d, &g);
	if (r)
		return r;
	if (s != NVML_TEMPERATURE_GPU)
		return NVML_ERROR_INVALID_ARGUMENT;
	*c = (unsigned)g->temp;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, nvmlClockType_t t, unsigned *mhz)
{
	struct mgpu *g;
	log_call("nvmlDeviceGetClockInfo");
	nvmlReturn_t r = dev_check(d, &g);
	if (!r)
		*mhz = t == NVML_CLOCK_MEM ? 2619u : 1980u;
	return r;
}

/* ---- processes ------------------------------------------------------------------------ */

static nvmlReturn_t running(const char *fn, nvmlDevice_t d, unsigned *count, void *infos, int ver)
{
	struct mgpu *g;
	log_call(fn);
	nvmlReturn_t r = dev_check(d, &g);
	if (r)
		return r;
	unsigned n = 0;
	int pids[MAX_PROCS];
	double mem[MAX_PROCS];
	for (int i = 0; i < g->n_procs; i++) {
		int pid = proc_pid(&g->procs[i]);
		if (pid > 0) {
			pids[n] = pid;
			mem[n] = g->procs[i].mem_mib;
			n++;
		}
	}
	if (*count < n || (!infos && n)) {
		*count = n;
		return NVML_ERROR_INSUFFICIENT_SIZE;
	}
	for (unsigned i = 0; i < n; i++) {
		unsigned long long b = (unsigned long long)(mem[i] * 1048576.0);
		if (ver == 1) {
			nvmlProcessInfo_v1_t *e = (nvmlProcessInfo_v1_t *)infos + i;
			e->pid = (unsigned)pids[i];
			e->usedGpuMemory = b;
		} else {
			nvmlProcessInfo_v2_t *e = (nvmlProcessInfo_v2_t *)infos + i;
			e->pid = (unsigned)pids[i];
			e->usedGpuMemory = b;
			e->gpuInstanceId = 0xFFFFFFFFu;
			e->computeInstanceId = 0xFFFFFFFFu;
		}
	}
	*count = n;
	return NVML_SUCCESS;
}

#ifndef MOCK_OLD_DRIVER
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned *c, void *i)
{
	return running("nvmlDeviceGetComputeRunningProcesses_v3", d, c, i, 3);
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t d, unsigned *c, void *i)
{
	return running("nvmlDeviceGetComputeRunningProcesses_v2", d, c, i, 2);
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t d, unsigned *c, void *i)
{
	(void)running("nvmlDeviceGetGraphicsRunningProcesses_v3", d, c, i, 3);
	*c = 0; /* our processes are compute processes */
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v2(nvmlDevice_t d, unsigned *c, void *i)
{
	(void)d;
	(void)i;
	*c = 0;
	return NVML_SUCCESS;
}
#endif

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t d, unsigned *c, void *i)
{
	return running("nvmlDeviceGetComputeRunningProcesses", d, c, i, 1);
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses(nvmlDevice_t d, unsigned *c, void *i)
{
	(void)d;
	(void)i;
	*c = 0;
	return NVML_SUCCESS;
}

#ifndef MOCK_OLD_DRIVER
/* One sample per process every util_period_s since nvmlInit, timestamps in
 * wall-clock microseconds as the driver gives them; the driver's buffer
 * holds the newest 100 sample times. */
nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t d, nvmlProcessUtilizationSample_t *out, unsigned *count,
					     unsigned long long last_seen_us)
{
	struct mgpu *g;
	char what[96];
	(void)snprintf(what, sizeof what, "nvmlDeviceGetProcessUtilization %llu", last_seen_us);
	log_call(what);
	nvmlReturn_t r = dev_check(d, &g);
	if (r)
		return r;
	if (g->mig)
		return NVML_ERROR_NOT_SUPPORTED;
	int pids[MAX_PROCS];
	unsigned sm[MAX_PROCS];
	unsigned np = 0;
	for (int i = 0; i < g->n_procs; i++) {
		int pid = proc_pid(&g->procs[i]);
		if (pid > 0) {
			pids[np] = pid;
			sm[np] = g->procs[i].sm;
			np++;
		}
	}
	long k_now = (long)floor(elapsed_s() / M.util_period_s);
	long k_first = k_now - 99 > 1 ? k_now - 99 : 1;
	unsigned period_us = (unsigned)(M.util_period_s * 1e6);
	unsigned need = 0;
	for (long k = k_first; k <= k_now; k++)
		if (M.t0_wall_us + (unsigned long long)k * period_us > last_seen_us)
			need += np;
	if (need == 0)
		return NVML_ERROR_NOT_FOUND;
	if (!out || *count < need) {
		*count = need;
		return NVML_ERROR_INSUFFICIENT_SIZE;
	}
	unsigned n = 0;
	for (long k = k_first; k <= k_now; k++) {
		unsigned long long ts = M.t0_wall_us + (unsigned long long)k * period_us;
		if (ts <= last_seen_us)
			continue;
		for (unsigned i = 0; i < np; i++) {
			memset(&out[n], 0, sizeof out[n]);
			out[n].pid = (unsigned)pids[i];
			out[n].timeStamp = ts;
			out[n].smUtil = sm[i];
			n++;
		}
	}
	*count = n;
	return NVML_SUCCESS;
}
#endif
