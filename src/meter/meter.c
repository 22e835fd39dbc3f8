/* sampler.c — the meter: one native thread that owns the sensors and time.
 *
 * Tiers (all multiples of the counter period, one monotonic clock):
 *   counter tier, every period_s:  RAPL zones (or the CPU model) and the
 *                                  machine's CPU times; one sample line;
 *   process tier, every proc_period_s: scan of the measured process tree and
 *                                  attribution of the energy of the interval;
 *   memory tier, every mem_period_s: PSS/USS from smaps_rollup (0 = off).
 * The thread never calls into Python, blocks every signal, and sleeps on a
 * condition variable with absolute monotonic deadlines (no drift; a stop
 * request wakes it at once). The last sample is taken by the thread itself
 * on stop, with the process tier forced, so totals end at the stop.
 *
 * Fork safety: the meter remembers the pid that started it. In a forked child
 * (a data-loader worker forked from a measured Python process) every call is
 * a no-op: the child has no sampler thread and must not write the parent's
 * recording, nor touch a mutex that may have been copied locked.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "base/counter.h"
#include "base/host.h"
#include "procs/procfs.h"
#include "procs/proctree.h"
#include "recording/record.h"
#include "base/root.h"
#include "sources/cpu_model.h"
#include "sources/rapl.h"
#include "base/util.h"
#include "wattmeter.h"

enum { DEV_CPU = 0, DEV_DRAM, DEV_PSYS, N_DEV };
static const char *const dev_names[N_DEV] = {"cpu", "dram", "psys"};

/* Worst-case package power used to check the period against the RAPL wrap
 * time (turbostat does the same with the TDP; 1 kW covers today's servers). */
#define WRAP_CHECK_MAX_W 1000.0

struct wm_meter {
	pid_t owner_pid;
	pthread_mutex_t lock;       /* guards tree, snapshot, stop flag */
	pthread_cond_t cond;
	pthread_t thread;
	int thread_started;
	int stop_requested;
	int stopped;

	/* configuration (owned copies) */
	double period_s, proc_period_s, mem_period_s;
	unsigned proc_every, mem_every; /* in counter ticks; mem_every 0 = off */
	char *sysfs_path, *procfs_path;
	char **command;
	int measure_self;
	wm_cpu_model model;

	wm_root sysroot, procroot;
	wm_rapl *rapl;
	wm_counter *zone_ctr;       /* one per RAPL zone */
	int *zone_gap;              /* 1 if the zone could not be read at the last tick */
	int *zone_dev;              /* device index a zone is summed into, -1 if none
	                               (core, uncore, duplicates): resolved once */
	int dev_present[N_DEV];
	int dev_modeled[N_DEV];
	int have_sysstat;
	wm_sysstat sysstat;
	wm_proctree *tree;
	wm_recorder rec;
	long clk_tck;

	/* state of the counter tier */
	uint64_t t0_ns, last_ns;
	double wall0_s;
	uint64_t ticks;
	wm_cpu_times last_ct;
	int have_last_ct;
	double last_util;           /* held while /proc/stat shows no new tick */
	double energy_j[N_DEV];
	double power_w[N_DEV];
	double power_smooth_w[N_DEV];

	/* state of the process tier */
	double energy_at_proc_j[N_DEV];
	uint64_t busy_at_proc;
	double attributed_j[N_DEV];
	double self_cpu_at_proc_s;
	uint64_t mem_used_bytes, mem_total_bytes;

	double self_cpu_s;          /* the sampler thread's CPU time, cumulative */
	char warning[512];
	int write_errno;            /* first failure to append a sample, 0 if none */

	wm_buf line;                /* reused for every sample line */
	wm_buf host_json;           /* read once: /proc/cpuinfo is large on big machines */
	wm_snapshot snap;
};

void wm_meter_config_init(wm_meter_config *c)
{
	memset(c, 0, sizeof *c);
	c->period_s = WM_DEFAULT_PERIOD_S;
	c->proc_period_s = WM_DEFAULT_PROC_PERIOD_S;
	c->mem_period_s = WM_DEFAULT_MEM_PERIOD_S;
	c->model_min_w_per_cpu = WM_DEFAULT_MODEL_MIN_W;
	c->model_max_w_per_cpu = WM_DEFAULT_MODEL_MAX_W;
}

static int is_owner(const wm_meter *m)
{
	return m && m->owner_pid == getpid();
}

/* ---- JSON helpers --------------------------------------------------------- */

/* Energies at microjoule resolution, powers at milliwatts: short on the wire. */
static int put_num(wm_buf *b, double v, int decimals)
{
	return wm_buf_json_fixed(b, v, decimals);
}

static int put_key(wm_buf *b, int *first, const char *key)
{
	int rc = *first ? 0 : wm_buf_puts(b, ",");
	*first = 0;
	rc = rc ? rc : wm_buf_json_str(b, key);
	return rc ? rc : wm_buf_puts(b, ":");
}

/* ---- meta.json -------------------------------------------------------------- */

static const char *dev_source(const wm_meter *m, int d)
{
	if (m->dev_modeled[d])
		return "cpu-model";
	return "rapl-powercap";
}

static int meta_devices(const wm_meter *m, wm_buf *b)
{
	int rc = wm_buf_puts(b, "[");
	int first_dev = 1;
	for (int d = 0; d < N_DEV && !rc; d++) {
		if (!m->dev_present[d])
			continue;
		rc = wm_buf_printf(b, "%s{\"name\":\"%s\",\"method\":\"%s\",\"source\":\"%s\",\"zones\":[",
				   first_dev ? "" : ",", dev_names[d],
				   m->dev_modeled[d] ? "modeled" : "measured", dev_source(m, d));
		first_dev = 0;
		int first = 1;
		for (size_t i = 0; m->rapl && !m->dev_modeled[d] && i < m->rapl->n_zones && !rc; i++) {
			const wm_rapl_zone *z = &m->rapl->zones[i];
			if (m->zone_dev[i] != d)
				continue;
			rc = first ? 0 : wm_buf_puts(b, ",");
			first = 0;
			rc = rc ? rc : wm_buf_json_str(b, z->label);
		}
		rc = rc ? rc : wm_buf_puts(b, "]}");
	}
	return rc ? rc : wm_buf_puts(b, "]");
}

