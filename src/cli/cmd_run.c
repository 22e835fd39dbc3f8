/* cmd_run.c — `wattmeter run [options] -- CMD [ARGS...]`.
 *
 * The exit status is the command's whatever happens to our own output:
 * SIGPIPE is ignored (the command gets the default back before its exec),
 * a write to a stderr nobody reads drops the summary, and the supervisor's
 * signals stay blocked until we exit, so a late SIGINT cannot kill us
 * between the command's exit and the summary.
 *
 * As perf stat does: the meter starts (baseline sample) before the command
 * exists; the command is then forked and executed without a shell, and an
 * exec failure comes back through a close-on-exec pipe. Only once that pipe
 * reports the exec is the command added to the meter as a root, so its
 * recorded command line is its own, never wattmeter's (the forked child
 * looks like wattmeter until it execs; a command shorter than the process
 * period might never be seen again).
 *
 * wattmeter is a child subreaper (PR_SET_CHILD_SUBREAPER): a process the
 * command orphans (a double fork, `(worker &)` in a shell) is re-parented to
 * wattmeter rather than to init, and so stays in the measured tree, whose
 * root wattmeter itself is (with its own CPU not counted). wattmeter reaps
 * whatever it adopts, and exits with the command's own status (128+N if it
 * was killed by signal N) as soon as the command exits; orphans still running
 * then go on, re-parented to init.
 *
 * SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to wattmeter go to the command (a
 * Ctrl-C typed at the terminal already reaches it through the process group
 * and is not sent twice). A measurement problem never stops the command: if
 * the recording cannot be made (folder not writable, already holding a
 * recording, disk full) the command is measured unrecorded, with a warning.
 * The summary goes to stderr (the command's stdout stays clean), and with
 * --summary-json FILE to FILE as JSON, as `time -o` and `perf stat -o` do.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/safepath.h"

#include "cli.h"
#include "cli/control.h"
#include "cli/meter_opts.h"
#include "run_cgroup.h"
#include "base/util.h"
#include "wattmeter.h"

#define MAX_PIDS 256

/* --pid's range, printed by --help and by the error for a bad value (the
 * measuring options' ranges are in meter_opts.c). */
#define MAX_PID 4194304       /* PID_MAX_LIMIT on 64-bit Linux */

/* The live line is redrawn at most this often: often enough to follow a
 * training step, rarely enough not to flicker or cost CPU. */
#define LIVE_REDRAW_NS 500000000L

