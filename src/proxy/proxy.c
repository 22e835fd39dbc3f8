/* proxy.c — the LLM request proxy (proxy.h): libmicrohttpd to the client,
 * libcurl to the upstream, the request ledger in between.
 *
 * One libmicrohttpd thread serves one client connection. Its first call
 * for a request takes the arrival time; the body is collected (bounded by
 * WM_PROXY_BODY_MAX); then the upstream transfer starts on the
 * connection's curl multi handle and the thread drives it until the
 * upstream's status and headers are in, queues a response of unknown (or
 * the upstream's) length whose content reader hands out each block curl
 * delivered as soon as it is there. curl runs only when the reader has
 * nothing to give, so at most one socket read is buffered between the two
 * sides. The ledger hears of tokens from the curl write callback, as each
 * chunk passes. */
#include <curl/curl.h>
#include <errno.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/util.h"
#include "outputs/http.h"
#include "outputs/prometheus.h"
#include "proxy/llm_parse.h"
#include "proxy/proxy.h"

struct wm_proxy {
	struct MHD_Daemon *d;
	char upstream[2048]; /* without a trailing '/' */
	char url[300];
	char metrics_path[256];
	wm_meter *meter;
	wm_proxy_metrics *metrics;
	int store_text;
	int stopping;        /* set by wm_proxy_free: requests in flight end */
};

/* Per client connection: the curl handles, kept across its requests so the
 * upstream connection is kept alive too. */
typedef struct pconn {
	CURLM *multi;
	CURL *easy;
} pconn;

typedef struct preq {
	wm_proxy *p;
	struct MHD_Connection *c;
	pconn *pc;
	int refs;                 /* the request and, once queued, its response */
	char *raw_uri;            /* as the client sent it, query included */
	wm_llm_api api;
	uint64_t t_arrival_ns;
	int64_t id;               /* the ledger's; <= 0: none */
	int metrics;              /* a GET of the metrics path */
	int started;              /* the upstream transfer was added to the multi handle */
	wm_buf body;
	int too_big;
	struct curl_slist *hdrs;
	/* the upstream's answer */
	int headers_done;
	long status;
	wm_buf resp_hdrs;         /* "Name: value\r\n" lines, hop-by-hop ones left out */
	char ctype[256], cenc[64];
	int64_t content_length;   /* -1: unknown */
	wm_buf out;               /* bytes from the upstream not yet handed to the client */
	size_t out_off;
	int transfer_done;
	CURLcode result;
	char curl_err[CURL_ERROR_SIZE];
	wm_llm_stream parse;
	int parsing;
	int read_last;            /* curl's last read gave bytes: wait before the next */
	/* tokens for the ledger (note_tokens) */
	int tok_first_sent;       /* the first token went at once: time to first token */
	uint64_t tok_pending;     /* counted since, not yet reported */
	uint64_t tok_batch_ns;    /* when the first of them came */
	uint64_t tok_last_ns;     /* ... and the last */
	/* the client */
	int client_fd;
	int watch_client;         /* its socket is polled for a hang-up while waiting */
	int client_gone;
	int all_sent;             /* the reader returned the end of the stream */
	wm_buf text;              /* --store-text: the completion */
} preq;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Hop-by-hop headers (RFC 9110 7.6.1) and those curl or libmicrohttpd
 * compute for the new hop. */
static int hop_by_hop(const char *name, size_t n)
{
	static const char *const names[] = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
					    "proxy-authorization", "te", "trailer", "transfer-encoding",
					    "upgrade", "content-length", "host", "expect"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strlen(names[i]) == n && strncasecmp(names[i], name, n) == 0)
			return 1;
	return 0;
}

static void preq_unref(preq *r)
{
	if (--r->refs > 0)
		return;
	curl_slist_free_all(r->hdrs);
	wm_buf_free(&r->body);
	wm_buf_free(&r->resp_hdrs);
	wm_buf_free(&r->out);
	wm_buf_free(&r->text);
	wm_llm_stream_free(&r->parse);
	free(r->raw_uri);
	free(r);
}

/* ---- tokens to the ledger ------------------------------------------------- */