static int meta_zones(const wm_meter *m, wm_buf *b)
{
	int rc = wm_buf_puts(b, "[");
	for (size_t i = 0; m->rapl && i < m->rapl->n_zones && !rc; i++) {
		const wm_rapl_zone *z = &m->rapl->zones[i];
		rc = wm_buf_puts(b, i ? ",{\"label\":" : "{\"label\":");
		rc = rc ? rc : wm_buf_json_str(b, z->label);
		rc = rc ? rc : wm_buf_puts(b, ",\"id\":");
		rc = rc ? rc : wm_buf_json_str(b, z->id);
		rc = rc ? rc : wm_buf_puts(b, ",\"name\":");
		rc = rc ? rc : wm_buf_json_str(b, z->name);
		rc = rc ? rc : wm_buf_printf(b,
			",\"domain\":\"%s\",\"device\":%s%s%s,\"counted\":%s,\"mmio\":%s,"
			"\"max_energy_range_uj\":%llu,\"state\":\"%s\"}",
			wm_rapl_domain_name(z->domain), z->device ? "\"" : "",
			z->device ? z->device : "null", z->device ? "\"" : "",
			z->counted ? "true" : "false", z->mmio ? "true" : "false",
			(unsigned long long)z->max_energy_range_uj, wm_source_state_name(z->state));
	}
	return rc ? rc : wm_buf_puts(b, "]");
}

static int meta_sensor(wm_buf *b, int first, const char *name, const char *state, const char *detail,
		       const char *fix)
{
	int rc = wm_buf_puts(b, first ? "{\"name\":" : ",{\"name\":");
	rc = rc ? rc : wm_buf_json_str(b, name);
	rc = rc ? rc : wm_buf_puts(b, ",\"state\":");
	rc = rc ? rc : wm_buf_json_str(b, state);
	rc = rc ? rc : wm_buf_puts(b, ",\"detail\":");
	rc = rc ? rc : wm_buf_json_str(b, detail);
	rc = rc ? rc : wm_buf_puts(b, ",\"fix\":");
	rc = rc ? rc : wm_buf_json_str(b, fix);
	return rc ? rc : wm_buf_puts(b, "}");
}

static int build_meta(const wm_meter *m, int final, int exit_status, double end_wall_s,
		      double duration_s, wm_buf *b)
{
	char ts[40];
	int rc = wm_buf_printf(b, "{\"schema\":\"wattmeter.recording\",\"schema_version\":%d,"
			       "\"tool\":{\"name\":\"wattmeter\",\"version\":\"%s\"},\"host\":",
			       WM_SCHEMA_VERSION, WM_VERSION);
	rc = rc ? rc : wm_buf_append(b, m->host_json.len ? m->host_json.data : "null",
				     m->host_json.len ? m->host_json.len : 4);
	rc = rc ? rc : wm_buf_puts(b, ",\"command\":");
	if (!rc && m->command) {
		rc = wm_buf_puts(b, "[");
		for (size_t i = 0; m->command[i] && !rc; i++) {
			rc = i ? wm_buf_puts(b, ",") : 0;
			rc = rc ? rc : wm_buf_json_str(b, m->command[i]);
		}
		rc = rc ? rc : wm_buf_puts(b, "]");
	} else if (!rc) {
		rc = wm_buf_puts(b, "null");
	}
	rc = rc ? rc : wm_buf_puts(b, ",\"pids\":[");
	size_t np = m->tree ? wm_proctree_count(m->tree) : 0;
	int first = 1;
	for (size_t i = 0; i < np && !rc; i++) {
		const wm_proc *p = wm_proctree_get(m->tree, i);
		if (!p->is_root || !p->count_own)
			continue;
		rc = wm_buf_printf(b, "%s%d", first ? "" : ",", p->pid);
		first = 0;
	}
	rc = rc ? rc : wm_buf_puts(b, "],\"period_s\":");
	rc = rc ? rc : put_num(b, m->period_s, 6);
	rc = rc ? rc : wm_buf_puts(b, ",\"proc_period_s\":");
	rc = rc ? rc : put_num(b, m->proc_period_s, 6);
	rc = rc ? rc : wm_buf_puts(b, ",\"mem_period_s\":");
	rc = rc ? rc : put_num(b, m->mem_period_s, 6);
	wm_format_utc(m->wall0_s, ts, sizeof ts);
	rc = rc ? rc : wm_buf_printf(b, ",\"start_utc\":\"%s\",\"start_unix_s\":", ts);
	rc = rc ? rc : put_num(b, m->wall0_s, 3);
	rc = rc ? rc : wm_buf_puts(b, ",\"devices\":");
	rc = rc ? rc : meta_devices(m, b);
	rc = rc ? rc : wm_buf_puts(b, ",\"zones\":");
	rc = rc ? rc : meta_zones(m, b);

	rc = rc ? rc : wm_buf_puts(b, ",\"sensors\":[");
	if (!rc) {
		const wm_rapl *r = m->rapl;
		rc = meta_sensor(b, 1, "rapl-powercap", r ? wm_source_state_name(r->state) : "absent",
				 r ? r->detail : "", r ? r->fix : "");
	}
	if (!rc) {
		char detail[256];
		(void)snprintf(detail, sizeof detail,
			       "%d CPUs x (%.2f W idle .. %.2f W busy) per CPU, scaled by /proc/stat utilisation",
			       m->model.n_cpus, m->model.min_w_per_cpu, m->model.max_w_per_cpu);
		rc = meta_sensor(b, 0, "cpu-model", m->dev_modeled[DEV_CPU] ? "modeled" : "unused",
				 m->dev_modeled[DEV_CPU] ? detail : "", "");
	}
	if (!rc)
		rc = meta_sensor(b, 0, "procfs", m->have_sysstat ? "ok" : "error", m->procroot.path,
				 m->have_sysstat ? "" : "check --procfs-root");
	rc = rc ? rc : wm_buf_puts(b, "],\"model\":");
	if (!rc && m->dev_modeled[DEV_CPU]) {
		rc = wm_buf_puts(b, "{\"name\":\"ccf-linear\",\"cpu_min_w_per_cpu\":");
		rc = rc ? rc : put_num(b, m->model.min_w_per_cpu, 4);
		rc = rc ? rc : wm_buf_puts(b, ",\"cpu_max_w_per_cpu\":");
		rc = rc ? rc : put_num(b, m->model.max_w_per_cpu, 4);
		rc = rc ? rc : wm_buf_printf(b, ",\"n_cpus\":%d,\"formula\":"
			"\"n_cpus * (min + (max - min) * utilisation)\",\"reference\":"
			"\"Cloud Carbon Footprint methodology, average per-vCPU min/max watts (AWS)\"}",
			m->model.n_cpus);
	} else if (!rc) {
		rc = wm_buf_puts(b, "null");
	}
	rc = rc ? rc : wm_buf_puts(b, ",\"warnings\":[");
	if (!rc && m->warning[0])
		rc = wm_buf_json_str(b, m->warning);
	rc = rc ? rc : wm_buf_puts(b, "]");
	if (!rc && final) {
		wm_format_utc(end_wall_s, ts, sizeof ts);
		rc = wm_buf_printf(b, ",\"end_utc\":\"%s\",\"end_unix_s\":", ts);
		rc = rc ? rc : put_num(b, end_wall_s, 3);
		rc = rc ? rc : wm_buf_puts(b, ",\"duration_s\":");
		rc = rc ? rc : put_num(b, duration_s, 6);
		if (!rc && exit_status >= 0)
			rc = wm_buf_printf(b, ",\"exit_status\":%d", exit_status);
		else if (!rc)
			rc = wm_buf_puts(b, ",\"exit_status\":null");
		rc = rc ? rc : wm_buf_puts(b, ",\"complete\":true,\"self\":{\"cpu_s\":");
		rc = rc ? rc : put_num(b, m->self_cpu_s, 6);
		rc = rc ? rc : wm_buf_printf(b, ",\"samples\":%llu}", (unsigned long long)m->ticks + 1);
	} else if (!rc) {
		rc = wm_buf_puts(b, ",\"complete\":false");
	}
	return rc ? rc : wm_buf_puts(b, "}");
}

