/* test_proctree.c — the measured set on fixture procfs trees (exact ticks),
 * then on the real /proc with forked processes (against getrusage). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"
#include "procs/proctree.h"
#include "base/util.h"

/* ---- fixture helpers ---- */

struct fxp {
	int pid, ppid;
	const char *comm;
	unsigned long long utime, stime;
	long long cutime, cstime;
	unsigned long long starttime, rss;
	unsigned long long minflt;   /* field 10; 0 unless a test sets it */
};

/* Writes root/<pid>/stat as the kernel prints it (52 fields). */
static void put_proc(const char *root, struct fxp p)
{
	char rel[64];
	int n = snprintf(rel, sizeof rel, "%d/stat", p.pid);
	assert_true(n > 0 && (size_t)n < sizeof rel);
	fx_writef(root, rel,
		  "%d (%s) S %d %d %d 0 -1 4194560 %llu 0 0 0 %llu %llu %lld %lld 20 0 1 0 %llu "
		  "1000000 %llu 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
		  p.pid, p.comm, p.ppid, p.pid, p.pid, p.minflt, p.utime, p.stime, p.cutime, p.cstime,
		  p.starttime, p.rss);
}

static void put_cmdline(const char *root, int pid, const char *raw, size_t n)
{
	char path[4096];
	int k = snprintf(path, sizeof path, "%s/%d/cmdline", root, pid);
	assert_true(k > 0 && (size_t)k < sizeof path);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(wm_write_all(fd, raw, n), 0);
	close(fd);
}

static void drop_proc(const char *root, int pid)
{
	char path[4096];
	int k = snprintf(path, sizeof path, "%s/%d", root, pid);
	assert_true(k > 0 && (size_t)k < sizeof path);
	fx_rmtree(path);
}

/* The newest table entry for pid (a reused pid has several). */
static wm_proc *find(wm_proctree *t, int pid)
{
	wm_proc *found = NULL;
	for (size_t i = 0; i < wm_proctree_count(t); i++) {
		wm_proc *p = wm_proctree_get(t, i);
		if (p->pid == pid)
			found = p;
	}
	return found;
}

static size_t count_pid(wm_proctree *t, int pid)
{
	size_t n = 0;
	for (size_t i = 0; i < wm_proctree_count(t); i++)
		if (wm_proctree_get(t, i)->pid == pid)
			n++;
	return n;
}

struct fx {
	char root[4096];
	int dfd;
	wm_proctree *t;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	assert_non_null(f);
	fx_mkdtemp(f->root, sizeof f->root);
	/* the machine-wide files sit beside the pid dirs, as in /proc */
	fx_write(f->root, "stat", "cpu  1 0 1 10 0 0 0 0 0 0\ncpu0 1 0 1 10 0 0 0 0 0 0\n");
	fx_write(f->root, "meminfo", "MemTotal: 1000 kB\n");
	fx_mkdir(f->root, "self");
	f->dfd = fx_open_root(f->root);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	wm_proctree_free(f->t);
	close(f->dfd);
	fx_rmtree(f->root);
	free(f);
	return 0;
}

/* ---- (a) fixture trees ---- */

/* A child first seen before its exec (it still looks like its parent, the
 * wattmeter CLI) is not measured yet (issue 15 item 3: it was listed as
 * "wattmeter"); added as a root once the exec is confirmed it takes its new
 * command line and comm: the recorded name is the command's from its first
 * entry (issue 6). */
static void root_added_after_exec_is_read_again(void **state)
{
	struct fx *f = *state;
	put_proc(f->root, (struct fxp){ 1, 0, "init", 500, 500, 0, 0, 1, 10 });
	put_proc(f->root, (struct fxp){ 100, 1, "wattmeter", 5, 1, 0, 0, 1000, 100 });
	put_cmdline(f->root, 100, "wattmeter\0run\0--\0sh\0", 21);
	put_proc(f->root, (struct fxp){ 101, 100, "wattmeter", 0, 0, 0, 0, 1100, 20 });
	put_cmdline(f->root, 101, "wattmeter\0run\0--\0sh\0", 21);
	assert_int_equal(wm_proctree_new(f->dfd, &f->t), 0);
	assert_int_equal(wm_proctree_add_reaper(f->t, 100), 0);
	assert_int_equal(wm_proctree_scan(f->t), 0);
	if (find(f->t, 101))
		fail_msg("the CLI's fork, before its exec, is measured as '%s'", find(f->t, 101)->cmdline);

	/* the exec: same pid and start time, new comm and command line */
	put_proc(f->root, (struct fxp){ 101, 100, "sh", 0, 0, 0, 0, 1100, 20 });
	put_cmdline(f->root, 101, "sh\0-c\0true\0", 11);
	assert_int_equal(wm_proctree_add_root(f->t, 101, 1), 0);
	assert_int_equal(count_pid(f->t, 101), 1);
	wm_proc *p = find(f->t, 101);
	assert_true(p->is_root && p->count_own);
	assert_string_equal(p->comm, "sh");
	if (strncmp(p->cmdline, "sh", 2) != 0 || strstr(p->cmdline, "wattmeter"))
		fail_msg("command line not read again after the exec: '%s'", p->cmdline);

	/* exited before it was added (a zombie's cmdline is empty): kept */
	put_cmdline(f->root, 101, "", 0);
	assert_int_equal(wm_proctree_add_root(f->t, 101, 1), 0);
	assert_int_equal(strncmp(find(f->t, 101)->cmdline, "sh", 2), 0);
}

/* Root and a child that exist at add time are baselined (their earlier CPU
 * is not ours); unrelated processes are never tracked; deltas are exact; a
 * child born later counts from zero, including what it already reaped. */
