/* cmd_serve.c — `wattmeter serve [options]`: the whole-machine Prometheus
 * exporter (wattmeter_exporter.h) as a daemon.
 *
 * SIGINT and SIGTERM are blocked before any thread starts (the sampler and
 * libmicrohttpd's threads inherit the mask) and taken with sigwait in the
 * main thread, which then stops sampling, completes the recording if any,
 * closes the server and exits 0. Messages go to stderr; under systemd they
 * land in the journal.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli.h"
#include "outputs/http.h"
#include "wattmeter.h"
#include "wattmeter_exporter.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: wattmeter serve [options]\n"
		"\n"
		"Sample the whole machine (CPU packages, DRAM, platform, GPUs) in the background\n"
		"and answer Prometheus scrapes on http://ADDR:PORT/metrics from the last sample.\n"
		"Stops on SIGINT or SIGTERM.\n"
		"\n"
		"options:\n"
		"  --listen ADDR:PORT       address to serve on (default %s; [::1]:PORT for\n"
		"                           IPv6, :PORT for every interface, port 0: any free one)\n"
		"  --period SECONDS         counter sampling period, %g to %g (default %g)\n"
		"  --sysfs-root PATH        read powercap below PATH (default /sys)\n"
		"  --procfs-root PATH       read processes below PATH (default /proc)\n"
		"  --nvml-lib PATH          NVIDIA GPUs: load this libnvidia-ml (default:\n"
		"                           $WATTMETER_NVML_LIB, then libnvidia-ml.so.1)\n"
		"  --no-gpu                 do not load NVML\n"
		"  --per-process            export energy per process (scans every process)\n"
		"  --per-cgroup             export energy per cgroup v2 (containers, services)\n"
		"  --max-series N           cap on per-process and per-cgroup series, each\n"
		"                           (default %d; what is left out is counted)\n"
		"  --web.config.file FILE   TLS and basic auth, in Prometheus exporter-toolkit's\n"
		"                           format (tls_server_config, basic_auth_users)\n"
		"  --record DIR             also keep a recording in DIR (after a re-probe switch:\n"
		"                           DIR-1, DIR-2 ...)\n"
		"  --reprobe SECONDS        probe absent, forbidden or failing sources again this\n"
		"                           often and switch to them when they read (default %g;\n"
		"                           0: never)\n"
		"  -h, --help               show this help\n"
		"\n"
		"exit status: 0 after SIGINT/SIGTERM, 1 if it could not start, 2 for bad options.\n"
		"\n"
		"example: wattmeter serve --listen 127.0.0.1:5001\n"
		"         curl -s localhost:5001/metrics | grep wattmeter_cpu_power_watts\n",
		WM_EXPORTER_DEFAULT_LISTEN, WM_MIN_PERIOD_S, WM_MAX_PERIOD_S, WM_DEFAULT_PERIOD_S,
		WM_EXPORTER_DEFAULT_MAX_SERIES,
		WM_EXPORTER_DEFAULT_REPROBE_S);
}

/* The exporter's events (a re-probe switch) go to stderr: the journal. */
static void log_event(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "wattmeter serve: %s\n", msg);
	fflush(stderr);
}

