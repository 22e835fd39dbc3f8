/* proxy_metrics.c — the proxy's request metrics (proxy_metrics.h). */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "outputs/prometheus.h"
#include "proxy/proxy_metrics.h"

/* Request energies span a tiny embedding (mJ on a CPU) to a long
 * generation on a big GPU (kJ). */
static const double bucket_j[] = {0.001, 0.01, 0.1, 0.5, 1, 5, 10, 50, 100, 500, 1000, 5000};
#define N_BUCKETS (sizeof bucket_j / sizeof bucket_j[0])
#define N_OUTCOMES 5
static const char *const outcome_names[N_OUTCOMES] = {"ok", "client_disconnected", "upstream_error", "timeout",
						      "other"};

typedef struct dev_hist {
	char name[32];
	uint64_t bucket[N_BUCKETS]; /* non-cumulative counts; summed when formatted */
	uint64_t count;
	double sum_j;
} dev_hist;

typedef struct model_stats {
	char name[128];
	uint64_t outcomes[N_OUTCOMES];
	uint64_t prompt_tokens, completion_tokens;
	dev_hist dev[WM_PROXY_METRICS_MAX_DEVICES];
	size_t n_dev;
} model_stats;

struct wm_proxy_metrics {
	pthread_mutex_t lock;
	model_stats models[WM_PROXY_METRICS_MAX_MODELS + 1]; /* the last: "_other" */
	size_t n_models;
};

wm_proxy_metrics *wm_proxy_metrics_new(void)
{
	wm_proxy_metrics *pm = calloc(1, sizeof *pm);
	if (!pm)
		return NULL;
	pthread_mutex_init(&pm->lock, NULL);
	strcpy(pm->models[WM_PROXY_METRICS_MAX_MODELS].name, "_other");
	return pm;
}

void wm_proxy_metrics_free(wm_proxy_metrics *pm)
{
	if (!pm)
		return;
	pthread_mutex_destroy(&pm->lock);
	free(pm);
}

static model_stats *model_get(wm_proxy_metrics *pm, const char *name)
{
	for (size_t i = 0; i < pm->n_models; i++)
		if (strcmp(pm->models[i].name, name) == 0)
			return &pm->models[i];
	if (pm->n_models == WM_PROXY_METRICS_MAX_MODELS || strlen(name) >= sizeof pm->models[0].name)
		return &pm->models[WM_PROXY_METRICS_MAX_MODELS];
	model_stats *m = &pm->models[pm->n_models++];
	memcpy(m->name, name, strlen(name) + 1);
	return m;
}

static dev_hist *dev_get(model_stats *m, const char *name)
{
	for (size_t i = 0; i < m->n_dev; i++)
		if (strcmp(m->dev[i].name, name) == 0)
			return &m->dev[i];
	if (m->n_dev == WM_PROXY_METRICS_MAX_DEVICES || strlen(name) >= sizeof m->dev[0].name)
		return NULL;
	dev_hist *d = &m->dev[m->n_dev++];
	memcpy(d->name, name, strlen(name) + 1);
	return d;
}

static uint64_t tokens_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

int wm_proxy_metrics_add(wm_proxy_metrics *pm, const char *line_json)
{
	json_t *o = json_loads(line_json, 0, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		return -EINVAL;
	}
	const char *model = json_string_value(json_object_get(o, "model"));
	if (!model)
		model = json_string_value(json_object_get(json_object_get(o, "attrs"), "model"));
	if (!model || !*model)
		model = "";
	const char *outcome = json_string_value(json_object_get(o, "outcome"));
	size_t oi = N_OUTCOMES - 1;
	for (size_t i = 0; outcome && i < N_OUTCOMES - 1; i++)
		if (strcmp(outcome, outcome_names[i]) == 0)
			oi = i;
	pthread_mutex_lock(&pm->lock);
	model_stats *m = model_get(pm, model);
	m->outcomes[oi]++;
	m->prompt_tokens += tokens_of(o, "prompt_tokens");
	m->completion_tokens += tokens_of(o, "completion_tokens");
	const char *dev;
	json_t *v;
	json_object_foreach(json_object_get(o, "energy_j"), dev, v) {
		if (!json_is_number(v))
			continue;
		double j = json_number_value(v);
		dev_hist *d = dev_get(m, dev);
		if (!d || !(j >= 0))
			continue;
		size_t b = 0;
		while (b < N_BUCKETS && j > bucket_j[b])
			b++;
		if (b < N_BUCKETS)
			d->bucket[b]++;
		d->count++;
		d->sum_j += j;
	}
	pthread_mutex_unlock(&pm->lock);
	json_decref(o);
	return 0;
}