static int write_meta(wm_meter *m, int final, int exit_status, double end_wall_s, double duration_s)
{
	wm_buf b;
	wm_buf_init(&b);
	int rc = build_meta(m, final, exit_status, end_wall_s, duration_s, &b);
	if (!rc)
		rc = wm_recorder_write_meta(&m->rec, b.data, b.len);
	wm_buf_free(&b);
	return rc;
}

/* ---- one sample ------------------------------------------------------------- */

static double thread_cpu_s(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
		return 0.0;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads every zone; device energy = sum of its counted zones' totals. */
static void read_counters(wm_meter *m)
{
	double dev_uj[N_DEV] = {0};
	for (size_t i = 0; m->rapl && i < m->rapl->n_zones; i++) {
		const wm_rapl_zone *z = &m->rapl->zones[i];
		if (z->fd < 0)
			continue;
		uint64_t raw;
		if (wm_rapl_read_uj(m->rapl, i, &raw) < 0) {
			/* Vanished or unreadable right now: a gap. The counter resumes
			 * from its last raw value, so the energy of the gap is not lost
			 * if the zone comes back. */
			m->zone_gap[i] = 1;
		} else {
			m->zone_gap[i] = 0;
			(void)wm_counter_update(&m->zone_ctr[i], raw, NULL);
		}
		int d = m->zone_dev[i];
		if (d >= 0 && !m->dev_modeled[d])
			dev_uj[d] += (double)m->zone_ctr[i].total;
	}
	for (int d = 0; d < N_DEV; d++)
		if (m->dev_present[d] && !m->dev_modeled[d])
			m->energy_j[d] = dev_uj[d] / 1e6;
}

/* CPU busy fraction over the last counter period; advances the model. */
static double read_cpu_util(wm_meter *m, double dt_s, wm_cpu_times *ct_out)
{
	double util = NAN;
	wm_cpu_times ct;
	if (!m->have_sysstat || wm_sysstat_read_cpu(&m->sysstat, &ct) < 0) {
		/* Unreadable this time: keep the last reading, so the model goes on
		 * at the last utilisation and no interval is dropped. */
		if (!m->have_last_ct) {
			memset(ct_out, 0, sizeof *ct_out);
			return util;
		}
		ct = m->last_ct;
	}
	if (m->have_last_ct && ct.total_ticks > m->last_ct.total_ticks) {
		uint64_t dbusy = ct.busy_ticks >= m->last_ct.busy_ticks ? ct.busy_ticks - m->last_ct.busy_ticks : 0;
		util = (double)dbusy / (double)(ct.total_ticks - m->last_ct.total_ticks);
		if (util > 1.0)
			util = 1.0;
	}
	if (m->dev_modeled[DEV_CPU] && m->have_last_ct && dt_s > 0) {
		/* /proc/stat moves in whole ticks (10 ms): at high rates an interval
		 * can see no tick at all; hold the last utilisation then. */
		double u = isfinite(util) ? util : m->last_util;
		m->energy_j[DEV_CPU] += wm_cpu_model_power_w(&m->model, u) * dt_s;
	}
	if (isfinite(util))
		m->last_util = util;
	m->last_ct = ct;
	m->have_last_ct = 1;
	*ct_out = ct;
	return util;
}

/* A root that does not count its own CPU (the CLI, parent of the command)
 * only reaps: the tail it shows is the last moments of the measured children
 * it reaped this interval. Hand that tail to them, so the command, not
 * wattmeter, carries its own energy. */
static void give_reaper_tail(wm_proctree *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		wm_proc *r = wm_proctree_get(t, i);
		if (!r->is_root || r->count_own || !r->d_tail_ticks)
			continue;
		size_t heirs = 0;
		for (size_t j = 0; j < n; j++) {
			const wm_proc *c = wm_proctree_get(t, j);
			heirs += c->vanished && c->count_own && c->ppid == r->pid;
		}
		if (!heirs)
			continue;
		uint64_t share = r->d_tail_ticks / heirs, rest = r->d_tail_ticks % heirs;
		for (size_t j = 0; j < n; j++) {
			wm_proc *c = wm_proctree_get(t, j);
			if (c->vanished && c->count_own && c->ppid == r->pid) {
				c->d_tail_ticks += share + rest;
				c->total_cpu_ticks += share + rest;
				rest = 0;
			}
		}
		r->total_cpu_ticks -= r->total_cpu_ticks >= r->d_tail_ticks ? r->d_tail_ticks : r->total_cpu_ticks;
		r->d_tail_ticks = 0;
	}
}

