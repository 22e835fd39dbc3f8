/* test_llm_parse.c — what the proxy reads in LLM API traffic
 * (proxy/llm_parse.h): endpoints, request bodies, response framing, and the
 * tokens and usage of streams cut anywhere; and the proxy's metrics. The
 * streams are the shapes OpenAI's, vLLM's and ollama's servers send. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "base/util.h"
#include "proxy/llm_parse.h"
#include "proxy/proxy_metrics.h"

static void endpoints_are_recognised_by_path_not_query(void **state)
{
	(void)state;
	assert_int_equal(wm_llm_api_of("/v1/chat/completions"), WM_LLM_OPENAI_CHAT);
	assert_int_equal(wm_llm_api_of("/v1/chat/completions?x=1"), WM_LLM_OPENAI_CHAT);
	assert_int_equal(wm_llm_api_of("/v1/completions"), WM_LLM_OPENAI_COMPLETIONS);
	assert_int_equal(wm_llm_api_of("/v1/embeddings"), WM_LLM_OPENAI_EMBEDDINGS);
	assert_int_equal(wm_llm_api_of("/api/generate"), WM_LLM_OLLAMA_GENERATE);
	assert_int_equal(wm_llm_api_of("/api/chat"), WM_LLM_OLLAMA_CHAT);
	assert_int_equal(wm_llm_api_of("/api/embed"), WM_LLM_OLLAMA_EMBED);
	assert_int_equal(wm_llm_api_of("/api/chat/"), WM_LLM_OTHER);
	assert_int_equal(wm_llm_api_of("/v1/chat/completionsX"), WM_LLM_OTHER);
	assert_int_equal(wm_llm_api_of("/v1/models"), WM_LLM_OTHER);
	assert_int_equal(wm_llm_api_of(NULL), WM_LLM_OTHER);
}

static void request_model_and_stream_with_each_apis_default(void **state)
{
	(void)state;
	wm_llm_request rq;
	const char *b = "{\"model\":\"llama3.2\",\"prompt\":\"hi\"}";
	assert_int_equal(wm_llm_parse_request(WM_LLM_OLLAMA_GENERATE, b, strlen(b), &rq), 0);
	assert_string_equal(rq.model, "llama3.2");
	assert_int_equal(rq.stream, 1); /* ollama streams unless told not to */
	assert_int_equal(wm_llm_parse_request(WM_LLM_OPENAI_COMPLETIONS, b, strlen(b), &rq), 0);
	assert_int_equal(rq.stream, 0); /* OpenAI only when told */
	b = "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
	assert_int_equal(wm_llm_parse_request(WM_LLM_OPENAI_CHAT, b, strlen(b), &rq), 0);
	assert_int_equal(rq.stream, 1);
	assert_int_equal(rq.include_usage, 1);
	b = "{\"model\":\"m\",\"stream\":false}";
	assert_int_equal(wm_llm_parse_request(WM_LLM_OLLAMA_CHAT, b, strlen(b), &rq), 0);
	assert_int_equal(rq.stream, 0);
	b = "{\"model\":\"m\",\"stream\":true}"; /* embeddings never stream */
	assert_int_equal(wm_llm_parse_request(WM_LLM_OLLAMA_EMBED, b, strlen(b), &rq), 0);
	assert_int_equal(rq.stream, 0);
	/* Not an object: forwarded all the same, the defaults filled. */
	assert_int_equal(wm_llm_parse_request(WM_LLM_OLLAMA_CHAT, "[1]", 3, &rq), -EINVAL);
	assert_string_equal(rq.model, "");
	assert_int_equal(rq.stream, 1);
	assert_int_equal(wm_llm_parse_request(WM_LLM_OPENAI_CHAT, "{\"mod", 5, &rq), -EINVAL);
}

static void a_long_model_name_is_cut_at_a_character_boundary(void **state)
{
	(void)state;
	wm_buf b;
	wm_buf_init(&b);
	wm_buf_puts(&b, "{\"model\":\"");
	for (int i = 0; i < 100; i++)
		wm_buf_puts(&b, "\xc3\xa9"); /* é: 2 bytes, 200 in all */
	wm_buf_puts(&b, "\"}");
	wm_llm_request rq;
	assert_int_equal(wm_llm_parse_request(WM_LLM_OPENAI_CHAT, b.data, b.len, &rq), 0);
	assert_int_equal(strlen(rq.model), 126); /* 63 whole characters in 127 bytes */
	assert_int_equal((unsigned char)rq.model[125], 0xa9);
	wm_buf_free(&b);
}

