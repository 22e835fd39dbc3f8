/* cmd_report.c — `wattmeter report DIR... [--json | --columns | --html FILE]`
 * with carbon and cost options. One DIR: its summary; several: side by side. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/safepath.h"
#include "cli.h"
#include "base/util.h"
#include "recording/carbon.h"
#include "recording/html.h"
#include "recording/record.h"
#include "recording/requests.h"
#include "recording/windows.h"
#include "wattmeter.h"

#define TOP_MAX 100000

static void usage(FILE *out)
{
	fprintf(out,
		"usage: wattmeter report [--json | --columns | --html FILE] [--top N] [--windows NAME]\n"
		"                        [--grid-intensity G] [--pue X] [--price P --currency CUR]\n"
		"                        DIR [DIR...]\n"
		"       wattmeter report --list-grids\n"
		"\n"
		"Summarise the recording in DIR (written by 'wattmeter run' or wattmeter.Meter):\n"
		"duration, energy and average/peak power per device, energy attributed to the\n"
		"measured processes, top processes, and whether each figure is measured or\n"
		"modeled. A recording cut short by a crash is read up to its last complete sample.\n"
		"With several DIRs, the runs are compared side by side.\n"
		"\n"
		"  --json               print the machine-readable summary (schema: docs/recording.md)\n"
		"  --columns            print the time series of one DIR as JSON columns\n"
		"  --html FILE          write a self-contained HTML report with plots (no scripts,\n"
		"                       no network needed to view it)\n"
		"  --windows NAME       list every window named NAME (Meter.window, wattmeter mark);\n"
		"                       the summary's windows table groups them by name\n"
		"  --top N              list the N processes that spent the most energy\n"
		"                       (0 to %d; default 5, and 10 in --html)\n"
		"  --grid-intensity G   grid carbon intensity: G gCO2e/kWh (0 to %.0f), or a\n"
		"                       country code (FR, DE, US ...) from the shipped table of\n"
		"                       yearly averages; without it no CO2e figure is shown\n"
		"  --pue X              data-centre power usage effectiveness, %.1f to %.1f (default 1:\n"
		"                       energy at the machine only)\n"
		"  --price P            electricity price per kWh, 0 to %.0f; needs --currency\n"
		"  --currency CUR       three-letter currency code of --price (EUR, USD ...)\n"
		"  --list-grids         print the shipped grid-intensity table with its source\n"
		"  --job                the DIRs (recordings, or folders of them) are one job's ranks and\n"
		"                       nodes: merge them (energy per node, device, rank; total; span)\n"
		"  -h, --help           show this help\n"
		"\n"
		"Nothing is fetched from the network: intensities come from the shipped table\n"
		"(%s) or from you.\n",
		TOP_MAX, WM_CARBON_INTENSITY_MAX, WM_CARBON_PUE_MIN, WM_CARBON_PUE_MAX, WM_CARBON_PRICE_MAX,
		wm_grid_source);
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

/* Writes the whole buffer to path: a temp file in its folder renamed over
 * it, never through a planted link (base/safepath.h, docs/privileges.md). */
static int write_file(const char *path, const char *data, size_t n)
{
	wm_outfile f;
	char why[512];
	if (wm_outfile_open(&f, path, why, sizeof why) < 0) {
		fprintf(stderr, "wattmeter report: cannot write %s: %s (choose a writable path for --html)\n", path,
			why);
		return 1;
	}
	int rc = wm_outfile_commit(&f, data, n);
	if (rc < 0) {
		fprintf(stderr, "wattmeter report: cannot write %s: %s\n", path, strerror(-rc));
		return 1;
	}
	return 0;
}

enum { OPT_HTML = 256, OPT_GRID, OPT_PUE, OPT_PRICE, OPT_CURRENCY, OPT_LIST_GRIDS, OPT_WINDOWS, OPT_JOB };

/* Appends "key": js (a JSON document, freed here) to the summary object in
 * out, unless js says the recording has no such file (null_marker). */
static int splice_json(wm_buf *out, const char *key, char *js, const char *null_marker)
{
	if (!js)
		return -errno;
	int rc = 0;
	if (strstr(js, null_marker)) {
		free(js); /* no such file: the summary stays as it was */
		return 0;
	}
	while (out->len && (out->data[out->len - 1] == '\n' || out->data[out->len - 1] == ' '))
		out->len--;
	if (out->len && out->data[out->len - 1] == '}') {
		out->len--;
		wm_buf_printf(out, ",\"%s\":", key);
		wm_buf_puts(out, js);
		wm_buf_puts(out, "}\n");
		rc = wm_buf_error(out) ? -ENOMEM : 0;
	}
	free(js);
	return rc;
}

/* "windows" (wm_report_windows_json) when the recording has windows.jsonl,
 * "requests" (their figures) when it has requests.jsonl. */
