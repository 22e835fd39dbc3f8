/* requests.c — energy per served request (docs/architecture.md "Requests",
 * docs/recording.md "requests.jsonl"): the meter's side of the ledger.
 *
 * The caller's side (wm_meter_request_begin/_tokens/_end, any thread): a
 * time stamp, a JSON check and a queue entry under a short mutex; no I/O,
 * no counter read, as windows.c. The sampler hands over its intervals the
 * same way (wm_requests_note_sample: a copy of the cumulative server
 * energy): where the meter has a measured set, the energy attributed to it
 * on each process-tier sample; else every device's energy on each counter
 * tick. The ledger thread takes the queue, feeds ledger.c, settles every
 * interval older than WM_REQ_GRACE_S (so an edge stamped before an
 * interval's end but queued after it still lands in it) and writes the
 * lines that come out, one write each, calling the done-callback.
 */
#include "meter/requests.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/jsonl.h"
#include "base/safepath.h"
#include "meter/ledger.h"
#include "meter/meter_priv.h"
#include "meter/windows.h"

/* How long after an interval's end its edges may still arrive (a control
 * socket datagram, a caller descheduled between its stamp and the queue). */
#define WM_REQ_GRACE_S 0.1

enum { RQ_BEGIN = 1, RQ_TOKENS, RQ_END, RQ_INTERVAL };

struct rq_ev {
	int kind;
	int64_t id;
	uint64_t t_ns, n;
	double prompt, completion; /* end: usage, NAN none */
	char *json;                /* begin: attrs; end: result (compact), or NULL */
	double *cum;               /* interval: cumulative server energy [n_dev] */
};

struct wm_requests {
	pthread_mutex_t qlock;
	pthread_cond_t qcond, qdone;
	struct rq_ev *q, *work;
	size_t nq, capq, capw;
	int64_t next_id;
	int64_t *open_ids; /* caller side: open requests, ascending */
	size_t n_open, cap_open;
	uint64_t ends_queued, ends_done;
	/* Until the first request the sampler's intervals are not queued (a
	 * recording without requests costs a memcpy per sample): the latest
	 * cumulative energy is kept here and queued as one idle interval,
	 * from the baseline, ahead of the first begin. */
	int began, have_latest;
	double *latest;       /* [n_dev] */
	uint64_t latest_ns;
	int stop, started, joined;
	pthread_t thread;
	clockid_t cpu_clock;
	int have_cpu_clock;
	double final_cpu_s; /* its CPU when it ended (under qlock) */
	wm_request_done_fn fn;
	void *fn_ctx;

	/* the ledger thread only */
	int measured_set;     /* the server is the measured set (attributed energy) */
	size_t n_dev;         /* devices in the ledger */
	size_t *dev;          /* [n_dev] meter device of each */
	wm_ledger *led;
	double *prev, *delta, *idle_w; /* [n_dev] */
	uint64_t prev_ns;
	int have_prev;
	int dir_fd;
	wm_jsonl file;
	int any_request;      /* a request began: requests.jsonl exists from then */
	uint64_t pre_a, pre_b; /* idle before the file existed, written at its creation */
	double *pre_j;
	wm_buf line;
	const wm_meter *m;
};

static void free_ev(struct rq_ev *e)
{
	free(e->json);
	free(e->cum);
	e->json = NULL;
	e->cum = NULL;
}

/* ---- lines ---------------------------------------------------------------------- */

static double t_rel(const wm_meter *m, uint64_t ns)
{
	return ns > m->t0_ns ? (double)(ns - m->t0_ns) / 1e9 : 0.0;
}

static void put_devs(wm_buf *b, const struct wm_requests *q, const double *e)
{
	wm_buf_puts(b, "{");
	for (size_t i = 0; i < q->n_dev; i++) {
		wm_buf_puts(b, i ? "," : "");
		wm_buf_json_str(b, q->m->dev[q->dev[i]].decl->name);
		wm_buf_puts(b, ":");
		/* full precision: a short request's share is micro- or nanojoules,
		 * and 100,000 of them rounded to 6 decimals would not add up */
		wm_buf_json_double(b, e[i]);
	}
	wm_buf_puts(b, "}");
}

