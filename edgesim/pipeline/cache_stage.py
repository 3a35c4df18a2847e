"""The cache stage of the pipeline: lookup, revalidation, collapsing, store.

:meth:`CacheStage.serve` takes the request as viewer-request left it and returns the response
with its ``X-Cache`` label. With no cache policy on the behavior (or ``CachingDisabled``, or a
method CloudFront does not cache) every request goes to the origin. Otherwise:

- a fresh object is a ``Hit`` (origin-request and origin-response do not run), with ``Age``;
- a stale object is revalidated with its validators: a 304 refreshes it (``RefreshHit``), a 5xx
  or an unreachable origin serves the stale copy for the error caching minimum TTL
  (``RefreshHit``), anything else replaces it;
- within ``stale-while-revalidate`` the stale copy is served at once and refreshed in the
  background;
- concurrent misses for one key make one origin request (request collapsing); the waiting
  requests are answered from what it stored, as ``Hit``.

Viewer validators and ``Range`` are answered here from the whole object: on a cacheable request
they are not forwarded, so the origin always sends a full, storable body.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, replace

from edgesim.cache.conditional import not_modified, range_response
from edgesim.cache.key import CacheKey, cache_key
from edgesim.cache.policies import CachePolicy
from edgesim.cache.store import CachedObject, CacheStore, Collapser
from edgesim.cache.ttl import Freshness, collapsible, edge_ttl, fields_not_stored
from edgesim.config import BehaviorConfig, Distribution
from edgesim.http import HOP_BY_HOP, EdgeRequest, EdgeResponse, Headers
from edgesim.lambda_edge.triggers import Triggers
from edgesim.origins import forwarding
from edgesim.origins.fetcher import OriginFetcher
from edgesim.origins.targets import OriginTarget
from edgesim.pages import EarlyResponse
from edgesim.pipeline.origin_side import ERROR, GENERATED, MISS, Fetched, OriginSide
from edgesim.tasks import spawn
from edgesim.trace import Stage, Trace, TraceRecord
from edgesim.types import Clock

__all__ = ["ERROR", "GENERATED", "HIT", "MISS", "REFRESH_HIT", "CacheStage", "Served"]


HIT = "Hit from cloudfront"
REFRESH_HIT = "RefreshHit from cloudfront"

# The viewer's validators and Range: the edge answers them from the whole object.
_NOT_FORWARDED = frozenset(
    {"if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "if-range", "range"}
)
# What a 304 may not change in the stored response.
_NOT_REFRESHED = frozenset({"content-length", "content-encoding", "content-range"}) | HOP_BY_HOP


@dataclass(frozen=True)
class Served:
    """A response for the viewer, its ``X-Cache`` label, and the request it answers."""

    response: EdgeResponse
    x_cache: str
    request: EdgeRequest


class CacheStage:
    """Cache lookup, origin-side triggers and origin fetch for one distribution."""

    def __init__(
        self,
        distribution: Distribution,
        *,
        triggers: Triggers,
        fetcher: OriginFetcher,
        targets: Mapping[str, OriginTarget],
        store: CacheStore,
        clock: Clock,
        edge_id: str,
    ) -> None:
        self._distribution = distribution
        self._origin = OriginSide(
            distribution, triggers=triggers, fetcher=fetcher, targets=targets, edge_id=edge_id
        )
        self._store = store
        self._clock = clock
        self._collapser: Collapser[Fetched] = Collapser()

    async def serve(self, request: EdgeRequest, behavior: BehaviorConfig, trace: Trace) -> Served:
        """The response for ``request``, from cache or origin."""
        policy = behavior.cache_policy_resolved
        if policy is None or not self._cacheable(policy, behavior, request.method):
            trace.add(TraceRecord(Stage.CACHE, "miss"))
            fetched = await self._origin.fetch(request, behavior, policy, trace)
            return Served(fetched.response, fetched.x_cache, request)

        key = cache_key(
            policy, request, distribution_domain=self._distribution.settings.domain_name
        )
        outbound = _without_validators(request)
        now = self._clock()
        obj = self._store.get(key.value)
        if obj is None and request.method == "HEAD":
            # A HEAD is answered from a stored GET object, or from an earlier HEAD's headers.
            obj = self._store.get(_head_key(key))
        if obj is not None and obj.is_fresh(now):
            trace.add(TraceRecord(Stage.CACHE, "hit"))
            return self._deliver(obj, request, now, HIT)
        if obj is not None and now < obj.fresh_until + obj.stale_while_revalidate:
            trace.add(TraceRecord(Stage.CACHE, "stale-while-revalidate"))
            _ = spawn(
                self._refresh_in_background(obj, key, outbound, behavior, policy),
                name=f"edgesim-revalidate-{key.path}",
            )
            return self._deliver(obj, request, now, REFRESH_HIT)

        trace.add(TraceRecord(Stage.CACHE, "stale" if obj is not None else "miss"))
        collapse_key = _head_key(key) if request.method == "HEAD" else key.value

        async def go_to_origin() -> Fetched:
            if obj is not None and request.method != "HEAD":
                return await self._revalidate(obj, key, outbound, behavior, policy, trace)
            return await self._fetch_and_store(key, outbound, behavior, policy, trace)

        fetched, leader = await self._collapser.run(collapse_key, go_to_origin)
        if not leader:
            trace.add(TraceRecord(Stage.CACHE, "collapsed"))
            orp = behavior.origin_request_policy_resolved
            if not collapsible(policy, fetched.response.headers, orp=orp):
                fetched = await self._fetch_and_store(key, outbound, behavior, policy, trace)
            elif (stored := self._store.get(collapse_key)) is not None:
                return self._deliver(stored, request, self._clock(), HIT)
        # Each viewer gets its own copy: a collapsed fetch answers several of them.
        response = replace(fetched.response, headers=fetched.response.headers.copy())
        if fetched.age is not None:
            response.headers.set("Age", str(fetched.age))
        if response.status == 200 and request.method in ("GET", "HEAD"):
            response = _for_viewer(response, request.headers)
        return Served(response, fetched.x_cache, request)

    async def _refresh_in_background(
        self,
        obj: CachedObject,
        key: CacheKey,
        request: EdgeRequest,
        behavior: BehaviorConfig,
        policy: CachePolicy,
    ) -> None:
        """Revalidate ``obj`` for stale-while-revalidate; a failure leaves the stale copy."""
        trace = Trace(request_id=forwarding.new_request_id())
        with contextlib.suppress(EarlyResponse):
            await self._collapser.run(
                key.value, lambda: self._revalidate(obj, key, request, behavior, policy, trace)
            )

    def _cacheable(self, policy: CachePolicy, behavior: BehaviorConfig, method: str) -> bool:
        if policy.caching_disabled:
            return False
        return method in ("GET", "HEAD") or (
            method == "OPTIONS" and "OPTIONS" in behavior.cached_methods
        )

    def _deliver(self, obj: CachedObject, request: EdgeRequest, now: float, label: str) -> Served:
        response = obj.copy_response()
        response.headers.set("Age", str(obj.age(now)))
        if request.method in ("GET", "HEAD"):
            response = _for_viewer(response, request.headers)
        if response.status >= 400:
            label = ERROR
        return Served(response, label, request)

    # -- origin side --------------------------------------------------------------------------

    async def _fetch_and_store(
        self,
        key: CacheKey,
        request: EdgeRequest,
        behavior: BehaviorConfig,
        policy: CachePolicy,
        trace: Trace,
    ) -> Fetched:
        fetched = await self._origin.fetch(request, behavior, policy, trace)
        self._put(key, request, fetched.response, behavior, policy, trace)
        return fetched

    async def _revalidate(
        self,
        obj: CachedObject,
        key: CacheKey,
        request: EdgeRequest,
        behavior: BehaviorConfig,
        policy: CachePolicy,
        trace: Trace,
    ) -> Fetched:
        """Ask the origin whether the stale ``obj`` still holds, with its validators."""
        validators = Headers()
        if obj.revalidate_conditionally:
            if (etag := obj.response.headers.get("ETag")) is not None:
                validators.add("If-None-Match", etag)
            if (modified := obj.response.headers.get("Last-Modified")) is not None:
                validators.add("If-Modified-Since", modified)
        fetched = await self._origin.fetch(request, behavior, policy, trace, validators=validators)
        status = fetched.response.status
        now = self._clock()
        if status == 304 and fetched.x_cache != GENERATED:
            headers = obj.response.headers.copy()
            for name, value in fetched.response.headers:
                if name.lower() not in _NOT_REFRESHED:
                    headers.set(name, value)
            refreshed = replace(obj.response, headers=headers)
            freshness = self._freshness(policy, behavior, request.method, refreshed, now)
            ttl = freshness.ttl if freshness is not None else 0.0
            self._store.put(replace(obj, response=refreshed, stored_at=now, fresh_until=now + ttl))
            trace.add(TraceRecord(Stage.CACHE, "refresh"))
            return Fetched(refreshed, REFRESH_HIT, age=0)
        if status >= 500 and obj.serve_stale_on_error:
            # CloudFront keeps serving what it has while the origin fails (spec §3.2, §3.5).
            hold = max(self._error_caching_min_ttl(status) or 10.0, obj.stale_if_error)
            self._store.put(replace(obj, fresh_until=now + hold))
            trace.add(TraceRecord(Stage.CACHE, "stale-served"))
            return Fetched(obj.copy_response(), REFRESH_HIT, age=obj.age(now))
        self._put(key, request, fetched.response, behavior, policy, trace)
        return fetched

    def _put(
        self,
        key: CacheKey,
        request: EdgeRequest,
        response: EdgeResponse,
        behavior: BehaviorConfig,
        policy: CachePolicy,
        trace: Trace,
    ) -> None:
        now = self._clock()
        freshness = self._freshness(policy, behavior, request.method, response, now)
        if freshness is None:
            return
        kept = response.headers.copy()
        # no-cache="Set-Cookie" keeps the object but not the named fields (spec §2.2).
        kept.remove(*fields_not_stored(response.headers))
        stored = CachedObject(
            # A HEAD answer has headers only: it is kept apart and serves HEAD requests only.
            key=_head_key(key) if request.method == "HEAD" else key.value,
            headers_only=request.method == "HEAD",
            distribution_id=self._distribution.settings.id,
            path=key.path,
            query=key.query,
            response=replace(response, headers=kept),
            stored_at=now,
            fresh_until=now + freshness.ttl,
            stale_while_revalidate=freshness.stale_while_revalidate,
            stale_if_error=freshness.stale_if_error,
            serve_stale_on_error=freshness.serve_stale_on_error,
            revalidate_conditionally=freshness.revalidate_conditionally,
        )
        if self._store.put(stored):
            trace.add(TraceRecord(Stage.CACHE, "store"))

    def _freshness(
        self,
        policy: CachePolicy,
        behavior: BehaviorConfig,
        method: str,
        response: EdgeResponse,
        now: float,
    ) -> Freshness | None:
        return edge_ttl(
            policy,
            method,
            response.status,
            response.headers,
            now=now,
            error_caching_min_ttl=self._error_caching_min_ttl(response.status),
            cached_methods=behavior.cached_methods,
        )

    def _error_caching_min_ttl(self, status: int) -> float | None:
        for custom in self._distribution.custom_error_responses:
            if custom.error_code == status:
                return float(custom.error_caching_min_ttl)
        return None


def _head_key(key: CacheKey) -> str:
    return key.value + "|HEAD"


def _without_validators(request: EdgeRequest) -> EdgeRequest:
    """The request minus the viewer's validators and Range, which the edge answers itself."""
    if not any(name.lower() in _NOT_FORWARDED for name, _ in request.headers):
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
