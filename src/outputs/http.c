/* http.c — see http.h. libmicrohttpd does the HTTP (parsing, keep-alive,
 * TLS through GnuTLS); this file binds the socket itself (so a failure says
 * why, and port 0 reports the port chosen), routes, negotiates the format,
 * compresses, checks passwords on its own small pool, keeps a registry of
 * connections to enforce per-phase deadlines and to choose whom to drop
 * when full, and sets GnuTLS' priorities and client-certificate policy.
 *
 * Closing a connection from outside libmicrohttpd: shutdown(2) of its
 * socket, under the registry lock. libmicrohttpd then reads end-of-file and
 * closes it itself. The fd stays valid while the connection is in the
 * registry: libmicrohttpd tells us it is closed (NOTIFY_CLOSED, which takes
 * the lock) before it closes the socket (daemon.c, MHD_cleanup_connections).
 */
#include "outputs/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <linux/tcp.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
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

enum phase { PH_NEW, PH_BUSY, PH_IDLE, PH_PARTIAL, PH_DOOMED };
enum auth_state { AUTH_NONE, AUTH_PENDING, AUTH_OK, AUTH_BAD };

typedef struct addr_group addr_group;

/* One connection, from libmicrohttpd's NOTIFY_STARTED to NOTIFY_CLOSED
 * (its socket context). Guarded by wm_http.reg_lock, except the auth
 * fields (pool_lock). */
typedef struct conn {
	struct conn *prev, *next;    /* every connection */
	struct conn *gprev, *gnext;  /* its address's */
	addr_group *g;
	struct MHD_Connection *mc;
	int fd;
	enum phase phase;
	uint64_t since_ns;           /* start of the phase */
	uint64_t rx_bytes;           /* TCP bytes received when it went idle */
	/* the request's password check on the pool */
	enum auth_state auth;
	long auth_user;              /* index into web.users, -1: unknown user */
	char *auth_pass;             /* copy for the pool, wiped after */
} conn;

/* The connections of one client address. */
struct addr_group {
	addr_group *next;            /* hash chain */
	unsigned char key[17];       /* family, then the address */
	unsigned live;               /* not doomed */
	conn *head;
};

#define GROUP_BUCKETS 256u

struct wm_http {
	struct MHD_Daemon *d;
	int port;
	char url[128];
	char warnings[1024];
	double stale_after_s;
	wm_web_config web;     /* owned copy */
	char *cert_pem, *key_pem, *ca_pem;
	char priorities[512];

	pthread_mutex_t lock;  /* guards cur, refs, last_publish_ns, cache */
	snap *cur;
	uint64_t last_publish_ns;
	user_cache *cache;     /* [web.n_users] */

	/* connection registry */
	pthread_mutex_t reg_lock;
	conn *conns;
	unsigned live;         /* connections not doomed */
	addr_group *groups[GROUP_BUCKETS];
	uint64_t dropped;      /* closed by a deadline or for a newcomer */

	/* the reaper */
	pthread_mutex_t reap_lock;
	pthread_cond_t reap_cond;
	int reap_stop, reaper_started;
	pthread_t reaper;

	/* the password-check pool */
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cond;
	conn *queue[WM_HTTP_AUTH_QUEUE];
	unsigned q_head, q_len;
	int pool_stop;
	unsigned n_workers;
	pthread_t workers[WM_HTTP_AUTH_THREADS];
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

/* ---- connection registry: deadlines and who is dropped when full -------- */

static void group_key(const struct sockaddr *sa, unsigned char key[17])
{
	memset(key, 0, 17);
	if (!sa)
		return;
	key[0] = (unsigned char)sa->sa_family;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)sa;
		memcpy(key + 1, &a->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)sa;
		memcpy(key + 1, &a->sin6_addr, 16);
	}
}

static unsigned group_hash(const unsigned char key[17])
{
	uint32_t x = 2166136261u; /* FNV-1a */
	for (int i = 0; i < 17; i++)
		x = (x ^ key[i]) * 16777619u;
	return x % GROUP_BUCKETS;
}

