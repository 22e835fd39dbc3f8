/* record_scan.h — the reader's scanner for sample lines of the writer's own
 * shape (record_scan.c). Not installed.
 *
 * record_sink.c writes flat objects of plain keys and numbers (energy_j,
 * power_w, attributed_j, zones_energy_j), gauges (objects of such objects),
 * and on process-tier lines "procs": a list of objects whose members are
 * numbers, true/false, plain strings (comm) and flat objects of numbers
 * (energy_j, dev_mem_bytes). Such a line is scanned here without building a
 * JSON tree and without allocating (the scratch arrays below are grown once
 * and reused line after line). Anything else (another key, a string with an
 * escape or a byte over 0x7e, a duplicate key, a list where none is written,
 * an integer jansson could not hold, any syntax error) is left to jansson,
 * which gives the same values or the same error: fuzz/fuzz_reader_diff.c
 * reads every input both ways and compares everything a caller can see.
 */
#ifndef WM_RECORD_SCAN_H
#define WM_RECORD_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A flat object of more members than this goes to jansson. */
#define WM_SCAN_MAX_MEMBERS 64
/* Keys of procs' and gauges' members longer than this go to jansson (so no
 * column name the details build from them is ever cut: query.c skips names
 * over 511 bytes, prefixes over 255). */
#define WM_SCAN_MAX_KEY 200

/* The top-level numbers, and the flat objects, of a line. */
enum { WM_SL_T = 0, WM_SL_CPU_UTIL, WM_SL_SELF_CPU, WM_SL_MEM_USED, WM_SL_CGROUP_CPU, WM_SL_NUMS };
enum { WM_SO_ENERGY = 0, WM_SO_POWER, WM_SO_ATTR, WM_SO_ZONES, WM_SO_N };

enum wm_scan_kind {
	WM_SV_NUM,   /* a number: v (and iv when integer) */
	WM_SV_NULL,  /* null */
	WM_SV_BOOL,  /* true or false */
	WM_SV_STR,   /* a plain string: s, sl (no escapes: the bytes are the value) */
	WM_SV_OBJ,   /* a flat object of numbers and nulls: members sub[0 .. nsub) of the scan's subs */
};

struct wm_scan_val {
	const char *k;   /* the key, not terminated */
	size_t kl;
	enum wm_scan_kind kind;
	bool integer;    /* a number written without '.' or exponent (jansson's integer) */
	double v;        /* WM_SV_NUM: the value as jansson gives it; NAN otherwise */
	int64_t iv;      /* integer: the value */
	const char *s;   /* WM_SV_STR */
	size_t sl;
	size_t sub, nsub; /* WM_SV_OBJ */
};

struct wm_scan_obj {
	bool present;
	size_t n;
	struct wm_scan_val m[WM_SCAN_MAX_MEMBERS];
};

/* The members of a process the summary reads, found while scanning. */
enum { WM_SP_PID = 0, WM_SP_CPU_S, WM_SP_RSS, WM_SP_COMM, WM_SP_ENERGY, WM_SP_N };

/* One element of "procs": its members vals[first .. first + n); known[i]
 * the index among them of member WM_SP_* i, or -1 if it has none. */
struct wm_scan_proc {
	size_t first, n;
	int known[WM_SP_N];
};

struct wm_scan {
	double num[WM_SL_NUMS];
	bool has[WM_SL_NUMS];        /* a number (not null) was given */
	struct wm_scan_obj obj[WM_SO_N];
	/* "gauges": its devices vals[gauges_first .. + n_gauges), each WM_SV_OBJ */
	bool gauges_present;
	size_t gauges_first, n_gauges;
	bool procs_present;
	/* scratch, grown as needed and kept (wm_scan_free) */
	struct wm_scan_val *vals;    /* procs' members and gauges' devices */
	size_t n_vals, cap_vals;
	struct wm_scan_val *subs;    /* members of the objects among them */
	size_t n_subs, cap_subs;
	struct wm_scan_proc *procs;
	size_t n_procs, cap_procs;
};

/* 1 with *s filled if line (n bytes, its '\n' included or not) is of the
 * writer's shape, 0 if jansson must read it (also when the scratch could not
 * grow: jansson then says what it says). */
int wm_scan_line(const char *line, size_t n, struct wm_scan *s);
void wm_scan_free(struct wm_scan *s);
/* n bytes equal: an inline loop, as keys are a few bytes (a call to
 * memcmp costs more than the comparison). */
static inline bool wm_scan_eq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return false;
	return true;
}

/* The member named key (kl bytes) among m[0 .. n), or NULL. */
static inline const struct wm_scan_val *wm_scan_find(const struct wm_scan_val *m, size_t n, const char *key,
						     size_t kl)
{
	for (size_t i = 0; i < n; i++)
		if (m[i].kl == kl && wm_scan_eq(m[i].k, key, kl))
			return &m[i];
	return NULL;
}

/* The JSON number at [p, e) as jansson reads it: an integer through long
 * long, a real through strtod. Returns the end of the number, or NULL for
 * what is not one (or one jansson might read otherwise: an integer of more
 * than 18 digits, a real that overflows). Exposed for the fuzzer. */
const char *wm_scan_number(const char *p, const char *e, double *v, bool *integer, int64_t *iv);

#endif
