/* prometheus.c — see prometheus.h. Formats the meter's state as Prometheus
 * text exposition 0.0.4 and OpenMetrics 1.0.
 *
 * The two formats differ only in their headers here: OpenMetrics names a
 * counter family without its "_total" suffix, adds "# UNIT" where the family
 * name ends in its unit, calls build_info an "info" family, and ends with
 * "# EOF". Sample lines are the same in both.
 */
#include "outputs/prometheus.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "procs/cgroup.h"


#define COMM_MAX 64
#define CGROUP_UNKNOWN "unknown"

typedef struct prom_dev {
	char kind[WM_NAME_MAX];    /* sanitised for metric names: [a-z0-9_] */
	char uuid[96];             /* GPUs, from info_json; "" if none */
	char model[128];
	int attributed;            /* rule != WM_ATTR_NONE: per-process/cgroup series */
} prom_dev;

typedef struct prom_proc {
	int pid;
	char comm[COMM_MAX];
	double total_j;            /* sum over devices, for the cap's ranking */
	double *energy_j;          /* [n_devices], points into procs_energy */
} prom_proc;

typedef struct prom_cgroup {
	char *path;
	uint32_t hash;
	double *folded_j;          /* [n_devices] from exited processes */
	double *live_j;            /* [n_devices] sum over live processes at the last update */
	size_t live;               /* live processes at the last update */
	double last_live_t_s;
	/* from the path, once: "" where it names none (label left out) */
	char slurm_job[32], container[64], pod[64];
} prom_cgroup;

struct wm_prom {
	wm_prom_view v;
	wm_prom_opts o;
	prom_dev *dev;             /* [n_devices] */
	size_t n_attr_dev;
	char (*kinds)[WM_NAME_MAX];/* distinct kinds in device order */
	size_t n_kinds;
	int *core_ch;              /* channels whose label ends in "/core", not counted */
	size_t n_core_ch;

	/* last sample */
	int have_sample;
	uint64_t seq;
	double t_s;
	wm_sample_dev *sdev;       /* [n_devices] */
	double *ch_energy_j;       /* [n_channels] */
	unsigned char *ch_ok;      /* [n_channels] 0: in a gap at the last sample */
	uint64_t *ch_errors;       /* [n_channels] cumulative failed reads */
	uint64_t *ch_rejected;     /* [n_channels] cumulative implausible reads */
	double cpu_util;           /* last known, NaN until read */
	double self_cpu_s, sample_cost_s;
	int have_mem;
	uint64_t mem_used_bytes, mem_total_bytes;
	/* RAPL core sub-zone power (AIPowerMeter's power_draw_cpu) */
	double core_prev_j, core_prev_t_s, core_power_w;
	int core_have_prev;

	/* per-process: the rows kept at the last process tier, capped */
	prom_proc *procs;
	size_t n_procs, cap_procs;
	double *procs_energy;      /* [cap_procs * n_devices] */

	/* per-cgroup */
	prom_cgroup *cg;
	size_t n_cg, cap_cg;
	uint32_t *cg_table;        /* open addressing: index + 1, 0 = empty */
	size_t cg_table_size;      /* power of two, >= 2 * cap */
	uint32_t *refused;         /* hashes of cgroups refused at this update */
	size_t n_refused, cap_refused;

	double dropped_process_series, dropped_cgroup_series;
};

/* ---- pure helpers ------------------------------------------------------- */

int wm_prom_label_value(wm_buf *b, const char *v)
{
	const unsigned char *s = (const unsigned char *)(v ? v : "");
	while (*s && !wm_buf_error(b)) {
		const unsigned char *run = s;
		while (*s && *s != '\\' && *s != '"' && *s != '\n' && *s < 0x80)
			s++;
		if (s > run)
			wm_buf_append(b, (const char *)run, (size_t)(s - run));
		if (!*s)
			break;
		if (*s == '\\')
			wm_buf_puts(b, "\\\\");
		else if (*s == '"')
			wm_buf_puts(b, "\\\"");
		else if (*s == '\n')
			wm_buf_puts(b, "\\n");
		else {
			size_t n = wm_utf8_seq_len(s);
			if (n == 0) {
				wm_buf_puts(b, "\xEF\xBF\xBD"); /* U+FFFD */
				s++;
				continue;
			}
			wm_buf_append(b, (const char *)s, n);
			s += n;
			continue;
		}
		s++;
	}
	return wm_buf_error(b);
}

int wm_prom_value(wm_buf *b, double v)
{
	if (isnan(v))
		return wm_buf_puts(b, "NaN");
	if (isinf(v))
		return wm_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
	/* Whole numbers (bytes, hertz, counts) as integers, not "2e+09". */
	if (v == floor(v) && fabs(v) < 9007199254740992.0) {
		char tmp[32];
		int n = snprintf(tmp, sizeof tmp, "%.0f", v == 0.0 ? 0.0 : v);
		if (n < 0 || (size_t)n >= sizeof tmp)
			return b->err ? b->err : (b->err = -EINVAL); /* sticky, as wm_buf_printf */
		return wm_buf_append(b, tmp, (size_t)n);
	}
	/* 15 significant digits: one snprintf per value (a round-trip search
	 * costs up to nine, and this runs for every series at every sample);
	 * the 16th and 17th digits of a measured joule or watt are noise. */
	char tmp[40];
	int n = snprintf(tmp, sizeof tmp, "%.15g", v);
	if (n < 0 || (size_t)n >= sizeof tmp)
		return b->err ? b->err : (b->err = -EINVAL);
	return wm_buf_append(b, tmp, (size_t)n);
}