/* The group of key, created if absent (NULL: out of memory). reg_lock held. */
static addr_group *group_get(wm_http *h, const unsigned char key[17])
{
	unsigned b = group_hash(key);
	for (addr_group *g = h->groups[b]; g; g = g->next)
		if (memcmp(g->key, key, 17) == 0)
			return g;
	addr_group *g = calloc(1, sizeof *g);
	if (!g)
		return NULL;
	memcpy(g->key, key, 17);
	g->next = h->groups[b];
	h->groups[b] = g;
	return g;
}

static void group_put(wm_http *h, addr_group *g)
{
	if (g->head)
		return;
	addr_group **pp = &h->groups[group_hash(g->key)];
	while (*pp && *pp != g)
		pp = &(*pp)->next;
	if (*pp)
		*pp = g->next;
	free(g);
}

/* Closes k from outside libmicrohttpd (see the top of this file). reg_lock held. */
static void conn_doom(wm_http *h, conn *k)
{
	if (k->phase == PH_DOOMED)
		return;
	(void)shutdown(k->fd, SHUT_RDWR);
	k->phase = PH_DOOMED;
	k->g->live--;
	h->live--;
	h->dropped++;
}

/* Victim order for a newcomer (lower is dropped first): slow ones (more
 * than WM_HTTP_SLOW_S without complete headers, or an answer still going
 * out after WM_HTTP_HEADER_DEADLINE_S: a reader too slow to take it), then
 * by the size of their address's share, then idle before fresh, then the
 * oldest. A request in progress is otherwise never a candidate (-1). */
static int victim_class(const conn *k, uint64_t now)
{
	const uint64_t s = 1000000000u;
	uint64_t age = now - k->since_ns;
	if (k->phase == PH_DOOMED)
		return -1;
	if (k->phase == PH_BUSY)
		return age > WM_HTTP_HEADER_DEADLINE_S * s ? 0 : -1;
	if (k->phase != PH_IDLE && age > WM_HTTP_SLOW_S * s)
		return 0;
	return k->phase == PH_IDLE ? 1 : 2;
}

static int victim_before(int ca, const conn *a, int cb, const conn *b)
{
	if ((ca == 0) != (cb == 0))
		return ca == 0;
	if (a->g->live != b->g->live)
		return a->g->live > b->g->live;
	if (ca != cb)
		return ca < cb;
	return a->since_ns < b->since_ns;
}

/* The connection to drop, from group g only or from all (g NULL). */
static conn *pick_victim(wm_http *h, addr_group *g, uint64_t now)
{
	conn *best = NULL;
	int best_class = -1;
	for (conn *k = g ? g->head : h->conns; k; k = g ? k->gnext : k->next) {
		int c = victim_class(k, now);
		if (c < 0)
			continue;
		if (!best || victim_before(c, k, best_class, best)) {
			best = k;
			best_class = c;
		}
	}
	return best;
}

static uint64_t tcp_bytes_received(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof ti;
	memset(&ti, 0, sizeof ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
	    len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof ti.tcpi_bytes_received)
		return UINT64_MAX; /* unknown: the idle timeout still bounds it */
	return ti.tcpi_bytes_received;
}

static conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

/* GnuTLS calls this when the client's certificate arrives (during the
 * handshake): non-zero fails the handshake, as Go's crypto/tls does. */