static void set_and_deltas(void **state)
{
	struct fx *f = *state;
	put_proc(f->root, (struct fxp){ 1, 0, "init", 500, 500, 0, 0, 1, 10 });
	put_proc(f->root, (struct fxp){ 100, 1, "python", 50, 10, 0, 0, 1000, 100 });
	put_proc(f->root, (struct fxp){ 101, 100, "worker", 30, 0, 0, 0, 1100, 20 });
	put_proc(f->root, (struct fxp){ 200, 1, "sshd", 70, 7, 0, 0, 300, 30 });
	put_proc(f->root, (struct fxp){ 201, 200, "bash", 5, 5, 0, 0, 400, 30 });
	put_cmdline(f->root, 100, "python\0train.py\0", 16);

	assert_int_equal(wm_proctree_new(f->dfd, &f->t), 0);
	assert_int_equal(wm_proctree_add_root(f->t, 100, 1), 0);
	assert_int_equal(wm_proctree_count(f->t), 2);
	wm_proc *root = find(f->t, 100);
	assert_non_null(root);
	assert_true(root->is_root && root->count_own && root->alive);
	assert_string_equal(root->cmdline, "python train.py");
	assert_string_equal(root->comm, "python");
	assert_int_equal(find(f->t, 101)->is_root, 0);
	assert_null(find(f->t, 200));

	/* interval 1: root +15, worker +5, a new child with 7 ticks that reaped 3 */
	put_proc(f->root, (struct fxp){ 100, 1, "python", 60, 15, 0, 0, 1000, 200 });
	put_proc(f->root, (struct fxp){ 101, 100, "worker", 35, 0, 0, 0, 1100, 20 });
	put_proc(f->root, (struct fxp){ 102, 100, "new", 4, 3, 2, 1, 2000, 5 });
	put_proc(f->root, (struct fxp){ 201, 200, "bash", 9, 9, 0, 0, 400, 30 });
	assert_int_equal(wm_proctree_scan(f->t), 0);
	assert_int_equal(wm_proctree_count(f->t), 3);
	root = find(f->t, 100);
	wm_proc *w = find(f->t, 101), *nw = find(f->t, 102);
	assert_int_equal(root->d_cpu_ticks, 15);
	assert_int_equal(root->d_tail_ticks, 0);
	assert_int_equal(w->d_cpu_ticks, 5);
	assert_int_equal(nw->d_cpu_ticks, 7);
	assert_int_equal(nw->d_tail_ticks, 3);
	assert_int_equal(nw->total_cpu_ticks, 10);
	/* all three are new to the scans (the first two were entered at add) */
	assert_true(root->is_new && w->is_new && nw->is_new);
	assert_int_equal(nw->ppid, 100);
	long pg = sysconf(_SC_PAGESIZE);
	assert_int_equal(root->rss_bytes, 200 * (uint64_t)pg);
	assert_int_equal(root->peak_rss_bytes, 200 * (uint64_t)pg);

	/* interval 2: nothing new; rss falls, peak stays */
	put_proc(f->root, (struct fxp){ 100, 1, "python", 61, 15, 0, 0, 1000, 50 });
	assert_int_equal(wm_proctree_scan(f->t), 0);
	root = find(f->t, 100);
	assert_int_equal(root->d_cpu_ticks, 1);
	assert_int_equal(root->total_cpu_ticks, 16);
	assert_false(root->is_new || find(f->t, 101)->is_new || find(f->t, 102)->is_new);
	assert_int_equal(find(f->t, 101)->d_cpu_ticks, 0);
	assert_int_equal(root->rss_bytes, 50 * (uint64_t)pg);
	assert_int_equal(root->peak_rss_bytes, 200 * (uint64_t)pg);
	assert_int_equal(wm_proctree_count(f->t), 3);
}

/* Descendants are found whatever the listing order: a grandchild whose pid
 * wrapped below its parent's, and a great-grandchild below that. */
static void descendants_any_order(void **state)
{
	struct fx *f = *state;
	put_proc(f->root, (struct fxp){ 500, 1, "root", 1, 1, 0, 0, 100, 1 });
	assert_int_equal(wm_proctree_new(f->dfd, &f->t), 0);
	assert_int_equal(wm_proctree_add_root(f->t, 500, 1), 0);
	put_proc(f->root, (struct fxp){ 900, 500, "child", 3, 0, 0, 0, 200, 1 });
	put_proc(f->root, (struct fxp){ 50, 900, "grandchild", 4, 0, 0, 0, 201, 1 });
	put_proc(f->root, (struct fxp){ 20, 50, "ggchild", 5, 0, 0, 0, 202, 1 });
	put_proc(f->root, (struct fxp){ 10, 20, "gggchild", 6, 0, 0, 0, 203, 1 });
	put_proc(f->root, (struct fxp){ 30, 1, "other", 6, 0, 0, 0, 203, 1 });
	assert_int_equal(wm_proctree_scan(f->t), 0);
	assert_int_equal(wm_proctree_count(f->t), 5);
	assert_int_equal(find(f->t, 50)->d_cpu_ticks, 4);
	assert_int_equal(find(f->t, 10)->d_cpu_ticks, 6);
	assert_null(find(f->t, 30));
}

/* A child reaped between scans: the parent's cutime rise minus what we had
 * already counted of the child is the tail; the child stays, alive=0. */
