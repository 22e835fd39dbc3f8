/* test_proctree_diff.c — child-list discovery against the full scan, side by
 * side, over churning process trees in a private PID namespace.
 *
 * Specification: on the same procfs, at the same quiet instant, a tree that
 * follows the kernel's child lists (WM_DISCOVERY_CHILD_LISTS) and one that
 * lists the procfs root (WM_DISCOVERY_SCAN) hold the same measured set: the
 * same alive (pid, starttime) pairs, the same ones vanished. Between scans
 * the trees churn: forks, double forks (the middle process exits, the
 * grandchild is orphaned), fork + exec, kills, bursts of short-lived
 * processes that exit between scans, and pids reused (the namespace's
 * pid_max set to 400, so allocation wraps within 301..399 every hundred
 * forks and takes pids that measured processes held). Two shapes:
 *   - "run": the measuring process is a child subreaper and a root with
 *     count_own=0, as `wattmeter run` is: orphans come back to it and stay
 *     measured. Independent truth there: every process of the namespace but
 *     its init is ours, so the set must be exactly the namespace's processes
 *     (read from the namespace's own /proc listing, by this test);
 *   - "--pid": the root is a process whose parent we are, but we are no
 *     subreaper: orphans go to the namespace's init, unmeasured, for both.
 * The namespace (unshare -p -f --mount-proc, done by hand: CLONE_NEWPID,
 * CLONE_NEWNS and a procfs mounted on a private directory) has its own
 * pids, so the reuse is exact and nothing else on the machine churns it.
 * Skipped where namespaces cannot be made (not root) or there are no child
 * lists.
 *
 * The work runs in forked processes; failures there print and exit non-zero
 * (cmocka's asserts do not cross a fork), and the cmocka test checks the
 * exit status. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "procs/proctree.h"
#include "base/util.h"

#define CHECK(c)                                                                            \
	do {                                                                                \
		if (!(c)) {                                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			_exit(1);                                                           \
		}                                                                           \
	} while (0)

#define EXIT_SKIP 77

/* ---- the churning processes ------------------------------------------------------- */

/* A message on the shared pipe: a process that exists now. */
struct msg {
	char kind;   /* 'S' sleeper, 'X' middle of a double fork (exits), 'E' about to exec */
	int pid;
};

static int g_msg_fd = -1;
static volatile sig_atomic_t g_act;

static void on_signal(int sig)
{
	g_act = sig;
}

static void say(char kind)
{
	struct msg m = {.kind = kind, .pid = getpid()};
	if (write(g_msg_fd, &m, sizeof m) != (ssize_t)sizeof m)
		_exit(3);
}

static void sleeper(void);

static pid_t fork_sleeper(void)
{
	pid_t p = fork();
	if (p == 0)
		sleeper();
	return p;
}

/* Sleeps until told to act: SIGUSR1 forks a sleeper, SIGUSR2 a double fork
 * (a child that forks a sleeper and exits), SIGHUP a child that execs
 * sleep. Reaps its children. Never returns. */
static void sleeper(void)
{
	g_act = 0;
	say('S');
	/* blocked but while suspended: no signal is lost between a check of
	 * g_act and the wait */
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &old);
	sigset_t waitmask = old;
	sigdelset(&waitmask, SIGUSR1);
	sigdelset(&waitmask, SIGUSR2);
	sigdelset(&waitmask, SIGHUP);
	sigdelset(&waitmask, SIGCHLD);
	for (;;) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		int act = g_act;
		g_act = 0;
		if (act == SIGUSR1) {
			(void)fork_sleeper();
		} else if (act == SIGUSR2) {
			pid_t x = fork();
			if (x == 0) {
				say('X');
				(void)fork_sleeper();
				_exit(0);
			}
		} else if (act == SIGHUP) {
			pid_t e = fork();
			if (e == 0) {
				sigprocmask(SIG_SETMASK, &waitmask, NULL);
				say('E');
				execl("/bin/sleep", "sleep", "1000", (char *)NULL);
				_exit(4);
			}
		}
		if (!act)
			sigsuspend(&waitmask);
	}
}

/* ---- what the driver knows ------------------------------------------------------ */

