/* meter_opts.h — the measuring options every measuring command takes
 * (`run`, `proxy`): sampling periods, roots, the CPU model, NVML. One
 * parser, one help text, one mapping onto wm_meter_config, so the commands
 * cannot drift apart.
 *
 * A command splices METER_OPTS_LONGOPTS into its getopt_long table (codes
 * from METER_O_FIRST up: a command's own codes stay below it) and hands
 * every option to meter_opts_parse first. */
#ifndef WM_CLI_METER_OPTS_H
#define WM_CLI_METER_OPTS_H

#include <stdio.h>

#include "wattmeter.h"

enum {
	METER_O_FIRST = 1000,
	METER_O_PERIOD = METER_O_FIRST,
	METER_O_PROC,
	METER_O_MEM,
	METER_O_NOMEM,
	METER_O_SYS,
	METER_O_PROCFS,
	METER_O_MIN,
	METER_O_MAX,
	METER_O_FORCE,
	METER_O_NVML,
	METER_O_NOGPU,
	METER_O_GPUEXCL,
	METER_O_HOSTPROC,
};

#define METER_OPTS_LONGOPTS                                                      \
	{"period", required_argument, NULL, METER_O_PERIOD},                     \
	{"proc-period", required_argument, NULL, METER_O_PROC},                  \
	{"mem-period", required_argument, NULL, METER_O_MEM},                    \
	{"no-memory", no_argument, NULL, METER_O_NOMEM},                         \
	{"sysfs-root", required_argument, NULL, METER_O_SYS},                    \
	{"procfs-root", required_argument, NULL, METER_O_PROCFS},                \
	{"model-min-w", required_argument, NULL, METER_O_MIN},                   \
	{"model-max-w", required_argument, NULL, METER_O_MAX},                   \
	{"force-model", no_argument, NULL, METER_O_FORCE},                       \
	{"nvml-lib", required_argument, NULL, METER_O_NVML},                     \
	{"no-gpu", no_argument, NULL, METER_O_NOGPU},                            \
	{"gpu-exclusive", no_argument, NULL, METER_O_GPUEXCL},                   \
	{"host-procfs", required_argument, NULL, METER_O_HOSTPROC}

struct meter_opts {
	const char *sysfs_root, *procfs_root, *nvml_lib;
	const char *host_procfs; /* inside a container: the host's /proc mounted in */
	double period_s, proc_period_s, mem_period_s;
	double model_min_w, model_max_w;
	int force_model, no_gpu, gpu_exclusive;
};

/* The core's defaults. */
void meter_opts_init(struct meter_opts *o);
/* One option: 1 if it was a measuring option (taken), 0 if not, -1 after
 * a message on stderr naming `wattmeter CMD` (exit CLI_EXIT_USAGE). */
int meter_opts_parse(const char *cmd, int code, const char *arg, struct meter_opts *o);
/* After the last option: the cross checks (idle watts <= busy watts) and
 * the process period raised to the counter period. 0 or -1 after a message. */
int meter_opts_finish(const char *cmd, struct meter_opts *o);
/* Sets c's measuring fields (leaves the rest as it is). */
void meter_opts_apply(const struct meter_opts *o, wm_meter_config *c);
/* The options' help lines (two-space indent, the text at column 25). */
void meter_opts_usage(FILE *out);

/* A path option's value; refuses one that looks like an option (`-o --`
 * would otherwise make a folder named "--"). 0, or -EINVAL after a message. */
int cli_path_option(const char *cmd, const char *opt, const char *value, const char **out);

#endif
