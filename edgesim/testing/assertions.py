"""Assertions that speak CloudFront: would it accept this result, and if not, by which rule.

:func:`judge` runs CloudFront's rules (:func:`edgesim.lambda_edge.rules.parse_result`, the
same code the pipeline runs) and says what CloudFront would do with a function's result.
:func:`assert_valid` fails with :class:`ResultRefused`, whose message is CloudFront's own text,
the one the 502 page's log line carries, followed by the result and the event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from edgesim.exceptions import FunctionError, LambdaValidationError
from edgesim.lambda_edge.events import event_trigger
from edgesim.lambda_edge.rules import ParsedResult, parse_result
from edgesim.testing.calls import FunctionCall
from edgesim.testing.events import event_for
from edgesim.trace import FunctionOutcome
from edgesim.types import EventType

__all__ = ["ResultRefused", "Verdict", "assert_valid", "judge", "shown_json"]

# Enough of an event or a result to see what is wrong, not a whole base64 body.
_SHOWN_CHARS = 4000


@dataclass(frozen=True)
class Verdict:
    """What CloudFront makes of one invocation at ``trigger``.

    ``outcome`` is ``request`` or ``response`` when the result is accepted, else the error class
    the viewer would see (``LambdaValidationError`` 502, ``LambdaExecutionError`` or
    ``LambdaLimitExceeded`` 503) with CloudFront's text in ``reason``.
    """

    trigger: EventType
    outcome: FunctionOutcome
    reason: str = ""
    parsed: ParsedResult | None = None
    """The result as CloudFront reads it, when accepted."""

    @property
    def accepted(self) -> bool:
        """Whether CloudFront carries on with the result."""
        return self.outcome in (FunctionOutcome.REQUEST, FunctionOutcome.RESPONSE)

    @property
    def status(self) -> int | None:
        """The viewer's status when refused or failed (502 or 503); None when accepted."""
        if self.accepted:
            return None
        return 502 if self.outcome is FunctionOutcome.VALIDATION_ERROR else 503


class ResultRefused(AssertionError):
    """CloudFront would refuse this result (or the function failed); the message says why in
    CloudFront's words, then shows the result and the event."""

    def __init__(self, verdict: Verdict, value: object, event: dict[str, Any] | None) -> None:
        self.verdict = verdict
        self.value = value
        self.event = event
        lines = [
            f"CloudFront would answer {verdict.status} {verdict.outcome.value} for this "
            f"{verdict.trigger.value} result:",
            f"  {verdict.reason}",
            f"result: {shown_json(value)}",
        ]
        if event is not None:
            lines.append(f"event: {shown_json(event)}")
        super().__init__("\n".join(lines))


@runtime_checkable
class _HasVerdict(Protocol):
    @property
    def verdict(self) -> Verdict: ...

    @property
    def value(self) -> object: ...

    @property
    def event(self) -> dict[str, Any]: ...


def shown_json(value: object) -> str:
    """``value`` as indented JSON for a message, cut at a few thousand characters."""
    try:
        text = json.dumps(value, indent=2, sort_keys=False, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > _SHOWN_CHARS:
        text = text[:_SHOWN_CHARS] + f"\n... ({len(text) - _SHOWN_CHARS} more characters)"
    return text


def _has_body(event: dict[str, Any]) -> bool:
    try:
        return "body" in event["Records"][0]["cf"]["request"]
    except (KeyError, IndexError, TypeError):
        return False


def judge(
    value: object,
    trigger: EventType | str | None = None,
    *,
    event: dict[str, Any] | None = None,
    include_body: bool | None = None,
    error: FunctionError | None = None,
) -> Verdict:
    """CloudFront's verdict on ``value`` returned at ``trigger`` for ``event``.

    The rules compare a result with the event the function received (read-only headers and
    fields must be unchanged), so pass that event; without one, the trigger's default event
    (:mod:`edgesim.testing.events`) stands in. ``trigger`` defaults to the event's;
    ``include_body`` to whether the event carries a body. ``error`` is how the invocation failed,
    if it did.
    """
    if trigger is None:
        if event is None or (kind := event_trigger(event)) is None:
            raise TypeError("give the trigger, or an event that names one")
    else:
        kind = EventType(trigger)
    if error is not None:
        return Verdict(kind, FunctionOutcome(error.code), error.reason)
    if event is None:
        event = event_for(kind)
    body = _has_body(event) if include_body is None else include_body
    try:
        parsed = parse_result(kind, event, value, include_body=body)
    except LambdaValidationError as refused:
        return Verdict(kind, FunctionOutcome.VALIDATION_ERROR, refused.reason)
    return Verdict(kind, FunctionOutcome(parsed.kind.value), parsed=parsed)


def assert_valid(
    result: object,
    trigger: EventType | str | None = None,
    *,
    event: dict[str, Any] | None = None,
    include_body: bool | None = None,
) -> Verdict:
    """Fail with :class:`ResultRefused` unless CloudFront accepts ``result`` at ``trigger``.

    ``result`` is what a function returned, or an :class:`~edgesim.testing.Invoked` (from
    ``edge_invoke``) or a :class:`~edgesim.testing.FunctionCall` (from a response's ``calls``),
    which carry their own event and verdict. Returns the verdict when accepted.
    """
    seen: dict[str, Any] | None
    if isinstance(result, FunctionCall):
        verdict = judge(
            result.value,
            trigger or result.trigger,
            event=result.event,
            include_body=include_body,
            error=result.error,
        )
        if result.refused and verdict.accepted:
            # Refused where the pipeline applied it (or for a reason the trace alone knows).
            verdict = Verdict(verdict.trigger, result.outcome or verdict.outcome, result.reason)
        value, seen = result.value, result.event
    elif isinstance(result, _HasVerdict):
        verdict, value, seen = result.verdict, result.value, result.event
    else:
        verdict = judge(result, trigger, event=event, include_body=include_body)
        value, seen = result, event
    if not verdict.accepted:
        raise ResultRefused(verdict, value, seen)
    return verdict