/* Σ over devices that do not overlap: psys contains the others. */
static double total(const struct wm_requests *q, const double *e)
{
	double t = 0;
	for (size_t i = 0; i < q->n_dev; i++)
		if (strcmp(q->m->dev[q->dev[i]].decl->kind, "psys") != 0)
			t += e[i];
	return t;
}

/* Writes the line in q->line (one write: whole or nothing). */
static int put_line(struct wm_requests *q)
{
	if (wm_buf_error(&q->line)) {
		q->file.lines_lost++;
		return -ENOMEM;
	}
	return wm_jsonl_append(&q->file, q->line.data, q->line.len);
}

static void put_idle_line(struct wm_requests *q, uint64_t a, uint64_t b, const double *e)
{
	wm_buf *l = &q->line;
	wm_buf_reset(l);
	wm_buf_puts(l, "{\"event\":\"idle\",\"t_start_s\":");
	wm_buf_json_fixed(l, t_rel(q->m, a), 6);
	wm_buf_puts(l, ",\"t_end_s\":");
	wm_buf_json_fixed(l, t_rel(q->m, b), 6);
	wm_buf_puts(l, ",\"energy_j\":");
	put_devs(l, q, e);
	wm_buf_puts(l, "}\n");
	(void)put_line(q);
}

static int open_file(struct wm_requests *q)
{
	if (q->file.fd >= 0 || q->file.open_errno)
		return q->file.fd >= 0 ? 0 : -q->file.open_errno;
	wm_buf *l = &q->line;
	wm_buf_reset(l);
	wm_buf_puts(l, "{\"requests_version\":1,\"devices\":[");
	for (size_t i = 0; i < q->n_dev; i++) {
		wm_buf_puts(l, i ? "," : "");
		wm_buf_json_str(l, q->m->dev[q->dev[i]].decl->name);
	}
	wm_buf_printf(l, "],\"server\":\"%s\",\"interval\":\"%s\",\"grace_s\":", q->measured_set ? "measured_set" : "machine",
		      q->measured_set ? "process" : "counter");
	wm_buf_json_double(l, WM_REQ_GRACE_S);
	wm_buf_puts(l, "}\n");
	int rc = wm_buf_error(l) ? -ENOMEM : wm_jsonl_create(&q->file, q->dir_fd, "requests.jsonl", l->data, l->len);
	if (rc == 0 && q->pre_b > q->pre_a)
		put_idle_line(q, q->pre_a, q->pre_b, q->pre_j);
	return rc;
}

static void on_idle(void *ctx, uint64_t a, uint64_t b, const double *e)
{
	struct wm_requests *q = ctx;
	if (!q->any_request) {
		/* before the first request there is no file: kept as one stretch */
		if (q->pre_b <= q->pre_a)
			q->pre_a = a;
		q->pre_b = b;
		for (size_t i = 0; i < q->n_dev; i++)
			q->pre_j[i] += e[i];
		return;
	}
	if (open_file(q) == 0)
		put_idle_line(q, a, b, e);
}

static void put_str_or_null(wm_buf *b, json_t *v)
{
	if (json_is_string(v))
		wm_buf_json_str(b, json_string_value(v));
	else
		wm_buf_puts(b, "null");
}

static void put_tokens(wm_buf *b, double n)
{
	if (isfinite(n))
		wm_buf_json_double(b, n);
	else
		wm_buf_puts(b, "null");
}

