/* test_http.c — the exporter's HTTP server on 127.0.0.1, port 0, with a
 * plain-socket client: routes, methods, content negotiation, gzip (checked
 * by inflating it), basic auth (401 / 200), bad addresses, a taken port. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "base/util.h"
#include "outputs/http.h"
#include "outputs/prometheus.h"
#include "outputs/web_config.h"

#define H_UU "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW" /* "U*U" (Openwall vector) */

typedef struct resp {
	int status;
	char *head;     /* status line and headers */
	char *body;
	size_t body_len;
} resp;

static void resp_free(resp *r)
{
	free(r->head);
	free(r->body);
}

/* Sends raw request text, reads until the server closes. */
static resp request(int port, const char *req)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	/* The server may answer and close before reading it all (431): stop
	 * writing then, without SIGPIPE. */
	for (size_t off = 0, len = strlen(req); off < len;) {
		ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			assert_true(errno == EPIPE || errno == ECONNRESET);
			break;
		}
		off += (size_t)n;
	}
	wm_buf b;
	wm_buf_init(&b);
	for (;;) {
		assert_int_equal(wm_buf_reserve(&b, 65536), 0);
		ssize_t n = read(fd, b.data + b.len, b.cap - b.len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ECONNRESET && b.len > 0)
			break; /* reset after the answer (unread request bytes) */
		assert_true(n >= 0);
		if (n == 0)
			break;
		b.len += (size_t)n;
		b.data[b.len] = '\0';
	}
	close(fd);
	resp r = {0};
	assert_non_null(b.data);
	char *sep = strstr(b.data, "\r\n\r\n");
	assert_non_null(sep);
	size_t hl = (size_t)(sep - b.data);
	r.head = strndup(b.data, hl);
	r.body_len = b.len - hl - 4;
	r.body = malloc(r.body_len + 1);
	memcpy(r.body, sep + 4, r.body_len);
	r.body[r.body_len] = '\0';
	assert_int_equal(sscanf(r.head, "HTTP/1.%*d %d", &r.status), 1);
	wm_buf_free(&b);
	return r;
}

static resp get(int port, const char *method, const char *path, const char *extra_headers)
{
	wm_buf b;
	wm_buf_init(&b);
	assert_int_equal(wm_buf_printf(&b, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method, path), 0);
	assert_int_equal(wm_buf_puts(&b, extra_headers ? extra_headers : ""), 0);
	assert_int_equal(wm_buf_puts(&b, "\r\n"), 0);
	resp r = request(port, b.data);
	wm_buf_free(&b);
	return r;
}

/* The value of header name in r (case-insensitive name), or NULL. */
static const char *header(const resp *r, const char *name, char *out, size_t outlen)
{
	size_t n = strlen(name);
	for (const char *p = strstr(r->head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
		if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
			const char *v = p + 3 + n;
			while (*v == ' ')
				v++;
			const char *e = strstr(v, "\r\n");
			size_t len = e ? (size_t)(e - v) : strlen(v);
			snprintf(out, outlen, "%.*s", (int)len, v);
			return out;
		}
	}
	return NULL;
}

static const char TEXT[] = "# HELP x_total a\n# TYPE x_total counter\nx_total 1\n";
static const char OM[] = "# HELP x a\n# TYPE x counter\nx_total 1\n# EOF\n";

static wm_http *start(const wm_web_config *web)
{
	wm_http_opts o = {.listen = "127.0.0.1:0", .web = web};
	wm_http *h;
	char err[512];
	int rc = wm_http_start(&o, &h, err, sizeof err);
	if (rc)
		fail_msg("wm_http_start: %s", err);
	assert_true(wm_http_port(h) > 0);
	return h;
}

static void publish(wm_http *h)
{
	assert_int_equal(wm_http_publish(h, strdup(TEXT), strlen(TEXT), strdup(OM), strlen(OM)), 0);
}

static int count_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

