/* attribution.c — splits each device's energy of a process interval among
 * the measured processes, by the device's rule (data, see source.h):
 *
 *   WM_ATTR_CPU_TICKS     ΔE × (process CPU ticks / machine busy ticks):
 *                         the ratio model of Scaphandre and Kepler;
 *   WM_ATTR_MEMORY        ΔE × (process PSS, else RSS / used memory);
 *   WM_ATTR_SOURCE_SHARE  ΔE × the source's share for that pid (NVML's
 *                         per-process SM utilisation); an interval with no
 *                         measured process on the device stays unattributed;
 *   WM_ATTR_NONE          nothing (psys: the platform as a whole).
 *
 * Whatever is not given to a measured process is the device's unattributed
 * energy, so attributed + unattributed = total by construction. The
 * denominators are never smaller than the sum of the numerators: never more
 * than the whole is given away.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "meter/meter_priv.h"
#include "procs/cgroup.h"

/* Who inherits a reaper's tail: a measured child of r that vanished this
 * interval (mode 0), else a measured root that r parents, the command,
 * alive or just gone (mode 1): an orphan reaped before any scan saw it
 * was the command's. */
static int tail_heir(const wm_proc *c, const wm_proc *r, int mode)
{
	if (!c->count_own || c->ppid != r->pid)
		return 0;
	return mode == 0 ? c->vanished : c->is_root && (c->alive || c->vanished);
}

/* A root that does not count its own CPU (the CLI, parent of the command)
 * only reaps: the tail it shows is the last moments of the measured children
 * it reaped this interval. Hand that tail to them, so the command, not
 * wattmeter, carries its own energy, and wattmeter never shows up among the
 * measured processes (its own cost is reported apart, as self_cpu_s). */
static void give_reaper_tail(wm_proctree *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		wm_proc *r = wm_proctree_get(t, i);
		if (!r->is_root || r->count_own || !r->d_tail_ticks)
			continue;
		size_t heirs = 0;
		int mode;
		for (mode = 0; mode < 2; mode++) {
			for (size_t j = 0; j < n; j++)
				heirs += (size_t)tail_heir(wm_proctree_get(t, j), r, mode);
			if (heirs)
				break;
		}
		if (!heirs)
			continue;
		uint64_t share = r->d_tail_ticks / heirs, rest = r->d_tail_ticks % heirs;
		for (size_t j = 0; j < n; j++) {
			wm_proc *c = wm_proctree_get(t, j);
			if (tail_heir(c, r, mode)) {
				c->d_tail_ticks += share + rest;
				c->total_cpu_ticks += share + rest;
				rest = 0;
			}
		}
		r->total_cpu_ticks -= r->total_cpu_ticks >= r->d_tail_ticks ? r->d_tail_ticks : r->total_cpu_ticks;
		r->d_tail_ticks = 0;
	}
}

static struct wm_mproc *mproc_of(wm_meter *m, wm_proc *p)
{
	if (!p->user) {
		struct wm_mproc *mp = calloc(1, sizeof *mp + 2 * (m->n_dev ? m->n_dev : 1) * sizeof(double));
		if (!mp)
			return NULL; /* this interval's share stays unattributed */
		mp->energy_j = mp->storage;
		mp->dev_mem_bytes = mp->storage + m->n_dev;
		for (size_t d = 0; d < m->n_dev; d++)
			mp->dev_mem_bytes[d] = NAN;
		p->user = mp;
	}
	return p->user;
}

static int grow_scratch(wm_meter *m, size_t n)
{
	if (n <= m->cap_sprocs)
		return 0;
	size_t cap = m->cap_sprocs ? m->cap_sprocs : 16;
	while (cap < n)
		cap *= 2;
	wm_sample_proc *p = realloc(m->sprocs, cap * sizeof *p);
	if (!p)
		return -ENOMEM;
	m->sprocs = p;
	struct wm_sproc_text *t = realloc(m->sproc_text, cap * sizeof *t);
	if (!t)
		return -ENOMEM;
	m->sproc_text = t;
	m->cap_sprocs = cap;
	return 0;
}

