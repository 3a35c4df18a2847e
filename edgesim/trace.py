"""The record of one request's trip through the pipeline.

Every stage appends :class:`TraceRecord` objects; tests assert the whole sequence
(``trace.steps``), and logs and viewers read the same records. Each stage has its own enum of
outcomes, so a viewer can draw a trace without parsing strings. A record keeps its start offset
from the beginning of the request and its duration, and, for functions, the event the function
received and the value it returned, so a failing contract test can show what crossed the boundary.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "BehaviorOutcome",
    "CacheOutcome",
    "ErrorPageOutcome",
    "FunctionOutcome",
    "InternalOutcome",
    "OriginOutcome",
    "Outcome",
    "RedirectOutcome",
    "RefusalOutcome",
    "Stage",
    "Trace",
    "TraceRecord",
]


class Stage(StrEnum):
    """Pipeline stages in CloudFront's order, the four triggers named as CloudFront names them."""

    BEHAVIOR = "behavior"
    REFUSAL = "refusal"
    REDIRECT = "redirect"
    VIEWER_REQUEST = "viewer-request"
    CACHE = "cache"
    ORIGIN_REQUEST = "origin-request"
    ORIGIN = "origin"
    ORIGIN_RESPONSE = "origin-response"
    ERROR_PAGE = "error-page"
    VIEWER_RESPONSE = "viewer-response"
    INTERNAL_ERROR = "internal-error"


class BehaviorOutcome(StrEnum):
    """The behavior was chosen; the record's ``detail`` is its path pattern."""

    MATCHED = "matched"


class RefusalOutcome(StrEnum):
    """CloudFront refused the request itself, before any function ran."""

    REQUEST_TOO_LARGE = "request-too-large"
    MALFORMED = "malformed-request"
    METHOD_NOT_ALLOWED = "method-not-allowed"
    GET_WITH_BODY = "get-with-body"
    HTTPS_ONLY = "https-only"
    NO_REDIRECT_BELOW_HTTP11 = "no-307-below-http/1.1"


class RedirectOutcome(StrEnum):
    """CloudFront redirected the viewer itself."""

    TO_HTTPS = "to-https"


class FunctionOutcome(StrEnum):
    """What a function at one of the four triggers came to."""

    REQUEST = "request"
    RESPONSE = "response"
    VALIDATION_ERROR = "LambdaValidationError"
    EXECUTION_ERROR = "LambdaExecutionError"
    LIMIT_EXCEEDED = "LambdaLimitExceeded"


class CacheOutcome(StrEnum):
    """What the cache did: lookups, then what a miss led to."""

    MISS = "miss"
    HIT = "hit"
    STALE = "stale"
    STALE_WHILE_REVALIDATE = "stale-while-revalidate"
    COLLAPSED = "collapsed"
    REFRESH = "refresh"
    STALE_SERVED = "stale-served"
    STORE = "store"


class OriginOutcome(StrEnum):
    """The origin answered (the record's ``status`` says with what), or CloudFront gave up, or
    the body ended before its framing said (the viewer got the bytes that came, nothing cached)."""

    RESPONSE = "response"
    ERROR_502 = "error-502"
    ERROR_504 = "error-504"
    BODY_CUT = "body-cut"


class ErrorPageOutcome(StrEnum):
    """A custom error response replaced the status; ``detail`` is the page's path."""

    FETCHED = "fetched"


class InternalOutcome(StrEnum):
    """A defect in edgesim itself, answered with CloudFront's 502 page."""

    DEFECT = "defect"


Outcome = (
    BehaviorOutcome
    | RefusalOutcome
    | RedirectOutcome
    | FunctionOutcome
    | CacheOutcome
    | OriginOutcome
    | ErrorPageOutcome
    | InternalOutcome
)


@dataclass(frozen=True, init=False)
class TraceRecord:
    """One step: its stage, what happened, when it started and how long it took.

    ``start_ms`` is the offset from the start of the request; :meth:`Trace.add` fills it in when
    it is left out. ``status`` is the HTTP status an origin answered with.
    """

    stage: Stage
    outcome: Outcome
    duration_ms: float = 0.0
    event: dict[str, object] | None = None
    result: object = None
    detail: str = ""
    status: int | None = None
    start_ms: float | None = None

    def __init__(
        self,
        stage: Stage,
        outcome: Outcome,
        duration_ms: float = 0.0,
        event: dict[str, object] | None = None,
        result: object = None,
        detail: str = "",
        status: int | None = None,
        start_ms: float | None = None,
    ) -> None:
        # The fields in one update: dataclass's own __init__ for a frozen class sets each
        # through object.__setattr__, twice the cost, and every stage of every request makes
        # a record.
        self.__dict__.update(
            stage=stage,
            outcome=outcome,
            duration_ms=duration_ms,
            event=event,
            result=result,
            detail=detail,
            status=status,
            start_ms=start_ms,
        )

    @property
    def label(self) -> str:
        """``stage:outcome``; an origin's answer shows its status (``origin:200``)."""
        shown = str(self.status) if self.status is not None else self.outcome.value
        return f"{self.stage.value}:{shown}"


@dataclass
class Trace:
    """All records of one request, in order."""

    request_id: str
    records: list[TraceRecord] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def add(self, record: TraceRecord) -> None:
        """Append a record, giving it its start offset if it has none."""
        if record.start_ms is None:
            now_ms = (time.perf_counter() - self.started) * 1000.0
            # Filled in place rather than copied: a record without its start is one the caller
            # has just built for this call, and a copy per stage is a cost every hit pays.
            record.__dict__["start_ms"] = max(0.0, now_ms - record.duration_ms)
        self.records.append(record)

    @property
    def steps(self) -> list[str]:
        """Each record's :attr:`TraceRecord.label` in order: ``["cache:miss", "origin:200"]``."""
        return [r.label for r in self.records]

    def find(self, stage: Stage) -> TraceRecord | None:
        """The last record of ``stage``, if it ran."""
        for record in reversed(self.records):
            if record.stage == stage:
                return record
        return None
