/* proctree.c — see proctree.h.
 *
 * One scan:
 *   1. collect: list the numeric entries of the procfs root and read every
 *      <pid>/stat once (openat + pread + close, stack buffer). Every pid is
 *      needed because a new descendant is only recognisable by its ppid.
 *   2. index:   an open-addressing hash pid -> scan entry.
 *   3. link:    every table entry finds its scan entry by (pid, starttime);
 *      a pid now held by a process with another starttime is someone else.
 *   4. grow:    child lists from the ppids, then a walk from every linked
 *      (tracked, alive) entry marks its untracked descendants. The walk does
 *      not depend on listing order, so a child listed before its parent (pid
 *      wrap) is found in the same scan.
 *   5. apply:   reserve table room for the new entries first (the only step
 *      that can fail with ENOMEM, before anything changes), then vanished
 *      entries, then the deltas, then the new entries.
 * All scratch arrays live in the tree object and only grow, so a steady-state
 * scan allocates nothing. The directory stream is opened once and rewound.
 *
 * wm_proctree_add_root runs steps 1-5 in "baseline" mode: the root and its
 * descendants that exist at that moment are entered with their current
 * counters as the baseline, so CPU spent before measuring is never counted,
 * while anything discovered by a later scan was born after the start and
 * counts from zero.
 *
 * Not thread-safe: one tree belongs to one thread (the sampler's).
 */
#include "procs/proctree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* What one scan saw of one pid. */
struct scan_ent {
	wm_pid_stat st;
	int proc_idx;     /* table index, -1 if not in the table (yet) */
	int tracked;      /* part of the measured set in this scan */
	int first_child;  /* scan index of a child, -1 if none */
	int next_sibling; /* next child of the same parent, -1 at the end */
};

/* Private per-entry state, parallel to procs[]. */
struct proc_priv {
	int fresh;        /* created since the last scan: is_new in the next one */
	int seen;         /* linked in the current scan */
	uint64_t sub;     /* last-seen totals of children that vanished this scan */
};

struct wm_proctree {
	int dirfd;         /* procfs root, not owned */
	DIR *dir;          /* the root listed, owned; rewound at each scan */
	uint64_t page_bytes;
	uint64_t n_scans;

	wm_proc *procs;
	struct proc_priv *priv;
	int *vlist;        /* table indices that vanished in the current scan */
	size_t n, cap;

	struct scan_ent *ents;
	size_t n_ents, cap_ents;
	int *hash;         /* -1 empty, else scan index; size hash_cap (power of 2) */
	size_t hash_cap;
	int *stack;        /* walk worklist, cap_ents ints */
};

enum apply_mode {
	MODE_SCAN,      /* a measuring scan: deltas, vanished, new from zero */
	MODE_BASELINE,  /* add_root: enter new descendants at their current counters */
};

/* ---- lifetime ------------------------------------------------------------------- */

int wm_proctree_new(int procfs_dirfd, wm_proctree **out)
{
	*out = NULL;
	wm_proctree *t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	t->dirfd = procfs_dirfd;
	long pg = sysconf(_SC_PAGESIZE);
	t->page_bytes = pg > 0 ? (uint64_t)pg : 4096;

	int fd;
	do
		fd = openat(procfs_dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		int rc = -errno;
		free(t);
		return rc;
	}
	t->dir = fdopendir(fd);
	if (!t->dir) {
		int rc = -errno;
		close(fd);
		free(t);
		return rc;
	}
	*out = t;
	return 0;
}

void wm_proctree_free(wm_proctree *t)
{
	if (!t)
		return;
	free(t->stack);
	free(t->hash);
	free(t->ents);
	free(t->vlist);
	free(t->priv);
	free(t->procs);
	if (t->dir)
		closedir(t->dir);   /* closes the fd */
	free(t);
}

size_t wm_proctree_count(const wm_proctree *t)
{
	return t ? t->n : 0;
}

wm_proc *wm_proctree_get(wm_proctree *t, size_t i)
{
	return t && i < t->n ? &t->procs[i] : NULL;
}

/* ---- growth ---------------------------------------------------------------------- */

/* Room for `extra` more table entries. Both arrays grow; a failure leaves the
 * table as it was (the larger of the two simply stays larger). */
static int reserve_procs(wm_proctree *t, size_t extra)
{
	if (extra > (size_t)INT_MAX - t->n)
		return -ENOMEM;   /* indices are kept in ints */
	size_t need = t->n + extra;
	if (need <= t->cap)
		return 0;
	size_t cap = t->cap ? t->cap : 64;
	while (cap < need)
		cap *= 2;
	wm_proc *p = realloc(t->procs, cap * sizeof *p);
	if (!p)
		return -ENOMEM;
	t->procs = p;
	struct proc_priv *q = realloc(t->priv, cap * sizeof *q);
	if (!q)
		return -ENOMEM;
	t->priv = q;
	int *v = realloc(t->vlist, cap * sizeof *v);
	if (!v)
		return -ENOMEM;
	t->vlist = v;
	t->cap = cap;
	return 0;
}

