"""Running a behavior's Lambda@Edge functions at each trigger.

Each trigger method builds the trigger's event, invokes the function in its worker pool, parses
the result against Lambda@Edge's rules into a typed value and applies that value. Every outcome
is a trace record; a failed or refused invocation ends the request with CloudFront's error page
(:class:`EarlyResponse`), so the pipeline reads as if functions always succeed.
"""

from __future__ import annotations

import binascii
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from edgesim.config import BehaviorConfig, Distribution, FunctionAssociation
from edgesim.exceptions import (
    FunctionError,
    LambdaExecutionError,
    LambdaValidationError,
    OriginError,
    RuntimeUnavailableError,
)
from edgesim.http import EdgeRequest, EdgeResponse
from edgesim.lambda_edge import events
from edgesim.lambda_edge.rules import ParsedResponse, ParsedResult, ResultKind, parse_result
from edgesim.origins.targets import OriginTarget
from edgesim.pages import EarlyResponse, error_response, function_error_page, origin_error_page
from edgesim.trace import FunctionOutcome, OriginOutcome, Stage, Trace, TraceRecord
from edgesim.types import EventType, FunctionInvoker, LogSink

__all__ = ["Triggers", "elapsed_ms"]


class Triggers:
    """The four triggers of one distribution, over its function runtime."""

    def __init__(
        self,
        distribution: Distribution,
        runtime: FunctionInvoker,
        targets: Sequence[OriginTarget],
        log_sink: LogSink | None = None,
    ) -> None:
        self._distribution = distribution
        self._runtime = runtime
        self._targets = list(targets)
        self._log_sink = log_sink

    async def viewer_request(
        self, behavior: BehaviorConfig, request: EdgeRequest, trace: Trace
    ) -> EdgeRequest | EdgeResponse:
        """The viewer's request as the function left it, or the response it generated."""
        assoc = behavior.association(EventType.VIEWER_REQUEST)
        if assoc is None:
            return request
        event = events.viewer_request_event(
            self._context(trace), request, include_body=assoc.include_body
        )
        parsed = await self._invoke(EventType.VIEWER_REQUEST, assoc, event, trace, request)
        with _Applying(EventType.VIEWER_REQUEST, trace, request):
            if isinstance(parsed, ParsedResponse):
                return events.generated_response(parsed)
            return events.apply_request(parsed, request)

    async def origin_request(
        self, behavior: BehaviorConfig, request: EdgeRequest, target: OriginTarget, trace: Trace
    ) -> tuple[EdgeRequest, OriginTarget] | EdgeResponse:
        """The origin request and origin as the function left them, or its generated response."""
        assoc = behavior.association(EventType.ORIGIN_REQUEST)
        if assoc is None:
            return request, target
        event = events.origin_request_event(
            self._context(trace), request, target, include_body=assoc.include_body
        )
        parsed = await self._invoke(EventType.ORIGIN_REQUEST, assoc, event, trace, request)
        if isinstance(parsed, ParsedResponse):
            with _Applying(EventType.ORIGIN_REQUEST, trace, request):
                return events.generated_response(parsed)
        try:
            target = events.apply_origin(parsed.origin, target, self._targets)
        except OriginError as error:
            outcome = OriginOutcome(f"error-{error.status}")
            trace.add(TraceRecord(Stage.ORIGIN, outcome, detail=error.reason))
            page = origin_error_page(error)
            raise EarlyResponse(
                error_response(page, trace.request_id, head=request.method == "HEAD")
            ) from error
        with _Applying(EventType.ORIGIN_REQUEST, trace, request):
            return events.apply_request(parsed, request), target

    async def origin_response(
        self,
        behavior: BehaviorConfig,
        request: EdgeRequest,
        target: OriginTarget,
        response: EdgeResponse,
        trace: Trace,
    ) -> EdgeResponse:
        """The origin's response as the origin-response function left it."""
        return await self._response_trigger(
            EventType.ORIGIN_RESPONSE,
            behavior,
            request,
            response,
            trace,
            lambda ctx: events.origin_response_event(ctx, request, target, response),
        )

    async def viewer_response(
        self,
        behavior: BehaviorConfig,
        request: EdgeRequest,
        response: EdgeResponse,
        trace: Trace,
    ) -> EdgeResponse:
        """The response to the viewer as the viewer-response function left it."""
        return await self._response_trigger(
            EventType.VIEWER_RESPONSE,
            behavior,
            request,
            response,
            trace,
            lambda ctx: events.viewer_response_event(ctx, request, response),
        )

    async def _response_trigger(
        self,
        event_type: EventType,
        behavior: BehaviorConfig,
        request: EdgeRequest,
        response: EdgeResponse,
        trace: Trace,
        build_event: Callable[[events.EventContext], dict[str, Any]],
    ) -> EdgeResponse:
        assoc = behavior.association(event_type)
        if assoc is None:
            return response
        event = build_event(self._context(trace))
        parsed = await self._invoke(event_type, assoc, event, trace, request)
        # Response triggers only ever parse to a response.
        assert isinstance(parsed, ParsedResponse)
        with _Applying(event_type, trace, request):
            return events.apply_response(parsed, response)

    async def _invoke(
        self,
        event_type: EventType,
        assoc: FunctionAssociation,
        event: dict[str, Any],
        trace: Trace,
        request: EdgeRequest,
    ) -> ParsedResult:
        stage = _STAGES[event_type]
        started = time.perf_counter()
        try:
            try:
                invocation = await self._runtime.invoke(assoc.function, event)
            except RuntimeUnavailableError as unavailable:
                # CloudFront counts an unsupported or unstartable runtime as an execution error.
                raise LambdaExecutionError(str(unavailable)) from unavailable
            parsed = parse_result(
                event_type, event, invocation.value, include_body=assoc.include_body
            )
        except FunctionError as error:
            if isinstance(error, LambdaValidationError):
                self._log_validation(assoc.function, trace.request_id, error)
            trace.add(
                TraceRecord(
                    stage,
                    FunctionOutcome(error.code),
                    elapsed_ms(started),
                    event=event,
                    detail=error.reason,
                )
            )
            page = function_error_page(error)
            raise EarlyResponse(
                error_response(page, trace.request_id, head=request.method == "HEAD")
            ) from error
        self._log_notes(assoc.function, trace.request_id, parsed.notes)
        trace.add(
            TraceRecord(
                stage,
                _OUTCOMES[parsed.kind],
                elapsed_ms(started),
                event=event,
                result=invocation.value,
                detail="\n".join(parsed.notes),
            )
        )
        return parsed

    def _log_validation(self, function: str, request_id: str, error: LambdaValidationError) -> None:
        """CloudFront logs refused results in its own log group; edgesim prints them inline."""
        if self._log_sink is not None:
            self._log_sink(
                function, [f"{self._log_group} {request_id} ERROR Validation error: {error.reason}"]
            )

    def _log_notes(self, function: str, request_id: str, notes: Sequence[str]) -> None:
        """An accepted result that relied on behaviour CloudFront does not document is worth a
        warning where its refusals would be logged: the function may not work on CloudFront."""
        if self._log_sink is not None and notes:
            self._log_sink(
                function,
                [f"{self._log_group} {request_id} WARNING Validation: {note}" for note in notes],
            )

    @property
    def _log_group(self) -> str:
        return f"/aws/cloudfront/LambdaEdge/{self._distribution.settings.id}"

    def _context(self, trace: Trace) -> events.EventContext:
        settings = self._distribution.settings
        return events.EventContext(
            distribution_domain_name=settings.domain_name,
            distribution_id=settings.id,
            request_id=trace.request_id,
        )


