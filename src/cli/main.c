/* main.c — `wattmeter <command> [options]`: a command table, as perf and git
 * have, one file per command (cmd_<name>.c). */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "wattmeter.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{"run", cmd_run, "run a command and record the energy it and the machine spent"},
	{"report", cmd_report, "summarise or compare recordings (text, --json, --html; CO2e and cost)"},
	{"sensors", cmd_sensors, "list every energy source, its state, and how to fix problems"},
	{"serve", cmd_serve, "export the whole machine's energy and power to Prometheus"},
	{"proxy", cmd_proxy, "proxy an LLM server and record the energy of every request"},
	{"mark", cmd_mark, "open and close windows of work, or mark an instant, from a command under run"},
};

int cli_parse_decimal(const char *s, double *out)
{
	const char *p = s;
	size_t int_digits = 0, frac_digits = 0;
	while (isdigit((unsigned char)*p)) {
		p++;
		int_digits++;
	}
	if (*p == '.') {
		p++;
		while (isdigit((unsigned char)*p)) {
			p++;
			frac_digits++;
		}
	}
	if (int_digits + frac_digits == 0)
		return -EINVAL;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p)
		return -EINVAL;
	/* The syntax above is a subset of strtod's, so this cannot stop early;
	 * ERANGE (1e999) is out of every range we accept. */
	errno = 0;
	char *end;
	double v = strtod(s, &end);
	if (end != p || errno == ERANGE)
		return -EINVAL;
	*out = v;
	return 0;
}

void cli_block_stop_signals(sigset_t *stop)
{
	sigemptyset(stop);
	sigaddset(stop, SIGINT);
	sigaddset(stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, stop, NULL);
	struct sigaction ign = {.sa_handler = SIG_IGN};
	sigemptyset(&ign.sa_mask);
	sigaction(SIGPIPE, &ign, NULL);
}

int cli_looks_like_option(const char *s)
{
	return s[0] == '-' && s[1] != '\0';
}

int cli_number_option(const char *cmd, const char *opt, const char *value, double lo, double hi,
		      int zero_ok, const char *unit, const char *example, double *out)
{
	double v;
	char range[96];
	int n = zero_ok ? snprintf(range, sizeof range, "0 or %g to %g %s", lo, hi, unit)
			: snprintf(range, sizeof range, "%g to %g %s", lo, hi, unit);
	if (n < 0 || (size_t)n >= sizeof range)
		range[0] = '\0';
	if (cli_parse_decimal(value, &v) < 0) {
		fprintf(stderr, "wattmeter %s: %s '%s' is not a decimal number; give %s (e.g. %s %s)\n", cmd, opt,
			value, range, opt, example);
		return -EINVAL;
	}
	if (!((v >= lo && v <= hi) || (zero_ok && v == 0))) {
		fprintf(stderr, "wattmeter %s: %s %s is out of range; give %s (e.g. %s %s)\n", cmd, opt, value,
			range, opt, example);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: wattmeter [--version] [--help] <command> [<args>]\n"
		"\n"
		"Measure the energy that CPU packages, DRAM, the platform and NVIDIA GPUs spend\n"
		"while a command runs, from hardware counters (RAPL, NVML) where the machine has\n"
		"them and from a documented, clearly labelled model where it does not.\n"
		"\n"
		"commands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(out,
		"\n"
		"'wattmeter <command> --help' describes a command; 'man wattmeter' all of them.\n"
		"example: wattmeter run -o runs/train -- python3 train.py --epochs 1\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		usage(stdout);
		return cli_finish_stdout();
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0 || strcmp(cmd, "version") == 0) {
		printf("wattmeter %s\n", WM_VERSION);
		return cli_finish_stdout();
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(cmd, commands[i].name) != 0)
			continue;
		/* getopt names the program by argv[0] in its own messages
		 * ("unrecognized option"): "wattmeter run", as every other
		 * message of the command starts. */
		static char name[32];
		(void)snprintf(name, sizeof name, "wattmeter %s", commands[i].name);
		argv[1] = name;
		return commands[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "wattmeter: '%s' is not a command. See 'wattmeter --help'.\n", cmd);
	return 2;
}
