/* web_config.c — see web_config.h. A line-based parser for exactly the YAML
 * that exporter-toolkit's documented examples use: two top-level block
 * mappings whose children are "key: scalar" lines at one indentation.
 * Scalars may be plain, 'single-quoted' ('' for a quote) or "double-quoted"
 * (\\ and \" only). Flow collections, anchors, tags, multi-line scalars and
 * tabs are refused with a message: they never appear in such files, and
 * guessing at them is how a parser becomes unsafe.
 */
#include "outputs/web_config.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"

/* Keys exporter-toolkit defines that wattmeter does not honour. */
static const char *const unsupported_top[] = {"http_server_config", "rate_limit"};
static const char *const unsupported_tls[] = {"cert", "key", "client_ca", "client_allowed_sans"};

/* cipher_suites: Go's crypto/tls names of the forward-secret AEAD suites,
 * as GnuTLS key exchange and cipher. The TLS 1.3 suites have no key
 * exchange of their own (kx NULL). Go's other names are refused with why. */
typedef struct suite_def {
	const char *name, *kx, *cipher;
} suite_def;
static const suite_def suites[] = {
	{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA", "AES-128-GCM"},
	{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA", "AES-128-GCM"},
	{"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA", "AES-256-GCM"},
	{"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA", "AES-256-GCM"},
	{"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA", "CHACHA20-POLY1305"},
	{"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA", "CHACHA20-POLY1305"},
	{"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "ECDHE-ECDSA", "CHACHA20-POLY1305"}, /* Go's older alias */
	{"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "ECDHE-RSA", "CHACHA20-POLY1305"},
	{"TLS_AES_128_GCM_SHA256", NULL, "AES-128-GCM"},
	{"TLS_AES_256_GCM_SHA384", NULL, "AES-256-GCM"},
	{"TLS_CHACHA20_POLY1305_SHA256", NULL, "CHACHA20-POLY1305"},
};

/* curve_preferences: exporter-toolkit's names, as GnuTLS groups. */
static const struct {
	const char *name, *group;
} curves[] = {
	{"X25519", "GROUP-X25519"},
	{"CurveP256", "GROUP-SECP256R1"},
	{"CurveP384", "GROUP-SECP384R1"},
	{"CurveP521", "GROUP-SECP521R1"},
};

static const struct {
	const char *name;
	int policy;
} client_auths[] = {
	{"NoClientCert", WM_CLIENT_AUTH_NONE},
	{"RequestClientCert", WM_CLIENT_AUTH_REQUEST},
	{"RequireAnyClientCert", WM_CLIENT_AUTH_REQUIRE_ANY},
	{"RequireClientCert", WM_CLIENT_AUTH_REQUIRE_ANY}, /* exporter-toolkit's old name */
	{"VerifyClientCertIfGiven", WM_CLIENT_AUTH_VERIFY_IF_GIVEN},
	{"RequireAndVerifyClientCert", WM_CLIENT_AUTH_REQUIRE_VERIFY},
};

/* The tls_server_config keys, for "given twice" (bit = index). */
static const char *const tls_keys[] = {
	"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version", "max_version",
	"cipher_suites", "curve_preferences", "prefer_server_cipher_suites",
};
enum { K_CERT, K_KEY, K_CA, K_AUTH, K_MIN, K_MAX, K_CIPHERS, K_CURVES, K_PREFER };

enum section { SEC_NONE, SEC_TLS, SEC_USERS };

typedef struct parser {
	wm_web_config *c;
	const char *base_dir;
	char *err;
	size_t errlen;
	size_t line_no;
	enum section sec;
	int child_indent;          /* -1 until the section's first child */
	int seen_tls, seen_users;
	unsigned tls_seen_keys;    /* bits of tls_keys */
	int list_key;              /* K_CIPHERS / K_CURVES while its "- item" lines follow; -1: none */
} parser;

__attribute__((format(printf, 3, 4))) static int perr(parser *p, int rc, const char *fmt, ...)
{
	if (!p->err || !p->errlen)
		return rc;
	int n = snprintf(p->err, p->errlen, "web config line %zu: ", p->line_no);
	if (n < 0 || (size_t)n >= p->errlen)
		return rc;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap); /* truncation of a message is harmless */
	va_end(ap);
	return rc;
}

static int in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return 1;
	return 0;
}

/* Parses one scalar at [s, end): into out (malloc'd). Stops at an unquoted
 * " #" comment; anything after a closing quote other than a comment is an
 * error. */
static int parse_scalar(parser *p, const char *s, const char *end, char **out, const char *what)
{
	*out = NULL;
	while (s < end && *s == ' ')
		s++;
	wm_buf b;
	wm_buf_init(&b);
	if (s < end && (*s == '\'' || *s == '"')) {
		char q = *s++;
		int closed = 0;
		while (s < end && !wm_buf_error(&b)) {
			if (*s == q) {
				if (q == '\'' && s + 1 < end && s[1] == '\'') {
					wm_buf_append(&b, "'", 1);
					s += 2;
					continue;
				}
				closed = 1;
				s++;
				break;
			}
			if (q == '"' && *s == '\\') {
				if (s + 1 < end && (s[1] == '\\' || s[1] == '"')) {
					wm_buf_append(&b, s + 1, 1);
					s += 2;
					continue;
				}
				wm_buf_free(&b);
				return perr(p, -EINVAL,
					    "unsupported escape in the double-quoted %s; write it in single quotes or plain",
					    what);
			}
			wm_buf_append(&b, s, 1);
			s++;
		}
		int rc = wm_buf_error(&b);
		if (rc) {
			wm_buf_free(&b);
			return rc;
		}
		if (!closed) {
			wm_buf_free(&b);
			return perr(p, -EINVAL, "the quoted %s is not closed on its line; close the quote", what);
		}
		while (s < end && *s == ' ')
			s++;
		if (s < end && *s != '#') {
			wm_buf_free(&b);
			return perr(p, -EINVAL, "unexpected text after the quoted %s; remove it", what);
		}
	} else {
		const char *v = s, *ve = s;
		while (ve < end && !(*ve == '#' && (ve == v || ve[-1] == ' ')))
			ve++;
		while (ve > v && ve[-1] == ' ')
			ve--;
		if (ve > v && (*v == '{' || *v == '[' || *v == '&' || *v == '*' || *v == '!' || *v == '|' ||
			       *v == '>' || *v == '@' || *v == '`')) {
			return perr(p, -EINVAL,
				    "the %s starts with '%c', which this YAML subset does not support; quote the value",
				    what, *v);
		}
		wm_buf_append(&b, v, (size_t)(ve - v));
		int rc = wm_buf_error(&b);
		if (rc) {
			wm_buf_free(&b);
			return rc;
		}
	}
	if (!b.data) {
		char *e = strdup("");
		if (!e)
			return -ENOMEM;
		*out = e;
		return 0;
	}
	if (memchr(b.data, '\0', b.len)) {
		wm_buf_free(&b);
		return perr(p, -EINVAL, "the %s holds a NUL byte; remove it", what);
	}
	*out = b.data;
	return 0;
}

/* Splits "key: value" at the first ": " or a trailing ":" outside quotes.
 * key is parsed as a scalar too (user names may be quoted). */
static int split_key(parser *p, const char *s, const char *end, char **key, const char **value)
{
	*key = NULL;
	const char *colon = NULL;
	char q = 0;
	for (const char *t = s; t < end; t++) {
		if (q) {
			if (*t == q)
				q = 0;
			continue;
		}
		if ((*t == '\'' || *t == '"') && t == s) {
			q = *t;
			continue;
		}
		if (*t == '#' && (t == s || t[-1] == ' '))
			break;
		if (*t == ':' && (t + 1 == end || t[1] == ' ')) {
			colon = t;
			break;
		}
	}
	if (!colon)
		return perr(p, -EINVAL, "expected \"key: value\"; check the indentation and the colon");
	int rc = parse_scalar(p, s, colon, key, "key");
	if (rc)
		return rc;
	if ((*key)[0] == '\0') {
		free(*key);
		*key = NULL;
		return perr(p, -EINVAL, "empty key; write a name before the colon");
	}
	*value = colon + 1;
	return 0;
}

/* The value part is empty (or only a comment). */
static int value_empty(const char *v, const char *end)
{
	while (v < end && *v == ' ')
		v++;
	return v == end || *v == '#';
}

static int resolve_path(parser *p, char *path, char **out)
{
	*out = NULL;
	if (path[0] == '\0') {
		free(path);
		return perr(p, -EINVAL, "empty file name; give the path of a PEM file");
	}
	if (path[0] == '/' || !p->base_dir || !p->base_dir[0]) {
		*out = path;
		return 0;
	}
	wm_buf b;
	wm_buf_init(&b);
	wm_buf_printf(&b, "%s/%s", p->base_dir, path);
	free(path);
	int rc = wm_buf_error(&b);
	if (rc) {
		wm_buf_free(&b);
		return rc;
	}
	*out = b.data;
	return 0;
}

int wm_web_is_bcrypt(const char *s)
{
	if (!s || strlen(s) != 60 || s[0] != '$' || s[1] != '2' || (s[2] != 'a' && s[2] != 'b' && s[2] != 'y') ||
	    s[3] != '$' || s[4] < '0' || s[4] > '3' || s[5] < '0' || s[5] > '9' || s[6] != '$')
		return 0;
	int cost = (s[4] - '0') * 10 + (s[5] - '0');
	if (cost < 4 || cost > 31)
		return 0;
	for (size_t i = 7; i < 60; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '/'))
			return 0;
	}
	return 1;
}