int wm_prom_parse_cgroup(const char *text, char *out, size_t outlen)
{
	if (!text || !out || outlen == 0)
		return -EINVAL;
	const char *line = text;
	while (*line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		if (len >= 3 && memcmp(line, "0::", 3) == 0) {
			const char *p = line + 3;
			size_t n = len - 3;
			if (n == 0 || p[0] != '/')
				return -EINVAL;
			if (memchr(p, '\0', n))
				return -EINVAL;
			if (n >= outlen)
				return -ENAMETOOLONG;
			memcpy(out, p, n);
			out[n] = '\0';
			return 0;
		}
		if (!nl)
			break;
		line = nl + 1;
	}
	return -ENOENT;
}

/* Case-insensitive compare of [s, s+n) with lit. */
static int token_is(const char *s, size_t n, const char *lit)
{
	size_t m = strlen(lit);
	if (n != m)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char a = s[i], c = lit[i];
		if (a >= 'A' && a <= 'Z')
			a = (char)(a - 'A' + 'a');
		if (a != c)
			return 0;
	}
	return 1;
}

/* Walks a comma-separated header of "token;param=..;q=0.5" items and returns
 * the highest q of the items whose token matches one of names (-1: none). */
static double header_best_q(const char *h, const char *const *names, size_t n_names)
{
	double best = -1.0;
	if (!h)
		return best;
	const char *p = h;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *item = p, *item_end = p + len;
		while (item < item_end && (*item == ' ' || *item == '\t'))
			item++;
		const char *tok_end = item;
		while (tok_end < item_end && *tok_end != ';' && *tok_end != ' ' && *tok_end != '\t')
			tok_end++;
		int match = 0;
		for (size_t i = 0; i < n_names; i++)
			if (token_is(item, (size_t)(tok_end - item), names[i]))
				match = 1;
		if (match) {
			double q = 1.0;
			const char *param = tok_end;
			while (param < item_end) {
				const char *semi = memchr(param, ';', (size_t)(item_end - param));
				if (!semi)
					break;
				param = semi + 1;
				while (param < item_end && (*param == ' ' || *param == '\t'))
					param++;
				if (item_end - param >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
					/* q values are at most "1.000": parse by hand, no locale. */
					const char *d = param + 2;
					double val = 0.0, scale = 1.0;
					int seen_dot = 0, digits = 0;
					while (d < item_end && ((*d >= '0' && *d <= '9') || (*d == '.' && !seen_dot))) {
						if (*d == '.') {
							seen_dot = 1;
						} else if (digits < 6) {
							if (seen_dot)
								val += (*d - '0') * (scale /= 10.0);
							else
								val = val * 10.0 + (*d - '0');
							digits++;
						}
						d++;
					}
					q = val > 1.0 ? 1.0 : val;
				}
			}
			if (q > best)
				best = q;
		}
		if (!end)
			break;
		p = end + 1;
	}
	return best;
}

int wm_prom_wants_openmetrics(const char *accept)
{
	static const char *const om[] = {"application/openmetrics-text"};
	static const char *const text[] = {"text/plain"};
	double q_om = header_best_q(accept, om, 1);
	double q_text = header_best_q(accept, text, 1);
	return q_om > 0.0 && q_om >= q_text;
}

int wm_prom_accepts_gzip(const char *accept_encoding)
{
	static const char *const gz[] = {"gzip", "x-gzip"};
	return header_best_q(accept_encoding, gz, 2) > 0.0;
}

/* ---- construction ------------------------------------------------------- */

static void sanitise_kind(const char *in, char *out, size_t outlen)
{
	size_t j = 0;
	for (size_t i = 0; in[i] && j + 1 < outlen; i++) {
		char c = in[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			c = '_';
		out[j++] = c;
	}
	if (j == 0 && outlen > 7) {
		memcpy(out, "device", 6);
		j = 6;
	}
	out[j] = '\0';
}

/* uuid and model of a GPU from its info_json ("uuid", then "name" or "model"). */
static void gpu_identity(const char *info_json, prom_dev *d)
{
	if (!info_json || !info_json[0])
		return;
	json_t *j = json_loads(info_json, 0, NULL);
	if (!j)
		return;
	const char *u = json_string_value(json_object_get(j, "uuid"));
	const char *m = json_string_value(json_object_get(j, "name"));
	if (!m)
		m = json_string_value(json_object_get(j, "model"));
	if (u)
		snprintf(d->uuid, sizeof d->uuid, "%s", u); /* truncation harmless: a label */
	if (m)
		snprintf(d->model, sizeof d->model, "%s", m);
	json_decref(j);
}

static size_t str_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

int wm_prom_new(const wm_prom_view *v, const wm_prom_opts *o, wm_prom **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!v || (v->n_devices && !v->devices) || (v->n_channels && !v->channels))
		return wm_err(err, errlen, -EINVAL, "prometheus: no device table given (internal error)");
	wm_prom *p = calloc(1, sizeof *p);
	if (!p)
		return wm_err(err, errlen, -ENOMEM, "prometheus: out of memory");
	p->v = *v;
	if (o)
		p->o = *o;
	if (p->o.max_series == 0)
		p->o.max_series = WM_PROM_DEFAULT_MAX_SERIES;
	size_t nd = v->n_devices, nc = v->n_channels;
	p->dev = calloc(nd ? nd : 1, sizeof *p->dev);
	p->kinds = calloc(nd ? nd : 1, sizeof *p->kinds);
	p->sdev = calloc(nd ? nd : 1, sizeof *p->sdev);
	p->ch_energy_j = calloc(nc ? nc : 1, sizeof *p->ch_energy_j);
	p->ch_ok = calloc(nc ? nc : 1, sizeof *p->ch_ok);
	p->ch_errors = calloc(nc ? nc : 1, sizeof *p->ch_errors);
	p->ch_rejected = calloc(nc ? nc : 1, sizeof *p->ch_rejected);
	for (size_t c = 0; p->ch_ok && c < nc; c++)
		p->ch_ok[c] = 1;
	p->core_ch = calloc(nc ? nc : 1, sizeof *p->core_ch);
	if (!p->dev || !p->kinds || !p->sdev || !p->ch_energy_j || !p->core_ch || !p->ch_ok || !p->ch_errors ||
	    !p->ch_rejected) {
		wm_prom_free(p);
		return wm_err(err, errlen, -ENOMEM, "prometheus: out of memory");
	}
	for (size_t i = 0; i < nd; i++) {
		const wm_device_decl *d = v->devices[i].decl;
		sanitise_kind(d->kind, p->dev[i].kind, sizeof p->dev[i].kind);
		p->dev[i].attributed = d->rule != WM_ATTR_NONE;
		p->n_attr_dev += (size_t)p->dev[i].attributed;
		if (strcmp(p->dev[i].kind, "gpu") == 0)
			gpu_identity(d->info_json, &p->dev[i]);
		size_t k = 0;
		while (k < p->n_kinds && strcmp(p->kinds[k], p->dev[i].kind) != 0)
			k++;
		if (k == p->n_kinds)
			memcpy(p->kinds[p->n_kinds++], p->dev[i].kind, WM_NAME_MAX);
		for (size_t g = 0; g < WM_GAUGE_N; g++)
			p->sdev[i].gauge[g] = NAN;
		p->sdev[i].power_w = NAN;
	}
	for (size_t c = 0; c < nc; c++)
		if (v->channels[c].device < 0 && str_ends_with(v->channels[c].ch->label, "/core"))
			p->core_ch[p->n_core_ch++] = (int)c;
	p->cpu_util = NAN;
	p->core_power_w = NAN;
	*out = p;
	return 0;
}

