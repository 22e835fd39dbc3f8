/* meter.c — the meter: one native thread that owns the sources and time.
 *
 * Tiers (all multiples of the counter period, one monotonic clock):
 *   counter tier, every period_s:  every active source's channels (RAPL
 *                                  zones, GPUs, the CPU model); one sample;
 *   process tier, every proc_period_s: scan of the measured process tree and
 *                                  attribution of the energy of the interval
 *                                  (attribution.c), device by device, by rule;
 *   memory tier, every mem_period_s: PSS/USS from smaps_rollup (0 = off).
 * Each sample is a wm_sample handed to the sinks (meter.h) without the lock:
 * the recording, the live snapshot, the exporter. The thread never calls
 * into Python, blocks every signal, and sleeps on a condition variable with
 * absolute monotonic deadlines (no drift; a stop request wakes it at once).
 * The thread takes the baseline sample itself (so the CPU it reports as its
 * own is its own) and the last one on stop, with the process tier forced.
 *
 * Long runs: exited processes are forgotten once their last interval has
 * been attributed and reported (wm_proctree_forget_exited); their energy
 * stays in the device's attributed total. Memory and per-tick work follow
 * the processes alive now, not all that ever ran.
 *
 * Fork safety: the meter remembers the pid that started it. In a forked child
 * (a data-loader worker forked from a measured Python process) every call is
 * a no-op: the child has no sampler thread and must not write the parent's
 * recording, nor touch a mutex that may have been copied locked.
 */
#include "meter/meter_priv.h"
#include "meter/include.h"
#include "meter/job.h"
#include "procs/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "base/host.h"
#include "meter/requests.h"
#include "meter/windows.h"

/* ---- configuration ------------------------------------------------------------ */

void wm_meter_config_init(wm_meter_config *c)
{
	memset(c, 0, sizeof *c);
	c->size = sizeof *c;
	c->sysfs_root = WM_DEFAULT_SYSFS_ROOT;
	c->procfs_root = WM_DEFAULT_PROCFS_ROOT;
	c->period_s = WM_DEFAULT_PERIOD_S;
	c->proc_period_s = WM_DEFAULT_PROC_PERIOD_S;
	c->mem_period_s = WM_DEFAULT_MEM_PERIOD_S;
	c->model_min_w_per_cpu = WM_DEFAULT_MODEL_MIN_W;
	c->model_max_w_per_cpu = WM_DEFAULT_MODEL_MAX_W;
}

/* A caller's config, whatever header it was built with: the fields within
 * its size, defaults for the rest (meter_priv.h). */
int wm_meter_take_config(const wm_meter_config *c, wm_meter_config *out, char *err, size_t errlen)
{
	wm_meter_config_init(out);
	if (!c)
		return 0;
	size_t n = c->size;
	if (n < offsetof(wm_meter_config, nvml_lib) || n > 65536)
		return wm_err(err, errlen, -EINVAL,
			      "wm_meter_config.size is %zu: initialise the config with wm_meter_config_init", n);
	memcpy(out, c, n < sizeof *out ? n : sizeof *out);
	out->size = sizeof *out;
	if (!out->sysfs_root)
		out->sysfs_root = WM_DEFAULT_SYSFS_ROOT;
	if (!out->procfs_root)
		out->procfs_root = WM_DEFAULT_PROCFS_ROOT;
	return 0;
}

int wm_meter_config_check(const wm_meter_config *c, char *err, size_t errlen)
{
	if (!(c->period_s >= WM_MIN_PERIOD_S && c->period_s <= WM_MAX_PERIOD_S))
		return wm_err(err, errlen, -EINVAL, "period %g s is out of range (%g .. %g s)", c->period_s,
			      WM_MIN_PERIOD_S, WM_MAX_PERIOD_S);
	if (!(c->proc_period_s > 0 && c->proc_period_s <= WM_MAX_PERIOD_S))
		return wm_err(err, errlen, -EINVAL, "process period %g s is out of range (> 0 .. %g s)",
			      c->proc_period_s, WM_MAX_PERIOD_S);
	if (!(c->mem_period_s >= 0 && c->mem_period_s <= WM_MAX_PERIOD_S))
		return wm_err(err, errlen, -EINVAL, "memory period %g s is out of range (0 = off .. %g s)",
			      c->mem_period_s, WM_MAX_PERIOD_S);
	if (!(c->model_min_w_per_cpu >= 0) || !(c->model_max_w_per_cpu >= c->model_min_w_per_cpu) ||
	    !(c->model_max_w_per_cpu < 10000))
		return wm_err(err, errlen, -EINVAL,
			      "CPU model watts must satisfy 0 <= min (%g) <= max (%g) < 10000", c->model_min_w_per_cpu,
			      c->model_max_w_per_cpu);
	if (c->output_dir && !*c->output_dir)
		return wm_err(err, errlen, -EINVAL, "the output folder is an empty string (NULL: no recording)");
	return 0;
}

int wm_meter_is_owner(const wm_meter *m)
{
	return m && m->owner_pid == getpid();
}

/* ---- accessors (meter.h) ------------------------------------------------------ */

size_t wm_meter_n_devices(const wm_meter *m) { return m->n_dev; }
const wm_device *wm_meter_device(const wm_meter *m, size_t i) { return &m->dev[i]; }
size_t wm_meter_n_channels(const wm_meter *m) { return m->n_ch; }
const wm_meter_channel *wm_meter_channel_at(const wm_meter *m, size_t i) { return &m->ch[i]; }
const wm_sources *wm_meter_sources(const wm_meter *m) { return &m->sources; }
const char *const *wm_meter_command(const wm_meter *m) { return (const char *const *)m->command; }
double wm_meter_period_s(const wm_meter *m) { return m->period_s; }
double wm_meter_proc_period_s(const wm_meter *m) { return m->proc_period_s; }
double wm_meter_mem_period_s(const wm_meter *m) { return m->mem_period_s; }

