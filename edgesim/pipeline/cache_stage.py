"""The cache stage of the pipeline: lookup, collapsing, store. Nothing else.

:meth:`CacheStage.serve` takes the request as viewer-request left it, the behavior, and the origin
side of a miss as a callable (:data:`OriginSide`), and returns the response with its ``X-Cache``.
With no cache policy on the behavior (or ``CachingDisabled``, or a method CloudFront does not
cache) every request goes to the origin side. Otherwise:

- a fresh object is a ``Hit`` (the origin side does not run), with ``Age``;
- a stale object is revalidated with its validators: a 304 refreshes it (``RefreshHit``), a 5xx
  or an unreachable origin serves the stale copy for the error caching minimum TTL
  (``RefreshHit``), anything else replaces it;
- within ``stale-while-revalidate`` the stale copy is served at once and refreshed in the
  background;
- concurrent misses for one key make one origin request (request collapsing): the others wait
  until the first answer's body has arrived, then are answered from what it stored (``Hit``), or,
  when nothing could be shared, go to the origin side themselves.

An origin body streams through to the viewer while a copy is kept; the object is stored when the
body arrived whole, and never when it is larger than ``max_object_bytes``. Viewer validators and
``Range`` are answered here from the whole object: on a cacheable request they are not forwarded,
so the origin always sends a full, storable body.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from edgesim.cache.conditional import not_modified, range_response
from edgesim.cache.key import CacheKey, cache_key
from edgesim.cache.policies import CachePolicy, is_cached_method
from edgesim.cache.store import CachedObject
from edgesim.cache.ttl import (
    Freshness,
    collapsible,
    edge_ttl,
    error_caching_floor,
    fields_not_stored,
)
from edgesim.config import BehaviorConfig, Distribution
from edgesim.http import HOP_BY_HOP, EdgeRequest, EdgeResponse, Headers
from edgesim.origins.forwarding import new_request_id
from edgesim.pages import EarlyResponse, XCache
from edgesim.pipeline.bodies import StoringBody, discard, drain
from edgesim.tasks import spawn
from edgesim.trace import CacheOutcome, Stage, Trace, TraceRecord
from edgesim.types import CacheStore, Clock

__all__ = [
    "DEFAULT_MAX_OBJECT_BYTES",
    "CacheStage",
    "Fetched",
    "OriginSide",
    "Served",
]

DEFAULT_MAX_OBJECT_BYTES = 64 * 1024 * 1024

# The viewer's validators and Range: the edge answers them from the whole object.
_NOT_FORWARDED = frozenset(
    {"if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "if-range", "range"}
)
# What a 304 may not change in the stored response.
_NOT_REFRESHED = frozenset({"content-length", "content-encoding", "content-range"}) | HOP_BY_HOP


@dataclass(frozen=True)
class Fetched:
    """What the origin side answered, and its ``X-Cache`` label.

    ``generated`` marks a response an origin-request function generated (no origin answered);
    ``age`` is set when the answer is a stored object (a stale copy served on error);
    ``vary_all`` says the origin sent ``Vary: *``, which the viewer never sees (spec §3.7) but
    which decides how the object is kept (§2.2).
    """

    response: EdgeResponse
    x_cache: XCache
    age: int | None = None
    generated: bool = False
    vary_all: bool = False


OriginSide = Callable[[EdgeRequest, Headers], Awaitable[Fetched]]
"""The origin side of a miss: ``(request to forward, the edge's validators) -> answer``.

The validators are empty except when the edge revalidates a stale object.
"""


@dataclass(frozen=True)
class Served:
    """A response for the viewer, its ``X-Cache`` label, and the request it answers."""

    response: EdgeResponse
    x_cache: XCache
    request: EdgeRequest


@dataclass(frozen=True)
class _Lookup:
    """One cacheable request on its way through the stage."""

    key: CacheKey
    store_key: str
    request: EdgeRequest  # as forwarded: without the viewer's validators and Range
    behavior: BehaviorConfig
    policy: CachePolicy
    trace: Trace
    origin: OriginSide


@dataclass
class _Inflight:
    """A miss being fetched; waiters wake when its body has arrived (or failed)."""

    done: asyncio.Event = field(default_factory=asyncio.Event)
    shared: bool = False


class CacheStage:
    """Lookup, collapsing and store for one distribution, over a shared store."""

    def __init__(
        self,
        distribution: Distribution,
        store: CacheStore,
        clock: Clock,
        *,
        max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES,
    ) -> None:
        self._distribution = distribution
        self._store = store
        self._clock = clock
        self._max_object_bytes = max_object_bytes
        self._inflight: dict[str, _Inflight] = {}
        self._error_min_ttls = {
            c.error_code: float(c.error_caching_min_ttl)
            for c in distribution.custom_error_responses
        }

    async def serve(
        self, request: EdgeRequest, behavior: BehaviorConfig, trace: Trace, origin: OriginSide
    ) -> Served:
        """The response for ``request``, from the store or from ``origin``."""
        policy = behavior.cache_policy_resolved
        if (
            policy is None
            or policy.caching_disabled
            or not is_cached_method(request.method, behavior.cached_methods)
        ):
            # Not cached: CloudFront goes to the origin, validators and Range included.
            trace.add(TraceRecord(Stage.CACHE, CacheOutcome.MISS))
            fetched = await origin(request, Headers())
            return Served(fetched.response, fetched.x_cache, request)

        key = cache_key(
            policy, request, distribution_domain=self._distribution.settings.domain_name
        )
        look = _Lookup(
            key=key,
            store_key=_head_key(key) if request.method == "HEAD" else key.value,
            request=_without_validators(request),
            behavior=behavior,
            policy=policy,
            trace=trace,
            origin=origin,
        )
        now = self._clock()
        obj = await self._store.get(key.value)
        if obj is None and request.method == "HEAD":
            # A HEAD is answered from a stored GET object, or from an earlier HEAD's headers.
            obj = await self._store.get(look.store_key)
        if obj is not None and obj.is_fresh(now):
            trace.add(TraceRecord(Stage.CACHE, CacheOutcome.HIT))
            return _deliver(obj, request, now, XCache.HIT)
        if obj is not None and now < obj.fresh_until + obj.stale_while_revalidate:
            trace.add(TraceRecord(Stage.CACHE, CacheOutcome.STALE_WHILE_REVALIDATE))
            background = replace(look, trace=Trace(request_id=new_request_id()))
            _ = spawn(self._refresh(obj, background), name=f"edgesim-revalidate-{key.path}")
            return _deliver(obj, request, now, XCache.REFRESH_HIT)

        trace.add(TraceRecord(Stage.CACHE, CacheOutcome.STALE if obj else CacheOutcome.MISS))
        waiting = self._inflight.get(look.store_key)
        if waiting is None:
            fetched = await self._lead(look, obj)
        else:
            await waiting.done.wait()
            trace.add(TraceRecord(Stage.CACHE, CacheOutcome.COLLAPSED))
            if waiting.shared and (stored := await self._store.get(look.store_key)) is not None:
                return _deliver(stored, request, self._clock(), XCache.HIT)
            # Nothing this viewer may share: it goes to the origin side itself, and gets its
            # own answer (its own error page and request id included).
            fetched = await self._fetch_and_store(look)
        # Each viewer gets its own copy of the headers: a stored object answers several.
        response = replace(fetched.response, headers=fetched.response.headers.copy())
        if fetched.age is not None:
            response.headers.set("Age", str(fetched.age))
        if response.status == 200 and request.method in ("GET", "HEAD"):
            if _asks_about_the_whole(request.headers):
                await response.read()
            response = _for_viewer(response, request.headers)
        return Served(response, fetched.x_cache, request)

    async def _lead(self, look: _Lookup, stale: CachedObject | None) -> Fetched:
        """Fetch (or revalidate) for every viewer that arrives meanwhile."""
        inflight = _Inflight()
        self._inflight[look.store_key] = inflight

        def settle() -> None:
            if self._inflight.get(look.store_key) is inflight:
                del self._inflight[look.store_key]
            inflight.done.set()

        try:
            if stale is not None and look.request.method != "HEAD":
                fetched = await self._revalidate(stale, look)
            else:
                fetched = await self._fetch_and_store(look)
        except BaseException:
            settle()
            raise
        inflight.shared = collapsible(
            look.policy,
            fetched.response.headers,
            orp=look.behavior.origin_request_policy_resolved,
            vary_all=fetched.vary_all,
        )
        if isinstance(fetched.response.stream, StoringBody):
            fetched.response.stream.when_settled(settle)
        else:
            settle()
        return fetched

    async def _refresh(self, obj: CachedObject, look: _Lookup) -> None:
        """Revalidate ``obj`` for stale-while-revalidate; a failure leaves the stale copy."""
        if look.store_key in self._inflight:
            return
        with contextlib.suppress(EarlyResponse):
            fetched = await self._lead(look, obj)
            await drain(fetched.response)

    async def _fetch_and_store(self, look: _Lookup) -> Fetched:
        fetched = await look.origin(look.request, Headers())
        return replace(fetched, response=await self._put(look, fetched))

    async def _revalidate(self, obj: CachedObject, look: _Lookup) -> Fetched:
        """Ask the origin whether the stale ``obj`` still holds, with its validators."""
        validators = Headers()
        if obj.revalidate_conditionally:
            if (etag := obj.response.headers.get("ETag")) is not None:
                validators.add("If-None-Match", etag)
            if (modified := obj.response.headers.get("Last-Modified")) is not None:
                validators.add("If-Modified-Since", modified)
        fetched = await look.origin(look.request, validators)
        status = fetched.response.status
        now = self._clock()
        if status == 304 and not fetched.generated:
            await discard(fetched.response)
            headers = obj.response.headers.copy()
            for name, value in fetched.response.headers:
                if name.lower() not in _NOT_REFRESHED:
                    headers.set(name, value)
            refreshed = replace(obj.response, headers=headers)
            freshness = self._freshness(
                look, refreshed, now, vary_all=not obj.revalidate_conditionally
            )
            ttl = freshness.ttl if freshness is not None else 0.0
            await self._store.put(
                replace(obj, response=refreshed, stored_at=now, fresh_until=now + ttl)
            )
            look.trace.add(TraceRecord(Stage.CACHE, CacheOutcome.REFRESH))
            return Fetched(replace(refreshed, headers=headers.copy()), XCache.REFRESH_HIT, age=0)
        if status >= 500 and obj.serve_stale_on_error:
            # CloudFront keeps serving what it has while the origin fails (spec §3.2, §3.5).
            await discard(fetched.response)
            floor = error_caching_floor(self._error_min_ttls.get(status))
            hold = max(floor, obj.stale_if_error)
            await self._store.put(replace(obj, fresh_until=now + hold))
            look.trace.add(TraceRecord(Stage.CACHE, CacheOutcome.STALE_SERVED))
            return Fetched(obj.copy_response(), XCache.REFRESH_HIT, age=obj.age(now))
        return replace(fetched, response=await self._put(look, fetched))

    async def _put(self, look: _Lookup, fetched: Fetched) -> EdgeResponse:
        """Store the answer if CloudFront keeps it; a streamed body is stored when it has
        arrived whole. Returns the response to pass on (its stream wrapped to keep a copy)."""
        response = fetched.response
        now = self._clock()
        freshness = self._freshness(look, response, now, vary_all=fetched.vary_all)
        if freshness is None:
            return response
        kept = response.headers.copy()
        # no-cache="Set-Cookie" keeps the object but not the named fields (spec §2.2).
        kept.remove(*fields_not_stored(response.headers))

        async def store(body: bytes) -> None:
            obj = CachedObject(
                # A HEAD answer has headers only: it is kept apart and serves HEAD requests only.
                key=look.store_key,
                headers_only=look.request.method == "HEAD",
                distribution_id=self._distribution.settings.id,
                path=look.key.path,
                query=look.key.query,
                response=replace(response, headers=kept, body=body, stream=None),
                stored_at=now,
                fresh_until=now + freshness.ttl,
                stale_while_revalidate=freshness.stale_while_revalidate,
                stale_if_error=freshness.stale_if_error,
                serve_stale_on_error=freshness.serve_stale_on_error,
                revalidate_conditionally=freshness.revalidate_conditionally,
            )
            if await self._store.put(obj):
                look.trace.add(TraceRecord(Stage.CACHE, CacheOutcome.STORE))

        if response.stream is None:
            await store(response.body)
            return response
        declared = response.headers.get("Content-Length") or ""
        if declared.isdigit() and int(declared) > self._max_object_bytes:
            return response  # too large to keep: it only passes through
        body = StoringBody(response.stream, self._max_object_bytes, store)
        return replace(response, stream=body)

    def _freshness(
        self, look: _Lookup, response: EdgeResponse, now: float, *, vary_all: bool = False
    ) -> Freshness | None:
        return edge_ttl(
            look.policy,
            look.request.method,
            response.status,
            response.headers,
            now=now,
            error_caching_min_ttl=self._error_min_ttls.get(response.status),
            cached_methods=look.behavior.cached_methods,
            vary_all=vary_all,
        )


def _deliver(obj: CachedObject, request: EdgeRequest, now: float, label: XCache) -> Served:
    response = obj.copy_response()
    response.headers.set("Age", str(obj.age(now)))
    if request.method in ("GET", "HEAD"):
        response = _for_viewer(response, request.headers)
    if response.status >= 400:
        label = XCache.ERROR
    return Served(response, label, request)


def _head_key(key: CacheKey) -> str:
    return key.value + "|HEAD"


def _asks_about_the_whole(headers: Headers) -> bool:
    return any(name.lower() in _NOT_FORWARDED for name, _ in headers)


def _without_validators(request: EdgeRequest) -> EdgeRequest:
    """The request minus the viewer's validators and Range, which the edge answers itself."""
    if not _asks_about_the_whole(request.headers):
        return request
    headers = request.headers.copy()
    headers.remove(*_NOT_FORWARDED)
    return replace(request, headers=headers)


def _for_viewer(response: EdgeResponse, viewer_headers: Headers) -> EdgeResponse:
    """Answer the viewer's validators (304) and ``Range`` (206/416) from a whole 200 object."""
    if response.status != 200:
        return response
    unchanged = not_modified(viewer_headers, response)
    if unchanged is not None:
        if (age := response.headers.get("Age")) is not None:
            unchanged.headers.set("Age", age)
        return unchanged
    return range_response(viewer_headers, response)
