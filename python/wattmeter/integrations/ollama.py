"""Energy per request for the ``ollama`` client:

>>> import ollama, wattmeter
>>> from wattmeter.integrations.ollama import instrument
>>> client = instrument(ollama.Client(host="http://127.0.0.1:11434"))   # doctest: +SKIP
>>> with wattmeter.Meter("runs/bench", include_name="ollama"):         # doctest: +SKIP
...     client.chat(model="llama3", messages=[...])

``instrument(client)`` wraps ``chat``, ``generate`` and ``embed`` of an
``ollama.Client`` or ``ollama.AsyncClient`` (in place; returned): each call
is a request on the latest running ``Meter``, else on the meter of
``wattmeter run`` (WATTMETER_CONTROL). A stream's parts with text count one
token each; the final part's ``prompt_eval_count``/``eval_count`` (and an
embedding's ``prompt_eval_count``) replace the counts (``tokens_source``
"usage"). A stream closed before its end is ``client_disconnected``.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

from ._requests import wrap, wrapped

__all__ = ["instrument"]

_PATHS = {"chat": "/api/chat", "generate": "/api/generate", "embed": "/api/embed"}


def _get(obj: Any, key: str) -> Any:
    v = getattr(obj, key, None)
    if v is None and isinstance(obj, dict):
        v = obj.get(key)
    return v


def _usage(obj: Any) -> Optional[Tuple[Optional[int], Optional[int]]]:
    p, c = _get(obj, "prompt_eval_count"), _get(obj, "eval_count")
    if p is None and c is None:
        return None
    return p, c


def _chunk_info(part: Any) -> Tuple[int, Optional[Tuple[Optional[int], Optional[int]]]]:
    msg = _get(part, "message")
    text = _get(msg, "content") if msg is not None else _get(part, "response")
    return (1 if text else 0), (_usage(part) if _get(part, "done") else None)


def _embed_usage(resp: Any) -> Optional[Tuple[Optional[int], Optional[int]]]:
    u = _usage(resp)
    return None if u is None else (u[0], 0)  # an embedding generates nothing


def _wrap(client: Any, name: str) -> None:
    fn = getattr(client, name)
    if wrapped(fn):
        return
    setattr(client, name, wrap(fn, _PATHS[name], lambda args, kwargs: kwargs.get("model", args[0] if args else None),
                               lambda kwargs: bool(kwargs.get("stream")) and name != "embed",
                               _embed_usage if name == "embed" else _usage, _chunk_info))


def instrument(client: Any) -> Any:
    """Records every ``chat``, ``generate`` and ``embed`` call of ``client``
    (``ollama.Client``, ``ollama.AsyncClient``, or the ``ollama`` module
    itself, whose functions use its default client) as a request; returns
    the client. Calling it twice is harmless."""
    for name in ("chat", "generate", "embed"):
        _wrap(client, name)
    return client
