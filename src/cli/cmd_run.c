/* cmd_run.c — `wattmeter run [options] -- CMD [ARGS...]`.
 *
 * As perf stat does: the command is forked "corked" (blocked on a pipe) so
 * that sampling starts before it runs, then uncorked; it is executed without
 * a shell; an exec failure comes back through a close-on-exec pipe. SIGINT,
 * SIGTERM, SIGHUP and SIGQUIT sent to wattmeter go to the command (a Ctrl-C
 * typed at the terminal already reaches it through the process group and is
 * not sent twice). wattmeter exits with the command's status (128+N if it was
 * killed by signal N), always completes the recording, and prints its
 * summary on stderr so the command's stdout stays clean.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "base/util.h"
#include "wattmeter.h"

#define MAX_PIDS 256

static void usage(FILE *out)
{
	fprintf(out,
		"usage: wattmeter run [options] [--] CMD [ARGS...]\n"
		"\n"
		"Run CMD (without a shell), measure the energy of the CPU packages, DRAM and\n"
		"platform while it runs, attribute it to CMD's whole process tree, write a\n"
		"recording and print a summary on stderr. Exits with CMD's exit status.\n"
		"\n"
		"options:\n"
		"  -o, --output DIR       recording folder (default: a new timestamped folder\n"
		"                         under ./wattmeter-runs/); must not hold a recording\n"
		"  --period SECONDS       counter sampling period (default %g)\n"
		"  --proc-period SECONDS  process scan period (default %g)\n"
		"  --mem-period SECONDS   PSS/USS read period, 0 = off (default %g)\n"
		"  --no-memory            same as --mem-period 0\n"
		"  --pid PID              also measure PID and its descendants (repeatable)\n"
		"  --sysfs-root PATH      read powercap below PATH (default /sys)\n"
		"  --procfs-root PATH     read processes below PATH (default /proc)\n"
		"  --model-min-w WATTS    CPU model: watts per CPU when idle (default %g)\n"
		"  --model-max-w WATTS    CPU model: watts per CPU when busy (default %g)\n"
		"  --force-model          model the CPU even where RAPL counters are readable\n"
		"  --json                 print the JSON summary (not the text one) at the end\n"
		"  -q, --quiet            no live status line and no summary\n"
		"  -h, --help             show this help\n"
		"\n"
		"exit status: CMD's, or 128+N if CMD was killed by signal N; 2 for bad options,\n"
		"125 if wattmeter failed before CMD ran (e.g. the folder cannot be written),\n"
		"126 if CMD cannot be executed, 127 if it was not found. CMD never runs when\n"
		"wattmeter exits 2 or 125.\n"
		"\n"
		"example: wattmeter run -o runs/bert -- python3 train.py --epochs 1\n",
		WM_DEFAULT_PERIOD_S, WM_DEFAULT_PROC_PERIOD_S, WM_DEFAULT_MEM_PERIOD_S, WM_DEFAULT_MODEL_MIN_W,
		WM_DEFAULT_MODEL_MAX_W);
}

/* Finds CMD on PATH as execvp would, so "not found" is known before anything
 * is created. Returns 0 and the path in out, -ENOENT or -EACCES. */
static int resolve_command(const char *cmd, char *out, size_t outlen)
{
	if (strchr(cmd, '/')) {
		if (snprintf(out, outlen, "%s", cmd) >= (int)outlen)
			return -ENAMETOOLONG;
		struct stat st;
		if (stat(out, &st) < 0)
			return -errno;
		if (S_ISDIR(st.st_mode) || access(out, X_OK) < 0)
			return -EACCES;
		return 0;
	}
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	int saw_eacces = 0;
	const char *p = path;
	for (;;) {
		const char *colon = strchr(p, ':');
		size_t n = colon ? (size_t)(colon - p) : strlen(p);
		int w = n ? snprintf(out, outlen, "%.*s/%s", (int)n, p, cmd) : snprintf(out, outlen, "./%s", cmd);
		if (w > 0 && (size_t)w < outlen) {
			struct stat st;
			if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
				if (access(out, X_OK) == 0)
					return 0;
				saw_eacces = 1;
			}
		}
		if (!colon)
			break;
		p = colon + 1;
	}
	return saw_eacces ? -EACCES : -ENOENT;
}

