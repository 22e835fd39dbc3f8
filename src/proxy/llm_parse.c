/* llm_parse.c — parsing of LLM API requests and responses (llm_parse.h). */
#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "proxy/llm_parse.h"

wm_llm_api wm_llm_api_of(const char *path)
{
	static const struct {
		const char *path;
		wm_llm_api api;
	} table[] = {
		{"/v1/chat/completions", WM_LLM_OPENAI_CHAT},
		{"/v1/completions", WM_LLM_OPENAI_COMPLETIONS},
		{"/v1/embeddings", WM_LLM_OPENAI_EMBEDDINGS},
		{"/api/generate", WM_LLM_OLLAMA_GENERATE},
		{"/api/chat", WM_LLM_OLLAMA_CHAT},
		{"/api/embed", WM_LLM_OLLAMA_EMBED},
		{"/api/embeddings", WM_LLM_OLLAMA_EMBED},
	};
	if (!path)
		return WM_LLM_OTHER;
	size_t n = strcspn(path, "?#");
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if (strlen(table[i].path) == n && memcmp(table[i].path, path, n) == 0)
			return table[i].api;
	return WM_LLM_OTHER;
}

/* The longest prefix of s that fits in cap-1 bytes without cutting a
 * UTF-8 sequence (an invalid byte ends it: the name is then cut there). */
static void copy_utf8(char *dst, size_t cap, const char *s)
{
	size_t i = 0;
	while (s[i]) {
		size_t k = wm_utf8_seq_len((const unsigned char *)s + i);
		if (k == 0 || i + k >= cap)
			break;
		i += k;
	}
	memcpy(dst, s, i);
	dst[i] = '\0';
}

