/* http.c — see http.h. libmicrohttpd does the HTTP (parsing, limits,
 * timeouts, TLS through GnuTLS); this file binds the socket itself (so a
 * failure says why, and port 0 reports the port chosen), routes, negotiates
 * the format, compresses, and checks passwords.
 */
#include "outputs/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "base/util.h"
#include "outputs/prometheus.h"
#include "wattmeter.h"

/* One published snapshot, shared by the scrapes serving it. */
typedef struct snap {
	pthread_mutex_t *lock; /* the server's: guards refs */
	int refs;
	char *text, *om;
	size_t text_len, om_len;
} snap;

typedef struct user_cache {
	char *password;        /* last password verified for this user, NULL: none */
} user_cache;

struct wm_http {
	struct MHD_Daemon *d;
	int port;
	char url[128];
	double stale_after_s;
	wm_web_config web;     /* owned copy */
	char *cert_pem, *key_pem;

	pthread_mutex_t lock;  /* guards cur, refs, last_publish_ns, cache */
	snap *cur;
	uint64_t last_publish_ns;
	user_cache *cache;     /* [web.n_users] */
};

static void snap_unref_locked(snap *s)
{
	if (--s->refs == 0) {
		free(s->text);
		free(s->om);
		free(s);
	}
}

static void snap_release(void *cls)
{
	snap *s = cls;
	pthread_mutex_t *lock = s->lock;
	pthread_mutex_lock(lock);
	snap_unref_locked(s);
	pthread_mutex_unlock(lock);
}

int wm_http_publish(wm_http *h, char *text, size_t text_len, char *om, size_t om_len)
{
	snap *s = calloc(1, sizeof *s);
	if (!s) {
		free(text);
		free(om);
		return -ENOMEM;
	}
	s->lock = &h->lock;
	s->refs = 1;
	s->text = text;
	s->text_len = text_len;
	s->om = om;
	s->om_len = om_len;
	pthread_mutex_lock(&h->lock);
	snap *old = h->cur;
	h->cur = s;
	h->last_publish_ns = wm_now_mono_ns();
	if (old)
		snap_unref_locked(old);
	pthread_mutex_unlock(&h->lock);
	return 0;
}

/* ---- responses ---------------------------------------------------------- */

static enum MHD_Result queue_text(struct MHD_Connection *c, unsigned status, const char *ctype, const char *body)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* gzip of data (zlib, level 1: the text is small and scrapes are many). */
static int gzip_buf(const char *data, size_t len, char **out, size_t *out_len)
{
	z_stream z = {0};
	if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	uLong bound = deflateBound(&z, (uLong)len) + 32;
	char *buf = malloc(bound);
	if (!buf) {
		deflateEnd(&z);
		return -ENOMEM;
	}
	z.next_in = (Bytef *)(uintptr_t)data;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)buf;
	z.avail_out = (uInt)bound;
	int zr = deflate(&z, Z_FINISH);
	size_t n = (size_t)z.total_out;
	deflateEnd(&z);
	if (zr != Z_STREAM_END) {
		free(buf);
		return -EIO;
	}
	*out = buf;
	*out_len = n;
	return 0;
}

static enum MHD_Result serve_metrics(wm_http *h, struct MHD_Connection *c)
{
	const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
	const char *enc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING);
	int om = wm_prom_wants_openmetrics(accept);

	pthread_mutex_lock(&h->lock);
	snap *s = h->cur;
	if (s)
		s->refs++;
	pthread_mutex_unlock(&h->lock);
	if (!s)
		return queue_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8",
				  "no sample yet: wattmeter is starting\n");

	char *body = om ? s->om : s->text;
	size_t len = om ? s->om_len : s->text_len;
	struct MHD_Response *r = NULL;
	int gz = 0;
	if (wm_prom_accepts_gzip(enc)) {
		char *z;
		size_t zlen;
		if (gzip_buf(body, len, &z, &zlen) == 0) {
			r = MHD_create_response_from_buffer(zlen, z, MHD_RESPMEM_MUST_FREE);
			if (!r)
				free(z);
			gz = r != NULL;
		}
	}
	if (gz) {
		snap_release(s);
	} else {
		r = MHD_create_response_from_buffer_with_free_callback_cls(len, body, snap_release, s);
		if (!r) {
			snap_release(s);
			return MHD_NO;
		}
	}
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				om ? WM_PROM_CONTENT_TYPE_OPENMETRICS : WM_PROM_CONTENT_TYPE_TEXT);
	MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept, Accept-Encoding");
	if (gz)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
	enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static const char landing_html[] =
	"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>wattmeter exporter</title></head>\n"
	"<body><h1>wattmeter exporter</h1>\n"
	"<p>Energy and power of this machine's CPU packages, DRAM, platform and GPUs, "
	"for Prometheus.</p>\n"
	"<ul><li><a href=\"metrics\">/metrics</a></li><li><a href=\"healthz\">/healthz</a></li></ul>\n"
	"</body></html>\n";