static int pid_visible(const wm_meter *m, int pid)
{
	char name[24];
	(void)snprintf(name, sizeof name, "%d", pid);
	return faccessat(m->procroot.dirfd, name, F_OK, 0) == 0;
}

/* The measured, live process pid among the tree's first n, or NULL. */
static wm_proc *measured_proc(const wm_meter *m, size_t n, int pid)
{
	for (size_t j = 0; j < n; j++) {
		wm_proc *p = wm_proctree_get(m->tree, j);
		if (p->alive && p->count_own && p->pid == pid)
			return p;
	}
	return NULL;
}

/* Energy of device d split by its source's per-process shares. */
static void attribute_shares(wm_meter *m, size_t d, double de, size_t n)
{
	const wm_device *dev = &m->dev[d];
	if (!dev->src->ops->proc_shares)
		return;
	if (m->cap_shares == 0) {
		m->shares = calloc(1024, sizeof *m->shares);
		if (!m->shares)
			return;
		m->cap_shares = 1024;
	}
	int k = dev->src->ops->proc_shares((wm_source *)dev->src, dev->src_dev, m->shares, m->cap_shares);
	if (k < 0)
		return; /* no data: the interval stays unattributed */
	int invisible = 0, first_invisible = 0, other_ns = 0, first_other = 0, why_invisible = 0;
	for (int i = 0; i < k; i++) {
		const wm_pid_share *sh = &m->shares[i];
		int pid = sh->pid;
		wm_proc *p = measured_proc(m, n, pid);
		if (!p && !pid_visible(m, pid)) {
			/* Inside a container NVML names host pids: map them through
			 * the host's procfs where we were given one (--host-procfs). */
			int local = m->hostproc.dirfd >= 0 ? wm_host_pid_local(m->hostproc.dirfd, pid) : -ENOENT;
			if (local == 0) {
				if (!other_ns++)
					first_other = pid;
				continue;
			}
			if (local < 0) {
				if (!invisible++) {
					first_invisible = pid;
					why_invisible = -local;
				}
				continue;
			}
			pid = local;
			p = measured_proc(m, n, pid);
		}
		if (p) {
			struct wm_mproc *mp = mproc_of(m, p);
			if (!mp)
				continue;
			double share = sh->share > 0 ? (sh->share < 1 ? sh->share : 1) : 0;
			mp->dev_mem_bytes[d] = (double)sh->mem_bytes;
			if (!m->gpu_exclusive) {
				mp->energy_j[d] += de * share;
				m->attributed_j[d] += de * share;
			}
			continue;
		}
		/* Another process on this GPU, visible here: on the host, a
		 * container's. Say whose share stays unattributed. */
		char ctr[64], w[256];
		if (wm_read_pid_container(m->procroot.dirfd, pid, ctr, sizeof ctr) == 1) {
			(void)snprintf(w, sizeof w, "%s is also used by container %s: its share stays unattributed",
				       dev->decl->name, ctr);
			wm_meter_warn(m, w);
		}
	}
	if (other_ns) {
		char w[512];
		(void)snprintf(w, sizeof w,
			       "%s is also used by processes of another pid namespace (host pid %d%s, seen through "
			       "%.200s): another container's; their share stays unattributed",
			       dev->decl->name, first_other, other_ns > 1 ? " and others" : "", m->hostproc.path);
		wm_meter_warn(m, w);
	}
	if (invisible && m->hostproc.dirfd >= 0) {
		char w[768];
		(void)snprintf(w, sizeof w,
			       "%s reports processes (pid %d%s) that neither %.200s nor the host's procfs %.200s "
			       "maps to this pid namespace (%s): their share is left unattributed. Use "
			       "--gpu-exclusive to bill the run's GPUs whole to the measured command",
			       dev->decl->name, first_invisible, invisible > 1 ? " and others" : "", m->procroot.path,
			       m->hostproc.path, strerror(why_invisible));
		wm_meter_warn(m, w);
	} else if (invisible) {
		char w[768];
		(void)snprintf(w, sizeof w,
			       "%s reports processes (pid %d%s) that %.200s does not show: the GPU is used from "
			       "another pid namespace (a container, or this meter runs inside one, where NVML "
			       "names host pids and the kernel offers no way back); their share is left "
			       "unattributed. Use --gpu-exclusive to bill the run's GPUs whole to the measured "
			       "command, or, inside a container given the host's /proc (-v /proc:/host/proc:ro), "
			       "--host-procfs /host/proc to map them",
			       dev->decl->name, first_invisible, invisible > 1 ? " and others" : "", m->procroot.path);
		wm_meter_warn(m, w);
	}
	if (m->gpu_exclusive && dev->decl->used_by_run != 0) {
		/* --gpu-exclusive: the run's GPUs are the run's, whole. Give the
		 * interval to the first measured root (labelled in meta.json),
		 * also the last one, in which it exited (vanished). */
		for (size_t j = 0; j < n; j++) {
			wm_proc *p = wm_proctree_get(m->tree, j);
			if (!p->is_root || !p->count_own || (!p->alive && !p->vanished))
				continue;
			struct wm_mproc *mp = mproc_of(m, p);
			if (mp) {
				mp->energy_j[d] += de;
				m->attributed_j[d] += de;
			}
			break;
		}
	}
}

