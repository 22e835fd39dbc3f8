/* fuzz_llm.c — the proxy's parsers of LLM traffic (proxy/llm_parse.h) on
 * arbitrary bytes. The first byte picks what is parsed:
 *   even: a request body for API (byte >> 1) % 7 — the model name must be
 *         NUL-terminated valid UTF-8 that fits, stream and include_usage 0/1;
 *   odd:  a response body in framing (byte >> 1) % 3 + 1 (JSON, SSE,
 *         NDJSON), fed whole and then cut at positions taken from the
 *         second byte — both feeds must give the same chunks, usage and
 *         done, and the chunks returned must add up to s.chunks. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/llm_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
		wm_llm_stream a, c;
		wm_buf ta, tc;
		wm_buf_init(&ta);
		wm_buf_init(&tc);
		wm_llm_stream_init(&a, f);
		wm_llm_stream_init(&c, f);
		a.text = &ta;
		c.text = &tc;
		feed_all(&a, body, n, 0);
		feed_all(&c, body, n, cut % 17 + 1);
		if (a.chunks != c.chunks || a.prompt_tokens != c.prompt_tokens ||
		    a.completion_tokens != c.completion_tokens || a.done != c.done || ta.len != tc.len ||
		    (ta.len && memcmp(ta.data, tc.data, ta.len) != 0))
			abort();
		wm_llm_stream_free(&a);
		wm_llm_stream_free(&c);
		wm_buf_free(&ta);
		wm_buf_free(&tc);
	}
	free(body);
	return 0;
}