enum { K_SLEEPER, K_EXEC, K_GONE };

struct known_proc {
	int pid;
	int kind;
};

struct driver {
	int proc_fd;                  /* the namespace's procfs */
	struct known_proc p[4096];
	size_t n;
	int msg_rd;
	uint64_t rng;
	unsigned reused, orphaned, execs, kills;
};

static unsigned rnd(struct driver *d, unsigned n)
{
	d->rng = d->rng * 6364136223846793005ull + 1442695040888963407ull;
	return (unsigned)((d->rng >> 33) % n);
}

/* One message, within 10 s. */
static struct msg next_msg(struct driver *d)
{
	struct msg m;
	for (int i = 0; i < 10000; i++) {
		ssize_t r = read(d->msg_rd, &m, sizeof m);
		if (r == (ssize_t)sizeof m)
			return m;
		CHECK(r < 0 && errno == EAGAIN);
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	CHECK(!"no message from the churning processes");
	return m;
}

static void note(struct driver *d, int pid, int kind)
{
	CHECK(d->n < sizeof d->p / sizeof d->p[0]);
	for (size_t i = 0; i < d->n; i++)
		if (d->p[i].pid == pid && d->p[i].kind == K_GONE) {
			d->reused++;   /* a measured process's pid, taken again */
			break;
		}
	d->p[d->n++] = (struct known_proc){.pid = pid, .kind = kind};
}

/* Until <proc>/<pid> is gone (reaped by whoever is its parent; we reap ours). */
static void wait_gone(struct driver *d, int pid)
{
	char path[32];
	(void)snprintf(path, sizeof path, "%d", pid);
	for (int i = 0; i < 10000; i++) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		struct stat st;
		if (fstatat(d->proc_fd, path, &st, 0) < 0 && errno == ENOENT)
			return;
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	CHECK(!"a killed process did not go away");
}

/* Until process pid sleeps in sigsuspend / pause (state S): it then acts on
 * nothing until signalled, and has reaped the children that exited. */
static void wait_settled(struct driver *d, int pid)
{
	for (int i = 0; i < 10000; i++) {
		wm_pid_stat st;
		if (wm_read_pid_stat(d->proc_fd, pid, &st) != 0 || st.state == 'S')
			return;
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
}

static int pick(struct driver *d, int kind)
{
	size_t alive = 0;
	for (size_t i = 0; i < d->n; i++)
		if (d->p[i].kind == kind)
			alive++;
	if (!alive)
		return -1;
	unsigned k = rnd(d, (unsigned)alive);
	for (size_t i = 0; i < d->n; i++)
		if (d->p[i].kind == kind && k-- == 0)
			return (int)i;
	return -1;
}

static void settle_all(struct driver *d)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->p[i].kind != K_GONE)
			wait_settled(d, d->p[i].pid);
}

/* Short-lived children of ours, exited and reaped before the next scan:
 * they move the namespace's pids on (to wrap and reuse them) and, in the
 * "run" shape, reach the set only as our tail. */
static void burst(int n)
{
	for (int i = 0; i < n; i++) {
		pid_t p = fork();
		CHECK(p >= 0);
		if (p == 0)
			_exit(0);
		CHECK(waitpid(p, NULL, 0) == p);
	}
}

