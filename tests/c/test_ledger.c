/* test_ledger.c — the request ledger (src/meter/ledger.c) on synthetic
 * intervals whose energies the test sets: each request's share is worked
 * out here by hand from the documented rule (docs/architecture.md
 * "Requests"), and per device the requests plus idle always equal the
 * intervals' energy (batched overlapping requests, requests with and
 * without tokens, idle gaps, a request over a thousand intervals, prompt
 * tokens known only at the end, the pending-interval cap). */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "meter/ledger.h"

#define ND 2
#define S(x) ((uint64_t)llround((x) * 1e9))

struct got {
	int n;
	int64_t id[1024];
	double e[1024][ND];
	double share_s[1024];
	unsigned method[1024];
	double prompt[1024], completion[1024];
	int open[1024];
	double idle[ND];
	int n_idle;
	uint64_t idle_a[1024], idle_b[1024];
	double all_req[ND]; /* for requests past the 64 kept */
	long total;
};

static void on_req(void *ctx, const wm_ledger_req *r)
{
	struct got *g = ctx;
	for (int d = 0; d < ND; d++)
		g->all_req[d] += r->energy_j[d];
	g->total++;
	if (g->n >= 1024)
		return;
	g->id[g->n] = r->id;
	memcpy(g->e[g->n], r->energy_j, sizeof g->e[0]);
	g->share_s[g->n] = r->server_share_s;
	g->method[g->n] = r->method;
	g->prompt[g->n] = r->prompt_tokens;
	g->completion[g->n] = r->completion_tokens;
	g->open[g->n] = r->open_at_stop;
	g->n++;
}

static void on_idle(void *ctx, uint64_t a, uint64_t b, const double *e)
{
	struct got *g = ctx;
	for (int d = 0; d < ND; d++)
		g->idle[d] += e[d];
	if (g->n_idle < 1024) {
		g->idle_a[g->n_idle] = a;
		g->idle_b[g->n_idle] = b;
	}
	g->n_idle++;
}

static int find(const struct got *g, int64_t id)
{
	for (int i = 0; i < g->n; i++)
		if (g->id[i] == id)
			return i;
	fail_msg("request %lld was not emitted", (long long)id);
	return -1;
}

/* interval (last, b] with dev0 = e J and dev1 = 2e J */
static void iv(wm_ledger *l, double b_s, double e, const wm_ledger_emit *em)
{
	double ej[ND] = {e, 2 * e};
	assert_int_equal(wm_ledger_interval(l, S(b_s), ej, em), 0);
}

static void check_conservation(const wm_ledger *l, const struct got *g)
{
	wm_ledger_totals t;
	wm_ledger_get_totals(l, &t);
	for (int d = 0; d < ND; d++) {
		double sum = g->all_req[d] + g->idle[d];
		assert_true(fabs(sum - t.server_j[d]) <= 1e-9 * (1 + fabs(t.server_j[d])));
		assert_true(fabs(t.idle_j[d] - g->idle[d]) <= 1e-9 * (1 + fabs(g->idle[d])));
	}
}

#define NEAR(a, b) assert_true(fabs((a) - (b)) < 1e-6)

/* Two streams in flight together: each interval is split by the tokens each
 * produced in it. */
static void test_two_streams_split_by_tokens(void **state)
{
	(void)state;
	static struct got g;
	memset(&g, 0, sizeof g);
	wm_ledger_emit em = {on_req, on_idle, &g};
	wm_ledger *l = wm_ledger_new(ND, 0);
	assert_non_null(l);
	assert_int_equal(wm_ledger_begin(l, 1, S(0.2), NULL), 0);
	assert_int_equal(wm_ledger_begin(l, 2, S(0.2), NULL), 0);
	assert_int_equal(wm_ledger_tokens(l, 1, S(0.4), 3), 0);
	assert_int_equal(wm_ledger_tokens(l, 2, S(0.6), 1), 0);
	iv(l, 1.0, 10, &em);
	assert_int_equal(wm_ledger_tokens(l, 2, S(1.2), 3), 0);
	assert_int_equal(wm_ledger_tokens(l, 1, S(1.5), 1), 0);
	assert_int_equal(wm_ledger_end(l, 1, S(1.6), 0, 4, NULL), 0);
	assert_int_equal(wm_ledger_end(l, 2, S(1.8), 0, 4, NULL), 0);
	iv(l, 2.0, 10, &em);
	wm_ledger_settle(l, S(10), 0, &em);
	assert_int_equal(g.n, 2);
	/* (0,1]: 3 vs 1 tokens of 10 J; (1,2]: 1 vs 3 */
	NEAR(g.e[find(&g, 1)][0], 7.5 + 2.5);
	NEAR(g.e[find(&g, 2)][0], 2.5 + 7.5);
	NEAR(g.e[find(&g, 1)][1], 2 * (7.5 + 2.5));
	assert_int_equal(g.method[0], WM_LEDGER_BY_TOKENS);
	NEAR(g.idle[0], 0);
	check_conservation(l, &g);
	wm_ledger_free(l);
}