/* ./wattmeter-runs/2026-11-25T12-00-00Z, with -2, -3 ... if taken. */
static int default_output_dir(char *out, size_t outlen)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	char stamp[32];
	if (strftime(stamp, sizeof stamp, "%Y-%m-%dT%H-%M-%SZ", &tm) == 0)
		return -EINVAL;
	for (int i = 1; i < 1000; i++) {
		int n = i == 1 ? snprintf(out, outlen, "wattmeter-runs/%s", stamp)
			       : snprintf(out, outlen, "wattmeter-runs/%s-%d", stamp, i);
		if (n < 0 || (size_t)n >= outlen)
			return -ENAMETOOLONG;
		struct stat st;
		if (stat(out, &st) < 0 && errno == ENOENT)
			return 0;
	}
	return -EEXIST;
}

static void status_line(wm_meter *m)
{
	wm_snapshot *sp = wm_meter_snapshot(m);
	if (!sp)
		return;
	wm_snapshot s = *sp;
	char line[512];
	size_t len = 0;
	int n = snprintf(line, sizeof line, "\r\033[K[wattmeter] %.1f s", s.elapsed_s);
	len = n > 0 ? (size_t)n : 0;
	for (size_t i = 0; i < s.n_devices && len < sizeof line; i++) {
		n = snprintf(line + len, sizeof line - len, " | %s %.1f W %.1f J%s", s.devices[i].name,
			     s.devices[i].power_w, s.devices[i].energy_j, s.devices[i].modeled ? " (MODELED)" : "");
		if (n < 0)
			break;
		len += (size_t)n;
	}
	if (len < sizeof line) {
		n = snprintf(line + len, sizeof line - len, " | %zu procs", s.n_procs_alive);
		if (n > 0)
			len += (size_t)n;
	}
	if (len >= sizeof line)
		len = sizeof line - 1;
	(void)wm_write_all(STDERR_FILENO, line, len);
	wm_snapshot_free(sp);
}

static void clear_status_line(void)
{
	(void)wm_write_all(STDERR_FILENO, "\r\033[K", 4);
}

struct run_opts {
	const char *output;
	const char *sysfs_root, *procfs_root;
	double period_s, proc_period_s, mem_period_s;
	double model_min_w, model_max_w;
	int force_model, quiet, json;
	int pids[MAX_PIDS];
	size_t n_pids;
};

static int parse_args(int argc, char **argv, struct run_opts *o)
{
	enum { O_PERIOD = 256, O_PROC, O_MEM, O_NOMEM, O_PID, O_SYS, O_PROCFS, O_MIN, O_MAX, O_FORCE, O_JSON };
	static const struct option opts[] = {
		{"output", required_argument, NULL, 'o'},
		{"period", required_argument, NULL, O_PERIOD},
		{"proc-period", required_argument, NULL, O_PROC},
		{"mem-period", required_argument, NULL, O_MEM},
		{"no-memory", no_argument, NULL, O_NOMEM},
		{"pid", required_argument, NULL, O_PID},
		{"sysfs-root", required_argument, NULL, O_SYS},
		{"procfs-root", required_argument, NULL, O_PROCFS},
		{"model-min-w", required_argument, NULL, O_MIN},
		{"model-max-w", required_argument, NULL, O_MAX},
		{"force-model", no_argument, NULL, O_FORCE},
		{"json", no_argument, NULL, O_JSON},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	/* "+": stop at the first non-option, so CMD's own options are left alone. */
	while ((c = getopt_long(argc, argv, "+o:qh", opts, NULL)) != -1) {
		double v;
		switch (c) {
		case 'o': o->output = optarg; break;
		case 'q': o->quiet = 1; break;
		case 'h': usage(stdout); return 1;
		case O_PERIOD:
		case O_PROC:
		case O_MEM:
			if (cli_parse_seconds(optarg, c == O_MEM, &v) < 0) {
				fprintf(stderr, "wattmeter run: '%s' is not a valid number of seconds for --%s\n",
					optarg, c == O_PERIOD ? "period" : c == O_PROC ? "proc-period" : "mem-period");
				return -1;
			}
			*(c == O_PERIOD ? &o->period_s : c == O_PROC ? &o->proc_period_s : &o->mem_period_s) = v;
			break;
		case O_NOMEM: o->mem_period_s = 0; break;
		case O_PID: {
			uint64_t pid;
			if (wm_parse_u64_full(optarg, &pid) < 0 || pid == 0 || pid > 4194304) {
				fprintf(stderr, "wattmeter run: --pid wants a process id, not '%s'\n", optarg);
				return -1;
			}
			if (o->n_pids == MAX_PIDS) {
				fprintf(stderr, "wattmeter run: at most %d --pid options\n", MAX_PIDS);
				return -1;
			}
			o->pids[o->n_pids++] = (int)pid;
			break;
		}
		case O_SYS: o->sysfs_root = optarg; break;
		case O_PROCFS: o->procfs_root = optarg; break;
		case O_MIN:
		case O_MAX:
			if (wm_parse_double_full(optarg, &v) < 0 || v < 0) {
				fprintf(stderr, "wattmeter run: '%s' is not a valid number of watts\n", optarg);
				return -1;
			}
			*(c == O_MIN ? &o->model_min_w : &o->model_max_w) = v;
			break;
		case O_FORCE: o->force_model = 1; break;
		case O_JSON: o->json = 1; break;
		default: usage(stderr); return -1;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "wattmeter run: no command given. Example: wattmeter run -- python3 train.py\n");
		return -1;
	}
	if (o->proc_period_s < o->period_s)
		o->proc_period_s = o->period_s;
	return 0;
}

/* The child: wait for the go byte, then exec. Only async-signal-safe calls. */
static void child_exec(int cork_r, int err_w, const char *path, char **argv)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	char go;
	ssize_t r;
	do
		r = read(cork_r, &go, 1);
	while (r < 0 && errno == EINTR);
	if (r != 1)
		_exit(CLI_EXIT_FAILURE); /* the parent gave up before starting us */
	execv(path, argv);
	int e = errno;
	ssize_t w = write(err_w, &e, sizeof e);
	(void)w;
	_exit(e == ENOENT ? CLI_EXIT_NOTFOUND : CLI_EXIT_NOEXEC);
}