static void framing_by_content_type_and_encoding(void **state)
{
	(void)state;
	assert_int_equal(wm_llm_framing_of("text/event-stream; charset=utf-8", NULL), WM_LLM_FRAME_SSE);
	assert_int_equal(wm_llm_framing_of("application/x-ndjson", NULL), WM_LLM_FRAME_NDJSON);
	assert_int_equal(wm_llm_framing_of("Application/JSON", "identity"), WM_LLM_FRAME_JSON);
	/* gzip and deflate are inflated for the parser; codings it cannot undo are not parsed */
	assert_int_equal(wm_llm_framing_of("application/json", "gzip"), WM_LLM_FRAME_JSON);
	assert_int_equal(wm_llm_framing_of("text/event-stream", " Deflate "), WM_LLM_FRAME_SSE);
	assert_int_equal(wm_llm_framing_of("application/json", "br"), WM_LLM_FRAME_NONE);
	assert_int_equal(wm_llm_framing_of("application/json", "gzip, br"), WM_LLM_FRAME_NONE);
	assert_int_equal(wm_llm_encoding_of("x-gzip"), WM_LLM_ENC_GZIP);
	assert_int_equal(wm_llm_encoding_of("deflate"), WM_LLM_ENC_DEFLATE);
	assert_int_equal(wm_llm_encoding_of(""), WM_LLM_ENC_IDENTITY);
	assert_int_equal(wm_llm_encoding_of(NULL), WM_LLM_ENC_IDENTITY);
	assert_int_equal(wm_llm_encoding_of("zstd"), WM_LLM_ENC_OTHER);
	assert_int_equal(wm_llm_framing_of("text/plain", NULL), WM_LLM_FRAME_NONE);
	assert_int_equal(wm_llm_framing_of(NULL, NULL), WM_LLM_FRAME_NONE);
	assert_int_equal(wm_llm_framing_of("application/jsonx", NULL), WM_LLM_FRAME_NONE);
}

/* Feeds body in pieces of `step` bytes (0: whole); returns the chunks the
 * feeds returned, checked against s->chunks. */
static uint64_t feed(wm_llm_stream *s, const char *body, size_t step)
{
	size_t n = strlen(body), off = 0;
	uint64_t got = 0;
	while (off < n) {
		size_t k = step && step < n - off ? step : n - off;
		got += wm_llm_stream_feed(s, body + off, k);
		off += k;
	}
	got += wm_llm_stream_finish(s);
	assert_int_equal(got, s->chunks);
	return got;
}

static const char sse_chat[] =
	"data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
	"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n"
	": keep-alive comment\n\n"
	"event: message\r\n"
	"data:{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}\r\n\r\n"
	"data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"hmm\"}}]}\n\n"
	"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
	"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3,\"total_tokens\":15}}\n\n"
	"data: [DONE]\n\n";

static void sse_tokens_and_usage_in_any_cut(void **state)
{
	(void)state;
	for (size_t step = 0; step < 40; step++) {
		wm_llm_stream s;
		wm_buf text;
		wm_buf_init(&text);
		wm_llm_stream_init(&s, WM_LLM_FRAME_SSE);
		s.text = &text;
		/* the empty first delta and the finish carry no token */
		assert_int_equal(feed(&s, sse_chat, step), 3);
		assert_int_equal(s.prompt_tokens, 12);
		assert_int_equal(s.completion_tokens, 3);
		assert_int_equal(s.done, 1);
		assert_string_equal(text.data, "Hellohmm");
		wm_llm_stream_free(&s);
		wm_buf_free(&text);
	}
}

/* body compressed by zlib itself (the truth), window_bits as deflateInit2:
 * 31 gzip, 15 zlib, -15 raw; flushing every `flush_every` input bytes as a
 * streaming server does (Z_SYNC_FLUSH). Returns the length written to out. */
static size_t compress_body(const char *body, int window_bits, size_t flush_every, unsigned char *out, size_t cap)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
	size_t n = strlen(body), off = 0;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	while (off < n) {
		size_t k = flush_every < n - off ? flush_every : n - off;
		z.next_in = (unsigned char *)(uintptr_t)(body + off);
		z.avail_in = (uInt)k;
		off += k;
		assert_int_equal(deflate(&z, off == n ? Z_FINISH : Z_SYNC_FLUSH), off == n ? Z_STREAM_END : Z_OK);
	}
	deflateEnd(&z);
	return cap - z.avail_out;
}

