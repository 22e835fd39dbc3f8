/* proctree.h — the measured set of processes and their CPU time per interval.
 *
 * The measured set is every root (the wrapped command, --pid PIDs, or the
 * calling Python process) and all their descendants, including children
 * started later. A process is identified by (pid, starttime) so pid reuse
 * never merges two processes. Processes that exit stay in the table (alive=0)
 * with what was last seen of them, so their attributed energy is reported.
 *
 * CPU accounting per scan interval, in clock ticks:
 *   d_cpu_ticks  = the process's own utime+stime advance (a process born
 *                  after the first scan counts from zero);
 *   d_tail_ticks = the advance of its cutime+cstime (children it reaped) minus
 *                  what we had last seen of the tracked children that vanished
 *                  this interval with it as parent, clamped at 0: the CPU that
 *                  short-lived or just-exited children spent since our last look.
 * A root added with count_own=0 (the wattmeter CLI itself, which reaps the
 * wrapped command) contributes only its tail.
 *
 * Cost: a scan re-reads the stat of each tracked process with one pread on
 * a file descriptor kept open while it lives (up to WM_PROCTREE_MAX_KEPT_FDS,
 * and at most half of RLIMIT_NOFILE; beyond that openat + pread + close).
 * New descendants are found (see wm_proc_discovery below) either through the
 * kernel's child lists of the tracked processes, read only when a pid was
 * allocated since the last scan (loadavg) or a tracked process vanished, so
 * that a scan reads the measured processes' files and nothing else; or, by
 * the full scan: other pids are read once, when first listed, to see whether
 * their parent is ours; on procfs only the pids created since the last scan
 * are listed (none when loadavg's last pid has not moved), and every
 * WM_PROCTREE_FULL_SCAN_EVERY-th scan lists and reads every pid again (see
 * proctree.c). The tree holds its fds (O_CLOEXEC) between scans: stat, and
 * within half the budget the main thread's children file and (memory tier)
 * the process's directory.
 */
#ifndef WM_PROCS_PROCTREE_H
#define WM_PROCS_PROCTREE_H

#include <stddef.h>
#include <stdint.h>

#include "procfs.h"

typedef struct wm_proc {
	int pid;
	int ppid;
	uint64_t starttime_ticks;
	char comm[64];
	char cmdline[512];
	int is_root;
	int count_own;           /* own utime+stime is part of the measured set */
	int reaper;              /* added by wm_proctree_add_reaper */
	int alive;               /* seen in the last scan */
	int is_new;              /* first seen in the last scan */
	int vanished;            /* disappeared in the last scan (alive was 1 before) */
	uint64_t cpu_ticks;      /* utime+stime last seen */
	uint64_t child_ticks;    /* cutime+cstime last seen */
	uint64_t d_cpu_ticks;    /* this interval, see above */
	uint64_t d_tail_ticks;
	uint64_t total_cpu_ticks;/* cumulative d_cpu + d_tail while measured */
	uint64_t rss_bytes;      /* from stat (rss pages * page size), every scan */
	uint64_t faults;         /* minflt + majflt from stat, every scan */
	uint64_t pss_bytes;      /* from smaps_rollup, when the memory tier ran */
	uint64_t uss_bytes;
	int have_pss;
	uint64_t peak_rss_bytes;
	int included;            /* outside the command's tree, added by --include-*
	                            (meter/include.c); set by the meter, not the tree */
	int rank;                /* a job's rank that registered it (meter/job.c), else 0
	                            with has_rank 0; set by the meter */
	int has_rank;
	/* Not the tree's: a slot for the meter, which keeps its per-process
	 * energy there (NULL until the meter sets it; released through the
	 * callback of wm_proctree_forget_exited). */
	void *user;
} wm_proc;

typedef struct wm_proctree wm_proctree;

/* Every this many scans, the stat of every listed pid is read, not only of
 * tracked and new ones: it finds a child of ours that took over the pid of
 * an unrelated process between two scans, and so was not new to the
 * listing. (Its CPU reaches the set anyway, as its parent's tail, once it
 * is reaped; this bounds how long a long-lived one goes unseen.) The first
 * scan after wm_proctree_new or an add_root is a full one too. */
#define WM_PROCTREE_FULL_SCAN_EVERY 30

/* The most <pid>/stat file descriptors a tree keeps open. */
#define WM_PROCTREE_MAX_KEPT_FDS 4096

/* How scans find the measured processes' descendants.
 *   CHILD_LISTS: from every measured process, the kernel's list of its
 *     children (<root>/<pid>/task/<tid>/children), and theirs: only the
 *     measured processes' files are read, whatever else runs on the machine.
 *   SCAN: the listing of the procfs root (every pid of the machine), with the
 *     shortcuts above; the same set, at a cost that grows with the machine.
 *   AUTO (the default): CHILD_LISTS where the root is a procfs whose
 *     child lists can be read (CONFIG_PROC_CHILDREN), except once pid 1 is
 *     a root (the whole machine: the listing is the cheaper walk); SCAN
 *     otherwise (fixture trees, kernels without the lists). */
