/* proctree.c — see proctree.h.
 *
 * Two ways to find descendants: the kernel's child lists (use_children; see
 * "discovery through the kernel's child lists" below: steps 2a, then the
 * lists walked breadth first, then 3-6) or the full scan described here.
 *
 * One full scan:
 *   0. mode:    <root>/loadavg (kept fd; only where the root is procfs of our
 *      own pid namespace) ends with the last pid allocated. Unchanged since
 *      the last scan: no process was created, so steps 1 and 2b are skipped
 *      (COLLECT_TRACKED). Changed, on procfs: only the pids allocated since,
 *      (last, now] cyclically, are listed, by seeking the root to the
 *      position procfs gives the first of them (COLLECT_RANGE; the rule
 *      position = pid + offset is learned and checked on every complete
 *      listing). Otherwise, and on fixture trees, steps 1-2 as below
 *      (COLLECT_NEW), and COLLECT_FULL every WM_PROCTREE_FULL_SCAN_EVERY-th
 *      scan whatever the mode would be.
 *   1. list:    the numeric entries of the procfs root (getdents through a
 *      DIR stream opened once and rewound), sorted, into cur[].
 *   2. collect: read <pid>/stat of
 *      a. every alive table entry, through the file descriptor kept open
 *         since it joined the set: one pread, no openat/close. A process
 *         that exited fails the pread with ESRCH even if its pid was reused
 *         meanwhile (the fd pins the old struct pid); its pid is then read
 *         again by path, as any new pid. Up to max_kept fds are kept; the
 *         entries beyond that are read with openat + pread + close;
 *      b. every listed pid not in known[], the pids that the last complete
 *         listing classified as outside the set, with the d_ino of their
 *         directory: procfs makes a new inode for a new process, so a
 *         known pid reused since then shows another d_ino and is read.
 *         A known untracked process never needs reading again: it can
 *         only join the set through its ppid, and a ppid changes only to
 *         init or a subreaper, never into our tree. A new pid is read to
 *         see whether its parent is ours.
 *      Every WM_PROCTREE_FULL_SCAN_EVERY-th scan (and the first after
 *      wm_proctree_new or an add_root) skips nothing in b: the safety net
 *      for a known pid that died and was reused by a child of ours between
 *      two scans where d_ino did not tell (fixture trees, or a kernel that
 *      would keep the inode). Such a child's CPU is billed meanwhile as
 *      its parent's tail when it is reaped; the full scan catches the
 *      long-lived ones.
 *   3. index:   an open-addressing hash pid -> scan entry.
 *   4. link:    table entries read in 2a are linked already; the others
 *      (vanished ones included) find their scan entry by (pid, starttime);
 *      a pid now held by a process with another starttime is someone else.
 *   5. grow:    child lists from the ppids, then a walk from every linked
 *      (tracked, alive) entry marks its untracked descendants. The walk does
 *      not depend on listing order, so a child listed before its parent (pid
 *      wrap) is found in the same scan.
 *   6. apply:   reserve table room for the new entries first (the only step
 *      that can fail with ENOMEM, before anything changes), then vanished
 *      entries (their kept fds closed), then the deltas, then the new entries.
 *   7. commit:  known[] becomes the pids of cur[] that are outside the set
 *      (skipped as known, or read and not tracked). A pid whose read found
 *      the process gone (ENOENT, ESRCH) is left out and read again if it is
 *      listed again; one whose stat exists but cannot be parsed is known.
 * Steady state: a pread of loadavg and one per tracked process, plus, when
 * processes were created, a getdents over the new pids and a read of each
 * (instead of openat + pread + close for every pid in the system).
 *
 * All scratch arrays live in the tree object and only grow, so a steady-state
 * scan allocates nothing.
 *
 * wm_proctree_add_root runs steps 1-6 in "baseline" mode: the root and its
 * descendants that exist at that moment are entered with their current
 * counters as the baseline, so CPU spent before measuring is never counted,
 * while anything discovered by a later scan was born after the start and
 * counts from zero. It reads every pid and commits nothing to known[], and
 * the next scan is a full one.
 *
 * Fixture trees: a kept fd on a regular file sees in-place rewrites (as
 * fx_write does, O_TRUNC), so a fixture behaves like procfs as long as a
 * process directory that is removed (the process exited) is not re-created
 * with the same pid before the next scan: a pid missing from the listing is
 * gone whatever its kept fd still reads.
 *
 * Not thread-safe: one tree belongs to one thread (the sampler's).
 */
#include "procs/proctree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "base/util.h"

/* What one scan saw of one pid. */
struct scan_ent {
	wm_pid_stat st;
	int proc_idx;     /* table index, -1 if not in the table (yet) */
	int tracked;      /* part of the measured set in this scan */
	int first_child;  /* scan index of a child, -1 if none */
	int next_sibling; /* next child of the same parent, -1 at the end */
};

/* A thread's children file kept open: its tid and the d_ino of its task
 * directory entry (a tid reused by a later thread shows another inode). */
struct tfd {
	int tid;
	int fd;
	uint64_t ino;
};

/* Private per-entry state, parallel to procs[]. */
struct proc_priv {
	int fresh;        /* created since the last scan: is_new in the next one */
	int seen;         /* linked in the current scan */
	int fd;           /* <pid>/stat kept open while alive, -1 if none */
	int cfd;          /* <pid>/task/<pid>/children kept open (child-list discovery), -1 if none */
	int dfd;          /* <pid> directory kept open (memory tier: smaps_rollup), -1 if none */
	int taskfd;       /* <pid>/task kept open (threads' child lists), -1 if none */
	struct tfd *tf;   /* the other threads' children files kept open, by tid; owned */
	size_t n_tf, cap_tf;
	uint64_t sub;     /* last-seen totals of children that vanished this scan */
	int mem_read;     /* smaps_rollup read since it entered the table */
	uint64_t mem_rss_bytes, mem_faults;   /* its stat's figures at that read */
};

/* One listed pid: its /proc/<pid> inode number, and (in cur[]) what the
 * current scan did with it. */
struct lpid {
	int pid;
	int state;        /* a CUR_* value, or the index of its scan entry (>= 0) */
	uint64_t ino;     /* d_ino from the listing */
};

enum {
	CUR_UNSEEN = -1,  /* not handled yet */
	CUR_KNOWN = -2,   /* in known[]: outside the set, not read */
	CUR_GONE = -3,    /* read failed: gone (or racing); read again if listed again */
	CUR_BAD = -4,     /* exists, stat unusable (not parseable, another pid): outside */
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
	size_t hash_size;  /* slots in use this scan, power of 2, <= hash_cap */

	struct lpid *cur;  /* pids listed by this scan, sorted, unique */
	size_t n_cur, cap_cur;
	struct lpid *known;/* pids the last scan left outside the set, sorted */
	size_t n_known, cap_known;
	int known_valid;   /* 0: the next scan reads every pid */
	unsigned scans_since_full;