/* Splits the energy of the process interval among the measured processes.
 * Called with m->lock held. */
static void attribute(wm_meter *m, const wm_cpu_times *ct)
{
	double d_energy[N_DEV];
	for (int d = 0; d < N_DEV; d++) {
		d_energy[d] = m->energy_j[d] - m->energy_at_proc_j[d];
		if (d_energy[d] < 0)
			d_energy[d] = 0;
		m->energy_at_proc_j[d] = m->energy_j[d];
	}
	uint64_t busy = ct->busy_ticks;
	uint64_t d_busy = busy > m->busy_at_proc ? busy - m->busy_at_proc : 0;
	m->busy_at_proc = busy;

	/* The sampler's own CPU is inside the calling process's times when we
	 * measure ourselves: take it out so measuring is never billed to the user. */
	double self_d_s = m->self_cpu_s - m->self_cpu_at_proc_s;
	m->self_cpu_at_proc_s = m->self_cpu_s;
	uint64_t self_d_ticks = (uint64_t)llround(self_d_s * (double)m->clk_tck);

	size_t n = wm_proctree_count(m->tree);
	uint64_t sum_ticks = 0;
	double sum_mem = 0;
	pid_t me = getpid();
	give_reaper_tail(m->tree, n);
	for (size_t i = 0; i < n; i++) {
		wm_proc *p = wm_proctree_get(m->tree, i);
		if (!p->alive && !p->vanished)
			continue;
		if (m->measure_self && p->pid == me && p->is_root)
			p->d_cpu_ticks = p->d_cpu_ticks > self_d_ticks ? p->d_cpu_ticks - self_d_ticks : 0;
		sum_ticks += (p->count_own ? p->d_cpu_ticks : 0) + p->d_tail_ticks;
		if (p->alive)
			sum_mem += (double)(p->have_pss ? p->pss_bytes : p->rss_bytes);
	}
	/* Process and machine ticks are read at slightly different instants:
	 * never attribute more than the whole. */
	double cpu_den = (double)(sum_ticks > d_busy ? sum_ticks : d_busy);
	double mem_den = (double)m->mem_used_bytes;
	if (sum_mem > mem_den)
		mem_den = sum_mem;
	for (size_t i = 0; i < n; i++) {
		wm_proc *p = wm_proctree_get(m->tree, i);
		if (!p->alive && !p->vanished)
			continue;
		uint64_t t = (p->count_own ? p->d_cpu_ticks : 0) + p->d_tail_ticks;
		if (cpu_den > 0 && m->dev_present[DEV_CPU]) {
			double e = d_energy[DEV_CPU] * (double)t / cpu_den;
			p->energy_cpu_j += e;
			m->attributed_j[DEV_CPU] += e;
		}
		double mem = p->alive ? (double)(p->have_pss ? p->pss_bytes : p->rss_bytes) : 0;
		if (mem_den > 0 && m->dev_present[DEV_DRAM]) {
			double e = d_energy[DEV_DRAM] * mem / mem_den;
			p->energy_dram_j += e;
			m->attributed_j[DEV_DRAM] += e;
		}
	}
}