/* The first token goes to the ledger at once, stamped when its chunk came
 * (the request's time to first token); the later ones in batches stamped
 * with their last chunk's time, a batch spanning under
 * WM_PROXY_TOKEN_BATCH_NS, so that a token lands in its own sample
 * interval but for that much at an edge. A call per chunk was a lock, a
 * queue entry and the ledger's work for every token. A request's intervals
 * stay open until it ends, so a batch reported at the next chunk or at the
 * end is never late. */
#define WM_PROXY_TOKEN_BATCH_NS 5000000u

static void flush_tokens(preq *r)
{
	if (r->tok_pending && r->id > 0)
		(void)wm_meter_request_tokens(r->p->meter, r->id, r->tok_last_ns, r->tok_pending);
	r->tok_pending = 0;
}

static void note_tokens(preq *r, uint64_t tokens)
{
	uint64_t t = now_ns();
	if (!r->tok_first_sent) {
		r->tok_first_sent = 1;
		(void)wm_meter_request_tokens(r->p->meter, r->id, t, tokens);
		return;
	}
	if (r->tok_pending && t - r->tok_batch_ns >= WM_PROXY_TOKEN_BATCH_NS)
		flush_tokens(r);
	if (!r->tok_pending)
		r->tok_batch_ns = t;
	r->tok_pending += tokens;
	r->tok_last_ns = t;
}

/* ---- curl callbacks (on the connection's thread, inside pump) ------------- */

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	preq *r = arg;
	size_t len = size * n;
	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) { /* a status line: a new answer (after 1xx) */
		wm_buf_reset(&r->resp_hdrs);
		r->ctype[0] = r->cenc[0] = '\0';
		r->content_length = -1;
		return len;
	}
	if (len <= 2 && (data[0] == '\r' || data[0] == '\n')) { /* the end of the headers */
		long code = 0;
		curl_easy_getinfo(r->pc->easy, CURLINFO_RESPONSE_CODE, &code);
		if (code >= 200 || code == 0) {
			r->status = code;
			r->headers_done = 1;
		}
		return len;
	}
	const char *colon = memchr(data, ':', len);
	if (!colon)
		return len;
	size_t nlen = (size_t)(colon - data);
	const char *v = colon + 1, *end = data + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	size_t vlen = (size_t)(end - v);
	if (nlen == 12 && strncasecmp(data, "content-type", 12) == 0 && vlen < sizeof r->ctype) {
		memcpy(r->ctype, v, vlen);
		r->ctype[vlen] = '\0';
	} else if (nlen == 16 && strncasecmp(data, "content-encoding", 16) == 0 && vlen < sizeof r->cenc) {
		memcpy(r->cenc, v, vlen);
		r->cenc[vlen] = '\0';
	} else if (nlen == 14 && strncasecmp(data, "content-length", 14) == 0) {
		char tmp[32];
		uint64_t cl;
		if (vlen < sizeof tmp) {
			memcpy(tmp, v, vlen);
			tmp[vlen] = '\0';
			if (wm_parse_u64_full(tmp, &cl) == 0)
				r->content_length = (int64_t)cl;
		}
	}
	if (!hop_by_hop(data, nlen)) {
		wm_buf_append(&r->resp_hdrs, data, nlen);
		wm_buf_puts(&r->resp_hdrs, ": ");
		wm_buf_append(&r->resp_hdrs, v, vlen);
		wm_buf_puts(&r->resp_hdrs, "\r\n");
	}
	return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	preq *r = arg;
	size_t len = size * n;
	if (r->client_gone)
		return 0; /* aborts the transfer: curl closes the upstream connection */
	if (!r->parsing && r->headers_done) {
		/* Other paths are forwarded without tokens (proxy.h). */
		wm_llm_framing f = r->api == WM_LLM_OTHER ? WM_LLM_FRAME_NONE : wm_llm_framing_of(r->ctype, r->cenc);
		wm_llm_stream_init(&r->parse, f);
		/* gzip / deflate: the client gets the bytes as they came, the
		 * parser an inflated copy (llm_parse.h bounds it). */
		if (f != WM_LLM_FRAME_NONE)
			(void)wm_llm_stream_set_encoding(&r->parse, wm_llm_encoding_of(r->cenc));
		if (r->p->store_text)
			r->parse.text = &r->text;
		r->parsing = 1;
	}
	if (wm_buf_append(&r->out, data, len) < 0)
		return 0;
	uint64_t tokens = wm_llm_stream_feed(&r->parse, data, len);
	if (tokens && r->id > 0)
		note_tokens(r, tokens);
	return len;
}

