"""What the openai and ollama integrations share: where a request goes (the
latest running Meter, else the meter of `wattmeter run`) and a stream
wrapper that counts chunks as tokens and ends the request when the stream
does (exhausted, closed, raising, or dropped unfinished)."""

from __future__ import annotations

import warnings
import functools
import inspect
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

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
        return self._take(chunk)

    def _take(self, chunk: Any) -> Any:
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
        return self._take(chunk)

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


Usage = Optional[Tuple[Optional[int], Optional[int]]]


def wrap(fn: Callable[..., Any], path: str, model_of: Callable[[Any, Any], Any],
         stream_of: Callable[[Any], bool], usage_of: Callable[[Any], Usage], info: ChunkInfo) -> Callable[..., Any]:
    """``fn`` (a client's call, sync or async) recorded as a request at
    ``path``: a stream (``stream_of(kwargs)``) comes back wrapped to count
    its chunks; a response ends the request with ``usage_of(response)``."""

    def finish(req: Optional[Request], resp: Any) -> Any:
        if req is None:
            return resp
        u = usage_of(resp)
        if u is not None:
            req.end(prompt_tokens=u[0], completion_tokens=u[1], status=200, tokens_source="usage")
        else:
            req.end(status=200)
        return resp

    def failed(req: Optional[Request], e: BaseException) -> None:
        if req is not None:
            req.end(status=status_of(e), outcome="upstream_error")

    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def acall(*args: Any, **kwargs: Any) -> Any:
            stream = stream_of(kwargs)
            req = begin(path, model_of(args, kwargs), stream)
            try:
                resp = await fn(*args, **kwargs)
            except BaseException as e:
                failed(req, e)
                raise
            if stream and req is not None:
                return AsyncCountedStream(resp, req, info)
            return finish(req, resp)

        acall.__wattmeter__ = True  # type: ignore[attr-defined]
        return acall

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        stream = stream_of(kwargs)
        req = begin(path, model_of(args, kwargs), stream)
        try:
            resp = fn(*args, **kwargs)
        except BaseException as e:
            failed(req, e)
            raise
        if stream and req is not None:
            return CountedStream(resp, req, info)
        return finish(req, resp)

    call.__wattmeter__ = True  # type: ignore[attr-defined]
    return call


def wrapped(fn: Any) -> bool:
    """True for a call instrument() wrapped already."""
    return bool(getattr(fn, "__wattmeter__", False))