static void feed_bytes(wm_llm_stream *s, const unsigned char *b, size_t n, size_t step, uint64_t *got)
{
	for (size_t off = 0; off < n;) {
		size_t k = step && step < n - off ? step : n - off;
		*got += wm_llm_stream_feed(s, (const char *)b + off, k);
		off += k;
	}
}

static void gzip_and_deflate_bodies_are_counted_as_the_plain_one(void **state)
{
	(void)state;
	static unsigned char z[8192];
	const int bits[] = {31, 15, -15};
	const wm_llm_encoding enc[] = {WM_LLM_ENC_GZIP, WM_LLM_ENC_DEFLATE, WM_LLM_ENC_DEFLATE};
	for (size_t b = 0; b < 3; b++)
		for (size_t step = 0; step < 30; step += 7) {
			size_t n = compress_body(sse_chat, bits[b], 50, z, sizeof z);
			wm_llm_stream s;
			wm_llm_stream_init(&s, WM_LLM_FRAME_SSE);
			assert_int_equal(wm_llm_stream_set_encoding(&s, enc[b]), 0);
			uint64_t got = 0;
			feed_bytes(&s, z, n, step, &got);
			got += wm_llm_stream_finish(&s);
			assert_int_equal(got, 3);
			assert_int_equal(s.chunks, 3);
			assert_int_equal(s.prompt_tokens, 12);
			assert_int_equal(s.completion_tokens, 3);
			assert_int_equal(s.done, 1);
			assert_int_equal(s.inflated, strlen(sse_chat));
			wm_llm_stream_free(&s);
		}
	/* two gzip members one after another (what a concatenating server sends) */
	size_t n1 = compress_body("data: {\"choices\":[{\"text\":\"a\"}]}\n\n", 31, 1000, z, sizeof z);
	size_t n2 = compress_body("data: {\"choices\":[{\"text\":\"b\"}]}\n\n", 31, 1000, z + n1, sizeof z - n1);
	wm_llm_stream s;
	wm_llm_stream_init(&s, WM_LLM_FRAME_SSE);
	assert_int_equal(wm_llm_stream_set_encoding(&s, WM_LLM_ENC_GZIP), 0);
	uint64_t got = 0;
	feed_bytes(&s, z, n1 + n2, 5, &got);
	assert_int_equal(got + wm_llm_stream_finish(&s), 2);
	wm_llm_stream_free(&s);
	/* corrupt bytes after a good chunk: what came before counts, nothing breaks */
	size_t n = compress_body(sse_chat, 31, 50, z, sizeof z);
	for (size_t i = n / 2; i < n; i++)
		z[i] ^= 0x5a;
	wm_llm_stream_init(&s, WM_LLM_FRAME_SSE);
	assert_int_equal(wm_llm_stream_set_encoding(&s, WM_LLM_ENC_GZIP), 0);
	got = 0;
	feed_bytes(&s, z, n, 3, &got);
	got += wm_llm_stream_finish(&s);
	assert_true(got <= 3 && s.chunks == got);
	wm_llm_stream_free(&s);
	assert_int_equal(wm_llm_stream_set_encoding(&s, WM_LLM_ENC_OTHER), -ENOTSUP);
	assert_int_equal(s.framing, WM_LLM_FRAME_NONE);
}

/* A bomb: 1 GiB of one line, under 1.1 MiB gzipped, is inflated only up to
 * WM_LLM_INFLATE_MAX, through the fixed window (the parser holds at most
 * WM_LLM_LINE_MAX of it), and a token before it still counts. */
static void a_decompression_bomb_is_inflated_only_to_the_bound(void **state)
{
	(void)state;
	z_stream z;
	memset(&z, 0, sizeof z);
	assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY), Z_OK);
	static unsigned char in[1 << 16], out[1 << 16];
	memset(in, 'x', sizeof in);
	const char head[] = "data: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: ";
	wm_llm_stream s;
	wm_llm_stream_init(&s, WM_LLM_FRAME_SSE);
	assert_int_equal(wm_llm_stream_set_encoding(&s, WM_LLM_ENC_GZIP), 0);
	uint64_t got = 0;
	uint64_t total = 0;
	for (size_t i = 0; i <= (1u << 30) / sizeof in; i++) {
		z.next_in = i ? in : (unsigned char *)(uintptr_t)head;
		z.avail_in = i ? (uInt)sizeof in : (uInt)strlen(head);
		do {
			z.next_out = out;
			z.avail_out = sizeof out;
			assert_int_not_equal(deflate(&z, Z_NO_FLUSH), Z_STREAM_ERROR);
			size_t k = sizeof out - z.avail_out;
			total += k;
			if (k)
				got += wm_llm_stream_feed(&s, (const char *)out, k);
		} while (z.avail_out == 0);
	}
	deflateEnd(&z);
	assert_true(total < (2u << 20));
	assert_int_equal(got + wm_llm_stream_finish(&s), 1);
	assert_int_equal(s.inflated, WM_LLM_INFLATE_MAX);
	assert_true(s.z_stopped);
	assert_true(s.pending.cap <= 2 * WM_LLM_LINE_MAX);
	wm_llm_stream_free(&s);
}