static void routes_methods_formats(void **state)
{
	(void)state;
	int fds0 = count_fds();
	wm_http *h = start(NULL);
	int port = wm_http_port(h);
	char want_url[64], v[256];
	snprintf(want_url, sizeof want_url, "http://127.0.0.1:%d", port);
	assert_string_equal(wm_http_url(h), want_url);

	/* Before the first sample: 503 on /metrics and /healthz. */
	resp r = get(port, "GET", "/metrics", NULL);
	assert_int_equal(r.status, 503);
	resp_free(&r);
	r = get(port, "GET", "/healthz", NULL);
	assert_int_equal(r.status, 503);
	resp_free(&r);

	publish(h);
	r = get(port, "GET", "/metrics", NULL);
	assert_int_equal(r.status, 200);
	assert_string_equal(header(&r, "Content-Type", v, sizeof v), "text/plain; version=0.0.4; charset=utf-8");
	assert_string_equal(r.body, TEXT);
	resp_free(&r);

	r = get(port, "GET", "/metrics",
		"Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n");
	assert_int_equal(r.status, 200);
	assert_string_equal(header(&r, "Content-Type", v, sizeof v),
			    "application/openmetrics-text; version=1.0.0; charset=utf-8");
	assert_string_equal(r.body, OM);
	resp_free(&r);

	/* gzip: inflating the body gives the text back. */
	r = get(port, "GET", "/metrics", "Accept-Encoding: gzip\r\n");
	assert_int_equal(r.status, 200);
	assert_string_equal(header(&r, "Content-Encoding", v, sizeof v), "gzip");
	char out[512];
	z_stream z = {0};
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (Bytef *)r.body;
	z.avail_in = (uInt)r.body_len;
	z.next_out = (Bytef *)out;
	z.avail_out = sizeof out;
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	assert_int_equal(z.total_out, strlen(TEXT));
	assert_memory_equal(out, TEXT, strlen(TEXT));
	inflateEnd(&z);
	resp_free(&r);

	/* HEAD: headers, no body. */
	r = get(port, "HEAD", "/metrics", NULL);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 0);
	resp_free(&r);

	r = get(port, "POST", "/metrics", "Content-Length: 0\r\n");
	assert_int_equal(r.status, 405);
	assert_non_null(header(&r, "Allow", v, sizeof v));
	assert_string_equal(v, "GET, HEAD");
	resp_free(&r);
	r = get(port, "DELETE", "/", NULL);
	assert_int_equal(r.status, 405);
	resp_free(&r);

	r = get(port, "GET", "/", NULL);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "href=\"metrics\""));
	resp_free(&r);
	r = get(port, "GET", "/healthz", NULL);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	r = get(port, "GET", "/nothing", NULL);
	assert_int_equal(r.status, 404);
	resp_free(&r);

	/* Oversized headers are the server's business: refused, not a crash. */
	char *big = malloc(70000);
	memcpy(big, "X-Big: ", 7);
	memset(big + 7, 'a', 70000 - 10);
	memcpy(big + 70000 - 3, "\r\n", 3);
	r = get(port, "GET", "/metrics", big);
	assert_true(r.status == 431 || r.status == 413 || r.status == 400);
	resp_free(&r);
	free(big);

	/* A new snapshot replaces the old one. */
	const char t2[] = "y 2\n";
	assert_int_equal(wm_http_publish(h, strdup(t2), strlen(t2), strdup(OM), strlen(OM)), 0);
	r = get(port, "GET", "/metrics", NULL);
	assert_string_equal(r.body, t2);
	resp_free(&r);
	wm_http_free(h);
	assert_int_equal(count_fds(), fds0); /* the listening socket and the threads' fds are gone */
}

static void basic_auth(void **state)
{
	(void)state;
	wm_web_user u = {.name = "prom", .hash = H_UU};
	wm_web_config web = {.users = &u, .n_users = 1};
	wm_http *h = start(&web);
	int port = wm_http_port(h);
	publish(h);
	char v[256];
	resp r = get(port, "GET", "/metrics", NULL);
	assert_int_equal(r.status, 401);
	assert_non_null(header(&r, "WWW-Authenticate", v, sizeof v));
	assert_non_null(strstr(v, "Basic"));
	resp_free(&r);
	/* prom:wrong */
	r = get(port, "GET", "/metrics", "Authorization: Basic cHJvbTp3cm9uZw==\r\n");
	assert_int_equal(r.status, 401);
	resp_free(&r);
	/* nobody:U*U — an unknown user */
	r = get(port, "GET", "/metrics", "Authorization: Basic bm9ib2R5OlUqVQ==\r\n");
	assert_int_equal(r.status, 401);
	resp_free(&r);
	/* prom:U*U, twice (the second from the cache) */
	for (int i = 0; i < 2; i++) {
		r = get(port, "GET", "/metrics", "Authorization: Basic cHJvbTpVKlU=\r\n");
		assert_int_equal(r.status, 200);
		assert_string_equal(r.body, TEXT);
		resp_free(&r);
	}
	/* and a wrong one after a right one is still refused */
	r = get(port, "GET", "/metrics", "Authorization: Basic cHJvbTpVKlUq\r\n");
	assert_int_equal(r.status, 401);
	resp_free(&r);
	wm_http_free(h);
}

/* Wrong passwords beyond the pool's queue get 429 at once; a verified
 * password is answered from the cache meanwhile; and stopping the server
 * with checks queued and connections suspended is clean (libmicrohttpd
 * panics if stopped with a suspended connection). */