static void cg_free_entries(wm_prom *p)
{
	for (size_t i = 0; i < p->n_cg; i++) {
		free(p->cg[i].path);
		free(p->cg[i].folded_j);
		free(p->cg[i].live_j);
	}
	p->n_cg = 0;
}

void wm_prom_free(wm_prom *p)
{
	if (!p)
		return;
	cg_free_entries(p);
	free(p->cg);
	free(p->cg_table);
	free(p->refused);
	free(p->procs);
	free(p->procs_energy);
	free(p->core_ch);
	free(p->ch_energy_j);
	free(p->ch_ok);
	free(p->ch_errors);
	free(p->ch_rejected);
	free(p->sdev);
	free(p->kinds);
	free(p->dev);
	free(p);
}

/* ---- update ------------------------------------------------------------- */

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

static size_t cg_cap(const wm_prom *p)
{
	size_t per = p->n_attr_dev ? p->n_attr_dev : 1;
	size_t cap = p->o.max_series / per;
	return cap ? cap : 1;
}

/* Rebuilds the open-addressing table for the current entries. */
static int cg_rehash(wm_prom *p)
{
	size_t size = 16;
	while (size < 2 * (p->n_cg + 1))
		size *= 2;
	uint32_t *t = calloc(size, sizeof *t);
	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_cg; i++) {
		size_t j = p->cg[i].hash & (size - 1);
		while (t[j])
			j = (j + 1) & (size - 1);
		t[j] = (uint32_t)(i + 1);
	}
	free(p->cg_table);
	p->cg_table = t;
	p->cg_table_size = size;
	return 0;
}

/* The entry for path, created if the cap allows: index, -1 refused by the
 * cap, or -ENOMEM (as -2). */
static long cg_find(wm_prom *p, const char *path, double t_s)
{
	uint32_t h = fnv1a(path);
	if (p->cg_table_size) {
		size_t j = h & (p->cg_table_size - 1);
		while (p->cg_table[j]) {
			prom_cgroup *c = &p->cg[p->cg_table[j] - 1];
			if (c->hash == h && strcmp(c->path, path) == 0)
				return (long)(p->cg_table[j] - 1);
			j = (j + 1) & (p->cg_table_size - 1);
		}
	}
	if (p->n_cg >= cg_cap(p)) {
		for (size_t i = 0; i < p->n_refused; i++)
			if (p->refused[i] == h)
				return -1;
		if (p->n_refused == p->cap_refused) {
			size_t nc = p->cap_refused ? 2 * p->cap_refused : 16;
			uint32_t *r = realloc(p->refused, nc * sizeof *r);
			if (!r)
				return -1; /* only the count suffers */
			p->refused = r;
			p->cap_refused = nc;
		}
		p->refused[p->n_refused++] = h;
		p->dropped_cgroup_series += (double)(p->n_attr_dev ? p->n_attr_dev : 1);
		return -1;
	}
	if (p->n_cg == p->cap_cg) {
		size_t nc = p->cap_cg ? 2 * p->cap_cg : 16;
		prom_cgroup *a = realloc(p->cg, nc * sizeof *a);
		if (!a)
			return -2;
		p->cg = a;
		p->cap_cg = nc;
	}
	size_t nd = p->v.n_devices ? p->v.n_devices : 1;
	prom_cgroup c = {0};
	c.path = strdup(path);
	c.folded_j = calloc(nd, sizeof(double));
	c.live_j = calloc(nd, sizeof(double));
	if (!c.path || !c.folded_j || !c.live_j) {
		free(c.path);
		free(c.folded_j);
		free(c.live_j);
		return -2;
	}
	c.hash = h;
	c.last_live_t_s = t_s;
	(void)wm_cgroup_slurm_job(path, c.slurm_job, sizeof c.slurm_job);
	{
		char line[4200];
		int ln = snprintf(line, sizeof line, "0::%s\n", path);
		if (ln > 0 && (size_t)ln < sizeof line) {
			(void)wm_cgroup_container_name(line, c.container, sizeof c.container);
			(void)wm_cgroup_pod_uid(line, c.pod, sizeof c.pod);
		}
	}
	p->cg[p->n_cg++] = c;
	if (2 * (p->n_cg + 1) > p->cg_table_size) {
		if (cg_rehash(p) < 0) {
			p->n_cg--;
			free(c.path);
			free(c.folded_j);
			free(c.live_j);
			return -2;
		}
		return (long)(p->n_cg - 1);
	}
	size_t j = h & (p->cg_table_size - 1);
	while (p->cg_table[j])
		j = (j + 1) & (p->cg_table_size - 1);
	p->cg_table[j] = (uint32_t)p->n_cg;
	return (long)(p->n_cg - 1);
}