void wm_meter_memory_rounds(const wm_meter *m, uint64_t *read, uint64_t *reused)
{
	wm_proctree_memory_rounds(m ? m->tree : NULL, read, reused);
}
double wm_meter_start_wall_s(const wm_meter *m) { return m->wall0_s; }
const char *wm_meter_procfs_path(const wm_meter *m) { return m->procroot.path; }
const char *wm_meter_host_json(const wm_meter *m) { return m->host_json.len ? m->host_json.data : "null"; }
const char *wm_meter_warnings(const wm_meter *m) { return m->warnings.len ? m->warnings.data : ""; }

void wm_meter_included_json(const wm_meter *m, wm_buf *b)
{
	if (m->inc)
		wm_include_json(m->inc, b);
	else
		wm_buf_puts(b, "null");
}

size_t wm_meter_root_pids(const wm_meter *m, int *out, size_t cap)
{
	size_t n = m->n_roots < cap ? m->n_roots : cap;
	if (n)
		memcpy(out, m->roots, n * sizeof *out);
	return m->n_roots;
}

/* Adds a warning line (kept for meta.json and the summary), once. */
void wm_meter_warn(wm_meter *m, const char *msg)
{
	if (!msg[0] || (m->warnings.data && strstr(m->warnings.data, msg)))
		return;
	if (m->warnings.len)
		wm_buf_puts(&m->warnings, "\n");
	wm_buf_puts(&m->warnings, msg);
}

/* ---- the counter tier ----------------------------------------------------------- */

