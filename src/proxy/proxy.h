/* proxy.h — `wattmeter proxy`: an HTTP reverse proxy in front of an LLM
 * server that gives each request to the meter's request ledger
 * (wattmeter.h "requests"): begun at its arrival, its tokens as the stream
 * shows them, ended with its status, usage and outcome.
 *
 * The client side is libmicrohttpd, one thread per connection; the upstream
 * side libcurl, driven from that same thread (a multi handle per client
 * connection, so the upstream connection is kept alive with the client's).
 * A response is handed to the client as the upstream's bytes arrive: the
 * content reader returns whatever curl delivered and only then waits for
 * more, so SSE / NDJSON / chunked streams are not buffered and time to first
 * token and inter-token gaps are the upstream's. Headers pass both ways
 * untouched (hop-by-hop ones aside: Connection, Keep-Alive,
 * Transfer-Encoding, TE, Trailer, Upgrade, Proxy-*, Expect; Host is the
 * upstream's) and are never logged or recorded. While it waits for the
 * upstream the thread watches the client's socket too: a client that hangs
 * up mid-stream ends the upstream transfer at once (its connection closed)
 * and its request is recorded as client_disconnected.
 *
 * The proxy's own metrics (proxy_metrics.h) answer GET on metrics_path; every
 * other path is forwarded. */
#ifndef WM_PROXY_PROXY_H
#define WM_PROXY_PROXY_H

#include <stddef.h>

#include "outputs/http.h"
#include "proxy/proxy_metrics.h"
#include "wattmeter.h"

#define WM_PROXY_DEFAULT_LISTEN "127.0.0.1:11435"
#define WM_PROXY_DEFAULT_METRICS_PATH "/metrics"
/* A request body past this is refused with 413 (and recorded). */
#define WM_PROXY_BODY_MAX (64u << 20)
#define WM_PROXY_CONNECT_TIMEOUT_S 10L
/* A client connection with no request in flight is closed after this
 * (the exporter's keep-alive limit, src/outputs/http.h); while a request is
 * in flight there is none: a generation may pause for minutes. */
#define WM_PROXY_IDLE_TIMEOUT_S (WM_HTTP_IDLE_TIMEOUT_S + 5u)

typedef struct wm_proxy_opts {
	const char *listen;       /* HOST:PORT as wm_http_check_listen; NULL: the default */
	const char *upstream;     /* http(s)://host[:port][/prefix] */
	wm_meter *meter;          /* the ledger; NULL: forward only */
	int store_text;           /* 1: the prompt and completion text go to the ledger */
	const char *metrics_path; /* NULL: WM_PROXY_DEFAULT_METRICS_PATH; "" none */
	wm_proxy_metrics *metrics; /* NULL: no /metrics */
} wm_proxy_opts;

typedef struct wm_proxy wm_proxy;

/* Checks the upstream URL (scheme http or https, a host): 0 or -EINVAL
 * with a message. */
int wm_proxy_check_upstream(const char *url, char *err, size_t errlen);
/* Binds, starts the server. 0, or -errno with a message naming the
 * address and the fix. */
int wm_proxy_start(const wm_proxy_opts *o, wm_proxy **out, char *err, size_t errlen);
/* "http://host:port" as bound. */
const char *wm_proxy_url(const wm_proxy *p);
/* Stops accepting, ends the requests in flight (their upstream transfers
 * cut), frees. */
void wm_proxy_free(wm_proxy *p);

#endif