static int verify_client_cert(gnutls_session_t s)
{
	unsigned n = 0;
	if (!gnutls_certificate_get_peers(s, &n) || n == 0)
		return 0; /* none given: GNUTLS_CERT_REQUIRE already refused that where required */
	gnutls_typed_vdata_st data = {.type = GNUTLS_DT_KEY_PURPOSE_OID,
				      .data = (unsigned char *)(uintptr_t)GNUTLS_KP_TLS_WWW_CLIENT};
	unsigned status = 0;
	if (gnutls_certificate_verify_peers(s, &data, 1, &status) < 0 || status != 0)
		return -1;
	return 0;
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	wm_http *h = cls;
	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		conn *k = *socket_context;
		if (!k)
			return;
		pthread_mutex_lock(&h->reg_lock);
		if (k->phase != PH_DOOMED) {
			k->g->live--;
			h->live--;
		}
		if (k->prev)
			k->prev->next = k->next;
		else
			h->conns = k->next;
		if (k->next)
			k->next->prev = k->prev;
		if (k->gprev)
			k->gprev->gnext = k->gnext;
		else
			k->g->head = k->gnext;
		if (k->gnext)
			k->gnext->gprev = k->gprev;
		group_put(h, k->g);
		pthread_mutex_unlock(&h->reg_lock);
		if (k->auth_pass) /* never left there, but a password is wiped */
			explicit_bzero(k->auth_pass, strlen(k->auth_pass));
		free(k->auth_pass);
		free(k);
		*socket_context = NULL;
		return;
	}
	/* STARTED: libmicrohttpd has accepted it, nothing is read yet. */
	const union MHD_ConnectionInfo *fi = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
	const union MHD_ConnectionInfo *ai = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!fi)
		return;
	if (h->web.cert_file) {
		const union MHD_ConnectionInfo *ti = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_GNUTLS_SESSION);
		gnutls_session_t ts = ti ? (gnutls_session_t)ti->tls_session : NULL;
		int pol = h->web.client_auth;
		if (ts && pol != WM_CLIENT_AUTH_NONE) {
			gnutls_certificate_server_set_request(
				ts, pol == WM_CLIENT_AUTH_REQUIRE_ANY || pol == WM_CLIENT_AUTH_REQUIRE_VERIFY
					    ? GNUTLS_CERT_REQUIRE
					    : GNUTLS_CERT_REQUEST);
			if (pol == WM_CLIENT_AUTH_VERIFY_IF_GIVEN || pol == WM_CLIENT_AUTH_REQUIRE_VERIFY)
				gnutls_session_set_verify_function(ts, verify_client_cert);
		} else if (ts) {
			gnutls_certificate_server_set_request(ts, GNUTLS_CERT_IGNORE);
		}
	}
	conn *k = calloc(1, sizeof *k);
	if (!k) {
		(void)shutdown(fi->connect_fd, SHUT_RDWR);
		return;
	}
	unsigned char key[17];
	group_key(ai ? ai->client_addr : NULL, key);
	k->mc = mc;
	k->fd = fi->connect_fd;
	k->phase = PH_NEW;
	k->auth_user = -1;
	pthread_mutex_lock(&h->reg_lock);
	/* Read under the lock, as every since_ns is written: no age is then
	 * negative (an unsigned wrap would make a fresh request look slow). */
	uint64_t now = wm_now_mono_ns();
	k->since_ns = now;
	addr_group *g = group_get(h, key);
	if (!g) {
		pthread_mutex_unlock(&h->reg_lock);
		(void)shutdown(k->fd, SHUT_RDWR);
		free(k);
		return;
	}
	k->g = g;
	k->next = h->conns;
	if (h->conns)
		h->conns->prev = k;
	h->conns = k;
	k->gnext = g->head;
	if (g->head)
		g->head->gprev = k;
	g->head = k;
	g->live++;
	h->live++;
	*socket_context = k;
	/* Full: drop someone (maybe the newcomer, if all others are busy). */
	while (g->live > WM_HTTP_PER_IP_LIMIT) {
		conn *v = pick_victim(h, g, now);
		if (!v && k->phase == PH_DOOMED)
			break;
		conn_doom(h, v ? v : k);
	}
	while (h->live > WM_HTTP_CONNECTION_LIMIT) {
		conn *v = pick_victim(h, NULL, now);
		if (!v && k->phase == PH_DOOMED)
			break;
		conn_doom(h, v ? v : k);
	}
	pthread_mutex_unlock(&h->reg_lock);
}

/* A request's headers are complete (first call of the access handler). */
static void conn_request_begins(wm_http *h, conn *k)
{
	pthread_mutex_lock(&h->reg_lock);
	if (k->phase != PH_DOOMED) {
		k->phase = PH_BUSY;
		k->since_ns = wm_now_mono_ns();
	}
	pthread_mutex_unlock(&h->reg_lock);
	k->auth = AUTH_NONE; /* no check is queued for it: the pool is done with k */
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode toe)
{
	(void)toe;
	wm_http *h = cls;
	*req_cls = NULL;
	conn *k = conn_of(c);
	if (!k)
		return;
	uint64_t rx = tcp_bytes_received(k->fd);
	pthread_mutex_lock(&h->reg_lock);
	if (k->phase != PH_DOOMED) {
		k->phase = PH_IDLE;
		k->since_ns = wm_now_mono_ns();
		k->rx_bytes = rx;
	}
	pthread_mutex_unlock(&h->reg_lock);
}