static void on_request(void *ctx, const wm_ledger_req *r)
{
	struct wm_requests *q = ctx;
	const wm_meter *m = q->m;
	json_t *attrs = r->attrs ? json_loads(r->attrs, 0, NULL) : NULL;
	json_t *res = r->result ? json_loads(r->result, 0, NULL) : NULL;
	wm_buf *l = &q->line;
	wm_buf_reset(l);
	wm_buf_printf(l, "{\"event\":\"request\",\"id\":%lld,\"t_start_s\":", (long long)r->id);
	wm_buf_json_fixed(l, t_rel(m, r->t_start_ns), 6);
	wm_buf_puts(l, ",\"t_first_token_s\":");
	if (r->t_first_ns)
		wm_buf_json_fixed(l, t_rel(m, r->t_first_ns), 6);
	else
		wm_buf_puts(l, "null");
	wm_buf_puts(l, ",\"t_end_s\":");
	wm_buf_json_fixed(l, t_rel(m, r->t_end_ns), 6);
	wm_buf_puts(l, ",\"duration_s\":");
	wm_buf_json_fixed(l, r->t_end_ns > r->t_start_ns ? (double)(r->t_end_ns - r->t_start_ns) / 1e9 : 0.0, 6);
	wm_buf_puts(l, ",\"path\":");
	put_str_or_null(l, json_object_get(attrs, "path"));
	wm_buf_puts(l, ",\"model\":");
	put_str_or_null(l, json_object_get(attrs, "model"));
	json_t *st = json_object_get(res, "status");
	wm_buf_puts(l, ",\"status\":");
	if (json_is_integer(st))
		wm_buf_printf(l, "%lld", (long long)json_integer_value(st));
	else
		wm_buf_puts(l, "null");
	json_t *sm = json_object_get(attrs, "stream");
	wm_buf_printf(l, ",\"stream\":%s", json_is_boolean(sm) ? (json_is_true(sm) ? "true" : "false") : "null");
	wm_buf_puts(l, ",\"prompt_tokens\":");
	put_tokens(l, r->prompt_tokens);
	wm_buf_puts(l, ",\"completion_tokens\":");
	put_tokens(l, r->completion_tokens);
	wm_buf_puts(l, ",\"counted_tokens\":");
	wm_buf_json_double(l, r->counted_tokens);
	json_t *ts = json_object_get(res, "tokens_source");
	wm_buf_puts(l, ",\"tokens_source\":");
	if (json_is_string(ts))
		wm_buf_json_str(l, json_string_value(ts));
	else if (r->usage)
		wm_buf_puts(l, "\"usage\"");
	else
		wm_buf_puts(l, r->counted_tokens > 0 ? "\"counted\"" : "\"none\"");
	json_t *oc = json_object_get(res, "outcome");
	wm_buf_puts(l, ",\"outcome\":");
	if (r->open_at_stop)
		wm_buf_puts(l, "\"open_at_stop\"");
	else if (json_is_string(oc))
		wm_buf_json_str(l, json_string_value(oc));
	else
		wm_buf_puts(l, "\"ok\"");

	wm_buf_puts(l, ",\"energy_j\":");
	put_devs(l, q, r->energy_j);
	wm_buf_puts(l, ",\"total_j\":");
	wm_buf_json_double(l, total(q, r->energy_j));
	/* active: the server's idle power over this request's share of its time
	 * taken off (the idle power known when the line is written) */
	wm_ledger_idle_power(q->led, q->idle_w);
	int have_idle = q->n_dev && isfinite(q->idle_w[0]);
	wm_buf_puts(l, ",\"active_energy_j\":");
	if (have_idle) {
		double *act = q->delta; /* scratch */
		for (size_t i = 0; i < q->n_dev; i++)
			act[i] = r->energy_j[i] - q->idle_w[i] * r->server_share_s;
		put_devs(l, q, act);
		wm_buf_puts(l, ",\"active_total_j\":");
		wm_buf_json_double(l, total(q, act));
		wm_buf_puts(l, ",\"idle_power_w\":");
		put_devs(l, q, q->idle_w);
	} else {
		wm_buf_puts(l, "null,\"active_total_j\":null,\"idle_power_w\":null");
	}
	wm_buf_puts(l, ",\"server_share_s\":");
	wm_buf_json_double(l, r->server_share_s);
	const char *meth = r->method == (WM_LEDGER_BY_TOKENS | WM_LEDGER_BY_TIME) ? "tokens+time"
			   : r->method == WM_LEDGER_BY_TOKENS			 ? "tokens"
			   : r->method == WM_LEDGER_BY_TIME			 ? "time"
										 : "none";
	wm_buf_printf(l, ",\"method\":\"%s\",\"attrs\":{", meth);
	/* the caller's other keys, as given */
	const char *k;
	json_t *v;
	int first = 1;
	json_object_foreach(attrs, k, v) {
		if (!strcmp(k, "path") || !strcmp(k, "model") || !strcmp(k, "stream"))
			continue;
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
		if (!s)
			continue;
		wm_buf_puts(l, first ? "" : ",");
		first = 0;
		wm_buf_json_str(l, k);
		wm_buf_puts(l, ":");
		wm_buf_puts(l, s);
		free(s);
	}
	/* the end's completion text (the proxy's --store-text gives it; the
	 * caller chose to keep it), beside the begin's prompt_text */
	json_t *ct = json_object_get(res, "completion_text");
	if (json_is_string(ct) && !json_object_get(attrs, "completion_text")) {
		wm_buf_puts(l, first ? "" : ",");
		wm_buf_puts(l, "\"completion_text\":");
		wm_buf_json_str(l, json_string_value(ct));
	}
	wm_buf_puts(l, "},\"notes\":[");
	first = 1;
	if (r->open_at_stop) {
		wm_buf_puts(l, "\"never ended: ended at the meter's last sample\"");
		first = 0;
	}
	if (r->forced) {
		wm_buf_puts(l, first ? "" : ",");
		wm_buf_puts(l, "\"an interval was finalised before it ended (too many pending): weighed by what was known\"");
		first = 0;
	}
	if (r->clamped) {
		wm_buf_puts(l, first ? "" : ",");
		wm_buf_puts(l, "\"an edge arrived after its interval was final: moved to the next\"");
	}
	wm_buf_puts(l, "]}\n");
	json_decref(attrs);
	json_decref(res);
	if (open_file(q) == 0 && put_line(q) == 0) {
		pthread_mutex_lock(&q->qlock);
		wm_request_done_fn fn = q->fn;
		void *fctx = q->fn_ctx;
		pthread_mutex_unlock(&q->qlock);
		if (fn) {
			q->line.data[q->line.len - 1] = '\0'; /* without its newline */
			fn(fctx, q->line.data);
		}
	}
	if (!r->open_at_stop) {
		pthread_mutex_lock(&q->qlock);
		q->ends_done++;
		pthread_cond_broadcast(&q->qdone);
		pthread_mutex_unlock(&q->qlock);
	}
}