static void auth_pool_is_bounded_and_stops_cleanly(void **state)
{
	(void)state;
	/* A cost-12 hash (~0.2 s a check) so that checks pile up. */
	char setting[64], hash[128];
	struct crypt_data *cd = calloc(1, sizeof *cd);
	assert_non_null(crypt_gensalt_rn("$2b$", 12, NULL, 0, setting, sizeof setting));
	const char *hh = crypt_rn("right", setting, cd, (int)sizeof *cd);
	assert_non_null(hh);
	snprintf(hash, sizeof hash, "%s", hh);
	free(cd);
	wm_web_user u = {.name = "prom", .hash = hash};
	wm_web_config web = {.users = &u, .n_users = 1};
	wm_http *h = start(&web);
	int port = wm_http_port(h);
	publish(h);
	/* prom:right, verified once (slow), then cached. */
	resp r = get(port, "GET", "/metrics", "Authorization: Basic cHJvbTpyaWdodA==\r\n");
	assert_int_equal(r.status, 200);
	resp_free(&r);
	/* More wrong passwords at once than workers + queue: some get 429. */
	enum { N = WM_HTTP_AUTH_THREADS + WM_HTTP_AUTH_QUEUE + 6 };
	int fds[N];
	static const char bad[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
				  "Authorization: Basic cHJvbTp3cm9uZw==\r\n\r\n"; /* prom:wrong */
	for (int i = 0; i < N; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		assert_int_equal(connect(fds[i], (struct sockaddr *)&a, sizeof a), 0);
		assert_int_equal(send(fds[i], bad, sizeof bad - 1, MSG_NOSIGNAL), (ssize_t)(sizeof bad - 1));
	}
	int n429 = 0, n401 = 0;
	for (int i = 0; i < N; i++) {
		char buf[512];
		ssize_t n = read(fds[i], buf, sizeof buf - 1);
		assert_true(n > 12);
		buf[n] = '\0';
		int st = 0;
		assert_int_equal(sscanf(buf, "HTTP/1.%*d %d", &st), 1);
		n429 += st == 429;
		n401 += st == 401;
		assert_true(st == 429 || st == 401);
		close(fds[i]);
		if (i == 0) {
			/* The cached credential meanwhile: answered. */
			r = get(port, "GET", "/metrics", "Authorization: Basic cHJvbTpyaWdodA==\r\n");
			assert_int_equal(r.status, 200);
			resp_free(&r);
		}
	}
	assert_true(n429 > 0);
	assert_true(n401 >= 1);
	/* Stop with checks queued: requests suspended in the pool. */
	for (int i = 0; i < 4; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		assert_int_equal(connect(fds[i], (struct sockaddr *)&a, sizeof a), 0);
		assert_int_equal(send(fds[i], bad, sizeof bad - 1, MSG_NOSIGNAL), (ssize_t)(sizeof bad - 1));
	}
	usleep(50000);
	wm_http_free(h);
	for (int i = 0; i < 4; i++)
		close(fds[i]);
}

static void bad_addresses(void **state)
{
	(void)state;
	static const struct {
		const char *listen, *msg;
	} cases[] = {
		{"127.0.0.1", "no port"},
		{"127.0.0.1:99999", "0..65535"},
		{"127.0.0.1:http", "0..65535"},
		{"::1:5001", "brackets"},
		{"[::1", "[ADDRESS]:PORT"},
		{"256.1.1.1:0", "cannot"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		wm_http_opts o = {.listen = cases[i].listen};
		wm_http *h = NULL;
		char err[512] = "";
		int rc = wm_http_start(&o, &h, err, sizeof err);
		if (rc >= 0 || !strstr(err, cases[i].msg))
			fail_msg("%s: rc %d, message \"%s\"", cases[i].listen, rc, err);
		assert_null(h);
	}
	/* A taken port says so. */
	wm_http *h1 = start(NULL);
	char addr[64], err[512];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", wm_http_port(h1));
	wm_http_opts o = {.listen = addr};
	wm_http *h2 = NULL;
	assert_int_equal(wm_http_start(&o, &h2, err, sizeof err), -EADDRINUSE);
	assert_non_null(strstr(err, "another program uses that port"));
	wm_http_free(h1);
	/* TLS files that are not there. */
	wm_web_config web = {.cert_file = "/nonexistent/c.pem", .key_file = "/nonexistent/k.pem"};
	wm_http_opts ot = {.listen = "127.0.0.1:0", .web = &web};
	assert_int_equal(wm_http_start(&ot, &h2, err, sizeof err), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/c.pem"));
	wm_http_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(routes_methods_formats),
		cmocka_unit_test(basic_auth),
		cmocka_unit_test(auth_pool_is_bounded_and_stops_cleanly),
		cmocka_unit_test(bad_addresses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
