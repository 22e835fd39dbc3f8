/* record_scan.c — sample lines of the writer's own shape, scanned without a
 * JSON tree (record_scan.h says which lines, and why jansson gives the same).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recording/record_scan.h"

static const char *ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* A key or a string value: plain printable ASCII, no escapes (so the bytes
 * are the value, as jansson would decode it). */
static const char *str(const char *p, const char *e, const char **k, size_t *kl)
{
	if (p >= e || *p != '"')
		return NULL;
	const char *b = ++p;
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

/* Exact powers of ten: every one up to 1e22 is a double exactly. */
static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
				       1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

const char *wm_scan_number(const char *p, const char *e, double *v, bool *integer, int64_t *iv)
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
		while (p < e && *p >= '0' && *p <= '9') {
			if (digits < 19)
				m = m * 10 + (uint64_t)(*p - '0');
			digits++;
			p++;
		}
	}
	if (p < e && *p == '.') {
		real = true;
		p++;
		if (p >= e || *p < '0' || *p > '9')
			return NULL;
		while (p < e && *p >= '0' && *p <= '9') {
			if (digits < 19)
				m = m * 10 + (uint64_t)(*p - '0');
			digits++;
			frac++;
			p++;
		}
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

/* A number or null into kv. */
static const char *num_or_null(const char *p, const char *e, struct wm_scan_val *kv)
{
	if (e - p >= 4 && !memcmp(p, "null", 4)) {
		kv->kind = WM_SV_NULL;
		kv->integer = false;
		kv->v = NAN;
		return p + 4;
	}
	kv->kind = WM_SV_NUM;
	return wm_scan_number(p, e, &kv->v, &kv->integer, &kv->iv);
}

static bool dup_key(const struct wm_scan_val *m, size_t n, const char *k, size_t kl)
{
	return wm_scan_find(m, n, k, kl) != NULL; /* jansson keeps the last: not this scanner's business */
}

/* The steps every object and list below shares. open: at '{' (or '['),
 * past it: 1 when members follow, 0 when it is empty (past its close), -1
 * when p is not at open. */
static int begin(const char **pp, const char *e, char open, char close)
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
static const char *key(const char *p, const char *e, const char **k, size_t *kl, size_t max_kl)
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
static int next(const char **pp, const char *e, char close)
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

static const char *flat_obj(const char *p, const char *e, slot_fn slot, void *ctx, size_t *n, size_t max_kl)
{
	*n = 0;
	int more = begin(&p, e, '{', '}');
	while (more > 0) {
		struct wm_scan_val *kv = slot(ctx, *n);
		if (!kv || !(p = key(p, e, &kv->k, &kv->kl, max_kl)))
			return NULL;
		if (dup_key(kv - *n, *n, kv->k, kv->kl)) /* (the slots are contiguous) */
			return NULL;
		p = num_or_null(p, e, kv);
		if (!p)
			return NULL;
		(*n)++;
		more = next(&p, e, '}');
	}
	return more < 0 ? NULL : p;
}

static struct wm_scan_val *obj_slot(void *ctx, size_t i)
{
	struct wm_scan_obj *o = ctx;
	return i < WM_SCAN_MAX_MEMBERS ? &o->m[i] : NULL;
}

/* Grows an array of elements of size sz to hold n + 1; false on ENOMEM. */
static bool grow(void **arr, size_t *cap, size_t n, size_t sz)
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

static struct wm_scan_val *sub_slot(void *ctx, size_t i)
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
static struct wm_scan_val *val_slot(struct wm_scan *s)
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
	int more = begin(&p, e, '{', '}');
	while (more > 0) {
		struct wm_scan_val *kv = val_slot(s);
		if (!kv || !(p = key(p, e, &kv->k, &kv->kl, WM_SCAN_MAX_KEY)) ||
		    dup_key(s->vals + pr->first, pr->n, kv->k, kv->kl) || p >= e)
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
		int known = proc_key(kv->k, kv->kl);
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
	int more = begin(&p, e, '{', '}');
	while (more > 0) {
		struct wm_scan_val *kv = val_slot(s);
		if (!kv || !(p = key(p, e, &kv->k, &kv->kl, WM_SCAN_MAX_KEY)) ||
		    dup_key(s->vals + s->gauges_first, s->n_gauges, kv->k, kv->kl))
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
		const char *k;
		size_t kl;
		p = key(p, e, &k, &kl, SIZE_MAX);
		if (!p)
			return 0;
		int num = -1, obj = -1;
		/* the keys in the order the writer writes them */
		if (KEY_IS(k, kl, "t_s"))
			num = WM_SL_T;
		else if (KEY_IS(k, kl, "energy_j"))
			obj = WM_SO_ENERGY;
		else if (KEY_IS(k, kl, "power_w"))
			obj = WM_SO_POWER;
		else if (KEY_IS(k, kl, "zones_energy_j"))
			obj = WM_SO_ZONES;
		else if (KEY_IS(k, kl, "cpu_util"))
			num = WM_SL_CPU_UTIL;
		else if (KEY_IS(k, kl, "attributed_j"))
			obj = WM_SO_ATTR;
		else if (KEY_IS(k, kl, "mem_used_bytes"))
			num = WM_SL_MEM_USED;
		else if (KEY_IS(k, kl, "cgroup_cpu_s"))
			num = WM_SL_CGROUP_CPU;
		else if (KEY_IS(k, kl, "self_cpu_s"))
			num = WM_SL_SELF_CPU;
		if (num >= 0) {
			if (seen_num[num])
				return 0;
			seen_num[num] = true;
			struct wm_scan_val kv;
			p = num_or_null(p, e, &kv);
			if (!p)
				return 0;
			s->num[num] = kv.v;
			s->has[num] = kv.kind == WM_SV_NUM;
		} else if (obj >= 0) {
			struct wm_scan_obj *o = &s->obj[obj];
			if (o->present)
				return 0;
			o->present = true;
			p = flat_obj(p, e, obj_slot, o, &o->n, SIZE_MAX);
		} else if (KEY_IS(k, kl, "procs")) {
			if (s->procs_present)
				return 0;
			s->procs_present = true;
			p = procs_list(p, e, s);
		} else if (KEY_IS(k, kl, "gauges")) {
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