static int reserve_ents(wm_proctree *t)
{
	if (t->n_ents < t->cap_ents)
		return 0;
	if (t->cap_ents >= (size_t)INT_MAX / 2)
		return -ENOMEM;
	size_t cap = t->cap_ents ? t->cap_ents * 2 : 256;
	struct scan_ent *e = realloc(t->ents, cap * sizeof *e);
	if (!e)
		return -ENOMEM;
	t->ents = e;
	int *s = realloc(t->stack, cap * sizeof *s);
	if (!s)
		return -ENOMEM;   /* ents grew, stack did not: cap_ents unchanged, retried */
	t->stack = s;
	t->cap_ents = cap;
	return 0;
}

/* ---- steps 1-2: collect and index -------------------------------------------------- */

/* A directory name that is a pid: digits only, 1..INT_MAX. 0 otherwise. */
static int name_to_pid(const char *s)
{
	if (*s < '1' || *s > '9')
		return 0;
	long v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return 0;
		v = v * 10 + (*s - '0');
		if (v > INT_MAX)
			return 0;
	}
	return (int)v;
}

static int collect(wm_proctree *t)
{
	t->n_ents = 0;
	rewinddir(t->dir);
	for (;;) {
		errno = 0;
		struct dirent *d = readdir(t->dir);
		if (!d) {
			if (errno)
				return -errno;
			break;
		}
		if (d->d_type != DT_DIR && d->d_type != DT_UNKNOWN)
			continue;
		int pid = name_to_pid(d->d_name);
		if (!pid)
			continue;
		int rc = reserve_ents(t);
		if (rc)
			return rc;
		struct scan_ent *e = &t->ents[t->n_ents];
		/* Gone (ENOENT/ESRCH), unreadable or malformed: not part of
		 * this scan. A malformed line of an unrelated process must not
		 * fail the scan; one of ours is treated as not seen. */
		if (wm_read_pid_stat(t->dirfd, pid, &e->st) != 0 || e->st.pid != pid)
			continue;
		e->proc_idx = -1;
		e->tracked = 0;
		e->first_child = -1;
		e->next_sibling = -1;
		t->n_ents++;
	}
	return 0;
}

static size_t hash_pid(int pid, size_t mask)
{
	return ((size_t)(unsigned)pid * 2654435761u) & mask;
}

static int build_index(wm_proctree *t)
{
	size_t need = 64;
	while (need < 2 * t->n_ents)
		need *= 2;
	if (need > t->hash_cap) {
		int *h = realloc(t->hash, need * sizeof *h);
		if (!h)
			return -ENOMEM;
		t->hash = h;
		t->hash_cap = need;
	}
	size_t mask = t->hash_cap - 1;
	memset(t->hash, 0xff, t->hash_cap * sizeof *t->hash);   /* all -1 */
	for (size_t i = 0; i < t->n_ents; i++) {
		size_t h = hash_pid(t->ents[i].st.pid, mask);
		while (t->hash[h] >= 0) {
			if (t->ents[t->hash[h]].st.pid == t->ents[i].st.pid)
				break;   /* listed twice: keep the first */
			h = (h + 1) & mask;
		}
		if (t->hash[h] < 0)
			t->hash[h] = (int)i;
	}
	return 0;
}

static int lookup(const wm_proctree *t, int pid)
{
	if (pid <= 0 || t->n_ents == 0)
		return -1;
	size_t mask = t->hash_cap - 1;
	for (size_t h = hash_pid(pid, mask);; h = (h + 1) & mask) {
		int i = t->hash[h];
		if (i < 0)
			return -1;
		if (t->ents[i].st.pid == pid)
			return i;
	}
}

/* ---- steps 3-4: link and grow the set ------------------------------------------------ */

/* from: walk from every tracked entry (-1), or only from table entry `from`
 * (add_root: baselining the new root's descendants must not swallow a child
 * that another root's process started since the last scan: that child counts
 * from zero at the next scan). */