static int update_cgroups(wm_prom *p, const wm_sample *s, const char *const *proc_cgroup)
{
	size_t nd = p->v.n_devices;
	p->n_refused = 0;
	for (size_t i = 0; i < p->n_cg; i++) {
		memset(p->cg[i].live_j, 0, nd * sizeof(double));
		p->cg[i].live = 0;
	}
	for (size_t r = 0; r < s->n_procs; r++) {
		const wm_sample_proc *pr = &s->procs[r];
		const char *path = proc_cgroup && proc_cgroup[r] ? proc_cgroup[r] : CGROUP_UNKNOWN;
		long k = cg_find(p, path, s->t_s);
		if (k == -2)
			return -ENOMEM;
		if (k < 0 || !pr->energy_j)
			continue;
		prom_cgroup *c = &p->cg[k];
		double *dst = pr->alive ? c->live_j : c->folded_j;
		for (size_t d = 0; d < nd; d++)
			if (p->dev[d].attributed && isfinite(pr->energy_j[d]))
				dst[d] += pr->energy_j[d];
		if (pr->alive) {
			c->live++;
			c->last_live_t_s = s->t_s;
		}
	}
	/* Forget cgroups whose last process left long ago (bounded memory). */
	size_t w = 0;
	int evicted = 0;
	for (size_t i = 0; i < p->n_cg; i++) {
		prom_cgroup *c = &p->cg[i];
		if (c->live == 0 && s->t_s - c->last_live_t_s > WM_PROM_CGROUP_LINGER_S) {
			free(c->path);
			free(c->folded_j);
			free(c->live_j);
			evicted = 1;
			continue;
		}
		p->cg[w++] = *c;
	}
	p->n_cg = w;
	if (evicted && cg_rehash(p) < 0)
		return -ENOMEM;
	return 0;
}

static int cmp_proc_desc(const void *a, const void *b)
{
	const prom_proc *x = a, *y = b;
	if (x->total_j != y->total_j)
		return x->total_j < y->total_j ? 1 : -1;
	return x->pid - y->pid;
}

static int update_procs(wm_prom *p, const wm_sample *s)
{
	size_t nd = p->v.n_devices ? p->v.n_devices : 1;
	if (s->n_procs > p->cap_procs) {
		prom_proc *a = realloc(p->procs, s->n_procs * sizeof *a);
		if (!a)
			return -ENOMEM;
		p->procs = a;
		double *e = realloc(p->procs_energy, s->n_procs * nd * sizeof *e);
		if (!e)
			return -ENOMEM;
		p->procs_energy = e;
		p->cap_procs = s->n_procs;
	}
	size_t n = 0;
	for (size_t r = 0; r < s->n_procs; r++) {
		const wm_sample_proc *pr = &s->procs[r];
		if (!pr->energy_j)
			continue;
		prom_proc *q = &p->procs[n];
		q->pid = pr->pid;
		snprintf(q->comm, sizeof q->comm, "%s", pr->comm ? pr->comm : ""); /* a label: may truncate */
		q->energy_j = p->procs_energy + n * nd;
		q->total_j = 0.0;
		for (size_t d = 0; d < p->v.n_devices; d++) {
			q->energy_j[d] = pr->energy_j[d];
			if (p->dev[d].attributed && isfinite(pr->energy_j[d]))
				q->total_j += pr->energy_j[d];
		}
		n++;
	}
	/* The cap keeps the processes that spent the most; the rest are counted. */
	size_t per = p->n_attr_dev ? p->n_attr_dev : 1;
	size_t cap = p->o.max_series / per;
	if (n > cap) {
		qsort(p->procs, n, sizeof *p->procs, cmp_proc_desc);
		p->dropped_process_series += (double)((n - cap) * per);
		n = cap;
	}
	p->n_procs = n;
	return 0;
}