static void vanished_child_tail(void **state)
{
	struct fx *f = *state;
	put_proc(f->root, (struct fxp){ 100, 1, "sh", 10, 0, 0, 0, 1000, 1 });
	assert_int_equal(wm_proctree_new(f->dfd, &f->t), 0);
	assert_int_equal(wm_proctree_add_root(f->t, 100, 1), 0);
	put_proc(f->root, (struct fxp){ 101, 100, "make", 30, 10, 5, 0, 1500, 1 });
	assert_int_equal(wm_proctree_scan(f->t), 0);
	wm_proc *c = find(f->t, 101);
	assert_int_equal(c->total_cpu_ticks, 45);   /* from zero: 40 own + 5 reaped */

	/* the child ran 15 more ticks, then the shell reaped it: its cutime
	 * gains 40+5 (seen) + 15 (unseen) = 60 */
	drop_proc(f->root, 101);
	put_proc(f->root, (struct fxp){ 100, 1, "sh", 10, 0, 50, 10, 1000, 1 });
	assert_int_equal(wm_proctree_scan(f->t), 0);
	wm_proc *r = find(f->t, 100);
	c = find(f->t, 101);
	assert_int_equal(r->d_cpu_ticks, 0);
	assert_int_equal(r->d_tail_ticks, 15);
	assert_false(c->alive);
	assert_true(c->vanished);
	assert_int_equal(c->d_cpu_ticks, 0);
	assert_int_equal(c->cpu_ticks, 40);            /* last seen, kept */
	assert_int_equal(c->total_cpu_ticks, 45);
	assert_int_equal(r->total_cpu_ticks + c->total_cpu_ticks, 60);

	/* next scan: vanished is cleared, the entry stays */
	assert_int_equal(wm_proctree_scan(f->t), 0);
	c = find(f->t, 101);
	assert_false(c->vanished);
	assert_false(c->alive);
	assert_int_equal(wm_proctree_count(f->t), 2);
	assert_int_equal(find(f->t, 100)->d_tail_ticks, 0);
}

/* A wrapper and its worker both exit in the same interval: the worker's
 * counted CPU reached the root through the wrapper's cutime and must not be
 * counted twice. */
static void vanished_chain_not_double_counted(void **state)
{
	struct fx *f = *state;
	put_proc(f->root, (struct fxp){ 100, 1, "wattmeter", 1, 1, 0, 0, 1000, 1 });
	assert_int_equal(wm_proctree_new(f->dfd, &f->t), 0);
	assert_int_equal(wm_proctree_add_root(f->t, 100, 0), 0);
	put_proc(f->root, (struct fxp){ 101, 100, "bash", 2, 0, 0, 0, 1100, 1 });
	put_proc(f->root, (struct fxp){ 102, 101, "python", 500, 100, 0, 0, 1101, 1 });
	assert_int_equal(wm_proctree_scan(f->t), 0);
	/* bash: 2 more ticks; python: 40 more; python reaped by bash, bash by us */
	drop_proc(f->root, 101);
	drop_proc(f->root, 102);
	/* our cutime: bash 4 + bash's cutime (python 640) = 644; we also ran */
	put_proc(f->root, (struct fxp){ 100, 1, "wattmeter", 9, 9, 644, 0, 1000, 1 });
	assert_int_equal(wm_proctree_scan(f->t), 0);
	wm_proc *r = find(f->t, 100);
	assert_int_equal(r->d_cpu_ticks, 0);   /* count_own=0 */
	assert_int_equal(r->d_tail_ticks, 2 + 40);
	uint64_t sum = 0;
	for (size_t i = 0; i < wm_proctree_count(f->t); i++)
		sum += wm_proctree_get(f->t, i)->total_cpu_ticks;
	assert_int_equal(sum, 644);
}

/* Same pid, new starttime: a new process, a new entry; only tracked if its
 * parent is. The old entry keeps its history. */
static void pid_reuse(void **state)
{
	struct fx *f = *state;
	put_proc(f->root, (struct fxp){ 100, 1, "root", 0, 0, 0, 0, 1000, 1 });
	assert_int_equal(wm_proctree_new(f->dfd, &f->t), 0);
	assert_int_equal(wm_proctree_add_root(f->t, 100, 1), 0);
	put_proc(f->root, (struct fxp){ 101, 100, "a", 8, 0, 0, 0, 1500, 1 });
	assert_int_equal(wm_proctree_scan(f->t), 0);
	/* 101 exits (no reaping recorded: say, SIGCHLD ignored) and the pid
	 * comes back at once as another child of the root */
	put_proc(f->root, (struct fxp){ 101, 100, "b", 3, 0, 0, 0, 1600, 1 });
	assert_int_equal(wm_proctree_scan(f->t), 0);
	assert_int_equal(count_pid(f->t, 101), 2);
	wm_proc *old = wm_proctree_get(f->t, 1), *nw = find(f->t, 101);
	assert_int_equal(old->starttime_ticks, 1500);
	assert_false(old->alive);
	assert_true(old->vanished);
	assert_int_equal(old->total_cpu_ticks, 8);
	assert_int_equal(nw->starttime_ticks, 1600);
	assert_true(nw->alive && nw->is_new);
	assert_int_equal(nw->d_cpu_ticks, 3);
	assert_string_equal(nw->comm, "b");

	/* and again, by an unrelated process: not ours */
	put_proc(f->root, (struct fxp){ 101, 1, "c", 3, 0, 0, 0, 1700, 1 });
	assert_int_equal(wm_proctree_scan(f->t), 0);
	assert_int_equal(count_pid(f->t, 101), 2);
	assert_false(find(f->t, 101)->alive);
}

/* Garbage in an unrelated process's stat does not fail the scan; a process
 * of the set whose stat cannot be read or parsed counts as gone, not as an
 * error; a process of the set that vanishes is not an error either. */
static void malformed_and_vanished_ok(void **state)
{
	struct fx *f = *state;
	put_proc(f->root, (struct fxp){ 100, 1, "root", 0, 0, 0, 0, 1000, 1 });
	put_proc(f->root, (struct fxp){ 101, 100, "kid", 5, 0, 0, 0, 1001, 1 });
	fx_write(f->root, "300/stat", "300 (broken S 1 2 3\n");
	fx_write(f->root, "301/stat", "");
	fx_mkdir(f->root, "302");   /* no stat at all */
	fx_write(f->root, "303/stat", "999 (liar) S 100 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 5 1 1\n");
	fx_write(f->root, "12abc/stat", "not a pid dir\n");
	assert_int_equal(wm_proctree_new(f->dfd, &f->t), 0);
	assert_int_equal(wm_proctree_add_root(f->t, 100, 1), 0);
	assert_int_equal(wm_proctree_count(f->t), 2);
	assert_int_equal(wm_proctree_scan(f->t), 0);
	assert_int_equal(wm_proctree_count(f->t), 2);   /* 303 claims pid 999: ignored */

	fx_write(f->root, "101/stat", "101 (kid) S 100 1 1");   /* truncated */
	assert_int_equal(wm_proctree_scan(f->t), 0);
	assert_false(find(f->t, 101)->alive);
	/* readable again with the same starttime: the same process, revived */
	put_proc(f->root, (struct fxp){ 101, 100, "kid", 9, 0, 0, 0, 1001, 1 });
	assert_int_equal(wm_proctree_scan(f->t), 0);
	assert_int_equal(count_pid(f->t, 101), 1);
	assert_true(find(f->t, 101)->alive);
	assert_int_equal(find(f->t, 101)->d_cpu_ticks, 4);

	drop_proc(f->root, 100);
	drop_proc(f->root, 101);
	assert_int_equal(wm_proctree_scan(f->t), 0);
	assert_true(find(f->t, 100)->vanished);
	assert_true(find(f->t, 101)->vanished);
	assert_int_equal(wm_proctree_read_memory(f->t), 0);
}