static enum MHD_Result serve_health(wm_http *h, struct MHD_Connection *c)
{
	pthread_mutex_lock(&h->lock);
	uint64_t last = h->last_publish_ns;
	pthread_mutex_unlock(&h->lock);
	if (!last)
		return queue_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", "starting\n");
	double age_s = (double)(wm_now_mono_ns() - last) / 1e9;
	if (age_s > h->stale_after_s)
		return queue_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8",
				  "stale: no sample recently; the sampler has stopped\n");
	return queue_text(c, MHD_HTTP_OK, "text/plain; charset=utf-8", "ok\n");
}

/* Constant-time equality of two NUL-terminated strings (length leaks). */
static int str_eq_ct(const char *a, const char *b)
{
	size_t n = strlen(a), m = strlen(b);
	unsigned char d = (unsigned char)(n != m);
	for (size_t i = 0; i < n && i < m; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

/* 1 if the request carries a valid user and password. bcrypt costs ~50 ms
 * at cost 10, so a password once verified is remembered per user (as
 * exporter-toolkit caches its checks) and compared in constant time. */
static int authorised(wm_http *h, struct MHD_Connection *c)
{
	char *pass = NULL;
	char *user = MHD_basic_auth_get_username_password(c, &pass);
	int ok = 0;
	if (user && pass) {
		size_t i = 0;
		while (i < h->web.n_users && strcmp(h->web.users[i].name, user) != 0)
			i++;
		if (i < h->web.n_users) {
			pthread_mutex_lock(&h->lock);
			ok = h->cache[i].password && str_eq_ct(h->cache[i].password, pass);
			pthread_mutex_unlock(&h->lock);
			if (!ok && wm_web_check_password(h->web.users[i].hash, pass) == 1) {
				ok = 1;
				char *copy = strdup(pass);
				pthread_mutex_lock(&h->lock);
				if (copy) {
					if (h->cache[i].password) {
						explicit_bzero(h->cache[i].password, strlen(h->cache[i].password));
						free(h->cache[i].password);
					}
					h->cache[i].password = copy;
				}
				pthread_mutex_unlock(&h->lock);
			}
		} else {
			/* An unknown user costs as much as a known one: no timing
			 * difference tells which names exist. */
			(void)wm_web_check_password(h->web.users[0].hash, pass);
		}
	}
	if (pass) {
		explicit_bzero(pass, strlen(pass));
		MHD_free(pass);
	}
	if (user)
		MHD_free(user);
	return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls)
{
	(void)version;
	(void)upload_data;
	wm_http *h = cls;
	/* Answer on the first call, when the headers are in; a body (from
	 * a method we refuse anyway) is never read. */
	if (*req_cls == NULL) {
		*req_cls = (void *)1;
	}
	*upload_data_size = 0;
	int get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
	int head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	if (!get && !head)
		return queue_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
				  "method not allowed: use GET or HEAD\n");
	if (h->web.n_users && !authorised(h, c)) {
		static const char body[] = "unauthorised: give a user and password from basic_auth_users\n";
		struct MHD_Response *r =
			MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
		if (!r)
			return MHD_NO;
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
		enum MHD_Result ret = MHD_queue_basic_auth_fail_response(c, "wattmeter", r);
		MHD_destroy_response(r);
		return ret;
	}
	if (strcmp(url, "/metrics") == 0)
		return serve_metrics(h, c);
	if (strcmp(url, "/") == 0)
		return queue_text(c, MHD_HTTP_OK, "text/html; charset=utf-8", landing_html);
	if (strcmp(url, "/healthz") == 0)
		return serve_health(h, c);
	return queue_text(c, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8", "not found: try /metrics\n");
}

/* ---- start and stop ----------------------------------------------------- */

/* Splits "host:port" / "[v6]:port" / ":port". host gets "" for all interfaces. */
static int split_listen(const char *listen, char *host, size_t hostlen, unsigned *port, char *err, size_t errlen)
{
	const char *colon;
	const char *hs = listen, *he;
	if (listen[0] == '[') {
		const char *rb = strchr(listen, ']');
		if (!rb || rb[1] != ':')
			return wm_err(err, errlen, -EINVAL,
				      "--listen %s: an IPv6 address is written [ADDRESS]:PORT, e.g. [::1]:5001", listen);
		hs = listen + 1;
		he = rb;
		colon = rb + 1;
	} else {
		colon = strrchr(listen, ':');
		if (!colon)
			return wm_err(err, errlen, -EINVAL, "--listen %s: no port; write HOST:PORT, e.g. 127.0.0.1:5001",
				      listen);
		he = colon;
		if (memchr(listen, ':', (size_t)(colon - listen)))
			return wm_err(err, errlen, -EINVAL,
				      "--listen %s: an IPv6 address must be in brackets, e.g. [::1]:5001", listen);
	}
	size_t n = (size_t)(he - hs);
	if (n >= hostlen)
		return wm_err(err, errlen, -EINVAL, "--listen %s: host name too long", listen);
	memcpy(host, hs, n);
	host[n] = '\0';
	uint64_t p;
	if (wm_parse_u64_full(colon + 1, &p) < 0 || p > 65535 || colon[1] == '\0' || colon[1] == ' ')
		return wm_err(err, errlen, -EINVAL, "--listen %s: the port must be a number 0..65535 (0: any free port)",
			      listen);
	*port = (unsigned)p;
	return 0;
}

int wm_http_check_listen(const char *listen, char *err, size_t errlen)
{
	char host[256];
	unsigned port;
	return split_listen(listen, host, sizeof host, &port, err, errlen);
}

static int bind_listen(const char *addr, int *fd_out, int *port_out, int *v6_out, char *err, size_t errlen)
{
	char host[256];
	unsigned port;
	int rc = split_listen(addr, host, sizeof host, &port, err, errlen);
	if (rc)
		return rc;
	struct addrinfo hints = {0}, *res = NULL;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	char portstr[8];
	int n = snprintf(portstr, sizeof portstr, "%u", port);
	if (n < 0 || (size_t)n >= sizeof portstr)
		return -EINVAL;
	int gai = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res);
	if (gai != 0)
		return wm_err(err, errlen, -EINVAL, "--listen %s: cannot resolve \"%s\": %s; give an IP address", addr,
			      host, gai_strerror(gai));
	int fd = -1, e = 0;
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		int one = 1;
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 128) == 0) {
			*v6_out = a->ai_family == AF_INET6;
			break;
		}
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return wm_err(err, errlen, -e, "cannot listen on %s: %s; %s", addr, strerror(e),
			      e == EADDRINUSE ? "another program uses that port: pick another with --listen"
			      : e == EACCES   ? "ports below 1024 need privileges: pick a port above 1023"
					      : "check the address");
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		e = errno;
		close(fd);
		return wm_err(err, errlen, -e, "getsockname: %s", strerror(e));
	}
	*port_out = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
					     : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	*fd_out = fd;
	return 0;
}