/* One churn action. */
static void churn(struct driver *d)
{
	int s = pick(d, K_SLEEPER);
	CHECK(s >= 0);
	unsigned a = rnd(d, 5);
	if (a == 0) {
		CHECK(kill(d->p[s].pid, SIGUSR1) == 0);
		note(d, next_msg(d).pid, K_SLEEPER);
	} else if (a == 1) {
		CHECK(kill(d->p[s].pid, SIGUSR2) == 0);
		struct msg x = next_msg(d), y = next_msg(d);
		if (x.kind != 'X') {
			struct msg t = x;
			x = y;
			y = t;
		}
		CHECK(x.kind == 'X' && y.kind == 'S');
		note(d, y.pid, K_SLEEPER);
		wait_gone(d, x.pid);   /* the middle exited and was reaped: y is an orphan */
		d->orphaned++;
	} else if (a == 2) {
		CHECK(kill(d->p[s].pid, SIGHUP) == 0);
		struct msg e = next_msg(d);
		CHECK(e.kind == 'E');
		note(d, e.pid, K_EXEC);
		d->execs++;
		/* until the exec is done (comm "sleep") */
		for (int i = 0; i < 10000; i++) {
			wm_pid_stat st;
			if (wm_read_pid_stat(d->proc_fd, e.pid, &st) != 0 || !strcmp(st.comm, "sleep"))
				break;
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
		}
	} else {
		/* kill one (keep at least two sleepers) */
		int v = pick(d, rnd(d, 3) == 0 ? K_EXEC : K_SLEEPER);
		size_t sleepers = 0;
		for (size_t i = 0; i < d->n; i++)
			sleepers += d->p[i].kind == K_SLEEPER;
		if (v < 0 || (d->p[v].kind == K_SLEEPER && sleepers <= 2))
			return;
		int pid = d->p[v].pid;
		CHECK(kill(pid, SIGKILL) == 0);
		d->p[v].kind = K_GONE;
		d->kills++;
		wait_gone(d, pid);
	}
}

/* ---- the comparison ------------------------------------------------------------- */

struct pair {
	int pid;
	uint64_t start;
};

static int cmp_pair(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	if (x->pid != y->pid)
		return (x->pid > y->pid) - (x->pid < y->pid);
	return (x->start > y->start) - (x->start < y->start);
}

/* The alive (want_alive=1) or just-vanished (0) entries, sorted. */
static size_t set_of(wm_proctree *t, int want_alive, struct pair *out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < wm_proctree_count(t); i++) {
		wm_proc *p = wm_proctree_get(t, i);
		if (want_alive ? p->alive : p->vanished) {
			CHECK(n < max);
			out[n++] = (struct pair){p->pid, p->starttime_ticks};
		}
	}
	qsort(out, n, sizeof *out, cmp_pair);
	return n;
}

static void same_sets(wm_proctree *a, wm_proctree *b, int round)
{
	static struct pair x[4096], y[4096];
	for (int alive = 1; alive >= 0; alive--) {
		size_t nx = set_of(a, alive, x, 4096), ny = set_of(b, alive, y, 4096);
		int same = nx == ny && (nx == 0 || memcmp(x, y, nx * sizeof *x) == 0);
		if (!same) {
			fprintf(stderr, "round %d: %s sets differ: child lists %zu, scan %zu\n", round,
				alive ? "alive" : "vanished", nx, ny);
			for (size_t i = 0; i < nx; i++)
				fprintf(stderr, "  lists %d/%llu\n", x[i].pid, (unsigned long long)x[i].start);
			for (size_t i = 0; i < ny; i++)
				fprintf(stderr, "  scan  %d/%llu\n", y[i].pid, (unsigned long long)y[i].start);
		}
		CHECK(same);
	}
}