int cmd_serve(int argc, char **argv)
{
	enum { O_LISTEN = 256, O_PERIOD, O_SYS, O_PROCFS, O_NVML, O_NOGPU, O_PERPROC, O_PERCG, O_MAX, O_WEB, O_REC,
	       O_REPROBE };
	static const struct option opts[] = {
		{"listen", required_argument, NULL, O_LISTEN},
		{"period", required_argument, NULL, O_PERIOD},
		{"sysfs-root", required_argument, NULL, O_SYS},
		{"procfs-root", required_argument, NULL, O_PROCFS},
		{"nvml-lib", required_argument, NULL, O_NVML},
		{"no-gpu", no_argument, NULL, O_NOGPU},
		{"per-process", no_argument, NULL, O_PERPROC},
		{"per-cgroup", no_argument, NULL, O_PERCG},
		{"max-series", required_argument, NULL, O_MAX},
		{"web.config.file", required_argument, NULL, O_WEB},
		{"record", required_argument, NULL, O_REC},
		{"reprobe", required_argument, NULL, O_REPROBE},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	wm_exporter_config ec;
	wm_exporter_config_init(&ec);
	wm_meter_config mc;
	wm_meter_config_init(&mc);
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		double v;
		uint64_t n;
		char lerr[512];
		switch (c) {
		case 'h': usage(stdout); return cli_finish_stdout();
		case O_LISTEN:
			/* The syntax now, as run checks its values: exit 2 before
			 * anything starts (binding is for the start: exit 1). */
			if (wm_http_check_listen(optarg, lerr, sizeof lerr) < 0) {
				fprintf(stderr, "wattmeter serve: %s (see 'wattmeter serve --help')\n", lerr);
				return CLI_EXIT_USAGE;
			}
			ec.listen = optarg;
			break;
		case O_PERIOD:
			if (cli_number_option("serve", "--period", optarg, WM_MIN_PERIOD_S, WM_MAX_PERIOD_S, 0, "seconds",
					      "0.1", &v) < 0)
				return CLI_EXIT_USAGE;
			mc.period_s = v;
			if (mc.proc_period_s < v)
				mc.proc_period_s = v;
			break;
		case O_SYS: mc.sysfs_root = optarg; break;
		case O_PROCFS: mc.procfs_root = optarg; break;
		case O_NVML: mc.nvml_lib = optarg; break;
		case O_NOGPU: mc.no_gpu = 1; break;
		case O_PERPROC: ec.per_process = 1; break;
		case O_PERCG: ec.per_cgroup = 1; break;
		case O_MAX:
			if (wm_parse_u64_full(optarg, &n) < 0 || n == 0 || n > 1000000) {
				fprintf(stderr, "wattmeter serve: --max-series wants a number 1..1000000, not '%s'\n",
					optarg);
				return CLI_EXIT_USAGE;
			}
			ec.max_series = (size_t)n;
			break;
		case O_WEB: ec.web_config_file = optarg; break;
		case O_REC: ec.record_dir = optarg; break;
		case O_REPROBE:
			if (cli_parse_seconds(optarg, 1, &v) < 0) {
				fprintf(stderr, "wattmeter serve: '%s' is not a valid number of seconds for --reprobe "
						"(0: never)\n", optarg);
				return CLI_EXIT_USAGE;
			}
			ec.reprobe_s = v;
			break;
		default:
			fprintf(stderr, "See 'wattmeter serve --help'.\n");
			return CLI_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "wattmeter serve: unexpected argument '%s' (serve takes no command; see --help)\n",
			argv[optind]);
		return CLI_EXIT_USAGE;
	}

	/* Before any thread exists: every thread inherits this mask, so the
	 * signals wait for sigwait below. */
	sigset_t stop;
	cli_block_stop_signals(&stop);

	ec.on_event = log_event;
	char err[1024];
	wm_exporter *e = NULL;
	int rc = wm_exporter_start(&ec, &mc, &e, err, sizeof err);
	if (rc < 0) {
		fprintf(stderr, "wattmeter serve: %s\n", err);
		return 1;
	}
	/* Warnings after the "serving" line: scripts read that line first. */
	fprintf(stderr, "wattmeter serve: serving %s/metrics (stop with Ctrl-C or SIGTERM)\n", wm_exporter_url(e));
	for (const char *w = wm_exporter_warnings(e); *w;) {
		const char *nl = strchr(w, '\n');
		int n = nl ? (int)(nl - w) : (int)strlen(w);
		fprintf(stderr, "wattmeter serve: warning: %.*s\n", n, w);
		w += n + (nl != NULL);
	}
	fflush(stderr);

	int sig = 0;
	while (sigwait(&stop, &sig) != 0)
		;
	rc = wm_exporter_stop(e, err, sizeof err);
	wm_exporter_free(e);
	if (rc < 0) {
		fprintf(stderr, "wattmeter serve: stopping: %s\n", err);
		return 1;
	}
	fprintf(stderr, "wattmeter serve: stopped (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
	return 0;
}