static int read_pem(const char *path, const char *what, char **out, char *err, size_t errlen)
{
	wm_buf b;
	wm_buf_init(&b);
	int rc = wm_read_file_buf_at(AT_FDCWD, path, &b);
	if (rc == 0 && (!b.data || !strstr(b.data, "-----BEGIN ")))
		rc = -EINVAL;
	if (rc) {
		wm_buf_free(&b);
		return wm_err(err, errlen, rc, "web config: cannot use the TLS %s %s: %s; give a readable PEM file",
			      what, path, rc == -EINVAL ? "not a PEM file" : strerror(-rc));
	}
	*out = b.data;
	return 0;
}

static int copy_web(wm_web_config *dst, const wm_web_config *src)
{
	memset(dst, 0, sizeof *dst);
	if (!src)
		return 0;
	if (src->cert_file && !(dst->cert_file = strdup(src->cert_file)))
		return -ENOMEM;
	if (src->key_file && !(dst->key_file = strdup(src->key_file)))
		return -ENOMEM;
	if (src->n_users) {
		dst->users = calloc(src->n_users, sizeof *dst->users);
		if (!dst->users)
			return -ENOMEM;
		for (size_t i = 0; i < src->n_users; i++) {
			dst->users[i].name = strdup(src->users[i].name);
			dst->users[i].hash = strdup(src->users[i].hash);
			dst->n_users = i + 1;
			if (!dst->users[i].name || !dst->users[i].hash)
				return -ENOMEM;
		}
	}
	return 0;
}