static int line_procs(wm_meter *m, uint64_t d_busy, wm_buf *b)
{
	int rc = wm_buf_puts(b, ",\"procs\":[");
	size_t n = wm_proctree_count(m->tree);
	int first = 1;
	for (size_t i = 0; i < n && !rc; i++) {
		const wm_proc *p = wm_proctree_get(m->tree, i);
		if (!p->alive && !p->vanished)
			continue;
		if (!p->count_own && !p->d_tail_ticks && !p->energy_cpu_j)
			continue; /* the CLI itself, when it reaped nothing */
		uint64_t t = (p->count_own ? p->d_cpu_ticks : 0) + p->d_tail_ticks;
		rc = wm_buf_printf(b, "%s{\"pid\":%d,\"ppid\":%d,\"comm\":", first ? "" : ",", p->pid, p->ppid);
		first = 0;
		rc = rc ? rc : wm_buf_json_str(b, p->comm);
		rc = rc ? rc : wm_buf_printf(b, ",\"alive\":%s,\"cpu_s\":", p->alive ? "true" : "false");
		rc = rc ? rc : put_num(b, (double)t / (double)m->clk_tck, 3);
		rc = rc ? rc : wm_buf_puts(b, ",\"cpu_share\":");
		rc = rc ? rc : put_num(b, d_busy ? (double)t / (double)d_busy : 0.0, 4);
		rc = rc ? rc : wm_buf_printf(b, ",\"rss_bytes\":%llu", (unsigned long long)p->rss_bytes);
		if (!rc && p->have_pss)
			rc = wm_buf_printf(b, ",\"pss_bytes\":%llu,\"uss_bytes\":%llu",
					   (unsigned long long)p->pss_bytes, (unsigned long long)p->uss_bytes);
		rc = rc ? rc : wm_buf_puts(b, ",\"mem_pct\":");
		double mem = (double)(p->have_pss ? p->pss_bytes : p->rss_bytes);
		rc = rc ? rc : put_num(b, m->mem_total_bytes ? 100.0 * mem / (double)m->mem_total_bytes : 0.0, 4);
		rc = rc ? rc : wm_buf_puts(b, ",\"energy_j\":{");
		int f2 = 1;
		if (!rc && m->dev_present[DEV_CPU]) {
			rc = put_key(b, &f2, "cpu");
			rc = rc ? rc : put_num(b, p->energy_cpu_j, 6);
		}
		if (!rc && m->dev_present[DEV_DRAM]) {
			rc = put_key(b, &f2, "dram");
			rc = rc ? rc : put_num(b, p->energy_dram_j, 6);
		}
		rc = rc ? rc : wm_buf_puts(b, "}}");
	}
	rc = rc ? rc : wm_buf_puts(b, "]");
	/* Announce processes seen for the first time, and again after an exec
	 * (its comm changes): a forked child first looks like its parent, and
	 * the CLI's own child is first seen before it execs the command. */
	first = 1;
	for (size_t i = 0; i < n && !rc; i++) {
		wm_proc *p = wm_proctree_get(m->tree, i);
		if (!p->alive || !p->count_own || strcmp(p->announced_comm, p->comm) == 0)
			continue;
		if (p->announced_comm[0] || !p->cmdline[0]) {
			char cmd[sizeof p->cmdline];
			if (wm_read_pid_cmdline(m->procroot.dirfd, p->pid, cmd, sizeof cmd) >= 0 && cmd[0])
				memcpy(p->cmdline, cmd, sizeof cmd);
		}
		memcpy(p->announced_comm, p->comm, sizeof p->announced_comm);
		rc = wm_buf_printf(b, "%s{\"pid\":%d,\"ppid\":%d,\"starttime_ticks\":%llu,\"cmdline\":",
				   first ? ",\"new_procs\":[" : ",", p->pid, p->ppid,
				   (unsigned long long)p->starttime_ticks);
		first = 0;
		rc = rc ? rc : wm_buf_json_str(b, p->cmdline[0] ? p->cmdline : p->comm);
		rc = rc ? rc : wm_buf_puts(b, "}");
	}
	if (!rc && !first)
		rc = wm_buf_puts(b, "]");
	return rc;
}

/* Takes one sample and appends its line. proc_tier/mem_tier force those
 * tiers. Runs on the sampler thread (and once in start for the baseline). */