/* A stream whose prompt tokens come only with its end (usage): its prefill
 * weighs them over [t_start, t_first_token]; beside it a request without
 * token information keeps its time share. Nothing is final before the end. */
static void test_prefill_known_at_end_and_a_request_without_tokens(void **state)
{
	(void)state;
	static struct got g;
	memset(&g, 0, sizeof g);
	wm_ledger_emit em = {on_req, on_idle, &g};
	wm_ledger *l = wm_ledger_new(ND, 0);
	assert_int_equal(wm_ledger_begin(l, 1, S(0.5), NULL), 0);
	assert_int_equal(wm_ledger_begin(l, 2, S(0.0), NULL), 0);
	iv(l, 1.0, 9, &em);
	assert_int_equal(wm_ledger_tokens(l, 1, S(1.5), 2), 0);
	iv(l, 2.0, 9, &em);
	wm_ledger_settle(l, S(10), 0, &em);
	assert_int_equal(g.n, 0);                  /* prompt tokens not known yet */
	assert_int_equal(wm_ledger_pending(l), 2); /* both intervals wait */
	assert_int_equal(wm_ledger_end(l, 1, S(2.0), 6, 2, NULL), 0);
	wm_ledger_settle(l, S(10), 0, &em);
	assert_int_equal(g.n, 0); /* request 2 is still open and in flight in both */
	assert_int_equal(wm_ledger_end(l, 2, S(2.0), NAN, NAN, NULL), 0);
	wm_ledger_settle(l, S(10), 0, &em);
	assert_int_equal(g.n, 2);
	/* (0,1]: 1 in flight 0.5 s, 2 for 1 s: time shares 1/3, 2/3; 1 has
	 * tokens (3 of its prefill) so keeps 1/3 -> 3 J, 2 gets 6 J.
	 * (1,2]: 1 s each: 1/2 each -> 4.5 J each (1 is alone in the token group). */
	NEAR(g.e[find(&g, 1)][0], 3 + 4.5);
	NEAR(g.e[find(&g, 2)][0], 6 + 4.5);
	assert_int_equal(g.method[find(&g, 2)], WM_LEDGER_BY_TIME);
	assert_int_equal(g.method[find(&g, 1)], WM_LEDGER_BY_TOKENS);
	NEAR(g.prompt[find(&g, 1)], 6);
	check_conservation(l, &g);
	wm_ledger_free(l);
}

/* Non-streamed responses spread prompt + completion tokens over the
 * request; idle intervals before and after go to idle. */
static void test_non_streamed_and_idle_gaps(void **state)
{
	(void)state;
	static struct got g;
	memset(&g, 0, sizeof g);
	wm_ledger_emit em = {on_req, on_idle, &g};
	wm_ledger *l = wm_ledger_new(ND, 0);
	iv(l, 1.0, 10, &em);
	assert_int_equal(wm_ledger_begin(l, 1, S(1.0), NULL), 0);
	iv(l, 2.0, 10, &em);
	assert_int_equal(wm_ledger_begin(l, 2, S(2.0), NULL), 0);
	assert_int_equal(wm_ledger_end(l, 1, S(3.0), 10, 30, NULL), 0);
	iv(l, 3.0, 10, &em);
	assert_int_equal(wm_ledger_end(l, 2, S(4.0), 10, 10, NULL), 0);
	iv(l, 4.0, 10, &em);
	iv(l, 5.0, 10, &em);
	wm_ledger_settle(l, S(10), 1, &em);
	/* 1: 40 tokens over (1,3] = 20 per interval; 2: 20 over (2,4] = 10.
	 * (1,2]: 1 alone, 10 J. (2,3]: 20 vs 10 -> 6.667 / 3.333. (3,4]: 2 alone. */
	NEAR(g.e[find(&g, 1)][0], 10 + 20.0 / 3);
	NEAR(g.e[find(&g, 2)][0], 10.0 / 3 + 10);
	NEAR(g.idle[0], 20); /* (0,1] and (4,5] */
	NEAR(g.idle[1], 40);
	assert_int_equal(g.n_idle, 2);
	assert_int_equal(g.idle_a[0], S(0));
	assert_int_equal(g.idle_b[0], S(1));
	assert_int_equal(g.idle_a[1], S(4));
	assert_int_equal(g.idle_b[1], S(5));
	/* its share of the server's time: 1 s alone + 2/3 s shared */
	NEAR(g.share_s[find(&g, 1)], 1 + 2.0 / 3);
	check_conservation(l, &g);
	wm_ledger_free(l);
}