static double thread_cpu_s(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
		return 0.0;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Machine CPU busy fraction since the last reading (NaN if no new tick). */
static double read_cpu_util(wm_meter *m, wm_cpu_times *ct_out)
{
	double util = NAN;
	wm_cpu_times ct;
	if (!m->have_sysstat || wm_sysstat_read_cpu(&m->sysstat, &ct) < 0) {
		/* Unreadable this time: keep the last reading, so a model goes on
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
	m->last_ct = ct;
	m->have_last_ct = 1;
	*ct_out = ct;
	return util;
}

/* Feeds channel i's read into its counter and keeps its gap state: a read
 * that failed or was rejected opens a gap (since the last good read), a good
 * one closes it (gap_ends: measured when the counter's step across it was
 * counted). Returns 1 when a gap ended at this tick. */
static int track_gap(wm_meter *m, size_t i, uint64_t now_ns, double t_s)
{
	const char *cause = NULL;
	int measured = 1, good = 0;
	if (m->ch_ok[i]) {
		wm_counter_result r = wm_counter_update_at(&m->ctr[i], m->raw[i], now_ns, NULL);
		if (r == WM_COUNTER_GLITCH_RANGE || r == WM_COUNTER_GLITCH_STEP) {
			cause = wm_counter_result_cause(r);
			m->rejected[i]++;
			m->ch_ok[i] = 0;
		} else {
			good = 1;
			if (r == WM_COUNTER_STALLED || r == WM_COUNTER_REBASED) {
				/* this read is good, but the energy since the last good one is unknown */
				measured = 0;
				m->rejected[i] += r == WM_COUNTER_STALLED;
				if (isnan(m->gap_since_s[i])) {
					m->gap_since_s[i] = m->last_good_s[i];
					m->gap_open_cause[i] = wm_counter_result_cause(r);
				}
			}
		}
	} else {
		m->read_errors[i]++;
		cause = m->ch[i].ch->read_error ? m->ch[i].ch->read_error : "unreadable";
	}
	if (!good) {
		m->gap_cause[i] = cause;
		if (isnan(m->gap_since_s[i])) {
			m->gap_since_s[i] = m->last_good_s[i];
			m->gap_open_cause[i] = cause;
		}
		return 0;
	}
	m->last_good_s[i] = t_s;
	if (isnan(m->gap_since_s[i]))
		return 0;
	m->gap_ends[m->n_gap_ends++] = (wm_gap_end){
		.channel = i, .from_s = m->gap_since_s[i], .to_s = t_s,
		.cause = m->gap_open_cause[i], .energy_measured = measured,
	};
	m->gap_since_s[i] = NAN;
	m->gap_open_cause[i] = NULL;
	return 1;
}

/* Reads every active source; device energy = sum of its channels' totals. */
static void read_sources(wm_meter *m, const wm_tick *tick)
{
	for (size_t d = 0; d < m->n_dev; d++) {
		m->sdev[d].gap = 0;
		for (int g = 0; g < WM_GAUGE_N; g++)
			m->sdev[d].gauge[g] = NAN;
	}
	for (size_t k = 0; k < m->n_msrc; k++) {
		struct wm_msrc *ms = &m->msrc[k];
		wm_source *s = ms->src;
		for (size_t i = 0; i < s->n_devices * WM_GAUGE_N; i++)
			ms->gauges[i] = NAN;
		s->ops->read(s, tick, m->raw + ms->ch0, m->ch_ok + ms->ch0, ms->gauges);
		for (size_t d = 0; d < s->n_devices; d++)
			if (ms->dev_map[d] >= 0)
				memcpy(m->sdev[ms->dev_map[d]].gauge, ms->gauges + d * WM_GAUGE_N,
				       sizeof m->sdev[0].gauge);
	}
	for (size_t d = 0; d < m->n_dev; d++) {
		m->energy_j[d] = 0;
		m->dev_gap[d] = 0;
	}
	double t_s = (double)(tick->now_ns - m->t0_ns) / 1e9;
	m->n_gap_ends = 0;
	for (size_t i = 0; i < m->n_ch; i++) {
		const wm_meter_channel *c = &m->ch[i];
		m->gap_cause[i] = NULL;
		if (!c->ch->readable) {
			m->ch_ok[i] = 1; /* never readable: not a gap at any tick */
			continue;
		}
		int ended = track_gap(m, i, tick->now_ns, t_s);
		/* A gap leaves the counter at its last good value: when the channel
		 * comes back, the step across the gap is counted if plausible. */
		m->ch_energy_j[i] = (double)m->ctr[i].total * c->ch->joules_per_unit;
		if (c->device >= 0) {
			m->energy_j[c->device] += m->ch_energy_j[i];
			m->sdev[c->device].gap |= !m->ch_ok[i];
			m->dev_gap[c->device] |= !m->ch_ok[i] || ended;
		}
	}
}

/* ---- one sample ------------------------------------------------------------------ */

static void hand_to_sinks(wm_meter *m, const wm_sample *s)
{
	for (size_t i = 0; i < m->n_sinks; i++) {
		const wm_sink *k = &m->sinks[i];
		if (!k->ops->sample)
			continue;
		int rc = k->ops->sample(k->ctx, m, s);
		if (rc < 0 && !m->write_errno)
			m->write_errno = -rc;
	}
}

static void update_snapshot(wm_meter *m, const wm_sample *s)
{
	pthread_mutex_lock(&m->snap_lock);
	m->snap_elapsed_s = s->t_s;
	for (size_t d = 0; d < m->n_dev; d++) {
		wm_snapshot_device *o = &m->snap_dev[d];
		o->power_w = isfinite(s->devices[d].power_w) ? s->devices[d].power_w : 0.0;
		o->power_smooth_w = s->devices[d].power_smooth_w;
		o->energy_j = s->devices[d].energy_j;
		o->attributed_j = s->devices[d].attributed_j;
	}
	if (s->proc_tier) {
		m->snap_alive = s->n_procs_alive;
		m->snap_seen = s->n_procs_seen;
	}
	m->snap_self_cpu_s = s->self_cpu_s;
	m->snap_samples = s->seq + 1;
	pthread_mutex_unlock(&m->snap_lock);
}

static void drop_proc(wm_proc *p, void *arg)
{
	wm_meter *m = arg;
	free(p->user);
	p->user = NULL;
	m->procs_folded++;
}

/* Takes one sample and hands it to the sinks. proc_tier/mem_tier force
 * those tiers. On the sampler thread only. */
static void sample(wm_meter *m, int proc_tier, int mem_tier, int baseline)
{
	uint64_t now = wm_now_mono_ns();
	if (baseline)
		m->t0_ns = m->last_ns = now;
	double dt_s = baseline ? 0.0 : (double)(now - m->last_ns) / 1e9;
	memcpy(m->before_j, m->energy_j, m->n_dev * sizeof *m->energy_j);

	/* /proc/stat is read every tick only when a source needs it (the CPU
	 * model); otherwise only for attribution, on the process tier (reading
	 * it makes the kernel sum every CPU's counters: dear on big machines). */
	wm_cpu_times ct = m->last_ct;
	double util = NAN;
	if (baseline || proc_tier || m->needs_util)
		util = read_cpu_util(m, &ct);
	if (isfinite(util))
		m->last_util = util;
	wm_tick tick = {.now_ns = now, .dt_s = dt_s, .cpu_util = util, .proc_tier = proc_tier};
	/* read_lock: window edges (windows.c) read the sources and this state too */
	pthread_mutex_lock(&m->read_lock);
	read_sources(m, &tick);
	double alpha = dt_s > 1.0 ? 1.0 : dt_s; /* ~1 s smoothing for live displays */
	for (size_t d = 0; d < m->n_dev; d++) {
		wm_sample_dev *sd = &m->sdev[d];
		sd->energy_j = m->energy_j[d];
		sd->power_w = dt_s > 0 ? (m->energy_j[d] - m->before_j[d]) / dt_s : NAN;
		/* An interval in a gap, or ending one, has no power of its own (the
		 * energy of a whole gap in one period would be a false peak). */
		if (m->dev_gap[d])
			sd->power_w = NAN;
		if (dt_s > 0 && isfinite(sd->power_w))
			m->power_smooth_w[d] = m->have_power ? m->power_smooth_w[d] + alpha * (sd->power_w -
				m->power_smooth_w[d]) : sd->power_w;
		sd->power_smooth_w = m->power_smooth_w[d];
	}
	if (dt_s > 0)
		m->have_power = 1;
	if (baseline) {
		memcpy(m->energy_at_proc_j, m->energy_j, m->n_dev * sizeof *m->energy_j);
		m->busy_at_proc = ct.busy_ticks;
	}
	m->last_ns = now;
	pthread_mutex_unlock(&m->read_lock);

	wm_sample s = {
		.seq = baseline ? 0 : ++m->ticks,
		.baseline = baseline,
		.proc_tier = proc_tier && m->tree,
		.t_s = (double)(now - m->t0_ns) / 1e9,
		.wall_s = m->wall0_s + (double)(now - m->t0_ns) / 1e9,
		.n_devices = m->n_dev,
		.devices = m->sdev,
		.n_channels = m->n_ch,
		.channel_energy_j = m->ch_energy_j,
		.channel_ok = m->ch_ok,
		.cpu_util = util,
		.procs_folded = m->procs_folded,
		.channel_gap_cause = m->gap_cause,
		.channel_gap_since_s = m->gap_since_s,
		.channel_read_errors = m->read_errors,
		.channel_rejected = m->rejected,
		.gap_ends = m->gap_ends,
		.n_gap_ends = m->n_gap_ends,
	};

	pthread_mutex_lock(&m->lock);
	if (proc_tier && !m->tree && m->have_sysstat) {
		/* Whole machine (the exporter): no process tree, but the
		 * machine's memory is still reported on the process tier. */
		uint64_t avail = 0;
		if (wm_sysstat_read_mem(&m->sysstat, &m->mem_total_bytes, &avail) == 0)
			m->mem_used_bytes = m->mem_total_bytes > avail ? m->mem_total_bytes - avail : 0;
	}
	if (s.proc_tier) {
		if (mem_tier)
			(void)wm_proctree_read_memory(m->tree);
		if (m->have_sysstat) {
			uint64_t avail = 0;
			if (wm_sysstat_read_mem(&m->sysstat, &m->mem_total_bytes, &avail) == 0)
				m->mem_used_bytes = m->mem_total_bytes > avail ? m->mem_total_bytes - avail : 0;
		}
		/* A failed scan (procfs gone) leaves the d_* fields at zero: the
		 * interval's energy stays unattributed rather than invented. */
		if (m->cg_fd >= 0) {
			uint64_t u;
			if (wm_cgroup_read_usage_usec(m->cg_fd, m->cg_v1, &u) == 0)
				m->cg_usec = u > m->cg_usec0 ? u - m->cg_usec0 : 0;
		}
		if (m->inc) {
			char ierr[256];
			(void)wm_include_poll(m->inc, m->tree, ierr, sizeof ierr);
		}
		if (m->job && wm_job_poll(m->job, m->tree) > 0)
			wm_include_propagate(m->tree);
		if (wm_proctree_scan(m->tree) < 0) {
			size_t n = wm_proctree_count(m->tree);
			for (size_t i = 0; i < n; i++) {
				wm_proc *p = wm_proctree_get(m->tree, i);
				p->d_cpu_ticks = p->d_tail_ticks = 0;
			}
		}
		if (m->inc || m->job)
			wm_include_propagate(m->tree); /* children born to included processes, ranks' */
		m->self_cpu_s = thread_cpu_s();
		wm_attribute(m, &ct, &s);
	}
	pthread_mutex_unlock(&m->lock);

	for (size_t d = 0; d < m->n_dev; d++)
		m->sdev[d].attributed_j = m->attributed_j[d];
	if (s.proc_tier)
		wm_windows_note_proc(m);
	wm_requests_note_sample(m, now, s.proc_tier, baseline);
	m->self_cpu_s = thread_cpu_s() + wm_windows_cpu_s(m) + wm_requests_cpu_s(m);
	s.self_cpu_s = m->self_cpu_s;
	s.mem_used_bytes = m->mem_used_bytes;
	s.mem_total_bytes = m->mem_total_bytes;
	s.sample_cost_s = (double)(wm_now_mono_ns() - now) / 1e9;
	s.cgroup_cpu_s = m->cg_fd >= 0 && s.proc_tier ? (double)m->cg_usec / 1e6 : NAN;
	hand_to_sinks(m, &s);
	update_snapshot(m, &s);

	if (s.proc_tier) {
		/* Their last interval is attributed and reported: fold and forget. */
		pthread_mutex_lock(&m->lock);
		(void)wm_proctree_forget_exited(m->tree, drop_proc, m);
		pthread_mutex_unlock(&m->lock);
	}
}

/* ---- the thread ------------------------------------------------------------------- */

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

	/* The baseline, on this thread: time zero, and the CPU this thread
	 * reports as its own is its own (not the caller's). */
	m->wall0_s = wm_now_wall_s();
	sample(m, 1, m->mem_every != 0, 1);
	pthread_mutex_lock(&m->lock);
	m->baseline_done = 1;
	m->baseline_errno = m->write_errno;
	pthread_cond_broadcast(&m->cond);
	if (m->baseline_errno) {
		pthread_mutex_unlock(&m->lock);
		return NULL;
	}

	uint64_t next = m->t0_ns + period_ns;
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

/* ---- lifecycle --------------------------------------------------------------------- */

static void free_meter(wm_meter *m)
{
	if (!m)
		return;
	wm_windows_free(m);
	wm_requests_free(m);
	for (size_t i = 0; i < m->n_sinks; i++)
		if (m->sinks[i].ops->free)
			m->sinks[i].ops->free(m->sinks[i].ctx);
	free(m->sinks);
	if (m->tree) {
		size_t n = wm_proctree_count(m->tree);
		for (size_t i = 0; i < n; i++)
			free(wm_proctree_get(m->tree, i)->user);
		wm_proctree_free(m->tree);
	}
	wm_include_free(m->inc);
	wm_job_free(m->job);
	if (m->cg_fd >= 0)
		close(m->cg_fd);
	free(m->cg_path);
	if (m->have_sysstat)
		wm_sysstat_close(&m->sysstat);
	for (size_t k = 0; k < m->n_msrc; k++) {
		free(m->msrc[k].dev_map);
		free(m->msrc[k].gauges);
	}
	free(m->msrc);
	wm_sources_close(&m->sources);
	free(m->dev);
	free(m->ch);
	free(m->ctr);
	free(m->raw);
	free(m->ch_ok);
	free(m->ch_energy_j);
	free(m->gap_cause);
	free(m->gap_open_cause);
	free(m->gap_since_s);
	free(m->last_good_s);
	free(m->read_errors);
	free(m->rejected);
	free(m->gap_ends);
	free(m->dev_gap);
	free(m->dev_dbl);
	free(m->sdev);
	free(m->snap_dev);
	free(m->sprocs);
	free(m->sproc_text);
	free(m->shares);
	free(m->roots);
	wm_buf_free(&m->warnings);
	wm_buf_free(&m->host_json);
	wm_root_close(&m->procroot);
	wm_root_close(&m->hostproc);
	wm_root_close(&m->sysroot);
	if (m->command) {
		for (size_t i = 0; m->command[i]; i++)
			free(m->command[i]);
		free(m->command);
	}
	free(m->cuda_visible);
	free(m->nvml_lib);
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->lock);
	pthread_mutex_destroy(&m->snap_lock);
	pthread_mutex_destroy(&m->read_lock);
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

/* WATTMETER_PROC_DISCOVERY=child-lists|scan|auto: how the process tree finds
 * descendants (see proctree.h), for benchmarks and for a kernel whose child
 * lists one does not trust. Unset or empty: auto. */
static int take_discovery_env(wm_meter *m, char *err, size_t errlen)
{
	const char *v = getenv("WATTMETER_PROC_DISCOVERY");
	if (!v || !*v || !strcmp(v, "auto"))
		return 0;
	wm_proc_discovery d;
	if (!strcmp(v, "child-lists"))
		d = WM_DISCOVERY_CHILD_LISTS;
	else if (!strcmp(v, "scan"))
		d = WM_DISCOVERY_SCAN;
	else
		return wm_err(err, errlen, -EINVAL, "WATTMETER_PROC_DISCOVERY=%.40s: not one of auto, child-lists, scan",
			      v);
	int rc = wm_proctree_set_discovery(m->tree, d);
	if (rc < 0)
		return wm_err(err, errlen, rc, "WATTMETER_PROC_DISCOVERY=child-lists: %s has no readable child lists "
			      "(task/<tid>/children); unset it to use the full scan", m->procroot.path);
	return 0;
}

/* Ends detail with "; processes found by <how>", replacing an earlier one. */
static void put_discovery(char *detail, size_t size, const wm_proctree *t)
{
	static const char tag[] = "; processes found by ";
	const char *why = "";
	(void)wm_proctree_discovery(t, &why);
	char *old = strstr(detail, tag);
	if (old)
		*old = '\0';
	if (!t)
		return;   /* no process tree (the whole machine, from /proc/stat alone) */
	size_t len = strlen(detail);
	if (len + 1 < size)
		(void)snprintf(detail + len, size - len, "%s%s", tag, why);
}

/* `sensors` and meta.json say how the measured processes are found. */
static void note_discovery(wm_meter *m)
{
	put_discovery(m->sources.procfs_detail, sizeof m->sources.procfs_detail, m->tree);
}

/* Opens the roots and /proc/stat, fills a probe context. Shared with
 * wm_sensors_describe so both probe alike. */
int wm_probe_context(wm_root *sysroot, wm_root *procroot, wm_sysstat *st, int *have_st,
		     const wm_meter_config *c, wm_source_ctx *ctx, wm_sources *srcs, char *err, size_t errlen)
{
	int rc = wm_root_open(sysroot, c->sysfs_root, err, errlen);
	if (rc < 0)
		return rc;
	rc = wm_root_open(procroot, c->procfs_root, err, errlen);
	if (rc < 0)
		return rc;
	char serr[256] = "";
	*have_st = wm_sysstat_open(st, procroot->dirfd, serr, sizeof serr) == 0;
	memset(ctx, 0, sizeof *ctx);
	ctx->sysfs_dirfd = sysroot->dirfd;
	ctx->procfs_dirfd = procroot->dirfd;
	ctx->sysfs_path = sysroot->path;
	ctx->procfs_path = procroot->path;
	ctx->cfg = c;
	ctx->n_cpus = *have_st && st->n_cpus > 0 ? st->n_cpus : 0;
	rc = wm_sources_probe(srcs, ctx, err, errlen);
	if (rc < 0)
		return rc;
	srcs->procfs_ok = *have_st;
	if (*have_st) {
		uint64_t total = 0, avail = 0;
		(void)wm_sysstat_read_mem(st, &total, &avail);
		(void)snprintf(srcs->procfs_detail, sizeof srcs->procfs_detail, "%.300s: %d CPUs, %.1f GiB memory",
			       procroot->path, ctx->n_cpus, (double)total / (1024.0 * 1024.0 * 1024.0));
		/* what a run's tree would use (the meter's own tree says again) */
		wm_proctree *t = NULL;
		if (wm_proctree_new(procroot->dirfd, &t) == 0)
			put_discovery(srcs->procfs_detail, sizeof srcs->procfs_detail, t);
		wm_proctree_free(t);
	} else {
		(void)snprintf(srcs->procfs_detail, sizeof srcs->procfs_detail, "%s", serr);
		(void)snprintf(srcs->procfs_fix, sizeof srcs->procfs_fix,
			       "point --procfs-root at a mounted procfs (in a container: mount the host's /proc)");
	}
	return 0;
}

/* The device and channel tables, from the active sources. Where two active
 * sources give the same device (the CPU model forced beside RAPL), the later
 * one counts it and the earlier one's channels are recorded only. */
static int build_tables(wm_meter *m, char *err, size_t errlen)
{
	wm_sources *all = &m->sources;
	size_t n_src = 0, n_dev = 0, n_ch = 0;
	for (size_t i = 0; i < all->n; i++) {
		if (!all->v[i].active)
			continue;
		n_src++;
		n_dev += all->v[i].n_devices;
		n_ch += all->v[i].n_channels;
	}
	m->msrc = calloc(n_src ? n_src : 1, sizeof *m->msrc);
	m->dev = calloc(n_dev ? n_dev : 1, sizeof *m->dev);
	m->ch = calloc(n_ch ? n_ch : 1, sizeof *m->ch);
	m->ctr = calloc(n_ch ? n_ch : 1, sizeof *m->ctr);
	m->raw = calloc(n_ch ? n_ch : 1, sizeof *m->raw);
	m->ch_ok = calloc(n_ch ? n_ch : 1, sizeof *m->ch_ok);
	m->ch_energy_j = calloc(n_ch ? n_ch : 1, sizeof *m->ch_energy_j);
	size_t nc1 = n_ch ? n_ch : 1;
	m->gap_cause = calloc(nc1, sizeof *m->gap_cause);
	m->gap_open_cause = calloc(nc1, sizeof *m->gap_open_cause);
	m->gap_since_s = calloc(nc1, sizeof *m->gap_since_s);
	m->last_good_s = calloc(nc1, sizeof *m->last_good_s);
	m->read_errors = calloc(nc1, sizeof *m->read_errors);
	m->rejected = calloc(nc1, sizeof *m->rejected);
	m->gap_ends = calloc(nc1, sizeof *m->gap_ends);
	m->dev_gap = calloc(n_dev ? n_dev : 1, sizeof *m->dev_gap);
	if (!m->msrc || !m->dev || !m->ch || !m->ctr || !m->raw || !m->ch_ok || !m->ch_energy_j || !m->gap_cause ||
	    !m->gap_open_cause || !m->gap_since_s || !m->last_good_s || !m->read_errors || !m->rejected ||
	    !m->gap_ends || !m->dev_gap)
		return wm_err(err, errlen, -ENOMEM, "out of memory");
	for (size_t i = 0; i < nc1; i++)
		m->gap_since_s[i] = NAN;

	for (size_t i = 0; i < all->n; i++) {
		wm_source *s = &all->v[i];
		if (!s->active)
			continue;
		struct wm_msrc *ms = &m->msrc[m->n_msrc++];
		ms->src = s;
		ms->ch0 = m->n_ch;
		ms->dev_map = calloc(s->n_devices ? s->n_devices : 1, sizeof *ms->dev_map);
		ms->gauges = calloc(s->n_devices ? s->n_devices * WM_GAUGE_N : 1, sizeof *ms->gauges);
		if (!ms->dev_map || !ms->gauges)
			return wm_err(err, errlen, -ENOMEM, "out of memory");
		if (s->ops->flags & WM_SRC_NEEDS_CPU_UTIL)
			m->needs_util = 1;
		for (size_t d = 0; d < s->n_devices; d++) {
			/* a later source with the same device replaces the earlier one */
			for (size_t e = 0; e < m->n_dev; e++) {
				if (!m->dev[e].decl || strcmp(m->dev[e].decl->name, s->devices[d].name) != 0)
					continue; /* replaced already, or another device */
				for (size_t k = 0; k + 1 < m->n_msrc; k++)
					for (size_t x = 0; x < m->msrc[k].src->n_devices; x++)
						if (m->msrc[k].dev_map[x] == (int)e)
							m->msrc[k].dev_map[x] = -1;
				for (size_t c = 0; c < m->n_ch; c++)
					if (m->ch[c].device == (int)e)
						m->ch[c].device = -1;
				m->dev[e].decl = NULL; /* compacted below */
			}
			m->dev[m->n_dev] = (wm_device){.decl = &s->devices[d], .src = s, .src_dev = d};
			ms->dev_map[d] = (int)m->n_dev++;
		}
		for (size_t c = 0; c < s->n_channels; c++) {
			const wm_channel *ch = &s->channels[c];
			size_t k = m->n_ch++;
			m->ch[k].ch = ch;
			m->ch[k].src = s;
			m->ch[k].device = ch->device >= 0 && (size_t)ch->device < s->n_devices ? ms->dev_map[ch->device]
											 : -1;
			wm_counter_init(&m->ctr[k], ch->range);
			if (ch->max_power_w > 0 && ch->joules_per_unit > 0)
				wm_counter_set_bound(&m->ctr[k], ch->max_power_w / ch->joules_per_unit,
						     ch->bound_window_s);
		}
	}
	/* Compact replaced devices away, renumbering the maps. */
	int *renum = calloc(m->n_dev ? m->n_dev : 1, sizeof *renum);
	if (!renum)
		return wm_err(err, errlen, -ENOMEM, "out of memory");
	size_t w = 0;
	for (size_t e = 0; e < m->n_dev; e++) {
		renum[e] = m->dev[e].decl ? (int)w : -1;
		if (m->dev[e].decl)
			m->dev[w++] = m->dev[e];
	}
	for (size_t k = 0; k < m->n_msrc; k++)
		for (size_t x = 0; x < m->msrc[k].src->n_devices; x++)
			if (m->msrc[k].dev_map[x] >= 0)
				m->msrc[k].dev_map[x] = renum[m->msrc[k].dev_map[x]];
	for (size_t c = 0; c < m->n_ch; c++)
		if (m->ch[c].device >= 0)
			m->ch[c].device = renum[m->ch[c].device];
	free(renum);
	m->n_dev = w;

	size_t nd = m->n_dev ? m->n_dev : 1;
	/* energy_j, before_j, power_smooth_w, attributed_j, energy_at_proc_j, d_energy */
	m->dev_dbl = calloc(nd * 6, sizeof *m->dev_dbl);
	m->sdev = calloc(nd, sizeof *m->sdev);
	m->snap_dev = calloc(nd, sizeof *m->snap_dev);
	if (!m->dev_dbl || !m->sdev || !m->snap_dev)
		return wm_err(err, errlen, -ENOMEM, "out of memory");
	m->energy_j = m->dev_dbl;
	m->before_j = m->dev_dbl + nd;
	m->power_smooth_w = m->dev_dbl + 2 * nd;
	m->attributed_j = m->dev_dbl + 3 * nd;
	m->energy_at_proc_j = m->dev_dbl + 4 * nd;
	m->d_energy_j = m->dev_dbl + 5 * nd;
	for (size_t d = 0; d < m->n_dev; d++) {
		const wm_device_decl *decl = m->dev[d].decl;
		(void)snprintf(m->snap_dev[d].name, sizeof m->snap_dev[d].name, "%s", decl->name);
		(void)snprintf(m->snap_dev[d].kind, sizeof m->snap_dev[d].kind, "%s", decl->kind);
		m->snap_dev[d].modeled = decl->modeled;
		m->sdev[d].power_w = NAN;
	}
	return 0;
}

static int setup(wm_meter *m, const wm_meter_config *c, char *err, size_t errlen)
{
	wm_source_ctx ctx;
	int rc = wm_probe_context(&m->sysroot, &m->procroot, &m->sysstat, &m->have_sysstat, c, &ctx, &m->sources,
				  err, errlen);
	if (rc < 0)
		return rc;
	/* --host-procfs: NVML's host pids, mapped back (attribution.c) */
	if (c->host_procfs_root && *c->host_procfs_root &&
	    (rc = wm_root_open(&m->hostproc, c->host_procfs_root, err, errlen)) < 0)
		return wm_err(err, errlen, rc,
			      "cannot open %s (--host-procfs): %s; give the host's /proc as mounted in the "
			      "container (docker run -v /proc:/host/proc:ro ... --host-procfs /host/proc)",
			      c->host_procfs_root, strerror(-rc));
	rc = build_tables(m, err, errlen);
	if (rc < 0)
		return rc;
	for (size_t k = 0; k < m->n_msrc; k++) {
		const wm_source *s = m->msrc[k].src;
		if (!s->ops->check_period)
			continue;
		char warn[512] = "";
		s->ops->check_period(s, m->period_s, warn, sizeof warn);
		wm_meter_warn(m, warn);
	}
	if (wm_host_json(m->procroot.dirfd, &m->host_json) < 0)
		wm_buf_reset(&m->host_json); /* "null": the rest of meta.json still matters */
	if (wm_buf_error(&m->warnings))
		return wm_err(err, errlen, -ENOMEM, "out of memory");
	return 0;
}

/* --cgroup: opens the cgroup and reads its CPU at the start (v2 cpu.stat,
 * else v1 cpuacct.usage). */
static int open_cgroup(wm_meter *m, const char *path, char *err, size_t errlen)
{
	m->cg_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m->cg_fd < 0)
		return wm_err(err, errlen, -errno, "cannot open the cgroup %s: %s (is it a cgroup folder?)", path,
			      strerror(errno));
	m->cg_path = strdup(path);
	if (!m->cg_path)
		return wm_err(err, errlen, -ENOMEM, "out of memory");
	int rc = wm_cgroup_read_usage_usec(m->cg_fd, 0, &m->cg_usec0);
	if (rc < 0) {
		m->cg_v1 = 1;
		rc = wm_cgroup_read_usage_usec(m->cg_fd, 1, &m->cg_usec0);
	}
	if (rc < 0)
		return wm_err(err, errlen, rc,
			      "cannot read the CPU time of the cgroup %s: no cpu.stat usage_usec (cgroup v2) nor "
			      "cpuacct.usage (v1): %s (give a cgroup v2 folder or one of the v1 cpuacct hierarchy)",
			      path, strerror(-rc));
	m->cg_have = 1;
	return 0;
}

void wm_meter_job_json(const wm_meter *m, wm_buf *b)
{
	wm_buf_puts(b, ",\"launcher\":");
	wm_launcher_json(b);
	wm_buf_puts(b, ",\"job\":");
	wm_job_json(m->job, b);
}

void wm_meter_cgroup_json(const wm_meter *m, wm_buf *b)
{
	if (m->cg_fd < 0) {
		wm_buf_puts(b, "null");
		return;
	}
	wm_buf_puts(b, "{\"path\":");
	wm_buf_json_str(b, m->cg_path);
	wm_buf_printf(b, ",\"version\":%d,\"cpu_source\":\"%s\"}", m->cg_v1 ? 1 : 2,
		      m->cg_v1 ? "cpuacct.usage" : "cpu.stat usage_usec");
}

static int add_root(wm_meter *m, int pid, int count_own)
{
	int rc = wm_proctree_add_root(m->tree, pid, count_own);
	if (rc < 0 || !count_own)
		return rc;
	if (m->job) {
		/* a job's rank: the node meter labels its own processes; the
		 * others register theirs with it */
		if (wm_job_is_node_meter(m->job) && m->own_rank >= 0) {
			size_t n = wm_proctree_count(m->tree);
			for (size_t i = 0; i < n; i++) {
				wm_proc *p = wm_proctree_get(m->tree, i);
				if (p->pid == pid && p->alive) {
					p->has_rank = 1;
					p->rank = m->own_rank;
				}
			}
		}
		(void)wm_job_register(m->job, pid);
	}
	for (size_t i = 0; i < m->n_roots; i++)
		if (m->roots[i] == pid)
			return 0;
	if (m->n_roots == m->cap_roots) {
		size_t cap = m->cap_roots ? 2 * m->cap_roots : 8;
		int *p = realloc(m->roots, cap * sizeof *p);
		if (!p)
			return -ENOMEM;
		m->roots = p;
		m->cap_roots = cap;
	}
	m->roots[m->n_roots++] = pid;
	return 0;
}

int wm_meter_start_sinks(const wm_meter_config *cin, const wm_sink *sinks, size_t n_sinks, wm_meter **out,
			 char *err, size_t errlen)
{
	*out = NULL;
	wm_meter_config cv;
	int rc = wm_meter_take_config(cin, &cv, err, errlen);
	if (rc == 0)
		rc = wm_meter_config_check(&cv, err, errlen);
	wm_meter *m = rc == 0 ? calloc(1, sizeof *m) : NULL;
	if (!m) {
		for (size_t i = 0; i < n_sinks; i++)
			if (sinks[i].ops->free)
				sinks[i].ops->free(sinks[i].ctx);
		return rc < 0 ? rc : wm_err(err, errlen, -ENOMEM, "out of memory");
	}
	const wm_meter_config *c = &cv;
	m->owner_pid = getpid();
	m->sysroot.dirfd = m->procroot.dirfd = m->hostproc.dirfd = -1;
	m->cg_fd = -1;
	wm_buf_init(&m->warnings);
	wm_buf_init(&m->host_json);
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->snap_lock, NULL);
	pthread_mutex_init(&m->read_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->cond, &ca);
	pthread_condattr_destroy(&ca);

	/* The meter owns the sinks from here on, also on failure, in the
	 * caller's order (the recording first: wm_meter_start_recorded). */
	m->sinks = calloc(n_sinks + 1, sizeof *m->sinks);
	if (!m->sinks) {
		for (size_t i = 0; i < n_sinks; i++)
			if (sinks[i].ops->free)
				sinks[i].ops->free(sinks[i].ctx);
		rc = wm_err(err, errlen, -ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < n_sinks; i++)
		m->sinks[m->n_sinks++] = sinks[i];

	m->period_s = c->period_s;
	m->proc_every = (unsigned)fmax(1.0, round(c->proc_period_s / c->period_s));
	m->proc_period_s = m->proc_every * c->period_s;
	m->mem_every = c->mem_period_s > 0 ? (unsigned)fmax(1.0, round(c->mem_period_s / c->period_s)) : 0;
	/* memory reads happen on process ticks */
	if (m->mem_every)
		m->mem_every = ((m->mem_every + m->proc_every - 1) / m->proc_every) * m->proc_every;
	m->mem_period_s = m->mem_every * c->period_s;
	m->measure_self = c->measure_self;
	m->gpu_exclusive = c->gpu_exclusive;
	m->clk_tck = sysconf(_SC_CLK_TCK);
	if (m->clk_tck <= 0)
		m->clk_tck = 100;
	rc = copy_command(m, c->command);
	if (rc < 0) {
		wm_err(err, errlen, rc, "out of memory");
		goto fail;
	}
	rc = setup(m, c, err, errlen);
	if (rc < 0)
		goto fail;

	m->own_rank = wm_launcher_rank();
	if (!c->whole_machine) {
		char jerr[512] = "";
		if (wm_job_join(&m->job, jerr, sizeof jerr) < 0)
			wm_meter_warn(m, jerr); /* measured alone, as without a job */
		rc = wm_proctree_new(m->procroot.dirfd, &m->tree);
		if (rc < 0) {
			wm_err(err, errlen, rc, "cannot set up the process table: %s", strerror(-rc));
			goto fail;
		}
		rc = take_discovery_env(m, err, errlen);
		if (rc < 0)
			goto fail;
		for (size_t i = 0; i < c->n_pids; i++) {
			rc = add_root(m, c->pids[i], 1);
			if (rc < 0) {
				wm_err(err, errlen, rc, "cannot measure pid %d: %s (is it running? is the procfs root right?)",
				       c->pids[i], strerror(-rc));
				goto fail;
			}
		}
		if (c->measure_self && (rc = add_root(m, getpid(), 1)) < 0) {
			wm_err(err, errlen, rc, "cannot measure this process through %s: %s", m->procroot.path,
			       strerror(-rc));
			goto fail;
		}
		if (c->reaper_pid > 0)
			(void)wm_proctree_add_reaper(m->tree, c->reaper_pid);
		if (c->cgroup && *c->cgroup && (rc = open_cgroup(m, c->cgroup, err, errlen)) < 0)
			goto fail;
		rc = wm_include_new(c, m->procroot.dirfd, &m->inc, err, errlen);
		if (rc == 0 && m->inc && (rc = wm_include_poll(m->inc, m->tree, err, errlen)) > 0)
			rc = 0;
		if (rc < 0)
			goto fail;
	}
	note_discovery(m);

	m->wall0_s = wm_now_wall_s();
	for (size_t i = 0; i < m->n_sinks; i++) {
		if (!m->sinks[i].ops->begin)
			continue;
		rc = m->sinks[i].ops->begin(m->sinks[i].ctx, m, err, errlen);
		if (rc < 0)
			goto fail;
	}
	rc = wm_windows_start(m, c->output_dir, err, errlen);
	if (rc == 0)
		rc = wm_requests_start(m, c->output_dir, err, errlen);
	if (rc < 0)
		goto fail;

	/* The thread blocks every signal: they belong to the application (the
	 * CLI forwards SIGINT/SIGTERM to the wrapped command). It takes the
	 * baseline sample first; wait for it, so that a recording that cannot
	 * be written fails here, before the caller runs anything. */
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
	pthread_mutex_lock(&m->lock);
	while (!m->baseline_done)
		pthread_cond_wait(&m->cond, &m->lock);
	int berr = m->baseline_errno;
	pthread_mutex_unlock(&m->lock);
	if (berr) {
		(void)pthread_join(m->thread, NULL);
		m->thread_started = 0;
		rc = wm_err(err, errlen, -berr, "cannot write the first sample of %s: %s", c->output_dir ? c->output_dir : "the meter",
			    strerror(berr));
		goto fail;
	}
	*out = m;
	return 0;
fail:
	free_meter(m);
	return rc;
}

int wm_meter_add_pid(wm_meter *m, int pid)
{
	if (!wm_meter_is_owner(m))
		return -ECHILD;
	pthread_mutex_lock(&m->lock);
	int rc = m->stopped || !m->tree ? -EINVAL : add_root(m, pid, 1);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

wm_snapshot *wm_meter_snapshot(wm_meter *m)
{
	if (!wm_meter_is_owner(m)) {
		errno = ECHILD;
		return NULL;
	}
	wm_snapshot *s = calloc(1, sizeof *s);
	wm_snapshot_device *d = calloc(m->n_dev ? m->n_dev : 1, sizeof *d);
	if (!s || !d) {
		free(s);
		free(d);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_lock(&m->snap_lock);
	memcpy(d, m->snap_dev, m->n_dev * sizeof *d);
	s->devices = d;
	s->n_devices = m->n_dev;
	s->elapsed_s = m->snap_elapsed_s;
	s->n_procs_alive = m->snap_alive;
	s->n_procs_seen = m->snap_seen;
	s->self_cpu_s = m->snap_self_cpu_s;
	s->samples = m->snap_samples;
	pthread_mutex_unlock(&m->snap_lock);
	return s;
}

void wm_snapshot_free(wm_snapshot *s)
{
	if (!s)
		return;
	free(s->devices);
	free(s);
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
	if (!wm_meter_is_owner(m))
		return wm_err(err, errlen, -ECHILD, "this meter belongs to process %d", m ? (int)m->owner_pid : 0);
	if (m->stopped)
		return 0;
	wm_windows_stop(m); /* its last edges are read before the last sample */
	int rc = stop_thread(m);
	wm_requests_stop(m); /* after the last sample: its interval is the last */
	m->stopped = 1;
	wm_stop_info st = {
		.exit_status = exit_status,
		.end_wall_s = wm_now_wall_s(),
		.duration_s = (double)(m->last_ns - m->t0_ns) / 1e9,
		.self_cpu_s = m->self_cpu_s,
		.samples = m->ticks + 1,
		.write_errno = m->write_errno,
	};
	char serr[512] = "";
	int src = 0;
	for (size_t i = 0; i < m->n_sinks; i++) {
		if (!m->sinks[i].ops->end)
			continue;
		int r = m->sinks[i].ops->end(m->sinks[i].ctx, m, &st, src ? NULL : serr, sizeof serr);
		if (r < 0 && !src)
			src = r;
	}
	if (src < 0)
		return wm_err(err, errlen, src, "%s", serr);
	if (rc < 0)
		return wm_err(err, errlen, rc, "cannot stop the sampler thread: %s", strerror(-rc));
	return 0;
}

void wm_meter_free(wm_meter *m)
{
	if (!m)
		return;
	if (!wm_meter_is_owner(m))
		return; /* a forked child: leave the parent's meter alone */
	if (!m->stopped)
		(void)wm_meter_stop(m, -1, NULL, 0);
	free_meter(m);
}