static void sample(wm_meter *m, int proc_tier, int mem_tier, int baseline)
{
	uint64_t now = baseline ? m->t0_ns : wm_now_mono_ns();
	double dt_s = baseline ? 0.0 : (double)(now - m->last_ns) / 1e9;
	double before[N_DEV];
	memcpy(before, m->energy_j, sizeof before);

	read_counters(m);
	/* /proc/stat is read every tick only when it drives the CPU model; with
	 * counters it is needed for attribution only, on the process tier
	 * (reading it makes the kernel sum every CPU's counters: dear on big
	 * machines). */
	wm_cpu_times ct = m->last_ct;
	double util = NAN;
	if (baseline || proc_tier || m->dev_modeled[DEV_CPU])
		util = read_cpu_util(m, dt_s, &ct);
	for (int d = 0; d < N_DEV; d++) {
		m->power_w[d] = dt_s > 0 ? (m->energy_j[d] - before[d]) / dt_s : 0.0;
		double alpha = dt_s > 1.0 ? 1.0 : dt_s; /* ~1 s smoothing for the live line */
		m->power_smooth_w[d] += alpha * (m->power_w[d] - m->power_smooth_w[d]);
	}
	if (baseline) {
		memcpy(m->energy_at_proc_j, m->energy_j, sizeof m->energy_at_proc_j);
		m->busy_at_proc = ct.busy_ticks;
	}
	m->last_ns = now;
	if (!baseline)
		m->ticks++;
	double t_s = (double)(now - m->t0_ns) / 1e9;

	wm_buf *b = &m->line;
	wm_buf_reset(b);
	int rc = wm_buf_puts(b, "{\"t_s\":");
	rc = rc ? rc : put_num(b, t_s, 6);
	rc = rc ? rc : wm_buf_puts(b, ",\"energy_j\":{");
	int first = 1;
	for (int d = 0; d < N_DEV && !rc; d++) {
		if (!m->dev_present[d])
			continue;
		rc = put_key(b, &first, dev_names[d]);
		rc = rc ? rc : put_num(b, m->energy_j[d], 6);
	}
	rc = rc ? rc : wm_buf_puts(b, "}");
	if (!baseline) { /* the baseline closes no interval: it has no power */
		rc = rc ? rc : wm_buf_puts(b, ",\"power_w\":{");
		first = 1;
		for (int d = 0; d < N_DEV && !rc; d++) {
			if (!m->dev_present[d])
				continue;
			rc = put_key(b, &first, dev_names[d]);
			rc = rc ? rc : put_num(b, m->power_w[d], 3);
		}
		rc = rc ? rc : wm_buf_puts(b, "}");
	}
	if (!rc && m->rapl && m->rapl->n_zones) {
		/* Every zone (core, uncore, duplicates too) on process-tier lines
		 * only: device totals are on every line; this keeps the recording
		 * small at high counter rates. */
		int any_gap = 0;
		for (size_t i = 0; i < m->rapl->n_zones; i++)
			any_gap |= m->zone_gap[i];
		if (proc_tier || baseline) {
			rc = wm_buf_puts(b, ",\"zones_energy_j\":{");
			first = 1;
			for (size_t i = 0; i < m->rapl->n_zones && !rc; i++) {
				if (m->rapl->zones[i].fd < 0)
					continue;
				rc = put_key(b, &first, m->rapl->zones[i].label);
				rc = rc ? rc : put_num(b, (double)m->zone_ctr[i].total / 1e6, 6);
			}
			rc = rc ? rc : wm_buf_puts(b, "}");
		}
		if (!rc && any_gap) {
			rc = wm_buf_puts(b, ",\"gaps\":[");
			first = 1;
			for (size_t i = 0; i < m->rapl->n_zones && !rc; i++) {
				if (!m->zone_gap[i])
					continue;
				rc = first ? 0 : wm_buf_puts(b, ",");
				first = 0;
				rc = rc ? rc : wm_buf_json_str(b, m->rapl->zones[i].label);
			}
			rc = rc ? rc : wm_buf_puts(b, "]");
		}
	}
	if (!rc && isfinite(util)) {
		rc = wm_buf_puts(b, ",\"cpu_util\":");
		rc = rc ? rc : put_num(b, util, 4);
	}

	pthread_mutex_lock(&m->lock);
	if (!rc && proc_tier && m->tree) {
		uint64_t busy_before = m->busy_at_proc;
		if (mem_tier)
			(void)wm_proctree_read_memory(m->tree);
		if (m->have_sysstat) {
			uint64_t avail = 0;
			if (wm_sysstat_read_mem(&m->sysstat, &m->mem_total_bytes, &avail) == 0)
				m->mem_used_bytes = m->mem_total_bytes > avail ? m->mem_total_bytes - avail : 0;
		}
		/* A failed scan (procfs gone) leaves the d_* fields at zero: the
		 * interval's energy stays unattributed rather than invented. */
		if (wm_proctree_scan(m->tree) < 0) {
			size_t n = wm_proctree_count(m->tree);
			for (size_t i = 0; i < n; i++) {
				wm_proc *p = wm_proctree_get(m->tree, i);
				p->d_cpu_ticks = p->d_tail_ticks = 0;
			}
		}
		m->self_cpu_s = thread_cpu_s();
		attribute(m, &ct);
		uint64_t d_busy = ct.busy_ticks > busy_before ? ct.busy_ticks - busy_before : 0;
		rc = wm_buf_puts(b, ",\"attributed_j\":{");
		first = 1;
		for (int d = 0; d <= DEV_DRAM && !rc; d++) {
			if (!m->dev_present[d])
				continue;
			rc = put_key(b, &first, dev_names[d]);
			rc = rc ? rc : put_num(b, m->attributed_j[d], 6);
		}
		rc = rc ? rc : wm_buf_printf(b, "},\"mem_used_bytes\":%llu", (unsigned long long)m->mem_used_bytes);
		rc = rc ? rc : line_procs(m, d_busy, b);
	}
	m->self_cpu_s = thread_cpu_s();
	if (!rc) {
		rc = wm_buf_puts(b, ",\"self_cpu_s\":");
		rc = rc ? rc : put_num(b, m->self_cpu_s, 6);
		rc = rc ? rc : wm_buf_puts(b, "}");
	}
	if (!rc) {
		rc = wm_recorder_append(&m->rec, b->data, b->len);
		if (rc && !m->write_errno)
			m->write_errno = -rc;
	}

	/* the snapshot for live displays */
	wm_snapshot *s = &m->snap;
	s->elapsed_s = t_s;
	s->n_devices = 0;
	for (int d = 0; d < N_DEV; d++) {
		if (!m->dev_present[d])
			continue;
		size_t k = s->n_devices++;
		(void)snprintf(s->devices[k].name, sizeof s->devices[k].name, "%s", dev_names[d]);
		s->devices[k].modeled = m->dev_modeled[d];
		s->devices[k].power_w = m->power_smooth_w[d];
		s->devices[k].energy_j = m->energy_j[d];
		s->devices[k].attributed_j = m->attributed_j[d];
	}
	if (proc_tier && m->tree) { /* the set only changes when it is scanned */
		size_t alive = 0, n = wm_proctree_count(m->tree);
		for (size_t i = 0; i < n; i++) {
			const wm_proc *p = wm_proctree_get(m->tree, i);
			alive += p->alive && p->count_own;
		}
		s->n_procs_alive = alive;
	}
	s->self_cpu_s = m->self_cpu_s;
	s->samples = m->ticks + 1;
	pthread_mutex_unlock(&m->lock);
}

/* ---- the thread ------------------------------------------------------------- */

static void *sampler_main(void *arg)
{
	wm_meter *m = arg;
	uint64_t period_ns = (uint64_t)llround(m->period_s * 1e9);
	/* The kernel may delay a timed wake-up by the thread's timer slack
	 * (50 us by default) to batch wake-ups. Keep it to 1% of the period
	 * so 1 kHz sampling stays on time, without asking for more. */
	uint64_t slack_ns = period_ns / 100;
	if (slack_ns < 50000)
		(void)prctl(PR_SET_TIMERSLACK, (unsigned long)(slack_ns ? slack_ns : 1), 0, 0, 0);
	uint64_t next = m->t0_ns + period_ns;
	pthread_mutex_lock(&m->lock);
	for (;;) {
		while (!m->stop_requested) {
			uint64_t now = wm_now_mono_ns();
			if (now >= next)
				break;
			struct timespec ts = {.tv_sec = (time_t)(next / 1000000000ull),
					      .tv_nsec = (long)(next % 1000000000ull)};
			(void)pthread_cond_timedwait(&m->cond, &m->lock, &ts);
		}
		int stop = m->stop_requested;
		pthread_mutex_unlock(&m->lock);
		uint64_t k = m->ticks + 1;
		int proc_tier = stop || k % m->proc_every == 0;
		int mem_tier = m->mem_every && (stop || k % m->mem_every == 0);
		sample(m, proc_tier, mem_tier, 0);
		if (stop)
			return NULL;
		/* Fell behind (machine overloaded, suspended): skip missed deadlines
		 * rather than bursting; energy is exact anyway (counter deltas). */
		uint64_t now = wm_now_mono_ns();
		next += period_ns;
		if (next <= now)
			next = now + period_ns - (now - m->t0_ns) % period_ns;
		pthread_mutex_lock(&m->lock);
	}
}

