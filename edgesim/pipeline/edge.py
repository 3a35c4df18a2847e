"""The edge: one distribution's request pipeline, as CloudFront runs it.

:meth:`Edge.dispatch` is the only way a request enters edgesim, and :meth:`Edge._serve` names
every stage in CloudFront's order::

    behavior match and CloudFront's own refusals -> viewer-request -> default root object
      -> cache lookup -> [miss: origin-request -> origin fetch (origin-group failover)
                               -> origin-response -> cache store]
      -> custom error page -> viewer-response -> CloudFront's headers

The cache stage (:mod:`edgesim.pipeline.cache_stage`) does lookup, collapsing and store only; it
is handed the origin side of a miss (:meth:`Edge._origin_side`) as a callable, the way an aiohttp
middleware is handed its handler. The edge knows nothing of aiohttp: front doors hand it an
:class:`EdgeRequest` and get back an :class:`EdgeResult`. Function failures never leave as
exceptions; they become CloudFront's own error responses (502 ``LambdaValidationError``, 503
``LambdaExecutionError``, 503 ``LambdaLimitExceeded``), and an unreachable origin becomes 502/504
``Error from cloudfront``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

from edgesim.cache.store import MemoryCacheStore
from edgesim.cache.ttl import varies_on_everything, viewer_vary
from edgesim.config import BehaviorConfig, CustomErrorResponse, Distribution
from edgesim.exceptions import OriginError
from edgesim.http import EdgeRequest, EdgeResponse, Headers
from edgesim.lambda_edge.triggers import Triggers
from edgesim.origins.fetcher import OriginFetcher
from edgesim.origins.forwarding import (
    forward_under_policies,
    new_edge_id,
    new_request_id,
    via_value,
)
from edgesim.origins.targets import OriginTarget
from edgesim.pages import (
    EarlyResponse,
    ErrorPage,
    XCache,
    error_response,
    origin_error_page,
)
from edgesim.pipeline.bodies import buffer_body_for, discard, drain, read_as_sent, replacing
from edgesim.pipeline.cache_stage import (
    DEFAULT_MAX_OBJECT_BYTES,
    CacheStage,
    Fetched,
    OriginSide,
    Served,
)
from edgesim.pipeline.cloudfront_headers import as_cloudfronts_own, with_cloudfront_headers
from edgesim.pipeline.functions import function_specs
from edgesim.pipeline.routing import (
    MAX_REQUEST_SIZE,
    MAX_URL_LENGTH,
    Redirect,
    match_behavior,
    refusal,
    unparsed_refusal,
)
from edgesim.runtime import FunctionRuntime
from edgesim.trace import (
    BehaviorOutcome,
    ErrorPageOutcome,
    InternalOutcome,
    OriginOutcome,
    Stage,
    Trace,
    TraceRecord,
)
from edgesim.types import (
    CacheStore,
    Clock,
    EventType,
    FunctionInvoker,
    LogSink,
    OriginClient,
    SystemClock,
)

__all__ = ["MAX_REQUEST_SIZE", "MAX_URL_LENGTH", "Edge", "EdgeResult"]

logger = logging.getLogger("edgesim")
INTERNAL = "edgesim could not handle this request; its log has the details."
# Failover is for requests CloudFront may send twice (spec cloudfront-caching.md §6).
_FAILOVER_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# How many paths' behaviors an edge remembers before it starts again.
_MATCHED_PATHS = 4096


@dataclass(frozen=True)
class EdgeResult:
    """What :meth:`Edge.dispatch` returns: the viewer's response and the trace behind it."""

    response: EdgeResponse
    trace: Trace

    @property
    def request_id(self) -> str:
        """CloudFront's request id, also the response's ``X-Amz-Cf-Id``."""
        return self.trace.request_id


