/* llm_parse.h — what the proxy reads in LLM API traffic, apart from any I/O
 * (pure functions on bytes, fuzzed by fuzz/fuzz_llm.c):
 *
 *  - which API a request path is (OpenAI chat/completions/embeddings,
 *    ollama generate/chat/embed, or another path: forwarded, no tokens);
 *  - from a request body: the model and whether the answer streams;
 *  - from a response: its framing by Content-Type (SSE, NDJSON, one JSON
 *    document), then, fed the bytes as they pass in any cut, the content
 *    chunks (one token each: what a client counts when the server reports
 *    no usage) and the server's own usage (OpenAI `usage`, in a non-streamed
 *    body or the final chunk of a stream with stream_options.include_usage;
 *    ollama `prompt_eval_count` / `eval_count` in the final object).
 *
 * A body in Content-Encoding gzip or deflate is parsed through zlib: the
 * caller still forwards the bytes as they came; the parser inflates them
 * through a fixed WM_LLM_INFLATE_CHUNK window, never holding the body.
 *
 * Bounds: a stream line longer than WM_LLM_LINE_MAX bytes is skipped (not
 * parsed, its bytes still pass), as is a body past WM_LLM_BODY_MAX; an
 * encoded body is parsed up to WM_LLM_INFLATE_MAX inflated bytes (past
 * that, a decompression bomb's, the rest is not inflated: no memory and no
 * CPU spent on it); none changes what is forwarded. Nothing here keeps text unless the caller asks
 * for it (store_text, `proxy --store-text`).
 */
#ifndef WM_PROXY_LLM_PARSE_H
#define WM_PROXY_LLM_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "base/util.h"

#define WM_LLM_LINE_MAX (1u << 20)  /* an SSE data line / NDJSON object */
#define WM_LLM_BODY_MAX (16u << 20) /* a non-streamed JSON answer or request */
#define WM_LLM_MODEL_MAX 128        /* bytes of a model name kept, NUL included */
#define WM_LLM_INFLATE_MAX (256u << 20) /* inflated bytes of an encoded body parsed */
#define WM_LLM_INFLATE_CHUNK 16384u     /* the inflate window handed to the parser */

typedef enum wm_llm_api {
	WM_LLM_OTHER = 0,
	WM_LLM_OPENAI_CHAT,        /* POST /v1/chat/completions */
	WM_LLM_OPENAI_COMPLETIONS, /* POST /v1/completions */
	WM_LLM_OPENAI_EMBEDDINGS,  /* POST /v1/embeddings */
	WM_LLM_OLLAMA_GENERATE,    /* POST /api/generate */
	WM_LLM_OLLAMA_CHAT,        /* POST /api/chat */
	WM_LLM_OLLAMA_EMBED,       /* POST /api/embed (and the older /api/embeddings) */
} wm_llm_api;

/* The API of a request path (a query string is ignored). */
wm_llm_api wm_llm_api_of(const char *path);

typedef struct wm_llm_request {
	char model[WM_LLM_MODEL_MAX]; /* "" if none; cut at a UTF-8 boundary */
	int stream;                   /* 1: the answer streams (ollama's default) */
	int include_usage;            /* OpenAI stream_options.include_usage */
} wm_llm_request;

/* Reads a request body. Always fills out (the API's defaults when the body
 * says nothing); returns 0, or -EINVAL when the body is not a JSON object
 * (the request is forwarded all the same: the server answers it). */
int wm_llm_parse_request(wm_llm_api api, const char *body, size_t len, wm_llm_request *out);
/* Appends the prompt as a JSON value (messages, prompt or input; null when
 * there is none) to b: for --store-text only. 0 or -ENOMEM. */
int wm_llm_request_text(const char *body, size_t len, wm_buf *b);

typedef enum wm_llm_framing {
	WM_LLM_FRAME_NONE = 0, /* not parsed (an image, text, an encoded body) */
	WM_LLM_FRAME_JSON,     /* one JSON document */
	WM_LLM_FRAME_SSE,      /* text/event-stream: data: lines */
	WM_LLM_FRAME_NDJSON,   /* application/x-ndjson: one object a line */
} wm_llm_framing;

typedef enum wm_llm_encoding {
	WM_LLM_ENC_IDENTITY = 0, /* none, or "identity" */
	WM_LLM_ENC_GZIP,         /* gzip, x-gzip (RFC 1952; members one after another) */
	WM_LLM_ENC_DEFLATE,      /* deflate: zlib (RFC 1950), or the raw deflate some servers send */
	WM_LLM_ENC_OTHER,        /* br, zstd, a list of codings: not parsed */
} wm_llm_encoding;

/* The coding of a Content-Encoding value (NULL or "" = identity). */
wm_llm_encoding wm_llm_encoding_of(const char *content_encoding);

/* The framing of a response by its Content-Type and Content-Encoding
 * (either may be NULL): a body in a coding the parser cannot undo
 * (WM_LLM_ENC_OTHER) is not parsed. */
wm_llm_framing wm_llm_framing_of(const char *content_type, const char *content_encoding);

typedef struct wm_llm_stream {
	wm_llm_framing framing;
	wm_buf pending;           /* the line (or JSON body) not yet complete */
	int skipping;             /* the current line passed the bound: dropped to its end */
	uint64_t chunks;          /* content chunks seen (one token each) */
	int64_t prompt_tokens;    /* the server's usage; -1 until it gives one */
	int64_t completion_tokens;
	int done;                 /* SSE [DONE] or ollama done:true seen */
	wm_buf *text;             /* NULL, or the completion text is appended here (the
				   * events are then read by jansson, else by a scanner
				   * that builds no tree: the same counts) */
	/* an encoded body (wm_llm_stream_set_encoding) */
	void *z;                  /* its z_stream; NULL: the bytes are the body */
	int z_sniff;              /* deflate: its first bytes held (z_head) until they say zlib or raw */
	unsigned char z_head[2];
	int z_head_n;
	int z_stopped;            /* corrupt, or past WM_LLM_INFLATE_MAX: no more parsed */
	uint64_t inflated;        /* bytes inflated so far */
} wm_llm_stream;

void wm_llm_stream_init(wm_llm_stream *s, wm_llm_framing framing);
/* The body comes in this Content-Encoding (after init, before any feed):
 * gzip and deflate are inflated for the parser. 0; -ENOMEM (then nothing is
 * parsed); -ENOTSUP for WM_LLM_ENC_OTHER (nothing is parsed either). */
int wm_llm_stream_set_encoding(wm_llm_stream *s, wm_llm_encoding enc);
/* Feeds the next bytes of the body (as sent: encoded ones are inflated
 * here); returns the content chunks completed
 * in them (tokens to report now). Any cut of the body gives the same total. */
uint64_t wm_llm_stream_feed(wm_llm_stream *s, const char *data, size_t len);
/* The body ended: parses what is pending (a last line without its newline,
 * a JSON body). Returns the content chunks completed by it. */
uint64_t wm_llm_stream_finish(wm_llm_stream *s);
void wm_llm_stream_free(wm_llm_stream *s);

#endif