static json_t *load_object(const char *data, size_t len)
{
	if (!data || len == 0)
		return NULL;
	json_t *o = json_loadb(data, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (o && !json_is_object(o)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int wm_llm_parse_request(wm_llm_api api, const char *body, size_t len, wm_llm_request *out)
{
	memset(out, 0, sizeof *out);
	/* ollama streams unless told "stream": false; OpenAI only when told. */
	out->stream = api == WM_LLM_OLLAMA_GENERATE || api == WM_LLM_OLLAMA_CHAT;
	json_t *o = load_object(body, len);
	if (!o)
		return -EINVAL;
	const char *model = json_string_value(json_object_get(o, "model"));
	if (model)
		copy_utf8(out->model, sizeof out->model, model);
	json_t *st = json_object_get(o, "stream");
	if (json_is_boolean(st) && api != WM_LLM_OPENAI_EMBEDDINGS && api != WM_LLM_OLLAMA_EMBED)
		out->stream = json_is_true(st);
	json_t *so = json_object_get(o, "stream_options");
	out->include_usage = json_is_true(json_object_get(so, "include_usage"));
	json_decref(o);
	return 0;
}

int wm_llm_request_text(const char *body, size_t len, wm_buf *b)
{
	json_t *o = load_object(body, len);
	json_t *v = NULL;
	static const char *const keys[] = {"messages", "prompt", "input"};
	for (size_t i = 0; o && !v && i < sizeof keys / sizeof keys[0]; i++)
		v = json_object_get(o, keys[i]);
	int rc = 0;
	if (!v) {
		rc = wm_buf_puts(b, "null");
	} else {
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		rc = s ? wm_buf_puts(b, s) : -ENOMEM;
		free(s);
	}
	json_decref(o);
	return rc;
}

/* The media type of a Content-Type, without parameters, is `want`. */
static int media_is(const char *ct, const char *want)
{
	while (*ct == ' ' || *ct == '\t')
		ct++;
	size_t n = strcspn(ct, "; \t");
	return strlen(want) == n && strncasecmp(ct, want, n) == 0;
}

wm_llm_encoding wm_llm_encoding_of(const char *content_encoding)
{
	if (!content_encoding)
		return WM_LLM_ENC_IDENTITY;
	const char *ce = content_encoding;
	while (*ce == ' ' || *ce == '\t')
		ce++;
	size_t n = strlen(ce);
	while (n && (ce[n - 1] == ' ' || ce[n - 1] == '\t'))
		n--;
	if (n == 0 || (n == 8 && strncasecmp(ce, "identity", 8) == 0))
		return WM_LLM_ENC_IDENTITY;
	if ((n == 4 && strncasecmp(ce, "gzip", 4) == 0) || (n == 6 && strncasecmp(ce, "x-gzip", 6) == 0))
		return WM_LLM_ENC_GZIP;
	if (n == 7 && strncasecmp(ce, "deflate", 7) == 0)
		return WM_LLM_ENC_DEFLATE;
	return WM_LLM_ENC_OTHER;
}

wm_llm_framing wm_llm_framing_of(const char *content_type, const char *content_encoding)
{
	if (wm_llm_encoding_of(content_encoding) == WM_LLM_ENC_OTHER)
		return WM_LLM_FRAME_NONE;
	if (!content_type)
		return WM_LLM_FRAME_NONE;
	if (media_is(content_type, "text/event-stream"))
		return WM_LLM_FRAME_SSE;
	if (media_is(content_type, "application/x-ndjson") || media_is(content_type, "application/ndjson") ||
	    media_is(content_type, "application/jsonl") || media_is(content_type, "application/json-seq"))
		return WM_LLM_FRAME_NDJSON;
	if (media_is(content_type, "application/json"))
		return WM_LLM_FRAME_JSON;
	return WM_LLM_FRAME_NONE;
}

void wm_llm_stream_init(wm_llm_stream *s, wm_llm_framing framing)
{
	memset(s, 0, sizeof *s);
	s->framing = framing;
	wm_buf_init(&s->pending);
	s->prompt_tokens = -1;
	s->completion_tokens = -1;
}

static void z_end(wm_llm_stream *s)
{
	if (s->z) {
		inflateEnd(s->z);
		free(s->z);
		s->z = NULL;
	}
}

void wm_llm_stream_free(wm_llm_stream *s)
{
	wm_buf_free(&s->pending);
	z_end(s);
}

/* windowBits: 15 + 16 gzip, 15 zlib, -15 raw deflate. */
static int z_begin(wm_llm_stream *s, int window_bits)
{
	z_stream *z = calloc(1, sizeof *z);
	if (!z)
		return -ENOMEM;
	if (inflateInit2(z, window_bits) != Z_OK) {
		free(z);
		return -ENOMEM;
	}
	s->z = z;
	return 0;
}

int wm_llm_stream_set_encoding(wm_llm_stream *s, wm_llm_encoding enc)
{
	z_end(s);
	int rc = 0;
	if (enc == WM_LLM_ENC_GZIP)
		rc = z_begin(s, 15 + 16);
	else if (enc == WM_LLM_ENC_DEFLATE && (rc = z_begin(s, 15)) == 0)
		s->z_sniff = 1;
	else if (enc == WM_LLM_ENC_OTHER)
		rc = -ENOTSUP;
	if (rc < 0)
		s->framing = WM_LLM_FRAME_NONE;
	return rc;
}

/* A non-negative integer member, else -1. */
static int64_t count_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	return (int64_t)json_integer_value(v);
}

/* A non-empty string member: a piece of the completion (appended to text). */
static int has_text(json_t *o, const char *key, wm_buf *text)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_string(v) || json_string_length(v) == 0)
		return 0;
	if (text)
		wm_buf_append(text, json_string_value(v), json_string_length(v));
	return 1;
}

/* One event of a stream (an SSE data object, an NDJSON line) or a whole
 * body: its content chunks, and the usage it carries. Every API's shape is
 * looked for in every event: the framing, not the path, says what is
 * parsed, so a server on another path that speaks either API is counted. */
