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
body arrived whole, and never when it is larger than ``max_object_bytes``. Viewer validators are
answered here: on a cacheable request they are not forwarded, so the origin sends a full,
storable body. Ranges follow CloudFront (spec cloudfront-caching.md §3.3): a stored object has
them cut from it; otherwise ``Range`` goes to the origin, whose own 206 is passed on and kept
as that range's part, and whose whole object reaches this viewer whole (200) and is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from edgesim.cache.conditional import (
    answer_from_object,
    asks_if_modified,
    for_the_origin,
    if_range_holds,
    not_modified,
)
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

# What a 304 may not change in the stored response.
_NOT_REFRESHED = frozenset({"content-length", "content-encoding", "content-range"}) | HOP_BY_HOP


# Not frozen: a frozen dataclass sets each field through object.__setattr__, several times the
# cost of a plain one, and every request makes these. Nothing changes them once made.
@dataclass(slots=True)
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


@dataclass(slots=True)
class Served:
    """A response for the viewer, its ``X-Cache`` label, and the request it answers."""

    response: EdgeResponse
    x_cache: XCache
    request: EdgeRequest


@dataclass(slots=True)
class _Lookup:
    """One cacheable request on its way through the stage.

    ``store_key`` keeps the object; ``part_key``, set while the viewer's ``Range`` goes to the
    origin, keeps the 206 part the origin may answer with.
    """

    key: CacheKey
    store_key: str
    part_key: str | None
    request: EdgeRequest  # as forwarded: without the viewer's validators
    behavior: BehaviorConfig
    policy: CachePolicy
    trace: Trace
    origin: OriginSide

    @property
    def inflight_key(self) -> str:
        return self.part_key or self.store_key


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
        # Each behavior's cache policy, read once: the config model's property is slow to reach
        # on every request. Keyed by id and holding the behavior, so an id is never reused.
        self._policies: dict[int, tuple[BehaviorConfig, CachePolicy | None]] = {}
        self._error_min_ttls = {
            c.error_code: float(c.error_caching_min_ttl)
            for c in distribution.custom_error_responses
        }

    async def serve(
        self, request: EdgeRequest, behavior: BehaviorConfig, trace: Trace, origin: OriginSide
    ) -> Served:
        """The response for ``request``, from the store or from ``origin``."""
        known = self._policies.get(id(behavior))
        if known is None or known[0] is not behavior:
            if len(self._policies) >= 256:
                self._policies.clear()
            known = self._policies[id(behavior)] = (behavior, behavior.cache_policy_resolved)
        policy = known[1]
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
        ranged = request.method == "GET" and "range" in request.headers
        if request.method == "GET" and not ranged:
            # The common hit, found without the lookup record a miss needs.
            held = await self._store.get(key.value)
            if held is not None and held.is_fresh(now := self._clock()):
                trace.add(TraceRecord(Stage.CACHE, CacheOutcome.HIT))
                return _deliver(held, request, now, XCache.HIT)
        look = _Lookup(
            key=key,
            store_key=key.for_head() if request.method == "HEAD" else key.value,
            part_key=key.for_range(request.headers.get("Range") or "") if ranged else None,
            # The viewer's validators stripped only when the origin is asked (not on a hit);
            # a ranged lookup reads the stripped headers (If-Range stays) to find its part.
            request=for_the_origin(request, with_range=True) if ranged else request,
            behavior=behavior,
            policy=policy,
            trace=trace,
            origin=origin,
        )
        now = self._clock()
        obj = await self._find(look)
        if obj is not None and look.part_key not in (None, obj.key):
            # The whole object is held: the range is cut from it, and it alone is revalidated.
            look = replace(look, part_key=None, request=for_the_origin(request, with_range=False))
        if obj is not None and obj.is_fresh(now):
            trace.add(TraceRecord(Stage.CACHE, CacheOutcome.HIT))
            return _deliver(obj, request, now, XCache.HIT)
        if not ranged:
            look = replace(look, request=for_the_origin(request, with_range=False))
        if obj is not None and now < obj.fresh_until + obj.stale_while_revalidate:
            trace.add(TraceRecord(Stage.CACHE, CacheOutcome.STALE_WHILE_REVALIDATE))
            background = replace(look, trace=Trace(request_id=new_request_id()))
            _ = spawn(self._refresh(obj, background), name=f"edgesim-revalidate-{key.path}")
            return _deliver(obj, request, now, XCache.REFRESH_HIT)

        trace.add(TraceRecord(Stage.CACHE, CacheOutcome.STALE if obj else CacheOutcome.MISS))
        waiting = self._inflight.get(look.inflight_key)
        if waiting is None:
            fetched = await self._lead(look, obj)
        else:
            await waiting.done.wait()
            trace.add(TraceRecord(Stage.CACHE, CacheOutcome.COLLAPSED))
            if waiting.shared and (stored := await self._find(look)) is not None:
                return _deliver(stored, request, self._clock(), XCache.HIT)
            # Nothing this viewer may share: it goes to the origin side itself, and gets its
            # own answer (its own error page and request id included).
            fetched = await self._fetch_and_store(look)
        # Each viewer gets its own copy of the headers: a stored object answers several.
        response = replace(fetched.response, headers=fetched.response.headers.copy())
        if fetched.age is not None:
            # A stored object (refreshed, or stale on error): answered as a hit is.
            response.headers.set("Age", str(fetched.age))
            response = answer_from_object(request.method, request.headers, response)
        elif (
            response.status == 200
            and request.method in ("GET", "HEAD")
            and asks_if_modified(request.headers)
        ):
            # Read whole first: the 304 carries no body, and the cache's copy must still end.
            await response.read()
            response = not_modified(request.headers, response) or response
        return Served(response, fetched.x_cache, request)

    async def _find(self, look: _Lookup) -> CachedObject | None:
        """The stored object for this request: the whole object (for a HEAD, else an earlier
        HEAD's headers), else the part kept for this very range (spec §3.3) when the viewer's
        ``If-Range`` does not ask for another version."""
        obj = await self._store.get(look.key.value)
        if obj is None and look.store_key != look.key.value:
            obj = await self._store.get(look.store_key)
        if obj is None and look.part_key is not None:
            obj = await self._store.get(look.part_key)
            if obj is not None and not if_range_holds(look.request.headers, obj.response):
                return None
        return obj

    async def _lead(self, look: _Lookup, stale: CachedObject | None) -> Fetched:
        """Fetch (or revalidate) for every viewer that arrives meanwhile."""
        inflight = _Inflight()
        self._inflight[look.inflight_key] = inflight

        def settle() -> None:
            if self._inflight.get(look.inflight_key) is inflight:
                del self._inflight[look.inflight_key]
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
        if look.inflight_key in self._inflight:
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
        # A part the origin cut is kept under its range; one nobody asked for is not kept.
        store_key = look.part_key if response.status == 206 else look.store_key
        if freshness is None or store_key is None:
            return response
        kept = response.headers.copy()
        # no-cache="Set-Cookie" keeps the object but not the named fields (spec §2.2).
        kept.remove(*fields_not_stored(response.headers))

        async def store(body: bytes) -> None:
            obj = CachedObject(
                # A HEAD answer has headers only: it is kept apart and serves HEAD requests only.
                key=store_key,
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
    stored = obj.response
    headers = stored.headers.copy()
    if "age" in headers:
        headers.set("Age", str(obj.age(now)))
    else:
        headers.add("Age", str(obj.age(now)))
    # Built directly: the copy the viewer may change is the headers' (cf. copy_response).
    response = EdgeResponse(
        status=stored.status,
        headers=headers,
        body=stored.body,
        reason=stored.reason,
        stream=stored.stream,
    )
    response = answer_from_object(request.method, request.headers, response)
    if response.status >= 400:
        label = XCache.ERROR
    return Served(response, label, request)