int wm_prom_update(wm_prom *p, const wm_sample *s, const char *const *proc_cgroup)
{
	if (!p || !s)
		return -EINVAL;
	size_t nd = p->v.n_devices < s->n_devices ? p->v.n_devices : s->n_devices;
	size_t nc = p->v.n_channels < s->n_channels ? p->v.n_channels : s->n_channels;
	if (s->proc_tier && p->o.per_cgroup) {
		int rc = update_cgroups(p, s, proc_cgroup);
		if (rc)
			return rc;
	}
	if (s->proc_tier && p->o.per_process) {
		int rc = update_procs(p, s);
		if (rc)
			return rc;
	}
	memcpy(p->sdev, s->devices, nd * sizeof *p->sdev);
	if (s->channel_energy_j)
		memcpy(p->ch_energy_j, s->channel_energy_j, nc * sizeof(double));
	if (s->channel_ok)
		memcpy(p->ch_ok, s->channel_ok, nc);
	if (s->channel_read_errors)
		memcpy(p->ch_errors, s->channel_read_errors, nc * sizeof *p->ch_errors);
	if (s->channel_rejected)
		memcpy(p->ch_rejected, s->channel_rejected, nc * sizeof *p->ch_rejected);
	if (isfinite(s->cpu_util))
		p->cpu_util = s->cpu_util;
	if (s->mem_total_bytes) { /* carried on every sample once read (process tier) */
		p->have_mem = 1;
		p->mem_used_bytes = s->mem_used_bytes;
		p->mem_total_bytes = s->mem_total_bytes;
	}
	/* RAPL core sub-zones: power from the cumulative energies' deltas. */
	if (p->n_core_ch && s->channel_energy_j) {
		double sum = 0.0;
		int ok = 1;
		for (size_t i = 0; i < p->n_core_ch; i++) {
			size_t c = (size_t)p->core_ch[i];
			if (c >= nc || (s->channel_ok && !s->channel_ok[c]))
				ok = 0;
			else
				sum += s->channel_energy_j[c];
		}
		if (ok && p->core_have_prev && s->t_s > p->core_prev_t_s)
			p->core_power_w = (sum - p->core_prev_j) / (s->t_s - p->core_prev_t_s);
		if (ok) {
			p->core_prev_j = sum;
			p->core_prev_t_s = s->t_s;
			p->core_have_prev = 1;
		}
	}
	p->self_cpu_s = s->self_cpu_s;
	p->sample_cost_s = s->sample_cost_s;
	p->seq = s->seq;
	p->t_s = s->t_s;
	p->have_sample = 1;
	return 0;
}

/* ---- formatting --------------------------------------------------------- */

typedef struct lbl {
	const char *k, *v;
} lbl;

typedef enum fam_type { FAM_COUNTER, FAM_GAUGE, FAM_INFO } fam_type;

/* name: the family name as OpenMetrics spells it (a counter without
 * "_total", an info family without "_info"); unit: appended to OpenMetrics
 * as "# UNIT" (the name ends in "_<unit>"), NULL for none. */
static int family(wm_buf *b, int om, const char *name, fam_type t, const char *unit, const char *help)
{
	const char *suffix = "";
	const char *type = t == FAM_COUNTER ? "counter" : t == FAM_INFO ? "info" : "gauge";
	if (!om && t == FAM_COUNTER)
		suffix = "_total";
	if (!om && t == FAM_INFO) {
		suffix = "_info";
		type = "gauge";
	}
	wm_buf_printf(b, "# HELP %s%s %s\n# TYPE %s%s %s\n", name, suffix, help, name, suffix, type);
	if (om && unit)
		wm_buf_printf(b, "# UNIT %s %s\n", name, unit);
	return wm_buf_error(b);
}

static int sample_line(wm_buf *b, const char *name, const char *suffix, const lbl *l, size_t nl, double v)
{
	wm_buf_puts(b, name);
	if (suffix)
		wm_buf_puts(b, suffix);
	size_t written = 0;
	for (size_t i = 0; i < nl; i++) {
		if (!l[i].v)
			continue; /* an absent label is left out, not written empty */
		wm_buf_puts(b, written ? "," : "{");
		wm_buf_printf(b, "%s=\"", l[i].k);
		wm_prom_label_value(b, l[i].v);
		wm_buf_puts(b, "\"");
		written++;
	}
	if (written)
		wm_buf_puts(b, "}");
	wm_buf_puts(b, " ");
	wm_prom_value(b, v);
	wm_buf_puts(b, "\n");
	return wm_buf_error(b);
}

static const char *method_of(const wm_device *d)
{
	return d->decl->modeled ? "modeled" : "measured";
}

static const char *source_of(const wm_device *d)
{
	return d->src && d->src->ops && d->src->ops->name ? d->src->ops->name : "unknown";
}

/* The labels that identify device i: gpu, uuid, name for GPUs; device
 * otherwise; then source and method. Returns the count (<= 5). */
static size_t device_labels(const wm_prom *p, size_t i, lbl *l)
{
	const wm_device *d = &p->v.devices[i];
	size_t n = 0;
	if (strcmp(p->dev[i].kind, "gpu") == 0) {
		l[n++] = (lbl){"gpu", d->decl->name};
		l[n++] = (lbl){"uuid", p->dev[i].uuid[0] ? p->dev[i].uuid : NULL};
		l[n++] = (lbl){"name", p->dev[i].model[0] ? p->dev[i].model : NULL};
	} else {
		l[n++] = (lbl){"device", d->decl->name};
	}
	l[n++] = (lbl){"source", source_of(d)};
	l[n++] = (lbl){"method", method_of(d)};
	return n;
}

static int fmt_energy(const wm_prom *p, int om, wm_buf *b, const char *kind)
{
	char name[96];
	int n = snprintf(name, sizeof name, "wattmeter_%s_energy_joules", kind);
	if (n < 0 || (size_t)n >= sizeof name)
		return -ENAMETOOLONG;
	char help[160];
	n = snprintf(help, sizeof help,
		     "Energy spent by %s devices since the exporter started, monotonic across counter wraps and resets.",
		     kind);
	if (n < 0 || (size_t)n >= sizeof help)
		return -ENAMETOOLONG;
	family(b, om, name, FAM_COUNTER, "joules", help);
	for (size_t i = 0; i < p->v.n_devices; i++) {
		if (strcmp(p->dev[i].kind, kind) != 0)
			continue;
		lbl l[6];
		size_t nl = device_labels(p, i, l);
		/* Non-GPU devices: one series per zone (RAPL package), so a
		 * two-socket machine shows both; sum() over zones is the device. */
		size_t zones = 0;
		if (strcmp(kind, "gpu") != 0) {
			for (size_t c = 0; c < p->v.n_channels; c++) {
				if (p->v.channels[c].device != (int)i)
					continue;
				lbl lz[7];
				memcpy(lz, l, 1 * sizeof *l);
				lz[1] = (lbl){"zone", p->v.channels[c].ch->label};
				memcpy(lz + 2, l + 1, (nl - 1) * sizeof *l);
				sample_line(b, name, "_total", lz, nl + 1, p->ch_energy_j[c]);
				zones++;
			}
		}
		if (zones == 0)
			sample_line(b, name, "_total", l, nl, p->sdev[i].energy_j);
	}
	return wm_buf_error(b);
}