/* Four identical concurrent requests share the interval, not each take it. */
static void test_four_concurrent_share(void **state)
{
	(void)state;
	static struct got g;
	memset(&g, 0, sizeof g);
	wm_ledger_emit em = {on_req, on_idle, &g};
	wm_ledger *l = wm_ledger_new(ND, 0);
	for (int i = 1; i <= 4; i++)
		assert_int_equal(wm_ledger_begin(l, i, S(0.1), NULL), 0);
	for (int k = 0; k < 10; k++)
		for (int i = 1; i <= 4; i++)
			assert_int_equal(wm_ledger_tokens(l, i, S(0.15 + 0.18 * k), 5), 0);
	for (int i = 1; i <= 4; i++)
		assert_int_equal(wm_ledger_end(l, i, S(1.9), 3, NAN, NULL), 0);
	iv(l, 1.0, 12, &em);
	iv(l, 2.0, 8, &em);
	wm_ledger_settle(l, S(10), 0, &em);
	assert_int_equal(g.n, 4);
	for (int i = 0; i < 4; i++) {
		NEAR(g.e[i][0], 20.0 / 4);
		NEAR(g.completion[i], 50); /* counted */
	}
	check_conservation(l, &g);
	wm_ledger_free(l);
}

/* A request over a thousand intervals beside short ones that come and go:
 * each interval split as the test computes it; memory: consumed intervals
 * are dropped once final, and a long request keeps one token entry per
 * interval however many chunks it streamed. */
static void test_long_request_many_intervals(void **state)
{
	(void)state;
	static struct got g;
	memset(&g, 0, sizeof g);
	wm_ledger_emit em = {on_req, on_idle, &g};
	wm_ledger *l = wm_ledger_new(ND, 0);
	assert_int_equal(wm_ledger_begin(l, 1, S(0.0001), NULL), 0);
	double want_long = 0, want_short = 0;
	int64_t next = 2;
	for (int k = 0; k < 1000; k++) {
		double a = k * 0.1, e = 1.0 + (k % 7);
		/* the long one: 10 chunks of 1 token per interval */
		for (int c = 0; c < 10; c++)
			assert_int_equal(wm_ledger_tokens(l, 1, S(a + 0.005 + 0.009 * c), 1), 0);
		if (k % 2 == 0) {
			/* a short streamed request inside the interval: 30 tokens, no prompt */
			int64_t id = next++;
			assert_int_equal(wm_ledger_begin(l, id, S(a + 0.02), NULL), 0);
			assert_int_equal(wm_ledger_tokens(l, id, S(a + 0.05), 30), 0);
			assert_int_equal(wm_ledger_end(l, id, S(a + 0.08), 0, 30, NULL), 0);
			want_long += e * 10 / 40;
			want_short += e * 30 / 40;
		} else {
			want_long += e;
		}
		iv(l, a + 0.1, e, &em);
		wm_ledger_settle(l, S(a + 0.1), 0, &em);
	}
	assert_true(wm_ledger_pending(l) == 1000); /* the long one is open: all wait */
	assert_int_equal(wm_ledger_end(l, 1, S(99.99), 0, 10000, NULL), 0);
	wm_ledger_settle(l, S(1000), 0, &em);
	assert_int_equal(wm_ledger_pending(l), 0);
	assert_int_equal(wm_ledger_active(l), 0);
	NEAR(g.e[find(&g, 1)][0], want_long);
	double short_sum = g.all_req[0] - g.e[find(&g, 1)][0];
	NEAR(short_sum, want_short);
	assert_int_equal(g.total, 501);
	check_conservation(l, &g);
	wm_ledger_free(l);
}

/* Random requests (with and without tokens, streamed or not, overlapping,
 * with gaps, edges late by up to an interval): requests + idle = server. */
