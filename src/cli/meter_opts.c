/* meter_opts.c — the measuring options of `run` and `proxy` (meter_opts.h). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "cli/meter_opts.h"

/* --mem-period's ceiling is the core's period range; the CPU model's a
 * watt figure per CPU (the largest server CPUs draw ~500 W a socket). */
#define MAX_MEM_PERIOD_S WM_MAX_PERIOD_S
#define MAX_MODEL_W 1000.0

void meter_opts_init(struct meter_opts *o)
{
	*o = (struct meter_opts){
		.period_s = WM_DEFAULT_PERIOD_S,
		.proc_period_s = WM_DEFAULT_PROC_PERIOD_S,
		.mem_period_s = WM_DEFAULT_MEM_PERIOD_S,
		.model_min_w = WM_DEFAULT_MODEL_MIN_W,
		.model_max_w = WM_DEFAULT_MODEL_MAX_W,
	};
}

int cli_path_option(const char *cmd, const char *opt, const char *value, const char **out)
{
	if (cli_looks_like_option(value) || !*value) {
		fprintf(stderr,
			"wattmeter %s: %s needs a path, not '%s' (was the value forgotten? "
			"for a name that starts with '-', write ./%s)\n",
			cmd, opt, value, value);
		return -EINVAL;
	}
	*out = value;
	return 0;
}

int meter_opts_parse(const char *cmd, int code, const char *arg, struct meter_opts *o)
{
	int rc = 0;
	switch (code) {
	case METER_O_PERIOD:
		rc = cli_number_option(cmd, "--period", arg, WM_MIN_PERIOD_S, WM_MAX_PERIOD_S, 0, "seconds", "0.1",
				       &o->period_s);
		break;
	case METER_O_PROC:
		rc = cli_number_option(cmd, "--proc-period", arg, WM_MIN_PERIOD_S, WM_MAX_PERIOD_S, 0, "seconds", "1",
				       &o->proc_period_s);
		break;
	case METER_O_MEM:
		rc = cli_number_option(cmd, "--mem-period", arg, WM_MIN_PERIOD_S, MAX_MEM_PERIOD_S, 1, "seconds", "10",
				       &o->mem_period_s);
		break;
	case METER_O_NOMEM: o->mem_period_s = 0; break;
	case METER_O_SYS: rc = cli_path_option(cmd, "--sysfs-root", arg, &o->sysfs_root); break;
	case METER_O_PROCFS: rc = cli_path_option(cmd, "--procfs-root", arg, &o->procfs_root); break;
	case METER_O_HOSTPROC: rc = cli_path_option(cmd, "--host-procfs", arg, &o->host_procfs); break;
	case METER_O_MIN:
		rc = cli_number_option(cmd, "--model-min-w", arg, 0, MAX_MODEL_W, 0, "watts", "0.74", &o->model_min_w);
		break;
	case METER_O_MAX:
		rc = cli_number_option(cmd, "--model-max-w", arg, 0, MAX_MODEL_W, 0, "watts", "3.5", &o->model_max_w);
		break;
	case METER_O_FORCE: o->force_model = 1; break;
	case METER_O_NVML: rc = cli_path_option(cmd, "--nvml-lib", arg, &o->nvml_lib); break;
	case METER_O_NOGPU: o->no_gpu = 1; break;
	case METER_O_GPUEXCL: o->gpu_exclusive = 1; break;
	default: return 0;
	}
	return rc < 0 ? -1 : 1;
}

int meter_opts_finish(const char *cmd, struct meter_opts *o)
{
	if (o->model_min_w > o->model_max_w) {
		fprintf(stderr,
			"wattmeter %s: --model-min-w %g is above --model-max-w %g; idle watts must not exceed busy watts\n",
			cmd, o->model_min_w, o->model_max_w);
		return -1;
	}
	if (o->proc_period_s < o->period_s)
		o->proc_period_s = o->period_s;
	return 0;
}

void meter_opts_apply(const struct meter_opts *o, wm_meter_config *c)
{
	c->sysfs_root = o->sysfs_root;
	c->procfs_root = o->procfs_root;
	c->host_procfs_root = o->host_procfs;
	c->period_s = o->period_s;
	c->proc_period_s = o->proc_period_s;
	c->mem_period_s = o->mem_period_s;
	c->model_min_w_per_cpu = o->model_min_w;
	c->model_max_w_per_cpu = o->model_max_w;
	c->force_model = o->force_model;
	c->nvml_lib = o->nvml_lib;
	c->no_gpu = o->no_gpu;
	c->gpu_exclusive = o->gpu_exclusive;
}

void meter_opts_usage(FILE *out)
{
	fprintf(out,
		"  --period SECONDS       counter sampling period, %g to %g (default %g)\n"
		"  --proc-period SECONDS  process scan period, %g to %g; raised to --period if\n"
		"                         shorter (default %g)\n"
		"  --mem-period SECONDS   PSS/USS read period, 0 = off, else %g to %g (default %g)\n"
		"  --no-memory            same as --mem-period 0\n"
		"  --sysfs-root PATH      read powercap below PATH (default /sys)\n"
		"  --procfs-root PATH     read processes below PATH (default /proc)\n"
		"  --model-min-w WATTS    CPU model: watts per CPU when idle, 0 to %g (default %g)\n"
		"  --model-max-w WATTS    CPU model: watts per CPU when busy, min to %g (default %g)\n"
		"  --force-model          model the CPU even where RAPL counters are readable\n"
		"  --nvml-lib PATH        NVIDIA GPUs: load this libnvidia-ml (default: $WATTMETER_NVML_LIB,\n"
		"                         then libnvidia-ml.so.1)\n"
		"  --no-gpu               do not look for NVIDIA GPUs\n"
		"  --gpu-exclusive        bill the measured GPUs (CUDA_VISIBLE_DEVICES) whole to the\n"
		"                         measured set, e.g. a container whose pids NVML reports but\n"
		"                         /proc lacks\n"
		"  --host-procfs PATH     inside a container: the host's /proc mounted at PATH (docker run\n"
		"                         -v /proc:/host/proc:ro), through which NVML's host pids map to\n"
		"                         the container's own (their pid namespace checked, never guessed)\n",
		WM_MIN_PERIOD_S, WM_MAX_PERIOD_S, WM_DEFAULT_PERIOD_S, WM_MIN_PERIOD_S, WM_MAX_PERIOD_S,
		WM_DEFAULT_PROC_PERIOD_S, WM_MIN_PERIOD_S, MAX_MEM_PERIOD_S, WM_DEFAULT_MEM_PERIOD_S, MAX_MODEL_W,
		WM_DEFAULT_MODEL_MIN_W, MAX_MODEL_W, WM_DEFAULT_MODEL_MAX_W);
}