static int add_user(parser *p, char *name, char *hash)
{
	wm_web_config *c = p->c;
	int rc = 0;
	if (strchr(name, ':'))
		rc = perr(p, -EINVAL, "user name \"%s\" contains ':', which basic auth cannot carry; rename the user",
			  name);
	else if (!wm_web_is_bcrypt(hash))
		rc = perr(p, -EINVAL,
			  "the password of user \"%s\" is not a bcrypt hash ($2y$/$2b$/$2a$, 60 characters); "
			  "make one with: htpasswd -nbBC 10 USER PASSWORD",
			  name);
	for (size_t i = 0; i < c->n_users && !rc; i++)
		if (strcmp(c->users[i].name, name) == 0)
			rc = perr(p, -EINVAL, "user \"%s\" is listed twice; keep one", name);
	if (!rc) {
		wm_web_user *u = realloc(c->users, (c->n_users + 1) * sizeof *u);
		if (!u)
			rc = -ENOMEM;
		else {
			c->users = u;
			c->users[c->n_users].name = name;
			c->users[c->n_users].hash = hash;
			c->n_users++;
			return 0;
		}
	}
	free(name);
	free(hash);
	return rc;
}

/* Why a Go cipher suite name that is not in suites[] is refused. */
static const char *suite_refusal(const char *name)
{
	if (strstr(name, "RC4") || strstr(name, "3DES"))
		return "is broken (RC4/3DES)";
	if (strncmp(name, "TLS_RSA_", 8) == 0)
		return "uses static RSA key exchange, which has no forward secrecy";
	if (strstr(name, "_CBC_"))
		return "uses CBC with HMAC, not an AEAD cipher";
	return NULL;
}

