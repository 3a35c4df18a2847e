"""The trigger names and the extension contracts of the pipeline.

:class:`~edgesim.pipeline.Edge` takes its collaborators through these ``Protocol`` types, not
concrete classes, so a test clock, a recording origin or another cache backend (Redis, say) fits
without touching the pipeline, and mypy checks that it does:

- :class:`Clock`: wall-clock seconds, for cache time;
- :class:`CacheStore`: where cached objects live (async: a store may be over the network);
- :class:`OriginClient`: sends the request CloudFront forwards and brings back the answer;
- :class:`FunctionInvoker`: runs a Lambda@Edge function on an event;
- :data:`LogSink`: receives each invocation's CloudWatch-style log lines.

Beside them, the four triggers (:class:`EventType`) and :func:`event_config`, which the runtime
and the event builders both read events' ``cf.config`` with.

The models these contracts mention are imported for type checking only, so this module stays at
the bottom of the import layers (docs/architecture.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from edgesim.cache.store import CachedObject, CacheStats
    from edgesim.http import EdgeRequest, EdgeResponse
    from edgesim.origins.targets import OriginTarget

__all__ = [
    "CacheStore",
    "Clock",
    "EventType",
    "FunctionInvoker",
    "Invocation",
    "LogSink",
    "MonotonicClock",
    "OriginClient",
    "SystemClock",
    "event_config",
]


class EventType(StrEnum):
    """The four Lambda@Edge triggers, valued with CloudFront's own strings."""

    VIEWER_REQUEST = "viewer-request"
    ORIGIN_REQUEST = "origin-request"
    ORIGIN_RESPONSE = "origin-response"
    VIEWER_RESPONSE = "viewer-response"

    @property
    def is_viewer(self) -> bool:
        """Viewer triggers have the tighter quotas (5 s, 128 MB, 40 KB)."""
        return self in (EventType.VIEWER_REQUEST, EventType.VIEWER_RESPONSE)

    @property
    def is_request(self) -> bool:
        """Request triggers may return a request or generate a response."""
        return self in (EventType.VIEWER_REQUEST, EventType.ORIGIN_REQUEST)


def event_config(event: Mapping[str, Any]) -> dict[str, Any]:
    """An event's ``cf.config`` (the request id, the trigger, the distribution), or an empty
    dict when ``event`` does not have CloudFront's shape."""
    try:
        config = event["Records"][0]["cf"]["config"]
    except (KeyError, IndexError, TypeError):
        return {}
    return config if isinstance(config, dict) else {}


class Clock(Protocol):
    """Wall-clock time in seconds since the epoch; injected so tests can move time."""

    def __call__(self) -> float: ...


class SystemClock:
    """The real wall clock."""

    def __call__(self) -> float:
        return time.time()


class MonotonicClock:
    """A monotonic clock for durations."""

    def __call__(self) -> float:
        return time.monotonic()


class CacheStore(Protocol):
    """A cache backend: whole objects by key, shared by the distributions of one edge location.

    A store keeps an object only when it is complete (``put`` returns False otherwise and drops
    whatever the key held), never returns part of one, and may evict to stay within its bounds.
    """

    async def get(self, key: str) -> CachedObject | None:
        """The object under ``key``, or None."""
        ...

    async def put(self, obj: CachedObject) -> bool:
        """Store ``obj`` under ``obj.key``, replacing what was there; False if not kept."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove the object under ``key``; False if there was none."""
        ...

    async def invalidate(self, distribution_id: str, paths: Iterable[str]) -> int:
        """Remove the distribution's objects that CloudFront invalidation ``paths`` match."""
        ...

    async def stats(self) -> CacheStats:
        """Objects, bytes and evictions now."""
        ...


class OriginClient(Protocol):
    """Fetches from origins: HTTP servers, and local folders served as S3 buckets."""

    async def fetch(self, request: EdgeRequest, target: OriginTarget) -> EdgeResponse:
        """The origin's answer; raises :class:`~edgesim.exceptions.OriginError` on failure."""
        ...

    async def aclose(self) -> None:
        """Close every connection."""
        ...


class Invocation(Protocol):
    """What a function returned, as JSON-decoded data, before any rule is checked."""

    @property
    def value(self) -> object: ...


class FunctionInvoker(Protocol):
    """Runs Lambda@Edge functions by name (the runtime's worker pools)."""

    async def invoke(self, name: str, event: dict[str, object]) -> Invocation:
        """Run function ``name`` on ``event``; raises a :class:`FunctionError` on failure."""
        ...

    async def aclose(self) -> None:
        """Stop every worker."""
        ...


LogSink = Callable[[str, list[str]], None]
"""Receives ``(function name, log lines)`` once per invocation, framed by START/END/REPORT."""
