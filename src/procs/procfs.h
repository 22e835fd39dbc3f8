/* procfs.h — pure parsers for the /proc files we read, and the reads.
 *
 * Parsers take text already read into a NUL-terminated buffer and never do
 * I/O, so they are tested and fuzzed on their own. Readers below take a
 * procfs root dirfd (see root.h) and read relative to it.
 */
#ifndef WM_PROCS_PROCFS_H
#define WM_PROCS_PROCFS_H

#include <stddef.h>
#include <stdint.h>

/* /proc/<pid>/stat, the fields we use. Times in clock ticks (USER_HZ). */
typedef struct wm_pid_stat {
	int pid;
	char comm[64];          /* between the first '(' and the LAST ')', truncated if longer */
	char state;             /* R, S, D, Z, ... */
	int ppid;
	uint64_t utime_ticks;
	uint64_t stime_ticks;
	uint64_t cutime_ticks;  /* reaped children, recursively; negative clamps to 0 */
	uint64_t cstime_ticks;
	uint64_t starttime_ticks; /* since boot: with pid, identifies a process across pid reuse */
	uint64_t rss_pages;
	uint64_t faults;        /* minflt + majflt (fields 10, 12): page faults of its own, ever */
	int num_threads;
} wm_pid_stat;

/* Returns 0, or -EINVAL if the text is not a complete stat line. The name may
 * hold spaces and ')' (found with the last ')'), fields must be numbers. */
int wm_parse_pid_stat(const char *text, wm_pid_stat *out);

/* The aggregate "cpu " line of /proc/stat, in ticks. */
typedef struct wm_cpu_times {
	uint64_t user, nice, system, idle, iowait, irq, softirq, steal;
	uint64_t busy_ticks;    /* user+nice+system+irq+softirq+steal (guest is inside user) */
	uint64_t total_ticks;   /* busy + idle + iowait */
} wm_cpu_times;

/* Parses /proc/stat: the aggregate line and the number of "cpuN" lines
 * (*n_cpus, >= 1 on success). -EINVAL if the aggregate line is missing or bad. */
int wm_parse_proc_stat(const char *text, wm_cpu_times *out, int *n_cpus);

/* /proc/<pid>/smaps_rollup: Pss and USS (Private_Clean + Private_Dirty +
 * Private_Hugetlb, in bytes), Rss in bytes. -EINVAL if Pss or Rss is missing. */
int wm_parse_smaps_rollup(const char *text, uint64_t *rss_bytes, uint64_t *pss_bytes,
			  uint64_t *uss_bytes);

/* /proc/meminfo: MemTotal and MemAvailable in bytes. MemAvailable missing
 * (kernels < 3.14) falls back to MemFree+Buffers+Cached. -EINVAL if MemTotal missing. */
int wm_parse_meminfo(const char *text, uint64_t *total_bytes, uint64_t *available_bytes);

/* /proc/<pid>/cmdline: raw NUL-separated bytes (n of them) joined with spaces
 * into out (always terminated; "..." marks truncation). Empty cmdline (kernel
 * threads, zombies) gives "". Returns the length written. */
size_t wm_format_cmdline(const char *raw, size_t n, char *out, size_t outlen);

/* /proc/cpuinfo: the first "model name" value into out ("" if none). */
void wm_parse_cpuinfo_model(const char *text, char *out, size_t outlen);

/* ---- readers (relative to a procfs root dirfd) ---------------------------- */
/* Machine-wide counters kept open and re-read with pread. */
typedef struct wm_sysstat {
	int stat_fd;     /* <root>/stat */
	int meminfo_fd;  /* <root>/meminfo */
	int n_cpus;
	char buf[65536]; /* /proc/stat grows with the CPU count; 64 KiB holds ~500 CPUs */
} wm_sysstat;

int wm_sysstat_open(wm_sysstat *s, int procfs_dirfd, char *err, size_t errlen);
int wm_sysstat_read_cpu(wm_sysstat *s, wm_cpu_times *out);
int wm_sysstat_read_mem(wm_sysstat *s, uint64_t *total_bytes, uint64_t *available_bytes);
void wm_sysstat_close(wm_sysstat *s);

/* One-shot reads of /proc/<pid>/... relative to the root. -ENOENT/-ESRCH when
 * the process is gone (normal, not an error). */
int wm_read_pid_stat(int procfs_dirfd, int pid, wm_pid_stat *out);
int wm_read_pid_cmdline(int procfs_dirfd, int pid, char *out, size_t outlen);
int wm_read_pid_smaps_rollup(int procfs_dirfd, int pid, uint64_t *rss_bytes,
			     uint64_t *pss_bytes, uint64_t *uss_bytes);

#endif