void wm_proxy_metrics_on_request(void *ctx, const char *line_json)
{
	(void)wm_proxy_metrics_add(ctx, line_json);
}

/* `{model="M",K2="V2"` without the closing brace (a histogram adds le). */
static void labels(wm_buf *b, const char *model, const char *k2, const char *v2)
{
	wm_buf_puts(b, "{model=\"");
	wm_prom_label_value(b, model);
	wm_buf_printf(b, "\",%s=\"", k2);
	wm_prom_label_value(b, v2);
	wm_buf_puts(b, "\"");
}

int wm_proxy_metrics_format(wm_proxy_metrics *pm, wm_buf *b)
{
	pthread_mutex_lock(&pm->lock);
	size_t n = pm->n_models;
	const model_stats *other = &pm->models[WM_PROXY_METRICS_MAX_MODELS];
	int has_other = 0;
	for (size_t i = 0; i < N_OUTCOMES; i++)
		has_other |= other->outcomes[i] != 0;
	/* The models shown: every named one, then "_other" if it counted. */
	const model_stats *ms[WM_PROXY_METRICS_MAX_MODELS + 1];
	for (size_t i = 0; i < n; i++)
		ms[i] = &pm->models[i];
	if (has_other)
		ms[n++] = other;

	wm_buf_puts(b, "# HELP wattmeter_requests_total Requests through the proxy that ended, by model and outcome.\n"
		       "# TYPE wattmeter_requests_total counter\n");
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < N_OUTCOMES; k++) {
			if (!ms[i]->outcomes[k])
				continue;
			wm_buf_puts(b, "wattmeter_requests_total");
			labels(b, ms[i]->name, "outcome", outcome_names[k]);
			wm_buf_printf(b, "} %llu\n", (unsigned long long)ms[i]->outcomes[k]);
		}
	wm_buf_puts(b, "# HELP wattmeter_tokens_total Tokens of the requests that ended, as the server reported "
		       "them (else counted from the stream).\n"
		       "# TYPE wattmeter_tokens_total counter\n");
	for (size_t i = 0; i < n; i++) {
		wm_buf_puts(b, "wattmeter_tokens_total");
		labels(b, ms[i]->name, "kind", "prompt");
		wm_buf_printf(b, "} %llu\n", (unsigned long long)ms[i]->prompt_tokens);
		wm_buf_puts(b, "wattmeter_tokens_total");
		labels(b, ms[i]->name, "kind", "completion");
		wm_buf_printf(b, "} %llu\n", (unsigned long long)ms[i]->completion_tokens);
	}
	wm_buf_puts(b, "# HELP wattmeter_request_energy_joules_total Server energy attributed to the requests "
		       "that ended, per device (devices overlap: psys holds cpu).\n"
		       "# TYPE wattmeter_request_energy_joules_total counter\n");
	for (size_t i = 0; i < n; i++)
		for (size_t d = 0; d < ms[i]->n_dev; d++) {
			wm_buf_puts(b, "wattmeter_request_energy_joules_total");
			labels(b, ms[i]->name, "device", ms[i]->dev[d].name);
			wm_buf_puts(b, "} ");
			wm_prom_value(b, ms[i]->dev[d].sum_j);
			wm_buf_puts(b, "\n");
		}
	wm_buf_puts(b, "# HELP wattmeter_request_energy_joules Energy of one request, per device.\n"
		       "# TYPE wattmeter_request_energy_joules histogram\n");
	for (size_t i = 0; i < n; i++)
		for (size_t d = 0; d < ms[i]->n_dev; d++) {
			const dev_hist *h = &ms[i]->dev[d];
			uint64_t cum = 0;
			for (size_t k = 0; k <= N_BUCKETS; k++) {
				char le[32];
				if (k < N_BUCKETS) {
					cum += h->bucket[k];
					snprintf(le, sizeof le, "%g", bucket_j[k]);
				} else {
					cum = h->count;
					snprintf(le, sizeof le, "+Inf");
				}
				wm_buf_puts(b, "wattmeter_request_energy_joules_bucket");
				labels(b, ms[i]->name, "device", h->name);
				wm_buf_printf(b, ",le=\"%s\"} %llu\n", le, (unsigned long long)cum);
			}
			wm_buf_puts(b, "wattmeter_request_energy_joules_sum");
			labels(b, ms[i]->name, "device", h->name);
			wm_buf_puts(b, "} ");
			wm_prom_value(b, h->sum_j);
			wm_buf_puts(b, "\nwattmeter_request_energy_joules_count");
			labels(b, ms[i]->name, "device", h->name);
			wm_buf_printf(b, "} %llu\n", (unsigned long long)h->count);
		}
	pthread_mutex_unlock(&pm->lock);
	return wm_buf_error(b);
}