static void perform(preq *r)
{
	int running = 0;
	curl_multi_perform(r->pc->multi, &running);
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(r->pc->multi, &left)))
		if (msg->msg == CURLMSG_DONE) {
			r->transfer_done = 1;
			r->result = msg->data.result;
		}
	r->read_last = r->out.len > r->out_off;
}

static int pump_ready(preq *r, int want_headers)
{
	return r->transfer_done || r->out.len > r->out_off || (want_headers && r->headers_done) ||
	       __atomic_load_n(&r->p->stopping, __ATOMIC_RELAXED);
}

/* Waits up to wait_ms for the upstream's socket (or curl's next timer) or
 * the client's (a hang-up). */
static void wait_upstream(preq *r, int wait_ms)
{
	struct curl_waitfd wfd = {.fd = r->client_fd, .events = CURL_WAIT_POLLIN, .revents = 0};
	int watch = r->watch_client && r->client_fd >= 0;
	curl_multi_poll(r->pc->multi, watch ? &wfd : NULL, watch ? 1u : 0u, wait_ms, NULL);
	if (watch && wfd.revents) {
		char c;
		ssize_t k = recv(r->client_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
		if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			r->client_gone = 1;  /* EOF or reset: the client went away */
		else if (k > 0)
			r->watch_client = 0; /* its next request (pipelined): stop watching */
	}
}

/* Brings what curl has (bytes, the headers when want_headers, the end of
 * the transfer), waiting up to wait_ms for it. After a read that gave
 * bytes the upstream's socket is most likely empty (a stream's next chunk
 * is not written yet): then it waits first, since a poll that finds bytes
 * returns at once, where a read first would be one more system call per
 * chunk that says EAGAIN. */
static void pump(preq *r, int wait_ms, int want_headers)
{
	if (!r->read_last) {
		perform(r);
		if (pump_ready(r, want_headers))
			return;
	}
	wait_upstream(r, wait_ms);
	perform(r);
}

/* ---- the response ------------------------------------------------------ */

static ssize_t read_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	preq *r = cls;
	for (;;) {
		size_t avail = r->out.len - r->out_off;
		if (avail) {
			size_t k = avail < max ? avail : max;
			memcpy(buf, r->out.data + r->out_off, k);
			r->out_off += k;
			if (r->out_off == r->out.len) {
				wm_buf_reset(&r->out);
				r->out_off = 0;
			}
			return (ssize_t)k;
		}
		if (r->client_gone || __atomic_load_n(&r->p->stopping, __ATOMIC_RELAXED))
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (r->transfer_done) {
			if (r->result != CURLE_OK)
				return MHD_CONTENT_READER_END_WITH_ERROR;
			r->all_sent = 1;
			return MHD_CONTENT_READER_END_OF_STREAM;
		}
		pump(r, 1000, 0);
	}
}

static void response_done(void *cls)
{
	preq_unref(cls);
}

/* An error of the proxy's own, in OpenAI's error shape (clients show its
 * message): "wattmeter proxy: WHAT DETAIL". */