# Looked up rather than made by value on every invocation (an enum call is a Python-level call).
_STAGES = {trigger: Stage(trigger.value) for trigger in EventType}
_OUTCOMES = {kind: FunctionOutcome(kind.value) for kind in ResultKind}


def elapsed_ms(started: float) -> float:
    """Milliseconds since ``started`` (a ``time.perf_counter()`` reading)."""
    return (time.perf_counter() - started) * 1000.0


# What applying a result the rules let through may still raise.
_APPLY_ERRORS = (
    LambdaValidationError,
    KeyError,
    TypeError,
    ValueError,
    AttributeError,
    binascii.Error,
)


class _Applying:
    """A result the rules let through but that still cannot be applied is refused (502).

    Applying reads only the parsed value, so this should never fire; it keeps a defect in the
    apply step from escaping the pipeline as an exception. A class rather than a generator
    context manager: every function result is applied inside one.
    """

    __slots__ = ("_event_type", "_request", "_trace")

    def __init__(self, event_type: EventType, trace: Trace, request: EdgeRequest) -> None:
        self._event_type = event_type
        self._trace = trace
        self._request = request

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not isinstance(error, _APPLY_ERRORS):
            return
        if isinstance(error, LambdaValidationError):
            reason = error.reason
        else:
            reason = (
                "The Lambda function returned an invalid request or response to CloudFront. "
                f"({type(error).__name__}: {error})"
            )
        trace = self._trace
        outcome = FunctionOutcome.VALIDATION_ERROR
        trace.add(TraceRecord(_STAGES[self._event_type], outcome, detail=reason))
        page = function_error_page(LambdaValidationError(reason))
        head = self._request.method == "HEAD"
        raise EarlyResponse(error_response(page, trace.request_id, head=head)) from error
