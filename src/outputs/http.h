/* http.h — the exporter's HTTP side: libmicrohttpd serving the last
 * published metrics snapshot.
 *
 * The sampler thread publishes a new snapshot (both exposition formats) each
 * sample: wm_http_publish swaps a pointer under a small mutex. A scrape takes
 * a reference to the current snapshot under the same mutex and hands its
 * bytes to libmicrohttpd without copying; the reference is dropped when the
 * response is freed. A scrape never touches hardware, the meter, or its lock,
 * and a slow client never delays a publish (it holds its own reference).
 *
 * Routes: GET/HEAD /metrics (content negotiation, gzip), / (a landing page),
 * /healthz (200 while samples arrive, 503 once they stop); anything else 404,
 * other methods 405. With basic_auth_users every route asks for a password
 * (401 otherwise, 429 while the password checkers are saturated); with
 * tls_server_config it is HTTPS only (TLS 1.2+, ECDHE, AEAD by default;
 * client certificates per client_auth_type). HTTP/1.1 connections are kept
 * alive between requests, within the limits below.
 */
#ifndef WM_OUTPUTS_HTTP_H
#define WM_OUTPUTS_HTTP_H

#include <stddef.h>

#include "outputs/web_config.h"

#define WM_HTTP_DEFAULT_LISTEN "127.0.0.1:5001"

/* Limits against hostile clients (docs/exporter.md, "Limits"). A client
 * past them is cut by the server; the sampler never sees it.
 *
 * Every connection is in one phase: new (accepted, the request's headers
 * not yet complete: the TLS handshake is in this phase), busy (headers in,
 * the answer being made or sent), idle (keep-alive, between requests) or
 * partial (bytes of the next request arrived on an idle connection, its
 * headers not yet complete). A reaper thread, every
 * WM_HTTP_REAP_PERIOD_MS, closes a connection whose phase outlived its
 * deadline: headers must be complete WM_HTTP_HEADER_DEADLINE_S after the
 * connection or the next request's first byte, however slowly they trickle
 * in (libmicrohttpd's own timeout restarts at every byte, which is what
 * slowloris exploits); an answer must be out WM_HTTP_REQUEST_DEADLINE_S
 * after its headers; an idle connection is closed after
 * WM_HTTP_IDLE_TIMEOUT_S.
 *
 * Past WM_HTTP_PER_IP_LIMIT connections from one address, or
 * WM_HTTP_CONNECTION_LIMIT in all, a new connection is accepted and an
 * older one is closed instead: first one slower than WM_HTTP_SLOW_S without
 * complete headers (or still sending an answer after
 * WM_HTTP_HEADER_DEADLINE_S: a slow reader), then an idle one, then the
 * oldest still without headers; among those, from the address holding the
 * most connections. A request in progress is otherwise never dropped for a
 * newcomer, and a fresh connection (the scraper's) outlives every older
 * slow one. */
#define WM_HTTP_CONNECTION_LIMIT 256u
#define WM_HTTP_PER_IP_LIMIT 128u      /* Prometheus opens one; exporter_load.py 100 */
#define WM_HTTP_HEADER_DEADLINE_S 5u
#define WM_HTTP_REQUEST_DEADLINE_S 30u
#define WM_HTTP_IDLE_TIMEOUT_S 30u     /* keep-alive; Prometheus' usual 15 s interval reuses it */
#define WM_HTTP_SLOW_S 1u
#define WM_HTTP_REAP_PERIOD_MS 250u
#define WM_HTTP_LISTEN_BACKLOG 1024
#define WM_HTTP_MEMORY_LIMIT (32u * 1024u) /* per connection: bounds header size (431/413) */
#define WM_HTTP_THREADS 2u             /* libmicrohttpd's: they never run bcrypt */

/* Password checks (bcrypt, ~50-200 ms each) run on WM_HTTP_AUTH_THREADS
 * threads at nice 10, never on the server's; a request waiting
 * for one is suspended. At most WM_HTTP_AUTH_QUEUE checks wait; past that a
 * request whose credential is not already verified gets 429 at once. A
 * credential once verified is remembered (per user) and compared in
 * constant time on the server thread: it never waits behind an attacker. */
#define WM_HTTP_AUTH_THREADS 2u
#define WM_HTTP_AUTH_QUEUE 4u

typedef struct wm_http_opts {
	const char *listen;            /* "HOST:PORT", "[V6]:PORT", ":PORT" (all interfaces);
	                                  NULL: WM_HTTP_DEFAULT_LISTEN; port 0 picks a free one */
	const wm_web_config *web;      /* NULL: plain HTTP, no auth; copied */
	double stale_after_s;          /* /healthz turns 503 after this long without a
	                                  publish; 0: 10 s */
} wm_http_opts;

typedef struct wm_http wm_http;

/* Binds, reads the TLS PEM files, starts libmicrohttpd's threads. 0, or
 * -errno with a message naming the address or file and the fix. */
int wm_http_start(const wm_http_opts *o, wm_http **out, char *err, size_t errlen);
/* The syntax of a --listen value alone (nothing is resolved or bound): 0 or
 * -EINVAL with the message wm_http_start would give, for a command line
 * to refuse before anything starts. */
int wm_http_check_listen(const char *listen, char *err, size_t errlen);

/* Binds and listens on a --listen value (SOCK_CLOEXEC|SOCK_NONBLOCK,
 * SO_REUSEADDR, WM_HTTP_LISTEN_BACKLOG): the fd, the bound port and whether
 * it is IPv6. 0, or -errno with a message naming the address and the fix.
 * Shared with the proxy (src/proxy/proxy.c). */
int wm_http_bind_listen(const char *listen, int *fd_out, int *port_out, int *v6_out, char *err, size_t errlen);

/* The bound port (the chosen one when asked for 0), and "http(s)://host:port". */
int wm_http_port(const wm_http *h);
const char *wm_http_url(const wm_http *h);

/* Publishes a snapshot. Takes ownership of text and om (malloc'd, freed
 * when the last scrape using them is done, also on failure). 0 or -ENOMEM. */
int wm_http_publish(wm_http *h, char *text, size_t text_len, char *om, size_t om_len);

/* Warnings found at start (e.g. a TLS key file readable by others), one per
 * line; "" if none. */
const char *wm_http_warnings(const wm_http *h);

/* Stops the server (in-flight responses finish or are cut) and frees it. */
void wm_http_free(wm_http *h);

#endif
