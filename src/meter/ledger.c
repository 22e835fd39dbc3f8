/* ledger.c — the request ledger (ledger.h; docs/architecture.md "Requests").
 *
 * The rule, per finalised interval (a, b] of length dt with server energy E
 * (per device), over the requests in flight in it (overlapping it in time,
 * or with tokens in it):
 *
 *   time_r   = the seconds of (a, b] the request spent in flight (1 ns at
 *              least, so that a request of zero duration still counts);
 *   tokens_r = the tokens it produced in (a, b]:
 *              - with token events (a stream): its prompt tokens spread
 *                uniformly over [t_start, t_first_token] (the prefill), plus
 *                the completion tokens of its events in (a, b], scaled by
 *                usage / counted when the end gave usage;
 *              - without (a non-streamed response, an embedding): prompt +
 *                completion tokens spread uniformly over [t_start, t_end];
 *   a request "has tokens" when prompt + completion > 0.
 *
 *   Time first: s_r = time_r / Σ time. The requests that have tokens take
 *   their group's time share S = Σ_{has tokens} s_r and split it by
 *   tokens_r / Σ tokens (when Σ tokens > 0 in the interval; else by s_r);
 *   the others keep s_r. So with every request carrying tokens the split is
 *   by tokens alone; with none, by time alone; a mix never lets one kind
 *   take the other's time. Each request gets share_r x E; Σ share_r = 1.
 *   An interval with no request in flight is idle: E goes to idle.
 *
 * An interval is final once the callers' events for it have arrived
 * (b <= settled_ns) and every request in flight in it has ended: a
 * request's prompt tokens (and whether it has tokens at all) are known
 * only at its end. A request is emitted once its end is behind the last
 * final interval; then it and every consumed interval are freed, so memory
 * is what is in flight plus the intervals since the oldest open request
 * (capped: WM_LEDGER_MAX_PENDING).
 */
#include "meter/ledger.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define IDLE_LINE_NS (60ull * 1000000000ull) /* an idle stretch is emitted at least every 60 s */

struct tev {
	uint64_t t_ns;
	double n;
};

struct lreq {
	int64_t id;
	uint64_t t0, t1, tfirst; /* t1 valid when ended */
	int ended, open_at_stop, forced, clamped;
	char *attrs, *result;
	double prompt, usage_completion, counted; /* NAN: not given */
	struct tev *ev;
	size_t n_ev, cap_ev, cur; /* ev[cur..] not yet in a final interval */
	double share_s;
	unsigned method;
	double e[]; /* [n_dev] */
};

struct lint {
	uint64_t a, b;
	double *e; /* [n_dev] */
};

struct wm_ledger {
	size_t n_dev;
	uint64_t t0, last_b, horizon;
	struct lint *iv;
	size_t head, n_iv, cap_iv; /* pending: iv[head .. n_iv) */
	struct lreq **rq;         /* active (not emitted), by id ascending */
	size_t n_rq, cap_rq;
	double *scratch;          /* 3 x cap_scratch: time, tokens, share */
	size_t *idx;
	size_t cap_scratch;
	double *server_j, *requests_j, *idle_j, *stretch_j; /* [n_dev] each, one block */
	uint64_t stretch_a, stretch_b; /* the idle stretch being built, a == b none */
	double idle_s, busy_s;
	uint64_t intervals, forced_intervals, requests, open_at_stop;
};

wm_ledger *wm_ledger_new(size_t n_dev, uint64_t t0_ns)
{
	wm_ledger *l = calloc(1, sizeof *l);
	if (!l)
		return NULL;
	l->n_dev = n_dev;
	l->t0 = l->last_b = l->horizon = t0_ns;
	l->server_j = calloc(4 * (n_dev ? n_dev : 1), sizeof(double));
	if (!l->server_j) {
		free(l);
		return NULL;
	}
	l->requests_j = l->server_j + n_dev;
	l->idle_j = l->server_j + 2 * n_dev;
	l->stretch_j = l->server_j + 3 * n_dev;
	return l;
}