/* A stream that keeps no text is read by the scanner, one that keeps it by
 * jansson's tree: the same counts for every event, including those the
 * scanner hands to jansson (a \u escape, an exponent, deep nesting) and
 * invalid ones that count nothing. The expected figures are worked out by
 * hand from the OpenAI / ollama shapes. */
static void the_scanner_counts_as_jansson_does(void **state)
{
	(void)state;
	static const struct {
		const char *line;
		uint64_t chunks;
		int64_t prompt, completion;
		int done;
	} cases[] = {
		{"{\"choices\":[{\"delta\":{\"content\":\"a\"}},{\"text\":\"b\"},{\"delta\":{\"content\":\"\"}}]}", 2, -1, -1, 0},
		{"{\"choices\":[{\"delta\":{\"content\":\"\\n\"}}]}", 1, -1, -1, 0},          /* an escape is a character */
		{"{\"choices\":[{\"delta\":{\"content\":\"\\u00e9\"}}]}", 1, -1, -1, 0},      /* \u: jansson's */
		{"{\"choices\":[{\"delta\":{\"content\":\"\xc3\xa9\"}}]}", 1, -1, -1, 0},     /* UTF-8 */
		{"{\"choices\":[{\"delta\":{\"content\":\"\xc0\xaf\"}}]}", 0, -1, -1, 0},     /* overlong: invalid */
		{"{\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"choices\":[]}", 0, -1, -1, 0}, /* the last one counts */
		{"{\"choices\":[{\"delta\":{\"content\":\"x\",\"content\":\"\"}}]}", 0, -1, -1, 0},
		{"{\"choices\":{\"delta\":{\"content\":\"x\"}}}", 0, -1, -1, 0},               /* not an array */
		{"{\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":-1}}", 0, 7, 0, 0},   /* embeddings' shape */
		{"{\"usage\":{\"prompt_tokens\":7.0,\"completion_tokens\":3}}", 0, -1, 3, 0}, /* a real is no count */
		{"{\"usage\":{\"prompt_tokens\":1e2,\"completion_tokens\":3}}", 0, -1, 3, 0}, /* exponent: jansson's */
		{"{\"usage\":{\"prompt_tokens\":5},\"usage\":null}", 0, -1, -1, 0},
		{"{\"response\":\" a\",\"done\":false}", 1, -1, -1, 0},
		{"{\"message\":{\"role\":\"assistant\",\"thinking\":\"h\"},\"done\":true,\"prompt_eval_count\":4,"
		 "\"eval_count\":9}", 1, 4, 9, 1},
		{"{\"prompt_eval_count\":3,\"embeddings\":[[0.5,-1.25e-3]]}", 0, 3, 0, 0},
		{"{\"response\":\"a\"} x", 0, -1, -1, 0},                                      /* trailing bytes: invalid */
		{"{\"response\":\"a\",}", 0, -1, -1, 0},
		{"{\"n\":01,\"response\":\"a\"}", 0, -1, -1, 0},
		{"{\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],\"response\":\"a\"}",
		 1, -1, -1, 0},                                                                  /* deep: jansson's */
		{"[{\"response\":\"a\"}]", 0, -1, -1, 0},                                        /* not an object */
		{"{\"eval_count\":12345678901234567890,\"response\":\"a\"}", 0, -1, -1, 0},    /* too big: invalid */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		for (int keep = 0; keep < 2; keep++) {
			wm_llm_stream s;
			wm_buf text;
			wm_buf_init(&text);
			wm_llm_stream_init(&s, WM_LLM_FRAME_NDJSON);
			if (keep)
				s.text = &text;
			char line[512];
			snprintf(line, sizeof line, "%s\n", cases[i].line);
			uint64_t got = wm_llm_stream_feed(&s, line, strlen(line)) + wm_llm_stream_finish(&s);
			if (got != cases[i].chunks || s.prompt_tokens != cases[i].prompt ||
			    s.completion_tokens != cases[i].completion || s.done != cases[i].done)
				fail_msg("case %zu (%s): %llu chunks, prompt %lld, completion %lld, done %d", i,
					 keep ? "jansson" : "scanner", (unsigned long long)got, (long long)s.prompt_tokens,
					 (long long)s.completion_tokens, s.done);
			wm_llm_stream_free(&s);
			wm_buf_free(&text);
		}
}