/* ---- lifecycle ------------------------------------------------------------- */

static void free_meter(wm_meter *m)
{
	if (!m)
		return;
	wm_buf_free(&m->line);
	wm_buf_free(&m->host_json);
	wm_recorder_close(&m->rec);
	wm_proctree_free(m->tree);
	if (m->have_sysstat)
		wm_sysstat_close(&m->sysstat);
	free(m->zone_dev);
	free(m->zone_gap);
	free(m->zone_ctr);
	wm_rapl_free(m->rapl);
	wm_root_close(&m->procroot);
	wm_root_close(&m->sysroot);
	if (m->command) {
		for (size_t i = 0; m->command[i]; i++)
			free(m->command[i]);
		free(m->command);
	}
	free(m->sysfs_path);
	free(m->procfs_path);
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static int copy_command(wm_meter *m, const char *const *command)
{
	if (!command)
		return 0;
	size_t n = 0;
	while (command[n])
		n++;
	m->command = calloc(n + 1, sizeof *m->command);
	if (!m->command)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (!(m->command[i] = strdup(command[i])))
			return -ENOMEM;
	return 0;
}

static int setup_sensors(wm_meter *m, const wm_meter_config *c, char *err, size_t errlen)
{
	int rc = wm_root_open(&m->sysroot, m->sysfs_path, err, errlen);
	if (rc < 0)
		return rc;
	rc = wm_root_open(&m->procroot, m->procfs_path, err, errlen);
	if (rc < 0)
		return rc;
	rc = wm_rapl_probe(m->sysroot.dirfd, &m->rapl, err, errlen);
	if (rc < 0)
		return rc;
	size_t nz = m->rapl->n_zones;
	m->zone_ctr = calloc(nz ? nz : 1, sizeof *m->zone_ctr);
	m->zone_gap = calloc(nz ? nz : 1, sizeof *m->zone_gap);
	m->zone_dev = calloc(nz ? nz : 1, sizeof *m->zone_dev);
	if (!m->zone_ctr || !m->zone_gap || !m->zone_dev)
		return wm_err(err, errlen, -ENOMEM, "out of memory");
	for (size_t i = 0; i < nz; i++) {
		const wm_rapl_zone *z = &m->rapl->zones[i];
		wm_counter_init(&m->zone_ctr[i], z->max_energy_range_uj);
		m->zone_dev[i] = -1;
		for (int d = 0; d < N_DEV && z->counted && z->device; d++)
			if (strcmp(z->device, dev_names[d]) == 0)
				m->zone_dev[i] = d;
		if (z->fd >= 0 && m->zone_dev[i] >= 0)
			m->dev_present[m->zone_dev[i]] = 1;
	}
	if (m->rapl->state == WM_SRC_OK) {
		double wrap_s = wm_rapl_min_wrap_s(m->rapl, WRAP_CHECK_MAX_W);
		if (wrap_s > 0 && m->period_s > wrap_s / 2)
			(void)snprintf(m->warning, sizeof m->warning,
				       "period %.3g s is not well inside the RAPL wrap time (%.3g s at %.0f W): "
				       "energy may be lost; use a shorter --period", m->period_s, wrap_s,
				       WRAP_CHECK_MAX_W);
	}

	char serr[256];
	if (wm_sysstat_open(&m->sysstat, m->procroot.dirfd, serr, sizeof serr) == 0)
		m->have_sysstat = 1;
	m->model.min_w_per_cpu = c->model_min_w_per_cpu;
	m->model.max_w_per_cpu = c->model_max_w_per_cpu;
	m->model.n_cpus = m->have_sysstat && m->sysstat.n_cpus > 0 ? m->sysstat.n_cpus : 1;
	if ((!m->dev_present[DEV_CPU] || c->force_model) && m->have_sysstat) {
		m->dev_present[DEV_CPU] = 1;
		m->dev_modeled[DEV_CPU] = 1;
	}
	return 0;
}

int wm_meter_start(const wm_meter_config *c, wm_meter **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!c->output_dir || !*c->output_dir)
		return wm_err(err, errlen, -EINVAL, "no output folder given");
	if (!(c->period_s >= 0.0005 && c->period_s <= 3600))
		return wm_err(err, errlen, -EINVAL, "period %g s is out of range (0.0005 .. 3600 s)", c->period_s);
	if (!(c->proc_period_s > 0) || !(c->mem_period_s >= 0))
		return wm_err(err, errlen, -EINVAL, "process and memory periods must be positive (memory: 0 = off)");
	if (!(c->model_min_w_per_cpu >= 0) || !(c->model_max_w_per_cpu >= c->model_min_w_per_cpu))
		return wm_err(err, errlen, -EINVAL,
			      "CPU model watts must satisfy 0 <= min (%g) <= max (%g)", c->model_min_w_per_cpu,
			      c->model_max_w_per_cpu);

	wm_meter *m = calloc(1, sizeof *m);
	if (!m)
		return wm_err(err, errlen, -ENOMEM, "out of memory");
	m->owner_pid = getpid();
	m->sysroot.dirfd = m->procroot.dirfd = -1;
	m->rec.dir_fd = m->rec.samples_fd = -1;
	wm_buf_init(&m->line);
	wm_buf_init(&m->host_json);
	pthread_mutex_init(&m->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->cond, &ca);
	pthread_condattr_destroy(&ca);

	m->period_s = c->period_s;
	m->proc_every = (unsigned)fmax(1.0, round(c->proc_period_s / c->period_s));
	m->proc_period_s = m->proc_every * c->period_s;
	m->mem_every = c->mem_period_s > 0 ? (unsigned)fmax(1.0, round(c->mem_period_s / c->period_s)) : 0;
	/* memory reads happen on process ticks */
	if (m->mem_every)
		m->mem_every = ((m->mem_every + m->proc_every - 1) / m->proc_every) * m->proc_every;
	m->mem_period_s = m->mem_every * c->period_s;
	m->measure_self = c->measure_self;
	m->clk_tck = sysconf(_SC_CLK_TCK);
	if (m->clk_tck <= 0)
		m->clk_tck = 100;
	m->sysfs_path = strdup(c->sysfs_root ? c->sysfs_root : "/sys");
	m->procfs_path = strdup(c->procfs_root ? c->procfs_root : "/proc");
	int rc = (!m->sysfs_path || !m->procfs_path) ? -ENOMEM : copy_command(m, c->command);
	if (rc < 0) {
		wm_err(err, errlen, rc, "out of memory");
		goto fail;
	}
	rc = setup_sensors(m, c, err, errlen);
	if (rc < 0)
		goto fail;

	rc = wm_proctree_new(m->procroot.dirfd, &m->tree);
	if (rc < 0) {
		wm_err(err, errlen, rc, "cannot set up the process table: %s", strerror(-rc));
		goto fail;
	}
	for (size_t i = 0; i < c->n_pids; i++) {
		rc = wm_proctree_add_root(m->tree, c->pids[i], 1);
		if (rc < 0) {
			wm_err(err, errlen, rc, "cannot measure pid %d: %s (is it running? is --procfs-root right?)",
			       c->pids[i], strerror(-rc));
			goto fail;
		}
	}
	if (c->measure_self && (rc = wm_proctree_add_root(m->tree, getpid(), 1)) < 0) {
		wm_err(err, errlen, rc, "cannot measure this process through %s: %s", m->procfs_path, strerror(-rc));
		goto fail;
	}
	if (c->reaper_pid > 0)
		(void)wm_proctree_add_root(m->tree, c->reaper_pid, 0);
	(void)wm_proctree_scan(m->tree);

	rc = wm_recorder_open(&m->rec, c->output_dir, err, errlen);
	if (rc < 0)
		goto fail;
	if (wm_host_json(m->procroot.dirfd, &m->host_json) < 0)
		wm_buf_reset(&m->host_json); /* "null": the rest of meta.json still matters */
	m->wall0_s = wm_now_wall_s();
	rc = write_meta(m, 0, -1, 0, 0);
	if (rc < 0) {
		wm_err(err, errlen, rc, "cannot write %s/meta.json: %s", c->output_dir, strerror(-rc));
		goto fail;
	}
	/* Time zero is the baseline sample, taken now (writing meta.json above
	 * includes an fsync); the final meta.json carries this start time. */
	m->t0_ns = m->last_ns = wm_now_mono_ns();
	m->wall0_s = wm_now_wall_s();
	sample(m, 1, m->mem_every != 0, 1);
	if (m->write_errno) {
		rc = wm_err(err, errlen, -m->write_errno, "cannot write %s/samples.jsonl: %s", c->output_dir,
			    strerror(m->write_errno));
		goto fail;
	}

	/* The thread blocks every signal: they belong to the application (the
	 * CLI forwards SIGINT/SIGTERM to the wrapped command). */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&m->thread, NULL, sampler_main, m);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0) {
		wm_err(err, errlen, rc, "cannot start the sampler thread: %s", strerror(-rc));
		goto fail;
	}
	m->thread_started = 1;
	*out = m;
	return 0;