static int fmt_power(const wm_prom *p, int om, wm_buf *b, const char *kind)
{
	int any = 0;
	for (size_t i = 0; i < p->v.n_devices; i++)
		if (strcmp(p->dev[i].kind, kind) == 0 && isfinite(p->sdev[i].power_w))
			any = 1;
	if (!any)
		return 0;
	char name[96], help[160];
	int n = snprintf(name, sizeof name, "wattmeter_%s_power_watts", kind);
	if (n < 0 || (size_t)n >= sizeof name)
		return -ENAMETOOLONG;
	n = snprintf(help, sizeof help, "Power of %s devices over the last sampling period.", kind);
	if (n < 0 || (size_t)n >= sizeof help)
		return -ENAMETOOLONG;
	family(b, om, name, FAM_GAUGE, "watts", help);
	for (size_t i = 0; i < p->v.n_devices; i++) {
		if (strcmp(p->dev[i].kind, kind) != 0 || !isfinite(p->sdev[i].power_w))
			continue;
		lbl l[6];
		size_t nl = device_labels(p, i, l);
		sample_line(b, name, NULL, l, nl, p->sdev[i].power_w);
	}
	return wm_buf_error(b);
}

/* Per-device gauges: metric suffix, unit, scale to base units, help. */
static const struct {
	const char *suffix, *unit;
	double scale;
	const char *help;
} gauge_fmt[WM_GAUGE_N] = {
	[WM_GAUGE_UTIL] = {"utilization_ratio", "ratio", 1.0, "Busy fraction (0..1) over the device's last sample period."},
	[WM_GAUGE_MEM_UTIL] = {"memory_utilization_ratio", "ratio", 1.0, "Memory controller busy fraction (0..1)."},
	[WM_GAUGE_MEM_USED_BYTES] = {"memory_used_bytes", "bytes", 1.0, "Device memory in use."},
	[WM_GAUGE_MEM_TOTAL_BYTES] = {"memory_total_bytes", "bytes", 1.0, "Device memory in total."},
	[WM_GAUGE_TEMP_C] = {"temperature_celsius", "celsius", 1.0, "Device temperature."},
	[WM_GAUGE_POWER_INSTANT_W] = {"power_instant_watts", "watts", 1.0, "The device's own instantaneous power reading."},
	[WM_GAUGE_POWER_AVG_W] = {"power_average_watts", "watts", 1.0, "The device's own averaged power reading (NVML: about 1 s)."},
	[WM_GAUGE_CLOCK_SM_MHZ] = {"sm_clock_hertz", "hertz", 1e6, "Streaming multiprocessor clock."},
	[WM_GAUGE_CLOCK_MEM_MHZ] = {"memory_clock_hertz", "hertz", 1e6, "Memory clock."},
};

static int fmt_gauges(const wm_prom *p, int om, wm_buf *b, const char *kind)
{
	for (int g = 0; g < WM_GAUGE_N; g++) {
		/* The machine's CPU utilisation has its own family below. */
		if (g == WM_GAUGE_UTIL && strcmp(kind, "cpu") == 0)
			continue;
		int any = 0;
		for (size_t i = 0; i < p->v.n_devices; i++)
			if (strcmp(p->dev[i].kind, kind) == 0 && isfinite(p->sdev[i].gauge[g]))
				any = 1;
		if (!any)
			continue;
		char name[128];
		int n = snprintf(name, sizeof name, "wattmeter_%s_%s", kind, gauge_fmt[g].suffix);
		if (n < 0 || (size_t)n >= sizeof name)
			return -ENAMETOOLONG;
		family(b, om, name, FAM_GAUGE, gauge_fmt[g].unit, gauge_fmt[g].help);
		for (size_t i = 0; i < p->v.n_devices; i++) {
			if (strcmp(p->dev[i].kind, kind) != 0 || !isfinite(p->sdev[i].gauge[g]))
				continue;
			lbl l[6];
			size_t nl = device_labels(p, i, l);
			sample_line(b, name, NULL, l, nl, p->sdev[i].gauge[g] * gauge_fmt[g].scale);
		}
	}
	return wm_buf_error(b);
}


/* One _total line per active source: the sum over its channels of a
 * per-channel cumulative count (read errors, rejected readings). */
static void per_source_total(wm_buf *b, const wm_prom *p, const wm_sources *all, const char *name,
			     const uint64_t *per_channel)
{
	for (size_t i = 0; all && i < all->n; i++) {
		const wm_source *s = &all->v[i];
		if (!s->active)
			continue;
		double n = 0;
		for (size_t c = 0; c < p->v.n_channels; c++)
			if (p->v.channels[c].src == s)
				n += (double)per_channel[c];
		sample_line(b, name, "_total", (lbl[]){{"sensor", s->ops && s->ops->name ? s->ops->name : "unknown"}}, 1,
			    n);
	}
}