	/* <root>/loadavg, kept open where the root is procfs of our own pid
	 * namespace (-1 otherwise): its last field is the last pid allocated. */
	int loadavg_fd;
	int have_last_pid;
	uint64_t last_pid;          /* as of the last committed scan */
	uint64_t pending_last_pid;  /* read by the scan in progress */
	/* procfs positions: the root lists tgid P at directory position
	 * P + pid_pos_off (TGID_OFFSET in fs/proc/base.c). Learned and checked
	 * on every complete listing; range_ok only while every pid matched. */
	int is_procfs;
	int range_ok;
	long pid_pos_off;

	size_t n_kept, max_kept;   /* kept stat (and children) fds, and their bound */
	/* Memory tier (wm_proctree_read_memory's reuse rule): joins and
	 * departures of the set so far, and how many the last read saw. */
	uint64_t n_set_changes, mem_set_changes;
	unsigned mem_reused_in_row;
	uint64_t n_mem_read, n_mem_reused;
	uint64_t n_stat_reads, n_stat_opens;

	/* Discovery (see "discovery through the kernel's child lists" below). */
	wm_proc_discovery asked;   /* what the caller asked for */
	int use_children;          /* the scans follow child lists, not the listing */
	int reread_children;       /* read the child lists at the next scan whatever loadavg says */
	int has_init_root;         /* pid 1 is a root: the whole machine is measured */
	char why[160];             /* why the scans discover as they do, in words */
	char *cbuf;                /* a children file's text, grown as needed */
	size_t cbuf_cap;
	struct tfd *ntf;           /* scratch: a process's threads as listed now */
	size_t cap_ntf;
	uint64_t n_child_reads;
};

enum collect_mode {
	COLLECT_TRACKED,  /* no listing: only the tracked entries (no pid was allocated) */
	COLLECT_RANGE,    /* list only the pids allocated since the last scan; read them */
	COLLECT_NEW,      /* list; read tracked entries and pids not known */
	COLLECT_FULL,     /* list; read every pid */
};

enum apply_mode {
	MODE_SCAN,      /* a measuring scan: deltas, vanished, new from zero */
	MODE_BASELINE,  /* add_root: enter new descendants at their current counters */
};

#define WM_PROC_SUPER_MAGIC 0x9fa0   /* linux/magic.h PROC_SUPER_MAGIC */

static void choose_discovery(wm_proctree *t, int whole_machine);
static int reserve_new(wm_proctree *t);

/* ---- the last allocated pid ---------------------------------------------------------- */

/* The last field of loadavg ("0.00 0.01 0.05 1/123 4567\n"): the last pid
 * allocated in the READER's pid namespace. Unchanged between two scans, it
 * says that no process or thread was created in between, so no new pid and
 * no reused one can be listed and the listing can be skipped. */
static int read_last_pid(int fd, uint64_t *out)
{
	char buf[256];
	ssize_t n = wm_pread_all(fd, buf, sizeof buf);
	if (n < 0)
		return (int)n;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	const char *sp = strrchr(buf, ' ');
	if (!sp || !strchr(buf, '/'))
		return -EINVAL;
	return wm_parse_u64_full(sp + 1, out);
}

/* A kept fd on <root>/loadavg, or -1. Only where the root shows our own pid
 * namespace: loadavg speaks of the reader's namespace, and a root of an
 * ancestor namespace (a container given the host's /proc) lists processes
 * whose creation it never shows. <root>/self/status has one pid per level
 * from the root's namespace down to ours in NSpid: exactly one means they
 * are the same. (A root of a descendant namespace has no "self" for us.)
 * A fixture tree takes the shortcut only if it provides both files, and
 * must then update loadavg as the kernel does. */