static void put_summary(struct wm_requests *q)
{
	wm_ledger_totals t;
	wm_ledger_get_totals(q->led, &t);
	wm_ledger_idle_power(q->led, q->idle_w);
	wm_buf *l = &q->line;
	wm_buf_reset(l);
	wm_buf_puts(l, "{\"event\":\"summary\",\"t_end_s\":");
	wm_buf_json_fixed(l, t_rel(q->m, t.horizon_ns), 6);
	wm_buf_printf(l, ",\"intervals\":%llu,\"forced_intervals\":%llu,\"requests\":%llu,\"open_at_stop\":%llu",
		      (unsigned long long)t.intervals, (unsigned long long)t.forced_intervals,
		      (unsigned long long)t.requests, (unsigned long long)t.open_at_stop);
	wm_buf_puts(l, ",\"server_energy_j\":");
	put_devs(l, q, t.server_j);
	wm_buf_puts(l, ",\"requests_energy_j\":");
	put_devs(l, q, t.requests_j);
	wm_buf_puts(l, ",\"idle_energy_j\":");
	put_devs(l, q, t.idle_j);
	wm_buf_puts(l, ",\"idle_s\":");
	wm_buf_json_fixed(l, t.idle_s, 6);
	wm_buf_puts(l, ",\"busy_s\":");
	wm_buf_json_fixed(l, t.busy_s, 6);
	wm_buf_puts(l, ",\"idle_power_w\":");
	if (q->n_dev && isfinite(q->idle_w[0]))
		put_devs(l, q, q->idle_w);
	else
		wm_buf_puts(l, "null");
	wm_buf_printf(l, ",\"lines_lost\":%llu}\n", (unsigned long long)q->file.lines_lost);
	(void)put_line(q);
}

/* ---- the ledger thread ----------------------------------------------------------- */