static enum MHD_Result queue_error(preq *r, unsigned status, const char *what, const char *detail)
{
	wm_buf b;
	wm_buf_init(&b);
	wm_buf_puts(&b, "{\"error\":{\"message\":");
	char msg[1024];
	snprintf(msg, sizeof msg, "wattmeter proxy: %s%s", what, detail);
	wm_buf_json_str(&b, msg);
	wm_buf_puts(&b, ",\"type\":\"wattmeter_proxy\"}}\n");
	r->status = status;
	if (wm_buf_error(&b)) {
		wm_buf_free(&b);
		return MHD_NO;
	}
	struct MHD_Response *resp = MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_COPY);
	wm_buf_free(&b);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(r->c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result serve_metrics(preq *r)
{
	wm_buf b;
	wm_buf_init(&b);
	if (r->p->metrics)
		wm_proxy_metrics_format(r->p->metrics, &b);
	else
		wm_buf_puts(&b, "");
	if (wm_buf_error(&b)) {
		wm_buf_free(&b);
		return MHD_NO;
	}
	struct MHD_Response *resp = MHD_create_response_from_buffer(b.len, b.data ? b.data : (char *)"",
								    MHD_RESPMEM_MUST_COPY);
	wm_buf_free(&b);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", WM_PROM_CONTENT_TYPE_TEXT);
	r->status = 200;
	enum MHD_Result ret = MHD_queue_response(r->c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* ---- the request ----------------------------------------------------------- */

struct hdr_ctx {
	preq *r;
	int has_accept;
	int failed;
};

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	struct hdr_ctx *h = cls;
	if (hop_by_hop(key, strlen(key)))
		return MHD_YES;
	if (strcasecmp(key, "accept") == 0)
		h->has_accept = 1;
	wm_buf line;
	wm_buf_init(&line);
	wm_buf_puts(&line, key);
	/* "Name;" is curl's way to send a header with an empty value. */
	if (value && *value) {
		wm_buf_puts(&line, ": ");
		wm_buf_puts(&line, value);
	} else {
		wm_buf_puts(&line, ";");
	}
	struct curl_slist *l = wm_buf_error(&line) ? NULL : curl_slist_append(h->r->hdrs, line.data);
	wm_buf_free(&line);
	if (!l) {
		h->failed = 1;
		return MHD_NO;
	}
	h->r->hdrs = l;
	return MHD_YES;
}

static void ledger_begin(preq *r, const char *method)
{
	if (!r->p->meter)
		return;
	wm_llm_request rq;
	(void)wm_llm_parse_request(r->api, r->body.data, r->body.len, &rq);
	wm_buf a;
	wm_buf_init(&a);
	size_t plen = strcspn(r->raw_uri, "?#"); /* the path: a query may carry keys */
	char *path = strndup(r->raw_uri, plen);
	wm_buf_puts(&a, "{\"path\":");
	wm_buf_json_str(&a, path ? path : "");
	free(path);
	wm_buf_puts(&a, ",\"method\":");
	wm_buf_json_str(&a, method);
	if (rq.model[0]) {
		wm_buf_puts(&a, ",\"model\":");
		wm_buf_json_str(&a, rq.model);
	}
	if (r->api != WM_LLM_OTHER)
		wm_buf_puts(&a, rq.stream ? ",\"stream\":true" : ",\"stream\":false");
	if (r->p->store_text && r->api != WM_LLM_OTHER) {
		wm_buf_puts(&a, ",\"prompt_text\":");
		wm_llm_request_text(r->body.data, r->body.len, &a);
	}
	wm_buf_puts(&a, "}");
	if (!wm_buf_error(&a)) {
		int64_t id = wm_meter_request_begin(r->p->meter, r->t_arrival_ns, a.data);
		r->id = id > 0 ? id : 0;
	}
	wm_buf_free(&a);
}

static void ledger_end(preq *r, const char *outcome)
{
	if (r->id <= 0)
		return;
	flush_tokens(r);
	uint64_t t = now_ns();
	if (r->parsing) {
		uint64_t tokens = wm_llm_stream_finish(&r->parse);
		if (tokens)
			(void)wm_meter_request_tokens(r->p->meter, r->id, t, tokens);
	}
	wm_buf b;
	wm_buf_init(&b);
	wm_buf_printf(&b, "{\"status\":%ld", r->status);
	const wm_llm_stream *s = &r->parse;
	if (r->parsing && (s->completion_tokens >= 0 || s->prompt_tokens >= 0)) {
		if (s->prompt_tokens >= 0)
			wm_buf_printf(&b, ",\"prompt_tokens\":%lld", (long long)s->prompt_tokens);
		if (s->completion_tokens >= 0)
			wm_buf_printf(&b, ",\"completion_tokens\":%lld", (long long)s->completion_tokens);
		wm_buf_puts(&b, ",\"tokens_source\":\"usage\"");
	} else if (r->parsing && s->chunks) {
		wm_buf_printf(&b, ",\"completion_tokens\":%llu,\"tokens_source\":\"counted\"",
			      (unsigned long long)s->chunks);
	} else {
		wm_buf_puts(&b, ",\"tokens_source\":\"none\"");
	}
	wm_buf_puts(&b, ",\"outcome\":");
	wm_buf_json_str(&b, outcome);
	if (r->p->store_text && r->text.len) {
		wm_buf_puts(&b, ",\"completion_text\":");
		wm_buf_json_str(&b, r->text.data);
	}
	wm_buf_puts(&b, "}");
	if (!wm_buf_error(&b))
		(void)wm_meter_request_end(r->p->meter, r->id, t, b.data);
	wm_buf_free(&b);
	r->id = 0;
}

static int start_upstream(preq *r, const char *method)
{
	pconn *pc = r->pc;
	if (!pc->multi && !(pc->multi = curl_multi_init()))
		return -ENOMEM;
	if (!pc->easy && !(pc->easy = curl_easy_init()))
		return -ENOMEM;
	CURL *e = pc->easy;
	curl_easy_reset(e);
	wm_buf url;
	wm_buf_init(&url);
	wm_buf_puts(&url, r->p->upstream);
	wm_buf_puts(&url, r->raw_uri[0] == '/' ? "" : "/");
	wm_buf_puts(&url, r->raw_uri);
	struct hdr_ctx h = {.r = r};
	MHD_get_connection_values(r->c, MHD_HEADER_KIND, add_header, &h);
	if (!h.failed && !h.has_accept) /* curl adds "Accept: * / *" unless told not to */
		h.failed = !(r->hdrs = curl_slist_append(r->hdrs, "Accept:")) ? 1 : 0;
	if (!h.failed)
		h.failed = !(r->hdrs = curl_slist_append(r->hdrs, "Expect:")) ? 1 : 0;
	if (h.failed || wm_buf_error(&url)) {
		wm_buf_free(&url);
		return -ENOMEM;
	}
	curl_easy_setopt(e, CURLOPT_URL, url.data); /* curl copies it */
	wm_buf_free(&url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, WM_PROXY_CONNECT_TIMEOUT_S);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->curl_err);
	if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else {
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
		if (strcmp(method, "POST") == 0 || r->body.len) {
			curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.len);
			curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body.data ? r->body.data : "");
		}
	}
	if (curl_multi_add_handle(pc->multi, e) != CURLM_OK)
		return -ENOMEM;
	r->started = 1;
	return 0;
}