static void usage(FILE *out)
{
	fprintf(out,
		"usage: wattmeter run [options] [--] CMD [ARGS...]\n"
		"\n"
		"Run CMD (without a shell), measure the energy of the CPU packages, DRAM,\n"
		"platform and NVIDIA GPUs while it runs, attribute it to CMD's whole process\n"
		"tree (orphans it leaves behind included), write a recording and print a\n"
		"summary on stderr.\n"
		"Exits with CMD's exit status.\n"
		"\n"
		"options:\n"
		"  -o, --output DIR       recording folder (default: a new folder named by time,\n"
		"                         process id and a counter under ./wattmeter-runs/); must\n"
		"                         not hold a recording\n");
	meter_opts_usage(out);
	fprintf(out,
		"  --pid PID              also measure PID (1 to %d) and its descendants (repeatable)\n"
		"  --include-pid PID      include a process outside CMD's tree (a server CMD calls) and\n"
		"                         its descendants, shown apart as 'included' (repeatable)\n"
		"  --include-name REGEX   include processes whose command line matches REGEX (POSIX\n"
		"                         extended), those that start during the run too\n"
		"  --include-cgroup PATH  include the processes of a cgroup (absolute, or below the\n"
		"                         cgroup v2 mount), those that join it during the run too\n"
		"  --include-unit UNIT    include a systemd unit's processes (its cgroup)\n"
		"  --server-pid PID, --server-name REGEX, --server-cgroup PATH\n"
		"                         the same as --include-pid, --include-name, --include-cgroup\n"
		"  --cgroup               run CMD in a new cgroup (v2, else v1 cpuacct): its CPU time is\n"
		"                         read from cpu.stat, exact, exited processes included; falls\n"
		"                         back to the process tree, saying so, where none can be made\n"
		"  --cgroup PATH          also measure an existing cgroup (a container, a unit, a pod):\n"
		"                         its processes and its cpu.stat CPU time (PATH absolute)\n"
		"  --summary-json FILE    also write the JSON summary to FILE (created or\n"
		"                         truncated before CMD starts): the channel for scripts\n"
		"  --json                 print the JSON summary instead of the text one on stderr\n"
		"  -q, --quiet            no live status line (warnings, summary and the\n"
		"                         recording's location are still printed on stderr)\n"
		"  -h, --help             show this help\n"
		"\n"
		"output: stdout is CMD's alone. stderr carries CMD's stderr, wattmeter's warnings,\n"
		"the summary and the recording's location. The live line is drawn only when\n"
		"stderr is a terminal, on its bottom row (kept out of CMD's scrolling output).\n"
		"For scripts, read --summary-json FILE (or 'wattmeter report DIR --json').\n"
		"\n"
		"If the recording cannot be made (folder not writable, already holding a\n"
		"recording), CMD still runs, measured without a recording, and a warning says why.\n"
		"\n"
		"exit status: CMD's, or 128+N if CMD was killed by signal N; 2 for a bad option\n"
		"or value (CMD does not run); 125 if wattmeter failed before CMD ran (the meter\n"
		"could not start, --summary-json FILE cannot be written, a --pid is not running);\n"
		"126 if CMD cannot be executed; 127 if it was not found.\n"
		"\n"
		"example: wattmeter run -o runs/bert -- python3 train.py --epochs 1\n",
		MAX_PID);
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

/* Creates ./wattmeter-runs/<UTC time>-<pid> (then -<pid>-2, -3 ... if a
 * recycled pid left one in the same second) with mkdir(2), which fails with
 * EEXIST rather than share a folder: runs started in the same second, in
 * any number of processes, each get their own, with no stat-then-create
 * race. A ./wattmeter-runs that is a symlink is followed only by the rule
 * of docs/privileges.md (not one planted by another user in /tmp).
 * Returns 0 with the path in out, or -errno with a message in err. */
static int default_output_dir(char *out, size_t outlen, char *err, size_t errlen)
{
	const char *base = "wattmeter-runs";
	int bfd = wm_dir_open_safe(base, 1, err, errlen);
	if (bfd < 0)
		return bfd;
	time_t now = time(NULL);
	struct tm tm;
	char stamp[32];
	if (!gmtime_r(&now, &tm) || strftime(stamp, sizeof stamp, "%Y-%m-%dT%H-%M-%SZ", &tm) == 0) {
		close(bfd);
		return wm_err(err, errlen, -EINVAL, "cannot format the time for a folder name");
	}
	int pid = (int)getpid();
	for (int i = 1; i <= 1000; i++) {
		int n = i == 1 ? snprintf(out, outlen, "%s/%s-%d", base, stamp, pid)
			       : snprintf(out, outlen, "%s/%s-%d-%d", base, stamp, pid, i);
		if (n < 0 || (size_t)n >= outlen) {
			close(bfd);
			return wm_err(err, errlen, -ENAMETOOLONG, "folder name too long");
		}
		if (mkdirat(bfd, out + strlen(base) + 1, 0755) == 0) {
			close(bfd);
			return 0;
		}
		if (errno != EEXIST) {
			int e = errno;
			close(bfd);
			return wm_err(err, errlen, -e, "cannot create %s: %s", out, strerror(e));
		}
	}
	close(bfd);
	return wm_err(err, errlen, -EEXIST, "every name for %s/%s-%d-N is taken", base, stamp, pid);
}

/* ---- the snapshot (one place that knows its API) ---------------------------- */

static wm_snapshot *snapshot_take(wm_meter *m)
{
	return wm_meter_snapshot(m);
}

static void snapshot_free(wm_snapshot *s)
{
	wm_snapshot_free(s);
}

/* ---- the live line ---------------------------------------------------------
 *
 * Drawn only when stderr is a terminal (never into a file or pipe), and on
 * the terminal's bottom row, which is taken out of the scrolling region
 * (DECSTBM), as apt's progress bar does: the command's own output, which
 * shares the terminal, scrolls above it and never lands on the line. Each
 * redraw is one write(2) (save cursor, go to the bottom row, draw, restore
 * cursor), so it does not split the command's lines. The region is reset and
 * the row cleared before the summary is printed. If wattmeter is killed with
 * SIGKILL the region stays: `reset` (or `tput reset`) restores the terminal.
 * A terminal narrower than 20 columns, shorter than 4 rows or with
 * TERM=dumb gets no live line. */

struct live {
	int on;
	unsigned short rows;
	uint64_t last_ns;
};

static int term_size(unsigned short *rows, unsigned short *cols)
{
	struct winsize ws;
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) < 0 || ws.ws_row < 4 || ws.ws_col < 20)
		return -1;
	*rows = ws.ws_row;
	*cols = ws.ws_col;
	return 0;
}