static int fmt_sensors(const wm_prom *p, int om, wm_buf *b)
{
	family(b, om, "wattmeter_sensor_up", FAM_GAUGE, NULL,
	       "1 if the energy source is in use (measured or modeled), 0 if absent, forbidden, failing or "
	       "unused; state says which.");
	const wm_sources *all = p->v.sources;
	for (size_t i = 0; all && i < all->n; i++) {
		const wm_source *s = &all->v[i];
		int up = s->active && (s->state == WM_SRC_OK || s->state == WM_SRC_MODELED);
		/* failing now: a channel it counts in a device has no good read */
		for (size_t c = 0; up && c < p->v.n_channels; c++)
			if (p->v.channels[c].src == s && p->v.channels[c].device >= 0 && !p->ch_ok[c])
				up = 0;
		lbl l[2] = {{"sensor", s->ops && s->ops->name ? s->ops->name : "unknown"}, {"state", wm_source_state_label(s)}};
		sample_line(b, "wattmeter_sensor_up", NULL, l, 2, up ? 1.0 : 0.0);
	}
	/* /proc is no energy source, but utilisation, memory, attribution and
	 * the CPU model all read it. */
	if (all)
		sample_line(b, "wattmeter_sensor_up", NULL,
			    (lbl[]){{"sensor", "procfs"}, {"state", all->procfs_ok ? "ok" : "error"}}, 2,
			    all->procfs_ok ? 1.0 : 0.0);
	/* Reads of the active sources' counters that failed, and that were
	 * rejected as impossible (docs/recording.md "Gaps"). */
	family(b, om, "wattmeter_sensor_read_errors", FAM_COUNTER, NULL,
	       "Counter reads that failed (EIO, vanished zone, malformed value, lost GPU) since the exporter started.");
	per_source_total(b, p, all, "wattmeter_sensor_read_errors", p->ch_errors);
	family(b, om, "wattmeter_sensor_rejected_readings", FAM_COUNTER, NULL,
	       "Counter readings rejected as physically impossible (above the range, a step above the power "
	       "bound, a stall past the wrap time): never counted as energy.");
	per_source_total(b, p, all, "wattmeter_sensor_rejected_readings", p->ch_rejected);
	return wm_buf_error(b);
}

static int fmt_self(const wm_prom *p, int om, wm_buf *b)
{
	family(b, om, "wattmeter_self_cpu_seconds", FAM_COUNTER, "seconds",
	       "CPU time spent by wattmeter's sampler thread.");
	sample_line(b, "wattmeter_self_cpu_seconds", "_total", NULL, 0, p->self_cpu_s);
	family(b, om, "wattmeter_sample_duration_seconds", FAM_GAUGE, "seconds",
	       "Wall time the last sample took to gather.");
	sample_line(b, "wattmeter_sample_duration_seconds", NULL, NULL, 0, p->sample_cost_s);
	family(b, om, "wattmeter_samples", FAM_COUNTER, NULL, "Samples taken since the exporter started.");
	sample_line(b, "wattmeter_samples", "_total", NULL, 0, p->have_sample ? (double)p->seq + 1.0 : 0.0);
	if (p->v.period_s > 0) {
		family(b, om, "wattmeter_sample_period_seconds", FAM_GAUGE, "seconds",
		       "Configured sampling period of the energy counters.");
		sample_line(b, "wattmeter_sample_period_seconds", NULL, NULL, 0, p->v.period_s);
	}
	return wm_buf_error(b);
}

static int fmt_machine(const wm_prom *p, int om, wm_buf *b)
{
	if (isfinite(p->cpu_util)) {
		family(b, om, "wattmeter_cpu_utilization_ratio", FAM_GAUGE, "ratio",
		       "Busy fraction (0..1) of the machine's CPUs over the last sampling period.");
		sample_line(b, "wattmeter_cpu_utilization_ratio", NULL, NULL, 0, p->cpu_util);
	}
	if (p->have_mem) {
		family(b, om, "wattmeter_memory_used_bytes", FAM_GAUGE, "bytes",
		       "Memory in use on the machine (MemTotal - MemAvailable).");
		sample_line(b, "wattmeter_memory_used_bytes", NULL, NULL, 0, (double)p->mem_used_bytes);
		family(b, om, "wattmeter_memory_total_bytes", FAM_GAUGE, "bytes",
		       "Memory on the machine (MemTotal).");
		sample_line(b, "wattmeter_memory_total_bytes", NULL, NULL, 0, (double)p->mem_total_bytes);
	}
	return wm_buf_error(b);
}

static int fmt_procs(const wm_prom *p, int om, wm_buf *b)
{
	if (p->o.per_process) {
		family(b, om, "wattmeter_process_energy_joules", FAM_COUNTER, "joules",
		       "Energy attributed to a process since it was first seen (processes that spent the most, up to "
		       "--max-series series).");
		for (size_t r = 0; r < p->n_procs; r++) {
			char pid[16];
			int n = snprintf(pid, sizeof pid, "%d", p->procs[r].pid);
			if (n < 0 || (size_t)n >= sizeof pid)
				return -EINVAL;
			for (size_t d = 0; d < p->v.n_devices; d++) {
				if (!p->dev[d].attributed || !isfinite(p->procs[r].energy_j[d]))
					continue;
				lbl l[3] = {{"pid", pid}, {"comm", p->procs[r].comm}, {"device", p->v.devices[d].decl->name}};
				sample_line(b, "wattmeter_process_energy_joules", "_total", l, 3, p->procs[r].energy_j[d]);
			}
		}
	}
	if (p->o.per_cgroup) {
		family(b, om, "wattmeter_cgroup_energy_joules", FAM_COUNTER, "joules",
		       "Energy attributed to the processes of a cgroup (v2 path), exited ones included.");
		for (size_t i = 0; i < p->n_cg; i++) {
			for (size_t d = 0; d < p->v.n_devices; d++) {
				if (!p->dev[d].attributed)
					continue;
				/* the job, container and pod the path names, for
				 * `sum by (slurm_job)` across nodes (deploy/prometheus) */
				lbl l[5] = {{"cgroup", p->cg[i].path}, {"device", p->v.devices[d].decl->name}};
				size_t nl = 2;
				if (p->cg[i].slurm_job[0])
					l[nl++] = (lbl){"slurm_job", p->cg[i].slurm_job};
				if (p->cg[i].container[0])
					l[nl++] = (lbl){"container", p->cg[i].container};
				if (p->cg[i].pod[0])
					l[nl++] = (lbl){"pod", p->cg[i].pod};
				sample_line(b, "wattmeter_cgroup_energy_joules", "_total", l, nl,
					    p->cg[i].folded_j[d] + p->cg[i].live_j[d]);
			}
		}
	}
	if (p->o.per_process || p->o.per_cgroup) {
		family(b, om, "wattmeter_exporter_dropped_series", FAM_COUNTER, NULL,
		       "Series left out by the --max-series cap, summed over process-tier updates (growing: raise "
		       "the cap).");
		if (p->o.per_process)
			sample_line(b, "wattmeter_exporter_dropped_series", "_total",
				    (lbl[]){{"family", "process"}}, 1, p->dropped_process_series);
		if (p->o.per_cgroup)
			sample_line(b, "wattmeter_exporter_dropped_series", "_total",
				    (lbl[]){{"family", "cgroup"}}, 1, p->dropped_cgroup_series);
	}
	return wm_buf_error(b);
}