/* One entry of cipher_suites or curve_preferences. */
static int list_value(parser *p, int which, char *val)
{
	wm_web_config *c = p->c;
	int rc = 0;
	size_t *n = which == K_CIPHERS ? &c->n_ciphers : &c->n_curves;
	unsigned char *list = which == K_CIPHERS ? c->ciphers : c->curves;
	size_t idx = SIZE_MAX;
	if (which == K_CIPHERS) {
		for (size_t i = 0; i < WM_ARRAY_LEN(suites); i++)
			if (strcmp(val, suites[i].name) == 0)
				idx = i;
		if (idx == SIZE_MAX) {
			const char *why = suite_refusal(val);
			rc = why ? perr(p, -EINVAL,
					"cipher suite %s %s; wattmeter accepts forward-secret AEAD suites only "
					"(TLS_ECDHE_{ECDSA,RSA}_WITH_{AES_128_GCM_SHA256,AES_256_GCM_SHA384,"
					"CHACHA20_POLY1305_SHA256}); remove it",
					val, why)
				 : perr(p, -EINVAL,
					"unknown cipher suite \"%s\"; write Go's name, e.g. "
					"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
					val);
		}
	} else {
		for (size_t i = 0; i < WM_ARRAY_LEN(curves); i++)
			if (strcmp(val, curves[i].name) == 0)
				idx = i;
		if (idx == SIZE_MAX)
			rc = perr(p, -EINVAL, "unknown curve \"%s\"; the curves are X25519, CurveP256, CurveP384, CurveP521",
				  val);
	}
	for (size_t i = 0; !rc && i < *n; i++)
		if (list[i] == idx)
			rc = perr(p, -EINVAL, "\"%s\" is listed twice; keep one", val);
	if (!rc && *n >= WM_WEB_MAX_LIST)
		rc = perr(p, -EINVAL, "more than %d entries in %s; remove some", WM_WEB_MAX_LIST, tls_keys[which]);
	if (!rc)
		list[(*n)++] = (unsigned char)idx;
	free(val);
	return rc;
}