static void apply(struct wm_requests *q, struct rq_ev *e, const wm_ledger_emit *em)
{
	switch (e->kind) {
	case RQ_INTERVAL:
		if (!q->have_prev) {
			memcpy(q->prev, e->cum, q->n_dev * sizeof(double));
			q->prev_ns = e->t_ns;
			q->have_prev = 1;
			q->led = wm_ledger_new(q->n_dev, e->t_ns);
			break;
		}
		if (!q->led || e->t_ns <= q->prev_ns)
			break;
		for (size_t i = 0; i < q->n_dev; i++)
			q->delta[i] = e->cum[i] - q->prev[i];
		if (wm_ledger_interval(q->led, e->t_ns, q->delta, em) == 0) {
			memcpy(q->prev, e->cum, q->n_dev * sizeof(double));
			q->prev_ns = e->t_ns;
		}
		break;
	case RQ_BEGIN:
		if (!q->any_request) {
			q->any_request = 1;
			(void)open_file(q);
		}
		if (q->led && wm_ledger_begin(q->led, e->id, e->t_ns, e->json) == 0)
			e->json = NULL;
		break;
	case RQ_TOKENS:
		if (q->led)
			(void)wm_ledger_tokens(q->led, e->id, e->t_ns, e->n);
		break;
	case RQ_END:
		if (q->led && wm_ledger_end(q->led, e->id, e->t_ns, e->prompt, e->completion, e->json) == 0) {
			e->json = NULL;
		} else {
			pthread_mutex_lock(&q->qlock);
			q->ends_done++; /* lost (no memory at its begin): not waited for */
			pthread_cond_broadcast(&q->qdone);
			pthread_mutex_unlock(&q->qlock);
		}
		break;
	}
}

static void *ledger_main(void *arg)
{
	wm_meter *m = arg;
	struct wm_requests *q = m->req;
	const wm_ledger_emit em = {.request = on_request, .idle = on_idle, .ctx = q};
	uint64_t grace_ns = (uint64_t)(WM_REQ_GRACE_S * 1e9);
	pthread_mutex_lock(&q->qlock);
	for (;;) {
		/* wake for the oldest interval's grace to end, unless an open
		 * request holds it (then its end, queued, wakes us) */
		uint64_t due = q->led ? wm_ledger_next_due(q->led) : 0;
		while (!q->nq && !q->stop) {
			if (!due) {
				pthread_cond_wait(&q->qcond, &q->qlock);
				continue;
			}
			uint64_t t = due + grace_ns + 1000000; /* CLOCK_MONOTONIC: the cond's clock (start) */
			struct timespec ts = {.tv_sec = (time_t)(t / 1000000000ull), .tv_nsec = (long)(t % 1000000000ull)};
			if (pthread_cond_timedwait(&q->qcond, &q->qlock, &ts) == ETIMEDOUT)
				break;
		}
		int stop = q->stop;
		struct rq_ev *batch = q->q;
		size_t n = q->nq;
		q->q = q->work;
		size_t cap = q->capq;
		q->capq = q->capw;
		q->work = batch;
		q->capw = cap;
		q->nq = 0;
		pthread_mutex_unlock(&q->qlock);

		for (size_t i = 0; i < n; i++) {
			apply(q, &batch[i], &em);
			free_ev(&batch[i]);
		}
		if (q->led) {
			uint64_t now = wm_now_mono_ns();
			wm_ledger_settle(q->led, now > grace_ns ? now - grace_ns : 0, stop, &em);
			if (stop && q->any_request && open_file(q) == 0)
				put_summary(q);
		}
		pthread_mutex_lock(&q->qlock);
		if (stop && !q->nq) {
			struct timespec ts;
			if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
				q->final_cpu_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
			break;
		}
	}
	pthread_mutex_unlock(&q->qlock);
	return NULL;
}

/* ---- the caller's side ------------------------------------------------------------ */

static int usable(wm_meter *m)
{
	if (!wm_meter_is_owner(m))
		return -ECHILD;
	if (!m->req || !m->req->started)
		return -ENOTSUP;
	return 0;
}