static void test_random_conservation(void **state)
{
	(void)state;
	srand(19);
	for (int round = 0; round < 20; round++) {
		static struct got g;
	memset(&g, 0, sizeof g);
		wm_ledger_emit em = {on_req, on_idle, &g};
		wm_ledger *l = wm_ledger_new(ND, 0);
		int64_t open_ids[256];
		int n_open = 0;
		int64_t next = 1;
		double t = 0;
		for (int k = 0; k < 300; k++) {
			double b = t + 0.05 + (rand() % 100) / 1000.0;
			int events = rand() % 6;
			for (int e = 0; e < events; e++) {
				double te = t + (b - t) * (rand() % 1000) / 1000.0;
				int what = rand() % 4;
				if (what == 0 && n_open < 256) {
					assert_int_equal(wm_ledger_begin(l, next, S(te), NULL), 0);
					open_ids[n_open++] = next++;
				} else if (what == 1 && n_open) {
					(void)wm_ledger_tokens(l, open_ids[rand() % n_open], S(te), (uint64_t)(rand() % 5));
				} else if (what == 2 && n_open) {
					int i = rand() % n_open;
					double p = rand() % 3 ? (double)(rand() % 50) : NAN;
					double c = rand() % 2 ? (double)(rand() % 50) : NAN;
					assert_int_equal(wm_ledger_end(l, open_ids[i], S(te), p, c, NULL), 0);
					open_ids[i] = open_ids[--n_open];
				}
			}
			double ej[ND] = {(rand() % 1000) / 100.0, (rand() % 1000) / 10.0};
			assert_int_equal(wm_ledger_interval(l, S(b), ej, &em), 0);
			wm_ledger_settle(l, S(t), 0, &em); /* one interval behind: late edges land */
			t = b;
		}
		wm_ledger_settle(l, S(t), 1, &em);
		assert_int_equal(wm_ledger_active(l), 0);
		assert_int_equal(wm_ledger_pending(l), 0);
		check_conservation(l, &g);
		wm_ledger_free(l);
	}
}

/* A request never ended is ended by the stop; past the pending cap the
 * oldest interval is finalised anyway: bounded, and still adding up. */
static void test_open_at_stop_and_pending_cap(void **state)
{
	(void)state;
	static struct got g;
	memset(&g, 0, sizeof g);
	wm_ledger_emit em = {on_req, on_idle, &g};
	wm_ledger *l = wm_ledger_new(ND, 0);
	assert_int_equal(wm_ledger_begin(l, 1, S(0.5), NULL), 0);
	for (int k = 1; k <= WM_LEDGER_MAX_PENDING + 10; k++) {
		double ej[ND] = {1, 2};
		assert_int_equal(wm_ledger_interval(l, (uint64_t)k * 1000000ull + S(1), ej, &em), 0);
	}
	assert_true(wm_ledger_pending(l) <= WM_LEDGER_MAX_PENDING);
	wm_ledger_totals t;
	wm_ledger_get_totals(l, &t);
	assert_true(t.forced_intervals >= 10);
	wm_ledger_settle(l, UINT64_MAX, 1, &em);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.open[0], 1);
	NEAR(g.e[0][0], WM_LEDGER_MAX_PENDING + 10); /* alone in every interval but the first's first half */
	check_conservation(l, &g);
	assert_int_equal(wm_ledger_tokens(l, 1, S(2), 1), -ENOENT);
	wm_ledger_free(l);
}

/* Misuse: unknown ids, a second end, an interval that does not advance. */
static void test_misuse(void **state)
{
	(void)state;
	wm_ledger *l = wm_ledger_new(ND, S(1));
	double ej[ND] = {1, 1};
	assert_int_equal(wm_ledger_interval(l, S(1), ej, NULL), -EINVAL);
	assert_int_equal(wm_ledger_tokens(l, 7, S(1), 1), -ENOENT);
	assert_int_equal(wm_ledger_end(l, 7, S(1), 0, 0, NULL), -ENOENT);
	assert_int_equal(wm_ledger_begin(l, 7, S(1), NULL), 0);
	assert_int_equal(wm_ledger_begin(l, 7, S(1), NULL), -EEXIST);
	assert_int_equal(wm_ledger_end(l, 7, S(2), 0, 0, NULL), 0);
	assert_int_equal(wm_ledger_end(l, 7, S(2), 0, 0, NULL), -ENOENT);
	wm_ledger_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_streams_split_by_tokens),
		cmocka_unit_test(test_prefill_known_at_end_and_a_request_without_tokens),
		cmocka_unit_test(test_non_streamed_and_idle_gaps),
		cmocka_unit_test(test_four_concurrent_share),
		cmocka_unit_test(test_long_request_many_intervals),
		cmocka_unit_test(test_random_conservation),
		cmocka_unit_test(test_open_at_stop_and_pending_cap),
		cmocka_unit_test(test_misuse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