fail:
	free_meter(m);
	return rc;
}

int wm_meter_add_pid(wm_meter *m, int pid)
{
	if (!is_owner(m))
		return -ECHILD;
	pthread_mutex_lock(&m->lock);
	int rc = m->stopped ? -EINVAL : wm_proctree_add_root(m->tree, pid, 1);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int wm_meter_snapshot(wm_meter *m, wm_snapshot *out)
{
	if (!is_owner(m))
		return -ECHILD;
	pthread_mutex_lock(&m->lock);
	*out = m->snap;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int stop_thread(wm_meter *m)
{
	if (!m->thread_started)
		return 0;
	pthread_mutex_lock(&m->lock);
	m->stop_requested = 1;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	int rc = -pthread_join(m->thread, NULL);
	m->thread_started = 0;
	return rc;
}

int wm_meter_stop(wm_meter *m, int exit_status, char *err, size_t errlen)
{
	if (!is_owner(m))
		return wm_err(err, errlen, -ECHILD, "this meter belongs to process %d", m ? (int)m->owner_pid : 0);
	if (m->stopped)
		return 0;
	int rc = stop_thread(m);
	m->stopped = 1;
	double end_wall = wm_now_wall_s();
	double duration = (double)(m->last_ns - m->t0_ns) / 1e9;
	int mrc = write_meta(m, 1, exit_status, end_wall, duration);
	wm_recorder_close(&m->rec);
	if (m->write_errno)
		return wm_err(err, errlen, -m->write_errno,
			      "some samples could not be written to %s/samples.jsonl: %s (disk full?)",
			      m->rec.dir, strerror(m->write_errno));
	if (mrc < 0)
		return wm_err(err, errlen, mrc, "cannot complete %s/meta.json: %s", m->rec.dir, strerror(-mrc));
	if (rc < 0)
		return wm_err(err, errlen, rc, "cannot stop the sampler thread: %s", strerror(-rc));
	return 0;
}

void wm_meter_free(wm_meter *m)
{
	if (!m)
		return;
	if (!is_owner(m))
		return; /* a forked child: leave the parent's meter alone */
	if (!m->stopped)
		(void)wm_meter_stop(m, -1, NULL, 0);
	free_meter(m);
}
