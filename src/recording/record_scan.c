/* record_scan.c — sample lines of the writer's own shape, scanned without a
 * JSON tree (record_scan.h says which lines, and why jansson gives the same).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recording/record_scan.h"

/* The scanner's steps, inlined into their callers: a line is a few dozen
 * keys and numbers, and a call's prologue and epilogue cost about what a
 * key's bytes do (bench/reader.py's floor; callgrind showed a fifth of the
 * instructions there). */
#define SCAN_STEP static inline __attribute__((always_inline))

/* The bytes at p are lit (its quotes and ':' included). A constant size:
 * the comparison is a load or two, inline. */
#define LIT_AT(p, e, lit) ((size_t)((e) - (p)) >= sizeof lit - 1 && !memcmp(p, lit, sizeof lit - 1))

SCAN_STEP const char *ws(const char *p, const char *e)
{
	/* (mostly none: one comparison rules out every byte over ' ') */
	while (p < e && (unsigned char)*p <= ' ' && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* Exact powers of ten: every one up to 1e22 is a double exactly. */
static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
				       1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define WM_SCAN_SWAR 1
static const uint64_t pow10_u64[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

/* The 8 bytes at p as one word, the first byte lowest (memcpy: any
 * alignment; one load). */
static inline uint64_t load8(const char *p)
{
	uint64_t w;
	memcpy(&w, p, 8);
	return w;
}

/* How many of the word's bytes, from the first, are ASCII digits (0 to 8).
 * A byte b is flagged when b + 0x46 reaches 0x80 (b > '9', or b >= 0xba
 * through the carry's wrap, where b - 0x30 has the bit) or b - 0x30
 * borrows (b < '0'); a carry or borrow only ever reaches the bytes above,
 * and digits make none, so the lowest flag is exact. */
static inline int lead_digits(uint64_t w)
{
	uint64_t nd = ((w + 0x4646464646464646ull) | (w - 0x3030303030303030ull)) & 0x8080808080808080ull;
	return nd ? __builtin_ctzll(nd) >> 3 : 8;
}

/* The value of the word's first n digits (1 <= n <= 8): moved to the top
 * bytes (the first digit at byte 8 - n, zeros below are leading zeros),
 * then pairs, quads and the eight combined by multiplications. */
static inline uint64_t digits_value(uint64_t w, int n)
{
	w = (w - 0x3030303030303030ull) << (8 * (8 - n));
	w = w * 10 + (w >> 8);
	return (((w & 0x000000FF000000FFull) * (100 + (1000000ull << 32))) +
		(((w >> 16) & 0x000000FF000000FFull) * (1 + (10000ull << 32)))) >>
	       32;
}
/* The bytes of w that end or spoil a plain string, flagged by their high
 * bit: '"' and '\\' (a zero byte of w ^ the character: x - 1 borrows, and
 * ~x keeps the bit, only where x is 0), a control byte (< 0x20: w - 0x20
 * borrows), DEL (w + 1 reaches 0x80) and bytes over 0x7f (the bit itself).
 * Borrows and carries only move up, and the bytes below the lowest flag
 * make none, so the lowest flag is exact (those above it may not be). */
static inline uint64_t str_stops(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ull;
	uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
	uint64_t t = ((q - ones) & ~q) | ((bs - ones) & ~bs) | (w - ones * 0x20) | (w + ones) | w;
	return t & (ones * 0x80);
}
#endif

/* A key or a string value: plain printable ASCII, no escapes (so the bytes
 * are the value, as jansson would decode it). */
SCAN_STEP const char *str(const char *p, const char *e, const char **k, size_t *kl)
{
	if (p >= e || *p != '"')
		return NULL;
	const char *b = ++p;
#ifdef WM_SCAN_SWAR
	/* eight bytes a step to the first that ends or spoils the string (a
	 * key is a few bytes: mostly one step, and no branch on its length) */
	while (e - p >= 8) {
		uint64_t s = str_stops(load8(p));
		if (s) {
			p += __builtin_ctzll(s) >> 3;
			if (*p != '"')
				return NULL;
			*k = b;
			*kl = (size_t)(p - b);
			return p + 1;
		}
		p += 8;
	}
#endif
	while (p < e && *p != '"') {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c >= 0x7f || c == '\\')
			return NULL;
		p++;
	}
	if (p >= e)
		return NULL;
	*k = b;
	*kl = (size_t)(p - b);
	return p + 1;
}

/* A run of digits from p: into *m while the count stays within 19 (so m
 * never overflows; past that only counted), *digits counting them all. */
SCAN_STEP const char *digit_run(const char *p, const char *e, uint64_t *m, int *digits)
{
#ifdef WM_SCAN_SWAR
	/* eight at a time while whole words fit before e and m holds them */
	while (e - p >= 8) {
		uint64_t w = load8(p);
		int n = lead_digits(w);
		if (n == 0)
			return p;
		if (*digits + n > 19)
			break; /* the bytes one at a time below */
		*m = *m * pow10_u64[n] + digits_value(w, n);
		*digits += n;
		p += n;
		if (n < 8)
			return p;
	}
#endif
	while (p < e && *p >= '0' && *p <= '9') {
		if (*digits < 19)
			*m = *m * 10 + (uint64_t)(*p - '0');
		(*digits)++;
		p++;
	}
	return p;
}

SCAN_STEP const char *scan_number(const char *p, const char *e, double *v, bool *integer, int64_t *iv)
{
	const char *b = p;
	bool neg = false, real = false, exp = false;
	if (p < e && *p == '-') {
		neg = true;
		p++;
	}
	if (p >= e || *p < '0' || *p > '9')
		return NULL;
	/* the digits, integer part and fraction, as one integer m (while
	 * they fit: 19 digits at most) and the fraction's digit count */
	uint64_t m = 0;
	int digits = 0, frac = 0;
	if (*p == '0') {
		p++;
		digits = 1;
	} else {
		p = digit_run(p, e, &m, &digits);
	}
	if (p < e && *p == '.') {
		real = true;
		p++;
		if (p >= e || *p < '0' || *p > '9')
			return NULL;
		int before = digits;
		p = digit_run(p, e, &m, &digits);
		frac = digits - before;
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		real = exp = true;
		p++;
		if (p < e && (*p == '+' || *p == '-'))
			p++;
		if (p >= e || *p < '0' || *p > '9')
			return NULL;
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	}
	*integer = !real;
	if (!real) {
		/* jansson reads an integer with strtoll and refuses what it cannot
		 * hold; 18 digits always fit (and the leading '0' case is 1 digit) */
		if (digits > 18)
			return NULL;
		int64_t i = (int64_t)m;
		*iv = neg ? -i : i;
		*v = (double)*iv;
		return p;
	}
	/* A real of at most 15 significant digits' worth (m < 2^53) and at most
	 * 22 decimals, without exponent: m and 10^frac are doubles exactly, so
	 * one IEEE division gives the correctly rounded quotient, which is what
	 * strtod gives (Clinger's fast path). This is the writer's %.3f / %.6f
	 * output. Anything else goes through strtod itself. */
	if (!exp && digits <= 19 && m <= ((uint64_t)1 << 53) && frac <= 22) {
		double d = (double)m / pow10_exact[frac];
		*v = neg ? -d : d;
		return p;
	}
	size_t len = (size_t)(p - b);
	char tmp[64];
	if (len >= sizeof tmp)
		return NULL;
	memcpy(tmp, b, len);
	tmp[len] = '\0';
	double d = strtod(tmp, NULL);
	if (!isfinite(d))
		return NULL; /* jansson: real number overflow */
	*v = d;
	return p;
}

const char *wm_scan_number(const char *p, const char *e, double *v, bool *integer, int64_t *iv)
{
	return scan_number(p, e, v, integer, iv);
}

/* A number or null into kv. */
SCAN_STEP const char *num_or_null(const char *p, const char *e, struct wm_scan_val *kv)
{
	if (e - p >= 4 && !memcmp(p, "null", 4)) {
		kv->kind = WM_SV_NULL;
		kv->integer = false;
		kv->v = NAN;
		return p + 4;
	}
	kv->kind = WM_SV_NUM;
	return scan_number(p, e, &kv->v, &kv->integer, &kv->iv);
}

/* The key k (kl bytes) among m[0 .. n), the object's keys so far. *seen
 * holds one bit per key so far, chosen by its length and end bytes: only
 * a key whose bit is set can be among them, so the members are compared
 * only then (a process has ten members: 45 comparisons otherwise). */
SCAN_STEP bool dup_key(const struct wm_scan_val *m, size_t n, const char *k, size_t kl, uint64_t *seen)
{
	uint64_t bit = (uint64_t)1 << ((kl + (kl ? (unsigned char)k[0] * 7u + (unsigned char)k[kl - 1] * 3u : 0)) & 63);
	bool maybe = (*seen & bit) != 0;
	*seen |= bit;
	/* jansson keeps the last: not this scanner's business */
	return maybe && wm_scan_find(m, n, k, kl) != NULL;
}

/* The steps every object and list below shares. open: at '{' (or '['),
 * past it: 1 when members follow, 0 when it is empty (past its close), -1
 * when p is not at open. */
SCAN_STEP int begin(const char **pp, const char *e, char open, char close)
{
	const char *p = *pp;
	if (p >= e || *p != open)
		return -1;
	p = ws(p + 1, e);
	if (p < e && *p == close) {
		*pp = p + 1;
		return 0;
	}
	*pp = p;
	return 1;
}

/* A member's key (at most max_kl bytes) and its ':': p at the value, or
 * NULL. */
SCAN_STEP const char *key(const char *p, const char *e, const char **k, size_t *kl, size_t max_kl)
{
	p = str(p, e, k, kl);
	if (!p || *kl > max_kl)
		return NULL;
	p = ws(p, e);
	if (p >= e || *p != ':')
		return NULL;
	return ws(p + 1, e);
}

/* After a value: 1 when another follows (p past ','), 0 at the end (past
 * close), -1 for anything else. */
SCAN_STEP int next(const char **pp, const char *e, char close)
{
	const char *p = ws(*pp, e);
	if (p < e && *p == ',') {
		*pp = ws(p + 1, e);
		return 1;
	}
	if (p < e && *p == close) {
		*pp = p + 1;
		return 0;
	}
	return -1;
}

/* Members of a flat object of numbers and nulls, each through slot (which
 * returns the slot for the next one, or NULL when full). */
typedef struct wm_scan_val *(*slot_fn)(void *ctx, size_t i);

SCAN_STEP const char *flat_obj(const char *p, const char *e, slot_fn slot, void *ctx, size_t *n, size_t max_kl)
{
	*n = 0;
	uint64_t seen = 0;
	int more = begin(&p, e, '{', '}');
	while (more > 0) {
		struct wm_scan_val *kv = slot(ctx, *n);
		if (!kv || !(p = key(p, e, &kv->k, &kv->kl, max_kl)))
			return NULL;
		if (dup_key(kv - *n, *n, kv->k, kv->kl, &seen)) /* (the slots are contiguous) */
			return NULL;
		p = num_or_null(p, e, kv);
		if (!p)
			return NULL;
		(*n)++;
		more = next(&p, e, '}');
	}
	return more < 0 ? NULL : p;
}

SCAN_STEP struct wm_scan_val *obj_slot(void *ctx, size_t i)
{
	struct wm_scan_obj *o = ctx;
	return i < WM_SCAN_MAX_MEMBERS ? &o->m[i] : NULL;
}

/* Grows an array of elements of size sz to hold n + 1; false on ENOMEM. */
SCAN_STEP bool grow(void **arr, size_t *cap, size_t n, size_t sz)
{
	if (n < *cap)
		return true;
	size_t nc = *cap ? *cap * 2 : 64;
	if (nc > SIZE_MAX / sz)
		return false;
	void *a = realloc(*arr, nc * sz);
	if (!a)
		return false;
	*arr = a;
	*cap = nc;
	return true;
}

/* subs[base + i], grown as needed */
struct sub_ctx {
	struct wm_scan *s;
	size_t base;
};

SCAN_STEP struct wm_scan_val *sub_slot(void *ctx, size_t i)
{
	struct sub_ctx *c = ctx;
	struct wm_scan *s = c->s;
	if (!grow((void **)&s->subs, &s->cap_subs, c->base + i, sizeof *s->subs))
		return NULL;
	return &s->subs[c->base + i];
}

/* A flat object into subs, as the value of kv. */
static const char *sub_obj(const char *p, const char *e, struct wm_scan *s, struct wm_scan_val *kv)
{
	struct sub_ctx c = {s, s->n_subs};
	size_t n;
	p = flat_obj(p, e, sub_slot, &c, &n, WM_SCAN_MAX_KEY);
	if (!p)
		return NULL;
	kv->kind = WM_SV_OBJ;
	kv->v = NAN;
	kv->integer = false;
	kv->sub = c.base;
	kv->nsub = n;
	s->n_subs += n;
	return p;
}

/* The next member slot among vals (for a proc or the gauges), or NULL. */
SCAN_STEP struct wm_scan_val *val_slot(struct wm_scan *s)
{
	if (!grow((void **)&s->vals, &s->cap_vals, s->n_vals, sizeof *s->vals))
		return NULL;
	return &s->vals[s->n_vals];
}

static bool key_is(const char *k, size_t kl, const char *name, size_t nl)
{
	return nl == kl && wm_scan_eq(k, name, kl);
}

#define KEY_IS(k, kl, lit) key_is(k, kl, lit, sizeof lit - 1)

/* Which of the members the summary reads key is (WM_SP_*), or -1. */
static int proc_key(const char *k, size_t kl)
{
	switch (kl) {
	case 3:
		return KEY_IS(k, kl, "pid") ? WM_SP_PID : -1;
	case 4:
		return KEY_IS(k, kl, "comm") ? WM_SP_COMM : -1;
	case 5:
		return KEY_IS(k, kl, "cpu_s") ? WM_SP_CPU_S : -1;
	case 8:
		return KEY_IS(k, kl, "energy_j") ? WM_SP_ENERGY : -1;
	case 9:
		return KEY_IS(k, kl, "rss_bytes") ? WM_SP_RSS : -1;
	default:
		return -1;
	}
}

/* A process member's key and its ':' into kv, p moved to the value (NULL
 * if not a key); *known: which member the summary reads it is (WM_SP_*),
 * or -1. The writer's own keys (record_sink.c's line_procs) by first
 * letter and one comparison, as top_key; others the general way. */
#define PROC_LIT(lit, which)                                                                                          \
	do {                                                                                                          \
		if (LIT_AT(p, e, "\"" lit "\":")) {                                                                   \
			kv->k = p + 1;                                                                                \
			kv->kl = sizeof lit - 1;                                                                      \
			*known = which;                                                                               \
			return ws(p + sizeof lit + 2, e);                                                             \
		}                                                                                                     \
	} while (0)

SCAN_STEP const char *proc_member_key(const char *p, const char *e, struct wm_scan_val *kv, int *known)
{
	if (e - p >= 2) {
		switch (p[1]) {
		case 'p':
			PROC_LIT("pid", WM_SP_PID);
			PROC_LIT("ppid", -1);
			PROC_LIT("pss_bytes", -1);
			break;
		case 'c':
			PROC_LIT("comm", WM_SP_COMM);
			PROC_LIT("cpu_s", WM_SP_CPU_S);
			PROC_LIT("cpu_share", -1);
			break;
		case 'a':
			PROC_LIT("alive", -1);
			break;
		case 'r':
			PROC_LIT("rss_bytes", WM_SP_RSS);
			break;
		case 'u':
			PROC_LIT("uss_bytes", -1);
			break;
		case 'm':
			PROC_LIT("mem_pct", -1);
			break;
		case 'e':
			PROC_LIT("energy_j", WM_SP_ENERGY);
			break;
		case 'd':
			PROC_LIT("dev_mem_bytes", -1);
			break;
		default:
			break;
		}
	}
	p = key(p, e, &kv->k, &kv->kl, WM_SCAN_MAX_KEY);
	*known = p ? proc_key(kv->k, kv->kl) : -1;
	return p;
}

/* One element of "procs": an object of numbers, nulls, booleans, plain
 * strings and flat objects of numbers. */
static const char *proc_obj(const char *p, const char *e, struct wm_scan *s)
{
	if (!grow((void **)&s->procs, &s->cap_procs, s->n_procs, sizeof *s->procs))
		return NULL;
	struct wm_scan_proc *pr = &s->procs[s->n_procs];
	pr->first = s->n_vals;
	pr->n = 0;
	for (int i = 0; i < WM_SP_N; i++)
		pr->known[i] = -1;
	uint64_t seen = 0;
	int more = begin(&p, e, '{', '}');
	while (more > 0) {
		struct wm_scan_val *kv = val_slot(s);
		int known;
		if (!kv || !(p = proc_member_key(p, e, kv, &known)) ||
		    dup_key(s->vals + pr->first, pr->n, kv->k, kv->kl, &seen) || p >= e)
			return NULL;
		kv->v = NAN;
		kv->integer = false;
		if (*p == '"') {
			kv->kind = WM_SV_STR;
			p = str(p, e, &kv->s, &kv->sl);
		} else if (*p == '{') {
			p = sub_obj(p, e, s, kv);
		} else if (e - p >= 4 && !memcmp(p, "true", 4)) {
			kv->kind = WM_SV_BOOL;
			p += 4;
		} else if (e - p >= 5 && !memcmp(p, "false", 5)) {
			kv->kind = WM_SV_BOOL;
			p += 5;
		} else {
			p = num_or_null(p, e, kv);
		}
		if (!p)
			return NULL;
		if (known >= 0)
			pr->known[known] = (int)pr->n;
		s->n_vals++;
		pr->n++;
		more = next(&p, e, '}');
	}
	if (more < 0)
		return NULL;
	s->n_procs++;
	return p;
}

static const char *procs_list(const char *p, const char *e, struct wm_scan *s)
{
	int more = begin(&p, e, '[', ']');
	while (more > 0) {
		p = proc_obj(p, e, s);
		if (!p)
			return NULL;
		more = next(&p, e, ']');
	}
	return more < 0 ? NULL : p;
}

/* "gauges": {"<device>": {flat object}, ...} */
static const char *gauges_obj(const char *p, const char *e, struct wm_scan *s)
{
	s->gauges_first = s->n_vals;
	s->n_gauges = 0;
	uint64_t seen = 0;
	int more = begin(&p, e, '{', '}');
	while (more > 0) {
		struct wm_scan_val *kv = val_slot(s);
		if (!kv || !(p = key(p, e, &kv->k, &kv->kl, WM_SCAN_MAX_KEY)) ||
		    dup_key(s->vals + s->gauges_first, s->n_gauges, kv->k, kv->kl, &seen))
			return NULL;
		p = sub_obj(p, e, s, kv);
		if (!p)
			return NULL;
		s->n_vals++;
		s->n_gauges++;
		more = next(&p, e, '}');
	}
	return more < 0 ? NULL : p;
}

/* What a top-level key is: a number (WM_SL_*), a flat object (TOP_OBJ +
 * WM_SO_*), procs, gauges, or another (TOP_OTHER: jansson's). */
enum { TOP_OBJ = WM_SL_NUMS, TOP_PROCS = TOP_OBJ + WM_SO_N, TOP_GAUGES, TOP_OTHER };

#define TOP_LIT(lit, what)                                                                                            \
	do {                                                                                                          \
		if (LIT_AT(*pp, e, "\"" lit "\":")) {                                                                 \
			*pp = ws(*pp + sizeof lit + 2, e);                                                            \
			return what;                                                                                  \
		}                                                                                                     \
	} while (0)

/* A top-level key and its ':', *pp moved to its value: what it is, or -1
 * (not a key). The writer's own keys, written as it writes them (no
 * whitespace inside, none before ':'), are told apart by their first
 * letter and one comparison; any other spelling goes the general way,
 * which reads the same keys. */
SCAN_STEP int top_key(const char **pp, const char *e)
{
	if (e - *pp >= 2) {
		switch ((*pp)[1]) {
		case 't':
			TOP_LIT("t_s", WM_SL_T);
			break;
		case 'e':
			TOP_LIT("energy_j", TOP_OBJ + WM_SO_ENERGY);
			break;
		case 'p':
			TOP_LIT("power_w", TOP_OBJ + WM_SO_POWER);
			TOP_LIT("procs", TOP_PROCS);
			break;
		case 'c':
			TOP_LIT("cpu_util", WM_SL_CPU_UTIL);
			TOP_LIT("cgroup_cpu_s", WM_SL_CGROUP_CPU);
			break;
		case 'm':
			TOP_LIT("mem_used_bytes", WM_SL_MEM_USED);
			break;
		case 'a':
			TOP_LIT("attributed_j", TOP_OBJ + WM_SO_ATTR);
			break;
		case 'z':
			TOP_LIT("zones_energy_j", TOP_OBJ + WM_SO_ZONES);
			break;
		case 's':
			TOP_LIT("self_cpu_s", WM_SL_SELF_CPU);
			break;
		case 'g':
			TOP_LIT("gauges", TOP_GAUGES);
			break;
		default:
			break;
		}
	}
	const char *k;
	size_t kl;
	*pp = key(*pp, e, &k, &kl, SIZE_MAX);
	if (!*pp)
		return -1;
	/* the keys in the order the writer writes them */
	if (KEY_IS(k, kl, "t_s"))
		return WM_SL_T;
	if (KEY_IS(k, kl, "energy_j"))
		return TOP_OBJ + WM_SO_ENERGY;
	if (KEY_IS(k, kl, "power_w"))
		return TOP_OBJ + WM_SO_POWER;
	if (KEY_IS(k, kl, "zones_energy_j"))
		return TOP_OBJ + WM_SO_ZONES;
	if (KEY_IS(k, kl, "cpu_util"))
		return WM_SL_CPU_UTIL;
	if (KEY_IS(k, kl, "attributed_j"))
		return TOP_OBJ + WM_SO_ATTR;
	if (KEY_IS(k, kl, "mem_used_bytes"))
		return WM_SL_MEM_USED;
	if (KEY_IS(k, kl, "cgroup_cpu_s"))
		return WM_SL_CGROUP_CPU;
	if (KEY_IS(k, kl, "self_cpu_s"))
		return WM_SL_SELF_CPU;
	if (KEY_IS(k, kl, "procs"))
		return TOP_PROCS;
	if (KEY_IS(k, kl, "gauges"))
		return TOP_GAUGES;
	return TOP_OTHER;
}

int wm_scan_line(const char *line, size_t n, struct wm_scan *s)
{
	const char *p = line, *e = line + n;
	bool seen_num[WM_SL_NUMS] = {false};
	for (int i = 0; i < WM_SL_NUMS; i++)
		s->has[i] = false;
	for (int i = 0; i < WM_SO_N; i++)
		s->obj[i].present = false;
	s->gauges_present = s->procs_present = false;
	s->n_gauges = s->n_vals = s->n_subs = s->n_procs = 0;
	p = ws(p, e);
	int more = begin(&p, e, '{', '}');
	while (more > 0) {
		int what = top_key(&p, e);
		if (what < 0)
			return 0;
		if (what < WM_SL_NUMS) {
			if (seen_num[what])
				return 0;
			seen_num[what] = true;
			struct wm_scan_val kv;
			p = num_or_null(p, e, &kv);
			if (!p)
				return 0;
			s->num[what] = kv.v;
			s->has[what] = kv.kind == WM_SV_NUM;
		} else if (what < TOP_PROCS) {
			struct wm_scan_obj *o = &s->obj[what - TOP_OBJ];
			if (o->present)
				return 0;
			o->present = true;
			p = flat_obj(p, e, obj_slot, o, &o->n, SIZE_MAX);
		} else if (what == TOP_PROCS) {
			if (s->procs_present)
				return 0;
			s->procs_present = true;
			p = procs_list(p, e, s);
		} else if (what == TOP_GAUGES) {
			if (s->gauges_present)
				return 0;
			s->gauges_present = true;
			p = gauges_obj(p, e, s);
		} else {
			return 0; /* new_procs, gaps, unwritten ...: jansson */
		}
		if (!p)
			return 0;
		more = next(&p, e, '}');
	}
	return more == 0 && ws(p, e) == e;
}

void wm_scan_free(struct wm_scan *s)
{
	free(s->vals);
	free(s->subs);
	free(s->procs);
	s->vals = s->subs = NULL;
	s->procs = NULL;
	s->cap_vals = s->cap_subs = s->cap_procs = 0;
}
