"""A small LLM server for the tests: OpenAI's and ollama's HTTP APIs.

It stands in for vLLM / llama.cpp / ollama behind `wattmeter proxy` and
under `wattmeter.integrations.*.instrument()`, so that the real `openai`
and `ollama` PyPI clients talk to something that behaves like a server:

  OpenAI:  POST /v1/chat/completions, /v1/completions (stream: SSE
           ``data: {...}\\n\\n`` ... ``data: [DONE]\\n\\n``; ``usage`` in
           the response, and in a final chunk when
           ``stream_options.include_usage`` is set), POST /v1/embeddings,
           GET /v1/models
  ollama:  POST /api/generate, /api/chat (NDJSON, stream=true by default;
           prompt_eval_count / eval_count in the final object),
           POST /api/embed, GET /api/tags

Token counts are deterministic, from the request alone, so a test knows the
truth without asking the server: the completion has exactly ``max_tokens``
(``max_completion_tokens``; ollama ``options.num_predict``; default 8)
tokens, one per stream chunk, and the prompt has one token per
whitespace-separated word of the prompt / every message's content
(embeddings: of every input). Each token costs real CPU on the thread that
serves the request: a CPU-bound loop (``--work`` iterations of a hash) or,
with ``--backend transformers``, one forward pass of a tiny GPT-2 built from
a config (random weights, nothing downloaded; needs torch + transformers).

Per-request knobs, as request headers (the clients pass extra headers):
  X-Test-Delay-S: seconds to sleep between stream chunks (default --delay-s)
  X-Test-Work: CPU iterations per token (default --work)
  X-Test-No-Usage: 1 = report no usage / counts (so the proxy must count)
  X-Test-Status: an HTTP status to answer with instead (an error body)
  X-Test-Encoding: gzip | deflate (zlib) | raw-deflate | identity: the
      Content-Encoding of the answer, whatever the client accepts (default:
      with ``--gzip``, gzip when the request's Accept-Encoding names it, as
      uvicorn's GZipMiddleware does; else identity). A stream is compressed
      as one body, flushed (Z_SYNC_FLUSH) after each chunk so every token
      leaves at once, as a streaming gzip middleware sends it.

GET /_test/log (on the server itself) returns what it saw, one entry per
request: path, headers (as received), whether the stream finished or the
client went away, tokens sent. The tests use it to check that headers reach
the upstream untouched and that a client's disconnect reached the server.

Started as ``python llm_server.py --port 0``, it prints one JSON line,
``{"pid": ..., "port": ..., "backend": ...}``, on stdout once it listens
(``start_server()`` in a test does this and waits for the line).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List, Optional, Tuple

DEFAULT_TOKENS = 8
MODEL = "tiny"


def words(text: Any) -> int:
    """Prompt tokens of a text: its whitespace-separated words (deterministic)."""
    if isinstance(text, str):
        return len(text.split())
    if isinstance(text, list):  # OpenAI content parts, or a list of inputs
        return sum(words(p.get("text", "") if isinstance(p, dict) else p) for p in text)
    return 0


def prompt_tokens_of(path: str, body: Dict[str, Any]) -> int:
    if "messages" in body:
        return sum(words(m.get("content", "")) for m in body.get("messages") or [] if isinstance(m, dict))
    if path.endswith("embeddings") or path == "/api/embed":
        return words(body.get("input", ""))
    return words(body.get("prompt", ""))


def completion_tokens_of(body: Dict[str, Any]) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        if isinstance(body.get(key), int):
            return max(0, body[key])
    opts = body.get("options")
    if isinstance(opts, dict) and isinstance(opts.get("num_predict"), int):
        return max(0, opts["num_predict"])
    return DEFAULT_TOKENS


class CpuBackend:
    """A token is ``work`` rounds of SHA-256: CPU time on the serving thread."""

    name = "cpu"

    def generate(self, n: int, work: int, seed: int) -> Iterator[str]:
        h = seed.to_bytes(8, "little")
        for i in range(n):
            for _ in range(work):
                h = hashlib.sha256(h).digest()
            yield f" t{h[0] % 100}"

    def embed(self, text: str, work: int) -> List[float]:
        h = text.encode()
        for _ in range(work):
            h = hashlib.sha256(h).digest()
        h = hashlib.sha256(h).digest()
        return [b / 255.0 for b in h[:8]]


class TransformersBackend:
    """A tiny GPT-2 from a config (random weights, seeded; no download), one
    forward pass per token with the KV cache, greedy, never stopping early
    (so the token count is still exactly the requested one)."""

    name = "transformers"

    def __init__(self) -> None:
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel

        torch.manual_seed(0)
        torch.set_num_threads(1)
        self.torch = torch
        cfg = GPT2Config(n_layer=2, n_head=2, n_embd=64, vocab_size=512, n_positions=1024,
                         bos_token_id=0, eos_token_id=0)
        self.model = GPT2LMHeadModel(cfg).eval()

    def generate(self, n: int, work: int, seed: int) -> Iterator[str]:
        torch = self.torch
        import inspect

        ids = torch.tensor([[seed % 512]])
        past = None
        # transformers 5 names the KV cache `cache` (past_key_values before)
        key = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        with torch.no_grad():
            for _ in range(n):
                out = self.model(input_ids=ids, use_cache=True, **{key: past})
                past = getattr(out, "cache", None) or out.past_key_values
                ids = out.logits[:, -1:].argmax(-1)
                yield f" t{int(ids[0, 0])}"

    def embed(self, text: str, work: int) -> List[float]:
        torch = self.torch
        toks = [hash_word(w) for w in text.split()] or [0]
        with torch.no_grad():
            h = self.model.transformer(input_ids=torch.tensor([toks])).last_hidden_state
        return [float(x) for x in h[0].mean(0)[:8]]


def hash_word(w: str) -> int:
    return int.from_bytes(hashlib.sha256(w.encode()).digest()[:2], "little") % 512


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # the listen backlog: 100 clients connect at once in bench/proxy.py

    def __init__(self, addr: Tuple[str, int], backend: Any, work: int, delay_s: float, gzip: bool = False) -> None:
        super().__init__(addr, Handler)
        self.gzip = gzip
        self.backend = backend
        self.work = work
        self.delay_s = delay_s
        self.log: List[Dict[str, Any]] = []
        self.log_lock = threading.Lock()


class ClientGone(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, chunked streams
    server: Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    zstream: Any = None  # the compressor of the stream being sent, if encoded

    def setup(self) -> None:
        super().setup()
        # As uvicorn and ollama do: small writes (a chunk per token) leave at
        # once instead of waiting, under Nagle, for the client's delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # ---- plumbing -----------------------------------------------------
    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    # ---- Content-Encoding ---------------------------------------------
    WBITS = {"gzip": 31, "deflate": 15, "raw-deflate": -15}

    def encoding(self) -> str:
        """The coding of this answer: X-Test-Encoding, else gzip with --gzip
        when the client accepts it, else identity."""
        e = self.headers.get("X-Test-Encoding")
        if e is None and self.server.gzip:
            accepted = [c.split(";")[0].strip().lower() for c in self.headers.get("Accept-Encoding", "").split(",")]
            e = "gzip" if "gzip" in accepted else "identity"
        return e if e in self.WBITS else "identity"

    def encoding_header(self, e: str) -> None:
        if e != "identity":  # raw deflate is sent as "deflate", as some servers do
            self.send_header("Content-Encoding", "gzip" if e == "gzip" else "deflate")

    def send_json(self, code: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        e = self.encoding()
        if e != "identity":
            c = zlib.compressobj(wbits=self.WBITS[e])
            data = c.compress(data) + c.flush()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.encoding_header(e)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_stream(self, ctype: str) -> None:
        e = self.encoding()
        self.zstream = zlib.compressobj(wbits=self.WBITS[e]) if e != "identity" else None
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Cache-Control", "no-cache")
        self.encoding_header(e)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def chunk(self, data: bytes) -> None:
        if self.zstream is not None:
            data = self.zstream.compress(data) + self.zstream.flush(zlib.Z_SYNC_FLUSH)
        self._raw_chunk(data)

    def _raw_chunk(self, data: bytes) -> None:
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError) as e:
            raise ClientGone() from e

    def end_stream(self) -> None:
        if self.zstream is not None:  # the end of the compressed body (gzip: its trailer)
            z, self.zstream = self.zstream, None
            self._raw_chunk(z.flush())
        self._raw_chunk(b"")  # the zero-length chunk ends the body

    def knob(self, name: str, default: Any, conv: Any) -> Any:
        v = self.headers.get(name)
        return conv(v) if v is not None else default

    # ---- dispatch -----------------------------------------------------
    def do_GET(self) -> None:
        if self.path == "/_test/log":
            with self.server.log_lock:
                self.send_json(200, self.server.log)
        elif self.path == "/v1/models":
            self.send_json(200, {"object": "list", "data": [
                {"id": MODEL, "object": "model", "created": 0, "owned_by": "wattmeter-tests"}]})
        elif self.path == "/api/tags":
            self.send_json(200, {"models": [{
                "name": MODEL + ":latest", "model": MODEL + ":latest",
                "modified_at": "2026-12-04T00:00:00Z", "size": 1, "digest": "0" * 64,
                "details": {"format": "gguf", "family": "gpt2", "parameter_size": "1M",
                            "quantization_level": "F32"}}]})
        elif self.path in ("/", "/api/version"):
            self.send_json(200, {"version": "0.0.0-test"})
        else:
            self.send_json(404, {"error": f"no such path {self.path}"})

    def do_POST(self) -> None:
        raw = self.read_body()
        entry: Dict[str, Any] = {"path": self.path, "method": "POST",
                                 "headers": dict(self.headers.items()),
                                 "finished": False, "client_gone": False, "tokens_sent": 0}
        with self.server.log_lock:
            self.server.log.append(entry)
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            self.send_json(400, {"error": "the body is not a JSON object"})
            return
        status = self.knob("X-Test-Status", 200, int)
        if status != 200:
            self.send_json(status, {"error": {"message": f"test error {status}", "type": "test"}})
            entry["finished"] = True
            return
        routes = {
            "/v1/chat/completions": self.openai_complete,
            "/v1/completions": self.openai_complete,
            "/v1/embeddings": self.openai_embed,
            "/api/generate": self.ollama_generate,
            "/api/chat": self.ollama_generate,
            "/api/embed": self.ollama_embed,
        }
        fn = routes.get(self.path.split("?")[0])
        if fn is None:
            self.send_json(404, {"error": f"no such path {self.path}"})
            return
        try:
            fn(body, entry)
            entry["finished"] = True
        except ClientGone:
            entry["client_gone"] = True
            self.close_connection = True

    def tokens(self, body: Dict[str, Any], entry: Dict[str, Any]) -> Iterator[str]:
        n = completion_tokens_of(body)
        work = self.knob("X-Test-Work", self.server.work, int)
        delay = self.knob("X-Test-Delay-S", self.server.delay_s, float)
        seed = int.from_bytes(hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()[:4], "little")
        for i, tok in enumerate(self.server.backend.generate(n, work, seed)):
            if i and delay > 0:
                time.sleep(delay)
            yield tok
            entry["tokens_sent"] = i + 1

    # ---- OpenAI -------------------------------------------------------
    def openai_complete(self, body: Dict[str, Any], entry: Dict[str, Any]) -> None:
        chat = self.path.startswith("/v1/chat/")
        model = body.get("model") or MODEL
        rid = "cmpl-" + hashlib.sha256(json.dumps(body).encode()).hexdigest()[:12]
        created = int(time.time())
        pt = prompt_tokens_of(self.path, body)
        ct = completion_tokens_of(body)
        usage = {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}
        no_usage = self.knob("X-Test-No-Usage", 0, int)
        obj = "chat.completion" if chat else "text_completion"
        if not body.get("stream"):
            text = "".join(self.tokens(body, entry))
            choice: Dict[str, Any] = {"index": 0, "finish_reason": "length", "logprobs": None}
            if chat:
                choice["message"] = {"role": "assistant", "content": text}
            else:
                choice["text"] = text
            out = {"id": rid, "object": obj, "created": created, "model": model, "choices": [choice]}
            if not no_usage:
                out["usage"] = usage
            self.send_json(200, out)
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage")) and not no_usage
        self.start_stream("text/event-stream")

        def event(choices: List[Dict[str, Any]], extra: Optional[Dict[str, Any]] = None) -> None:
            c = {"id": rid, "object": obj + ".chunk" if chat else obj, "created": created,
                 "model": model, "choices": choices}
            if include_usage:
                c["usage"] = None
            if extra:
                c.update(extra)
            self.chunk(b"data: " + json.dumps(c).encode() + b"\n\n")

        for i, tok in enumerate(self.tokens(body, entry)):
            if chat:
                delta: Dict[str, Any] = {"content": tok}
                if i == 0:
                    delta["role"] = "assistant"
                event([{"index": 0, "delta": delta, "finish_reason": None, "logprobs": None}])
            else:
                event([{"index": 0, "text": tok, "finish_reason": None, "logprobs": None}])
        last: Dict[str, Any] = {"index": 0, "finish_reason": "length", "logprobs": None}
        last.update({"delta": {}} if chat else {"text": ""})
        event([last])
        if include_usage:
            event([], {"usage": usage})
        self.chunk(b"data: [DONE]\n\n")
        self.end_stream()

    def openai_embed(self, body: Dict[str, Any], entry: Dict[str, Any]) -> None:
        inputs = body.get("input", "")
        inputs = inputs if isinstance(inputs, list) else [inputs]
        work = self.knob("X-Test-Work", self.server.work, int)
        data = [{"object": "embedding", "index": i,
                 "embedding": self.server.backend.embed(str(t), work)} for i, t in enumerate(inputs)]
        pt = prompt_tokens_of(self.path, body)
        out: Dict[str, Any] = {"object": "list", "data": data, "model": body.get("model") or MODEL}
        if not self.knob("X-Test-No-Usage", 0, int):
            out["usage"] = {"prompt_tokens": pt, "total_tokens": pt}
        self.send_json(200, out)

    # ---- ollama -------------------------------------------------------
    def ollama_generate(self, body: Dict[str, Any], entry: Dict[str, Any]) -> None:
        chat = self.path == "/api/chat"
        model = body.get("model") or MODEL
        pt = prompt_tokens_of(self.path, body)
        ct = completion_tokens_of(body)
        no_usage = self.knob("X-Test-No-Usage", 0, int)
        t0 = time.monotonic_ns()

        def piece(text: str, done: bool) -> Dict[str, Any]:
            o: Dict[str, Any] = {"model": model,
                                 "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                 "done": done}
            if chat:
                o["message"] = {"role": "assistant", "content": text}
            else:
                o["response"] = text
            return o

        def final(text: str) -> Dict[str, Any]:
            o = piece(text, True)
            o["done_reason"] = "length"
            dur = time.monotonic_ns() - t0
            o.update({"total_duration": dur, "load_duration": 0})
            if not no_usage:
                o.update({"prompt_eval_count": pt, "prompt_eval_duration": 0,
                          "eval_count": ct, "eval_duration": dur})
            if not chat:
                o["context"] = [1, 2, 3]
            return o

        if body.get("stream") is False:
            self.send_json(200, final("".join(self.tokens(body, entry))))
            return
        self.start_stream("application/x-ndjson")
        for tok in self.tokens(body, entry):
            self.chunk(json.dumps(piece(tok, False)).encode() + b"\n")
        self.chunk(json.dumps(final("")).encode() + b"\n")
        self.end_stream()

    def ollama_embed(self, body: Dict[str, Any], entry: Dict[str, Any]) -> None:
        inputs = body.get("input", "")
        inputs = inputs if isinstance(inputs, list) else [inputs]
        work = self.knob("X-Test-Work", self.server.work, int)
        out: Dict[str, Any] = {"model": body.get("model") or MODEL,
                               "embeddings": [self.server.backend.embed(str(t), work) for t in inputs],
                               "total_duration": 0, "load_duration": 0}
        if not self.knob("X-Test-No-Usage", 0, int):
            out["prompt_eval_count"] = prompt_tokens_of(self.path, body)
        self.send_json(200, out)


def make_backend(name: str) -> Any:
    if name == "transformers":
        return TransformersBackend()
    if name == "auto":
        try:
            return TransformersBackend()
        except ImportError:
            return CpuBackend()
    return CpuBackend()


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = any free port (printed)")
    ap.add_argument("--backend", choices=["cpu", "transformers", "auto"], default="cpu")
    ap.add_argument("--work", type=int, default=2000, help="SHA-256 rounds per token (cpu backend)")
    ap.add_argument("--delay-s", type=float, default=0.0, help="sleep between stream chunks")
    ap.add_argument("--gzip", action="store_true",
                    help="gzip every answer whose request accepts gzip (X-Test-Encoding overrides)")
    a = ap.parse_args(argv)
    srv = Server((a.host, a.port), make_backend(a.backend), a.work, a.delay_s, a.gzip)
    print(json.dumps({"pid": os.getpid(), "port": srv.server_address[1],
                      "backend": srv.backend.name}), flush=True)
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


# ---- for tests: start it as a real child process ------------------------
class Running:
    """A started llm_server.py: ``.pid``, ``.port``, ``.url`` (http://...),
    ``.log()`` (its /_test/log), ``.stop()``."""

    def __init__(self, proc: "subprocess.Popen[str]", info: Dict[str, Any]) -> None:
        self.proc = proc
        self.pid: int = info["pid"]
        self.port: int = info["port"]
        self.backend: str = info["backend"]
        self.url = f"http://127.0.0.1:{self.port}"

    def log(self) -> List[Dict[str, Any]]:
        import urllib.request

        with urllib.request.urlopen(self.url + "/_test/log", timeout=10) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(*args: str, python: str = sys.executable, timeout: float = 120) -> Running:
    """Starts ``python llm_server.py --port 0 ARGS`` and waits for its line."""
    proc = subprocess.Popen([python, os.path.abspath(__file__), "--port", "0", *args],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until it listens (or dies)
    if not line:
        proc.wait()
        raise RuntimeError(f"llm_server.py exited ({proc.returncode}) before listening")
    return Running(proc, json.loads(line))


if __name__ == "__main__":
    sys.exit(main())