static enum MHD_Result forward(preq *r, const char *method)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->c, MHD_CONNECTION_INFO_CONNECTION_FD);
	r->client_fd = ci ? ci->connect_fd : -1;
	r->watch_client = 1;
	ledger_begin(r, method);
	/* No inactivity limit while the upstream works: a long prefill (minutes
	 * for a big prompt on a CPU) or a slow token must not get the client's
	 * connection closed as idle. Restored when the request completes. */
	MHD_set_connection_option(r->c, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
	if (start_upstream(r, method) < 0)
		return queue_error(r, 500, "out of memory", "");
	while (!r->headers_done && !r->transfer_done && !r->client_gone &&
	       !__atomic_load_n(&r->p->stopping, __ATOMIC_RELAXED))
		pump(r, 1000, 1);
	if (r->client_gone)
		return MHD_NO; /* the completion callback records it */
	if (!r->headers_done) {
		const char *why = r->curl_err[0] ? r->curl_err : curl_easy_strerror(r->result);
		return queue_error(r, 502, "the upstream did not answer: ", why);
	}
	struct MHD_Response *resp = MHD_create_response_from_callback(
		r->content_length >= 0 ? (uint64_t)r->content_length : MHD_SIZE_UNKNOWN, 16384, read_body, r,
		response_done);
	if (!resp)
		return MHD_NO;
	r->refs++; /* the response's, dropped by response_done */
	/* The upstream's headers, as they came (hop-by-hop ones aside). */
	const char *l = r->resp_hdrs.data ? r->resp_hdrs.data : "";
	while (*l) {
		const char *eol = strstr(l, "\r\n");
		if (!eol)
			break;
		const char *colon = memchr(l, ':', (size_t)(eol - l));
		if (colon) {
			char *name = strndup(l, (size_t)(colon - l));
			char *value = strndup(colon + 2, (size_t)(eol - colon - 2));
			if (name && value)
				MHD_add_response_header(resp, name, value);
			free(name);
			free(value);
		}
		l = eol + 2;
	}
	enum MHD_Result ret = MHD_queue_response(r->c, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	preq *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->p = cls;
	r->c = c;
	r->refs = 1;
	r->t_arrival_ns = now_ns();
	r->raw_uri = strdup(uri ? uri : "/");
	r->id = 0;
	r->client_fd = -1;
	r->content_length = -1;
	wm_buf_init(&r->body);
	wm_buf_init(&r->resp_hdrs);
	wm_buf_init(&r->out);
	wm_buf_init(&r->text);
	wm_llm_stream_init(&r->parse, WM_LLM_FRAME_NONE);
	if (!r->raw_uri) {
		free(r);
		return NULL;
	}
	return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **req_cls)
{
	(void)version;
	wm_proxy *p = cls;
	preq *r = *req_cls;
	if (!r)
		return MHD_NO; /* out of memory in on_uri */
	if (!r->pc) { /* the first call: the headers are in */
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		r->pc = ci ? ci->socket_context : NULL;
		if (!r->pc)
			return MHD_NO;
		r->api = wm_llm_api_of(url);
		r->metrics = p->metrics_path[0] && strcmp(url, p->metrics_path) == 0 &&
			     (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0);
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!r->too_big && r->body.len + *upload_data_size > WM_PROXY_BODY_MAX)
			r->too_big = 1;
		if (!r->too_big && wm_buf_append(&r->body, upload_data, *upload_data_size) < 0)
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->metrics)
		return serve_metrics(r);
	if (r->too_big) {
		ledger_begin(r, method);
		char lim[32];
		snprintf(lim, sizeof lim, "%u MiB", WM_PROXY_BODY_MAX >> 20);
		return queue_error(r, 413, "the request body is over ", lim);
	}
	return forward(r, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	preq *r = *req_cls;
	if (!r)
		return;
	*req_cls = NULL;
	const char *outcome = "ok";
	if (r->client_gone || (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && r->started && !r->all_sent &&
			       !(r->transfer_done && r->result != CURLE_OK)))
		outcome = "client_disconnected";
	else if (r->status == 502 || (r->transfer_done && r->result != CURLE_OK) ||
		 (r->started && !r->headers_done))
		outcome = "upstream_error";
	if (!r->metrics)
		ledger_end(r, outcome);
	if (r->started) { /* removing it mid-transfer closes the upstream connection */
		curl_multi_remove_handle(r->pc->multi, r->pc->easy);
		r->started = 0;
		/* forgets r: callbacks, header list, body, error buffer (the
		 * upstream connection stays in the multi handle's cache) */
		curl_easy_reset(r->pc->easy);
		/* back to the idle keep-alive limit (see forward) */
		MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)WM_PROXY_IDLE_TIMEOUT_S);
	}
	preq_unref(r);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	(void)cls;
	(void)c;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		*socket_context = calloc(1, sizeof(pconn)); /* NULL: its requests are refused */
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		pconn *pc = *socket_context;
		if (pc) {
			if (pc->easy)
				curl_easy_cleanup(pc->easy);
			if (pc->multi)
				curl_multi_cleanup(pc->multi);
			free(pc);
		}
		*socket_context = NULL;
	}
}

