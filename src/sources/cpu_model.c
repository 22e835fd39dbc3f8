/* cpu_model.c — see cpu_model.h. */
#include "sources/cpu_model.h"

double wm_cpu_model_power_w(const wm_cpu_model *m, double util)
{
	if (!(util >= 0.0)) /* also catches NaN */
		util = 0.0;
	if (util > 1.0)
		util = 1.0;
	return (double)m->n_cpus * (m->min_w_per_cpu + (m->max_w_per_cpu - m->min_w_per_cpu) * util);
}

/* ---- the source interface (source.h) ------------------------------------------
 * A fallback for "cpu" (registry.c activates it only where RAPL does not
 * measure the CPU, or with --force-model). It has no counter: read()
 * integrates the modelled power over each tick into a cumulative microjoule
 * count, which the meter treats as any counter. Always labelled modeled. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "sources/source.h"
#include "wattmeter.h"

struct model_priv {
	wm_cpu_model model;
	double energy_uj;     /* integrated so far */
	double last_util;     /* held while /proc/stat shows no new tick */
};

static int model_probe(wm_source *s, const wm_source_ctx *ctx, char *err, size_t errlen)
{
	const wm_meter_config *c = ctx->cfg;
	struct model_priv *p = calloc(1, sizeof *p);
	if (!p)
		return wm_err(err, errlen, -ENOMEM, "cpu-model: out of memory");
	s->priv = p;
	p->model.min_w_per_cpu = c ? c->model_min_w_per_cpu : WM_DEFAULT_MODEL_MIN_W;
	p->model.max_w_per_cpu = c ? c->model_max_w_per_cpu : WM_DEFAULT_MODEL_MAX_W;
	p->model.n_cpus = ctx->n_cpus;
	if (ctx->n_cpus <= 0) {
		s->state = WM_SRC_ERROR;
		(void)snprintf(s->detail, sizeof s->detail, "needs CPU utilisation from %s/stat, which cannot be read",
			       ctx->procfs_path);
		(void)snprintf(s->fix, sizeof s->fix, "point --procfs-root at a mounted procfs");
		return 0;
	}
	s->state = WM_SRC_MODELED;
	(void)snprintf(s->detail, sizeof s->detail,
		       "CPU power ESTIMATED as %d CPUs x (%.2f W idle .. %.2f W busy) by utilisation "
		       "(Cloud Carbon Footprint); DRAM and platform are not measured",
		       p->model.n_cpus, p->model.min_w_per_cpu, p->model.max_w_per_cpu);
	(void)snprintf(s->fix, sizeof s->fix,
		       "get real counters (see rapl-powercap above); tune the model with "
		       "--model-min-w/--model-max-w to your CPU's per-core idle and busy watts");
	wm_device_decl *d = wm_source_add_device(s, "cpu", "cpu");
	wm_channel *ch = d ? wm_source_add_channel(s, "cpu-model", 0) : NULL;
	if (!ch)
		return wm_err(err, errlen, -ENOMEM, "cpu-model: out of memory");
	d->modeled = 1;
	d->rule = WM_ATTR_CPU_TICKS;
	(void)snprintf(d->source_detail, sizeof d->source_detail, "ccf-linear");
	ch->joules_per_unit = 1e-6;
	return 0;
}

static void model_read(wm_source *s, const wm_tick *tick, uint64_t *raw, unsigned char *ok, double *gauges)
{
	(void)gauges;
	struct model_priv *p = s->priv;
	/* /proc/stat moves in whole ticks (10 ms): at high rates an interval
	 * can see no tick at all; hold the last utilisation then. */
	double u = isfinite(tick->cpu_util) ? tick->cpu_util : p->last_util;
	if (isfinite(tick->cpu_util))
		p->last_util = tick->cpu_util;
	if (tick->dt_s > 0)
		p->energy_uj += wm_cpu_model_power_w(&p->model, u) * tick->dt_s * 1e6;
	raw[0] = (uint64_t)llround(p->energy_uj);
	ok[0] = 1;
}

static int model_describe_json(const wm_source *s, wm_buf *b)
{
	const struct model_priv *p = s->priv;
	if (!s->active || !p) {
		wm_buf_puts(b, ",\"model\":null");
		return wm_buf_error(b);
	}
	wm_buf_puts(b, ",\"model\":{\"name\":\"ccf-linear\",\"cpu_min_w_per_cpu\":");
	wm_buf_json_fixed(b, p->model.min_w_per_cpu, 4);
	wm_buf_puts(b, ",\"cpu_max_w_per_cpu\":");
	wm_buf_json_fixed(b, p->model.max_w_per_cpu, 4);
	wm_buf_printf(b, ",\"n_cpus\":%d,\"formula\":\"n_cpus * (min + (max - min) * utilisation)\","
		      "\"reference\":\"Cloud Carbon Footprint methodology, average per-vCPU min/max watts (AWS)\"}",
		      p->model.n_cpus);
	return wm_buf_error(b);
}

static void model_close(wm_source *s)
{
	free(s->priv);
	s->priv = NULL;
}

const wm_source_ops wm_source_cpu_model = {
	.name = "cpu-model",
	.flags = WM_SRC_NEEDS_CPU_UTIL,
	.fallback_for = "cpu",
	.probe = model_probe,
	.read = model_read,
	.describe_json = model_describe_json,
	.close = model_close,
};