/* A tracked child reparented (daemonised, ppid 1) stays measured; a root
 * that does not exist is -ESRCH; adding a tracked process as a root keeps
 * its entry. */
static void roots_and_reparenting(void **state)
{
	struct fx *f = *state;
	put_proc(f->root, (struct fxp){ 100, 1, "root", 0, 0, 0, 0, 1000, 1 });
	assert_int_equal(wm_proctree_new(f->dfd, &f->t), 0);
	assert_int_equal(wm_proctree_add_root(f->t, 4242, 1), -ESRCH);
	assert_int_equal(wm_proctree_add_root(f->t, 100, 1), 0);
	put_proc(f->root, (struct fxp){ 101, 100, "daemon", 1, 0, 0, 0, 1001, 1 });
	assert_int_equal(wm_proctree_scan(f->t), 0);
	put_proc(f->root, (struct fxp){ 101, 1, "daemon", 6, 0, 0, 0, 1001, 1 });
	put_proc(f->root, (struct fxp){ 102, 101, "dchild", 2, 0, 0, 0, 1002, 1 });
	assert_int_equal(wm_proctree_scan(f->t), 0);
	assert_true(find(f->t, 101)->alive);
	assert_int_equal(find(f->t, 101)->d_cpu_ticks, 5);
	assert_int_equal(find(f->t, 101)->ppid, 1);
	assert_non_null(find(f->t, 102));

	assert_int_equal(wm_proctree_add_root(f->t, 101, 0), 0);
	assert_int_equal(count_pid(f->t, 101), 1);
	assert_true(find(f->t, 101)->is_root);
	assert_int_equal(find(f->t, 101)->count_own, 0);
	put_proc(f->root, (struct fxp){ 101, 1, "daemon", 20, 0, 0, 0, 1001, 1 });
	assert_int_equal(wm_proctree_scan(f->t), 0);
	assert_int_equal(find(f->t, 101)->d_cpu_ticks, 0);

	/* a second root added between scans: its existing child is baselined,
	 * while a child the first root started since the last scan is not */
	put_proc(f->root, (struct fxp){ 103, 100, "late", 9, 0, 0, 0, 1003, 1 });
	put_proc(f->root, (struct fxp){ 700, 1, "other", 50, 0, 0, 0, 10, 1 });
	put_proc(f->root, (struct fxp){ 701, 700, "otherkid", 70, 0, 0, 0, 11, 1 });
	assert_int_equal(wm_proctree_add_root(f->t, 700, 1), 0);
	put_proc(f->root, (struct fxp){ 701, 700, "otherkid", 72, 0, 0, 0, 11, 1 });
	assert_int_equal(wm_proctree_scan(f->t), 0);
	assert_int_equal(find(f->t, 701)->d_cpu_ticks, 2);
	assert_int_equal(find(f->t, 700)->d_cpu_ticks, 0);
	assert_int_equal(find(f->t, 103)->d_cpu_ticks, 9);
	assert_true(find(f->t, 103)->is_new);
}

/* The memory tier: smaps_rollup where readable, have_pss untouched where not. */
static void memory_tier(void **state)
{
	struct fx *f = *state;
	put_proc(f->root, (struct fxp){ 100, 1, "root", 0, 0, 0, 0, 1000, 1 });
	put_proc(f->root, (struct fxp){ 101, 100, "kid", 0, 0, 0, 0, 1001, 1 });
	fx_write(f->root, "100/smaps_rollup", "0-1 ---p 0 00:00 0 [rollup]\nRss: 40 kB\nPss: 30 kB\n"
						"Private_Clean: 1 kB\nPrivate_Dirty: 2 kB\n");
	assert_int_equal(wm_proctree_new(f->dfd, &f->t), 0);
	assert_int_equal(wm_proctree_add_root(f->t, 100, 1), 0);
	assert_int_equal(wm_proctree_scan(f->t), 0);
	assert_int_equal(wm_proctree_read_memory(f->t), 0);
	wm_proc *r = find(f->t, 100), *k = find(f->t, 101);
	assert_true(r->have_pss);
	assert_int_equal(r->pss_bytes, 30 * 1024);
	assert_int_equal(r->uss_bytes, 3 * 1024);
	assert_false(k->have_pss);
	/* unreadable later (EACCES in real life, gone here): keep the last value */
	fx_unlink(f->root, "100/smaps_rollup");
	assert_int_equal(wm_proctree_read_memory(f->t), 0);
	assert_true(r->have_pss);
	assert_int_equal(r->pss_bytes, 30 * 1024);
}


/* The memory tier reads smaps_rollup through the process's directory, kept
 * open from its first read: a pid that died and was taken over before the
 * next scan gives no reading (the last one stays), never the newcomer's. */
