"""Energy per request for the ``openai`` client (any OpenAI-compatible server:
vLLM, llama.cpp, TGI, ollama's /v1):

>>> import openai, wattmeter
>>> from wattmeter.integrations.openai import instrument
>>> client = instrument(openai.OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="-"))  # doctest: +SKIP
>>> with wattmeter.Meter("runs/bench", include_name="vllm"):                           # doctest: +SKIP
...     client.chat.completions.create(model="m", messages=[...])

``instrument(client)`` wraps ``chat.completions.create``,
``completions.create`` and ``embeddings.create`` of an ``OpenAI`` or
``AsyncOpenAI`` client (in place; the client is returned): each call is a
request on the latest running ``Meter`` of this process, else on the meter
of ``wattmeter run`` (WATTMETER_CONTROL). Streams included: each chunk with
text counts one token (``tokens_source`` "counted"); the ``usage`` of the
response, or of the final chunk when ``stream_options={"include_usage":
True}`` is passed, replaces the counts (``tokens_source`` "usage"). A
stream closed before its end is recorded as ``client_disconnected``; an
error response with its status. The split of the server's energy among
requests is the C core's (docs/architecture.md "Requests").
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

from ._requests import wrap, wrapped

__all__ = ["instrument"]


def _usage(obj: Any) -> Optional[Tuple[Optional[int], Optional[int]]]:
    u = getattr(obj, "usage", None)
    if u is None:
        return None
    return getattr(u, "prompt_tokens", None), getattr(u, "completion_tokens", None)


def _chunk_info(chunk: Any) -> Tuple[int, Optional[Tuple[Optional[int], Optional[int]]]]:
    n = 0
    for c in getattr(chunk, "choices", None) or []:
        delta = getattr(c, "delta", None)
        text = getattr(delta, "content", None) if delta is not None else getattr(c, "text", None)
        if text:
            n += 1
    return n, _usage(chunk)


def _path(client: Any, tail: str) -> str:
    base = str(getattr(client, "base_url", "") or "")
    # "http://host:8000/v1/" -> "/v1/chat/completions"
    after = base.split("://", 1)[-1]
    prefix = "/" + after.split("/", 1)[1] if "/" in after else "/"
    return prefix.rstrip("/") + "/" + tail


def _wrap(client: Any, owner: Any, tail: str) -> None:
    if wrapped(owner.create):
        return  # instrumented already
    owner.create = wrap(owner.create, _path(client, tail), lambda args, kwargs: kwargs.get("model"),
                        lambda kwargs: bool(kwargs.get("stream")), _usage, _chunk_info)


def instrument(client: Any) -> Any:
    """Records every chat completion, completion and embedding ``client``
    (``openai.OpenAI`` or ``openai.AsyncOpenAI``) makes as a request;
    returns the client. Calling it twice is harmless."""
    _wrap(client, client.chat.completions, "chat/completions")
    _wrap(client, client.completions, "completions")
    _wrap(client, client.embeddings, "embeddings")
    return client
