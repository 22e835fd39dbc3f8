/* cmd_report.c — `wattmeter report DIR [--json] [--top N]`. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "base/util.h"
#include "wattmeter.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: wattmeter report [--json] [--top N] DIR\n"
		"\n"
		"Summarise the recording in DIR (written by 'wattmeter run' or wattmeter.Meter):\n"
		"duration, energy and average/peak power per device, energy attributed to the\n"
		"measured processes, top processes, and whether each figure is measured or\n"
		"modeled. A recording cut short by a crash is read up to its last complete sample.\n"
		"\n"
		"  --json     print the machine-readable summary (schema: docs/recording.md)\n"
		"  --columns  print the time series as JSON columns\n"
		"  --top N    list the N processes that spent the most energy (default 5)\n"
		"  -h, --help show this help\n");
}

int cli_finish_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "wattmeter: cannot write to standard output: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

int cli_parse_seconds(const char *s, int allow_zero, double *out)
{
	double v;
	if (wm_parse_double_full(s, &v) < 0 || v < 0 || (v == 0 && !allow_zero))
		return -EINVAL;
	*out = v;
	return 0;
}

int cmd_report(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"columns", no_argument, NULL, 'c'},
		{"top", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int as_json = 0, columns = 0;
	int top = 5;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "jt:h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': as_json = 1; break;
		case 'c': columns = 1; break;
		case 't': {
			uint64_t v;
			if (wm_parse_u64_full(optarg, &v) < 0 || v > 100000) {
				fprintf(stderr, "wattmeter report: --top wants a count, not '%s'\n", optarg);
				return CLI_EXIT_USAGE;
			}
			top = (int)v;
			break;
		}
		case 'h': usage(stdout); return cli_finish_stdout();
		default: usage(stderr); return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	char err[1024] = "";
	char *out = columns ? wm_report_columns_json(argv[optind], err, sizeof err)
		    : as_json ? wm_report_json(argv[optind], err, sizeof err)
			      : wm_report_text(argv[optind], top, err, sizeof err);
	if (!out) {
		fprintf(stderr, "wattmeter report: %s\n", err);
		return 1;
	}
	fputs(out, stdout);
	if (out[0] && out[strlen(out) - 1] != '\n')
		fputc('\n', stdout);
	free(out);
	return cli_finish_stdout();
}