static int open_loadavg(int dirfd)
{
	char buf[8192];
	ssize_t n = wm_read_file_at(dirfd, "self/status", buf, sizeof buf);
	if (n < 0 && n != -EOVERFLOW)
		return -1;
	const char *ns = strstr(buf, "\nNSpid:");
	if (!ns)
		return -1;
	int fields = 0;
	for (const char *p = ns + 7; *p && *p != '\n'; p++)
		if ((*p == '\t' || *p == ' ') && p[1] >= '0' && p[1] <= '9')
			fields++;
	if (fields != 1)
		return -1;
	int fd;
	do
		fd = openat(dirfd, "loadavg", O_RDONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -1;
	uint64_t last;
	if (read_last_pid(fd, &last) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

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
	/* Kept fds: at most half of what this process may open, so the rest
	 * of the program (and a wrapped command's pipes) never runs short. */
	t->max_kept = WM_PROCTREE_MAX_KEPT_FDS;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur / 2 < (rlim_t)t->max_kept)
		t->max_kept = (size_t)(rl.rlim_cur / 2);

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
	t->loadavg_fd = open_loadavg(procfs_dirfd);
	struct statfs sfs;
	t->is_procfs = fstatfs(procfs_dirfd, &sfs) == 0 && sfs.f_type == WM_PROC_SUPER_MAGIC &&
		       t->loadavg_fd >= 0;
	t->scans_since_full = 0;
	t->asked = WM_DISCOVERY_AUTO;
	choose_discovery(t, 0);
	*out = t;
	return 0;
}

void wm_proctree_free(wm_proctree *t)
{
	if (!t)
		return;
	for (size_t k = 0; k < t->n; k++) {
		if (t->priv[k].fd >= 0)
			close(t->priv[k].fd);
		if (t->priv[k].cfd >= 0)
			close(t->priv[k].cfd);
		if (t->priv[k].dfd >= 0)
			close(t->priv[k].dfd);
		if (t->priv[k].taskfd >= 0)
			close(t->priv[k].taskfd);
		for (size_t i = 0; i < t->priv[k].n_tf; i++)
			close(t->priv[k].tf[i].fd);
		free(t->priv[k].tf);
	}
	free(t->ntf);
	free(t->cbuf);
	free(t->known);
	free(t->cur);
	free(t->stack);
	free(t->hash);
	free(t->ents);
	free(t->vlist);
	free(t->priv);
	free(t->procs);
	if (t->loadavg_fd >= 0)
		close(t->loadavg_fd);
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

void wm_proctree_stats(const wm_proctree *t, uint64_t *stat_reads, uint64_t *stat_opens)
{
	if (stat_reads)
		*stat_reads = t ? t->n_stat_reads : 0;
	if (stat_opens)
		*stat_opens = t ? t->n_stat_opens : 0;
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

/* Room for n listed pids in cur[]. */
static int reserve_cur(wm_proctree *t, size_t n)
{
	if (n <= t->cap_cur)
		return 0;
	if (n > (size_t)INT_MAX)
		return -ENOMEM;
	size_t cap = t->cap_cur > 256 ? t->cap_cur : 256;
	while (cap < n)
		cap *= 2;
	struct lpid *c = realloc(t->cur, cap * sizeof *c);
	if (!c)
		return -ENOMEM;
	t->cur = c;
	t->cap_cur = cap;
	return 0;
}

/* ---- steps 1-3: list, collect and index --------------------------------------------- */

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

static int cmp_lpid(const void *a, const void *b)
{
	int x = ((const struct lpid *)a)->pid, y = ((const struct lpid *)b)->pid;
	return (x > y) - (x < y);
}

/* Step 1. procfs lists pids in ascending order; a fixture tree (or a
 * future kernel) may not, so the order is checked and sorted if needed. */
static int list_pids(wm_proctree *t)
{
	t->n_cur = 0;
	int sorted = 1;
	int pos_ok = t->is_procfs;
	long off = 0;
	rewinddir(t->dir);
	for (;;) {
		/* telldir (no syscall): the position of the entry readdir
		 * returns next, to learn where procfs puts each pid. */
		long pos = pos_ok ? telldir(t->dir) : 0;
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
		if (pos_ok) {
			if (t->n_cur == 0)
				off = pos - pid;
			if (pos < 0 || off <= 0 || pos - pid != off)
				pos_ok = 0;
		}
		int rc = reserve_cur(t, t->n_cur + 1);
		if (rc)
			return rc;
		if (t->n_cur > 0 && pid <= t->cur[t->n_cur - 1].pid)
			sorted = 0;
		t->cur[t->n_cur++] = (struct lpid){ .pid = pid, .state = CUR_UNSEEN,
						    .ino = (uint64_t)d->d_ino };
	}
	if (!sorted) {
		qsort(t->cur, t->n_cur, sizeof *t->cur, cmp_lpid);
		size_t w = 0;
		for (size_t i = 0; i < t->n_cur; i++)
			if (w == 0 || t->cur[i].pid != t->cur[w - 1].pid)
				t->cur[w++] = t->cur[i];   /* listed twice: once */
		t->n_cur = w;
	}
	t->range_ok = pos_ok && sorted && t->n_cur > 0;
	t->pid_pos_off = off;
	return 0;
}

/* cur[] sorted by pid, each pid once. */
static void sort_cur(wm_proctree *t)
{
	int sorted = 1;
	for (size_t i = 1; i < t->n_cur && sorted; i++)
		sorted = t->cur[i - 1].pid < t->cur[i].pid;
	if (sorted)
		return;
	qsort(t->cur, t->n_cur, sizeof *t->cur, cmp_lpid);
	size_t w = 0;
	for (size_t i = 0; i < t->n_cur; i++)
		if (w == 0 || t->cur[i].pid != t->cur[w - 1].pid)
			t->cur[w++] = t->cur[i];
	t->n_cur = w;
}

/* Appends the listed pids in [lo, hi] to cur[], seeking straight to lo:
 * procfs's next_tgid() resumes at the first tgid >= position - offset. */
static int list_range(wm_proctree *t, long lo, long hi)
{
	seekdir(t->dir, lo + t->pid_pos_off);
	for (;;) {
		errno = 0;
		struct dirent *d = readdir(t->dir);
		if (!d)
			return errno ? -errno : 0;
		int pid = name_to_pid(d->d_name);
		if (!pid || pid < lo)
			continue;
		if (pid > hi)
			return 0;
		int rc = reserve_cur(t, t->n_cur + 1);
		if (rc)
			return rc;
		t->cur[t->n_cur++] = (struct lpid){ .pid = pid, .state = CUR_UNSEEN,
						    .ino = (uint64_t)d->d_ino };
	}
}

/* The pids allocated after prev up to last, cyclically (allocation wraps
 * from pid_max back to a low pid): (prev, last], or (prev, max] + [1, last]. */
static int list_new_pids(wm_proctree *t, uint64_t prev, uint64_t last)
{
	t->n_cur = 0;
	if (prev >= (uint64_t)INT_MAX || last > (uint64_t)INT_MAX)
		return -EINVAL;
	if (last > prev)
		return list_range(t, (long)prev + 1, (long)last);
	int rc = list_range(t, (long)prev + 1, INT_MAX);
	if (!rc && last >= 1)
		rc = list_range(t, 1, (long)last);
	return rc;
}

/* Index of pid in cur[], -1 if not listed. */
static long find_cur(const wm_proctree *t, int pid)
{
	size_t lo = 0, hi = t->n_cur;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->cur[mid].pid < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < t->n_cur && t->cur[lo].pid == pid ? (long)lo : -1;
}

/* openat(<pid>/stat). The path is built by hand: this runs for every new pid. */
static int open_stat(wm_proctree *t, int pid)
{
	char path[24];   /* 10 digits, "/stat", NUL */
	char digits[12];
	size_t nd = 0;
	for (unsigned v = (unsigned)pid; v; v /= 10)
		digits[nd++] = (char)('0' + v % 10);
	size_t n = 0;
	while (nd)
		path[n++] = digits[--nd];
	memcpy(path + n, "/stat", sizeof "/stat");
	t->n_stat_opens++;
	int fd;
	do
		fd = openat(t->dirfd, path, O_RDONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : fd;
}

/* One pread from offset 0, parsed. A read that leaves room in the buffer is
 * the whole file (a procfs seq_file hands over the whole record when it
 * fits; a regular file is read to its end); one that fills it is -EOVERFLOW,
 * never parsed. A stat line is under 1 KiB. -ESRCH: the process is gone. */
static int read_stat_fd(wm_proctree *t, int fd, wm_pid_stat *st)
{
	char buf[4096];
	t->n_stat_reads++;
	ssize_t n = wm_pread_all(fd, buf, sizeof buf);
	if (n < 0)
		return (int)n;
	return wm_parse_pid_stat(buf, st);
}

/* openat + pread + close. -ENOENT/-ESRCH: gone. On success with keep_fd
 * non-NULL the fd stays open and is handed over in *keep_fd. */
static int read_stat_path(wm_proctree *t, int pid, wm_pid_stat *st, int *keep_fd)
{
	int fd = open_stat(t, pid);
	if (fd < 0)
		return fd;
	int rc = read_stat_fd(t, fd, st);
	if (!rc && st->pid != pid)
		rc = -EINVAL;   /* a file that claims another pid (fixture trees only) */
	if (!rc && keep_fd) {
		*keep_fd = fd;
		return 0;
	}
	close(fd);
	return rc;
}

static int gone(int rc)
{
	return rc == -ENOENT || rc == -ESRCH;
}

static void drop_fd(wm_proctree *t, size_t k)
{
	if (t->priv[k].fd >= 0) {
		close(t->priv[k].fd);
		t->priv[k].fd = -1;
		t->n_kept--;
	}
	if (t->priv[k].cfd >= 0) {
		close(t->priv[k].cfd);
		t->priv[k].cfd = -1;
		t->n_kept--;
	}
	if (t->priv[k].dfd >= 0) {
		close(t->priv[k].dfd);
		t->priv[k].dfd = -1;
		t->n_kept--;
	}
	if (t->priv[k].taskfd >= 0) {
		close(t->priv[k].taskfd);
		t->priv[k].taskfd = -1;
		t->n_kept--;
	}
	for (size_t i = 0; i < t->priv[k].n_tf; i++) {
		close(t->priv[k].tf[i].fd);
		t->n_kept--;
	}
	t->priv[k].n_tf = 0;   /* the array stays, for reuse; freed with the entry */
}

/* Room for one more kept fd of the second rank (children, directory): they
 * take at most half the budget, the stat fds read at every scan come first. */
static int spare_fd(const wm_proctree *t)
{
	return t->n_kept < t->max_kept / 2;
}

static void init_ent(struct scan_ent *e)
{
	e->proc_idx = -1;
	e->tracked = 0;
	e->first_child = -1;
	e->next_sibling = -1;
}

/* Step 2a for alive table entry k. listed: cur[] holds this scan's complete
 * listing; marked: cur[] holds listed pids (complete or a range), marked as
 * read here. */
static int collect_tracked(wm_proctree *t, size_t k, int listed, int marked)
{
	wm_proc *p = &t->procs[k];
	struct proc_priv *q = &t->priv[k];
	long j = marked ? find_cur(t, p->pid) : -1;
	if (listed && j < 0) {
		drop_fd(t, k);   /* not listed: gone, whatever the fd still reads */
		return 0;
	}
	if (j >= 0 && t->cur[j].state != CUR_UNSEEN)
		return 0;        /* read already for another entry with this pid */
	int rc = reserve_ents(t);
	if (rc)
		return rc;
	struct scan_ent *e = &t->ents[t->n_ents];

	rc = q->fd >= 0 ? read_stat_fd(t, q->fd, &e->st) : -EBADF;
	if (!rc && e->st.pid != p->pid)
		rc = -EINVAL;
	if (rc) {
		/* Gone (ESRCH), or never kept: the pid, if still listed, holds
		 * the same process (its fd is kept now, budget allowing) or a
		 * new one, read here once as any new pid would be. */
		drop_fd(t, k);
		int fd = -1;
		rc = read_stat_path(t, p->pid, &e->st, &fd);
		if (rc) {
			/* Tracked, then unreadable: not seen in this scan, and
			 * read again next time if still listed. */
			if (j >= 0)
				t->cur[j].state = CUR_GONE;
			return 0;
		}
		if (e->st.starttime_ticks == p->starttime_ticks && t->n_kept < t->max_kept) {
			q->fd = fd;
			t->n_kept++;
		} else {
			close(fd);
		}
	} else if (e->st.starttime_ticks != p->starttime_ticks) {
		/* The kept file shows another process: only a fixture tree
		 * rewritten in place does this. Read as a new pid. */
		drop_fd(t, k);
	}
	init_ent(e);
	if (e->st.starttime_ticks == p->starttime_ticks) {
		e->proc_idx = (int)k;
		e->tracked = 1;
		q->seen = 1;
	} else if (j < 0) {
		return 0;   /* another process, unlisted: no pid was allocated, so fixtures only */
	}
	if (j >= 0)
		t->cur[j].state = (int)t->n_ents;
	t->n_ents++;
	return 0;
}

/* Steps 1-2. */
static int collect(wm_proctree *t, enum collect_mode mode)
{
	t->n_ents = 0;
	t->n_cur = 0;
	/* listed: cur[] is the complete listing (tracked pids missing from
	 * it are gone). The partial modes run on procfs only, where a kept
	 * fd tells an exited process by ESRCH. */
	int listed = mode == COLLECT_NEW || mode == COLLECT_FULL;
	int rc = 0;
	if (listed)
		rc = list_pids(t);
	else if (mode == COLLECT_RANGE)
		rc = list_new_pids(t, t->last_pid, t->pending_last_pid);
	if (rc)
		return rc;
	/* A range holds the pids allocated since the last scan and, once the
	 * allocation wrapped, those it skipped because they were in use: a
	 * tracked pid among them is read once, in 2a (find_cur marks it), not
	 * again in 2b as a new pid (a second entry of the same process, which
	 * the walk from its tracked parent would enter as new). The wrapped
	 * range is listed in two ascending runs: sorted for find_cur. */
	if (mode == COLLECT_RANGE)
		sort_cur(t);
	int marked = listed || mode == COLLECT_RANGE;
	for (size_t k = 0; k < t->n; k++)
		t->priv[k].seen = 0;

	for (size_t k = 0; k < t->n; k++) {
		if (!t->procs[k].alive)
			continue;
		rc = collect_tracked(t, k, listed, marked);
		if (rc)
			return rc;
	}
	int full = mode != COLLECT_NEW;   /* RANGE: every listed pid is new */

	/* Step 2b: cur[] and known[] are both sorted: one merge pass. */
	size_t m = 0;
	for (size_t j = 0; j < t->n_cur; j++) {
		if (t->cur[j].state != CUR_UNSEEN)
			continue;
		int pid = t->cur[j].pid;
		if (!full) {
			while (m < t->n_known && t->known[m].pid < pid)
				m++;
			/* Known, and the same process: procfs gives each process's
			 * directory a fresh inode number, so a pid that died and was
			 * reused since the last scan shows another d_ino (as does,
			 * harmlessly, a dentry evicted and made again). */
			if (m < t->n_known && t->known[m].pid == pid &&
			    t->known[m].ino == t->cur[j].ino) {
				t->cur[j].state = CUR_KNOWN;
				continue;
			}
		}
		rc = reserve_ents(t);
		if (rc)
			return rc;
		struct scan_ent *e = &t->ents[t->n_ents];
		/* Gone (ENOENT/ESRCH): read again if listed again. Unreadable
		 * or malformed: not part of this scan, and (as an unrelated
		 * process it must not fail the scan) known from now on. */
		rc = read_stat_path(t, pid, &e->st, NULL);
		if (rc) {
			t->cur[j].state = gone(rc) ? CUR_GONE : CUR_BAD;
			continue;
		}
		init_ent(e);
		t->cur[j].state = (int)t->n_ents++;
	}
	return 0;
}

/* Step 7, after a scan applied: known[] <- the listed pids outside the set.
 * cur[] is compacted in place and becomes known[]; the old known[] array
 * is reused as the next cur[]. */
static void commit_known(wm_proctree *t)
{
	size_t w = 0;
	for (size_t j = 0; j < t->n_cur; j++) {
		int c = t->cur[j].state;
		if (c == CUR_KNOWN || c == CUR_BAD || (c >= 0 && !t->ents[c].tracked))
			t->cur[w++] = t->cur[j];
	}
	struct lpid *old = t->known;
	size_t old_cap = t->cap_known;
	t->known = t->cur;
	t->cap_known = t->cap_cur;
	t->n_known = w;
	t->cur = old;
	t->cap_cur = old_cap;
	t->n_cur = 0;
	t->known_valid = 1;
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
	/* Only as many slots as this scan needs: a steady-state scan holds
	 * a few entries, a full one every pid. */
	t->hash_size = need;
	size_t mask = need - 1;
	memset(t->hash, 0xff, need * sizeof *t->hash);   /* all -1 */
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
	size_t mask = t->hash_size - 1;
	for (size_t h = hash_pid(pid, mask);; h = (h + 1) & mask) {
		int i = t->hash[h];
		if (i < 0)
			return -1;
		if (t->ents[i].st.pid == pid)
			return i;
	}
}

/* ---- steps 4-5: link and grow the set ------------------------------------------------ */

/* Scan entry c, a new child of tracked entry x, is a reaper's fork that has
 * not exec'd yet: x was added by wm_proctree_add_reaper (the CLI) and c still
 * bears its name. It is not measured yet: the CLI adds it as a root once the
 * exec is confirmed (wm_proctree_add_root reads it then), so its first entry
 * carries the command's name, never "wattmeter". */
static int fork_before_exec(const wm_proctree *t, int x, int c)
{
	int k = t->ents[x].proc_idx;
	if (k < 0 || (size_t)k >= t->n || !t->procs[k].reaper)
		return 0;
	return strcmp(t->ents[c].st.comm, t->ents[x].st.comm) == 0;
}

/* from: walk from every tracked entry (-1), or only from table entry `from`
 * (add_root: baselining the new root's descendants must not swallow a child
 * that another root's process started since the last scan: that child counts
 * from zero at the next scan). */
static void link_and_grow(wm_proctree *t, int from)
{
	for (size_t k = 0; k < t->n; k++) {
		if (t->priv[k].seen)
			continue;   /* linked by its kept fd in collect */
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
			if (!t->ents[c].tracked && !fork_before_exec(t, x, c)) {
				t->ents[c].tracked = 1;   /* each entry is pushed once */
				t->stack[top++] = c;
			}
		}
	}
}

/* ---- discovery through the kernel's child lists -------------------------------------- */

/* <root>/<pid>/task/<tid>/children (CONFIG_PROC_CHILDREN) holds the pids of
 * the processes whose parent is thread tid: the kernel's own list, the one
 * the ppid in their stat names. The measured set is every root and what
 * descends from it, so following these lists from every tracked process
 * finds exactly what the full scan's ppid walk finds (step 5), reading the
 * files of the measured processes only, whatever else runs on the machine:
 *   - a process that forks from a thread other than its main one has that
 *     child in the thread's list: a process with num_threads > 1 has every
 *     thread's list read (its task directory listed);
 *   - an orphan goes to the nearest child subreaper among its ancestors or
 *     to the namespace's init, and its ppid then names that process: it is
 *     in the new parent's list exactly when the scan's walk would reach it
 *     (`wattmeter run` is a subreaper and a root, so orphans stay ours; in a
 *     --pid tree an orphan not yet seen goes to init for the scan as well,
 *     and one already seen stays tracked through its kept stat fd either
 *     way);
 *   - pid reuse cannot mislead a list: a listed pid is a child now, and a
 *     table entry is only linked by (pid, starttime), as in the scan.
 * The kernel's note on these files (Documentation/filesystems/proc.rst):
 * the list is exact only while the parent and its children are stopped. A
 * read that runs while a listed sibling exits may skip a child; the next
 * scan that reads the list finds it (counted from zero, as every process
 * born since the last scan), and a scan right after any tracked process
 * vanished reads the lists whatever loadavg says.
 * No pid allocated since the last scan (loadavg's last pid unchanged, as in
 * COLLECT_TRACKED) means no process was created, so no list can have grown
 * with a new process: the lists are read only when a pid was allocated, or
 * after a tracked process vanished. */

/* Reads fd from offset 0 to its end into t->cbuf, NUL-terminated. A seq_file
 * hands over at most a page or so per read, so read until a read returns 0,
 * except after a first read of under half a page: seq_read fills its page
 * with records until they run out or the next one (11 bytes at most here)
 * would not fit, so a first read that short holds every record (one pread
 * per list in the common case instead of two). */
static ssize_t read_whole_fd(wm_proctree *t, int fd)
{
	size_t len = 0;
	for (;;) {
		if (t->cbuf_cap - len < 4096 + 1) {
			size_t cap = t->cbuf_cap ? t->cbuf_cap * 2 : 8192;
			if (cap > (size_t)64 << 20)
				return -EOVERFLOW;   /* ~9 million children: not a real list */
			char *b = realloc(t->cbuf, cap);
			if (!b)
				return -ENOMEM;
			t->cbuf = b;
			t->cbuf_cap = cap;
		}
		ssize_t n;
		do
			n = pread(fd, t->cbuf + len, t->cbuf_cap - len - 1, (off_t)len);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == (size_t)n && len < 2048)
			break;
	}
	t->cbuf[len] = '\0';
	return (ssize_t)len;
}

static int open_at(int dirfd, const char *path, int flags)
{
	int fd;
	do
		fd = openat(dirfd, path, flags | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : fd;
}

/* "<pid>/task/<tid>/children" into path (64 bytes). */
static void children_path(char *path, size_t size, int pid, int tid)
{
	(void)snprintf(path, size, "%d/task/%d/children", pid, tid);
}

/* Scan entry index of pid, entered into the index as it grows. */
static int index_add(wm_proctree *t, size_t i)
{
	if (2 * t->n_ents > t->hash_size)
		return build_index(t);   /* doubles: amortised */
	size_t mask = t->hash_size - 1;
	size_t h = hash_pid(t->ents[i].st.pid, mask);
	while (t->hash[h] >= 0) {
		if (t->ents[t->hash[h]].st.pid == t->ents[i].st.pid)
			return 0;
		h = (h + 1) & mask;
	}
	t->hash[h] = (int)i;
	return 0;
}

/* One pid from parent entry pi's list: read and entered, tracked, unless it
 * is in this scan already or is no longer pi's child (it exited and the pid
 * was reused, or it was reparented, between the list and its stat). */
static int take_child(wm_proctree *t, size_t pi, int cpid)
{
	if (cpid <= 0 || lookup(t, cpid) >= 0)
		return 0;
	int rc = reserve_ents(t);
	if (rc)
		return rc;
	struct scan_ent *e = &t->ents[t->n_ents];
	rc = read_stat_path(t, cpid, &e->st, NULL);
	if (rc)
		return 0;   /* gone, or unusable: not part of this scan, as in the scan */
	if (e->st.ppid != t->ents[pi].st.pid)
		return 0;
	init_ent(e);
	e->tracked = 1;
	t->n_ents++;
	return index_add(t, t->n_ents - 1);
}

static int take_children_text(wm_proctree *t, size_t pi)
{
	for (const char *s = t->cbuf; *s;) {
		while (*s == ' ' || *s == '\n')
			s++;
		if (!*s)
			break;
		long v = 0;
		int ok = 1;
		for (; *s && *s != ' ' && *s != '\n'; s++) {
			if (*s < '0' || *s > '9' || v > INT_MAX / 10)
				ok = 0;
			else
				v = v * 10 + (*s - '0');
		}
		if (ok && v > 0 && v <= INT_MAX) {
			int rc = take_child(t, pi, (int)v);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* Reads the list of thread tid of entry pi through fd. Gone (the thread
 * exited): an empty list, its children are in another thread's now. */
static int take_children_fd(wm_proctree *t, size_t pi, int fd)
{
	t->n_child_reads++;
	ssize_t n = read_whole_fd(t, fd);
	if (n == -ENOMEM)
		return -ENOMEM;
	if (n < 0)
		return 0;
	return take_children_text(t, pi);
}

static int cmp_tfd(const void *a, const void *b)
{
	int x = ((const struct tfd *)a)->tid, y = ((const struct tfd *)b)->tid;
	return (x > y) - (x < y);
}

/* Keeps fd of thread tid in the scratch list ntf[*n], within the budget of
 * spare fds; 0 if it was not kept (the caller closes it). */
static int keep_tfd(wm_proctree *t, size_t *n, int tid, int fd, uint64_t ino)
{
	if (*n == t->cap_ntf) {
		size_t cap = t->cap_ntf ? t->cap_ntf * 2 : 64;
		struct tfd *v = realloc(t->ntf, cap * sizeof *v);
		if (!v)
			return 0;
		t->ntf = v;
		t->cap_ntf = cap;
	}
	t->ntf[(*n)++] = (struct tfd){.tid = tid, .fd = fd, .ino = ino};
	return 1;
}

/* The lists of the threads of entry pi other than its main one (pid). A
 * table entry keeps its task directory and the threads' files open (spare
 * budget allowing): a scan then lists the directory (lseek + getdents) and
 * preads each thread's list; a thread new since the last list is opened, a
 * kept one that exited is closed. Others are read by path. */
static int thread_lists(wm_proctree *t, size_t pi, struct proc_priv *q, int pid)
{
	int dfd = q ? q->taskfd : -1, own = 0;
	if (dfd >= 0 && lseek(dfd, 0, SEEK_SET) < 0) {
		close(dfd);
		q->taskfd = dfd = -1;
		t->n_kept--;
	}
	if (dfd < 0) {
		char path[32];
		(void)snprintf(path, sizeof path, "%d/task", pid);
		dfd = open_at(t->dirfd, path, O_RDONLY | O_DIRECTORY);
		if (dfd < 0)
			return 0;   /* gone meanwhile */
		if (q && spare_fd(t)) {
			q->taskfd = dfd;
			t->n_kept++;
		} else {
			own = 1;
		}
	}
	/* the threads as listed now, into ntf[] (fd -1 for now) */
	size_t n = 0;
	char dents[8192];
	for (;;) {
		ssize_t got = getdents64(dfd, dents, sizeof dents);
		if (got <= 0)
			break;
		for (ssize_t off = 0; off < got;) {
			struct dirent64 *d = (struct dirent64 *)(dents + off);
			off += d->d_reclen;
			int tid = name_to_pid(d->d_name);
			if (tid && tid != pid && !keep_tfd(t, &n, tid, -1, (uint64_t)d->d_ino))
				break;   /* out of memory: the threads listed so far */
		}
	}
	qsort(t->ntf, n, sizeof *t->ntf, cmp_tfd);

	/* merged with the kept ones (sorted by tid): reuse, open, close */
	size_t j = 0, w = 0;
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		struct tfd cur = t->ntf[i];
		while (q && j < q->n_tf && q->tf[j].tid < cur.tid) {
			close(q->tf[j++].fd);   /* the thread exited */
			t->n_kept--;
		}
		int fd = -1, kept = 0;
		if (q && j < q->n_tf && q->tf[j].tid == cur.tid) {
			if (q->tf[j].ino == cur.ino) {
				fd = q->tf[j].fd;
				kept = 1;
			} else {
				close(q->tf[j].fd);   /* the tid of another thread now */
				t->n_kept--;
			}
			j++;
		}
		if (fd < 0) {
			char rel[32];
			(void)snprintf(rel, sizeof rel, "%d/children", cur.tid);
			fd = open_at(dfd, rel, O_RDONLY);
			if (fd < 0)
				continue;   /* the thread exited */
			if (q && spare_fd(t)) {
				kept = 1;
				t->n_kept++;
			}
		}
		if (!rc)
			rc = take_children_fd(t, pi, fd);
		if (kept) {
			cur.fd = fd;
			t->ntf[w++] = cur;   /* w <= i: compacted in place */
		} else {
			close(fd);
		}
	}
	while (q && j < q->n_tf) {
		close(q->tf[j++].fd);
		t->n_kept--;
	}
	if (q) {
		q->n_tf = 0;
		if (w > q->cap_tf) {
			struct tfd *v = realloc(q->tf, w * sizeof *v);
			if (!v) {
				for (size_t i = 0; i < w; i++) {
					close(t->ntf[i].fd);
					t->n_kept--;
				}
				w = 0;
			} else {
				q->tf = v;
				q->cap_tf = w;
			}
		}
		if (w)
			memcpy(q->tf, t->ntf, w * sizeof *q->tf);
		q->n_tf = w;
	}
	if (own)
		close(dfd);
	return rc;
}

/* Every child of scan entry pi, read and entered. The main thread's list
 * is read through a kept fd (table entries, budget allowing); a process with
 * more threads has its task directory listed and each other thread's list
 * read by path. */
static int children_of(wm_proctree *t, size_t pi)
{
	struct scan_ent *e = &t->ents[pi];
	int pid = e->st.pid;
	char path[64];
	int rc = 0;
	struct proc_priv *q = e->proc_idx >= 0 ? &t->priv[e->proc_idx] : NULL;
	if (q && q->cfd < 0 && spare_fd(t)) {
		children_path(path, sizeof path, pid, pid);
		int fd = open_at(t->dirfd, path, O_RDONLY);
		if (fd >= 0) {
			q->cfd = fd;
			t->n_kept++;
		}
	}
	if (q && q->cfd >= 0) {
		rc = take_children_fd(t, pi, q->cfd);
	} else {
		children_path(path, sizeof path, pid, pid);
		int fd = open_at(t->dirfd, path, O_RDONLY);
		if (fd >= 0) {
			rc = take_children_fd(t, pi, fd);
			close(fd);
		}
	}
	if (rc || t->ents[pi].st.num_threads <= 1)
		return rc;

	return thread_lists(t, pi, q, pid);
}

/* Steps 1-5 with child lists: the tracked entries read (step 2a, no
 * listing), then, when asked, the children of those walked from (every one,
 * or only table entry `from`: add_root), and theirs, breadth first. */
static int prepare_children(wm_proctree *t, int from, int read_lists)
{
	int rc = collect(t, COLLECT_TRACKED);
	if (!rc)
		rc = build_index(t);
	if (rc)
		return rc;
	if (read_lists) {
		size_t n0 = t->n_ents;
		for (size_t i = 0; i < n0 && !rc; i++)
			if (t->ents[i].tracked && (from < 0 || t->ents[i].proc_idx == from))
				rc = children_of(t, i);
		for (size_t i = n0; i < t->n_ents && !rc; i++)
			rc = children_of(t, i);
		if (rc)
			return rc;
	}
	link_and_grow(t, from);
	return reserve_new(t);
}

/* The procfs root has child lists we can read: the calling thread's own. */
static int children_usable(int procfs_dirfd)
{
	char buf[64];   /* a start is enough: longer (many children) is -EOVERFLOW, readable */
	ssize_t n = wm_read_file_at(procfs_dirfd, "thread-self/children", buf, sizeof buf);
	return n >= 0 || n == -EOVERFLOW;
}

int wm_proctree_children_usable(int procfs_dirfd)
{
	struct statfs sfs;
	return fstatfs(procfs_dirfd, &sfs) == 0 && sfs.f_type == WM_PROC_SUPER_MAGIC &&
	       children_usable(procfs_dirfd);
}

/* Sets use_children and why from what was asked, what the root offers and
 * what is measured. */
static void choose_discovery(wm_proctree *t, int whole_machine)
{
	int was = t->use_children;
	if (t->asked == WM_DISCOVERY_SCAN) {
		t->use_children = 0;
		(void)snprintf(t->why, sizeof t->why, "full scan of the procfs root (asked for)");
	} else if (!wm_proctree_children_usable(t->dirfd)) {
		t->use_children = 0;
		(void)snprintf(t->why, sizeof t->why,
			       "full scan of the procfs root: no child lists there (task/<tid>/children: "
			       "not a procfs, or a kernel without CONFIG_PROC_CHILDREN)");
	} else if (whole_machine && t->asked == WM_DISCOVERY_AUTO) {
		t->use_children = 0;
		(void)snprintf(t->why, sizeof t->why,
			       "full scan of the procfs root: pid 1 is measured, so is every process");
	} else {
		t->use_children = 1;
		(void)snprintf(t->why, sizeof t->why,
			       "child lists (task/<tid>/children) from the measured processes");
	}
	if (was && !t->use_children)
		t->known_valid = 0;   /* known[] went stale meanwhile: read every pid once */
}

int wm_proctree_set_discovery(wm_proctree *t, wm_proc_discovery d)
{
	if (!t)
		return -EINVAL;
	if (d == WM_DISCOVERY_CHILD_LISTS && !wm_proctree_children_usable(t->dirfd))
		return -ENOTSUP;
	t->asked = d;
	choose_discovery(t, t->has_init_root);
	t->reread_children = 1;
	return 0;
}

wm_proc_discovery wm_proctree_discovery(const wm_proctree *t, const char **why)
{
	if (why)
		*why = t ? t->why : "";
	return t && t->use_children ? WM_DISCOVERY_CHILD_LISTS : WM_DISCOVERY_SCAN;
}

void wm_proctree_child_reads(const wm_proctree *t, uint64_t *reads)
{
	if (reads)
		*reads = t ? t->n_child_reads : 0;
}

/* ---- step 6: apply --------------------------------------------------------------------- */

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
	p->faults = e->st.faults;
	p->peak_rss_bytes = p->rss_bytes;
	t->n_set_changes++;
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
	t->priv[k].fd = -1;   /* opened and kept by the next scan */
	t->priv[k].cfd = -1;
	t->priv[k].dfd = -1;
	t->priv[k].taskfd = -1;
	t->priv[k].tf = NULL;
	t->priv[k].n_tf = t->priv[k].cap_tf = 0;
	t->priv[k].sub = 0;
	t->priv[k].mem_read = 0;
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
		drop_fd(t, k);
		p->d_cpu_ticks = 0;
		p->d_tail_ticks = 0;
		if (!p->alive)
			continue;
		/* Gone: keep what was last seen of it. */
		p->alive = 0;
		p->vanished = 1;
		t->n_set_changes++;
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
		p->faults = e->st.faults;
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

/* Steps 1-5 and the reservation: nothing in the table changes on failure
 * (kept fds of processes found gone may be closed). */
static int prepare(wm_proctree *t, int from, enum collect_mode mode)
{
	int rc = collect(t, mode);
	if (!rc)
		rc = build_index(t);
	if (rc)
		return rc;
	link_and_grow(t, from);
	return reserve_new(t);
}

/* wm_proctree_scan with child lists. */
static int scan_children(wm_proctree *t, int have_last, uint64_t last)
{
	int quiet = have_last && t->have_last_pid && last == t->last_pid && !t->reread_children;
	int rc = prepare_children(t, -1, !quiet);
	if (rc)
		return rc;
	apply_scan(t);
	/* A list read while a sibling exited may have skipped a child: the
	 * next scan reads the lists again (see above). */
	t->reread_children = 0;
	for (size_t k = 0; k < t->n; k++)
		if (t->procs[k].vanished)
			t->reread_children = 1;
	t->have_last_pid = have_last;
	t->last_pid = last;
	t->n_scans++;
	return 0;
}

int wm_proctree_scan(wm_proctree *t)
{
	if (!t)
		return -EINVAL;
	int full = !t->known_valid || t->scans_since_full + 1 >= WM_PROCTREE_FULL_SCAN_EVERY;
	/* Read before listing: a pid allocated after this read shows up in
	 * the listing or changes the value seen by the next scan. */
	uint64_t last = 0;
	int have_last = t->loadavg_fd >= 0 && read_last_pid(t->loadavg_fd, &last) == 0;
	if (t->use_children)
		return scan_children(t, have_last, last);
	enum collect_mode mode = full ? COLLECT_FULL : COLLECT_NEW;
	if (!full && have_last && t->have_last_pid) {
		if (last == t->last_pid)
			mode = COLLECT_TRACKED;   /* no pid allocated since the last scan */
		else if (t->range_ok)
			mode = COLLECT_RANGE;
	}
	t->pending_last_pid = last;
	int rc = prepare(t, -1, mode);
	if (rc)
		return rc;
	apply_scan(t);
	/* The partial modes leave known[] as it was: it is only consulted by
	 * COLLECT_NEW, where a stale entry costs a read or is caught by d_ino. */
	if (mode == COLLECT_NEW || mode == COLLECT_FULL)
		commit_known(t);
	t->have_last_pid = have_last;
	t->last_pid = last;
	t->scans_since_full = full ? 0 : t->scans_since_full + 1;
	t->n_scans++;
	return 0;
}

static int add_root_as(wm_proctree *t, int pid, int count_own, int reaper)
{
	if (!t || pid <= 0)
		return -EINVAL;
	wm_pid_stat st;
	int rc = read_stat_path(t, pid, &st, NULL);
	if (gone(rc))
		return -ESRCH;
	if (rc)
		return rc;

	for (size_t k = 0; k < t->n; k++) {
		wm_proc *p = &t->procs[k];
		if (p->pid == pid && p->starttime_ticks == st.starttime_ticks) {
			/* Already measured as a descendant: it becomes a root. It
			 * may have exec'd since it was first seen (the CLI adds the
			 * command once its exec is confirmed, and a scan may have
			 * caught the child between fork and exec, with wattmeter's
			 * own command line): read the command line again. Empty
			 * (it has exited already) keeps the old one. */
			char cmd[sizeof p->cmdline];
			if (wm_read_pid_cmdline(t->dirfd, pid, cmd, sizeof cmd) >= 0 && cmd[0])
				memcpy(p->cmdline, cmd, sizeof cmd);
			memcpy(p->comm, st.comm, sizeof p->comm);
			p->is_root = 1;
			p->count_own = count_own ? 1 : 0;
			p->reaper |= reaper;
			return 0;
		}
	}

	if (st.pid == 1 && !t->has_init_root) {
		t->has_init_root = 1;
		choose_discovery(t, 1);
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
	t->procs[k].reaper = reaper; /* before its descendants are walked */

	/* Its descendants that exist now are baselined too. Every pid is
	 * read; known[] may hold some of them, so it is not trusted by the
	 * next scan, and nothing is committed here (a child that another root
	 * started since the last scan is left for that scan to find). */
	t->known_valid = 0;
	if (t->use_children)
		rc = prepare_children(t, (int)k, 1);
	else
		rc = prepare(t, (int)k, COLLECT_FULL);
	if (rc) {
		drop_fd(t, k);
		t->n = k;   /* as if never added */
		return rc;
	}
	for (size_t i = 0; i < t->n_ents; i++)
		if (t->ents[i].tracked && t->ents[i].proc_idx < 0)
			enter_new(t, &t->ents[i], MODE_BASELINE);
	return 0;
}

int wm_proctree_add_root(wm_proctree *t, int pid, int count_own)
{
	return add_root_as(t, pid, count_own, 0);
}

int wm_proctree_add_reaper(wm_proctree *t, int pid)
{
	return add_root_as(t, pid, 0, 1);
}

size_t wm_proctree_forget_exited(wm_proctree *t, void (*drop)(wm_proc *p, void *arg), void *arg)
{
	if (!t)
		return 0;
	/* Safe between scans: table indices only live within a scan (scan
	 * entries link to them afresh in every collect), and the kept fd of an
	 * exited process was closed when it vanished. */
	size_t w = 0, gone_n = 0;
	for (size_t k = 0; k < t->n; k++) {
		if (!t->procs[k].alive) {
			drop_fd(t, k);
			free(t->priv[k].tf);
			t->priv[k].tf = NULL;
			t->priv[k].cap_tf = 0;
			if (drop)
				drop(&t->procs[k], arg);
			gone_n++;
			continue;
		}
		if (w != k) {
			t->procs[w] = t->procs[k];
			t->priv[w] = t->priv[k];
		}
		w++;
	}
	t->n = w;
	return gone_n;
}

/* Keeps <pid>'s directory open for table entry k, if it still holds the
 * process (its stat read through the directory shows the same starttime):
 * files opened relative to it are this process's or fail (ESRCH/ENOENT once
 * it exited), never those of a process that took the pid over. */
static void keep_dir(wm_proctree *t, size_t k)
{
	char name[16];
	(void)snprintf(name, sizeof name, "%d", t->procs[k].pid);
	int fd = open_at(t->dirfd, name, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return;
	char buf[4096];
	wm_pid_stat st;
	if (wm_read_file_at(fd, "stat", buf, sizeof buf) < 0 || wm_parse_pid_stat(buf, &st) != 0 ||
	    st.pid != t->procs[k].pid || st.starttime_ticks != t->procs[k].starttime_ticks) {
		close(fd);
		return;
	}
	t->priv[k].dfd = fd;
	t->n_kept++;
}

static int read_smaps_at(int dirfd, uint64_t *rss, uint64_t *pss, uint64_t *uss)
{
	char buf[4096];   /* about 1 KiB today (25 lines) */
	ssize_t n = wm_read_file_at(dirfd, "smaps_rollup", buf, sizeof buf);
	if (n < 0)
		return (int)n;
	return wm_parse_smaps_rollup(buf, rss, pss, uss);
}

/* Whether anything that can move the measured set's PSS was seen since the
 * last read (the rule in proctree.h). */
static int memory_may_have_moved(const wm_proctree *t)
{
	if (t->n_set_changes != t->mem_set_changes)
		return 1;
	for (size_t k = 0; k < t->n; k++) {
		const wm_proc *p = &t->procs[k];
		const struct proc_priv *q = &t->priv[k];
		if (!p->alive)
			continue;
		if (!q->mem_read || q->mem_rss_bytes != p->rss_bytes || q->mem_faults != p->faults)
			return 1;
	}
	return 0;
}

void wm_proctree_memory_rounds(const wm_proctree *t, uint64_t *read, uint64_t *reused)
{
	if (read)
		*read = t ? t->n_mem_read : 0;
	if (reused)
		*reused = t ? t->n_mem_reused : 0;
}

int wm_proctree_read_memory(wm_proctree *t)
{
	if (!t)
		return -EINVAL;
	if (!memory_may_have_moved(t) && t->mem_reused_in_row < WM_PROCTREE_MEMORY_REUSE_ROUNDS) {
		t->mem_reused_in_row++;
		t->n_mem_reused++;
		return 0;
	}
	t->mem_reused_in_row = 0;
	t->n_mem_read++;
	t->mem_set_changes = t->n_set_changes;
	for (size_t k = 0; k < t->n; k++) {
		wm_proc *p = &t->procs[k];
		if (!p->alive)
			continue;
		uint64_t rss, pss, uss;
		/* Gone (ENOENT/ESRCH), another user's process (EACCES/EPERM: ptrace
		 * access is needed), a zombie (empty file, EINVAL): keep what we
		 * had. Through the kept directory (budget allowing) the read is
		 * this process's or fails; by path, the pid could have been
		 * reused since the last scan, and this one read is then someone
		 * else's (the next scan notices). */
		struct proc_priv *q = &t->priv[k];
		if (q->dfd < 0 && spare_fd(t))
			keep_dir(t, k);
		int rc = q->dfd >= 0 ? read_smaps_at(q->dfd, &rss, &pss, &uss)
				     : wm_read_pid_smaps_rollup(t->dirfd, p->pid, &rss, &pss, &uss);
		if (rc == 0) {
			p->pss_bytes = pss;
			p->uss_bytes = uss;
			p->have_pss = 1;
		}
		/* A failed read counts as read too: another user's process stays
		 * unreadable, and retrying it would keep the rule from ever
		 * resting. Its figures at this read are what the next compares. */
		q->mem_read = 1;
		q->mem_rss_bytes = p->rss_bytes;
		q->mem_faults = p->faults;
	}
	return 0;
}
