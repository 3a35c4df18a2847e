"""What the test client gets back: the viewer's response and everything behind it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from edgesim.http import Headers
from edgesim.testing.calls import FunctionCall
from edgesim.trace import FunctionOutcome, Stage, Trace
from edgesim.types import EventType

__all__ = ["Response", "attach_outcomes"]

_FUNCTION_STAGES = frozenset(Stage(t.value) for t in EventType)


@dataclass(frozen=True)
class Response:
    """A viewer's response from the edge, with its trace and the functions' calls and logs.

    ``trace.steps`` lists each stage with its outcome (``["behavior:matched",
    "viewer-request:request", "cache:miss", "origin:200", "cache:store"]``); :attr:`calls` holds,
    for each function that ran, the event it received, the value it returned, what CloudFront
    made of it and its log lines.
    """

    status: int
    headers: Headers
    body: bytes
    trace: Trace
    calls: list[FunctionCall] = field(default_factory=list)
    reason: str = ""

    @property
    def request_id(self) -> str:
        """CloudFront's request id (the ``X-Amz-Cf-Id`` header, the events' ``requestId``)."""
        return self.trace.request_id

    @property
    def text(self) -> str:
        """The body as UTF-8 text."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    @property
    def steps(self) -> list[str]:
        """The trace's ``stage:outcome`` labels, in order."""
        return self.trace.steps

    @property
    def logs(self) -> list[str]:
        """Every log line the functions wrote for this request, in order."""
        return [line for call in self.calls for line in call.logs]

    def call(self, trigger: EventType | str) -> FunctionCall:
        """The (last) call at ``trigger``; :class:`LookupError` naming the stages that ran if
        no function ran there."""
        kind = EventType(trigger)
        for call in reversed(self.calls):
            if call.trigger is kind:
                return call
        raise LookupError(
            f"no {kind.value} function ran for this request; the trace was {self.steps}"
        )

    def event(self, trigger: EventType | str) -> dict[str, Any]:
        """The event the ``trigger`` function received."""
        return self.call(trigger).event

    def result(self, trigger: EventType | str) -> object:
        """The value the ``trigger`` function returned."""
        return self.call(trigger).value

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.steps}>"


def attach_outcomes(calls: list[FunctionCall], trace: Trace) -> list[FunctionCall]:
    """Give each call the outcome and reason its trace record has (records and calls of one
    request come in the same order, one record per invocation)."""
    records = [r for r in trace.records if r.stage in _FUNCTION_STAGES and r.event is not None]
    for call, record in zip(calls, records, strict=False):
        if isinstance(record.outcome, FunctionOutcome):
            call.outcome = record.outcome
            if call.refused:
                call.reason = record.detail
    return calls