/* The position of id among the open ones (ascending), *found set. */
static size_t open_at(const struct wm_requests *q, int64_t id, int *found)
{
	size_t lo = 0, hi = q->n_open;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (q->open_ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < q->n_open && q->open_ids[lo] == id;
	return lo;
}

/* Queues ev (its strings owned by the queue from here, freed on failure).
 * Under qlock: begin takes an id and opens it, tokens and end check it. */
static int enqueue(wm_meter *m, struct rq_ev *ev)
{
	struct wm_requests *q = m->req;
	pthread_mutex_lock(&q->qlock);
	int rc = 0, found = 0;
	size_t at = 0;
	if (q->stop)
		rc = -ESHUTDOWN;
	if (!rc && q->nq == q->capq) {
		size_t cap = q->capq ? 2 * q->capq : 64;
		struct rq_ev *p = realloc(q->q, cap * sizeof *p);
		if (!p)
			rc = -ENOMEM;
		else {
			q->q = p;
			q->capq = cap;
		}
	}
	if (!rc && ev->kind == RQ_BEGIN && q->n_open == q->cap_open) {
		size_t cap = q->cap_open ? 2 * q->cap_open : 64;
		int64_t *p = realloc(q->open_ids, cap * sizeof *p);
		if (!p)
			rc = -ENOMEM;
		else {
			q->open_ids = p;
			q->cap_open = cap;
		}
	}
	if (!rc && ev->kind == RQ_BEGIN && !q->began && q->have_latest) {
		double *cum = malloc((q->n_dev ? q->n_dev : 1) * sizeof *cum);
		if (!cum || q->nq + 1 >= q->capq) {
			struct rq_ev *p = cum ? realloc(q->q, (q->capq + 64) * sizeof *p) : NULL;
			if (p) {
				q->q = p;
				q->capq += 64;
			} else {
				free(cum);
				cum = NULL;
				rc = -ENOMEM;
			}
		}
		if (cum) {
			memcpy(cum, q->latest, q->n_dev * sizeof *cum);
			q->q[q->nq++] = (struct rq_ev){.kind = RQ_INTERVAL, .t_ns = q->latest_ns, .cum = cum};
		}
	}
	if (!rc && ev->kind == RQ_BEGIN) {
		q->began = 1;
		ev->id = ++q->next_id; /* ascending: appended in order */
		q->open_ids[q->n_open++] = ev->id;
	} else if (!rc && ev->kind != RQ_INTERVAL) {
		at = open_at(q, ev->id, &found);
		if (!found)
			rc = -ENOENT;
		else if (ev->kind == RQ_END) {
			memmove(q->open_ids + at, q->open_ids + at + 1, (q->n_open - at - 1) * sizeof *q->open_ids);
			q->n_open--;
			q->ends_queued++;
		}
	}
	if (!rc) {
		q->q[q->nq++] = *ev;
		/* Only an interval wakes the thread. A request's edges and
		 * tokens are read in order before the interval they fall in,
		 * whose own event (or the grace wait) wakes it, and no line can
		 * be written before that interval is final anyway; a flush
		 * wakes it itself. A wake per begin and end (and once per
		 * token) was two context switches per request on the proxy's
		 * two busy cores. */
		if (ev->kind == RQ_INTERVAL)
			pthread_cond_signal(&q->qcond);
	}
	pthread_mutex_unlock(&q->qlock);
	if (rc)
		free_ev(ev);
	return rc;
}

/* A compact copy of a JSON object text, NULL for none; -EINVAL if not one. */
static int compact_object(const char *json, char **out, json_t **keep)
{
	*out = NULL;
	if (!json || !*json)
		return 0;
	json_t *o = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		return -EINVAL;
	}
	*out = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	if (keep)
		*keep = o;
	else
		json_decref(o);
	return *out ? 0 : -ENOMEM;
}

int64_t wm_meter_request_begin(wm_meter *m, uint64_t mono_ns, const char *attrs_json)
{
	int rc = usable(m);
	if (rc)
		return rc;
	struct rq_ev ev = {.kind = RQ_BEGIN, .t_ns = wm_meter_edge_ns(m, mono_ns)};
	json_t *o = NULL;
	rc = compact_object(attrs_json, &ev.json, &o);
	if (!rc && o) {
		json_t *p = json_object_get(o, "path"), *md = json_object_get(o, "model"), *s = json_object_get(o, "stream");
		if ((p && !json_is_string(p) && !json_is_null(p)) || (md && !json_is_string(md) && !json_is_null(md)) ||
		    (s && !json_is_boolean(s) && !json_is_null(s)))
			rc = -EINVAL; /* path and model are strings, stream a boolean */
	}
	json_decref(o);
	if (rc) {
		free(ev.json);
		return rc;
	}
	rc = enqueue(m, &ev);
	return rc < 0 ? rc : ev.id;
}

