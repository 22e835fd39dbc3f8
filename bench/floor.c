/* floor.c — the least work one wattmeter sample could possibly cost.
 *
 * A bare loop doing only the reads a sample needs, with no sleeping, no
 * formatting and no writing, timed in CPU time (CLOCK_PROCESS_CPUTIME_ID):
 *
 *   counter tier: one pread of every RAPL zone's energy_uj (fds kept open,
 *                 as wattmeter keeps them) and one pread of /proc/stat
 *                 (kept fd), each value parsed with strtoull;
 *   process tier: the counter reads, plus one pread of /proc/meminfo, a
 *                 rewinddir + readdir of /proc and, for every numeric
 *                 entry, openat(<pid>/stat) + one pread + close.
 *   measured tier (--tier measured --tree PID, PID repeatable): the counter
 *                 reads, one pread of /proc/meminfo and one pread of the stat
 *                 of every process of the trees under the PIDs, through fds
 *                 kept open (the trees found once, at the start, through
 *                 task/<pid>/children): the floor of a process sample that
 *                 reads only the measured processes' files.
 *   With --period S the counter and process tiers sleep to an absolute
 *   deadline every S before each iteration, as a sampler does: the figure
 *   then includes waking up with cold caches (the periodic floor); without
 *   it they loop flat out (the tight floor: the reads alone, caches warm).
 *   --write FILE  also append one 170-byte line per iteration to FILE with
 *                 write(2), as the recorder appends a sample line;
 *   --cputime     also read CLOCK_THREAD_CPUTIME_ID once per iteration, as the
 *                 sampler does for its self.cpu_s;
 *   (these two measure what the sampler does beyond the reads, toward the
 *   floor; without them the figure is the reads alone)
 *   wake:         nothing but a periodic absolute-deadline sleep
 *                 (clock_nanosleep, --period S): what merely waking up
 *                 costs the thread on this kernel, reported apart to explain
 *                 the gap between the read floor and a real sampler.
 *
 * usage: floor [--sysfs-root DIR] [--procfs-root DIR] [--tier counter|proc|measured|wake] [--tree PID]...
 *              [--iterations N] [--min-seconds S] [--period S]
 * prints one JSON line: {"tier":..., "zones":..., "pids":..., "iterations":...,
 *                        "cpu_ns_per_iter":..., "wall_ns_per_iter":...}
 *
 * Built by bench/run.sh with `cc -O2`. Zones are found as wattmeter finds
 * them: entries of <sysfs>/class/powercap named intel-rapl:* or
 * intel-rapl-mmio:* that hold an energy_uj.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_ZONES 256

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static volatile uint64_t sink;

static void read_counter(int fd)
{
	char buf[64];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	if (n <= 0)
		return;
	buf[n] = '\0';
	sink += strtoull(buf, NULL, 10);
}

static void read_proc_stat(int fd, char *buf, size_t size)
{
	ssize_t n = pread(fd, buf, size - 1, 0);
	if (n <= 0)
		return;
	buf[n] = '\0';
	/* "cpu  user nice system idle iowait irq softirq steal ..." */
	char *p = buf + 3;
	for (int i = 0; i < 8; i++)
		sink += strtoull(p, &p, 10);
}

#define MAX_TREE 65536