static void link_and_grow(wm_proctree *t, int from)
{
	for (size_t k = 0; k < t->n; k++) {
		t->priv[k].seen = 0;
		int i = lookup(t, t->procs[k].pid);
		if (i >= 0 && t->ents[i].st.starttime_ticks == t->procs[k].starttime_ticks &&
		    t->ents[i].proc_idx < 0) {
			t->ents[i].proc_idx = (int)k;
			t->ents[i].tracked = 1;
			t->priv[k].seen = 1;
		}
	}

	/* Child lists, then a depth-first walk from every tracked entry. */
	size_t top = 0;
	for (size_t i = 0; i < t->n_ents; i++) {
		struct scan_ent *e = &t->ents[i];
		int p = lookup(t, e->st.ppid);
		if (p >= 0 && (size_t)p != i) {
			e->next_sibling = t->ents[p].first_child;
			t->ents[p].first_child = (int)i;
		}
		if (e->tracked && (from < 0 || e->proc_idx == from))
			t->stack[top++] = (int)i;
	}
	while (top > 0) {
		int x = t->stack[--top];
		for (int c = t->ents[x].first_child; c >= 0; c = t->ents[c].next_sibling) {
			if (!t->ents[c].tracked) {
				t->ents[c].tracked = 1;   /* each entry is pushed once */
				t->stack[top++] = c;
			}
		}
	}
}

/* ---- step 5: apply --------------------------------------------------------------------- */

