/* fuzz_llm.c — the proxy's parsers of LLM traffic (proxy/llm_parse.h) on
 * arbitrary bytes. The first byte picks what is parsed:
 *   even: a request body for API (byte >> 1) % 7 — the model name must be
 *         NUL-terminated valid UTF-8 that fits, stream and include_usage 0/1;
 *   odd:  a response body in framing (byte >> 1) % 3 + 1 (JSON, SSE,
 *         NDJSON), fed whole and then cut at positions taken from the
 *         second byte — both feeds must give the same chunks, usage and
 *         done, and the chunks returned must add up to s.chunks; and a
 *         third feed that keeps no text (its events read by the scanner,
 *         not jansson's tree) must count the same.
 *         Bits 5-6 of the first byte add a Content-Encoding:
 *           1, 2: the body is compressed here by zlib (1 gzip, 2 deflate,
 *              zlib or raw by the second byte's low bit), flushed every few
 *              bytes as a streaming server does, and fed cut to an encoded
 *              stream: it must read exactly as the plain body does;
 *           3: the bytes themselves are the encoded body (gzip or deflate by
 *              the second byte): corrupt, truncated, concatenated input —
 *              any cut must read the same, never past WM_LLM_INFLATE_MAX. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "proxy/llm_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* body compressed as a streaming server sends it (a sync flush every
 * `every` bytes); malloc'd, its length in *out_n; NULL on failure. */
static unsigned char *compress_body(const char *body, size_t n, int window_bits, size_t every, size_t *out_n)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	if (deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return NULL;
	size_t cap = deflateBound(&z, (uLong)n) + 6 * (n / every + 2) + 64;
	unsigned char *out = malloc(cap);
	z.next_out = out;
	z.avail_out = (uInt)cap;
	size_t off = 0;
	int ok = out != NULL;
	do {
		size_t k = every < n - off ? every : n - off;
		z.next_in = (unsigned char *)(uintptr_t)(body + off);
		z.avail_in = (uInt)k;
		off += k;
		int want = off == n ? Z_STREAM_END : Z_OK;
		ok = ok && deflate(&z, off == n ? Z_FINISH : Z_SYNC_FLUSH) == want;
	} while (ok && off < n);
	deflateEnd(&z);
	if (!ok) {
		free(out);
		return NULL;
	}
	*out_n = cap - z.avail_out;
	return out;
}

static void same(const wm_llm_stream *a, const wm_buf *ta, const wm_llm_stream *c, const wm_buf *tc)
{
	if (a->chunks != c->chunks || a->prompt_tokens != c->prompt_tokens ||
	    a->completion_tokens != c->completion_tokens || a->done != c->done || ta->len != tc->len ||
	    (ta->len && memcmp(ta->data, tc->data, ta->len) != 0))
		abort();
}

static void feed_all(wm_llm_stream *s, const char *body, size_t n, unsigned step)
{
	uint64_t got = 0;
	size_t off = 0;
	while (off < n) {
		size_t k = step ? step : n;
		if (k > n - off)
			k = n - off;
		got += wm_llm_stream_feed(s, body + off, k);
		off += k;
		step = step ? (step * 7 + 3) % 61 + 1 : 0; /* uneven cuts */
	}
	got += wm_llm_stream_finish(s);
	if (got != s->chunks)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint8_t mode = data[0], cut = data[1];
	/* Exact-size heap copy so ASan flags any read past the end. */
	size_t n = size - 2;
	char *body = malloc(n ? n : 1);
	if (!body)
		return 0;
	memcpy(body, data + 2, n);
	if ((mode & 1) == 0) {
		wm_llm_request rq;
		(void)wm_llm_parse_request((wm_llm_api)((mode >> 1) % 7), body, n, &rq);
		size_t len = strnlen(rq.model, sizeof rq.model);
		if (len == sizeof rq.model || (rq.stream != 0 && rq.stream != 1) ||
		    (rq.include_usage != 0 && rq.include_usage != 1))
			abort();
		for (size_t i = 0; i < len;) {
			size_t k = wm_utf8_seq_len((const unsigned char *)rq.model + i);
			if (k == 0)
				abort();
			i += k;
		}
		wm_buf b;
		wm_buf_init(&b);
		(void)wm_llm_request_text(body, n, &b);
		wm_buf_free(&b);
	} else {
		wm_llm_framing f = (wm_llm_framing)((mode >> 1) % 3 + 1);
		unsigned coding = (mode >> 5) & 3;
		wm_llm_encoding enc = coding == 1 || (coding == 3 && (cut & 1)) ? WM_LLM_ENC_GZIP : WM_LLM_ENC_DEFLATE;
		wm_llm_stream a, c;
		wm_buf ta, tc;
		wm_buf_init(&ta);
		wm_buf_init(&tc);
		wm_llm_stream_init(&a, f);
		wm_llm_stream_init(&c, f);
		a.text = &ta;
		c.text = &tc;
		if (coding == 3 && (wm_llm_stream_set_encoding(&a, enc) < 0 || wm_llm_stream_set_encoding(&c, enc) < 0))
			abort();
		feed_all(&a, body, n, 0);
		feed_all(&c, body, n, cut % 17 + 1);
		same(&a, &ta, &c, &tc);
		wm_llm_stream b;
		wm_buf tb;
		wm_buf_init(&tb);
		wm_llm_stream_init(&b, f);
		if (coding == 3 && wm_llm_stream_set_encoding(&b, enc) < 0)
			abort();
		feed_all(&b, body, n, cut % 23 + 1);
		same(&a, &tb, &b, &tb); /* b keeps no text: its counts only */
		wm_llm_stream_free(&b);
		if (coding == 3 && (a.inflated > WM_LLM_INFLATE_MAX || a.inflated != c.inflated))
			abort();
		if ((coding == 1 || coding == 2) && n) {
			int bits = coding == 1 ? 31 : (cut & 1) ? -15 : 15;
			size_t zn = 0;
			unsigned char *zb = compress_body(body, n, bits, cut % 61 + 1, &zn);
			if (zb) {
				wm_llm_stream e;
				wm_buf te;
				wm_buf_init(&te);
				wm_llm_stream_init(&e, f);
				e.text = &te;
				if (wm_llm_stream_set_encoding(&e, enc) < 0)
					abort();
				feed_all(&e, (const char *)zb, zn, cut % 13 + 1);
				same(&a, &ta, &e, &te);
				if (e.inflated != n || e.z_stopped)
					abort();
				wm_llm_stream_free(&e);
				wm_buf_free(&te);
				free(zb);
			}
		}
		wm_llm_stream_free(&a);
		wm_llm_stream_free(&c);
		wm_buf_free(&ta);
		wm_buf_free(&tc);
	}
	free(body);
	return 0;
}