static int exit_code_of(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

/* Waits for the child, forwarding signals and drawing the live line.
 * Returns its wait status. */
static int supervise(pid_t child, wm_meter *m, int live, const sigset_t *mask)
{
	int status = 0;
	for (;;) {
		struct timespec tmo = {.tv_sec = 0, .tv_nsec = 500000000L};
		siginfo_t si;
		int sig = sigtimedwait(mask, &si, live ? &tmo : NULL);
		if (sig < 0) {
			if (errno == EAGAIN && live)
				status_line(m);
			continue; /* EINTR or timeout */
		}
		if (sig == SIGCHLD) {
			pid_t w;
			do
				w = waitpid(child, &status, WNOHANG);
			while (w < 0 && errno == EINTR);
			if (w == child)
				return status;
			continue;
		}
		/* A key typed at the terminal (SI_KERNEL) reached the whole
		 * foreground process group, the command included: do not send
		 * it twice. Anything sent to us alone is forwarded. */
		if (si.si_code != SI_KERNEL)
			(void)kill(child, sig);
	}
}

int cmd_run(int argc, char **argv)
{
	struct run_opts o = {
		.period_s = WM_DEFAULT_PERIOD_S,
		.proc_period_s = WM_DEFAULT_PROC_PERIOD_S,
		.mem_period_s = WM_DEFAULT_MEM_PERIOD_S,
		.model_min_w = WM_DEFAULT_MODEL_MIN_W,
		.model_max_w = WM_DEFAULT_MODEL_MAX_W,
	};
	int prc = parse_args(argc, argv, &o);
	if (prc > 0)
		return cli_finish_stdout();
	if (prc < 0)
		return CLI_EXIT_USAGE;
	char **cmd = argv + optind;

	char path[4096];
	int rc = resolve_command(cmd[0], path, sizeof path);
	if (rc < 0) {
		if (rc == -ENOENT)
			fprintf(stderr, "wattmeter run: %s: command not found (check the name and your PATH)\n", cmd[0]);
		else
			fprintf(stderr, "wattmeter run: %s: cannot execute: %s\n", cmd[0], strerror(-rc));
		return rc == -ENOENT ? CLI_EXIT_NOTFOUND : CLI_EXIT_NOEXEC;
	}

	char outdir[4096];
	if (o.output) {
		if (snprintf(outdir, sizeof outdir, "%s", o.output) >= (int)sizeof outdir) {
			fprintf(stderr, "wattmeter run: output folder name too long\n");
			return CLI_EXIT_USAGE;
		}
	} else if (default_output_dir(outdir, sizeof outdir) < 0) {
		fprintf(stderr, "wattmeter run: cannot choose a folder under ./wattmeter-runs; give one with -o DIR\n");
		return CLI_EXIT_FAILURE;
	}

	/* Signals for the supervisor are blocked before any thread exists, so the
	 * sampler thread inherits the mask and only sigtimedwait sees them. */
	sigset_t mask, old;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, &old);

	int cork[2], errp[2];
	if (pipe2(cork, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		fprintf(stderr, "wattmeter run: pipe: %s\n", strerror(errno));
		return CLI_EXIT_FAILURE;
	}
	fflush(NULL);
	pid_t child = fork();
	if (child < 0) {
		fprintf(stderr, "wattmeter run: fork: %s\n", strerror(errno));
		return CLI_EXIT_FAILURE;
	}
	if (child == 0) {
		close(cork[1]);
		close(errp[0]);
		child_exec(cork[0], errp[1], path, cmd);
	}
	close(cork[0]);
	close(errp[1]);

	int pids[MAX_PIDS + 1];
	pids[0] = child;
	memcpy(pids + 1, o.pids, o.n_pids * sizeof o.pids[0]);
	wm_meter_config cfg;
	wm_meter_config_init(&cfg);
	cfg.output_dir = outdir;
	cfg.sysfs_root = o.sysfs_root;
	cfg.procfs_root = o.procfs_root;
	cfg.period_s = o.period_s;
	cfg.proc_period_s = o.proc_period_s;
	cfg.mem_period_s = o.mem_period_s;
	cfg.pids = pids;
	cfg.n_pids = 1 + o.n_pids;
	cfg.reaper_pid = getpid();
	cfg.command = (const char *const *)cmd;
	cfg.model_min_w_per_cpu = o.model_min_w;
	cfg.model_max_w_per_cpu = o.model_max_w;
	cfg.force_model = o.force_model;

	char err[1024] = "";
	wm_meter *m = NULL;
	rc = wm_meter_start(&cfg, &m, err, sizeof err);
	if (rc < 0) {
		/* Nothing ran: closing the cork makes the child exit unexecuted. */
		close(cork[1]);
		close(errp[0]);
		waitpid(child, NULL, 0);
		fprintf(stderr, "wattmeter run: %s\n", err);
		return CLI_EXIT_FAILURE;
	}

	int quiet = o.quiet;
	if (!quiet) {
		wm_snapshot *s = wm_meter_snapshot(m);
		for (size_t i = 0; s && i < s->n_devices; i++)
			if (s->devices[i].modeled)
				fprintf(stderr,
					"wattmeter: no readable RAPL counters: %s power is MODELED, not measured "
					"('wattmeter sensors' says why and how to fix it)\n",
					s->devices[i].name);
		wm_snapshot_free(s);
	}

	/* Uncork: time zero is now. */
	char go = 'g';
	if (write(cork[1], &go, 1) != 1)
		fprintf(stderr, "wattmeter run: cannot start the command: %s\n", strerror(errno));
	close(cork[1]);
	int exec_errno = 0;
	ssize_t r;
	do
		r = read(errp[0], &exec_errno, sizeof exec_errno);
	while (r < 0 && errno == EINTR);
	close(errp[0]);
	if (r == (ssize_t)sizeof exec_errno)
		fprintf(stderr, "wattmeter run: cannot execute %s: %s\n", path, strerror(exec_errno));

	int live = !quiet && isatty(STDERR_FILENO);
	int status = supervise(child, m, live, &mask);
	if (live)
		clear_status_line();
	int code = exit_code_of(status);

	rc = wm_meter_stop(m, code, err, sizeof err);
	wm_meter_free(m);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (rc < 0)
		fprintf(stderr, "wattmeter run: %s\n", err);

	if (!quiet) {
		char *summary = o.json ? wm_report_json(outdir, err, sizeof err)
				       : wm_report_text(outdir, 5, err, sizeof err);
		if (summary) {
			fputs(summary, stderr);
			free(summary);
		} else {
			fprintf(stderr, "wattmeter run: cannot summarise %s: %s\n", outdir, err);
		}
		fprintf(stderr, "recording: %s   (wattmeter report %s)\n", outdir, outdir);
	}
	return code;
}