static void reap_once(wm_http *h)
{
	const uint64_t s = 1000000000u;
	pthread_mutex_lock(&h->reg_lock);
	uint64_t now = wm_now_mono_ns();
	for (conn *k = h->conns; k; k = k->next) {
		uint64_t age = now - k->since_ns;
		switch (k->phase) {
		case PH_NEW:
		case PH_PARTIAL:
			if (age > WM_HTTP_HEADER_DEADLINE_S * s)
				conn_doom(h, k);
			break;
		case PH_BUSY:
			if (age > WM_HTTP_REQUEST_DEADLINE_S * s)
				conn_doom(h, k);
			break;
		case PH_IDLE: {
			/* Bytes after the last answer: the next request has begun. */
			uint64_t rx = tcp_bytes_received(k->fd);
			if (rx != UINT64_MAX && k->rx_bytes != UINT64_MAX && rx > k->rx_bytes) {
				k->phase = PH_PARTIAL;
				k->since_ns = now;
			} else if (age > WM_HTTP_IDLE_TIMEOUT_S * s) {
				conn_doom(h, k);
			}
			break;
		}
		case PH_DOOMED: break;
		}
	}
	pthread_mutex_unlock(&h->reg_lock);
}

static void *reaper_main(void *arg)
{
	wm_http *h = arg;
	pthread_mutex_lock(&h->reap_lock);
	while (!h->reap_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)WM_HTTP_REAP_PERIOD_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&h->reap_cond, &h->reap_lock, &ts);
		if (h->reap_stop)
			break;
		pthread_mutex_unlock(&h->reap_lock);
		reap_once(h);
		pthread_mutex_lock(&h->reap_lock);
	}
	pthread_mutex_unlock(&h->reap_lock);
	return NULL;
}

/* ---- the password-check pool ------------------------------------------- */

static void cache_store(wm_http *h, size_t i, const char *pass)
{
	char *copy = strdup(pass);
	if (!copy)
		return; /* only the cache is lost */
	pthread_mutex_lock(&h->lock);
	if (h->cache[i].password) {
		explicit_bzero(h->cache[i].password, strlen(h->cache[i].password));
		free(h->cache[i].password);
	}
	h->cache[i].password = copy;
	pthread_mutex_unlock(&h->lock);
}

static void wipe_free(char *p)
{
	if (p) {
		explicit_bzero(p, strlen(p));
		free(p);
	}
}

static void *auth_worker(void *arg)
{
	wm_http *h = arg;
	/* Low priority (nice 10, ~1/10 of a nice-0 thread's share): a flood
	 * of checks takes CPU from no one, while a first check on a busy
	 * machine still ends within a second or so. Linux applies nice per
	 * thread. */
	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
	pthread_mutex_lock(&h->pool_lock);
	for (;;) {
		while (!h->q_len && !h->pool_stop)
			pthread_cond_wait(&h->pool_cond, &h->pool_lock);
		if (!h->q_len)
			break; /* stopping, nothing left */
		conn *k = h->queue[h->q_head];
		h->q_head = (h->q_head + 1) % WM_HTTP_AUTH_QUEUE;
		h->q_len--;
		int stopping = h->pool_stop;
		char *pass = k->auth_pass;
		k->auth_pass = NULL;
		long u = k->auth_user;
		pthread_mutex_unlock(&h->pool_lock);
		int ok = 0;
		if (!stopping && pass) {
			/* An unknown user costs as much as a known one: no timing
			 * difference tells which names exist. */
			const char *hash = h->web.users[u >= 0 ? (size_t)u : 0].hash;
			ok = wm_web_check_password(hash, pass) == 1 && u >= 0;
			if (ok)
				cache_store(h, (size_t)u, pass);
		}
		wipe_free(pass);
		pthread_mutex_lock(&h->pool_lock);
		k->auth = ok ? AUTH_OK : AUTH_BAD;
		pthread_mutex_unlock(&h->pool_lock);
		MHD_resume_connection(k->mc);
		pthread_mutex_lock(&h->pool_lock);
	}
	pthread_mutex_unlock(&h->pool_lock);
	return NULL;
}