static void ndjson_ollama_counts_and_a_last_line_without_newline(void **state)
{
	(void)state;
	const char *gen = "{\"model\":\"m\",\"response\":\" a\",\"done\":false}\n"
			  "{\"model\":\"m\",\"response\":\" b\",\"done\":false}\n\n"
			  "{\"model\":\"m\",\"response\":\"\",\"done\":true,\"prompt_eval_count\":26,\"eval_count\":2}";
	for (size_t step = 0; step < 30; step++) {
		wm_llm_stream s;
		wm_llm_stream_init(&s, WM_LLM_FRAME_NDJSON);
		assert_int_equal(feed(&s, gen, step), 2);
		assert_int_equal(s.prompt_tokens, 26);
		assert_int_equal(s.completion_tokens, 2);
		assert_int_equal(s.done, 1);
		wm_llm_stream_free(&s);
	}
	const char *chat = "{\"message\":{\"role\":\"assistant\",\"content\":\"x\"},\"done\":false}\n"
			   "{\"message\":{\"role\":\"assistant\",\"content\":\"\",\"thinking\":\"t\"},\"done\":false}\n"
			   "not json\n"
			   "{\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true}\n";
	wm_llm_stream s;
	wm_llm_stream_init(&s, WM_LLM_FRAME_NDJSON);
	assert_int_equal(feed(&s, chat, 7), 2);
	assert_int_equal(s.completion_tokens, -1); /* no counts: the caller counts chunks */
	wm_llm_stream_free(&s);
}

static void a_whole_json_answer_gives_usage_and_no_chunks(void **state)
{
	(void)state;
	const char *body = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"hello there\"}}],"
			   "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7}}";
	wm_llm_stream s;
	wm_buf text;
	wm_buf_init(&text);
	wm_llm_stream_init(&s, WM_LLM_FRAME_JSON);
	s.text = &text;
	assert_int_equal(feed(&s, body, 9), 0);
	assert_int_equal(s.prompt_tokens, 5);
	assert_int_equal(s.completion_tokens, 7);
	assert_string_equal(text.data, "hello there");
	wm_llm_stream_free(&s);
	wm_buf_free(&text);
	/* embeddings: prompt tokens only, completion 0 */
	const char *emb = "{\"model\":\"m\",\"embeddings\":[[0.1]],\"prompt_eval_count\":3}";
	wm_llm_stream_init(&s, WM_LLM_FRAME_JSON);
	feed(&s, emb, 0);
	assert_int_equal(s.prompt_tokens, 3);
	assert_int_equal(s.completion_tokens, 0);
	wm_llm_stream_free(&s);
}

static void an_overlong_line_is_skipped_and_the_next_one_parsed(void **state)
{
	(void)state;
	size_t big = WM_LLM_LINE_MAX + 10;
	char *junk = malloc(big);
	assert_non_null(junk);
	memset(junk, 'x', big);
	const char *good = "\ndata: {\"choices\":[{\"delta\":{\"content\":\"z\"}}]}\n";
	wm_llm_stream s;
	wm_llm_stream_init(&s, WM_LLM_FRAME_SSE);
	const char *pre = "data: {\"choices\":[{\"delta\":{\"content\":\"";
	uint64_t got = wm_llm_stream_feed(&s, pre, strlen(pre));
	for (size_t off = 0; off < big; off += 4096)
		got += wm_llm_stream_feed(&s, junk, big - off < 4096 ? big - off : 4096);
	assert_true(s.pending.cap <= 2 * (size_t)WM_LLM_LINE_MAX); /* never held the whole line */
	got += wm_llm_stream_feed(&s, good, strlen(good));
	got += wm_llm_stream_finish(&s);
	assert_int_equal(got, 1);
	wm_llm_stream_free(&s);
	free(junk);
}