static uint64_t sat_sub(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

static void enter_new(wm_proctree *t, struct scan_ent *e, enum apply_mode mode)
{
	size_t k = t->n++;
	wm_proc *p = &t->procs[k];
	memset(p, 0, sizeof *p);
	p->pid = e->st.pid;
	p->ppid = e->st.ppid;
	p->starttime_ticks = e->st.starttime_ticks;
	memcpy(p->comm, e->st.comm, sizeof p->comm);
	/* Once, at first sight: a kernel thread or a zombie gives "", and a
	 * process gone since its stat was read keeps "" too. */
	if (wm_read_pid_cmdline(t->dirfd, p->pid, p->cmdline, sizeof p->cmdline) != 0)
		p->cmdline[0] = '\0';
	p->count_own = 1;
	p->alive = 1;
	p->cpu_ticks = e->st.utime_ticks + e->st.stime_ticks;
	p->child_ticks = e->st.cutime_ticks + e->st.cstime_ticks;
	p->rss_bytes = e->st.rss_pages * t->page_bytes;
	p->peak_rss_bytes = p->rss_bytes;
	if (mode == MODE_SCAN) {
		/* Born after the start (anything older was entered by add_root):
		 * all of its CPU, and that of the children it already reaped, is
		 * ours. */
		p->is_new = 1;
		p->d_cpu_ticks = p->cpu_ticks;
		p->d_tail_ticks = p->child_ticks;
		p->total_cpu_ticks = p->d_cpu_ticks + p->d_tail_ticks;
		t->priv[k].fresh = 0;
	} else {
		t->priv[k].fresh = 1;   /* is_new at the next scan */
	}
	t->priv[k].seen = 1;
	t->priv[k].sub = 0;
	e->proc_idx = (int)k;
}

static int reserve_new(wm_proctree *t)
{
	size_t n_new = 0;
	for (size_t i = 0; i < t->n_ents; i++)
		if (t->ents[i].tracked && t->ents[i].proc_idx < 0)
			n_new++;
	return reserve_procs(t, n_new);
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* What the kernel folds into the reaper's cutime+cstime when table entry v
 * is reaped, that we have already counted: v's own CPU and its reaped
 * children as last seen. It is owed by the nearest alive tracked ancestor:
 * if v's parent vanished in the same interval, the parent's cutime (holding
 * v) was folded into the grandparent's, so the debt passes up the chain.
 * Without this a wrapper and its worker exiting together would count the
 * worker's whole CPU twice. */
static void owe_to_reaper(wm_proctree *t, size_t n_vanished, size_t v)
{
	uint64_t owed = sat_add(t->procs[v].cpu_ticks, t->procs[v].child_ticks);
	size_t cur = v;
	/* The chain cannot be longer than the vanished list; the bound also
	 * stops a ppid cycle, which a fixture tree (not the kernel) can draw. */
	for (size_t depth = 0; depth <= n_vanished; depth++) {
		int ppid = t->procs[cur].ppid;
		int i = lookup(t, ppid);
		if (i >= 0 && t->ents[i].proc_idx >= 0) {
			struct proc_priv *pp = &t->priv[t->ents[i].proc_idx];
			pp->sub = sat_add(pp->sub, owed);
			return;
		}
		size_t next = cur;
		for (size_t j = 0; j < n_vanished; j++) {
			size_t w = (size_t)t->vlist[j];
			if (w != cur && t->procs[w].pid == ppid) {
				next = w;
				break;
			}
		}
		if (next == cur)
			return;   /* reaped by a process we do not track: not ours */
		cur = next;
	}
}

static void apply_scan(wm_proctree *t)
{
	size_t n_old = t->n;
	size_t n_vanished = 0;

	for (size_t k = 0; k < n_old; k++) {
		wm_proc *p = &t->procs[k];
		t->priv[k].sub = 0;
		p->vanished = 0;
		p->is_new = 0;
		if (t->priv[k].seen)
			continue;
		p->d_cpu_ticks = 0;
		p->d_tail_ticks = 0;
		if (!p->alive)
			continue;
		/* Gone: keep what was last seen of it. */
		p->alive = 0;
		p->vanished = 1;
		t->vlist[n_vanished++] = (int)k;
	}
	for (size_t j = 0; j < n_vanished; j++)
		owe_to_reaper(t, n_vanished, (size_t)t->vlist[j]);

	for (size_t i = 0; i < t->n_ents; i++) {
		struct scan_ent *e = &t->ents[i];
		if (!e->tracked || e->proc_idx < 0)
			continue;
		size_t k = (size_t)e->proc_idx;
		wm_proc *p = &t->procs[k];
		uint64_t cpu = e->st.utime_ticks + e->st.stime_ticks;
		uint64_t child = e->st.cutime_ticks + e->st.cstime_ticks;
		p->d_cpu_ticks = p->count_own ? sat_sub(cpu, p->cpu_ticks) : 0;
		p->d_tail_ticks = sat_sub(sat_sub(child, p->child_ticks), t->priv[k].sub);
		p->total_cpu_ticks += p->d_cpu_ticks + p->d_tail_ticks;
		p->cpu_ticks = cpu;
		p->child_ticks = child;
		p->ppid = e->st.ppid;
		/* comm follows exec; cmdline is kept from first sight. */
		memcpy(p->comm, e->st.comm, sizeof p->comm);
		p->rss_bytes = e->st.rss_pages * t->page_bytes;
		if (p->rss_bytes > p->peak_rss_bytes)
			p->peak_rss_bytes = p->rss_bytes;
		p->alive = 1;
		p->is_new = t->priv[k].fresh;
		t->priv[k].fresh = 0;
	}

	for (size_t i = 0; i < t->n_ents; i++)
		if (t->ents[i].tracked && t->ents[i].proc_idx < 0)
			enter_new(t, &t->ents[i], MODE_SCAN);
}

/* Steps 1-4 and the reservation: nothing in the table changes on failure. */
static int prepare(wm_proctree *t, int from)
{
	int rc = collect(t);
	if (!rc)
		rc = build_index(t);
	if (rc)
		return rc;
	link_and_grow(t, from);
	return reserve_new(t);
}

int wm_proctree_scan(wm_proctree *t)
{
	if (!t)
		return -EINVAL;
	int rc = prepare(t, -1);
	if (rc)
		return rc;
	apply_scan(t);
	t->n_scans++;
	return 0;
}

int wm_proctree_add_root(wm_proctree *t, int pid, int count_own)
{
	if (!t || pid <= 0)
		return -EINVAL;
	wm_pid_stat st;
	int rc = wm_read_pid_stat(t->dirfd, pid, &st);
	if (rc == -ENOENT || rc == -ESRCH)
		return -ESRCH;
	if (rc)
		return rc;

	for (size_t k = 0; k < t->n; k++) {
		wm_proc *p = &t->procs[k];
		if (p->pid == pid && p->starttime_ticks == st.starttime_ticks) {
			/* Already measured as a descendant: it becomes a root. */
			p->is_root = 1;
			p->count_own = count_own ? 1 : 0;
			return 0;
		}
	}

	rc = reserve_procs(t, 1);
	if (rc)
		return rc;
	struct scan_ent root = { .st = st, .proc_idx = -1, .tracked = 1,
				 .first_child = -1, .next_sibling = -1 };
	size_t k = t->n;
	enter_new(t, &root, MODE_BASELINE);
	t->procs[k].is_root = 1;
	t->procs[k].count_own = count_own ? 1 : 0;

	/* Its descendants that exist now are baselined too. */
	rc = prepare(t, (int)k);
	if (rc) {
		t->n = k;   /* as if never added */
		return rc;
	}
	for (size_t i = 0; i < t->n_ents; i++)
		if (t->ents[i].tracked && t->ents[i].proc_idx < 0)
			enter_new(t, &t->ents[i], MODE_BASELINE);
	return 0;
}

int wm_proctree_read_memory(wm_proctree *t)
{
	if (!t)
		return -EINVAL;
	for (size_t k = 0; k < t->n; k++) {
		wm_proc *p = &t->procs[k];
		if (!p->alive)
			continue;
		uint64_t rss, pss, uss;
		/* Gone (ENOENT/ESRCH), another user's process (EACCES/EPERM: ptrace
		 * access is needed), a zombie (empty file, EINVAL): keep what we
		 * had. The pid could have been reused since the last scan; the
		 * next scan notices, and this one read is then someone else's. */
		if (wm_read_pid_smaps_rollup(t->dirfd, p->pid, &rss, &pss, &uss) == 0) {
			p->pss_bytes = pss;
			p->uss_bytes = uss;
			p->have_pss = 1;
		}
	}
	return 0;
}