static void pool_stop(wm_http *h)
{
	pthread_mutex_lock(&h->pool_lock);
	h->pool_stop = 1;
	pthread_cond_broadcast(&h->pool_cond);
	pthread_mutex_unlock(&h->pool_lock);
	for (unsigned i = 0; i < h->n_workers; i++)
		pthread_join(h->workers[i], NULL);
	h->n_workers = 0;
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

/* Whether the request's credential is good. A password verified before
 * is compared here, in constant time (the server thread never runs
 * bcrypt); any other goes to the pool: the connection is suspended until a
 * worker has checked it and resumed it (AUTH_PENDING), or, with the pool's
 * queue full, refused at once (returned as -1: 429). */
static int authorise(wm_http *h, struct MHD_Connection *c, conn *k)
{
	if (k) {
		pthread_mutex_lock(&h->pool_lock);
		enum auth_state st = k->auth;
		pthread_mutex_unlock(&h->pool_lock);
		if (st == AUTH_OK || st == AUTH_BAD)
			return st; /* the pool's answer, after the resume */
	}
	char *pass = NULL;
	char *user = MHD_basic_auth_get_username_password(c, &pass);
	int ret = AUTH_BAD;
	if (user && pass) {
		size_t i = 0;
		while (i < h->web.n_users && strcmp(h->web.users[i].name, user) != 0)
			i++;
		int cached = 0;
		if (i < h->web.n_users) {
			pthread_mutex_lock(&h->lock);
			cached = h->cache[i].password && str_eq_ct(h->cache[i].password, pass);
			pthread_mutex_unlock(&h->lock);
		}
		if (cached) {
			ret = AUTH_OK;
		} else if (k) {
			char *copy = strdup(pass);
			pthread_mutex_lock(&h->pool_lock);
			if (!copy || h->pool_stop || h->q_len >= WM_HTTP_AUTH_QUEUE) {
				ret = -1;
			} else {
				k->auth_pass = copy;
				copy = NULL;
				k->auth_user = i < h->web.n_users ? (long)i : -1;
				k->auth = AUTH_PENDING;
				/* Suspend before a worker can see it: it resumes. */
				MHD_suspend_connection(c);
				h->queue[(h->q_head + h->q_len) % WM_HTTP_AUTH_QUEUE] = k;
				h->q_len++;
				pthread_cond_signal(&h->pool_cond);
				ret = AUTH_PENDING;
			}
			pthread_mutex_unlock(&h->pool_lock);
			wipe_free(copy);
		} else {
			ret = -1; /* not tracked (out of memory at accept): no pool */
		}
	}
	if (pass) {
		explicit_bzero(pass, strlen(pass));
		MHD_free(pass);
	}
	if (user)
		MHD_free(user);
	return ret;
}

static enum MHD_Result queue_auth_fail(struct MHD_Connection *c)
{
	static const char body[] = "unauthorised: give a user and password from basic_auth_users\n";
	struct MHD_Response *r = MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	/* Closed after a refusal: a password guesser pays a new connection
	 * per guess, which halves the rate one client can keep up. */
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	enum MHD_Result ret = MHD_queue_basic_auth_fail_response(c, "wattmeter", r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result queue_busy(struct MHD_Connection *c)
{
	static const char body[] = "too many password checks at once: retry in a second\n";
	struct MHD_Response *r = MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_TOO_MANY_REQUESTS, r);
	MHD_destroy_response(r);
	return ret;
}

/* The request announces a body (which no route takes). */
static int has_body(struct MHD_Connection *c)
{
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
	return te || (cl && strcmp(cl, "0") != 0);
}

static char first_call_marker;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls)
{
	(void)version;
	(void)upload_data;
	wm_http *h = cls;
	int get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
	int head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	conn *k = conn_of(c);
	if (*req_cls == NULL) {
		/* First call: the headers are in. A request without a body is
		 * answered at the next call, so that libmicrohttpd keeps the
		 * connection alive (an answer queued now closes it); one with a
		 * body, or a method we refuse, is answered now and the
		 * connection closed: its body is never read. */
		*req_cls = &first_call_marker;
		if (k)
			conn_request_begins(h, k);
		if (get || head) {
			if (!has_body(c))
				return MHD_YES;
		}
	}
	*upload_data_size = 0;
	if (!get && !head)
		return queue_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
				  "method not allowed: use GET or HEAD\n");
	if (h->web.n_users) {
		int a = authorise(h, c, k);
		if (a == AUTH_PENDING)
			return MHD_YES; /* suspended; called again once checked */
		if (a < 0)
			return queue_busy(c);
		if (a != AUTH_OK)
			return queue_auth_fail(c);
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

int wm_http_bind_listen(const char *addr, int *fd_out, int *port_out, int *v6_out, char *err, size_t errlen)
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
		if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, WM_HTTP_LISTEN_BACKLOG) == 0) {
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

/* ssh's rule for private keys: readable by the owner only. */
static void check_key_mode(wm_http *h, const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0 || !(st.st_mode & (S_IRWXG | S_IRWXO)))
		return;
	size_t n = strlen(h->warnings);
	snprintf(h->warnings + n, sizeof h->warnings - n,
		 "the TLS key file %s is readable by %s (mode %04o): anyone who reads it can impersonate this "
		 "exporter; chmod 600 %s\n",
		 path, st.st_mode & S_IRWXO ? "every user" : "its group", (unsigned)(st.st_mode & 07777), path);
}

