"""One function invocation for one request, recorded as it runs: event in, value out, log lines.

:class:`RecordingInvoker` sits between an edge and its function runtime as a
:class:`~edgesim.types.FunctionInvoker`. For each invocation it makes a :class:`FunctionCall`
under the CloudFront request id of its event (``cf.config.requestId``, the trace's id and the
response's ``X-Amz-Cf-Id``), times it and keeps what the function returned, even when
CloudFront's rules then refuse it, or how it failed. ``edgesim serve``'s console and its
developer error page use it, and so does the test kit.

Log lines reach a :data:`~edgesim.types.LogSink` without a request id, so the invoker notes in a
context variable which call is running (:func:`current_call`); the runtime logs from inside that
call, in the same task. The variable is set, not reset, when an invocation starts: the lines the
pipeline logs for a call after it returns (a refused result's ``Validation error``) come later
in the same task and must land on the same call. Every request's first line comes from inside one
of its own invocations, which sets the variable again, so a request never inherits another's.
One variable serves every invoker, so recording invokers are not stacked on each other: the
innermost one's call would be the current one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from edgesim.exceptions import FunctionError
from edgesim.trace import FunctionOutcome
from edgesim.types import EventType, FunctionInvoker, Invocation, event_config

__all__ = ["FunctionCall", "RecordingInvoker", "current_call"]


# Slots: one is made on every invocation `serve` runs, and they make that cheaper.
@dataclass(slots=True)
class FunctionCall:
    """One invocation of a function for one request, as far as it got."""

    function: str
    trigger: EventType
    """The event's ``cf.config.eventType`` (``viewer-request`` when it names no trigger)."""
    request_id: str
    """The event's ``cf.config.requestId`` (empty when it has none)."""
    event: dict[str, Any]
    """The event exactly as the function received it."""
    value: object = None
    """What the function returned (None when it failed), before CloudFront's rules judged it."""
    error: FunctionError | None = None
    """How the invocation failed (the function raised, timed out, crashed), if it did."""
    duration_ms: float = 0.0
    """The runtime's reported duration, or the time the invocation took when it reports none."""
    logs: list[str] = field(default_factory=list)
    """The function's log lines: START, what it printed, END, REPORT, and edgesim's notes."""
    outcome: FunctionOutcome | None = None
    """What CloudFront made of it, from the trace: ``request``, ``response``, or the error class
    (``LambdaValidationError`` for a refused result); None until someone reads the trace."""
    reason: str = ""
    """CloudFront's text for a refused or failed call (the 502/503 page's log line)."""

    @property
    def refused(self) -> bool:
        """Whether the call ended the request with CloudFront's error page."""
        return self.outcome not in (None, FunctionOutcome.REQUEST, FunctionOutcome.RESPONSE)


_current: ContextVar[FunctionCall | None] = ContextVar("edgesim_function_call", default=None)


def current_call() -> FunctionCall | None:
    """The function call running in this task, or the last one that ran in it."""
    return _current.get()


# A dictionary lookup rather than EventType(value), and the default bound once: this runs on
# every invocation of `serve`.
_TRIGGERS: dict[str, EventType] = {trigger.value: trigger for trigger in EventType}
_DEFAULT_TRIGGER = EventType.VIEWER_REQUEST


def _identify(event: dict[str, Any]) -> tuple[EventType, str]:
    """The trigger and request id in an event's ``cf.config``."""
    config = event_config(event)
    kind = config.get("eventType")
    trigger = _TRIGGERS.get(kind) if isinstance(kind, str) else None
    return trigger or _DEFAULT_TRIGGER, str(config.get("requestId", ""))


class RecordingInvoker:
    """A :class:`~edgesim.types.FunctionInvoker` over ``runtime`` that records each call as a
    :class:`FunctionCall` and notes it as the task's current one; ``on_call`` sees each new
    call before the function runs."""

    def __init__(
        self, runtime: FunctionInvoker, on_call: Callable[[FunctionCall], None] | None = None
    ) -> None:
        self.runtime = runtime
        self._on_call = on_call

    async def invoke(self, name: str, event: dict[str, object]) -> Invocation:
        """Invoke through the runtime, recording the call (see the module notes)."""
        trigger, request_id = _identify(event)
        call = FunctionCall(name, trigger, request_id, event)
        _current.set(call)
        if self._on_call is not None:
            self._on_call(call)
        started = time.perf_counter()
        try:
            invocation = await self.runtime.invoke(name, event)
        except BaseException as error:
            call.duration_ms = (time.perf_counter() - started) * 1000.0
            if isinstance(error, FunctionError):
                call.error = error
            raise
        # The runtime's own measure (the REPORT line's) when it has one, without this wrapper's
        # overhead; reading the clock again only without it keeps the common path cheap.
        report = getattr(invocation, "report", None)
        if report is not None:
            call.duration_ms = float(report.duration_ms)
        else:
            call.duration_ms = (time.perf_counter() - started) * 1000.0
        call.value = invocation.value
        return invocation

    async def aclose(self) -> None:
        """Close the runtime underneath (every worker)."""
        await self.runtime.aclose()