static void memory_tier_never_reads_a_reused_pid(void **state)
{
	struct fx *f = *state;
	put_proc(f->root, (struct fxp){ 100, 1, "root", 0, 0, 0, 0, 1000, 1 });
	fx_write(f->root, "100/smaps_rollup", "Rss: 40 kB\nPss: 30 kB\nPrivate_Clean: 1 kB\nPrivate_Dirty: 2 kB\n");
	assert_int_equal(wm_proctree_new(f->dfd, &f->t), 0);
	assert_int_equal(wm_proctree_add_root(f->t, 100, 1), 0);
	assert_int_equal(wm_proctree_scan(f->t), 0);
	assert_int_equal(wm_proctree_read_memory(f->t), 0);
	wm_proc *r = find(f->t, 100);
	assert_int_equal(r->pss_bytes, 30 * 1024);
	/* 100 exits; another process (another starttime) takes pid 100 */
	drop_proc(f->root, 100);
	put_proc(f->root, (struct fxp){ 100, 1, "other", 0, 0, 0, 0, 5000, 1 });
	fx_write(f->root, "100/smaps_rollup", "Rss: 900 kB\nPss: 800 kB\nPrivate_Clean: 1 kB\nPrivate_Dirty: 2 kB\n");
	/* every round until the reuse rule lets one read (none saw a change):
	 * the read that happens is through the kept directory, which fails */
	for (int i = 0; i <= WM_PROCTREE_MEMORY_REUSE_ROUNDS; i++) {
		assert_int_equal(wm_proctree_read_memory(f->t), 0);
		assert_int_equal(r->pss_bytes, 30 * 1024);
		assert_int_equal(r->uss_bytes, 3 * 1024);
	}
	uint64_t read, reused;
	wm_proctree_memory_rounds(f->t, &read, &reused);
	assert_int_equal(read, 2);
	assert_int_equal(reused, WM_PROCTREE_MEMORY_REUSE_ROUNDS);
}

static void put_smaps(const char *root, int pid, unsigned pss_kb)
{
	char rel[64];
	int n = snprintf(rel, sizeof rel, "%d/smaps_rollup", pid);
	assert_true(n > 0 && (size_t)n < sizeof rel);
	fx_writef(root, rel, "Rss: 900 kB\nPss: %u kB\nPrivate_Clean: 1 kB\nPrivate_Dirty: 2 kB\n", pss_kb);
}

/* smaps_rollup is re-read (for every measured process) when something that
 * moves PSS shows in the stat the process tier reads anyway: a process's rss
 * or page faults, a process joining or leaving the set; else the last
 * figures are kept, for at most WM_PROCTREE_MEMORY_REUSE_ROUNDS rounds. The
 * fixture's smaps_rollup changes behind the tree's back: what the tree
 * reports says which rounds read it. */
static void memory_tier_rereads_when_something_moved(void **state)
{
	struct fx *f = *state;
	put_proc(f->root, (struct fxp){ 100, 1, "root", 0, 0, 0, 0, 1000, 5 });
	put_proc(f->root, (struct fxp){ 101, 100, "kid", 0, 0, 0, 0, 1001, 5 });
	put_smaps(f->root, 100, 30);
	put_smaps(f->root, 101, 10);
	assert_int_equal(wm_proctree_new(f->dfd, &f->t), 0);
	assert_int_equal(wm_proctree_add_root(f->t, 100, 1), 0);
	assert_int_equal(wm_proctree_scan(f->t), 0);
	assert_int_equal(wm_proctree_read_memory(f->t), 0);
	wm_proc *r = find(f->t, 100), *k = find(f->t, 101);
	assert_int_equal(r->pss_bytes, 30 * 1024);
	assert_int_equal(k->pss_bytes, 10 * 1024);

	/* idle, CPU spent without faulting included: the figures are kept */
	put_smaps(f->root, 100, 31);
	put_proc(f->root, (struct fxp){ 100, 1, "root", 50, 0, 0, 0, 1000, 5 });
	assert_int_equal(wm_proctree_scan(f->t), 0);
	assert_int_equal(wm_proctree_read_memory(f->t), 0);
	assert_int_equal(r->pss_bytes, 30 * 1024);

	/* the kid's rss moves: both are re-read (a sharer's PSS moves with it) */
	put_proc(f->root, (struct fxp){ 101, 100, "kid", 0, 0, 0, 0, 1001, 6 });
	put_smaps(f->root, 101, 11);
	assert_int_equal(wm_proctree_scan(f->t), 0);
	assert_int_equal(wm_proctree_read_memory(f->t), 0);
	assert_int_equal(r->pss_bytes, 31 * 1024);
	assert_int_equal(k->pss_bytes, 11 * 1024);

	/* faults alone (a copy-on-write break keeps rss) */
	put_smaps(f->root, 100, 32);
	assert_int_equal(wm_proctree_scan(f->t), 0);
	assert_int_equal(wm_proctree_read_memory(f->t), 0);
	assert_int_equal(r->pss_bytes, 31 * 1024);
	put_proc(f->root, (struct fxp){ 101, 100, "kid", 0, 0, 0, 0, 1001, 6, .minflt = 1 });
	assert_int_equal(wm_proctree_scan(f->t), 0);
	assert_int_equal(wm_proctree_read_memory(f->t), 0);
	assert_int_equal(r->pss_bytes, 32 * 1024);

	/* a process joins, with its own figures from its first round */
	put_proc(f->root, (struct fxp){ 102, 100, "new", 0, 0, 0, 0, 1002, 5 });
	put_smaps(f->root, 102, 7);
	put_smaps(f->root, 100, 33);
	assert_int_equal(wm_proctree_scan(f->t), 0);
	assert_int_equal(wm_proctree_read_memory(f->t), 0);
	assert_int_equal(find(f->t, 102)->pss_bytes, 7 * 1024);
	assert_int_equal(r->pss_bytes, 33 * 1024);
	r = find(f->t, 100);   /* the table may have moved */
	k = find(f->t, 101);

	/* ... and leaves */
	put_smaps(f->root, 100, 34);
	drop_proc(f->root, 102);
	assert_int_equal(wm_proctree_scan(f->t), 0);
	assert_int_equal(wm_proctree_read_memory(f->t), 0);
	assert_int_equal(r->pss_bytes, 34 * 1024);

	/* nothing seen at all: kept for WM_PROCTREE_MEMORY_REUSE_ROUNDS rounds,
	 * then read whatever the stat says */
	put_smaps(f->root, 100, 35);
	uint64_t read0, reused0, read1, reused1;
	wm_proctree_memory_rounds(f->t, &read0, &reused0);
	for (int i = 0; i < WM_PROCTREE_MEMORY_REUSE_ROUNDS; i++) {
		assert_int_equal(wm_proctree_scan(f->t), 0);
		assert_int_equal(wm_proctree_read_memory(f->t), 0);
		assert_int_equal(r->pss_bytes, 34 * 1024);
	}
	assert_int_equal(wm_proctree_scan(f->t), 0);
	assert_int_equal(wm_proctree_read_memory(f->t), 0);
	assert_int_equal(r->pss_bytes, 35 * 1024);
	wm_proctree_memory_rounds(f->t, &read1, &reused1);
	assert_int_equal(read1 - read0, 1);
	assert_int_equal(reused1 - reused0, WM_PROCTREE_MEMORY_REUSE_ROUNDS);
}

