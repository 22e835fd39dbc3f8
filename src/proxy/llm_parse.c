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

/* What one event (an SSE data object, an NDJSON line, a whole body) says,
 * before it is applied to the stream: from jansson's tree (any event) or
 * from the scanner below (a stream's event, when no text is kept). */
typedef struct ev_sum {
	uint64_t choice_chunks;    /* choices with a non-empty delta.content, delta.reasoning_content or text */
	int usage;                 /* "usage" is an object */
	int64_t usage_p, usage_c;  /* its prompt_tokens / completion_tokens, -1 none */
	int top_text;              /* ollama: response / thinking / message.content / message.thinking */
	int64_t eval_p, eval_c;    /* ollama: prompt_eval_count / eval_count, -1 none */
	int embeddings;            /* an "embeddings" member (any value) */
	int done;                  /* "done": true */
} ev_sum;

/* Every API's shape is looked for in every event: the framing, not the
 * path, says what is parsed, so a server on another path that speaks
 * either API is counted. */
static void sum_of_tree(json_t *o, int streamed, wm_buf *text, ev_sum *e)
{
	/* OpenAI: choices[].delta.content (chat), choices[].text (completions);
	 * reasoning models stream their thinking as delta.reasoning_content. */
	json_t *choices = json_object_get(o, "choices");
	size_t i;
	json_t *ch;
	json_array_foreach(choices, i, ch) {
		json_t *delta = json_object_get(ch, "delta");
		int got = has_text(delta, "content", text) | has_text(delta, "reasoning_content", text) |
			  has_text(ch, "text", text);
		e->choice_chunks += got != 0;
		if (!streamed) /* a whole answer: its text only, never a chunk */
			(void)has_text(json_object_get(ch, "message"), "content", text);
	}
	json_t *usage = json_object_get(o, "usage");
	e->usage = json_is_object(usage);
	e->usage_p = e->usage ? count_of(usage, "prompt_tokens") : -1;
	e->usage_c = e->usage ? count_of(usage, "completion_tokens") : -1;
	/* ollama: response / message.content (+ thinking), done with counts. */
	int got = has_text(o, "response", text) | has_text(o, "thinking", text);
	json_t *msg = json_object_get(o, "message");
	got |= has_text(msg, "content", text) | has_text(msg, "thinking", text);
	e->top_text = got != 0;
	e->eval_p = count_of(o, "prompt_eval_count");
	e->eval_c = count_of(o, "eval_count");
	e->embeddings = json_object_get(o, "embeddings") != NULL;
	e->done = json_is_true(json_object_get(o, "done"));
}

static uint64_t apply_event(wm_llm_stream *s, const ev_sum *e, int streamed)
{
	uint64_t chunks = e->choice_chunks + (e->top_text != 0);
	if (e->usage) {
		if (e->usage_p >= 0)
			s->prompt_tokens = e->usage_p;
		if (e->usage_c >= 0)
			s->completion_tokens = e->usage_c;
		else if (e->usage_p >= 0 && s->completion_tokens < 0)
			s->completion_tokens = 0; /* embeddings: prompt tokens only */
	}
	if (e->eval_p >= 0)
		s->prompt_tokens = e->eval_p;
	if (e->eval_c >= 0)
		s->completion_tokens = e->eval_c;
	else if (e->eval_p >= 0 && s->completion_tokens < 0 && e->embeddings)
		s->completion_tokens = 0;
	if (e->done)
		s->done = 1;
	if (!streamed)
		return 0;
	s->chunks += chunks;
	return chunks;
}

/* ---- the scanner: a stream's event without building a tree --------------
 *
 * A stream sends one small object per token; building jansson's tree of
 * each (a malloc per member) was most of the proxy's user CPU per request.
 * This reads the same objects in place, strictly (RFC 8259, UTF-8 checked),
 * and gives up (-1: jansson reads it instead) on anything it does not read
 * exactly as jansson does: a \u escape or an escaped key, a number with an
 * exponent or over 18 digits, nesting past SC_DEPTH, invalid JSON (jansson
 * then rejects it itself). A member given twice counts as its last, as in
 * jansson's tree. fuzz_llm checks every event it reads against jansson. */
#define SC_DEPTH 32

typedef struct sc {
	const char *p, *end;
	int depth;
} sc;

