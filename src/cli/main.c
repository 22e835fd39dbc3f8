/* main.c — `wattmeter <command> [options]`: a command table, as perf and git
 * have, one file per command (cmd_<name>.c). */
#include <stdio.h>
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
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: wattmeter [--version] [--help] <command> [<args>]\n"
		"\n"
		"Measure the energy that CPU packages, DRAM and the platform spend while a\n"
		"command runs, from hardware counters (RAPL) where the machine has them and\n"
		"from a documented, clearly labelled model where it does not.\n"
		"\n"
		"commands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(out,
		"\n"
		"'wattmeter <command> --help' describes a command.\n"
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
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(cmd, commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "wattmeter: '%s' is not a command. See 'wattmeter --help'.\n", cmd);
	return 2;
}
