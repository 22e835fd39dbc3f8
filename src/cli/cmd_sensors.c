/* cmd_sensors.c — `wattmeter sensors [--json] [--sysfs-root P] [--procfs-root P]`. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "wattmeter.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: wattmeter sensors [--json] [--sysfs-root PATH] [--procfs-root PATH]\n"
		"                         [--nvml-lib PATH] [--no-gpu]\n"
		"\n"
		"List every energy source wattmeter can use on this machine with its state\n"
		"(ok, absent, permission denied, modeled) and, for each problem, the fix.\n"
		"\n"
		"  --json              machine-readable output\n"
		"  --sysfs-root PATH   read powercap from PATH/class/powercap (default /sys)\n"
		"  --procfs-root PATH  read processes and CPU times from PATH (default /proc)\n"
		"  --nvml-lib PATH     NVIDIA GPUs: load this libnvidia-ml (default: $WATTMETER_NVML_LIB,\n"
		"                      then libnvidia-ml.so.1)\n"
		"  --no-gpu            do not look for NVIDIA GPUs\n"
		"  -h, --help          show this help\n");
}

int cmd_sensors(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"sysfs-root", required_argument, NULL, 's'},
		{"procfs-root", required_argument, NULL, 'p'},
		{"nvml-lib", required_argument, NULL, 'n'},
		{"no-gpu", no_argument, NULL, 'G'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int as_json = 0, no_gpu = 0;
	const char *nvml_lib = NULL;
	const char *sysfs = WM_DEFAULT_SYSFS_ROOT, *procfs = WM_DEFAULT_PROCFS_ROOT;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (c) {
		case 'j': as_json = 1; break;
		case 's': sysfs = optarg; break;
		case 'p': procfs = optarg; break;
		case 'n': nvml_lib = optarg; break;
		case 'G': no_gpu = 1; break;
		case 'h': usage(stdout); return cli_finish_stdout();
		default: usage(stderr); return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	char err[1024] = "";
	wm_meter_config cfg;
	wm_meter_config_init(&cfg);
	cfg.sysfs_root = sysfs;
	cfg.procfs_root = procfs;
	cfg.nvml_lib = nvml_lib;
	cfg.no_gpu = no_gpu;
	char *out = wm_sensors_describe(&cfg, as_json, err, sizeof err);
	if (!out) {
		fprintf(stderr, "wattmeter sensors: %s\n", err);
		return 1;
	}
	fputs(out, stdout);
	free(out);
	return cli_finish_stdout();
}
