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
static const char *const unsupported_tls[] = {
	"cert", "key", "client_auth_type", "client_ca_file", "client_ca", "cipher_suites",
	"curve_preferences", "min_version", "max_version", "prefer_server_cipher_suites",
	"client_allowed_sans",
};

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

static int child_line(parser *p, const char *s, const char *end)
{
	char *key, *val;
	const char *v;
	int rc = split_key(p, s, end, &key, &v);
	if (rc)
		return rc;
	if (value_empty(v, end)) {
		rc = perr(p, -EINVAL, "\"%s\" has no value; write \"%s: VALUE\" on one line", key, key);
		free(key);
		return rc;
	}
	if (p->sec == SEC_TLS) {
		char **slot = NULL;
		if (strcmp(key, "cert_file") == 0)
			slot = &p->c->cert_file;
		else if (strcmp(key, "key_file") == 0)
			slot = &p->c->key_file;
		else if (in_list(key, unsupported_tls, WM_ARRAY_LEN(unsupported_tls)))
			rc = perr(p, -EINVAL,
				  "tls_server_config.%s is not supported by wattmeter (only cert_file and key_file); "
				  "remove it or terminate TLS in a proxy",
				  key);
		else
			rc = perr(p, -EINVAL, "unknown key tls_server_config.%s; the keys are cert_file and key_file",
				  key);
		if (!rc && *slot)
			rc = perr(p, -EINVAL, "tls_server_config.%s is given twice; keep one", key);
		if (!rc)
			rc = parse_scalar(p, v, end, &val, key);
		if (!rc)
			rc = resolve_path(p, val, slot);
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
	parser p = {.c = out, .base_dir = base_dir, .err = err, .errlen = errlen, .child_indent = -1};
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