int wm_meter_request_tokens(wm_meter *m, int64_t id, uint64_t mono_ns, uint64_t tokens)
{
	int rc = usable(m);
	if (rc)
		return rc;
	struct rq_ev ev = {.kind = RQ_TOKENS, .id = id, .t_ns = wm_meter_edge_ns(m, mono_ns), .n = tokens};
	return enqueue(m, &ev);
}

static int token_field(json_t *o, const char *k, double *out)
{
	json_t *v = json_object_get(o, k);
	*out = NAN;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_number(v) || !(json_number_value(v) >= 0) || !isfinite(json_number_value(v)))
		return -EINVAL;
	*out = json_number_value(v);
	return 0;
}

int wm_meter_request_end(wm_meter *m, int64_t id, uint64_t mono_ns, const char *result_json)
{
	int rc = usable(m);
	if (rc)
		return rc;
	struct rq_ev ev = {.kind = RQ_END, .id = id, .t_ns = wm_meter_edge_ns(m, mono_ns), .prompt = NAN,
			   .completion = NAN};
	json_t *o = NULL;
	rc = compact_object(result_json, &ev.json, &o);
	if (!rc && o) {
		json_t *st = json_object_get(o, "status"), *ts = json_object_get(o, "tokens_source"),
		       *oc = json_object_get(o, "outcome");
		if (token_field(o, "prompt_tokens", &ev.prompt) < 0 ||
		    token_field(o, "completion_tokens", &ev.completion) < 0 ||
		    (st && !json_is_integer(st) && !json_is_null(st)) || (ts && !json_is_string(ts) && !json_is_null(ts)) ||
		    (oc && !json_is_string(oc) && !json_is_null(oc)))
			rc = -EINVAL;
	}
	json_decref(o);
	if (rc) {
		free(ev.json);
		return rc;
	}
	return enqueue(m, &ev);
}

int wm_meter_set_request_callback(wm_meter *m, wm_request_done_fn fn, void *ctx)
{
	int rc = usable(m);
	if (rc)
		return rc;
	pthread_mutex_lock(&m->req->qlock);
	m->req->fn = fn;
	m->req->fn_ctx = ctx;
	pthread_mutex_unlock(&m->req->qlock);
	return 0;
}

int wm_meter_requests_flush(wm_meter *m, double timeout_s)
{
	int rc = usable(m);
	if (rc)
		return rc;
	struct wm_requests *q = m->req;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts); /* the cond's clock */
	double t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + (timeout_s > 0 ? timeout_s : 0);
	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
	pthread_mutex_lock(&q->qlock);
	uint64_t target = q->ends_queued;
	pthread_cond_signal(&q->qcond); /* enqueue does not wake it for an end */
	while (q->ends_done < target && !q->joined && rc == 0)
		if (pthread_cond_timedwait(&q->qdone, &q->qlock, &ts) == ETIMEDOUT && q->ends_done < target)
			rc = -ETIMEDOUT;
	if (!rc && q->file.write_errno)
		rc = -q->file.write_errno;
	pthread_mutex_unlock(&q->qlock);
	return rc;
}

/* ---- the meter's hooks (requests.h) ------------------------------------------------ */

