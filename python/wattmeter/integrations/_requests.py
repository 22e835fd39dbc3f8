"""What the openai and ollama integrations share: where a request goes (the
latest running Meter, else the meter of `wattmeter run`) and a stream
wrapper that counts chunks as tokens and ends the request when the stream
does (exhausted, closed, raising, or dropped unfinished)."""

from __future__ import annotations

import warnings
from typing import Any, Callable, Dict, Iterator, Optional

from ..meter import Request, _active_sink


def begin(path: str, model: Optional[str], stream: bool) -> Optional[Request]:
    """A request on the active meter, or None (nothing measures: the call
    runs unrecorded, said once)."""
    sink = _active_sink()
    if sink is None:
        _warn_once()
        return None
    attrs: Dict[str, Any] = {"path": path, "stream": bool(stream)}
    if model is not None:
        attrs["model"] = str(model)
    try:
        if hasattr(sink, "request") and callable(sink.request):
            return sink.request(**attrs)  # type: ignore[no-any-return]
        return Request(sink, attrs)  # the control socket of `wattmeter run`
    except (OSError, RuntimeError) as e:  # an unrecorded or stopping meter: the call still runs
        warnings.warn(f"wattmeter: request not recorded: {e}", RuntimeWarning, stacklevel=4)
        return None


_warned = False


def _warn_once() -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn("wattmeter: an instrumented client called its server with no Meter running and not "
                      "under 'wattmeter run': the request is not recorded (start a Meter, or run the "
                      "script under 'wattmeter run')", RuntimeWarning, stacklevel=4)


# What a stream's chunks say: tokens produced in it, and the usage if it is
# the one that carries it ((prompt, completion) or None).
ChunkInfo = Callable[[Any], "tuple[int, Optional[tuple[Optional[int], Optional[int]]]]"]


class CountedStream:
    """Iterates over ``inner``, reporting each chunk's tokens to ``req``
    and ending it with the usage a chunk carried (else the counted tokens)
    when the stream ends; every other attribute is ``inner``'s."""

    def __init__(self, inner: Any, req: Request, info: ChunkInfo) -> None:
        self._inner = inner
        self._req = req
        self._info = info
        self._usage: Optional["tuple[Optional[int], Optional[int]]"] = None
        self._it: Optional[Iterator[Any]] = None

    def __iter__(self) -> "CountedStream":
        return self

    def __next__(self) -> Any:
        if self._it is None:
            self._it = iter(self._inner)
        try:
            chunk = next(self._it)
        except StopIteration:
            self._finish("ok")
            raise
        except BaseException:
            self._finish("upstream_error")
            raise
        n, usage = self._info(chunk)
        if usage is not None:
            self._usage = usage
        if n and self._req.open:
            self._req.tokens(n)
        return chunk

    def _finish(self, outcome: str) -> None:
        if not self._req.open:
            return
        if self._usage is not None:
            p, c = self._usage
            self._req.end(prompt_tokens=p, completion_tokens=c, status=200, tokens_source="usage", outcome=outcome)
        else:
            self._req.end(status=200, outcome=outcome)

    def close(self) -> None:
        """Closes the stream before its end: the request is recorded as the
        client's disconnect."""
        close = getattr(self._inner, "close", None)
        try:
            if callable(close):
                close()
        finally:
            self._finish("client_disconnected")

    def __enter__(self) -> "CountedStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._finish("client_disconnected")
        except Exception:  # interpreter shutdown: nothing to record to
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class AsyncCountedStream(CountedStream):
    """The same over an async iterator (``AsyncOpenAI``, ``ollama.AsyncClient``)."""

    _ait: Any = None

    def __aiter__(self) -> "AsyncCountedStream":
        return self

    async def __anext__(self) -> Any:
        if self._ait is None:
            self._ait = self._inner.__aiter__()
        try:
            chunk = await self._ait.__anext__()
        except StopAsyncIteration:
            self._finish("ok")
            raise
        except BaseException:
            self._finish("upstream_error")
            raise
        n, usage = self._info(chunk)
        if usage is not None:
            self._usage = usage
        if n and self._req.open:
            self._req.tokens(n)
        return chunk

    async def aclose(self) -> None:
        close = getattr(self._inner, "close", None) or getattr(self._inner, "aclose", None)
        try:
            if callable(close):
                r = close()
                if hasattr(r, "__await__"):
                    await r
        finally:
            self._finish("client_disconnected")

    async def __aenter__(self) -> "AsyncCountedStream":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def status_of(e: BaseException) -> Optional[int]:
    """The HTTP status an exception of a client carries (openai's
    APIStatusError.status_code, ollama's ResponseError.status_code)."""
    s = getattr(e, "status_code", None)
    return s if isinstance(s, int) else None