/* "run" shape only: the namespace's processes but init, from its listing. */
static void is_whole_namespace(struct driver *d, wm_proctree *a)
{
	static struct pair x[4096], y[4096];
	size_t nx = set_of(a, 1, x, 4096), ny = 0;
	DIR *dir = fdopendir(openat(d->proc_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	CHECK(dir);
	struct dirent *e;
	while ((e = readdir(dir))) {
		int pid = atoi(e->d_name);
		wm_pid_stat st;
		if (pid <= 1 || wm_read_pid_stat(d->proc_fd, pid, &st) != 0)
			continue;
		CHECK(ny < 4096);
		y[ny++] = (struct pair){pid, st.starttime_ticks};
	}
	closedir(dir);
	qsort(y, ny, sizeof *y, cmp_pair);
	if (nx != ny || memcmp(x, y, nx * sizeof *x) != 0)
		fprintf(stderr, "measured %zu, namespace %zu\n", nx, ny);
	CHECK(nx == ny && memcmp(x, y, nx * sizeof *x) == 0);
}

/* ---- the driver (pid 2 of the namespace) ----------------------------------------- */

static int driver_main(int proc_fd, int shape_run, int rounds)
{
	static struct driver d;
	memset(&d, 0, sizeof d);
	d.proc_fd = proc_fd;
	d.rng = shape_run ? 42 : 4242;
	int fds[2];
	CHECK(pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
	d.msg_rd = fds[0];
	g_msg_fd = fds[1];
	struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0 && sigaction(SIGUSR2, &sa, NULL) == 0 &&
	      sigaction(SIGHUP, &sa, NULL) == 0 && sigaction(SIGCHLD, &sa, NULL) == 0);
	/* the pids in the namespace's files are the namespace's */
	int self = getpid();
	if (shape_run)
		CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);

	wm_proctree *a = NULL, *b = NULL;
	CHECK(wm_proctree_new(proc_fd, &a) == 0 && wm_proctree_new(proc_fd, &b) == 0);
	if (wm_proctree_set_discovery(a, WM_DISCOVERY_CHILD_LISTS) != 0)
		return EXIT_SKIP;
	CHECK(wm_proctree_set_discovery(b, WM_DISCOVERY_SCAN) == 0);
	const char *why = "";
	CHECK(wm_proctree_discovery(a, &why) == WM_DISCOVERY_CHILD_LISTS);
	CHECK(wm_proctree_discovery(b, &why) == WM_DISCOVERY_SCAN);

	pid_t root;
	if (shape_run) {
		root = self;   /* as the CLI: a root counting only its tail */
		for (int i = 0; i < 3; i++) {
			CHECK(fork_sleeper() > 0);
			note(&d, next_msg(&d).pid, K_SLEEPER);
		}
	} else {
		root = fork_sleeper();
		CHECK(root > 0);
		note(&d, next_msg(&d).pid, K_SLEEPER);
		for (int i = 0; i < 2; i++) {
			CHECK(kill(root, SIGUSR1) == 0);
			note(&d, next_msg(&d).pid, K_SLEEPER);
		}
	}
	settle_all(&d);
	CHECK(wm_proctree_add_root(a, root, !shape_run) == 0);
	CHECK(wm_proctree_add_root(b, root, !shape_run) == 0);
	same_sets(a, b, -1);

	for (int r = 0; r < rounds; r++) {
		unsigned k = 1 + rnd(&d, 3);
		/* Under 99 new pids a round (at most 3 x (19 + 2)): the scan's
		 * shortcut (proctree.c, COLLECT_RANGE) tells the pids allocated
		 * since the last scan from loadavg's last pid, which cannot show
		 * a cursor gone round the whole pid space; the scan catches that
		 * only at its next full scan, the child lists at once. */
		for (unsigned i = 0; i < k; i++) {
			burst((int)rnd(&d, 20));
			churn(&d);
		}
		settle_all(&d);
		CHECK(wm_proctree_scan(a) == 0);
		CHECK(wm_proctree_scan(b) == 0);
		same_sets(a, b, r);
		if (shape_run)
			is_whole_namespace(&d, a);
		/* exited ones forgotten alike */
		(void)wm_proctree_forget_exited(a, NULL, NULL);
		(void)wm_proctree_forget_exited(b, NULL, NULL);
	}
	uint64_t ca = 0, cb = 0;
	wm_proctree_child_reads(a, &ca);
	wm_proctree_child_reads(b, &cb);
	CHECK(ca > 0 && cb == 0);
	fprintf(stderr, "%s shape: %d rounds, %zu processes made, %u kills, %u pids reused, %u orphans, %u execs, "
		"%zu measured at the end; %llu child-list reads\n", shape_run ? "run" : "--pid", rounds, d.n,
		d.kills, d.reused, d.orphaned, d.execs, wm_proctree_count(a), (unsigned long long)ca);
	CHECK(d.reused > 0 && d.orphaned > 0 && d.execs > 0);
	wm_proctree_free(a);
	wm_proctree_free(b);
	return 0;
}

/* Reads per scan: a root and two children measured, 200 unrelated sleepers
 * beside them and 5 more each round. The child-list tree reads the three
 * stat files through its kept fds and opens nothing; the scan opens the
 * unrelated newcomers' stat files to learn their parents. Both hold the
 * same three. */
static int reads_main(int proc_fd)
{
	static struct driver d;
	memset(&d, 0, sizeof d);
	d.proc_fd = proc_fd;
	int fds[2];
	CHECK(pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
	d.msg_rd = fds[0];
	g_msg_fd = fds[1];
	struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0 && sigaction(SIGCHLD, &sa, NULL) == 0);
	if (!wm_proctree_children_usable(proc_fd))
		return EXIT_SKIP;
	pid_t root = fork_sleeper();
	CHECK(root > 0);
	note(&d, next_msg(&d).pid, K_SLEEPER);
	for (int i = 0; i < 2; i++) {
		CHECK(kill(root, SIGUSR1) == 0);
		note(&d, next_msg(&d).pid, K_SLEEPER);
	}
	for (int i = 0; i < 200; i++) {
		CHECK(fork_sleeper() > 0);
		note(&d, next_msg(&d).pid, K_SLEEPER);
	}
	settle_all(&d);
	/* still usable with our own list longer than the probe's buffer */
	CHECK(wm_proctree_children_usable(proc_fd));
	wm_proctree *a = NULL, *b = NULL;
	CHECK(wm_proctree_new(proc_fd, &a) == 0 && wm_proctree_new(proc_fd, &b) == 0);
	CHECK(wm_proctree_set_discovery(a, WM_DISCOVERY_CHILD_LISTS) == 0);
	CHECK(wm_proctree_set_discovery(b, WM_DISCOVERY_SCAN) == 0);
	CHECK(wm_proctree_add_root(a, root, 1) == 0 && wm_proctree_add_root(b, root, 1) == 0);
	for (int i = 0; i < 2; i++)
		CHECK(wm_proctree_scan(a) == 0 && wm_proctree_scan(b) == 0);
	for (int r = 0; r < 5; r++) {
		for (int i = 0; i < 5; i++) {
			CHECK(fork_sleeper() > 0);
			note(&d, next_msg(&d).pid, K_SLEEPER);
		}
		settle_all(&d);
		uint64_t ra0, oa0, rb0, ob0, ra1, oa1, rb1, ob1, ca0, ca1;
		wm_proctree_stats(a, &ra0, &oa0);
		wm_proctree_stats(b, &rb0, &ob0);
		wm_proctree_child_reads(a, &ca0);
		CHECK(wm_proctree_scan(a) == 0 && wm_proctree_scan(b) == 0);
		wm_proctree_stats(a, &ra1, &oa1);
		wm_proctree_stats(b, &rb1, &ob1);
		wm_proctree_child_reads(a, &ca1);
		same_sets(a, b, r);
		CHECK(wm_proctree_count(a) == 3);
		fprintf(stderr, "round %d: child lists %llu stat reads, %llu opens, %llu list reads; "
			"scan %llu stat reads, %llu opens\n", r, (unsigned long long)(ra1 - ra0),
			(unsigned long long)(oa1 - oa0), (unsigned long long)(ca1 - ca0),
			(unsigned long long)(rb1 - rb0), (unsigned long long)(ob1 - ob0));
		CHECK(ra1 - ra0 == 3 && oa1 - oa0 == 0 && ca1 - ca0 == 3);
		CHECK(ob1 - ob0 >= 5);
	}
	wm_proctree_free(a);
	wm_proctree_free(b);
	return 0;
}

/* Threads: a child forked by a thread other than the main one is in that
 * thread's list only. The driver (a root, as the CLI) forks from a second
 * thread, the thread exits (its child moves to the main thread's list), a
 * third thread forks again; both trees see every child each time, and the
 * child-list tree reads the threads' lists through kept fds. */
struct fork_job {
	struct driver *d;
	int park_fd;   /* >= 0: stay alive, reading it, after the fork */
	int done_fd;   /* written once the child is noted */
};

static void *fork_from_thread(void *arg)
{
	struct fork_job *j = arg;
	pid_t p = fork_sleeper();
	CHECK(p > 0);
	note(j->d, next_msg(j->d).pid, K_SLEEPER);
	if (j->park_fd >= 0) {
		CHECK(write(j->done_fd, "d", 1) == 1);
		char c;
		while (read(j->park_fd, &c, 1) < 0 && errno == EINTR)
			;
	}
	return NULL;
}

static void *park(void *arg)
{
	int fd = *(int *)arg;
	char c;
	while (read(fd, &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

static int threads_main(int proc_fd)
{
	static struct driver d;
	memset(&d, 0, sizeof d);
	d.proc_fd = proc_fd;
	int fds[2], gate[2];
	CHECK(pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0 && pipe2(gate, O_CLOEXEC) == 0);
	d.msg_rd = fds[0];
	g_msg_fd = fds[1];
	struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0 && sigaction(SIGCHLD, &sa, NULL) == 0);
	if (!wm_proctree_children_usable(proc_fd))
		return EXIT_SKIP;
	CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
	wm_proctree *a = NULL, *b = NULL;
	CHECK(wm_proctree_new(proc_fd, &a) == 0 && wm_proctree_new(proc_fd, &b) == 0);
	CHECK(wm_proctree_set_discovery(a, WM_DISCOVERY_CHILD_LISTS) == 0);
	CHECK(wm_proctree_set_discovery(b, WM_DISCOVERY_SCAN) == 0);
	CHECK(wm_proctree_add_root(a, getpid(), 0) == 0 && wm_proctree_add_root(b, getpid(), 0) == 0);
	/* parked threads: the process stays multi-threaded throughout */
	pthread_t parked[3];
	for (int i = 0; i < 3; i++)
		CHECK(pthread_create(&parked[i], NULL, park, &gate[0]) == 0);
	struct fork_job job = {.d = &d, .park_fd = -1, .done_fd = -1};
	for (int r = 0; r < 4; r++) {
		pthread_t th;
		job.park_fd = -1;
		CHECK(pthread_create(&th, NULL, fork_from_thread, &job) == 0);
		CHECK(pthread_join(th, NULL) == 0);   /* the forking thread is gone */
		settle_all(&d);
		CHECK(wm_proctree_scan(a) == 0 && wm_proctree_scan(b) == 0);
		same_sets(a, b, r);
		CHECK(wm_proctree_count(a) == (size_t)(2 * r + 2));
		/* and a child forked by a thread that is still alive: in that
		 * thread's list only */
		int hold[2], done[2];
		CHECK(pipe2(hold, O_CLOEXEC) == 0 && pipe2(done, O_CLOEXEC) == 0);
		job.park_fd = hold[0];
		job.done_fd = done[1];
		CHECK(pthread_create(&th, NULL, fork_from_thread, &job) == 0);
		char c;
		CHECK(read(done[0], &c, 1) == 1);
		settle_all(&d);
		CHECK(wm_proctree_scan(a) == 0 && wm_proctree_scan(b) == 0);
		same_sets(a, b, 100 + r);
		CHECK(wm_proctree_count(a) == (size_t)(2 * r + 3));
		CHECK(write(hold[1], "x", 1) == 1);
		CHECK(pthread_join(th, NULL) == 0);
		close(hold[0]);
		close(hold[1]);
		close(done[0]);
		close(done[1]);
	}
	CHECK(wm_proctree_count(a) == 9);
	CHECK(write(gate[1], "xxx", 3) == 3);
	for (int i = 0; i < 3; i++)
		CHECK(pthread_join(parked[i], NULL) == 0);
	wm_proctree_free(a);
	wm_proctree_free(b);
	return 0;
}

/* pid 1 of the namespace: mounts its procfs, runs the driver, reaps orphans,
 * and kills what is left when the driver is done. shape_run: 1 "run", 0
 * "--pid", -1 the reads count. */
static int ns_init(int shape_run, int rounds)
{
	char dir[] = "/tmp/wm-diff-proc-XXXXXX";
	if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 || !mkdtemp(dir))
		return EXIT_SKIP;
	if (mount("proc", dir, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) {
		rmdir(dir);
		return EXIT_SKIP;
	}
	int proc_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (proc_fd < 0)
		return EXIT_SKIP;
	/* Few pids (301..399 once wrapped, kernels >= 6.14 keep pid_max per
	 * namespace): they are reused within a few rounds. Where it cannot be
	 * set, reuse needs ~4 million forks and does not happen here. */
	int fd = openat(proc_fd, "sys/kernel/pid_max", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "400", 3) != 3)
			fprintf(stderr, "pid_max stays: %s\n", strerror(errno));
		close(fd);
	}
	pid_t drv = fork();
	if (drv == 0)
		_exit(shape_run == -2 ? threads_main(proc_fd)
		      : shape_run < 0 ? reads_main(proc_fd) : driver_main(proc_fd, shape_run, rounds));
	int status = 0, rc = 1;
	for (;;) {
		int st;
		pid_t w = wait(&st);
		if (w < 0)
			break;
		if (w == drv) {
			status = st;
			kill(-1, SIGKILL);   /* everything else in the namespace */
		}
	}
	rc = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
	close(proc_fd);
	(void)umount2(dir, MNT_DETACH);
	rmdir(dir);
	return rc;
}

static void run_shape(int shape_run)
{
	if (geteuid() != 0)
		skip();
	fflush(NULL);
	pid_t outer = fork();
	assert_true(outer >= 0);
	if (outer == 0) {
		if (unshare(CLONE_NEWPID | CLONE_NEWNS) != 0)
			_exit(EXIT_SKIP);
		pid_t init = fork();
		if (init < 0)
			_exit(1);
		if (init == 0)
			_exit(ns_init(shape_run, 60));
		int st;
		while (waitpid(init, &st, 0) < 0 && errno == EINTR)
			;
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
	}
	int st;
	assert_int_equal(waitpid(outer, &st, 0), outer);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == EXIT_SKIP)
		skip();
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* As under `wattmeter run`: we are a subreaper and a root, orphans stay ours. */
static void lists_equal_scan_as_run(void **state)
{
	(void)state;
	run_shape(1);
}

/* As under --pid: the root is our child, orphans go to init, for both. */
static void lists_equal_scan_as_pid(void **state)
{
	(void)state;
	run_shape(0);
}

/* Children of threads other than the main one. */
static void lists_follow_threads(void **state)
{
	(void)state;
	run_shape(-2);
}

/* What a scan reads: only the measured processes' files with child lists. */
static void lists_read_only_the_measured(void **state)
{
	(void)state;
	run_shape(-1);
}

/* The default: child lists on a real procfs, the scan on a fixture tree
 * (not a procfs) and once pid 1 is a root (the whole machine). */
static void auto_choice(void **state)
{
	(void)state;
	int dfd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || !wm_proctree_children_usable(dfd))
		skip();
	wm_proctree *t = NULL;
	const char *why = NULL;
	assert_int_equal(wm_proctree_new(dfd, &t), 0);
	assert_int_equal(wm_proctree_discovery(t, &why), WM_DISCOVERY_CHILD_LISTS);
	assert_non_null(strstr(why, "child lists"));
	assert_int_equal(wm_proctree_add_root(t, getpid(), 0), 0);
	assert_int_equal(wm_proctree_discovery(t, &why), WM_DISCOVERY_CHILD_LISTS);
	assert_int_equal(wm_proctree_add_root(t, 1, 1), 0);
	assert_int_equal(wm_proctree_discovery(t, &why), WM_DISCOVERY_SCAN);
	assert_non_null(strstr(why, "pid 1"));
	wm_proctree_free(t);

	char dir[] = "/tmp/wm-diff-fx-XXXXXX";
	assert_non_null(mkdtemp(dir));
	int fx = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(fx >= 0);
	assert_int_equal(wm_proctree_new(fx, &t), 0);
	assert_int_equal(wm_proctree_discovery(t, &why), WM_DISCOVERY_SCAN);
	assert_non_null(strstr(why, "no child lists"));
	assert_int_equal(wm_proctree_set_discovery(t, WM_DISCOVERY_CHILD_LISTS), -ENOTSUP);
	wm_proctree_free(t);
	close(fx);
	rmdir(dir);
	close(dfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(auto_choice),
		cmocka_unit_test(lists_equal_scan_as_run),
		cmocka_unit_test(lists_equal_scan_as_pid),
		cmocka_unit_test(lists_read_only_the_measured),
		cmocka_unit_test(lists_follow_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