typedef enum wm_proc_discovery {
	WM_DISCOVERY_AUTO = 0,
	WM_DISCOVERY_CHILD_LISTS,
	WM_DISCOVERY_SCAN,
} wm_proc_discovery;

int wm_proctree_new(int procfs_dirfd, wm_proctree **out);

/* Asks for a discovery method (before or between scans). -ENOTSUP for
 * CHILD_LISTS where the root has none. */
int wm_proctree_set_discovery(wm_proctree *t, wm_proc_discovery d);

/* The method the scans use now (CHILD_LISTS or SCAN) and, in *why, a
 * sentence saying so and why (owned by the tree), for `sensors`/meta.json. */
wm_proc_discovery wm_proctree_discovery(const wm_proctree *t, const char **why);

/* 1 if procfs_dirfd is a procfs whose child lists this thread can read. */
int wm_proctree_children_usable(int procfs_dirfd);

/* Cumulative reads of children files since _new, for tests and benchmarks. */
void wm_proctree_child_reads(const wm_proctree *t, uint64_t *reads);
void wm_proctree_free(wm_proctree *t);

/* Adds a root before or between scans. count_own: 1 to count its own CPU.
 * -ESRCH if the process does not exist. */
int wm_proctree_add_root(wm_proctree *t, int pid, int count_own);

/* A root that only reaps (count_own 0): the wattmeter CLI, which forks
 * the command and adopts its orphans. A child of it that still bears its
 * name (comm) has not exec'd yet and is not measured: the CLI adds the
 * command with wm_proctree_add_root once its exec is confirmed, so the
 * command's first entry carries its own name, never the CLI's. */
int wm_proctree_add_reaper(wm_proctree *t, int pid);

/* Scans the procfs root: refreshes every tracked process, finds new
 * descendants, marks vanished ones, fills the d_* fields. 0 or -errno
 * (only for failures of the scan itself: ENOMEM, procfs unreadable). */
int wm_proctree_scan(wm_proctree *t);

/* Reads smaps_rollup of every alive process (PSS/USS), relative to its
 * directory kept open from the first read (checked against its starttime),
 * so that a reused pid is never read as ours. Slow: walks page tables and
 * briefly stalls the target; the sampler runs it on its slowest tier. */
int wm_proctree_read_memory(wm_proctree *t);

/* The memory tier's reuse rule. smaps_rollup walks the process's page
 * tables (about 0.3 ms for an idle Python process, far more than the rest of
 * a process sample), and an idle measured set's PSS does not move. So a
 * round re-reads every measured process's smaps_rollup when anything that
 * can move PSS is seen to have changed since the last read: a process joined
 * or left the set (sharing shifts: a fork shares its parent's pages, an exit
 * unshares them), one was never read, or one's rss or page-fault count (from
 * the stat the process tier reads anyway) changed (mapping, unmapping,
 * swapping and copy-on-write breaks fault or move rss; a break in one
 * process moves its sharers' PSS too, hence all are re-read, not only the
 * one that changed). Otherwise the last figures are kept, for at most
 * WM_PROCTREE_MEMORY_REUSE_ROUNDS rounds in a row: what the stat cannot
 * show (a process outside the set mapping the same file pages, khugepaged,
 * KSM) is then at most that many rounds old (60 s at the default 10 s). */
#define WM_PROCTREE_MEMORY_REUSE_ROUNDS 5

/* Memory rounds so far that read smaps_rollup, and that kept the last
 * figures under the rule above. */
void wm_proctree_memory_rounds(const wm_proctree *t, uint64_t *read, uint64_t *reused);

/* Cumulative counts of <pid>/stat preads and openat attempts since _new
 * (add_root's included), for tests and self-overhead reporting. Either
 * pointer may be NULL. */
void wm_proctree_stats(const wm_proctree *t, uint64_t *stat_reads, uint64_t *stat_opens);

/* Forgets every process that is no longer alive (its last interval has
 * been attributed and reported by the caller), calling drop(p, arg) on each
 * first so the caller can release p->user. Keeps the table, and so memory
 * and per-scan work, bounded by the processes alive now, not by all that
 * ever ran. Returns how many were forgotten. Indices change. */
size_t wm_proctree_forget_exited(wm_proctree *t, void (*drop)(wm_proc *p, void *arg), void *arg);

size_t wm_proctree_count(const wm_proctree *t);
wm_proc *wm_proctree_get(wm_proctree *t, size_t i);

#endif