static void live_begin(struct live *l, int wanted)
{
	l->on = 0;
	const char *term = getenv("TERM");
	unsigned short cols;
	if (!wanted || !isatty(STDERR_FILENO) || !term || !*term || strcmp(term, "dumb") == 0 ||
	    term_size(&l->rows, &cols) < 0)
		return;
	/* A newline first, so that what is on the bottom row scrolls up out of
	 * the way; then the region is all rows but the last, and the cursor goes
	 * back into it. */
	char buf[64];
	int n = snprintf(buf, sizeof buf, "\n\0337\033[1;%ur\0338\033[1A", (unsigned)l->rows - 1);
	if (n > 0 && (size_t)n < sizeof buf && wm_write_all(STDERR_FILENO, buf, (size_t)n) == 0)
		l->on = 1;
	l->last_ns = 0;
}

static void live_draw(struct live *l, wm_meter *m)
{
	if (!l->on)
		return;
	uint64_t now = wm_now_mono_ns();
	if (l->last_ns && now - l->last_ns < (uint64_t)LIVE_REDRAW_NS)
		return;
	l->last_ns = now;
	unsigned short rows, cols;
	if (term_size(&rows, &cols) < 0)
		return;
	wm_snapshot *s = snapshot_take(m);
	if (!s)
		return;
	wm_buf b;
	wm_buf_init(&b);
	if (rows != l->rows) { /* resized: move the region's bottom */
		wm_buf_printf(&b, "\0337\033[1;%ur\0338", (unsigned)rows - 1);
		l->rows = rows;
	}
	wm_buf_printf(&b, "\0337\033[%u;1H\033[K", (unsigned)rows);
	size_t text_at = b.len;
	wm_buf_printf(&b, "[wattmeter] %.1f s", s->elapsed_s);
	for (size_t i = 0; i < s->n_devices; i++) {
		/* The power of the latest counter interval, as measured: no
		 * smoothing that would start at 0 and climb. None before the
		 * first interval. */
		if (s->samples >= 2)
			wm_buf_printf(&b, " | %s %.1f W %.1f J%s", s->devices[i].name, s->devices[i].power_w,
				      s->devices[i].energy_j, s->devices[i].modeled ? " MODELED" : "");
		else
			wm_buf_printf(&b, " | %s - W %.1f J%s", s->devices[i].name, s->devices[i].energy_j,
				      s->devices[i].modeled ? " MODELED" : "");
	}
	/* As many as the summary will list (exited ones too), and how many of
	 * them run now when that differs. */
	if (s->n_procs_seen != s->n_procs_alive)
		wm_buf_printf(&b, " | %zu procs (%zu running)", s->n_procs_seen, s->n_procs_alive);
	else
		wm_buf_printf(&b, " | %zu procs", s->n_procs_seen);
	/* b.len is only meaningful while the buffer holds no error */
	if (!wm_buf_error(&b) && b.len - text_at > (size_t)cols - 1)
		b.len = text_at + (size_t)cols - 1; /* never wrap: a wrap would scroll */
	wm_buf_puts(&b, "\0338");
	if (!wm_buf_error(&b))
		(void)wm_write_all(STDERR_FILENO, b.data, b.len);
	wm_buf_free(&b);
	snapshot_free(s);
}

static void live_end(struct live *l)
{
	if (!l->on)
		return;
	char buf[64];
	int n = snprintf(buf, sizeof buf, "\0337\033[%u;1H\033[K\033[r\0338", (unsigned)l->rows);
	if (n > 0 && (size_t)n < sizeof buf)
		(void)wm_write_all(STDERR_FILENO, buf, (size_t)n);
	l->on = 0;
}

/* ---- options ------------------------------------------------------------------ */

struct run_opts {
	const char *output;
	const char *summary_json;
	struct meter_opts m;     /* the measuring options (meter_opts.h) */
	int quiet, json;
	int pids[MAX_PIDS];
	size_t n_pids;
	int include_pids[MAX_PIDS];
	size_t n_include_pids;
	const char *include_name, *include_cgroup, *include_unit;
	int cgroup_new;          /* --cgroup: a new cgroup for the command */
	const char *cgroup;      /* --cgroup PATH: an existing one */
};