static void sc_ws(sc *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static int sc_lit(sc *c, const char *lit, size_t n)
{
	if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
		return -1;
	c->p += n;
	return 0;
}

/* A string at c->p ('"'): its raw bytes in [*s, *s + *n); *esc: it had an
 * escape (its raw bytes are not its value). */
static int sc_str(sc *c, const char **s, size_t *n, int *esc)
{
	if (c->p >= c->end || *c->p != '"')
		return -1;
	const unsigned char *p = (const unsigned char *)c->p + 1, *end = (const unsigned char *)c->end;
	*esc = 0;
	*s = (const char *)p;
	while (p < end) {
		unsigned char b = *p;
		if (b == '"') {
			*n = (size_t)((const char *)p - *s);
			c->p = (const char *)p + 1;
			return 0;
		}
		if (b < 0x20)
			return -1;
		if (b == '\\') {
			if (p + 1 >= end || !strchr("\"\\/bfnrt", p[1]) || p[1] == '\0')
				return -1; /* \u among them: jansson's to check */
			*esc = 1;
			p += 2;
			continue;
		}
		if (b < 0x80) {
			p++;
			continue;
		}
		/* UTF-8: no overlong form, no surrogate, nothing past U+10FFFF */
		size_t k = b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
		if (!k || (size_t)(end - p) < k)
			return -1;
		unsigned char lo = 0x80, hi = 0xbf;
		if (b == 0xe0)
			lo = 0xa0;
		else if (b == 0xed)
			hi = 0x9f;
		else if (b == 0xf0)
			lo = 0x90;
		else if (b == 0xf4)
			hi = 0x8f;
		if (p[1] < lo || p[1] > hi)
			return -1;
		for (size_t j = 2; j < k; j++)
			if ((p[j] & 0xc0) != 0x80)
				return -1;
		p += k;
	}
	return -1;
}

/* A number: *iv its value when an integer (no fraction), else -2. */
static int sc_num(sc *c, int64_t *iv)
{
	const char *p = c->p, *end = c->end;
	int neg = 0;
	if (p < end && *p == '-') {
		neg = 1;
		p++;
	}
	const char *d = p;
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	size_t nd = (size_t)(p - d);
	if (nd == 0 || (nd > 1 && *d == '0') || nd > 18)
		return -1;
	int64_t v = 0;
	for (const char *q = d; q < p; q++)
		v = v * 10 + (*q - '0');
	*iv = neg ? -v : v;
	if (p < end && *p == '.') {
		const char *f = ++p;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
		if (p == f)
			return -1;
		*iv = -2;
	}
	if (p < end && (*p == 'e' || *p == 'E'))
		return -1;
	c->p = p;
	return 0;
}

static int sc_skip(sc *c);

/* Calls member(ctx, key, keylen) with c->p at each member's value, which it
 * must read (sc_skip when it is not wanted). */
static int sc_obj(sc *c, int (*member)(sc *, void *, const char *, size_t), void *ctx)
{
	if (c->p >= c->end || *c->p != '{' || ++c->depth > SC_DEPTH)
		return -1;
	c->p++;
	sc_ws(c);
	if (c->p < c->end && *c->p == '}') {
		c->p++;
		c->depth--;
		return 0;
	}
	for (;;) {
		const char *k;
		size_t kn;
		int esc;
		if (sc_str(c, &k, &kn, &esc) < 0 || esc)
			return -1;
		sc_ws(c);
		if (c->p >= c->end || *c->p != ':')
			return -1;
		c->p++;
		sc_ws(c);
		if (member(c, ctx, k, kn) < 0)
			return -1;
		sc_ws(c);
		if (c->p >= c->end)
			return -1;
		if (*c->p == '}') {
			c->p++;
			c->depth--;
			return 0;
		}
		if (*c->p != ',')
			return -1;
		c->p++;
		sc_ws(c);
	}
}

static int skip_member(sc *c, void *ctx, const char *k, size_t kn)
{
	(void)ctx;
	(void)k;
	(void)kn;
	return sc_skip(c);
}

/* Calls element(ctx) with c->p at each element of an array. */
static int sc_arr(sc *c, int (*element)(sc *, void *), void *ctx)
{
	if (c->p >= c->end || *c->p != '[' || ++c->depth > SC_DEPTH)
		return -1;
	c->p++;
	sc_ws(c);
	if (c->p < c->end && *c->p == ']') {
		c->p++;
		c->depth--;
		return 0;
	}
	for (;;) {
		if (element(c, ctx) < 0)
			return -1;
		sc_ws(c);
		if (c->p >= c->end)
			return -1;
		if (*c->p == ']') {
			c->p++;
			c->depth--;
			return 0;
		}
		if (*c->p != ',')
			return -1;
		c->p++;
		sc_ws(c);
	}
}

static int skip_element(sc *c, void *ctx)
{
	(void)ctx;
	return sc_skip(c);
}

static int sc_skip(sc *c)
{
	if (c->p >= c->end)
		return -1;
	const char *s;
	size_t n;
	int esc;
	int64_t v;
	switch (*c->p) {
	case '{': return sc_obj(c, skip_member, NULL);
	case '[': return sc_arr(c, skip_element, NULL);
	case '"': return sc_str(c, &s, &n, &esc);
	case 't': return sc_lit(c, "true", 4);
	case 'f': return sc_lit(c, "false", 5);
	case 'n': return sc_lit(c, "null", 4);
	default: return sc_num(c, &v);
	}
}

static int key_is(const char *k, size_t kn, const char *want)
{
	return strlen(want) == kn && memcmp(k, want, kn) == 0;
}

/* A value: 1 when it is a non-empty string, else 0 (read either way). */
static int sc_nonempty(sc *c, int *out)
{
	if (c->p < c->end && *c->p == '"') {
		const char *s;
		size_t n;
		int esc;
		if (sc_str(c, &s, &n, &esc) < 0)
			return -1;
		*out = n > 0; /* an escape is a character: raw length 0 iff empty */
		return 0;
	}
	*out = 0;
	return sc_skip(c);
}

/* A value: a non-negative integer, else -1 (as count_of). */
static int sc_count(sc *c, int64_t *out)
{
	*out = -1;
	if (c->p < c->end && (*c->p == '-' || (*c->p >= '0' && *c->p <= '9'))) {
		int64_t v;
		if (sc_num(c, &v) < 0)
			return -1;
		*out = v >= 0 ? v : -1;
		return 0;
	}
	return sc_skip(c);
}

struct two_texts {
	const char *a, *b; /* the member names */
	int got_a, got_b;
};

static int two_texts_member(sc *c, void *ctx, const char *k, size_t kn)
{
	struct two_texts *t = ctx;
	if (key_is(k, kn, t->a))
		return sc_nonempty(c, &t->got_a);
	if (key_is(k, kn, t->b))
		return sc_nonempty(c, &t->got_b);
	return sc_skip(c);
}

/* An object's two string members (non-empty?); a value that is not an
 * object has neither. */
static int sc_two_texts(sc *c, const char *a, const char *b, int *got)
{
	struct two_texts t = {.a = a, .b = b};
	int rc = c->p < c->end && *c->p == '{' ? sc_obj(c, two_texts_member, &t) : sc_skip(c);
	*got = t.got_a | t.got_b;
	return rc;
}

struct choice {
	int delta, text;
};

static int choice_member(sc *c, void *ctx, const char *k, size_t kn)
{
	struct choice *ch = ctx;
	if (key_is(k, kn, "delta"))
		return sc_two_texts(c, "content", "reasoning_content", &ch->delta);
	if (key_is(k, kn, "text"))
		return sc_nonempty(c, &ch->text);
	return sc_skip(c);
}

static int choice_element(sc *c, void *ctx)
{
	uint64_t *n = ctx;
	if (c->p >= c->end || *c->p != '{')
		return sc_skip(c);
	struct choice ch = {0, 0};
	if (sc_obj(c, choice_member, &ch) < 0)
		return -1;
	*n += (ch.delta | ch.text) != 0;
	return 0;
}

struct usage {
	int64_t p, c;
};

static int usage_member(sc *c, void *ctx, const char *k, size_t kn)
{
	struct usage *u = ctx;
	if (key_is(k, kn, "prompt_tokens"))
		return sc_count(c, &u->p);
	if (key_is(k, kn, "completion_tokens"))
		return sc_count(c, &u->c);
	return sc_skip(c);
}

struct top {
	ev_sum *e;
	int response, thinking, message;
};

static int top_member(sc *c, void *ctx, const char *k, size_t kn)
{
	struct top *t = ctx;
	ev_sum *e = t->e;
	if (key_is(k, kn, "choices")) {
		e->choice_chunks = 0;
		return c->p < c->end && *c->p == '[' ? sc_arr(c, choice_element, &e->choice_chunks) : sc_skip(c);
	}
	if (key_is(k, kn, "usage")) {
		struct usage u = {-1, -1};
		e->usage = c->p < c->end && *c->p == '{';
		int rc = e->usage ? sc_obj(c, usage_member, &u) : sc_skip(c);
		e->usage_p = u.p;
		e->usage_c = u.c;
		return rc;
	}
	if (key_is(k, kn, "response"))
		return sc_nonempty(c, &t->response);
	if (key_is(k, kn, "thinking"))
		return sc_nonempty(c, &t->thinking);
	if (key_is(k, kn, "message"))
		return sc_two_texts(c, "content", "thinking", &t->message);
	if (key_is(k, kn, "prompt_eval_count"))
		return sc_count(c, &e->eval_p);
	if (key_is(k, kn, "eval_count"))
		return sc_count(c, &e->eval_c);
	if (key_is(k, kn, "embeddings")) {
		e->embeddings = 1;
		return sc_skip(c);
	}
	if (key_is(k, kn, "done")) {
		e->done = c->p < c->end && *c->p == 't';
		return sc_skip(c);
	}
	return sc_skip(c);
}

/* 0: e is what data says; -1: not read here (jansson's to read). */
static int scan_event(const char *data, size_t len, ev_sum *e)
{
	memset(e, 0, sizeof *e);
	e->usage_p = e->usage_c = e->eval_p = e->eval_c = -1;
	sc c = {.p = data, .end = data + len, .depth = 0};
	struct top t = {.e = e};
	sc_ws(&c);
	if (sc_obj(&c, top_member, &t) < 0)
		return -1;
	sc_ws(&c);
	if (c.p != c.end)
		return -1;
	e->top_text = (t.response | t.thinking | t.message) != 0;
	return 0;
}

static uint64_t take_json(wm_llm_stream *s, const char *data, size_t len, int streamed)
{
	ev_sum e;
	if (streamed && !s->text && scan_event(data, len, &e) == 0)
		return apply_event(s, &e, streamed);
	json_t *o = load_object(data, len);
	if (!o)
		return 0;
	memset(&e, 0, sizeof e);
	sum_of_tree(o, streamed, s->text, &e);
	json_decref(o);
	return apply_event(s, &e, streamed);
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