void wm_http_free(wm_http *h)
{
	if (!h)
		return;
	/* Every suspended connection is resumed first: libmicrohttpd must not
	 * be stopped with one (its workers drain their queue). */
	pool_stop(h);
	if (h->reaper_started) {
		pthread_mutex_lock(&h->reap_lock);
		h->reap_stop = 1;
		pthread_cond_signal(&h->reap_cond);
		pthread_mutex_unlock(&h->reap_lock);
		pthread_join(h->reaper, NULL);
	}
	if (h->d)
		MHD_stop_daemon(h->d); /* joins its threads; closes the listening socket */
	if (h->cur)
		snap_unref_locked(h->cur); /* no scrape is left to race with */
	if (h->cache) {
		for (size_t i = 0; i < h->web.n_users; i++)
			wipe_free(h->cache[i].password);
		free(h->cache);
	}
	wipe_free(h->key_pem);
	free(h->cert_pem);
	free(h->ca_pem);
	for (unsigned b = 0; b < GROUP_BUCKETS; b++) /* empty once the daemon closed them all */
		while (h->groups[b]) {
			addr_group *g = h->groups[b];
			h->groups[b] = g->next;
			free(g);
		}
	wm_web_config_release(&h->web);
	pthread_mutex_destroy(&h->lock);
	pthread_mutex_destroy(&h->reg_lock);
	pthread_mutex_destroy(&h->reap_lock);
	pthread_cond_destroy(&h->reap_cond);
	pthread_mutex_destroy(&h->pool_lock);
	pthread_cond_destroy(&h->pool_cond);
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
	pthread_mutex_init(&h->reg_lock, NULL);
	pthread_mutex_init(&h->reap_lock, NULL);
	pthread_mutex_init(&h->pool_lock, NULL);
	pthread_cond_init(&h->pool_cond, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->reap_cond, &ca);
	pthread_condattr_destroy(&ca);
	h->stale_after_s = o && o->stale_after_s > 0 ? o->stale_after_s : 10.0;
	int rc = wm_web_config_copy(&h->web, o ? o->web : NULL);
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
		if (!rc && h->web.client_ca_file)
			rc = read_pem(h->web.client_ca_file, "client CA", &h->ca_pem, err, errlen);
		if (!rc && wm_web_tls_priorities(&h->web, h->priorities, sizeof h->priorities) < 0)
			rc = wm_err(err, errlen, -EINVAL, "web config: TLS settings too long");
		if (!rc) {
			const char *bad = NULL;
			gnutls_priority_t pc;
			if (gnutls_priority_init(&pc, h->priorities, &bad) == 0)
				gnutls_priority_deinit(pc);
			else
				rc = wm_err(err, errlen, -EINVAL,
					    "this GnuTLS refuses the TLS settings at \"%.40s\"; check min_version, "
					    "cipher_suites and curve_preferences",
					    bad ? bad : "?");
		}
		if (rc) {
			wm_http_free(h);
			return rc;
		}
		check_key_mode(h, h->web.key_file);
	}
	/* A password hash must be checkable here, not at the first scrape. */
	if (h->web.n_users && wm_web_check_password(h->web.users[0].hash, "") < 0) {
		wm_http_free(h);
		return wm_err(err, errlen, -ENOSYS,
			      "this system's libcrypt cannot check bcrypt hashes; install libxcrypt (libcrypt1)");
	}
	int fd = -1, v6 = 0;
	rc = wm_http_bind_listen(listen_addr, &fd, &h->port, &v6, err, errlen);
	if (rc) {
		wm_http_free(h);
		return rc;
	}
	/* poll(2), not epoll: libmicrohttpd's epoll loop (0.9.75, and its
	 * master of 2025 too) drains events 128 at a time and, when a batch
	 * is exactly full, waits again with the whole timeout (up to ours,
	 * 35 s) before it handles what it drained. A worker at its connection
	 * limit whose connections we all close at once (a slowloris burst of
	 * 256 victims = 2 x 128) then sleeps on them: its listen socket is out
	 * of its epoll set and nothing else wakes it, so new scrapes queue
	 * unanswered (seen: 256 closed connections in the worker's ready list,
	 * epoll_wait(..., 34988 ms)). poll is level-triggered and rescans
	 * every socket each round; at our limits (<= 512 sockets over two
	 * workers) that costs microseconds. */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME;
	if (tls)
		flags |= MHD_USE_TLS;
	if (v6)
		flags |= MHD_USE_IPv6;
	/* libmicrohttpd's own limits sit above ours: connections we dropped
	 * are still counted by it until it has read their end-of-file, and its
	 * limit would refuse the newcomer instead. Its timeout (inactivity)
	 * is a backstop behind the reaper's deadlines. */
	struct MHD_OptionItem opts[] = {
		{MHD_OPTION_LISTEN_SOCKET, fd, NULL},
		{MHD_OPTION_CONNECTION_LIMIT, 2 * WM_HTTP_CONNECTION_LIMIT, NULL},
		{MHD_OPTION_CONNECTION_TIMEOUT, WM_HTTP_IDLE_TIMEOUT_S + 5, NULL},
		{MHD_OPTION_CONNECTION_MEMORY_LIMIT, WM_HTTP_MEMORY_LIMIT, NULL},
		{MHD_OPTION_THREAD_POOL_SIZE, WM_HTTP_THREADS, NULL},
		{MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, h},
		{MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, h},
		{tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, h->cert_pem},
		{tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, h->key_pem},
		{tls ? MHD_OPTION_HTTPS_PRIORITIES : MHD_OPTION_END, 0, h->priorities},
		{h->ca_pem ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0, h->ca_pem},
		{MHD_OPTION_END, 0, NULL},
	};
	/* An END in the middle ends the array: move the unused TLS slots last. */
	size_t n_opts = 0;
	for (size_t i = 0; i < WM_ARRAY_LEN(opts); i++)
		if (opts[i].option != MHD_OPTION_END)
			opts[n_opts++] = opts[i];
	opts[n_opts] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	if (h->web.n_users) {
		for (unsigned i = 0; i < WM_HTTP_AUTH_THREADS; i++) {
			if (pthread_create(&h->workers[i], NULL, auth_worker, h) != 0)
				break;
			h->n_workers++;
		}
		if (!h->n_workers) {
			close(fd);
			wm_http_free(h);
			return wm_err(err, errlen, -EAGAIN, "cannot start the password-check threads");
		}
	}
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (!h->d) {
		close(fd);
		wm_http_free(h);
		return wm_err(err, errlen, -EIO,
			      tls ? "cannot start the HTTPS server: is the certificate/key pair valid and matching? check "
				    "with: openssl x509 -noout -in CERT; openssl pkey -noout -in KEY"
				  : "cannot start the HTTP server (libmicrohttpd refused the options)");
	}
	if (pthread_create(&h->reaper, NULL, reaper_main, h) == 0)
		h->reaper_started = 1;
	else {
		wm_http_free(h);
		return wm_err(err, errlen, -EAGAIN, "cannot start the connection reaper thread");
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

const char *wm_http_warnings(const wm_http *h)
{
	return h ? h->warnings : "";
}

int wm_http_port(const wm_http *h)
{
	return h ? h->port : -1;
}

const char *wm_http_url(const wm_http *h)
{
	return h ? h->url : "";
}