static uint64_t take_event(wm_llm_stream *s, json_t *o, int streamed)
{
	uint64_t chunks = 0;
	/* OpenAI: choices[].delta.content (chat), choices[].text (completions);
	 * reasoning models stream their thinking as delta.reasoning_content. */
	json_t *choices = json_object_get(o, "choices");
	size_t i;
	json_t *ch;
	json_array_foreach(choices, i, ch) {
		json_t *delta = json_object_get(ch, "delta");
		int got = has_text(delta, "content", s->text) | has_text(delta, "reasoning_content", s->text) |
			  has_text(ch, "text", s->text);
		chunks += got != 0;
		if (!streamed) /* a whole answer: its text only, never a chunk */
			(void)has_text(json_object_get(ch, "message"), "content", s->text);
	}
	json_t *usage = json_object_get(o, "usage");
	if (json_is_object(usage)) {
		int64_t p = count_of(usage, "prompt_tokens"), c = count_of(usage, "completion_tokens");
		if (p >= 0)
			s->prompt_tokens = p;
		if (c >= 0)
			s->completion_tokens = c;
		else if (p >= 0 && s->completion_tokens < 0)
			s->completion_tokens = 0; /* embeddings: prompt tokens only */
	}
	/* ollama: response / message.content (+ thinking), done with counts. */
	int got = has_text(o, "response", s->text) | has_text(o, "thinking", s->text);
	json_t *msg = json_object_get(o, "message");
	got |= has_text(msg, "content", s->text) | has_text(msg, "thinking", s->text);
	chunks += got != 0;
	int64_t p = count_of(o, "prompt_eval_count"), c = count_of(o, "eval_count");
	if (p >= 0)
		s->prompt_tokens = p;
	if (c >= 0)
		s->completion_tokens = c;
	else if (p >= 0 && s->completion_tokens < 0 && json_object_get(o, "embeddings"))
		s->completion_tokens = 0;
	if (json_is_true(json_object_get(o, "done")))
		s->done = 1;
	if (!streamed)
		return 0;
	s->chunks += chunks;
	return chunks;
}

static uint64_t take_json(wm_llm_stream *s, const char *data, size_t len, int streamed)
{
	json_t *o = load_object(data, len);
	if (!o)
		return 0;
	uint64_t n = take_event(s, o, streamed);
	json_decref(o);
	return n;
}

/* One complete line of a stream (without its newline; a trailing CR cut). */
static uint64_t take_line(wm_llm_stream *s, const char *line, size_t len)
{
	if (len && line[len - 1] == '\r')
		len--;
	if (s->framing == WM_LLM_FRAME_NDJSON)
		return len ? take_json(s, line, len, 1) : 0;
	/* SSE: "data:" with an optional space; other fields and comments
	 * (event:, id:, retry:, ": keep-alive") carry no tokens. */
	if (len < 5 || memcmp(line, "data:", 5) != 0)
		return 0;
	line += 5;
	len -= 5;
	if (len && line[0] == ' ') {
		line++;
		len--;
	}
	if (len == 6 && memcmp(line, "[DONE]", 6) == 0) {
		s->done = 1;
		return 0;
	}
	return take_json(s, line, len, 1);
}

static uint64_t feed_plain(wm_llm_stream *s, const char *data, size_t len)
{
	if (s->framing == WM_LLM_FRAME_JSON) {
		if (s->skipping || s->pending.len + len > WM_LLM_BODY_MAX) {
			s->skipping = 1;
			wm_buf_reset(&s->pending);
		} else {
			wm_buf_append(&s->pending, data, len);
		}
		return 0;
	}
	uint64_t n = 0;
	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl ? (size_t)(nl - data) : len;
		if (!s->skipping && s->pending.len + take > WM_LLM_LINE_MAX) {
			s->skipping = 1;
			wm_buf_reset(&s->pending);
		}
		if (!s->skipping) {
			if (!nl) {
				wm_buf_append(&s->pending, data, take);
			} else if (s->pending.len) {
				wm_buf_append(&s->pending, data, take);
				if (!wm_buf_error(&s->pending))
					n += take_line(s, s->pending.data, s->pending.len);
				wm_buf_reset(&s->pending);
			} else {
				n += take_line(s, data, take); /* the common case: no copy */
			}
		}
		if (!nl)
			break;
		s->skipping = 0;
		data = nl + 1;
		len -= take + 1;
	}
	if (wm_buf_error(&s->pending)) { /* out of memory: drop the line */
		wm_buf_free(&s->pending);
		wm_buf_init(&s->pending);
		s->skipping = 1;
	}
	return n;
}

