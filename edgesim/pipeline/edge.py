"""The edge: one distribution's request pipeline, as CloudFront runs it.

:meth:`Edge.dispatch` is the only way a request enters edgesim. It reads top to bottom in
CloudFront's order::

    behavior match -> viewer-request -> cache lookup -> origin-request -> origin fetch
      -> origin-response -> cache store -> custom error page -> viewer-response
      -> CloudFront's headers

and knows nothing of aiohttp: front doors hand it an :class:`EdgeRequest` and get back an
:class:`EdgeResult`. Function failures never leave as exceptions; they become CloudFront's own
error responses (502 ``LambdaValidationError``, 503 ``LambdaExecutionError``, 503
``LambdaLimitExceeded``), and an unreachable origin becomes 502/504 ``Error from cloudfront``.
The cache stage (lookup, revalidation, collapsing, store) is
:mod:`edgesim.pipeline.cache_stage`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from edgesim.cache.store import CacheStore, MemoryCacheStore
from edgesim.config import BehaviorConfig, Distribution
from edgesim.http import EdgeRequest, EdgeResponse, Headers
from edgesim.lambda_edge.triggers import Triggers
from edgesim.origins import forwarding
from edgesim.origins.fetcher import OriginFetcher
from edgesim.pages import (
    METHOD_NOT_ALLOWED_MESSAGE,
    EarlyResponse,
    ErrorPage,
    error_response,
)
from edgesim.pipeline.cache_stage import GENERATED, CacheStage, Served
from edgesim.pipeline.routing import match_behavior
from edgesim.runtime import FunctionRuntime, FunctionSpec, LogSink
from edgesim.trace import Stage, Trace, TraceRecord
from edgesim.types import Clock, SystemClock

__all__ = ["MAX_REQUEST_SIZE", "MAX_URL_LENGTH", "Edge", "EdgeResult", "function_specs"]

logger = logging.getLogger("edgesim")
INTERNAL = "edgesim could not handle this request; its log has the details."

# CloudFront's request limits (spec cloudfront-caching.md §5): over them the viewer gets 413.
MAX_URL_LENGTH = 8192
MAX_REQUEST_SIZE = 20480  # request line and headers, the query included, the body not


@dataclass(frozen=True)
class EdgeResult:
    """What :meth:`Edge.dispatch` returns: the viewer's response and the trace behind it."""

    response: EdgeResponse
    trace: Trace

    @property
    def request_id(self) -> str:
        """CloudFront's request id, also the response's ``X-Amz-Cf-Id``."""
        return self.trace.request_id


def function_specs(distribution: Distribution) -> list[FunctionSpec]:
    """The runtime's view of a distribution's functions."""
    return [
        FunctionSpec(
            name=f.name,
            runtime=f.runtime,
            code_dir=f.code,
            handler=f.handler,
            memory_mb=f.memory,
            timeout_s=float(f.timeout),
            max_concurrency=f.concurrency,
        )
        for f in distribution.functions.values()
    ]