int wm_requests_start(wm_meter *m, const char *output_dir, char *err, size_t errlen)
{
	if (!output_dir)
		return 0;
	struct wm_requests *q = calloc(1, sizeof *q);
	if (!q)
		return wm_err(err, errlen, -ENOMEM, "out of memory");
	q->dir_fd = -1;
	q->m = m;
	wm_jsonl_init(&q->file);
	wm_buf_init(&q->line);
	pthread_mutex_init(&q->qlock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the stamps' clock */
	pthread_cond_init(&q->qcond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&q->qdone, NULL);
	m->req = q;
	/* the server: the measured set where there is one (its attributed
	 * energy, on devices that attribute), else the machine */
	q->measured_set = m->tree != NULL;
	size_t nd = m->n_dev ? m->n_dev : 1;
	q->dev = calloc(nd, sizeof *q->dev);
	q->prev = calloc(5 * nd, sizeof(double));
	if (!q->dev || !q->prev)
		return wm_err(err, errlen, -ENOMEM, "out of memory");
	q->delta = q->prev + nd;
	q->idle_w = q->prev + 2 * nd;
	q->pre_j = q->prev + 3 * nd;
	q->latest = q->prev + 4 * nd;
	for (size_t d = 0; d < m->n_dev; d++)
		if (!q->measured_set || m->dev[d].decl->rule != WM_ATTR_NONE)
			q->dev[q->n_dev++] = d;
	char why[512];
	q->dir_fd = wm_dir_open_safe(output_dir, 0, why, sizeof why);
	if (q->dir_fd < 0) {
		int rc = q->dir_fd;
		q->dir_fd = -1;
		return wm_err(err, errlen, rc, "cannot open the recording folder %s: %s", output_dir, why);
	}
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = -pthread_create(&q->thread, NULL, ledger_main, m);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0)
		return wm_err(err, errlen, rc, "cannot start the requests thread: %s", strerror(-rc));
	q->started = 1;
	q->have_cpu_clock = pthread_getcpuclockid(q->thread, &q->cpu_clock) == 0;
	return 0;
}

double wm_requests_cpu_s(const wm_meter *m)
{
	struct wm_requests *q = m->req;
	if (!q || !q->started)
		return 0.0;
	struct timespec ts;
	pthread_mutex_lock(&q->qlock);
	double s = q->final_cpu_s;
	if (!q->joined && q->have_cpu_clock && clock_gettime(q->cpu_clock, &ts) == 0)
		s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	pthread_mutex_unlock(&q->qlock);
	return s;
}

void wm_requests_note_sample(wm_meter *m, uint64_t now_ns, int proc_tier, int baseline)
{
	struct wm_requests *q = m->req;
	if (!q || !q->started)
		return;
	if (q->measured_set && !proc_tier && !baseline)
		return; /* attributed energy moves on the process tier only */
	const double *cum = q->measured_set ? m->attributed_j : m->energy_j;
	if (!baseline) {
		pthread_mutex_lock(&q->qlock);
		int began = q->began;
		if (!began) {
			for (size_t i = 0; i < q->n_dev; i++)
				q->latest[i] = cum[q->dev[i]];
			q->latest_ns = now_ns;
			q->have_latest = 1;
		}
		pthread_mutex_unlock(&q->qlock);
		if (!began)
			return;
	}
	struct rq_ev ev = {.kind = RQ_INTERVAL, .t_ns = now_ns};
	ev.cum = malloc((q->n_dev ? q->n_dev : 1) * sizeof(double));
	if (!ev.cum)
		return; /* the next sample's interval takes this one's energy */
	for (size_t i = 0; i < q->n_dev; i++)
		ev.cum[i] = cum[q->dev[i]];
	(void)enqueue(m, &ev);
}

void wm_requests_stop(wm_meter *m)
{
	struct wm_requests *q = m->req;
	if (!q || !q->started)
		return;
	pthread_mutex_lock(&q->qlock);
	int was = q->joined;
	q->stop = 1;
	pthread_cond_signal(&q->qcond);
	pthread_mutex_unlock(&q->qlock);
	if (was)
		return;
	(void)pthread_join(q->thread, NULL);
	pthread_mutex_lock(&q->qlock);
	q->joined = 1;
	pthread_cond_broadcast(&q->qdone);
	pthread_mutex_unlock(&q->qlock);
	wm_jsonl_close(&q->file, 1);
	if (q->dir_fd >= 0) {
		close(q->dir_fd);
		q->dir_fd = -1;
	}
}

void wm_requests_free(wm_meter *m)
{
	struct wm_requests *q = m->req;
	if (!q)
		return;
	wm_requests_stop(m);
	for (size_t i = 0; i < q->nq; i++)
		free_ev(&q->q[i]);
	free(q->q);
	free(q->work);
	free(q->open_ids);
	free(q->dev);
	free(q->prev);
	wm_ledger_free(q->led);
	wm_jsonl_close(&q->file, 0);
	if (q->dir_fd >= 0)
		close(q->dir_fd);
	wm_buf_free(&q->line);
	pthread_mutex_destroy(&q->qlock);
	pthread_cond_destroy(&q->qcond);
	pthread_cond_destroy(&q->qdone);
	free(q);
	m->req = NULL;
}
