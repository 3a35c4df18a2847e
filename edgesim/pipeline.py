"""The edge: one distribution's request pipeline, as CloudFront runs it.

:meth:`Edge.dispatch` is the only way a request enters edgesim. It reads top to bottom in
CloudFront's order::

    behavior match -> viewer-request -> cache lookup -> origin-request -> origin fetch
      -> origin-response -> cache store -> viewer-response -> CloudFront's headers

and knows nothing of aiohttp or mitmproxy: front doors hand it an :class:`EdgeRequest` and get back
an :class:`EdgeResult`. Function failures never leave as exceptions; they become CloudFront's own
error responses (502 ``LambdaValidationError``, 503 ``LambdaExecutionError``, 503
``LambdaLimitExceeded``), and an unreachable origin becomes 502/504 ``Error from cloudfront``.

There is no cache yet: every lookup is a miss, and nothing is stored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from edgesim import events, forwarding
from edgesim.config import BehaviorConfig, Distribution, FunctionAssociation
from edgesim.errors import (
    METHOD_NOT_ALLOWED_MESSAGE,
    ErrorPage,
    error_response,
    function_error_page,
    origin_error_page,
)
from edgesim.exceptions import (
    FunctionError,
    LambdaExecutionError,
    LambdaValidationError,
    OriginError,
    RuntimeUnavailableError,
)
from edgesim.http import EdgeRequest, EdgeResponse, Headers
from edgesim.origins import OriginFetcher
from edgesim.routing import match_behavior
from edgesim.rules import ResultKind, validate_result
from edgesim.runtime import FunctionRuntime, FunctionSpec, LogSink
from edgesim.targets import OriginTarget
from edgesim.trace import Stage, Trace, TraceRecord
from edgesim.types import EventType

__all__ = ["Edge", "EdgeResult", "function_specs"]

# CloudFront replays a viewer-request-generated or CloudFront-generated response with these.
_GENERATED = "LambdaGeneratedResponse from cloudfront"


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


class _Respond(Exception):
    """Ends the pipeline early with a finished response (a generated or error response)."""

    def __init__(self, response: EdgeResponse) -> None:
        self.response = response


class Edge:
    """One distribution at one edge location.

    The edge owns its function runtime and origin client unless they are passed in; call
    :meth:`aclose` when done.
    """

    def __init__(
        self,
        distribution: Distribution,
        *,
        runtime: FunctionRuntime | None = None,
        fetcher: OriginFetcher | None = None,
        log_sink: LogSink | None = None,
        edge_id: str | None = None,
    ) -> None:
        self.distribution = distribution
        self._log_sink = log_sink
        self.runtime = runtime or FunctionRuntime(function_specs(distribution), log_sink=log_sink)
        self.fetcher = fetcher or OriginFetcher()
        self.edge_id = edge_id or forwarding.new_edge_id()
        self._targets = {oid: origin.target() for oid, origin in distribution.origins.items()}

    async def aclose(self) -> None:
        """Stop every function worker and close origin connections."""
        await self.runtime.aclose()
        await self.fetcher.aclose()

    # -- the pipeline -------------------------------------------------------------------------

    async def dispatch(self, request: EdgeRequest) -> EdgeResult:
        """Serve one viewer request the way CloudFront would."""
        trace = Trace(request_id=forwarding.new_request_id())
        try:
            response, x_cache = await self._serve(request, trace)
        except _Respond as early:
            response = early.response
            x_cache = response.headers.get("X-Cache") or _GENERATED
        self._finish(request, response, x_cache, trace.request_id)
        return EdgeResult(response=response, trace=trace)

    async def _serve(self, viewer: EdgeRequest, trace: Trace) -> tuple[EdgeResponse, str]:
        behavior = match_behavior(self.distribution, viewer.uri)
        trace.add(TraceRecord(Stage.ROUTING, behavior.path_pattern))
        self._check_viewer_request(viewer, behavior, trace)

        request = viewer
        vr = await self._run_viewer_request(behavior, request, trace)
        if isinstance(vr, EdgeResponse):
            # A viewer-request response goes straight back: no cache, no viewer-response.
            return vr, _GENERATED
        request = vr
        request = self._apply_default_root_object(request)

        trace.add(TraceRecord(Stage.CACHE, "miss"))
        response, x_cache = await self._from_origin(request, behavior, trace)

        if response.status < 400:
            response = await self._run_response_trigger(
                EventType.VIEWER_RESPONSE, behavior, request, None, response, trace
            )
        return response, x_cache

    def _check_viewer_request(
        self, request: EdgeRequest, behavior: BehaviorConfig, trace: Trace
    ) -> None:
        """CloudFront's own refusals, before any function runs."""
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
                status = 307 if keep_method else 301
                headers = Headers(
                    [
                        ("Server", "CloudFront"),
                        ("Location", f"https://{host.split(':')[0]}{request.target}"),
                        ("Content-Length", "0"),
                        ("X-Cache", "Redirect from cloudfront"),
                    ]
                )
                trace.add(TraceRecord(Stage.ROUTING, "redirect-to-https"))
                raise _Respond(EdgeResponse(status=status, headers=headers))

    def _refuse(self, status: int, message: str, request: EdgeRequest, trace: Trace) -> None:
        page = ErrorPage(status=status, x_cache="Error from cloudfront", message=message)
        raise _Respond(error_response(page, trace.request_id, head=request.method == "HEAD"))

    def _apply_default_root_object(self, request: EdgeRequest) -> EdgeRequest:
        """CloudFront rewrites exactly ``/`` (not subfolders) to the default root object."""
        root = self.distribution.settings.default_root_object
        if root and request.uri == "/":
            return _replace_uri(request, "/" + root)
        return request

    async def _from_origin(
        self, request: EdgeRequest, behavior: BehaviorConfig, trace: Trace
    ) -> tuple[EdgeResponse, str]:
        """Origin-request, the origin (with group failover), origin-response."""
        group = self.distribution.origin_groups.get(behavior.origin)
        members = [group.primary, group.secondary] if group else [behavior.origin]
        can_fail_over = request.method in ("GET", "HEAD", "OPTIONS")
        response: EdgeResponse | None = None
        for attempt, origin_id in enumerate(members):
            last = attempt == len(members) - 1 or not can_fail_over
            target = self._targets[origin_id]
            outbound = forwarding.to_origin(
                request, target, request_id=trace.request_id, edge_id=self.edge_id
            )
            result = await self._run_origin_request(behavior, outbound, target, trace)
            if isinstance(result, EdgeResponse):
                # Generated at origin-request: origin-response does not run.
                return result, _GENERATED
            outbound, target = result
            started = time.perf_counter()
            try:
                response = await self.fetcher.fetch(outbound, target)
            except OriginError as error:
                trace.add(TraceRecord(Stage.ORIGIN, f"error-{error.status}", detail=error.reason))
                if last:
                    page = origin_error_page(error)
                    raise _Respond(
                        error_response(page, trace.request_id, head=request.method == "HEAD")
                    ) from error
                continue
            trace.add(TraceRecord(Stage.ORIGIN, str(response.status), _ms(started)))
            response = await self._run_response_trigger(
                EventType.ORIGIN_RESPONSE, behavior, outbound, target, response, trace
            )
            if last or group is None or response.status not in group.status_codes:
                break
        assert response is not None
        return (
            response,
            "Error from cloudfront" if response.status >= 400 else "Miss from cloudfront",
        )

    # -- functions ----------------------------------------------------------------------------

    async def _run_viewer_request(
        self, behavior: BehaviorConfig, request: EdgeRequest, trace: Trace
    ) -> EdgeRequest | EdgeResponse:
        """The viewer's request as the function left it, or the response it generated."""
        assoc = behavior.association(EventType.VIEWER_REQUEST)
        if assoc is None:
            return request
        event = events.viewer_request_event(
            self._context(trace), request, include_body=assoc.include_body
        )
        value, kind = await self._invoke(EventType.VIEWER_REQUEST, assoc, event, trace, request)
        if kind is ResultKind.RESPONSE:
            return events.generated_response(value)
        return events.apply_request(value, request)

    async def _run_origin_request(
        self, behavior: BehaviorConfig, request: EdgeRequest, target: OriginTarget, trace: Trace
    ) -> tuple[EdgeRequest, OriginTarget] | EdgeResponse:
        """The origin request and origin as the function left them, or its generated response."""
        assoc = behavior.association(EventType.ORIGIN_REQUEST)
        if assoc is None:
            return request, target
        event = events.origin_request_event(
            self._context(trace), request, target, include_body=assoc.include_body
        )
        value, kind = await self._invoke(EventType.ORIGIN_REQUEST, assoc, event, trace, request)
        if kind is ResultKind.RESPONSE:
            return events.generated_response(value)
        try:
            target = events.apply_origin(value, target, list(self._targets.values()))
        except OriginError as error:
            trace.add(TraceRecord(Stage.ORIGIN, f"error-{error.status}", detail=error.reason))
            page = origin_error_page(error)
            raise _Respond(
                error_response(page, trace.request_id, head=request.method == "HEAD")
            ) from error
        return events.apply_request(value, request), target

    async def _run_response_trigger(
        self,
        event_type: EventType,
        behavior: BehaviorConfig,
        request: EdgeRequest,
        target: OriginTarget | None,
        response: EdgeResponse,
        trace: Trace,
    ) -> EdgeResponse:
        assoc = behavior.association(event_type)
        if assoc is None:
            return response
        ctx = self._context(trace)
        if event_type is EventType.ORIGIN_RESPONSE:
            assert target is not None
            event = events.origin_response_event(ctx, request, target, response)
        else:
            event = events.viewer_response_event(ctx, request, response)
        value, _ = await self._invoke(event_type, assoc, event, trace, request)
        return events.apply_response(value, response)

    async def _invoke(
        self,
        event_type: EventType,
        assoc: FunctionAssociation,
        event: dict[str, Any],
        trace: Trace,
        request: EdgeRequest,
    ) -> tuple[dict[str, Any], ResultKind]:
        stage = Stage(event_type.value)
        started = time.perf_counter()
        try:
            try:
                invocation = await self.runtime.invoke(assoc.function, event)
            except RuntimeUnavailableError as unavailable:
                # CloudFront counts an unsupported or unstartable runtime as an execution error.
                raise LambdaExecutionError(str(unavailable)) from unavailable
            kind = validate_result(
                event_type, event, invocation.value, include_body=assoc.include_body
            )
        except FunctionError as error:
            if isinstance(error, LambdaValidationError):
                self._log_validation(assoc.function, trace.request_id, error)
            trace.add(
                TraceRecord(stage, error.code, _ms(started), event=event, detail=error.reason)
            )
            page = function_error_page(error)
            raise _Respond(
                error_response(page, trace.request_id, head=request.method == "HEAD")
            ) from error
        trace.add(
            TraceRecord(stage, kind.value, _ms(started), event=event, result=invocation.value)
        )
        # validate_result accepts only objects, so the value is a dict here.
        assert isinstance(invocation.value, dict)
        return invocation.value, kind

    def _log_validation(self, function: str, request_id: str, error: LambdaValidationError) -> None:
        """CloudFront logs refused results in its own log group; edgesim prints them inline."""
        if self._log_sink is not None:
            group = f"/aws/cloudfront/LambdaEdge/{self.distribution.settings.id}"
            self._log_sink(
                function, [f"{group} {request_id} ERROR Validation error: {error.reason}"]
            )

    def _context(self, trace: Trace) -> events.EventContext:
        settings = self.distribution.settings
        return events.EventContext(
            distribution_domain_name=settings.domain_name,
            distribution_id=settings.id,
            request_id=trace.request_id,
        )

    # -- CloudFront's headers -----------------------------------------------------------------

    def _finish(
        self, request: EdgeRequest, response: EdgeResponse, x_cache: str, request_id: str
    ) -> None:
        """Add what CloudFront adds to every response and drop what it never forwards."""
        headers = response.headers.without_hop_by_hop()
        for name in ("X-Cache", "Via", "X-Amz-Cf-Pop", "X-Amz-Cf-Id"):
            headers.remove(name)
        if x_cache == _GENERATED and "Server" not in headers:
            # Function-generated responses go out as CloudFront's own (observed, spec §5.1).
            headers.add("Server", "CloudFront")
        headers.add("X-Cache", x_cache)
        headers.add("Via", forwarding.via_value("1.1", self.edge_id))
        headers.add("X-Amz-Cf-Pop", self.distribution.settings.pop)
        headers.add("X-Amz-Cf-Id", request_id)
        response.headers = headers


def _replace_uri(request: EdgeRequest, uri: str) -> EdgeRequest:
    return replace(request, uri=uri)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