static void prompt_text_only_on_request(void **state)
{
	(void)state;
	wm_buf b;
	wm_buf_init(&b);
	const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
	assert_int_equal(wm_llm_request_text(body, strlen(body), &b), 0);
	assert_string_equal(b.data, "[{\"role\":\"user\",\"content\":\"hi\"}]");
	wm_buf_reset(&b);
	assert_int_equal(wm_llm_request_text("nope", 4, &b), 0);
	assert_string_equal(b.data, "null");
	wm_buf_free(&b);
}

static void metrics_count_per_model_and_device_and_bound_the_models(void **state)
{
	(void)state;
	wm_proxy_metrics *pm = wm_proxy_metrics_new();
	assert_non_null(pm);
	assert_int_equal(wm_proxy_metrics_add(pm, "{\"model\":\"a\\\"b\",\"outcome\":\"ok\",\"prompt_tokens\":3,"
						  "\"completion_tokens\":4,\"energy_j\":{\"cpu\":2.5,\"gpu0\":0.05}}"),
			 0);
	assert_int_equal(wm_proxy_metrics_add(pm, "{\"model\":\"a\\\"b\",\"outcome\":\"client_disconnected\","
						  "\"prompt_tokens\":1,\"completion_tokens\":null,\"energy_j\":{\"cpu\":1}}"),
			 0);
	assert_int_equal(wm_proxy_metrics_add(pm, "not json"), -EINVAL);
	char line[160];
	for (int i = 0; i < WM_PROXY_METRICS_MAX_MODELS + 5; i++) {
		snprintf(line, sizeof line, "{\"model\":\"m%d\",\"energy_j\":{\"cpu\":0.001}}", i);
		assert_int_equal(wm_proxy_metrics_add(pm, line), 0);
	}
	wm_buf b;
	wm_buf_init(&b);
	assert_int_equal(wm_proxy_metrics_format(pm, &b), 0);
	const char *t = b.data;
	assert_non_null(strstr(t, "wattmeter_tokens_total{model=\"a\\\"b\",kind=\"prompt\"} 4\n"));
	assert_non_null(strstr(t, "wattmeter_tokens_total{model=\"a\\\"b\",kind=\"completion\"} 4\n"));
	assert_non_null(strstr(t, "wattmeter_requests_total{model=\"a\\\"b\",outcome=\"client_disconnected\"} 1\n"));
	assert_non_null(strstr(t, "wattmeter_request_energy_joules_total{model=\"a\\\"b\",device=\"cpu\"} 3.5\n"));
	assert_non_null(strstr(t, "wattmeter_request_energy_joules_bucket{model=\"a\\\"b\",device=\"cpu\",le=\"1\"} 1\n"));
	assert_non_null(strstr(t, "wattmeter_request_energy_joules_bucket{model=\"a\\\"b\",device=\"cpu\",le=\"5\"} 2\n"));
	assert_non_null(strstr(t, "wattmeter_request_energy_joules_bucket{model=\"a\\\"b\",device=\"cpu\",le=\"+Inf\"} 2\n"));
	assert_non_null(strstr(t, "wattmeter_request_energy_joules_count{model=\"a\\\"b\",device=\"gpu0\"} 1\n"));
	/* 64 named models (a"b and m0..m62), the other 6 under _other */
	assert_non_null(strstr(t, "wattmeter_requests_total{model=\"m62\",outcome=\"other\"} 1\n"));
	assert_null(strstr(t, "model=\"m63\""));
	assert_non_null(strstr(t, "wattmeter_requests_total{model=\"_other\",outcome=\"other\"} 6\n"));
	wm_buf_free(&b);
	wm_proxy_metrics_free(pm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(endpoints_are_recognised_by_path_not_query),
		cmocka_unit_test(request_model_and_stream_with_each_apis_default),
		cmocka_unit_test(a_long_model_name_is_cut_at_a_character_boundary),
		cmocka_unit_test(framing_by_content_type_and_encoding),
		cmocka_unit_test(sse_tokens_and_usage_in_any_cut),
		cmocka_unit_test(ndjson_ollama_counts_and_a_last_line_without_newline),
		cmocka_unit_test(the_scanner_counts_as_jansson_does),
		cmocka_unit_test(gzip_and_deflate_bodies_are_counted_as_the_plain_one),
		cmocka_unit_test(a_decompression_bomb_is_inflated_only_to_the_bound),
		cmocka_unit_test(a_whole_json_answer_gives_usage_and_no_chunks),
		cmocka_unit_test(an_overlong_line_is_skipped_and_the_next_one_parsed),
		cmocka_unit_test(prompt_text_only_on_request),
		cmocka_unit_test(metrics_count_per_model_and_device_and_bound_the_models),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
