"""What each function did for each request: the event in, the value out, its log lines.

:class:`CallRecorder` sits between an edge and its function runtime as a
:class:`~edgesim.types.FunctionInvoker` and is also the edge's :data:`~edgesim.types.LogSink`.
Each invocation is filed under the CloudFront request id of its event (``cf.config.requestId``,
the trace's id and the response's ``X-Amz-Cf-Id``), with what the function returned even when
CloudFront's rules then refuse it, which the trace alone does not keep.

Log lines reach the sink without a request id, so the recorder notes in a context variable
which call is running. It is set, not reset, when an invocation starts: the lines the pipeline
logs for that call after it returns (a refused result's ``Validation error``) come later in the
same task and must land on the same call. Every request's first line comes from inside one of
its own invocations, which sets the variable again, so a request never inherits another's.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from edgesim.exceptions import FunctionError
from edgesim.lambda_edge.events import event_config, event_trigger
from edgesim.runtime import FunctionRuntime, FunctionSpec
from edgesim.trace import FunctionOutcome
from edgesim.types import EventType, FunctionInvoker, Invocation

__all__ = ["CallRecorder", "FunctionCall"]


@dataclass
class FunctionCall:
    """One invocation of a function for one request."""

    function: str
    trigger: EventType
    request_id: str
    event: dict[str, Any]
    """The event exactly as the function received it."""
    value: object = None
    """What the function returned (None when it failed), before CloudFront's rules judged it."""
    error: FunctionError | None = None
    """How the invocation failed (the function raised, timed out, crashed), if it did."""
    duration_ms: float = 0.0
    logs: list[str] = field(default_factory=list)
    """The function's log lines: START, what it printed, END, REPORT, and edgesim's notes."""
    outcome: FunctionOutcome | None = None
    """What CloudFront made of it, from the trace: ``request``, ``response``, or the error class
    (``LambdaValidationError`` for a refused result)."""
    reason: str = ""
    """CloudFront's text for a refused or failed call (the 502/503 page's log line)."""

    @property
    def refused(self) -> bool:
        """Whether the call ended the request with CloudFront's error page."""
        return self.outcome not in (None, FunctionOutcome.REQUEST, FunctionOutcome.RESPONSE)


_current: ContextVar[FunctionCall | None] = ContextVar("edgesim_testing_call", default=None)


class CallRecorder:
    """Records every invocation through ``runtime`` and every log line, by request id.

    With ``echo`` each log line is also written to ``sys.stderr`` (looked up at each write, so
    pytest's capture shows the lines in a failing test's report).
    """

    def __init__(self, runtime: FunctionInvoker, *, echo: bool = False) -> None:
        self.runtime = runtime
        self.echo = echo
        self.lines: list[str] = []
        """Every log line, in order, whatever request it belongs to."""
        self._calls: defaultdict[str, list[FunctionCall]] = defaultdict(list)

    @classmethod
    def over(cls, specs: Iterable[FunctionSpec], *, echo: bool = False) -> CallRecorder:
        """A recorder over a new :class:`FunctionRuntime` for ``specs`` that logs to it."""
        recorder = cls(_NoRuntime(), echo=echo)
        recorder.runtime = FunctionRuntime(specs, log_sink=recorder.sink)
        return recorder

    async def invoke(self, name: str, event: dict[str, object]) -> Invocation:
        """Invoke through the runtime, recording the call (see the module notes)."""
        call = FunctionCall(
            function=name,
            trigger=event_trigger(event) or EventType.VIEWER_REQUEST,
            request_id=str(event_config(event).get("requestId", "")),
            event=event,
        )
        self._calls[call.request_id].append(call)
        _current.set(call)
        started = time.perf_counter()
        try:
            invocation = await self.runtime.invoke(name, event)
        except FunctionError as error:
            call.error = error
            raise
        finally:
            call.duration_ms = (time.perf_counter() - started) * 1000.0
        report = getattr(invocation, "report", None)
        if report is not None:
            call.duration_ms = float(report.duration_ms)
        call.value = invocation.value
        return invocation

    async def call(self, name: str, event: dict[str, Any]) -> FunctionCall:
        """Invoke and return the call record; a function's failure is in ``call.error``."""
        try:
            await self.invoke(name, event)
        except FunctionError:
            pass  # recorded on the call
        call = _current.get()
        assert call is not None and call.event is event
        kept = self._calls.get(call.request_id, [])
        kept[:] = [c for c in kept if c is not call]
        if not kept:
            self._calls.pop(call.request_id, None)
        return call

    async def aclose(self) -> None:
        """Close the runtime (every worker)."""
        await self.runtime.aclose()

    def sink(self, function: str, lines: list[str]) -> None:
        """The :data:`~edgesim.types.LogSink` to give the edge."""
        self.lines.extend(lines)
        call = _current.get()
        if call is not None and call.function == function:
            call.logs.extend(lines)
        if self.echo:
            stream = sys.stderr
            for line in lines:
                print(f"[{function}] {line}", file=stream)

    def calls_for(self, request_id: str) -> list[FunctionCall]:
        """The calls made for request ``request_id``, in order."""
        return list(self._calls.get(request_id, ()))

    def forget(self, request_id: str) -> list[FunctionCall]:
        """The calls for ``request_id``, no longer kept here."""
        return self._calls.pop(request_id, [])


class _NoRuntime:
    """Stands in until :meth:`CallRecorder.over` has built the runtime that logs to it."""

    async def invoke(self, name: str, event: dict[str, object]) -> Invocation:
        raise AssertionError("the recorder has no runtime yet")

    async def aclose(self) -> None:
        return None