int wm_proxy_check_upstream(const char *url, char *err, size_t errlen)
{
	CURLU *u = curl_url();
	if (!u)
		return -ENOMEM;
	int rc = 0;
	char *scheme = NULL, *host = NULL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		rc = wm_err(err, errlen, -EINVAL,
			    "--upstream %s is not a URL; write http://HOST:PORT, e.g. http://127.0.0.1:11434", url);
	else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
		rc = wm_err(err, errlen, -EINVAL, "--upstream %s: the scheme must be http or https, not %s", url,
			    scheme);
	else if (strchr(url, '?') || strchr(url, '#'))
		rc = wm_err(err, errlen, -EINVAL,
			    "--upstream %s: no query or fragment; the client's path and query are appended", url);
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

int wm_proxy_start(const wm_proxy_opts *o, wm_proxy **out, char *err, size_t errlen)
{
	*out = NULL;
	int rc = wm_proxy_check_upstream(o->upstream, err, errlen);
	if (rc < 0)
		return rc;
	const char *mp = o->metrics_path ? o->metrics_path : WM_PROXY_DEFAULT_METRICS_PATH;
	if (strlen(o->upstream) >= sizeof((wm_proxy *)0)->upstream || strlen(mp) >= sizeof((wm_proxy *)0)->metrics_path)
		return wm_err(err, errlen, -EINVAL, "--upstream or --metrics-path too long");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return wm_err(err, errlen, -ENOMEM, "libcurl did not initialise");
	wm_proxy *p = calloc(1, sizeof *p);
	if (!p) {
		curl_global_cleanup();
		return wm_err(err, errlen, -ENOMEM, "out of memory");
	}
	snprintf(p->upstream, sizeof p->upstream, "%s", o->upstream);
	size_t n = strlen(p->upstream);
	while (n > 0 && p->upstream[n - 1] == '/')
		p->upstream[--n] = '\0';
	snprintf(p->metrics_path, sizeof p->metrics_path, "%s", mp);
	p->meter = o->meter;
	p->metrics = o->metrics;
	p->store_text = o->store_text;
	const char *listen = o->listen ? o->listen : WM_PROXY_DEFAULT_LISTEN;
	int fd = -1, port = 0, v6 = 0;
	rc = wm_http_bind_listen(listen, &fd, &port, &v6, err, errlen);
	if (rc < 0) {
		free(p);
		curl_global_cleanup();
		return rc;
	}
	char host[256];
	const char *colon = strrchr(listen, ':');
	size_t hl = colon ? (size_t)(colon - listen) : 0;
	if (hl >= sizeof host)
		hl = 0;
	memcpy(host, listen, hl);
	host[hl] = '\0';
	snprintf(p->url, sizeof p->url, "http://%s:%d", hl ? host : (v6 ? "[::]" : "0.0.0.0"), port);
	/* One thread per connection: a long generation holds its thread, the
	 * others are not delayed behind it. The limits are the exporter's
	 * (http.h), the deadlines not: a generation may take minutes. */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO;
	if (v6)
		flags |= MHD_USE_IPv6;
	p->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, p,
				MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)WM_HTTP_CONNECTION_LIMIT,
				MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)WM_HTTP_PER_IP_LIMIT,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)WM_PROXY_IDLE_TIMEOUT_S,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(2 * WM_HTTP_MEMORY_LIMIT),
				MHD_OPTION_URI_LOG_CALLBACK, on_uri, p,
				MHD_OPTION_NOTIFY_CONNECTION, on_connection, p,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, p,
				MHD_OPTION_END);
	if (!p->d) {
		close(fd);
		free(p);
		curl_global_cleanup();
		return wm_err(err, errlen, -EIO, "libmicrohttpd did not start on %s (threads or memory)", listen);
	}
	*out = p;
	return 0;
}

const char *wm_proxy_url(const wm_proxy *p)
{
	return p->url;
}

void wm_proxy_free(wm_proxy *p)
{
	if (!p)
		return;
	__atomic_store_n(&p->stopping, 1, __ATOMIC_RELAXED);
	if (p->d)
		MHD_stop_daemon(p->d); /* joins the connections' threads; closes the listening socket */
	free(p);
	curl_global_cleanup();
}