static int parse_args(int argc, char **argv, struct run_opts *o)
{
	enum { O_PID = 256, O_JSON, O_SUMJSON, O_INCPID, O_INCNAME, O_INCCG, O_INCUNIT, O_CGROUP };
	static const struct option opts[] = {
		{"output", required_argument, NULL, 'o'},
		METER_OPTS_LONGOPTS,
		{"pid", required_argument, NULL, O_PID},
		{"include-pid", required_argument, NULL, O_INCPID},
		{"include-name", required_argument, NULL, O_INCNAME},
		{"include-cgroup", required_argument, NULL, O_INCCG},
		{"include-unit", required_argument, NULL, O_INCUNIT},
		/* issue 19's spelling (`run --server-name ollama -- python bench.py`) */
		{"server-pid", required_argument, NULL, O_INCPID},
		{"server-name", required_argument, NULL, O_INCNAME},
		{"server-cgroup", required_argument, NULL, O_INCCG},
		{"cgroup", optional_argument, NULL, O_CGROUP},
		{"json", no_argument, NULL, O_JSON},
		{"summary-json", required_argument, NULL, O_SUMJSON},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	/* "+": stop at the first non-option, so CMD's own options are left alone. */
	while ((c = getopt_long(argc, argv, "+o:qh", opts, NULL)) != -1) {
		int rc = meter_opts_parse("run", c, optarg, &o->m);
		if (rc < 0)
			return -1;
		if (rc > 0)
			continue;
		switch (c) {
		case 'o': rc = cli_path_option("run", "-o/--output", optarg, &o->output); break;
		case 'q': o->quiet = 1; break;
		case 'h': usage(stdout); return 1;
		case O_PID:
		case O_INCPID: {
			const char *name = c == O_PID ? "--pid" : "--include-pid";
			uint64_t pid;
			if (wm_parse_u64_full(optarg, &pid) < 0 || pid == 0 || pid > MAX_PID || optarg[0] == '+' ||
			    optarg[0] == ' ') {
				fprintf(stderr, "wattmeter run: %s wants a process id (1 to %d), not '%s'\n", name, MAX_PID,
					optarg);
				return -1;
			}
			size_t *n = c == O_PID ? &o->n_pids : &o->n_include_pids;
			if (*n == MAX_PIDS) {
				fprintf(stderr, "wattmeter run: at most %d %s options\n", MAX_PIDS, name);
				return -1;
			}
			(c == O_PID ? o->pids : o->include_pids)[(*n)++] = (int)pid;
			break;
		}
		case O_INCNAME:
			if (!*optarg) {
				fprintf(stderr, "wattmeter run: --include-name wants a regular expression, e.g. 'ollama serve'\n");
				return -1;
			}
			o->include_name = optarg;
			break;
		case O_CGROUP:
			/* --cgroup=PATH, or --cgroup PATH when the next word is a
			 * cgroup folder (a command is not a folder); else a new one. */
			if (!optarg && optind < argc && argv[optind][0] == '/') {
				char probe[4200];
				int n = snprintf(probe, sizeof probe, "%s/cgroup.procs", argv[optind]);
				if (n > 0 && (size_t)n < sizeof probe && access(probe, F_OK) == 0)
					optarg = argv[optind++];
			}
			if (optarg) {
				rc = cli_path_option("run", "--cgroup", optarg, &o->cgroup);
				o->cgroup_new = 0;
			} else {
				o->cgroup_new = 1;
				o->cgroup = NULL;
			}
			break;
		case O_INCCG: rc = cli_path_option("run", "--include-cgroup", optarg, &o->include_cgroup); break;
		case O_INCUNIT:
			if (!*optarg || strchr(optarg, '/')) {
				fprintf(stderr, "wattmeter run: --include-unit wants a systemd unit name (ollama.service), not '%s'\n",
					optarg);
				return -1;
			}
			o->include_unit = optarg;
			break;
		case O_SUMJSON: rc = cli_path_option("run", "--summary-json", optarg, &o->summary_json); break;
		case O_JSON: o->json = 1; break;
		default:
			fprintf(stderr, "See 'wattmeter run --help'.\n");
			return -1;
		}
		if (rc < 0)
			return -1;
	}
	if (optind >= argc) {
		fprintf(stderr, "wattmeter run: no command given. Example: wattmeter run -- python3 train.py\n");
		return -1;
	}
	if (meter_opts_finish("run", &o->m) < 0)
		return -1;
	return 0;
}

/* ---- the command -------------------------------------------------------------- */

/* The child: exec CMD. Only async-signal-safe calls (the sampler thread
 * already runs in the parent). */
static void child_exec(int err_w, const char *path, char **argv, const sigset_t *mask,
		       const struct run_cgroup *cg)
{
	run_cgroup_enter(cg);
	/* wattmeter ignores SIGPIPE for its own writes; an ignored signal stays
	 * ignored across exec, so the command gets the default back (a
	 * `yes | head` inside it must still end on SIGPIPE). */
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigemptyset(&dfl.sa_mask);
	sigaction(SIGPIPE, &dfl, NULL);
	sigprocmask(SIG_SETMASK, mask, NULL);
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

/* Reaps every child that has exited: the command, and the orphans that
 * came to us as subreaper. Returns 1 (with *status) once the command is
 * reaped. */
static int reap(pid_t child, int *status)
{
	int done = 0;
	for (;;) {
		int st;
		pid_t w = waitpid(-1, &st, WNOHANG);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return done;
		if (w == child) {
			*status = st;
			done = 1;
		}
	}
}

/* Waits for the command, forwarding signals, reaping adopted orphans and
 * drawing the live line. Returns the command's wait status. */
static int supervise(pid_t child, wm_meter *m, struct live *live, const sigset_t *mask)
{
	int status = 0;
	if (reap(child, &status))
		return status;
	for (;;) {
		struct timespec tmo = {.tv_sec = 0, .tv_nsec = LIVE_REDRAW_NS};
		siginfo_t si;
		int sig = sigtimedwait(mask, &si, live->on ? &tmo : NULL);
		if (sig < 0) {
			if (errno == EAGAIN)
				live_draw(live, m);
			continue; /* EINTR or timeout */
		}
		if (sig == SIGCHLD) {
			if (reap(child, &status))
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

/* ---- the summary when there is no recording ------------------------------------ */

/* Text for the unrecorded summary with control characters (a newline) as
 * '?', so a command or folder name cannot break a line or drive the
 * terminal; quoted for a shell if asked. */
static void put_text(wm_buf *b, const char *a, int quote)
{
	if (quote)
		wm_buf_puts(b, "'");
	for (const unsigned char *p = (const unsigned char *)a; *p; p++) {
		if (quote && *p == '\'')
			wm_buf_puts(b, "'\\''");
		else {
			char c = (*p < 0x20 || *p == 0x7f) ? '?' : (char)*p;
			wm_buf_append(b, &c, 1);
		}
	}
	if (quote)
		wm_buf_puts(b, "'");
}

/* One argument of the command for the header line, as the recorded
 * summary shows it (summary.c's put_command): quoted where a shell would
 * need it. */
static void put_arg(wm_buf *b, const char *a)
{
	put_text(b, a, !*a || strpbrk(a, " \t'\"\\$`!*?;&|<>()[]{}#~") != NULL);
}

/* The summary of an unrecorded run, from the snapshot after the stop's
 * final sample: JSON
 * (the same keys as a recording's summary where they exist, plus
 * "recorded": false and why) or text. */
static char *unrecorded_summary(const wm_snapshot *s, char **cmd, int code, const char *why, int as_json)
{
	wm_buf b;
	wm_buf_init(&b);
	if (as_json) {
		wm_buf_puts(&b, "{\"recorded\":false,\"recording\":null,\"why_not_recorded\":");
		wm_buf_json_str(&b, why);
		wm_buf_printf(&b, ",\"exit_status\":%d,\"duration_s\":", code);
		wm_buf_json_fixed(&b, s ? s->elapsed_s : 0, 3);
		wm_buf_puts(&b, ",\"energy_j\":{");
		for (size_t i = 0; s && i < s->n_devices; i++) {
			wm_buf_puts(&b, i ? "," : "");
			wm_buf_json_str(&b, s->devices[i].name);
			wm_buf_puts(&b, ":");
			wm_buf_json_fixed(&b, s->devices[i].energy_j, 6);
		}
		wm_buf_puts(&b, "},\"method\":{");
		for (size_t i = 0; s && i < s->n_devices; i++) {
			wm_buf_puts(&b, i ? "," : "");
			wm_buf_json_str(&b, s->devices[i].name);
			wm_buf_puts(&b, s->devices[i].modeled ? ":\"modeled\"" : ":\"measured\"");
		}
		wm_buf_puts(&b, "}}\n");
	} else {
		wm_buf_puts(&b, "wattmeter:");
		for (size_t i = 0; cmd[i]; i++) {
			wm_buf_puts(&b, " ");
			put_arg(&b, cmd[i]);
		}
		wm_buf_printf(&b, "  (exit %d, %.1f s, NOT RECORDED)\n", code, s ? s->elapsed_s : 0);
		for (size_t i = 0; s && i < s->n_devices; i++)
			wm_buf_printf(&b, "  %-6s %.1f J  %s\n", s->devices[i].name, s->devices[i].energy_j,
				      s->devices[i].modeled ? "modeled" : "measured");
		wm_buf_puts(&b, "  not recorded: ");
		put_text(&b, why, 0); /* it names the folder the user gave */
		wm_buf_puts(&b, "\n");
	}
	if (wm_buf_error(&b)) {
		wm_buf_free(&b);
		return NULL;
	}
	return b.data; /* NUL-terminated by wm_buf */
}

/* The reader sees an incomplete recording and can only guess that the run
 * was killed; we know why it is incomplete (a full disk): the guess is
 * replaced by the cause. Returns text, or a new string (text freed). */
static char *name_the_real_cause(char *text, const char *cause)
{
	const char *guess = "  recording incomplete: the run was killed;";
	char *at = strstr(text, guess);
	if (!at)
		return text;
	char *eol = strchr(at, '\n');
	wm_buf b;
	wm_buf_init(&b);
	wm_buf_append(&b, text, (size_t)(at - text));
	wm_buf_printf(&b, "  recording incomplete (the run was not killed): %s; totals up to the last "
			  "complete sample", cause);
	wm_buf_puts(&b, eol ? eol : "\n");
	if (wm_buf_error(&b)) {
		wm_buf_free(&b);
		return text;
	}
	free(text);
	return b.data;
}

static int write_summary_file(const char *path, wm_outfile *f, const char *json)
{
	int rc = wm_outfile_commit(f, json, strlen(json));
	if (rc)
		fprintf(stderr, "wattmeter run: cannot write the summary to %s: %s\n", path, strerror(-rc));
	return rc;
}

/* The recording's JSON summary as `run` prints and writes it: the
 * reader's, ending with a newline (a JSON line of its own). */
static char *recorded_json(const char *dir, char *err, size_t errlen)
{
	char *json = wm_report_json(dir, err, errlen);
	if (!json)
		return NULL;
	wm_buf b;
	wm_buf_init(&b);
	wm_buf_puts(&b, json);
	while (b.len && !wm_buf_error(&b) && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == ' '))
		b.data[--b.len] = '\0';
	wm_buf_puts(&b, "\n");
	free(json);
	if (wm_buf_error(&b)) {
		wm_buf_free(&b);
		(void)wm_err(err, errlen, -ENOMEM, "out of memory");
		return NULL;
	}
	return b.data;
}

/* Writes to stderr until the first failure (EPIPE: nobody reads it any
 * more), then stays silent: what cannot be shown is dropped, never fatal. */
struct out_state {
	int broken;
};

static void say(struct out_state *os, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct out_state *os, const char *fmt, ...)
{
	if (os->broken)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (n < 0 || fflush(stderr) == EOF)
		os->broken = 1;
}

/* The meter's config from the options (no recording, command or reaper
 * yet): the same for the up-front check and for the start. */
static void config_from_opts(const struct run_opts *o, wm_meter_config *c)
{
	wm_meter_config_init(c);
	meter_opts_apply(&o->m, c);
	c->pids = o->pids;
	c->n_pids = o->n_pids;
	c->include_pids = o->include_pids;
	c->n_include_pids = o->n_include_pids;
	c->include_name = o->include_name;
	c->include_cgroup = o->include_cgroup;
	c->include_unit = o->include_unit;
	c->cgroup = o->cgroup;
}

int cmd_run(int argc, char **argv)
{
	struct run_opts o = {0};
	meter_opts_init(&o.m);
	int prc = parse_args(argc, argv, &o);
	if (prc > 0)
		return cli_finish_stdout();
	if (prc < 0)
		return CLI_EXIT_USAGE;
	char **cmd = argv + optind;

	/* Anything else the core would refuse is a usage error too (exit 2),
	 * found before anything runs. */
	{
		char cerr[512];
		wm_meter_config chk;
		config_from_opts(&o, &chk);
		if (wm_meter_config_check(&chk, cerr, sizeof cerr) < 0) {
			fprintf(stderr, "wattmeter run: %s (see 'wattmeter run --help')\n", cerr);
			return CLI_EXIT_USAGE;
		}
	}

	char path[4096];
	int rc = resolve_command(cmd[0], path, sizeof path);
	if (rc < 0) {
		if (rc == -ENOENT)
			fprintf(stderr, "wattmeter run: %s: command not found (check the name and your PATH)\n", cmd[0]);
		else
			fprintf(stderr, "wattmeter run: %s: cannot execute: %s\n", cmd[0], strerror(-rc));
		return rc == -ENOENT ? CLI_EXIT_NOTFOUND : CLI_EXIT_NOEXEC;
	}

	/* The scripts' channel is opened first: a path that cannot be written
	 * is known before anything runs. */
	/* Written through a temp file renamed over it, never through a planted
	 * link (base/safepath.h, docs/privileges.md). */
	int summary_fd = -1; /* >= 0: summary_out is open */
	wm_outfile summary_out;
	if (o.summary_json) {
		char serr[512];
		if (wm_outfile_open(&summary_out, o.summary_json, serr, sizeof serr) < 0) {
			fprintf(stderr, "wattmeter run: cannot write --summary-json %s: %s (choose a writable path)\n",
				o.summary_json, serr);
			return CLI_EXIT_FAILURE;
		}
		summary_fd = 1;
	}

	char err[1024] = "";
	char why_unrecorded[1200] = "";
	char outdir[4096] = "";
	if (o.output) {
		if (snprintf(outdir, sizeof outdir, "%s", o.output) >= (int)sizeof outdir) {
			fprintf(stderr, "wattmeter run: output folder name too long\n");
			if (summary_fd >= 0)
				wm_outfile_abort(&summary_out);
			return CLI_EXIT_USAGE;
		}
	} else if (default_output_dir(outdir, sizeof outdir, err, sizeof err) < 0) {
		(void)snprintf(why_unrecorded, sizeof why_unrecorded, "%s (choose a folder with -o DIR)", err);
		outdir[0] = '\0';
	}

	/* Orphans of the command come to us, not to init: they stay in the
	 * measured tree (we are one of its roots) and we reap them. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		fprintf(stderr, "wattmeter run: warning: cannot become a subreaper (%s): processes the command "
				"orphans will not be measured\n", strerror(errno));

	/* A reader of stderr that goes away (`wattmeter run ... 2>&1 | head`)
	 * must not kill wattmeter with SIGPIPE before it reaps the command and
	 * exits with its status: our writes get EPIPE instead. The command gets
	 * the default back before its exec (child_exec). Set before any thread
	 * exists; the sampler never writes to a pipe. */
	struct sigaction ign = {.sa_handler = SIG_IGN};
	sigemptyset(&ign.sa_mask);
	sigaction(SIGPIPE, &ign, NULL);

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

	struct run_cgroup cgnew = {.procs_fd = -1};
	if (o.cgroup_new) {
		char why[4600];
		if (run_cgroup_create(&cgnew, why, sizeof why) < 0)
			fprintf(stderr, "wattmeter run: warning: --cgroup: %s; measuring the process tree instead\n", why);
		else
			o.cgroup = cgnew.path;
	}

	wm_meter_config cfg;
	config_from_opts(&o, &cfg);
	cfg.output_dir = outdir[0] ? outdir : NULL;
	cfg.reaper_pid = getpid();
	cfg.command = (const char *const *)cmd;

	wm_meter *m = NULL;
	rc = wm_meter_start(&cfg, &m, err, sizeof err);
	if (rc < 0 && cfg.output_dir) {
		/* Again without a recording: if that starts, the recording was the
		 * problem, and the command runs measured but unrecorded. */
		char err2[1024] = "";
		cfg.output_dir = NULL;
		if (wm_meter_start(&cfg, &m, err2, sizeof err2) == 0) {
			(void)snprintf(why_unrecorded, sizeof why_unrecorded, "%s", err);
			rc = 0;
		}
		if (!o.output)
			(void)rmdir(outdir); /* the folder we made for it, if still empty */
	}
	if (rc < 0) {
		/* Nothing was forked yet. */
		run_cgroup_remove(&cgnew);
		sigprocmask(SIG_SETMASK, &old, NULL);
		fprintf(stderr, "wattmeter run: %s\n", err);
		if (summary_fd >= 0)
			wm_outfile_abort(&summary_out);
		return CLI_EXIT_FAILURE;
	}
	if (why_unrecorded[0])
		fprintf(stderr, "wattmeter run: warning: NOT RECORDING: %s; the command runs, measured, and only "
				"the summary below is kept\n", why_unrecorded);

	{
		wm_snapshot *s = snapshot_take(m);
		for (size_t i = 0; s && i < s->n_devices; i++)
			if (s->devices[i].modeled)
				fprintf(stderr,
					"wattmeter: no readable RAPL counters: %s power is MODELED, not measured "
					"('wattmeter sensors' says why and how to fix it)\n",
					s->devices[i].name);
		snapshot_free(s);
	}

	/* The control socket for windows from the command (WATTMETER_CONTROL,
	 * cli/control.h): a recorded run only; failing to make it is a warning. */
	struct cli_control ctl = {.fd = -1, .stop_r = -1, .stop_w = -1};
	if (!why_unrecorded[0] && cli_control_start(&ctl, m, err, sizeof err) < 0)
		fprintf(stderr, "wattmeter run: warning: no windows from the command: %s\n", err);

	struct live live = {0};
	live_begin(&live, !o.quiet);

	int errp[2] = {-1, -1};
	pid_t child = -1;
	if (pipe2(errp, O_CLOEXEC) < 0) {
		fprintf(stderr, "wattmeter run: pipe: %s\n", strerror(errno));
	} else {
		fflush(NULL);
		child = fork();
		if (child == 0) {
			close(errp[0]);
			child_exec(errp[1], path, cmd, &old, &cgnew);
		}
		if (child < 0)
			fprintf(stderr, "wattmeter run: fork: %s\n", strerror(errno));
		close(errp[1]);
	}

	int code = CLI_EXIT_FAILURE;
	if (child > 0) {
		/* EOF on the close-on-exec pipe: CMD is executing. Only now is it
		 * added, so that it is first seen with its own command line. */
		int exec_errno = 0;
		ssize_t r;
		do
			r = read(errp[0], &exec_errno, sizeof exec_errno);
		while (r < 0 && errno == EINTR);
		if (r == (ssize_t)sizeof exec_errno) {
			live_end(&live);
			fprintf(stderr, "wattmeter run: cannot execute %s: %s\n", path, strerror(exec_errno));
		} else {
			int arc = wm_meter_add_pid(m, (int)child);
			if (arc < 0 && arc != -ESRCH)
				fprintf(stderr, "wattmeter run: warning: cannot measure the command (pid %d): %s\n",
					(int)child, strerror(-arc));
		}
		code = exit_code_of(supervise(child, m, &live, &mask));
	}
	if (errp[0] >= 0)
		close(errp[0]);
	live_end(&live);

	/* Both paths take their figures after the stop, which takes a final
	 * sample (process tier forced): the recording's last line, and for an
	 * unrecorded run the snapshot that sample leaves. Taken before the stop,
	 * an unrecorded run lost its tail (up to a period: all of a run shorter
	 * than one). */
	cli_control_stop(&ctl); /* its last datagrams become edges before the stop */
	rc = wm_meter_stop(m, code, err, sizeof err);
	wm_snapshot *last = why_unrecorded[0] ? snapshot_take(m) : NULL;
	wm_meter_free(m);
	run_cgroup_remove(&cgnew);
	/* The supervisor's signals stay blocked until we exit: one that came
	 * after the command's exit (`timeout -s INT` signals us and then our
	 * whole group, so a second SIGINT can be pending) would otherwise kill
	 * us here, at the default action, before the summary and the
	 * `recording:` line (issue 15 item 10). What is pending is dropped at
	 * exit; the command's status is what we exit with. */
	char stop_err[1024] = "";
	if (rc < 0)
		(void)snprintf(stop_err, sizeof stop_err, "%s", err);

	/* From here on every write to stderr goes through say(): a reader that
	 * went away (`2>&1 | head -1`) gives EPIPE (SIGPIPE is ignored), the
	 * summary is not shown, and the exit status is still the command's. */
	struct out_state os = {0};
	char *json = NULL;
	if (why_unrecorded[0]) {
		if (o.json || summary_fd >= 0)
			json = unrecorded_summary(last, cmd, code, why_unrecorded, 1);
		char *text = o.json ? NULL : unrecorded_summary(last, cmd, code, why_unrecorded, 0);
		if (o.json && json)
			say(&os, "%s", json);
		else if (text)
			say(&os, "%s", text);
		free(text);
	} else {
		if (o.json || summary_fd >= 0) {
			json = recorded_json(outdir, err, sizeof err);
			if (!json)
				say(&os, "wattmeter run: cannot summarise %s: %s\n", outdir, err);
		}
		char *text = o.json ? NULL : wm_report_text(outdir, 5, err, sizeof err);
		if (text && stop_err[0]) {
			char *t = name_the_real_cause(text, stop_err);
			if (t != text)
				stop_err[0] = '\0'; /* said in the summary */
			text = t;
		}
		if (o.json && json)
			say(&os, "%s", json); /* ends with its newline: a JSON line of its own */
		else if (text)
			say(&os, "%s", text);
		else if (!o.json)
			say(&os, "wattmeter run: cannot summarise %s: %s\n", outdir, err);
		free(text);
		say(&os, "recording: %s   (wattmeter report %s)\n", outdir, outdir);
	}
	if (summary_fd >= 0) {
		if (json) {
			(void)write_summary_file(o.summary_json, &summary_out, json); /* says why it failed */
		} else {
			wm_outfile_abort(&summary_out);
			say(&os, "wattmeter run: no summary to write to %s\n", o.summary_json);
		}
		say(&os, "summary: %s\n", o.summary_json);
	}
	/* Last, where it is seen, unless the summary said it: why the recording
	 * is incomplete (a full disk, not a killed run). */
	if (stop_err[0])
		say(&os, "wattmeter run: the recording is incomplete (the run was not killed): %s\n", stop_err);
	free(json);
	snapshot_free(last);
	return code;
}
