/* ledger.h — the request ledger: the server's energy split among requests
 * (docs/architecture.md "Requests"). Pure bookkeeping, no thread, no I/O,
 * no clock: requests.c feeds it the meter's intervals and the callers'
 * request events and writes what it emits; tests feed it synthetic ones.
 *
 * Times are CLOCK_MONOTONIC ns. An interval (a, b] carries the server's
 * energy per device in it; intervals are given in order, each starting where
 * the last ended. A request is [t_start, t_end] with token events (t, n) in
 * between. wm_ledger_settle finalises, oldest first, every interval that is
 * old enough (b <= settled_ns) and whose in-flight requests have all ended
 * (their prompt and completion tokens are known only at the end), splits its
 * energy among them, and emits each request once every interval it
 * overlapped is final. Per device, the energies emitted for requests plus
 * the idle energy equal the sum of the intervals' energies, to rounding.
 */
#ifndef WM_METER_LEDGER_H
#define WM_METER_LEDGER_H

#include <stddef.h>
#include <stdint.h>

/* Pending intervals kept at most: past this (a request open for hours with
 * 0.5 s intervals), the oldest is finalised with what is known so far (open
 * requests weighed by their tokens so far, else by time) and counted in
 * forced_intervals: memory stays bounded, sums still add up. */
#define WM_LEDGER_MAX_PENDING 65536

enum {
	WM_LEDGER_BY_TOKENS = 1, /* a share of an interval came from tokens */
	WM_LEDGER_BY_TIME = 2,   /* ... from time in flight */
};

/* A final request, as handed to the emitter (borrowed for the call). */
typedef struct wm_ledger_req {
	int64_t id;
	uint64_t t_start_ns, t_first_ns, t_end_ns; /* t_first_ns 0: no token event */
	const char *attrs;        /* compact JSON object or NULL (as given at begin) */
	const char *result;       /* ... at end */
	double prompt_tokens;     /* from end (usage); NAN unknown */
	double completion_tokens; /* usage from end, else the counted tokens */
	double counted_tokens;    /* the sum of the token events */
	int usage;                /* the end gave prompt or completion tokens */
	const double *energy_j;   /* [n_dev] its share of the server's energy */
	double server_share_s;    /* Σ share x interval length: its part of the server's time */
	unsigned method;          /* WM_LEDGER_BY_* bits over its intervals */
	int open_at_stop;         /* never ended: ended at the last interval by the stop */
	int forced;               /* an interval was finalised before it ended (cap) */
	int clamped;              /* an edge came after its interval was final: moved */
} wm_ledger_req;

typedef struct wm_ledger_emit {
	void (*request)(void *ctx, const wm_ledger_req *r);
	/* an idle stretch (a, b] (intervals with no request in flight) ended */
	void (*idle)(void *ctx, uint64_t a_ns, uint64_t b_ns, const double *energy_j);
	void *ctx;
} wm_ledger_emit;

typedef struct wm_ledger_totals {
	uint64_t intervals, forced_intervals, requests, open_at_stop;
	double idle_s, busy_s;
	const double *server_j, *requests_j, *idle_j; /* [n_dev], borrowed */
	uint64_t first_ns, horizon_ns;                /* finalised span */
} wm_ledger_totals;

typedef struct wm_ledger wm_ledger;

/* n_dev devices; t0_ns: where the first interval starts. NULL on ENOMEM. */
wm_ledger *wm_ledger_new(size_t n_dev, uint64_t t0_ns);
void wm_ledger_free(wm_ledger *l);
/* The interval (last end, b_ns] with energy_j[n_dev] (J, >= 0 expected but
 * taken as given). 0, -EINVAL (b_ns not after the last end), -ENOMEM. */
int wm_ledger_interval(wm_ledger *l, uint64_t b_ns, const double *energy_j, const wm_ledger_emit *em);
/* attrs: a compact JSON object or NULL, taken (freed by the ledger) on 0.
 * -EEXIST for an id known already, -ENOMEM. */
int wm_ledger_begin(wm_ledger *l, int64_t id, uint64_t t_ns, char *attrs);
/* -ENOENT: no such open request. */
int wm_ledger_tokens(wm_ledger *l, int64_t id, uint64_t t_ns, uint64_t n);
/* prompt/completion: usage figures, NAN when not given; result taken on 0. */
int wm_ledger_end(wm_ledger *l, int64_t id, uint64_t t_ns, double prompt_tokens, double completion_tokens,
		  char *result);
/* Finalises what it can up to settled_ns and emits. force: the stop — open
 * requests end at the last interval's end (open_at_stop), every interval is
 * final, every request emitted, the idle stretch too. */
void wm_ledger_settle(wm_ledger *l, uint64_t settled_ns, int force, const wm_ledger_emit *em);
/* Idle power per device so far (idle J / idle s), NAN before any idle
 * interval; into out[n_dev]. */
void wm_ledger_idle_power(const wm_ledger *l, double *out_w);
void wm_ledger_get_totals(const wm_ledger *l, wm_ledger_totals *t);
size_t wm_ledger_pending(const wm_ledger *l); /* intervals not final */
/* The end of the oldest pending interval when only time holds it (no open
 * request in flight in it): settle then, once the grace is over; 0 when
 * none is pending or an open request holds it (its end will come). */
uint64_t wm_ledger_next_due(const wm_ledger *l);
size_t wm_ledger_active(const wm_ledger *l);  /* requests not emitted */

#endif