void wm_attribute(wm_meter *m, const wm_cpu_times *ct, wm_sample *s)
{
	for (size_t d = 0; d < m->n_dev; d++) {
		double de = m->energy_j[d] - m->energy_at_proc_j[d];
		m->d_energy_j[d] = de > 0 ? de : 0;
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

	wm_proctree *t = m->tree;
	size_t n = wm_proctree_count(t);
	uint64_t sum_ticks = 0;
	double sum_mem = 0;
	pid_t me = getpid();
	give_reaper_tail(t, n);
	for (size_t i = 0; i < n; i++) {
		wm_proc *p = wm_proctree_get(t, i);
		if (!p->alive && !p->vanished)
			continue;
		if (m->measure_self && p->pid == me && p->is_root)
			p->d_cpu_ticks = p->d_cpu_ticks > self_d_ticks ? p->d_cpu_ticks - self_d_ticks : 0;
		sum_ticks += (p->count_own ? p->d_cpu_ticks : 0) + p->d_tail_ticks;
		if (p->alive && p->count_own)
			sum_mem += (double)(p->have_pss ? p->pss_bytes : p->rss_bytes);
	}
	/* --cgroup: the cgroup's own CPU time is exact, exited processes
	 * included. What it holds beyond what the processes' stat gave the set
	 * so far (processes that came and went between scans unseen) goes to
	 * the first measured root, as a reaped child's tail does; cumulative,
	 * so read-time jitter between the two never counts anything twice. */
	if (m->cg_fd >= 0 && m->cg_have) {
		m->cg_set_ticks += sum_ticks;
		uint64_t cg_ticks = (uint64_t)((double)m->cg_usec * (double)m->clk_tck / 1e6);
		if (cg_ticks > m->cg_set_ticks) {
			uint64_t extra = cg_ticks - m->cg_set_ticks;
			for (size_t i = 0; i < n; i++) {
				wm_proc *p = wm_proctree_get(t, i);
				if (!p->is_root || !p->count_own || (!p->alive && !p->vanished))
					continue;
				p->d_tail_ticks += extra;
				sum_ticks += extra;
				m->cg_set_ticks += extra;
				break;
			}
		}
	}
	/* Process and machine ticks are read at slightly different instants:
	 * never attribute more than the whole. */
	double cpu_den = (double)(sum_ticks > d_busy ? sum_ticks : d_busy);
	double mem_den = (double)m->mem_used_bytes;
	if (sum_mem > mem_den)
		mem_den = sum_mem;

	for (size_t d = 0; d < m->n_dev; d++) {
		wm_attr_rule rule = m->dev[d].decl->rule;
		double de = m->d_energy_j[d];
		if (rule == WM_ATTR_SOURCE_SHARE) {
			attribute_shares(m, d, de, n);
			continue;
		}
		if (rule == WM_ATTR_NONE)
			continue;
		for (size_t i = 0; i < n; i++) {
			wm_proc *p = wm_proctree_get(t, i);
			if (!p->alive && !p->vanished)
				continue;
			double w = 0, den = 0;
			if (rule == WM_ATTR_CPU_TICKS) {
				w = (double)((p->count_own ? p->d_cpu_ticks : 0) + p->d_tail_ticks);
				den = cpu_den;
			} else if (rule == WM_ATTR_MEMORY) {
				/* Only the measured processes' memory: the CLI's own
				 * (a root that only reaps) is wattmeter's cost. */
				w = p->alive && p->count_own ? (double)(p->have_pss ? p->pss_bytes : p->rss_bytes) : 0;
				den = mem_den;
			}
			if (!(den > 0) || !(w > 0))
				continue;
			struct wm_mproc *mp = mproc_of(m, p);
			if (!mp)
				continue;
			double e = de * w / den;
			mp->energy_j[d] += e;
			m->attributed_j[d] += e;
		}
	}

	/* The per-process rows of this sample. */
	s->n_procs = 0;
	s->n_procs_alive = 0;
	s->n_procs_seen = (size_t)m->procs_folded;
	for (size_t i = 0; i < n; i++)
		s->n_procs_seen += wm_proctree_get(t, i)->count_own;
	if (grow_scratch(m, n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		wm_proc *p = wm_proctree_get(t, i);
		s->n_procs_alive += p->alive && p->count_own;
		if (!p->alive && !p->vanished)
			continue;
		struct wm_mproc *mp = p->user;
		if (!p->count_own && !p->d_tail_ticks && !mp)
			continue; /* the CLI itself, when it reaped nothing */
		if (!mp && !(mp = mproc_of(m, p)))
			continue;
		uint64_t ticks = (p->count_own ? p->d_cpu_ticks : 0) + p->d_tail_ticks;
		size_t k = s->n_procs++;
		struct wm_sproc_text *tx = &m->sproc_text[k];
		wm_sample_proc *o = &m->sprocs[k];
		memcpy(tx->comm, p->comm, sizeof tx->comm);
		*o = (wm_sample_proc){
			.pid = p->pid, .ppid = p->ppid, .starttime_ticks = p->starttime_ticks,
			.comm = tx->comm, .alive = p->alive,
			.cpu_s = (double)ticks / (double)m->clk_tck,
			.cpu_share = d_busy ? (double)ticks / (double)d_busy : 0.0,
			.rss_bytes = p->rss_bytes, .pss_bytes = p->pss_bytes, .uss_bytes = p->uss_bytes,
			.have_pss = p->have_pss, .included = p->included,
			.rank = p->has_rank ? p->rank : -1, .nspid = -1,
			.energy_j = mp->energy_j, .dev_mem_bytes = mp->dev_mem_bytes,
		};
		double mem = (double)(p->have_pss ? p->pss_bytes : p->rss_bytes);
		o->mem_pct = m->mem_total_bytes ? 100.0 * mem / (double)m->mem_total_bytes : 0.0;
		/* Announce processes seen for the first time, and again after an
		 * exec (its comm changes): a forked child first looks like its
		 * parent, and the CLI's own child may be seen before its exec. */
		if (p->alive && p->count_own && strcmp(mp->announced_comm, p->comm) != 0) {
			if (mp->announced_comm[0] || !p->cmdline[0]) {
				char cmd[sizeof p->cmdline];
				if (wm_read_pid_cmdline(m->procroot.dirfd, p->pid, cmd, sizeof cmd) >= 0 && cmd[0])
					memcpy(p->cmdline, cmd, sizeof cmd);
			}
			memcpy(mp->announced_comm, p->comm, sizeof mp->announced_comm);
			memcpy(tx->cmdline, p->cmdline[0] ? p->cmdline : p->comm, sizeof tx->cmdline);
			tx->cmdline[sizeof tx->cmdline - 1] = '\0';
			o->cmdline = tx->cmdline;
			/* who it is on the host: a container's, a pod's, its pid in there */
			if (wm_read_pid_container(m->procroot.dirfd, p->pid, tx->container, sizeof tx->container) == 1)
				o->container = tx->container;
			int nspid = -1;
			if (wm_read_pid_pod_nspid(m->procroot.dirfd, p->pid, tx->pod, sizeof tx->pod, &nspid) == 0 &&
			    tx->pod[0])
				o->pod = tx->pod;
			o->nspid = nspid;
		}
	}
	s->procs = m->sprocs;
}