/* Inflates data through a WM_LLM_INFLATE_CHUNK window into the parser.
 * A gzip body may be several members, one after another. */
static uint64_t inflate_into(wm_llm_stream *s, const char *data, size_t len)
{
	z_stream *z = s->z;
	unsigned char out[WM_LLM_INFLATE_CHUNK];
	uint64_t n = 0;
	z->next_in = (unsigned char *)(uintptr_t)data;
	z->avail_in = (uInt)len;
	while (!s->z_stopped) {
		uint64_t room = WM_LLM_INFLATE_MAX - s->inflated;
		uInt cap = room < sizeof out ? (uInt)room : (uInt)sizeof out;
		z->next_out = out;
		z->avail_out = cap;
		int zr = inflate(z, Z_NO_FLUSH);
		size_t got = (size_t)(z->next_out - out);
		s->inflated += got;
		if (got)
			n += feed_plain(s, (const char *)out, got);
		if (zr == Z_STREAM_END) {
			if (!z->avail_in)
				break;
			if (inflateReset(z) != Z_OK) /* the next gzip member */
				s->z_stopped = 1;
			continue;
		}
		if (zr != Z_OK && zr != Z_BUF_ERROR)
			s->z_stopped = 1; /* corrupt: what came before it is counted, the rest not */
		else if (s->inflated >= WM_LLM_INFLATE_MAX)
			s->z_stopped = 1; /* a bomb: the rest is not inflated */
		else if (!z->avail_in && z->avail_out)
			break; /* all taken, nothing held back */
		else if (zr == Z_BUF_ERROR && !got)
			break; /* no progress possible until more comes */
	}
	z->next_in = NULL;
	z->avail_in = 0;
	return n;
}

/* "deflate" is the zlib format by the RFC (a 2-byte header: CM 8, a window
 * of at most 32 KiB, a check that the pair is a multiple of 31), but some
 * servers send raw deflate: the first two bytes, held until both came (so
 * any cut of the body reads the same), say which. */
static uint64_t feed_encoded(wm_llm_stream *s, const char *data, size_t len)
{
	if (s->z_sniff) {
		while (len && s->z_head_n < 2) {
			s->z_head[s->z_head_n++] = (unsigned char)*data++;
			len--;
		}
		if (s->z_head_n < 2)
			return 0;
		s->z_sniff = 0;
		unsigned h = (unsigned)s->z_head[0] << 8 | s->z_head[1];
		int zlib_ok = (s->z_head[0] & 0x0f) == 8 && (s->z_head[0] >> 4) <= 7 && h % 31 == 0;
		if (!zlib_ok && inflateReset2(s->z, -15) != Z_OK)
			s->z_stopped = 1;
		uint64_t n = inflate_into(s, (const char *)s->z_head, 2);
		return len ? n + inflate_into(s, data, len) : n;
	}
	return inflate_into(s, data, len);
}

uint64_t wm_llm_stream_feed(wm_llm_stream *s, const char *data, size_t len)
{
	if (s->framing == WM_LLM_FRAME_NONE || len == 0)
		return 0;
	if (!s->z)
		return feed_plain(s, data, len);
	uint64_t n = 0;
	while (len) { /* zlib counts in uInt */
		size_t k = len < (1u << 30) ? len : (1u << 30);
		n += feed_encoded(s, data, k);
		data += k;
		len -= k;
	}
	return n;
}

uint64_t wm_llm_stream_finish(wm_llm_stream *s)
{
	uint64_t n = 0;
	if (!s->skipping && s->pending.len && !wm_buf_error(&s->pending)) {
		if (s->framing == WM_LLM_FRAME_JSON)
			n = take_json(s, s->pending.data, s->pending.len, 0);
		else if (s->framing != WM_LLM_FRAME_NONE)
			n = take_line(s, s->pending.data, s->pending.len);
	}
	wm_buf_reset(&s->pending);
	s->skipping = 0;
	return n;
}