/* The tree under pid, pid first, into fds[] (<pid>/stat kept open). */
static int open_tree(int dfd, int pid, int *fds, int n, int max)
{
	if (n >= max)
		return n;
	char path[64];
	snprintf(path, sizeof path, "%d/stat", pid);
	int fd = openat(dfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return n;
	fds[n++] = fd;
	snprintf(path, sizeof path, "%d/task/%d/children", pid, pid);
	int cfd = openat(dfd, path, O_RDONLY | O_CLOEXEC);
	if (cfd < 0)
		return n;
	static char buf[1 << 20];
	size_t len = 0;
	ssize_t k;
	while (len < sizeof buf - 1 && (k = read(cfd, buf + len, sizeof buf - 1 - len)) > 0)
		len += (size_t)k;
	close(cfd);
	buf[len] = '\0';
	char *copy = strdup(buf), *save = NULL;
	for (char *tok = strtok_r(copy, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
		n = open_tree(dfd, atoi(tok), fds, n, max);
	free(copy);
	return n;
}

static void read_tree(const int *fds, int n)
{
	for (int i = 0; i < n; i++) {
		char buf[4096];
		ssize_t k = pread(fds[i], buf, sizeof buf - 1, 0);
		if (k > 0) {
			buf[k] = '\0';
			char *rp = strrchr(buf, ')');
			if (rp)
				sink += (uint64_t)(rp - buf);
		}
	}
}

static int count_pids(DIR *d)
{
	int n = 0;
	rewinddir(d);
	struct dirent *e;
	while ((e = readdir(d)))
		if (isdigit((unsigned char)e->d_name[0]))
			n++;
	return n;
}

static int scan_procs(DIR *d, int dfd)
{
	int n = 0;
	rewinddir(d);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		char path[300];
		snprintf(path, sizeof path, "%s/stat", e->d_name);
		int fd = openat(dfd, path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		char buf[4096];
		ssize_t k = pread(fd, buf, sizeof buf - 1, 0);
		close(fd);
		if (k > 0) {
			buf[k] = '\0';
			char *rp = strrchr(buf, ')');
			if (rp)
				sink += (uint64_t)(rp - buf);
			n++;
		}
	}
	return n;
}

int main(int argc, char **argv)
{
	const char *sysfs = "/sys", *procfs = "/proc", *tier = "counter";
	long iterations = 0;
	double min_s = 1.0, period_s = 0.0;
	const char *write_path = NULL;
	int want_cputime = 0;
	int trees[64], n_trees = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--tree") && i + 1 < argc && n_trees < 64) {
			trees[n_trees++] = atoi(argv[++i]);
			continue;
		}
		if (!strcmp(argv[i], "--sysfs-root") && i + 1 < argc)
			sysfs = argv[++i];
		else if (!strcmp(argv[i], "--procfs-root") && i + 1 < argc)
			procfs = argv[++i];
		else if (!strcmp(argv[i], "--tier") && i + 1 < argc)
			tier = argv[++i];
		else if (!strcmp(argv[i], "--iterations") && i + 1 < argc)
			iterations = atol(argv[++i]);
		else if (!strcmp(argv[i], "--period") && i + 1 < argc)
			period_s = atof(argv[++i]);
		else if (!strcmp(argv[i], "--write") && i + 1 < argc)
			write_path = argv[++i];
		else if (!strcmp(argv[i], "--cputime"))
			want_cputime = 1;
		else if (!strcmp(argv[i], "--min-seconds") && i + 1 < argc)
			min_s = atof(argv[++i]);
		else {
			fprintf(stderr, "usage: %s [--sysfs-root DIR] [--procfs-root DIR] [--tier counter|proc|measured|wake] "
					"[--tree PID]... [--iterations N] [--min-seconds S]\n", argv[0]);
			return 2;
		}
	}
	int measured_tier = !strcmp(tier, "measured");
	int proc_tier = !strcmp(tier, "proc") || measured_tier;
	if (!strcmp(tier, "wake")) {
		if (period_s <= 0)
			period_s = 0.01;
		uint64_t period_ns = (uint64_t)(period_s * 1e9);
		long n = iterations ? iterations : (long)(min_s / period_s);
		if (n < 1)
			n = 1;
		uint64_t c0 = now_ns(CLOCK_PROCESS_CPUTIME_ID), w0 = now_ns(CLOCK_MONOTONIC), next = w0;
		for (long k = 0; k < n; k++) {
			next += period_ns;
			struct timespec ts = {.tv_sec = (time_t)(next / 1000000000ull),
					      .tv_nsec = (long)(next % 1000000000ull)};
			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
				;
		}
		uint64_t c1 = now_ns(CLOCK_PROCESS_CPUTIME_ID), w1 = now_ns(CLOCK_MONOTONIC);
		printf("{\"tier\":\"wake\",\"period_s\":%g,\"iterations\":%ld,\"cpu_ns_per_iter\":%.1f,"
		       "\"wall_ns_per_iter\":%.1f}\n", period_s, n, (double)(c1 - c0) / (double)n,
		       (double)(w1 - w0) / (double)n);
		return 0;
	}

	int zfd[MAX_ZONES], nz = 0;
	char cls[4096];
	snprintf(cls, sizeof cls, "%s/class/powercap", sysfs);
	DIR *cd = opendir(cls);
	if (cd) {
		struct dirent *e;
		while ((e = readdir(cd)) && nz < MAX_ZONES) {
			if (strncmp(e->d_name, "intel-rapl:", 11) && strncmp(e->d_name, "intel-rapl-mmio:", 16))
				continue;
			char p[4400];
			snprintf(p, sizeof p, "%s/%s/energy_uj", cls, e->d_name);
			int fd = open(p, O_RDONLY | O_CLOEXEC);
			if (fd >= 0)
				zfd[nz++] = fd;
		}
		closedir(cd);
	}
	char path[4096];
	snprintf(path, sizeof path, "%s/stat", procfs);
	int statfd = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof path, "%s/meminfo", procfs);
	int memfd = open(path, O_RDONLY | O_CLOEXEC);
	DIR *pd = opendir(procfs);
	if (statfd < 0 || memfd < 0 || !pd) {
		fprintf(stderr, "floor: cannot open %s: %s\n", procfs, strerror(errno));
		return 1;
	}
	int pdfd = dirfd(pd);
	static int tree_fds[MAX_TREE];
	int n_tree = 0;
	for (int i = 0; measured_tier && i < n_trees; i++)
		n_tree = open_tree(pdfd, trees[i], tree_fds, n_tree, MAX_TREE);
	int machine_pids = count_pids(pd);
	static char statbuf[65536];
	int wfd = -1;
	if (write_path) {
		wfd = open(write_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
		if (wfd < 0) {
			fprintf(stderr, "floor: cannot open %s: %s\n", write_path, strerror(errno));
			return 1;
		}
	}
	/* a sample line as long as the counter tier writes (~170 bytes) */
	static const char line[] = "{\"t_s\":12.345678,\"energy_j\":{\"cpu\":1234.567890,\"dram\":123.456789,"
				   "\"psys\":2345.678901},\"power_w\":{\"cpu\":50.000,\"dram\":10.000,"
				   "\"psys\":70.000},\"self_cpu_s\":0.123456}\n";

	long it = 0;
	int pids = 0;
	uint64_t c0 = now_ns(CLOCK_PROCESS_CPUTIME_ID), w0 = now_ns(CLOCK_MONOTONIC);
	uint64_t next = w0, period_ns = (uint64_t)(period_s * 1e9);
	for (;;) {
		if (period_ns) { /* periodic: sleep to the next absolute deadline first */
			next += period_ns;
			struct timespec ts = {.tv_sec = (time_t)(next / 1000000000ull),
					      .tv_nsec = (long)(next % 1000000000ull)};
			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
				;
		}
		for (int z = 0; z < nz; z++)
			read_counter(zfd[z]);
		read_proc_stat(statfd, statbuf, sizeof statbuf);
		if (want_cputime)
			sink += now_ns(CLOCK_THREAD_CPUTIME_ID);
		if (wfd >= 0 && write(wfd, line, sizeof line - 1) < 0) {
			fprintf(stderr, "floor: write: %s\n", strerror(errno));
			return 1;
		}
		if (proc_tier) {
			read_proc_stat(memfd, statbuf, sizeof statbuf);
			if (measured_tier)
				read_tree(tree_fds, n_tree);
			else
				pids = scan_procs(pd, pdfd);
		}
		it++;
		if (iterations ? it >= iterations
			       : ((period_ns || it % 16 == 0) && now_ns(CLOCK_MONOTONIC) - w0 >= (uint64_t)(min_s * 1e9)))
			break;
	}
	uint64_t c1 = now_ns(CLOCK_PROCESS_CPUTIME_ID), w1 = now_ns(CLOCK_MONOTONIC);
	if (wfd >= 0)
		close(wfd);
	if (measured_tier)
		pids = machine_pids;
	printf("{\"tier\":\"%s\",\"write\":%d,\"cputime\":%d,\"period_s\":%g,\"zones\":%d,\"pids\":%d,\"measured\":%d,"
	       "\"iterations\":%ld,\"cpu_ns_per_iter\":%.1f,\"wall_ns_per_iter\":%.1f}\n",
	       measured_tier ? "measured" : proc_tier ? "proc" : "counter", wfd >= 0, want_cputime, period_s, nz, pids,
	       n_tree, it, (double)(c1 - c0) / (double)it,
	       (double)(w1 - w0) / (double)it);
	return 0;
}
