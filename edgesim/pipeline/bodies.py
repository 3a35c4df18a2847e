"""Bodies on their way through the pipeline: kept for the cache as they stream, drained,
discarded, buffered for a function, or read whole for an in-process caller.

A streamed body must always be finished by someone: read to its end, or closed. These helpers
are how the stages do it, so no stage leaves an origin connection half-read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from edgesim.config import BehaviorConfig
from edgesim.exceptions import IncompleteBodyError
from edgesim.http import BodyStream, EdgeRequest, EdgeResponse
from edgesim.pages import EarlyResponse
from edgesim.trace import OriginOutcome, Stage, Trace, TraceRecord
from edgesim.types import EventType

__all__ = [
    "StoringBody",
    "buffer_body_for",
    "discard",
    "drain",
    "read_as_sent",
    "replacing",
]


class StoringBody:
    """Passes a streamed body on while keeping a copy, and stores the copy if the body arrived
    whole and within the size bound. Settles (wakes collapsed waiters) when it ends either way.
    """

    def __init__(
        self, source: BodyStream, limit: int, store: Callable[[bytes], Awaitable[None]]
    ) -> None:
        self._source = source
        self._limit = limit
        self._store = store
        self._chunks: list[bytes] = []
        self._size = 0
        self._settled = False
        self._on_settled: list[Callable[[], None]] = []

    def when_settled(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the body has ended, been cut or been abandoned."""
        if self._settled:
            callback()
        else:
            self._on_settled.append(callback)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._relay()

    async def _relay(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._source:
                if self._size <= self._limit:
                    self._size += len(chunk)
                    self._chunks.append(chunk)
                    if self._size > self._limit:
                        self._chunks.clear()  # over the bound: pass the rest through only
                yield chunk
            if self._size <= self._limit:
                await self._store(b"".join(self._chunks))
        finally:
            self._chunks.clear()
            self._settle()

    async def aclose(self) -> None:
        await self._source.aclose()
        self._settle()

    def _settle(self) -> None:
        if self._settled:
            return
        self._settled = True
        for callback in self._on_settled:
            callback()
        self._on_settled.clear()


async def drain(response: EdgeResponse) -> None:
    """Read a streamed body to its end without keeping it, so what it feeds (the cache's copy)
    completes; a body cut short simply ends."""
    if response.stream is None:
        return
    stream, response.stream = response.stream, None
    try:
        async for _ in stream:
            pass
    except IncompleteBodyError:
        pass
    finally:
        await stream.aclose()


async def discard(response: EdgeResponse) -> None:
    """Give up on a response's streamed body (its connection is not reused mid-body)."""
    if response.stream is not None:
        stream, response.stream = response.stream, None
        await stream.aclose()


async def replacing(original: EdgeResponse, result: Awaitable[EdgeResponse]) -> EdgeResponse:
    """A response trigger's result; a streamed body the function replaced is closed, and so is
    one whose request ended in the function's error page."""
    try:
        response = await result
    except EarlyResponse:
        await discard(original)
        raise
    if original.stream is not None and response.stream is not original.stream:
        await discard(original)
    return response


async def buffer_body_for(
    behavior: BehaviorConfig, trigger: EventType, request: EdgeRequest
) -> None:
    """A function with ``include_body`` sees the body, so CloudFront buffers it for that
    trigger; otherwise it streams on to the origin."""
    association = behavior.association(trigger)
    if association is not None and association.include_body:
        await request.read()


async def read_as_sent(response: EdgeResponse, trace: Trace) -> None:
    """Buffer a streamed body; a body the origin cut short keeps the bytes that came, as the
    viewer would have received them."""
    if response.stream is None:
        return
    stream, response.stream = response.stream, None
    chunks: list[bytes] = []
    try:
        async for chunk in stream:
            chunks.append(chunk)
    except IncompleteBodyError as cut:
        trace.add(TraceRecord(Stage.ORIGIN, OriginOutcome.BODY_CUT, detail=str(cut)))
    finally:
        await stream.aclose()
    response.body = b"".join(chunks)