/* ---- (a2) scan cost: what is read, counted ---- */

struct cnt {
	uint64_t reads, opens;
};

static struct cnt counted_scan(wm_proctree *t)
{
	uint64_t r0, o0, r1, o1;
	wm_proctree_stats(t, &r0, &o0);
	assert_int_equal(wm_proctree_scan(t), 0);
	wm_proctree_stats(t, &r1, &o1);
	return (struct cnt){ r1 - r0, o1 - o0 };
}

/* A root and a child (baselined), unrelated 1, 200, 201, 202. The first
 * scan reads everything once; the fds of the tracked two are kept. */
static void steady_tree(struct fx *f)
{
	put_proc(f->root, (struct fxp){ 1, 0, "init", 1, 1, 0, 0, 1, 1 });
	put_proc(f->root, (struct fxp){ 100, 1, "root", 10, 0, 0, 0, 1000, 1 });
	put_proc(f->root, (struct fxp){ 101, 100, "kid", 20, 0, 0, 0, 1001, 1 });
	put_proc(f->root, (struct fxp){ 200, 1, "other", 5, 0, 0, 0, 500, 1 });
	put_proc(f->root, (struct fxp){ 201, 200, "otherkid", 5, 0, 0, 0, 501, 1 });
	put_proc(f->root, (struct fxp){ 202, 1, "another", 5, 0, 0, 0, 502, 1 });
	assert_int_equal(wm_proctree_new(f->dfd, &f->t), 0);
	assert_int_equal(wm_proctree_add_root(f->t, 100, 1), 0);
	struct cnt c = counted_scan(f->t);   /* full: the first after add_root */
	assert_int_equal(c.reads, 6);
	assert_int_equal(c.opens, 5);        /* the root's fd was opened by add_root */
}

/* (c) Steady state: one pread per tracked process, no openat at all, until
 * the full scan, which reads the untracked pids (only) once more. */
static void steady_state_reads_tracked_only(void **state)
{
	struct fx *f = *state;
	steady_tree(f);
	for (int i = 2; i <= WM_PROCTREE_FULL_SCAN_EVERY; i++) {
		put_proc(f->root, (struct fxp){ 101, 100, "kid", 19 + (unsigned)i, 0, 0, 0, 1001, 1 });
		struct cnt c = counted_scan(f->t);
		assert_int_equal(c.reads, 2);
		assert_int_equal(c.opens, 0);
		assert_int_equal(find(f->t, 101)->d_cpu_ticks, 1);   /* the kept fd sees rewrites */
	}
	struct cnt c = counted_scan(f->t);   /* scan N+1: full */
	assert_int_equal(c.reads, 6);
	assert_int_equal(c.opens, 4);
	c = counted_scan(f->t);
	assert_int_equal(c.reads, 2);
	assert_int_equal(c.opens, 0);
	assert_int_equal(wm_proctree_count(f->t), 2);
}

/* (a) An unrelated process whose stat turns to garbage after the first scan
 * fails nothing and is not read again: not by the next scans (known), and
 * after the full scan read it once, not again either. */
static void garbage_untracked_not_reread(void **state)
{
	struct fx *f = *state;
	steady_tree(f);
	fx_write(f->root, "200/stat", "200 (oth");
	fx_chmod(f->root, "202/stat", 0);   /* unreadable (unless we are root) */
	for (int i = 2; i <= WM_PROCTREE_FULL_SCAN_EVERY; i++) {
		struct cnt c = counted_scan(f->t);
		assert_int_equal(c.reads, 2);
		assert_int_equal(c.opens, 0);
	}
	struct cnt c = counted_scan(f->t);   /* full */
	assert_true(c.opens == 4);
	for (int i = 0; i < 3; i++) {
		c = counted_scan(f->t);
		assert_int_equal(c.reads, 2);
		assert_int_equal(c.opens, 0);
	}
	assert_int_equal(wm_proctree_count(f->t), 2);
	assert_true(find(f->t, 100)->alive && find(f->t, 101)->alive);
}

/* (b) A child born between two steady-state scans is read (one openat, the
 * only one) and joins the set; its fd is kept from the next scan on. A new
 * unrelated process is read once and then known. */
static void new_child_found(void **state)
{
	struct fx *f = *state;
	steady_tree(f);
	put_proc(f->root, (struct fxp){ 102, 101, "grandkid", 7, 0, 0, 0, 1100, 1 });
	put_proc(f->root, (struct fxp){ 300, 202, "stranger", 7, 0, 0, 0, 1101, 1 });
	struct cnt c = counted_scan(f->t);
	assert_int_equal(c.opens, 2);
	assert_int_equal(c.reads, 4);
	wm_proc *g = find(f->t, 102);
	assert_non_null(g);
	assert_true(g->is_new && g->alive);
	assert_int_equal(g->d_cpu_ticks, 7);
	assert_null(find(f->t, 300));
	c = counted_scan(f->t);   /* the grandchild's fd is opened and kept */
	assert_int_equal(c.opens, 1);
	assert_int_equal(c.reads, 3);
	c = counted_scan(f->t);
	assert_int_equal(c.opens, 0);
	assert_int_equal(c.reads, 3);
	drop_proc(f->root, 102);   /* exits: its kept fd is closed */
	c = counted_scan(f->t);
	assert_int_equal(c.reads, 2);
	assert_true(find(f->t, 102)->vanished);
}