void wm_http_free(wm_http *h)
{
	if (!h)
		return;
	if (h->d)
		MHD_stop_daemon(h->d); /* joins its threads; closes the listening socket */
	if (h->cur)
		snap_unref_locked(h->cur); /* no scrape is left to race with */
	if (h->cache) {
		for (size_t i = 0; i < h->web.n_users; i++) {
			if (h->cache[i].password) {
				explicit_bzero(h->cache[i].password, strlen(h->cache[i].password));
				free(h->cache[i].password);
			}
		}
		free(h->cache);
	}
	if (h->key_pem) {
		explicit_bzero(h->key_pem, strlen(h->key_pem));
		free(h->key_pem);
	}
	free(h->cert_pem);
	wm_web_config_release(&h->web);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

int wm_http_start(const wm_http_opts *o, wm_http **out, char *err, size_t errlen)
{
	*out = NULL;
	const char *listen_addr = o && o->listen && o->listen[0] ? o->listen : WM_HTTP_DEFAULT_LISTEN;
	wm_http *h = calloc(1, sizeof *h);
	if (!h)
		return wm_err(err, errlen, -ENOMEM, "out of memory");
	pthread_mutex_init(&h->lock, NULL);
	h->stale_after_s = o && o->stale_after_s > 0 ? o->stale_after_s : 10.0;
	int rc = copy_web(&h->web, o ? o->web : NULL);
	if (!rc && h->web.n_users && !(h->cache = calloc(h->web.n_users, sizeof *h->cache)))
		rc = -ENOMEM;
	if (rc) {
		wm_http_free(h);
		return wm_err(err, errlen, rc, "out of memory");
	}
	int tls = h->web.cert_file != NULL;
	if (tls) {
		if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
			wm_http_free(h);
			return wm_err(err, errlen, -ENOTSUP,
				      "this libmicrohttpd has no TLS support; install one built with GnuTLS, or terminate "
				      "TLS in a proxy and drop tls_server_config");
		}
		rc = read_pem(h->web.cert_file, "certificate", &h->cert_pem, err, errlen);
		if (!rc)
			rc = read_pem(h->web.key_file, "key", &h->key_pem, err, errlen);
		if (rc) {
			wm_http_free(h);
			return rc;
		}
	}
	/* A password hash must be checkable here, not at the first scrape. */
	if (h->web.n_users && wm_web_check_password(h->web.users[0].hash, "") < 0) {
		wm_http_free(h);
		return wm_err(err, errlen, -ENOSYS,
			      "this system's libcrypt cannot check bcrypt hashes; install libxcrypt (libcrypt1)");
	}
	int fd = -1, v6 = 0;
	rc = bind_listen(listen_addr, &fd, &h->port, &v6, err, errlen);
	if (rc) {
		wm_http_free(h);
		return rc;
	}
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;
	if (tls)
		flags |= MHD_USE_TLS;
	if (v6)
		flags |= MHD_USE_IPv6;
	struct MHD_OptionItem opts[] = {
		{MHD_OPTION_LISTEN_SOCKET, fd, NULL},
		{MHD_OPTION_CONNECTION_LIMIT, WM_HTTP_CONNECTION_LIMIT, NULL},
		{MHD_OPTION_PER_IP_CONNECTION_LIMIT, WM_HTTP_PER_IP_LIMIT, NULL},
		{MHD_OPTION_CONNECTION_TIMEOUT, WM_HTTP_TIMEOUT_S, NULL},
		{MHD_OPTION_CONNECTION_MEMORY_LIMIT, WM_HTTP_MEMORY_LIMIT, NULL},
		{MHD_OPTION_THREAD_POOL_SIZE, WM_HTTP_THREADS, NULL},
		{tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, h->cert_pem},
		{tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, h->key_pem},
		{MHD_OPTION_END, 0, NULL},
	};
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (!h->d) {
		close(fd);
		wm_http_free(h);
		return wm_err(err, errlen, -EIO,
			      tls ? "cannot start the HTTPS server: is the certificate/key pair valid and matching? check "
				    "with: openssl x509 -noout -in CERT; openssl pkey -noout -in KEY"
				  : "cannot start the HTTP server (libmicrohttpd refused the options)");
	}
	char host[256];
	unsigned port_ignored;
	if (split_listen(listen_addr, host, sizeof host, &port_ignored, NULL, 0) < 0 || !host[0])
		snprintf(host, sizeof host, "%s", v6 ? "::" : "0.0.0.0");
	int n = snprintf(h->url, sizeof h->url, "%s://%s%s%s:%d", tls ? "https" : "http", v6 ? "[" : "", host,
			 v6 ? "]" : "", h->port);
	if (n < 0 || (size_t)n >= sizeof h->url)
		h->url[0] = '\0';
	*out = h;
	return 0;
}

int wm_http_port(const wm_http *h)
{
	return h ? h->port : -1;
}

const char *wm_http_url(const wm_http *h)
{
	return h ? h->url : "";
}