static int splice_windows_json(const char *dir, wm_buf *out, char *err, size_t errlen)
{
	int rc = splice_json(out, "windows", wm_report_windows_json(dir, NULL, err, errlen), "\"windows_version\":null");
	if (!rc)
		rc = splice_json(out, "requests", wm_requests_summary_json(dir, err, errlen), "\"requests_version\":null");
	return rc;
}

/* Appends "windows" (per run: its groups) to the comparison object in out,
 * when a run has windows. */
static int splice_compare_windows(const char *const *dirs, size_t n, wm_buf *out)
{
	wm_buf w;
	wm_buf_init(&w);
	int rc = wm_windows_compare(dirs, n, 1, &w);
	while (rc > 0 && out->len && (out->data[out->len - 1] == '\n' || out->data[out->len - 1] == ' '))
		out->len--;
	if (rc > 0 && out->len && out->data[out->len - 1] == '}') {
		out->len--;
		wm_buf_puts(out, ",\"windows\":");
		wm_buf_append(out, w.data, w.len);
		wm_buf_puts(out, "}\n");
	}
	wm_buf_free(&w);
	return rc < 0 ? rc : wm_buf_error(out) ? -ENOMEM : 0;
}

int cmd_report(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"columns", no_argument, NULL, 'c'},
		{"top", required_argument, NULL, 't'},
		{"html", required_argument, NULL, OPT_HTML},
		{"grid-intensity", required_argument, NULL, OPT_GRID},
		{"pue", required_argument, NULL, OPT_PUE},
		{"price", required_argument, NULL, OPT_PRICE},
		{"currency", required_argument, NULL, OPT_CURRENCY},
		{"list-grids", no_argument, NULL, OPT_LIST_GRIDS},
		{"windows", required_argument, NULL, OPT_WINDOWS},
		{"job", no_argument, NULL, OPT_JOB},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int as_json = 0, columns = 0, list_grids = 0, job = 0;
	int top = -1;
	const char *html = NULL, *windows = NULL;
	struct wm_carbon_opts carbon;
	wm_carbon_opts_init(&carbon);
	char err[1024] = "";
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "jt:h", opts, NULL)) != -1) {
		int rc = 0;
		switch (c) {
		case 'j': as_json = 1; break;
		case 'c': columns = 1; break;
		case 't': {
			uint64_t v;
			if (wm_parse_u64_full(optarg, &v) < 0 || v > TOP_MAX) {
				fprintf(stderr, "wattmeter report: --top wants a count from 0 to %d, not '%s'\n", TOP_MAX,
					optarg);
				return CLI_EXIT_USAGE;
			}
			top = (int)v;
			break;
		}
		case OPT_HTML:
			if (!*optarg) {
				fprintf(stderr, "wattmeter report: --html wants a file name\n");
				return CLI_EXIT_USAGE;
			}
			html = optarg;
			break;
		case OPT_GRID: rc = wm_carbon_set_intensity(&carbon, optarg, err, sizeof err); break;
		case OPT_PUE: rc = wm_carbon_set_pue(&carbon, optarg, err, sizeof err); break;
		case OPT_PRICE: rc = wm_carbon_set_price(&carbon, optarg, err, sizeof err); break;
		case OPT_CURRENCY: rc = wm_carbon_set_currency(&carbon, optarg, err, sizeof err); break;
		case OPT_LIST_GRIDS: list_grids = 1; break;
		case OPT_WINDOWS:
			if (!*optarg) {
				fprintf(stderr, "wattmeter report: --windows wants a window name\n");
				return CLI_EXIT_USAGE;
			}
			windows = optarg;
			break;
		case OPT_JOB: job = 1; break;
		case 'h': usage(stdout); return cli_finish_stdout();
		default: usage(stderr); return CLI_EXIT_USAGE;
		}
		if (rc < 0) {
			fprintf(stderr, "wattmeter report: %s\n", err);
			return CLI_EXIT_USAGE;
		}
	}
	if (wm_carbon_check(&carbon, err, sizeof err) < 0) {
		fprintf(stderr, "wattmeter report: %s\n", err);
		return CLI_EXIT_USAGE;
	}
	if (list_grids) {
		wm_buf b;
		wm_buf_init(&b);
		int rc = wm_carbon_table_text(&b);
		if (rc == 0)
			fputs(b.data, stdout);
		wm_buf_free(&b);
		return rc ? 1 : cli_finish_stdout();
	}
	size_t n = argc > optind ? (size_t)(argc - optind) : 0;
	if (n == 0) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (job) {
		if (columns || html) {
			fprintf(stderr, "wattmeter report: --job takes --json or nothing (not --columns or --html)\n");
			return CLI_EXIT_USAGE;
		}
		wm_buf jb;
		wm_buf_init(&jb);
		int rc = wm_job_report((const char *const *)(argv + optind), n, as_json, &jb, err, sizeof err);
		if (rc < 0) {
			fprintf(stderr, "wattmeter report: %s\n", err);
			wm_buf_free(&jb);
			return 1;
		}
		fputs(jb.data ? jb.data : "", stdout);
		if (as_json)
			fputc('\n', stdout);
		wm_buf_free(&jb);
		return cli_finish_stdout();
	}
	if (as_json + columns + (html != NULL) > 1) {
		fprintf(stderr, "wattmeter report: choose one of --json, --columns and --html\n");
		return CLI_EXIT_USAGE;
	}
	if (windows && (n > 1 || columns || html)) {
		fprintf(stderr, "wattmeter report: --windows takes one DIR, with or without --json\n");
		return CLI_EXIT_USAGE;
	}
	if (windows) {
		char *js = as_json ? wm_report_windows_json(argv[optind], windows, err, sizeof err) : NULL;
		wm_buf wb;
		wm_buf_init(&wb);
		int rc = as_json ? (js ? 0 : -1) : wm_windows_text(argv[optind], windows, &wb, err, sizeof err);
		if (rc < 0) {
			fprintf(stderr, "wattmeter report: %s\n", err);
			wm_buf_free(&wb);
			return 1;
		}
		fputs(as_json ? js : (wb.data ? wb.data : ""), stdout);
		if (as_json)
			fputc('\n', stdout);
		free(js);
		wm_buf_free(&wb);
		return cli_finish_stdout();
	}
	if (columns && n > 1) {
		fprintf(stderr, "wattmeter report: --columns takes one DIR (got %zu)\n", n);
		return CLI_EXIT_USAGE;
	}

	wm_recording **recs = calloc(n, sizeof *recs);
	if (!recs) {
		fprintf(stderr, "wattmeter report: out of memory\n");
		return 1;
	}
	int ret = 0;
	for (size_t i = 0; i < n && !ret; i++) {
		if (wm_recording_open(argv[optind + (int)i], &recs[i], err, sizeof err) < 0) {
			fprintf(stderr, "wattmeter report: %s\n", err);
			ret = 1;
		}
	}
	wm_buf out;
	wm_buf_init(&out);
	if (!ret) {
		const wm_recording *const *rr = (const wm_recording *const *)recs;
		int rc;
		if (html) {
			struct wm_html_opts ho = {.top_n = top >= 0 ? top : 10, .carbon = &carbon};
			rc = wm_html_report(rr, n, &ho, &out);
		} else if (columns) {
			rc = wm_recording_columns_json(rr[0], &out);
		} else if (as_json) {
			rc = n == 1 ? wm_recording_summary_json_carbon(rr[0], &carbon, &out)
				    : wm_recording_compare_json(rr, n, &carbon, &out);
			if (!rc && n > 1)
				rc = splice_compare_windows((const char *const *)argv + optind, n, &out);
			if (!rc && n == 1 && (rc = splice_windows_json(argv[optind], &out, err, sizeof err)) < 0) {
				fprintf(stderr, "wattmeter report: %s\n", err);
				ret = 1;
				rc = 0;
			}
		} else if (n == 1) {
			rc = wm_recording_summary_text(rr[0], top >= 0 ? top : 5, &out);
			if (!rc)
				rc = wm_recording_carbon_text(rr[0], &carbon, &out);
			if (!rc && wm_windows_text(argv[optind], NULL, &out, err, sizeof err) < 0)
				fprintf(stderr, "wattmeter report: windows not shown: %s\n", err);
			if (!rc && wm_requests_text(argv[optind], &out, err, sizeof err) < 0)
				fprintf(stderr, "wattmeter report: requests not shown: %s\n", err);
		} else {
			rc = wm_recording_compare_text(rr, n, &carbon, &out);
			if (!rc)
				rc = wm_windows_compare((const char *const *)argv + optind, n, 0, &out) < 0 ? -ENOMEM : 0;
		}
		if (rc < 0) {
			fprintf(stderr, "wattmeter report: cannot render the report: %s\n", strerror(-rc));
			ret = 1;
		}
	}
	if (ret) {
		/* an error was printed above */
	} else if (html) {
		ret = write_file(html, out.data ? out.data : "", out.len);
		if (!ret)
			fprintf(stderr, "wattmeter report: wrote %s (%zu bytes)\n", html, out.len);
	} else {
		fputs(out.data ? out.data : "", stdout);
		if (out.len && out.data[out.len - 1] != '\n')
			fputc('\n', stdout);
		ret = cli_finish_stdout();
	}
	wm_buf_free(&out);
	for (size_t i = 0; i < n; i++)
		wm_recording_free(recs[i]);
	free(recs);
	return ret;
}
