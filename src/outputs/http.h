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
 * (401 otherwise); with tls_server_config it is HTTPS only.
 */
#ifndef WM_OUTPUTS_HTTP_H
#define WM_OUTPUTS_HTTP_H

#include <stddef.h>

#include "outputs/web_config.h"

#define WM_HTTP_DEFAULT_LISTEN "127.0.0.1:5001"
/* Server limits (libmicrohttpd options), chosen for a scraper or a few plus
 * a benchmark at 100 concurrent connections; a client past them is refused
 * or cut by the server, never by the sampler. */
#define WM_HTTP_CONNECTION_LIMIT 256u
#define WM_HTTP_PER_IP_LIMIT 128u      /* Prometheus opens one; the benchmark 100 */
#define WM_HTTP_TIMEOUT_S 10u          /* idle or slow (slowloris) clients are closed */
#define WM_HTTP_MEMORY_LIMIT (32u * 1024u) /* per connection: bounds header size (431/413) */
#define WM_HTTP_THREADS 2u             /* one bcrypt check (~50 ms) does not stall others */

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

/* The bound port (the chosen one when asked for 0), and "http(s)://host:port". */
int wm_http_port(const wm_http *h);
const char *wm_http_url(const wm_http *h);

/* Publishes a snapshot. Takes ownership of text and om (malloc'd, freed
 * when the last scrape using them is done, also on failure). 0 or -ENOMEM. */
int wm_http_publish(wm_http *h, char *text, size_t text_len, char *om, size_t om_len);

/* Stops the server (in-flight responses finish or are cut) and frees it. */
void wm_http_free(wm_http *h);

#endif