static void free_req(struct lreq *r)
{
	if (!r)
		return;
	free(r->attrs);
	free(r->result);
	free(r->ev);
	free(r);
}

void wm_ledger_free(wm_ledger *l)
{
	if (!l)
		return;
	for (size_t i = l->head; i < l->n_iv; i++)
		free(l->iv[i].e);
	free(l->iv);
	for (size_t i = 0; i < l->n_rq; i++)
		free_req(l->rq[i]);
	free(l->rq);
	free(l->scratch);
	free(l->idx);
	free(l->server_j);
	free(l);
}

size_t wm_ledger_pending(const wm_ledger *l)
{
	return l->n_iv - l->head;
}

size_t wm_ledger_active(const wm_ledger *l)
{
	return l->n_rq;
}

static struct lreq *find(const wm_ledger *l, int64_t id, size_t *at)
{
	size_t lo = 0, hi = l->n_rq;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (l->rq[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (at)
		*at = lo;
	return lo < l->n_rq && l->rq[lo]->id == id ? l->rq[lo] : NULL;
}

/* An edge stamped before the last final interval's end cannot go there any
 * more: it is taken just after it (and the request says so). */
static uint64_t after_horizon(wm_ledger *l, uint64_t t, int *clamped)
{
	if (t > l->horizon)
		return t;
	if (l->intervals && clamped)
		*clamped = 1;
	return l->horizon + 1;
}

int wm_ledger_begin(wm_ledger *l, int64_t id, uint64_t t_ns, char *attrs)
{
	size_t at;
	if (find(l, id, &at))
		return -EEXIST;
	if (l->n_rq == l->cap_rq) {
		size_t cap = l->cap_rq ? 2 * l->cap_rq : 64;
		struct lreq **p = realloc(l->rq, cap * sizeof *p);
		if (!p)
			return -ENOMEM;
		l->rq = p;
		l->cap_rq = cap;
	}
	struct lreq *r = calloc(1, sizeof *r + l->n_dev * sizeof(double));
	if (!r)
		return -ENOMEM;
	r->id = id;
	r->t0 = after_horizon(l, t_ns, &r->clamped);
	r->prompt = r->usage_completion = NAN;
	r->attrs = attrs;
	memmove(l->rq + at + 1, l->rq + at, (l->n_rq - at) * sizeof *l->rq);
	l->rq[at] = r;
	l->n_rq++;
	return 0;
}

int wm_ledger_tokens(wm_ledger *l, int64_t id, uint64_t t_ns, uint64_t n)
{
	struct lreq *r = find(l, id, NULL);
	if (!r || r->ended)
		return -ENOENT;
	if (!n)
		return 0;
	uint64_t t = after_horizon(l, t_ns, &r->clamped);
	if (t < r->t0)
		t = r->t0;
	if (r->n_ev == r->cap_ev) {
		size_t cap = r->cap_ev ? 2 * r->cap_ev : 8;
		struct tev *p = realloc(r->ev, cap * sizeof *p);
		if (!p)
			return -ENOMEM;
		r->ev = p;
		r->cap_ev = cap;
	}
	/* in time order; events from one caller come in order, a late one is
	 * put in its place */
	size_t j = r->n_ev;
	while (j > r->cur && r->ev[j - 1].t_ns > t)
		j--;
	memmove(r->ev + j + 1, r->ev + j, (r->n_ev - j) * sizeof *r->ev);
	r->ev[j] = (struct tev){t, (double)n};
	r->n_ev++;
	r->counted += (double)n;
	if (!r->tfirst || t < r->tfirst)
		r->tfirst = t;
	return 0;
}

int wm_ledger_end(wm_ledger *l, int64_t id, uint64_t t_ns, double prompt_tokens, double completion_tokens,
		  char *result)
{
	struct lreq *r = find(l, id, NULL);
	if (!r || r->ended)
		return -ENOENT;
	uint64_t t = after_horizon(l, t_ns, &r->clamped);
	if (t < r->t0)
		t = r->t0;
	if (r->n_ev && r->ev[r->n_ev - 1].t_ns > t)
		t = r->ev[r->n_ev - 1].t_ns; /* a token stamped after the end: the end is that late */
	r->t1 = t;
	r->ended = 1;
	r->prompt = isfinite(prompt_tokens) && prompt_tokens >= 0 ? prompt_tokens : NAN;
	r->usage_completion = isfinite(completion_tokens) && completion_tokens >= 0 ? completion_tokens : NAN;
	r->result = result;
	return 0;
}

/* Merges a request's token events inside (a, b] into one at b: a request
 * keeps one entry per interval, however many chunks it streamed. */
static void coalesce(struct lreq *r, uint64_t a, uint64_t b)
{
	size_t hi = r->n_ev;
	while (hi > r->cur && r->ev[hi - 1].t_ns > b)
		hi--;
	size_t lo = hi;
	while (lo > r->cur && r->ev[lo - 1].t_ns > a)
		lo--;
	if (hi - lo < 2)
		return;
	double n = 0;
	for (size_t i = lo; i < hi; i++)
		n += r->ev[i].n;
	r->ev[lo] = (struct tev){b, n};
	memmove(r->ev + lo + 1, r->ev + hi, (r->n_ev - hi) * sizeof *r->ev);
	r->n_ev -= hi - lo - 1;
}

static double overlap_s(uint64_t a, uint64_t b, uint64_t x, uint64_t y)
{
	uint64_t lo = a > x ? a : x, hi = b < y ? b : y;
	return hi > lo ? (double)(hi - lo) / 1e9 : 0.0;
}

static int grow_scratch(wm_ledger *l, size_t n)
{
	if (n <= l->cap_scratch)
		return 0;
	size_t cap = l->cap_scratch ? l->cap_scratch : 64;
	while (cap < n)
		cap *= 2;
	double *s = realloc(l->scratch, 3 * cap * sizeof *s);
	if (!s)
		return -ENOMEM;
	l->scratch = s;
	size_t *ix = realloc(l->idx, cap * sizeof *ix);
	if (!ix)
		return -ENOMEM;
	l->idx = ix;
	l->cap_scratch = cap;
	return 0;
}

static void emit_stretch(wm_ledger *l, const wm_ledger_emit *em)
{
	if (l->stretch_b <= l->stretch_a)
		return;
	if (em && em->idle)
		em->idle(em->ctx, l->stretch_a, l->stretch_b, l->stretch_j);
	memset(l->stretch_j, 0, l->n_dev * sizeof(double));
	l->stretch_a = l->stretch_b = 0;
}

/* Finalises the oldest pending interval. */
static void finalise_one(wm_ledger *l, int forced, const wm_ledger_emit *em)
{
	struct lint *iv = &l->iv[l->head];
	uint64_t a = iv->a, b = iv->b;
	double dt_s = (double)(b - a) / 1e9;
	size_t n = 0;
	int scratch_ok = grow_scratch(l, l->n_rq) == 0;
	double *tm = l->scratch, *tk = tm ? tm + l->cap_scratch : NULL, *sh = tm ? tm + 2 * l->cap_scratch : NULL;
	double sum_t = 0;
	for (size_t i = 0; scratch_ok && i < l->n_rq; i++) {
		struct lreq *r = l->rq[i];
		uint64_t t1 = r->ended ? r->t1 : UINT64_MAX;
		/* its tokens in (a, b] (consumed here: intervals finalise in order) */
		double ev_n = 0;
		while (r->cur < r->n_ev && r->ev[r->cur].t_ns <= b)
			ev_n += r->ev[r->cur++].n;
		if (r->cur > 32 && r->cur * 2 > r->n_ev) {
			memmove(r->ev, r->ev + r->cur, (r->n_ev - r->cur) * sizeof *r->ev);
			r->n_ev -= r->cur;
			r->cur = 0;
		}
		int spans = r->t0 < b && t1 > a;
		int point = r->t0 == t1 && r->t0 > a && r->t0 <= b;
		if (!spans && !point && ev_n == 0)
			continue;
		if (!r->ended)
			r->forced = 1;
		double p = isfinite(r->prompt) ? r->prompt : 0.0;
		double c = isfinite(r->usage_completion) ? r->usage_completion : r->counted;
		double tok = 0;
		int has = p + c > 0;
		if (r->tfirst && r->counted > 0) {
			if (r->tfirst > r->t0)
				tok += p * overlap_s(a, b, r->t0, r->tfirst) / ((double)(r->tfirst - r->t0) / 1e9);
			else if (r->t0 > a && r->t0 <= b)
				tok += p;
			tok += ev_n * c / r->counted;
		} else if (!r->ended) {
			has = 0; /* forced, tokens not known yet: by time */
		} else if (t1 > r->t0) {
			tok += (p + c) * overlap_s(a, b, r->t0, t1) / ((double)(t1 - r->t0) / 1e9);
		} else if (r->t0 > a && r->t0 <= b) {
			tok += p + c;
		}
		double t = overlap_s(a, b, r->t0, t1);
		if (t <= 0)
			t = 1e-9;
		l->idx[n] = i;
		tm[n] = t;
		tk[n] = has ? tok : -1.0; /* -1: no token info */
		sum_t += t;
		n++;
	}
	if (n) {
		double group_s = 0, group_tok = 0;
		for (size_t j = 0; j < n; j++) {
			sh[j] = tm[j] / sum_t;
			if (tk[j] >= 0) {
				group_s += sh[j];
				group_tok += tk[j];
			}
		}
		for (size_t j = 0; j < n; j++) {
			struct lreq *r = l->rq[l->idx[j]];
			if (tk[j] >= 0 && group_tok > 0) {
				sh[j] = group_s * tk[j] / group_tok;
				r->method |= WM_LEDGER_BY_TOKENS;
			} else {
				r->method |= WM_LEDGER_BY_TIME;
			}
			for (size_t d = 0; d < l->n_dev; d++) {
				double e = sh[j] * iv->e[d];
				r->e[d] += e;
				l->requests_j[d] += e;
			}
			r->share_s += sh[j] * dt_s;
		}
		emit_stretch(l, em);
		l->busy_s += dt_s;
	} else {
		if (l->stretch_b <= l->stretch_a)
			l->stretch_a = a;
		l->stretch_b = b;
		for (size_t d = 0; d < l->n_dev; d++) {
			l->idle_j[d] += iv->e[d];
			l->stretch_j[d] += iv->e[d];
		}
		l->idle_s += dt_s;
		if (b - l->stretch_a >= IDLE_LINE_NS)
			emit_stretch(l, em);
	}
	for (size_t d = 0; d < l->n_dev; d++)
		l->server_j[d] += iv->e[d];
	l->intervals++;
	if (forced)
		l->forced_intervals++;
	l->horizon = b;
	free(iv->e);
	iv->e = NULL;
	l->head++;
	if (l->head == l->n_iv) {
		l->head = l->n_iv = 0;
	} else if (l->head > 1024 && l->head * 2 > l->n_iv) {
		memmove(l->iv, l->iv + l->head, (l->n_iv - l->head) * sizeof *l->iv);
		l->n_iv -= l->head;
		l->head = 0;
	}
}

static void emit_ready(wm_ledger *l, int force, const wm_ledger_emit *em)
{
	size_t k = 0;
	for (size_t i = 0; i < l->n_rq; i++) {
		struct lreq *r = l->rq[i];
		if (!force && !(r->ended && r->t1 <= l->horizon)) {
			l->rq[k++] = r;
			continue;
		}
		wm_ledger_req out = {
			.id = r->id,
			.t_start_ns = r->t0,
			.t_first_ns = r->counted > 0 ? r->tfirst : 0,
			.t_end_ns = r->t1,
			.attrs = r->attrs,
			.result = r->result,
			.prompt_tokens = r->prompt,
			.completion_tokens = isfinite(r->usage_completion) ? r->usage_completion : r->counted,
			.counted_tokens = r->counted,
			.usage = isfinite(r->prompt) || isfinite(r->usage_completion),
			.energy_j = r->e,
			.server_share_s = r->share_s,
			.method = r->method,
			.open_at_stop = r->open_at_stop,
			.forced = r->forced && !r->open_at_stop,
			.clamped = r->clamped,
		};
		l->requests++;
		if (r->open_at_stop)
			l->open_at_stop++;
		if (em && em->request)
			em->request(em->ctx, &out);
		free_req(r);
	}
	l->n_rq = k;
}

static int blocked(const wm_ledger *l, uint64_t b)
{
	for (size_t i = 0; i < l->n_rq; i++) {
		const struct lreq *r = l->rq[i];
		if (!r->ended && r->t0 < b)
			return 1; /* in flight, its tokens not known yet */
	}
	return 0;
}

int wm_ledger_interval(wm_ledger *l, uint64_t b_ns, const double *energy_j, const wm_ledger_emit *em)
{
	if (b_ns <= l->last_b)
		return -EINVAL;
	if (l->n_iv == l->cap_iv) {
		size_t cap = l->cap_iv ? 2 * l->cap_iv : 64;
		struct lint *p = realloc(l->iv, cap * sizeof *p);
		if (!p)
			return -ENOMEM;
		l->iv = p;
		l->cap_iv = cap;
	}
	double *e = malloc((l->n_dev ? l->n_dev : 1) * sizeof *e);
	if (!e)
		return -ENOMEM;
	memcpy(e, energy_j, l->n_dev * sizeof *e);
	l->iv[l->n_iv++] = (struct lint){l->last_b, b_ns, e};
	for (size_t i = 0; i < l->n_rq; i++)
		coalesce(l->rq[i], l->last_b, b_ns);
	l->last_b = b_ns;
	while (wm_ledger_pending(l) > WM_LEDGER_MAX_PENDING) {
		finalise_one(l, 1, em);
		emit_ready(l, 0, em);
	}
	return 0;
}

uint64_t wm_ledger_next_due(const wm_ledger *l)
{
	if (l->head == l->n_iv)
		return 0;
	uint64_t b = l->iv[l->head].b;
	return blocked(l, b) ? 0 : b;
}

void wm_ledger_settle(wm_ledger *l, uint64_t settled_ns, int force, const wm_ledger_emit *em)
{
	if (force) {
		for (size_t i = 0; i < l->n_rq; i++) {
			struct lreq *r = l->rq[i];
			if (r->ended)
				continue;
			r->ended = 1;
			r->open_at_stop = 1;
			r->t1 = r->t0 > l->last_b ? r->t0 : l->last_b;
			if (r->n_ev && r->ev[r->n_ev - 1].t_ns > r->t1)
				r->t1 = r->ev[r->n_ev - 1].t_ns;
		}
	}
	while (l->head < l->n_iv) {
		uint64_t b = l->iv[l->head].b;
		if (!force && (b > settled_ns || blocked(l, b)))
			break;
		finalise_one(l, 0, em);
		emit_ready(l, 0, em);
	}
	if (force) {
		emit_ready(l, 1, em);
		emit_stretch(l, em);
	}
}

void wm_ledger_idle_power(const wm_ledger *l, double *out_w)
{
	for (size_t d = 0; d < l->n_dev; d++)
		out_w[d] = l->idle_s > 0 ? l->idle_j[d] / l->idle_s : NAN;
}

void wm_ledger_get_totals(const wm_ledger *l, wm_ledger_totals *t)
{
	*t = (wm_ledger_totals){
		.intervals = l->intervals,
		.forced_intervals = l->forced_intervals,
		.requests = l->requests,
		.open_at_stop = l->open_at_stop,
		.idle_s = l->idle_s,
		.busy_s = l->busy_s,
		.server_j = l->server_j,
		.requests_j = l->requests_j,
		.idle_j = l->idle_j,
		.first_ns = l->t0,
		.horizon_ns = l->horizon,
	};
}