/* (d) A known unrelated pid taken over by a child of ours between two scans
 * (its directory rewritten in place, as a reused pid whose procfs inode
 * number happened to match): steady scans cannot see it, the full scan
 * every WM_PROCTREE_FULL_SCAN_EVERY scans finds it. */
static void full_scan_finds_reused_known_pid(void **state)
{
	struct fx *f = *state;
	steady_tree(f);
	put_proc(f->root, (struct fxp){ 202, 100, "sneaky", 30, 0, 0, 0, 2000, 1 });
	int found_at = 0;
	for (int i = 2; i <= WM_PROCTREE_FULL_SCAN_EVERY + 1 && !found_at; i++) {
		assert_int_equal(wm_proctree_scan(f->t), 0);
		if (find(f->t, 202))
			found_at = i;
	}
	assert_int_equal(found_at, WM_PROCTREE_FULL_SCAN_EVERY + 1);
	wm_proc *p = find(f->t, 202);
	assert_true(p->alive && p->is_new);
	assert_int_equal(p->starttime_ticks, 2000);
	assert_int_equal(p->d_cpu_ticks, 30);   /* born after the start: from zero */
}

/* A known pid whose directory is a new one (procfs gives a new process's
 * directory a new inode number) is read again at once, no full scan needed. */
static void reused_pid_new_inode_found_at_once(void **state)
{
	struct fx *f = *state;
	steady_tree(f);
	/* made beside the old one first, so the inode numbers differ */
	put_proc(f->root, (struct fxp){ 202, 100, "reborn", 4, 0, 0, 0, 2000, 1 });
	fx_mkdir(f->root, "x202");
	char from[4200], to[4200];
	snprintf(from, sizeof from, "%s/202/stat", f->root);
	snprintf(to, sizeof to, "%s/x202/stat", f->root);
	assert_int_equal(rename(from, to), 0);
	drop_proc(f->root, 202);
	snprintf(from, sizeof from, "%s/x202", f->root);
	snprintf(to, sizeof to, "%s/202", f->root);
	assert_int_equal(rename(from, to), 0);
	struct cnt c = counted_scan(f->t);
	assert_int_equal(c.opens, 1);
	wm_proc *p = find(f->t, 202);
	assert_non_null(p);
	assert_true(p->alive && p->is_new);
	assert_int_equal(p->d_cpu_ticks, 4);
}

/* Kept fds are bounded by half of RLIMIT_NOFILE: beyond it, tracked
 * processes are read with openat + pread + close, with the same results. */
static void kept_fds_bounded(void **state)
{
	struct fx *f = *state;
	struct rlimit old, low;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = 64;   /* at most 32 kept */
	if (old.rlim_cur < 64)
		skip();
	put_proc(f->root, (struct fxp){ 100, 1, "root", 0, 0, 0, 0, 1000, 1 });
	for (int i = 0; i < 40; i++)
		put_proc(f->root, (struct fxp){ 1000 + i, 100, "w", 1, 0, 0, 0, 2000, 1 });
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	int rc = wm_proctree_new(f->dfd, &f->t);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(rc, 0);
	assert_int_equal(wm_proctree_add_root(f->t, 100, 1), 0);
	assert_int_equal(wm_proctree_count(f->t), 41);
	assert_int_equal(wm_proctree_scan(f->t), 0);
	for (int s = 0; s < 3; s++) {
		for (int i = 0; i < 40; i++)
			put_proc(f->root, (struct fxp){ 1000 + i, 100, "w", 2 + (unsigned)s, 0, 0, 0, 2000, 1 });
		struct cnt c = counted_scan(f->t);
		assert_int_equal(c.reads, 41);
		assert_int_equal(c.opens, 41 - 32);
		for (int i = 0; i < 40; i++) {
			wm_proc *p = find(f->t, 1000 + i);
			assert_true(p->alive);
			assert_int_equal(p->d_cpu_ticks, 1);
		}
	}
	for (int i = 0; i < 40; i++)
		drop_proc(f->root, 1000 + i);
	assert_int_equal(wm_proctree_scan(f->t), 0);
	for (int i = 0; i < 40; i++)
		assert_true(find(f->t, 1000 + i)->vanished);
}

/* ---- (b) real processes ---- */