class Edge:
    """One distribution at one edge location.

    Collaborators are the contracts of :mod:`edgesim.types`: ``runtime`` runs functions,
    ``origins`` fetches from origins, ``store`` keeps cached objects (it may be shared by several
    edges: one edge location's cache), ``clock`` is wall-clock seconds (tests move it). The edge
    builds and owns a runtime and an origin client when none is passed; :meth:`aclose` closes them.
    ``max_object_bytes`` bounds what one cached object may hold: larger answers pass through.
    """

    def __init__(
        self,
        distribution: Distribution,
        *,
        runtime: FunctionInvoker | None = None,
        origins: OriginClient | None = None,
        store: CacheStore | None = None,
        clock: Clock | None = None,
        log_sink: LogSink | None = None,
        edge_id: str | None = None,
        max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES,
    ) -> None:
        self.distribution = distribution
        self.runtime: FunctionInvoker = runtime or FunctionRuntime(
            function_specs(distribution), log_sink=log_sink
        )
        self.origins: OriginClient = origins or OriginFetcher()
        self.store: CacheStore = store if store is not None else MemoryCacheStore()
        self.edge_id = edge_id or new_edge_id()
        self._via = ("", "")  # (edge id, its Via value), remade when the edge id changes
        self._targets = {oid: origin.target() for oid, origin in distribution.origins.items()}
        self.triggers = Triggers(distribution, self.runtime, list(self._targets.values()), log_sink)
        self.cache = CacheStage(
            distribution, self.store, clock or SystemClock(), max_object_bytes=max_object_bytes
        )
        # Each path's behavior, once matched (bounded: paths are the viewer's to choose).
        self._matched: dict[str, BehaviorConfig] = {}
        # The first custom error response of each status wins, as CloudFront lists one each.
        self._custom_errors: dict[int, CustomErrorResponse] = {}
        for custom in distribution.custom_error_responses:
            self._custom_errors.setdefault(custom.error_code, custom)

    async def aclose(self) -> None:
        """Stop every function worker and close origin connections."""
        await self.runtime.aclose()
        await self.origins.aclose()

    async def invalidate(self, paths: list[str]) -> int:
        """Remove this distribution's cached objects that ``paths`` match; returns how many."""
        return await self.store.invalidate(self.distribution.settings.id, paths)

    async def dispatch(self, request: EdgeRequest, *, stream: bool = False) -> EdgeResult:
        """Serve one viewer request the way CloudFront would.

        With ``stream`` the response may carry its body as a stream (front doors that can send
        it as it arrives ask for this); otherwise the body is read whole before returning, so
        the trace is complete (``cache:store`` included) when the result arrives.
        """
        trace = Trace(request_id=new_request_id())
        try:
            response, x_cache = await self._serve(request, trace)
        except EarlyResponse as early:
            response, x_cache = early.response, early.x_cache
        except Exception:
            # A defect in edgesim itself: the viewer gets a CloudFront-style 502 and the
            # traceback goes to the log, so one broken request never looks like a hung proxy.
            logger.exception("edgesim failed on %s %s", request.method, request.target)
            trace.add(TraceRecord(Stage.INTERNAL_ERROR, InternalOutcome.DEFECT))
            page = ErrorPage(status=502, x_cache=XCache.ERROR, message=INTERNAL)
            response = error_response(page, trace.request_id, head=request.method == "HEAD")
            x_cache = page.x_cache
        response = self._cloudfront_headers(response, x_cache, trace.request_id)
        if not stream:
            await read_as_sent(response, trace)
        return EdgeResult(response=response, trace=trace)

    def refuse_unparsed(self, *, too_large: bool) -> EdgeResult:
        """CloudFront's own page for a request a front door could not read as HTTP (413 when it
        broke a size limit first, else 400), with CloudFront's headers; no stage runs."""
        trace = Trace(request_id=new_request_id())
        refused = unparsed_refusal(too_large=too_large)
        trace.add(TraceRecord(Stage.REFUSAL, refused.outcome))
        page = ErrorPage(status=refused.status, x_cache=XCache.ERROR, message=refused.message)
        response = error_response(page, trace.request_id)
        return EdgeResult(self._cloudfront_headers(response, XCache.ERROR, trace.request_id), trace)

    async def _serve(self, viewer: EdgeRequest, trace: Trace) -> tuple[EdgeResponse, XCache]:
        """Every stage, in CloudFront's order; a stage that ends the request raises
        :class:`EarlyResponse` with the viewer's answer."""
        behavior = self._behavior(viewer, trace)
        request = await self._viewer_request(behavior, viewer, trace)
        request = self._default_root_object(request)
        served = await self.cache.serve(
            request, behavior, trace, self._origin_side(behavior, trace)
        )
        page = await self._custom_error_page(served, trace)
        if page is not None:
            # A custom error page goes out as is: viewer-response does not run (spec §4.2).
            return page, served.x_cache
        return await self._viewer_response(behavior, served, trace), served.x_cache

    # -- stages, in order -------------------------------------------------------------------

    def _behavior(self, request: EdgeRequest, trace: Trace) -> BehaviorConfig:
        """The behavior the path matches, then CloudFront's own refusals and redirects."""
        behavior = self._matched.get(request.uri)
        if behavior is None:
            if len(self._matched) >= _MATCHED_PATHS:
                self._matched.clear()
            behavior = self._matched[request.uri] = match_behavior(self.distribution, request.uri)
        trace.add(
            TraceRecord(Stage.BEHAVIOR, BehaviorOutcome.MATCHED, detail=behavior.path_pattern)
        )
        refused = refusal(request, behavior, self.distribution.settings.domain_name)
        if refused is None:
            return behavior
        if isinstance(refused, Redirect):
            trace.add(TraceRecord(Stage.REDIRECT, refused.outcome))
            headers = Headers(
                [("Server", "CloudFront"), ("Location", refused.location), ("Content-Length", "0")]
            )
            response = EdgeResponse(status=refused.status, headers=headers)
            raise EarlyResponse(response, XCache.REDIRECT)
        trace.add(TraceRecord(Stage.REFUSAL, refused.outcome))
        page = ErrorPage(status=refused.status, x_cache=XCache.ERROR, message=refused.message)
        raise EarlyResponse(
            error_response(page, trace.request_id, head=request.method == "HEAD"), XCache.ERROR
        )

    async def _viewer_request(
        self, behavior: BehaviorConfig, request: EdgeRequest, trace: Trace
    ) -> EdgeRequest:
        """The request as the viewer-request function left it; a response it generated goes
        straight back (no cache, no viewer-response)."""
        if behavior.association(EventType.VIEWER_REQUEST) is None:
            return request
        await buffer_body_for(behavior, EventType.VIEWER_REQUEST, request)
        result = await self.triggers.viewer_request(behavior, request, trace)
        if isinstance(result, EdgeResponse):
            raise EarlyResponse(as_cloudfronts_own(result), XCache.GENERATED)
        return result

    def _default_root_object(self, request: EdgeRequest) -> EdgeRequest:
        """CloudFront rewrites exactly ``/`` (not subfolders) to the default root object."""
        root = self.distribution.settings.default_root_object
        if root and request.uri == "/":
            return replace(request, uri="/" + root)
        return request

    def _origin_side(self, behavior: BehaviorConfig, trace: Trace) -> OriginSide:
        """The origin side of a miss for this request, handed to the cache stage."""

        async def origin_side(request: EdgeRequest, validators: Headers) -> Fetched:
            return await self._fetch_with_failover(request, validators, behavior, trace)

        return origin_side

    async def _fetch_with_failover(
        self, request: EdgeRequest, validators: Headers, behavior: BehaviorConfig, trace: Trace
    ) -> Fetched:
        """Origin-request, the origin fetch and origin-response, for each member of the
        behavior's origin group in turn while the origin answers a failover status."""
        group = self.distribution.origin_groups.get(behavior.origin)
        members = [group.primary, group.secondary] if group else [behavior.origin]
        if request.method not in _FAILOVER_METHODS:
            members = members[:1]
        for attempt, origin_id in enumerate(members):
            last = attempt == len(members) - 1
            target = self._targets[origin_id]
            outbound, forwarded = forward_under_policies(
                request,
                target,
                policy=behavior.cache_policy_resolved,
                orp=behavior.origin_request_policy_resolved,
                cached_methods=behavior.cached_methods,
                request_id=trace.request_id,
                edge_id=self.edge_id,
                validators=validators,
            )
            await buffer_body_for(behavior, EventType.ORIGIN_REQUEST, outbound)
            result = await self.triggers.origin_request(behavior, outbound, target, trace)
            if isinstance(result, EdgeResponse):
                # Generated at origin-request: no origin, no origin-response; it may be cached,
                # and its Hits are CloudFront's own response as much as this Miss is.
                return Fetched(as_cloudfronts_own(result), XCache.GENERATED, generated=True)
            outbound, target = result
            try:
                response = await self._origin_fetch(outbound, target, trace)
            except OriginError as error:
                if last:
                    page = origin_error_page(error)
                    head = request.method == "HEAD"
                    return Fetched(error_response(page, trace.request_id, head=head), XCache.ERROR)
                continue
            vary_all = False
            if behavior.cache_policy_resolved is not None and "vary" in response.headers:
                # The viewer sees only the Vary names CloudFront keeps (spec §3.7); the cache
                # still needs to know of a `Vary: *` (§2.2).
                vary_all = varies_on_everything(response.headers)
                vary = viewer_vary(response.headers, forwarded)
                response.headers.remove("Vary")
                if vary is not None:
                    response.headers.add("Vary", vary)
            response = await replacing(
                response, self.triggers.origin_response(behavior, outbound, target, response, trace)
            )
            if last or group is None or response.status not in group.status_codes:
                x_cache = XCache.ERROR if response.status >= 400 else XCache.MISS
                return Fetched(response, x_cache, vary_all=vary_all)
            await discard(response)
        raise AssertionError("an origin group always has a last member")

    async def _origin_fetch(
        self, request: EdgeRequest, target: OriginTarget, trace: Trace
    ) -> EdgeResponse:
        """The origin's answer (its body may still be arriving)."""
        started = time.perf_counter()
        try:
            response = await self.origins.fetch(request, target)
        except OriginError as error:
            outcome = OriginOutcome(f"error-{error.status}")
            trace.add(TraceRecord(Stage.ORIGIN, outcome, _ms(started), detail=error.reason))
            raise
        trace.add(
            TraceRecord(Stage.ORIGIN, OriginOutcome.RESPONSE, _ms(started), status=response.status)
        )
        return response

    async def _custom_error_page(self, served: Served, trace: Trace) -> EdgeResponse | None:
        """The distribution's custom error page for this status, fetched like any object.

        The page comes through the behavior its path matches (cache included, viewer-request
        not run). If it cannot be fetched, the viewer gets what the page's origin returned.
        """
        status = served.response.status
        custom = self._custom_errors.get(status)
        if custom is None or custom.response_page_path is None or status < 400:
            return None
        # The origin's error is still stored as it would be; only the viewer sees the page.
        await drain(served.response)
        page_behavior = match_behavior(self.distribution, custom.response_page_path)
        page_request = EdgeRequest(
            method="GET",
            uri=custom.response_page_path,
            headers=Headers([("Host", self.distribution.settings.domain_name)]),
            client_ip=served.request.client_ip,
        )
        trace.add(TraceRecord(Stage.ERROR_PAGE, ErrorPageOutcome.FETCHED, detail=page_request.uri))
        origin = self._origin_side(page_behavior, trace)
        page = (await self.cache.serve(page_request, page_behavior, trace, origin)).response
        if page.status >= 400:
            return page
        headers = page.headers.copy()
        headers.remove("Age")
        code = custom.response_code or status
        result = EdgeResponse(status=code, headers=headers, body=page.body, stream=page.stream)
        if served.request.method == "HEAD":
            await discard(result)
            result.body = b""
        return result

    async def _viewer_response(
        self, behavior: BehaviorConfig, served: Served, trace: Trace
    ) -> EdgeResponse:
        """The response as the viewer-response function left it; skipped for errors."""
        if served.response.status >= 400 or behavior.association(EventType.VIEWER_RESPONSE) is None:
            return served.response
        return await replacing(
            served.response,
            self.triggers.viewer_response(behavior, served.request, served.response, trace),
        )

    def _cloudfront_headers(
        self, response: EdgeResponse, x_cache: XCache, request_id: str
    ) -> EdgeResponse:
        """The response with CloudFront's own lines (a new object: the one given may be shared
        by a collapsed fetch); see :mod:`edgesim.pipeline.cloudfront_headers`."""
        if self._via[0] != self.edge_id:
            self._via = (self.edge_id, via_value("1.1", self.edge_id))
        return with_cloudfront_headers(
            response,
            x_cache=x_cache,
            via=self._via[1],
            pop=self.distribution.settings.pop,
            request_id=request_id,
        )


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