/* A "- item" line of the list being read. */
static int list_item(parser *p, const char *s, const char *end)
{
	if (s + 1 < end && s[1] != ' ')
		return perr(p, -EINVAL, "a list item is written \"- VALUE\"; add a space after the dash");
	char *val;
	int rc = parse_scalar(p, s + 1, end, &val, "list item");
	if (rc)
		return rc;
	if (!val[0]) {
		free(val);
		return perr(p, -EINVAL, "empty list item; write a value after the dash");
	}
	return list_value(p, p->list_key, val);
}

/* A one-line flow list of plain names: [A, B, C] (or []). */
static int flow_list(parser *p, int which, const char *v, const char *end)
{
	while (v < end && *v == ' ')
		v++;
	const char *close = memchr(v, ']', (size_t)(end - v));
	if (!close || !value_empty(close + 1, end))
		return perr(p, -EINVAL, "the list [ ... ] must close on its line, with nothing after it; or write one "
				     "\"- VALUE\" per line");
	const char *t = v + 1;
	while (t < close && *t == ' ')
		t++;
	if (t == close)
		return 0; /* [] */
	int rc = 0;
	for (;;) {
		while (t < close && *t == ' ')
			t++;
		const char *e = t;
		while (e < close && *e != ',')
			e++;
		const char *ve = e;
		while (ve > t && ve[-1] == ' ')
			ve--;
		if (ve == t)
			return perr(p, -EINVAL, "empty entry in the [ ... ] list; remove the extra comma");
		for (const char *q = t; q < ve; q++)
			if (!((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '_'))
				return perr(p, -EINVAL,
					    "only plain names (letters, digits, _) in a [ ... ] list; write one \"- VALUE\" "
					    "per line for anything else");
		char *val = strndup(t, (size_t)(ve - t));
		if (!val)
			return -ENOMEM;
		rc = list_value(p, which, val);
		if (rc || e == close)
			break;
		t = e + 1;
	}
	return rc;
}

static int tls_version(parser *p, const char *key, const char *val, int *out)
{
	if (strcmp(val, "TLS12") == 0)
		*out = WM_TLS12;
	else if (strcmp(val, "TLS13") == 0)
		*out = WM_TLS13;
	else if (strcmp(val, "TLS10") == 0 || strcmp(val, "TLS11") == 0)
		return perr(p, -EINVAL,
			    "tls_server_config.%s: %s is refused: TLS 1.0 and 1.1 are deprecated (RFC 8996) and "
			    "wattmeter does not speak them; write TLS12 or TLS13",
			    key, val);
	else
		return perr(p, -EINVAL, "tls_server_config.%s: \"%s\" is not a TLS version; write TLS12 or TLS13", key,
			    val);
	return 0;
}

static int tls_line(parser *p, const char *key, const char *v, const char *end)
{
	int k = -1;
	for (size_t i = 0; i < WM_ARRAY_LEN(tls_keys); i++)
		if (strcmp(key, tls_keys[i]) == 0)
			k = (int)i;
	if (k < 0) {
		if (in_list(key, unsupported_tls, WM_ARRAY_LEN(unsupported_tls)))
			return perr(p, -EINVAL,
				    "tls_server_config.%s is not supported by wattmeter; use cert_file, key_file and "
				    "client_ca_file (files), or terminate TLS in a proxy",
				    key);
		return perr(p, -EINVAL,
			    "unknown key tls_server_config.%s; the keys are cert_file, key_file, client_ca_file, "
			    "client_auth_type, min_version, max_version, cipher_suites, curve_preferences, "
			    "prefer_server_cipher_suites",
			    key);
	}
	if (p->tls_seen_keys & (1u << k))
		return perr(p, -EINVAL, "tls_server_config.%s is given twice; keep one", key);
	p->tls_seen_keys |= 1u << k;
	if (k == K_CIPHERS || k == K_CURVES) {
		const char *t = v;
		while (t < end && *t == ' ')
			t++;
		if (t < end && *t == '[')
			return flow_list(p, k, t, end);
		if (!value_empty(v, end))
			return perr(p, -EINVAL, "tls_server_config.%s is a list: write \"- VALUE\" lines below it, or "
					     "[A, B]",
				    key);
		p->list_key = k;
		return 0;
	}
	if (value_empty(v, end))
		return perr(p, -EINVAL, "\"%s\" has no value; write \"%s: VALUE\" on one line", key, key);
	char *val;
	int rc = parse_scalar(p, v, end, &val, key);
	if (rc)
		return rc;
	wm_web_config *c = p->c;
	switch (k) {
	case K_CERT: return resolve_path(p, val, &c->cert_file);
	case K_KEY: return resolve_path(p, val, &c->key_file);
	case K_CA: return resolve_path(p, val, &c->client_ca_file);
	case K_AUTH: {
		int found = 0;
		for (size_t i = 0; i < WM_ARRAY_LEN(client_auths); i++)
			if (strcmp(val, client_auths[i].name) == 0) {
				c->client_auth = client_auths[i].policy;
				found = 1;
			}
		if (!found)
			rc = perr(p, -EINVAL,
				  "client_auth_type \"%s\" is not a policy; write NoClientCert, RequestClientCert, "
				  "RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert",
				  val);
		break;
	}
	case K_MIN: rc = tls_version(p, key, val, &c->min_version); break;
	case K_MAX: rc = tls_version(p, key, val, &c->max_version); break;
	case K_PREFER:
		if (strcmp(val, "true") == 0)
			c->no_server_cipher_order = 0;
		else if (strcmp(val, "false") == 0)
			c->no_server_cipher_order = 1;
		else
			rc = perr(p, -EINVAL, "prefer_server_cipher_suites is true or false, not \"%s\"", val);
		break;
	default: break;
	}
	free(val);
	return rc;
}

static int child_line(parser *p, const char *s, const char *end)
{
	char *key, *val;
	const char *v;
	int rc = split_key(p, s, end, &key, &v);
	if (rc)
		return rc;
	if (p->sec == SEC_TLS) {
		rc = tls_line(p, key, v, end);
		free(key);
		return rc;
	}
	if (value_empty(v, end)) {
		rc = perr(p, -EINVAL, "\"%s\" has no value; write \"%s: VALUE\" on one line", key, key);
		free(key);
		return rc;
	}
	rc = parse_scalar(p, v, end, &val, "password hash");
	if (rc) {
		free(key);
		return rc;
	}
	return add_user(p, key, val);
}

static int top_line(parser *p, const char *s, const char *end)
{
	char *key;
	const char *v;
	int rc = split_key(p, s, end, &key, &v);
	if (rc)
		return rc;
	int empty_map = 0;
	{
		const char *t = v;
		while (t < end && *t == ' ')
			t++;
		if (end - t >= 2 && t[0] == '{' && t[1] == '}' && value_empty(t + 2, end))
			empty_map = 1;
	}
	if (!empty_map && !value_empty(v, end)) {
		rc = perr(p, -EINVAL, "\"%s\" must be followed by indented \"key: value\" lines, not a value on its line",
			  key);
	} else if (strcmp(key, "tls_server_config") == 0) {
		if (p->seen_tls)
			rc = perr(p, -EINVAL, "tls_server_config is given twice; keep one");
		p->seen_tls = 1;
		p->sec = SEC_TLS;
	} else if (strcmp(key, "basic_auth_users") == 0) {
		if (p->seen_users)
			rc = perr(p, -EINVAL, "basic_auth_users is given twice; keep one");
		p->seen_users = 1;
		p->sec = SEC_USERS;
	} else if (in_list(key, unsupported_top, WM_ARRAY_LEN(unsupported_top))) {
		rc = perr(p, -EINVAL, "%s is not supported by wattmeter; remove it", key);
	} else {
		rc = perr(p, -EINVAL,
			  "unknown key \"%s\"; wattmeter reads tls_server_config (cert_file, key_file) and "
			  "basic_auth_users",
			  key);
	}
	if (empty_map)
		p->sec = SEC_NONE;
	p->child_indent = -1;
	free(key);
	return rc;
}

void wm_web_config_release(wm_web_config *c)
{
	if (!c)
		return;
	free(c->cert_file);
	free(c->key_file);
	free(c->client_ca_file);
	for (size_t i = 0; i < c->n_users; i++) {
		free(c->users[i].name);
		free(c->users[i].hash);
	}
	free(c->users);
	memset(c, 0, sizeof *c);
}

int wm_web_config_parse(const char *text, size_t len, const char *base_dir, wm_web_config *out, char *err,
			size_t errlen)
{
	memset(out, 0, sizeof *out);
	parser p = {.c = out, .base_dir = base_dir, .err = err, .errlen = errlen, .child_indent = -1, .list_key = -1};
	if (err && errlen)
		err[0] = '\0';
	if (!text && len)
		return wm_err(err, errlen, -EINVAL, "web config: no text");
	int rc = 0;
	const char *s = text, *end = text + len;
	/* A UTF-8 byte order mark is harmless; skip it. */
	if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	while (s < end && !rc) {
		p.line_no++;
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
		const char *next = nl ? nl + 1 : end;
		if (memchr(s, '\0', n)) {
			rc = perr(&p, -EINVAL, "NUL byte in the file; is it a text file?");
			break;
		}
		if (n > 0 && s[n - 1] == '\r')
			n--;
		const char *le = s + n;
		int indent = 0;
		const char *t = s;
		while (t < le && *t == ' ') {
			t++;
			indent++;
		}
		if (t < le && *t == '\t') {
			rc = perr(&p, -EINVAL, "tab in the indentation; YAML indents with spaces only");
			break;
		}
		while (le > t && (le[-1] == ' ' || le[-1] == '\t'))
			le--;
		if (t == le || *t == '#') {
			s = next;
			continue;
		}
		if (indent == 0 && le - t == 3 && memcmp(t, "---", 3) == 0 && !p.seen_tls && !p.seen_users) {
			s = next;
			continue;
		}
		if (p.list_key >= 0 && indent > 0 && indent >= p.child_indent && *t == '-') {
			/* An item of the list opened by the key above: at the
			 * key's indentation or deeper, as YAML allows. */
			rc = list_item(&p, t, le);
			s = next;
			continue;
		}
		p.list_key = -1;
		if (indent == 0) {
			rc = top_line(&p, t, le);
		} else if (p.sec == SEC_NONE) {
			rc = perr(&p, -EINVAL, "indented line outside tls_server_config or basic_auth_users; unindent it");
		} else {
			if (p.child_indent < 0)
				p.child_indent = indent;
			if (indent != p.child_indent)
				rc = perr(&p, -EINVAL,
					  "indentation of %d spaces where the section's lines have %d; align them (nested "
					  "values are not supported)",
					  indent, p.child_indent);
			else if (*t == '-')
				rc = perr(&p, -EINVAL, "a list item where \"key: value\" is expected; write key: value");
			else
				rc = child_line(&p, t, le);
		}
		s = next;
	}
	if (!rc && p.seen_tls && (!out->cert_file || !out->key_file))
		rc = wm_err(err, errlen, -EINVAL,
			    "web config: tls_server_config needs both cert_file and key_file; add the missing one");
	if (!rc && out->min_version && out->max_version && out->min_version > out->max_version)
		rc = wm_err(err, errlen, -EINVAL,
			    "web config: tls_server_config.min_version is above max_version; lower min_version or raise "
			    "max_version");
	if (!rc && out->n_ciphers && (!out->min_version || out->min_version == WM_TLS12)) {
		int any12 = 0;
		for (size_t i = 0; i < out->n_ciphers; i++)
			any12 |= suites[out->ciphers[i]].kx != NULL;
		if (!any12)
			rc = wm_err(err, errlen, -EINVAL,
				    "web config: cipher_suites lists only TLS 1.3 suites, so no TLS 1.2 client could connect; "
				    "add a TLS_ECDHE_..._GCM suite, or set min_version: TLS13");
	}
	/* As exporter-toolkit: a CA without a policy is a mistake, and a
	 * verifying policy without a CA could never accept anyone. */
	if (!rc && out->client_ca_file && out->client_auth == WM_CLIENT_AUTH_NONE)
		rc = wm_err(err, errlen, -EINVAL,
			    "web config: client_ca_file is given without a client_auth_type; add client_auth_type: "
			    "RequireAndVerifyClientCert (or VerifyClientCertIfGiven)");
	if (!rc && !out->client_ca_file &&
	    (out->client_auth == WM_CLIENT_AUTH_VERIFY_IF_GIVEN || out->client_auth == WM_CLIENT_AUTH_REQUIRE_VERIFY))
		rc = wm_err(err, errlen, -EINVAL,
			    "web config: client_auth_type %s verifies client certificates and needs client_ca_file; add "
			    "the CA that signs them",
			    out->client_auth == WM_CLIENT_AUTH_VERIFY_IF_GIVEN ? "VerifyClientCertIfGiven"
									   : "RequireAndVerifyClientCert");
	if (rc)
		wm_web_config_release(out);
	return rc;
}

int wm_web_config_load(const char *path, wm_web_config *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	wm_buf b;
	wm_buf_init(&b);
	int rc = wm_read_file_buf_at(AT_FDCWD, path, &b);
	if (rc == 0 && b.len > (1u << 20))
		rc = -EFBIG; /* a web config is a few lines; this is not one */
	if (rc) {
		wm_buf_free(&b);
		return wm_err(err, errlen, rc, "cannot read the web config %s: %s; check the path and its permissions",
			      path, strerror(-rc));
	}
	/* Relative paths inside resolve against the file's folder. */
	char *dir = strdup(path);
	if (!dir) {
		wm_buf_free(&b);
		return wm_err(err, errlen, -ENOMEM, "out of memory");
	}
	char *slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	else
		dir[0] = '\0';
	char msg[512];
	rc = wm_web_config_parse(b.data ? b.data : "", b.len, dir[0] ? dir : NULL, out, msg, sizeof msg);
	free(dir);
	wm_buf_free(&b);
	if (rc)
		return wm_err(err, errlen, rc, "%s: %s", path, msg);
	return 0;
}

int wm_web_check_password(const char *hash, const char *password)
{
	if (!wm_web_is_bcrypt(hash) || !password)
		return -EINVAL;
	struct crypt_data *data = calloc(1, sizeof *data); /* ~32 KiB: not on the stack */
	if (!data)
		return -ENOMEM;
	const char *h = crypt_rn(password, hash, data, (int)sizeof *data);
	int rc;
	if (!h || h[0] == '*') {
		rc = -ENOSYS;
	} else {
		/* Constant-time compare: both are 60 characters. */
		size_t n = strlen(hash);
		unsigned char diff = (unsigned char)(strlen(h) != n);
		for (size_t i = 0; i < n && h[i]; i++)
			diff |= (unsigned char)(h[i] ^ hash[i]);
		rc = diff == 0;
	}
	explicit_bzero(data, sizeof *data);
	free(data);
	return rc;
}

/* Appends ":" and item to the priority string being built. */
static int prio_add(char *out, size_t outlen, size_t *len, const char *item)
{
	int n = snprintf(out + *len, outlen - *len, "%s%s", *len ? ":" : "", item);
	if (n < 0 || (size_t)n >= outlen - *len)
		return -ENAMETOOLONG;
	*len += (size_t)n;
	return 0;
}

int wm_web_tls_priorities(const wm_web_config *c, char *out, size_t outlen)
{
	if (!outlen)
		return -ENAMETOOLONG;
	out[0] = '\0';
	size_t len = 0;
	int lo = c->min_version ? c->min_version : WM_TLS12;
	int hi = c->max_version ? c->max_version : WM_TLS13;
	int rc = prio_add(out, outlen, &len, "NORMAL");
	rc = rc ? rc : prio_add(out, outlen, &len, "-VERS-ALL");
	if (!rc && hi >= WM_TLS13 && lo <= WM_TLS13)
		rc = prio_add(out, outlen, &len, "+VERS-TLS1.3");
	if (!rc && lo <= WM_TLS12 && hi >= WM_TLS12)
		rc = prio_add(out, outlen, &len, "+VERS-TLS1.2");
	/* Key exchange: ECDHE only (no static RSA, no finite-field DHE). */
	rc = rc ? rc : prio_add(out, outlen, &len, "-KX-ALL");
	if (!c->n_ciphers) {
		rc = rc ? rc : prio_add(out, outlen, &len, "+ECDHE-ECDSA");
		rc = rc ? rc : prio_add(out, outlen, &len, "+ECDHE-RSA");
	}
	for (size_t i = 0; !rc && i < c->n_ciphers; i++) {
		const char *kx = suites[c->ciphers[i]].kx;
		int dup = kx == NULL;
		for (size_t j = 0; !dup && j < i; j++)
			dup = suites[c->ciphers[j]].kx && strcmp(suites[c->ciphers[j]].kx, kx) == 0;
		if (!dup) {
			char item[32];
			snprintf(item, sizeof item, "+%s", kx);
			rc = prio_add(out, outlen, &len, item);
		}
	}
	/* Ciphers: AEAD only, in the listed order (GnuTLS combines them with
	 * every listed key exchange, and uses them for TLS 1.3 too). */
	rc = rc ? rc : prio_add(out, outlen, &len, "-CIPHER-ALL");
	if (!c->n_ciphers) {
		rc = rc ? rc : prio_add(out, outlen, &len, "+AES-128-GCM");
		rc = rc ? rc : prio_add(out, outlen, &len, "+AES-256-GCM");
		rc = rc ? rc : prio_add(out, outlen, &len, "+CHACHA20-POLY1305");
	}
	for (size_t i = 0; !rc && i < c->n_ciphers; i++) {
		const char *ci = suites[c->ciphers[i]].cipher;
		int dup = 0;
		for (size_t j = 0; !dup && j < i; j++)
			dup = strcmp(suites[c->ciphers[j]].cipher, ci) == 0;
		if (!dup) {
			char item[32];
			snprintf(item, sizeof item, "+%s", ci);
			rc = prio_add(out, outlen, &len, item);
		}
	}
	rc = rc ? rc : prio_add(out, outlen, &len, "-MAC-ALL");
	rc = rc ? rc : prio_add(out, outlen, &len, "+AEAD");
	/* Groups: Go's default set and order, or curve_preferences. */
	rc = rc ? rc : prio_add(out, outlen, &len, "-GROUP-ALL");
	if (!c->n_curves)
		for (size_t i = 0; !rc && i < WM_ARRAY_LEN(curves); i++) {
			char item[32];
			snprintf(item, sizeof item, "+%s", curves[i].group);
			rc = prio_add(out, outlen, &len, item);
		}
	for (size_t i = 0; !rc && i < c->n_curves; i++) {
		char item[32];
		snprintf(item, sizeof item, "+%s", curves[c->curves[i]].group);
		rc = prio_add(out, outlen, &len, item);
	}
	if (!rc && !c->no_server_cipher_order)
		rc = prio_add(out, outlen, &len, "%SERVER_PRECEDENCE");
	if (rc)
		out[0] = '\0';
	return rc;
}

static int dup_str(char **dst, const char *src)
{
	*dst = NULL;
	if (src && !(*dst = strdup(src)))
		return -ENOMEM;
	return 0;
}

int wm_web_config_copy(wm_web_config *dst, const wm_web_config *src)
{
	memset(dst, 0, sizeof *dst);
	if (!src)
		return 0;
	*dst = *src;
	dst->cert_file = dst->key_file = dst->client_ca_file = NULL;
	dst->users = NULL;
	dst->n_users = 0;
	int rc = dup_str(&dst->cert_file, src->cert_file);
	rc = rc ? rc : dup_str(&dst->key_file, src->key_file);
	rc = rc ? rc : dup_str(&dst->client_ca_file, src->client_ca_file);
	if (!rc && src->n_users) {
		dst->users = calloc(src->n_users, sizeof *dst->users);
		rc = dst->users ? 0 : -ENOMEM;
		for (size_t i = 0; !rc && i < src->n_users; i++) {
			dst->n_users = i + 1;
			rc = dup_str(&dst->users[i].name, src->users[i].name);
			rc = rc ? rc : dup_str(&dst->users[i].hash, src->users[i].hash);
		}
	}
	if (rc)
		wm_web_config_release(dst);
	return rc;
}