static uint64_t rusage_children_ticks(void)
{
	struct rusage ru;
	assert_int_equal(getrusage(RUSAGE_CHILDREN, &ru), 0);
	long hz = sysconf(_SC_CLK_TCK);
	uint64_t us = (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
		      (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
	return us * (uint64_t)hz / 1000000u;
}

static void burn_cpu(double seconds)
{
	struct timespec ts;
	volatile uint64_t x = 0;
	do {
		for (int i = 0; i < 100000; i++)
			x += (uint64_t)i;
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	} while ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9 < seconds);
	(void)x;
}

static void read_byte(int fd)
{
	char c;
	ssize_t n;
	do
		n = read(fd, &c, 1);
	while (n < 0 && errno == EINTR);
	assert_int_equal(n, 1);
}

/* We (count_own=0, as the CLI) fork a child that forks a grandchild burning
 * ~0.3 s; the child burns ~0.1 s after reaping it. The tree sees both while
 * they live, and what it counts for the set equals what the kernel reports
 * for our reaped children. */
static void real_fork_tree(void **state)
{
	(void)state;
	int dfd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		skip();
	wm_proctree *t = NULL;
	assert_int_equal(wm_proctree_new(dfd, &t), 0);
	assert_int_equal(wm_proctree_add_root(t, getpid(), 0), 0);
	assert_int_equal(wm_proctree_count(t), 1);
	uint64_t before = rusage_children_ticks();

	int ready[2], go[2];
	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	assert_int_equal(pipe2(go, O_CLOEXEC), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		pid_t gc = fork();
		if (gc < 0)
			_exit(1);
		if (gc == 0) {
			char c = 'r';
			if (write(ready[1], &c, 1) != 1)
				_exit(1);
			if (read(go[0], &c, 1) != 1)
				_exit(1);
			burn_cpu(0.3);
			_exit(0);
		}
		int st;
		while (waitpid(gc, &st, 0) < 0 && errno == EINTR)
			;
		burn_cpu(0.1);
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	read_byte(ready[0]);   /* the grandchild runs */

	assert_int_equal(wm_proctree_scan(t), 0);
	wm_proc *c = find(t, child);
	assert_non_null(c);
	assert_true(c->alive && c->is_new);
	assert_int_equal(c->ppid, getpid());
	wm_proc *g = NULL;
	for (size_t i = 0; i < wm_proctree_count(t); i++)
		if (wm_proctree_get(t, i)->ppid == child)
			g = wm_proctree_get(t, i);
	assert_non_null(g);
	assert_true(g->alive);
	int gpid = g->pid;

	assert_int_equal(write(go[1], "g", 1), 1);
	int st;
	assert_int_equal(waitpid(child, &st, 0), child);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(wm_proctree_scan(t), 0);
	close(ready[0]);
	close(go[1]);

	uint64_t kernel = rusage_children_ticks() - before;
	uint64_t sum = 0;
	for (size_t i = 0; i < wm_proctree_count(t); i++)
		sum += wm_proctree_get(t, i)->total_cpu_ticks;
	assert_true(find(t, child)->vanished);
	assert_true(find(t, gpid)->vanished);
	print_message("set %llu ticks, kernel (RUSAGE_CHILDREN) %llu ticks\n",
		      (unsigned long long)sum, (unsigned long long)kernel);
	long hz = sysconf(_SC_CLK_TCK);
	assert_true(kernel >= (uint64_t)(0.35 * (double)hz));
	/* tick rounding in /proc (truncation per field) vs microseconds in rusage */
	uint64_t diff = sum > kernel ? sum - kernel : kernel - sum;
	assert_true(diff <= 3);

	/* Scan cost on this machine's real /proc, for the record. */
	uint64_t t0 = wm_now_mono_ns();
	const int rounds = 50;
	for (int i = 0; i < rounds; i++)
		assert_int_equal(wm_proctree_scan(t), 0);
	uint64_t dt = wm_now_mono_ns() - t0;
	int n_pids = 0;
	DIR *d = opendir("/proc");
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (e->d_name[0] >= '1' && e->d_name[0] <= '9')
				n_pids++;
		closedir(d);
	}
	print_message("scan: %.1f us per scan, %d pids in /proc\n",
		      (double)dt / rounds / 1000.0, n_pids);

	wm_proctree_free(t);
	close(dfd);
}

/* On the real /proc the steady-state scans skip or narrow the listing (see
 * proctree.c): a child forked between scans, and its own child, are still
 * found, and their exits seen through the kept fds. */
static void real_fork_after_quiet_scans(void **state)
{
	(void)state;
	int dfd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		skip();
	wm_proctree *t = NULL;
	assert_int_equal(wm_proctree_new(dfd, &t), 0);
	assert_int_equal(wm_proctree_add_root(t, getpid(), 0), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(wm_proctree_scan(t), 0);

	int ready[2], go[2];
	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	assert_int_equal(pipe2(go, O_CLOEXEC), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		char c;
		if (read(go[0], &c, 1) != 1)   /* wait for the first scan */
			_exit(1);
		pid_t gc = fork();
		if (gc < 0)
			_exit(1);
		if (gc == 0) {
			c = 'g';
			if (write(ready[1], &c, 1) != 1)
				_exit(1);
			if (read(go[0], &c, 1) != 1)
				_exit(1);
			_exit(0);
		}
		if (read(go[0], &c, 1) != 1)
			_exit(1);
		int st;
		while (waitpid(gc, &st, 0) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	assert_int_equal(wm_proctree_scan(t), 0);
	assert_non_null(find(t, child));
	assert_true(find(t, child)->alive);
	for (int i = 0; i < 3; i++)
		assert_int_equal(wm_proctree_scan(t), 0);
	assert_true(find(t, child)->alive);

	assert_int_equal(write(go[1], "1", 1), 1);
	read_byte(ready[0]);   /* the grandchild exists */
	assert_int_equal(wm_proctree_scan(t), 0);
	wm_proc *g = NULL;
	for (size_t i = 0; i < wm_proctree_count(t); i++)
		if (wm_proctree_get(t, i)->ppid == child)
			g = wm_proctree_get(t, i);
	assert_non_null(g);
	assert_true(g->alive && g->is_new);
	int gpid = g->pid;

	assert_int_equal(write(go[1], "22", 2), 2);   /* both exit */
	int st;
	assert_int_equal(waitpid(child, &st, 0), child);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(wm_proctree_scan(t), 0);
	assert_true(find(t, child)->vanished);
	assert_true(find(t, gpid)->vanished);
	assert_int_equal(wm_proctree_scan(t), 0);
	assert_false(find(t, child)->alive);
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
	wm_proctree_free(t);
	close(dfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(set_and_deltas, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(root_added_after_exec_is_read_again, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(descendants_any_order, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(vanished_child_tail, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(vanished_chain_not_double_counted, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(pid_reuse, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(malformed_and_vanished_ok, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(roots_and_reparenting, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(memory_tier, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(memory_tier_never_reads_a_reused_pid, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(memory_tier_rereads_when_something_moved, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(steady_state_reads_tracked_only, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(garbage_untracked_not_reread, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(new_child_found, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(full_scan_finds_reused_known_pid, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(reused_pid_new_inode_found_at_once, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(kept_fds_bounded, fx_setup, fx_teardown),
		cmocka_unit_test(real_fork_tree),
		cmocka_unit_test(real_fork_after_quiet_scans),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