/* AIPowerMeter's five gauges (deep_learning_power_measure/power_measure/
 * prometheus_client.py), unlabelled as there, so its documented
 * prometheus.yml and dashboards work unchanged. Meanings (docs/exporter.md):
 *   power_draw_cpu  its total_cpu_power: RAPL core sub-zones' power, W; where
 *                   there is no core zone, the CPU packages' power;
 *   intel_power     total RAPL package power (packages, not psys), W;
 *   mem_used_cpu    memory used, bytes (it sums every process's PSS);
 *   mem_used_gpu    GPU memory used over all GPUs, bytes;
 *   power_draw_gpu  power of all GPUs, W (its nvidia_draw_absolute).
 * prometheus_client shows an unset gauge as 0; so do we for GPUs when there
 * are none. */
static int fmt_aipowermeter(const wm_prom *p, int om, wm_buf *b)
{
	double cpu_w = 0.0, gpu_w = 0.0, gpu_mem = 0.0;
	int have_cpu = 0;
	for (size_t i = 0; i < p->v.n_devices; i++) {
		const wm_sample_dev *d = &p->sdev[i];
		if (strcmp(p->dev[i].kind, "cpu") == 0 && isfinite(d->power_w)) {
			cpu_w += d->power_w;
			have_cpu = 1;
		} else if (strcmp(p->dev[i].kind, "gpu") == 0) {
			if (isfinite(d->power_w))
				gpu_w += d->power_w;
			if (isfinite(d->gauge[WM_GAUGE_MEM_USED_BYTES]))
				gpu_mem += d->gauge[WM_GAUGE_MEM_USED_BYTES];
		}
	}
	double draw_cpu = p->n_core_ch ? p->core_power_w : (have_cpu ? cpu_w : NAN);
	if (isfinite(draw_cpu)) {
		family(b, om, "power_draw_cpu", FAM_GAUGE, NULL, "cpu consumption for the specified process");
		sample_line(b, "power_draw_cpu", NULL, NULL, 0, draw_cpu);
	}
	if (have_cpu) {
		family(b, om, "intel_power", FAM_GAUGE, NULL, "total rapl power");
		sample_line(b, "intel_power", NULL, NULL, 0, cpu_w);
	}
	if (p->have_mem) {
		family(b, om, "mem_used_cpu", FAM_GAUGE, NULL, "total cpu memory used (uss)");
		sample_line(b, "mem_used_cpu", NULL, NULL, 0, (double)p->mem_used_bytes);
	}
	family(b, om, "mem_used_gpu", FAM_GAUGE, NULL, "average memory used by the gpu");
	sample_line(b, "mem_used_gpu", NULL, NULL, 0, gpu_mem);
	family(b, om, "power_draw_gpu", FAM_GAUGE, NULL, "Power consumed by gpu as given by nvidia-smi");
	sample_line(b, "power_draw_gpu", NULL, NULL, 0, gpu_w);
	return wm_buf_error(b);
}

int wm_prom_format(const wm_prom *p, int openmetrics, wm_buf *out)
{
	if (!p || !out)
		return -EINVAL;
	int om = openmetrics ? 1 : 0;
	family(out, om, "wattmeter_build", FAM_INFO, NULL, "wattmeter's version (value 1).");
	sample_line(out, "wattmeter_build_info", NULL, (lbl[]){{"version", p->v.version ? p->v.version : "unknown"}}, 1,
		    1.0);
	fmt_sensors(p, om, out);
	if (p->have_sample) {
		for (size_t k = 0; k < p->n_kinds; k++) {
			/* these also fail on their own (-ENAMETOOLONG: a device kind
			 * too long for a metric name), not only through the buffer */
			int rc = fmt_energy(p, om, out, p->kinds[k]);
			if (!rc)
				rc = fmt_power(p, om, out, p->kinds[k]);
			if (!rc)
				rc = fmt_gauges(p, om, out, p->kinds[k]);
			if (rc)
				return rc;
		}
		fmt_machine(p, om, out);
	}
	fmt_self(p, om, out);
	if (p->have_sample) {
		int rc = fmt_procs(p, om, out); /* also -EINVAL on a pid that does not format */
		if (rc)
			return rc;
		fmt_aipowermeter(p, om, out);
	}
	if (om)
		wm_buf_puts(out, "# EOF\n");
	return wm_buf_error(out);
}