class Edge:
    """One distribution at one edge location.

    The edge owns its function runtime and origin client unless they are passed in; call
    :meth:`aclose` when done. ``store`` may be shared by several edges (one edge location's
    cache); ``clock`` is wall-clock seconds, injected so tests can move time.
    """

    def __init__(
        self,
        distribution: Distribution,
        *,
        runtime: FunctionRuntime | None = None,
        fetcher: OriginFetcher | None = None,
        log_sink: LogSink | None = None,
        edge_id: str | None = None,
        store: CacheStore | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.distribution = distribution
        self.runtime = runtime or FunctionRuntime(function_specs(distribution), log_sink=log_sink)
        self.fetcher = fetcher or OriginFetcher()
        self.edge_id = edge_id or forwarding.new_edge_id()
        self.store: CacheStore = store if store is not None else MemoryCacheStore()
        self.clock: Clock = clock or SystemClock()
        targets = {oid: origin.target() for oid, origin in distribution.origins.items()}
        self.triggers = Triggers(distribution, self.runtime, list(targets.values()), log_sink)
        self.cache = CacheStage(
            distribution,
            triggers=self.triggers,
            fetcher=self.fetcher,
            targets=targets,
            store=self.store,
            clock=self.clock,
            edge_id=self.edge_id,
        )

    async def aclose(self) -> None:
        """Stop every function worker and close origin connections."""
        await self.runtime.aclose()
        await self.fetcher.aclose()

    def invalidate(self, paths: list[str]) -> int:
        """Remove this distribution's cached objects that ``paths`` match; returns how many."""
        return self.store.invalidate(self.distribution.settings.id, paths)

    async def dispatch(self, request: EdgeRequest) -> EdgeResult:
        """Serve one viewer request the way CloudFront would."""
        trace = Trace(request_id=forwarding.new_request_id())
        try:
            response, x_cache = await self._serve(request, trace)
        except EarlyResponse as early:
            response = early.response
            x_cache = response.headers.get("X-Cache") or GENERATED
        except Exception:
            # A defect in edgesim itself: the viewer gets a CloudFront-style 502 and the
            # traceback goes to the log, so one broken request never looks like a hung proxy.
            logger.exception("edgesim failed on %s %s", request.method, request.target)
            trace.add(TraceRecord(Stage.ROUTING, "internal-error"))
            page = ErrorPage(status=502, x_cache="Error from cloudfront", message=INTERNAL)
            response = error_response(page, trace.request_id, head=request.method == "HEAD")
            x_cache = page.x_cache
        return EdgeResult(response=self._finish(response, x_cache, trace.request_id), trace=trace)

    async def _serve(self, viewer: EdgeRequest, trace: Trace) -> tuple[EdgeResponse, str]:
        behavior = match_behavior(self.distribution, viewer.uri)
        trace.add(TraceRecord(Stage.ROUTING, behavior.path_pattern))
        self._check_viewer_request(viewer, behavior, trace)

        vr = await self.triggers.viewer_request(behavior, viewer, trace)
        if isinstance(vr, EdgeResponse):
            # A viewer-request response goes straight back: no cache, no viewer-response.
            return vr, GENERATED
        request = self._apply_default_root_object(vr)

        served = await self.cache.serve(request, behavior, trace)
        page = await self._custom_error_page(served, trace)
        if page is not None:
            # A custom error page goes out as is: viewer-response does not run (spec §4.2).
            return page, served.x_cache
        response = served.response
        if response.status < 400:
            response = await self.triggers.viewer_response(behavior, request, response, trace)
        return response, served.x_cache

    def _check_viewer_request(
        self, request: EdgeRequest, behavior: BehaviorConfig, trace: Trace
    ) -> None:
        """CloudFront's own refusals, before any function runs."""
        if len(request.target) > MAX_URL_LENGTH or _request_size(request) > MAX_REQUEST_SIZE:
            trace.add(TraceRecord(Stage.ROUTING, "request-too-large"))
            self._refuse(413, "Bad request. The request is too large.", request, trace)
        if request.method not in behavior.allowed_methods:
            trace.add(TraceRecord(Stage.ROUTING, "method-not-allowed"))
            self._refuse(403, METHOD_NOT_ALLOWED_MESSAGE, request, trace)
        if request.method == "GET" and request.body:
            trace.add(TraceRecord(Stage.ROUTING, "get-with-body"))
            self._refuse(403, "Bad request.", request, trace)
        if request.scheme != "https":
            if behavior.viewer_protocol_policy == "https-only":
                self._refuse(403, "Bad request.", request, trace)
            if behavior.viewer_protocol_policy == "redirect-to-https":
                host = request.headers.get("Host") or self.distribution.settings.domain_name
                keep_method = request.method not in ("GET", "HEAD")
                headers = Headers(
                    [
                        ("Server", "CloudFront"),
                        ("Location", f"https://{host.split(':')[0]}{request.target}"),
                        ("Content-Length", "0"),
                        ("X-Cache", "Redirect from cloudfront"),
                    ]
                )
                trace.add(TraceRecord(Stage.ROUTING, "redirect-to-https"))
                status = 307 if keep_method else 301
                raise EarlyResponse(EdgeResponse(status=status, headers=headers))

    def _refuse(self, status: int, message: str, request: EdgeRequest, trace: Trace) -> None:
        page = ErrorPage(status=status, x_cache="Error from cloudfront", message=message)
        raise EarlyResponse(error_response(page, trace.request_id, head=request.method == "HEAD"))

    def _apply_default_root_object(self, request: EdgeRequest) -> EdgeRequest:
        """CloudFront rewrites exactly ``/`` (not subfolders) to the default root object."""
        root = self.distribution.settings.default_root_object
        if root and request.uri == "/":
            return replace(request, uri="/" + root)
        return request

    async def _custom_error_page(self, served: Served, trace: Trace) -> EdgeResponse | None:
        """The distribution's custom error page for this status, fetched like any object.

        The page comes through the behavior its path matches (cache included, viewer-request
        not run). If it cannot be fetched, the viewer gets what the page's origin returned.
        """
        status = served.response.status
        custom = next(
            (c for c in self.distribution.custom_error_responses if c.error_code == status),
            None,
        )
        if custom is None or custom.response_page_path is None or status < 400:
            return None
        page_behavior = match_behavior(self.distribution, custom.response_page_path)
        page_request = EdgeRequest(
            method="GET",
            uri=custom.response_page_path,
            headers=Headers([("Host", self.distribution.settings.domain_name)]),
            client_ip=served.request.client_ip,
        )
        trace.add(TraceRecord(Stage.ROUTING, f"error-page:{custom.response_page_path}"))
        page = (await self.cache.serve(page_request, page_behavior, trace)).response
        if page.status >= 400:
            return page
        code = custom.response_code or status
        headers = page.headers.copy()
        headers.remove("Age")
        result = EdgeResponse(status=code, headers=headers, body=page.body)
        if served.request.method == "HEAD":
            result.body = b""
        return result

    def _finish(self, response: EdgeResponse, x_cache: str, request_id: str) -> EdgeResponse:
        """The response with what CloudFront adds to every response, without what it drops.

        A new object: the one given may be shared (a collapsed fetch answers several viewers).
        """
        headers = response.headers.without_hop_by_hop()
        headers.remove("X-Cache", "Via", "X-Amz-Cf-Pop", "X-Amz-Cf-Id")
        if x_cache == GENERATED and "Server" not in headers:
            # Function-generated responses go out as CloudFront's own (observed, spec §5.1).
            headers.add("Server", "CloudFront")
        headers.add("X-Cache", x_cache)
        headers.add("Via", forwarding.via_value("1.1", self.edge_id))
        headers.add("X-Amz-Cf-Pop", self.distribution.settings.pop)
        headers.add("X-Amz-Cf-Id", request_id)
        return replace(response, headers=headers)


def _request_size(request: EdgeRequest) -> int:
    line = len(request.method) + len(request.target) + len(" HTTP/1.1\r\n")
    return line + sum(len(name) + len(value) + 4 for name, value in request.headers)
