"""The record of one request's trip through the pipeline.

Every stage appends one :class:`TraceRecord`; tests assert the whole sequence (``trace.steps``),
and the logs read the same records. The event a function received and the value it returned are
kept, so a failing contract test can show exactly what crossed the boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Stage", "Trace", "TraceRecord"]


class Stage(StrEnum):
    """Pipeline stages, named as CloudFront names them."""

    ROUTING = "routing"
    VIEWER_REQUEST = "viewer-request"
    CACHE = "cache"
    ORIGIN_REQUEST = "origin-request"
    ORIGIN = "origin"
    ORIGIN_RESPONSE = "origin-response"
    VIEWER_RESPONSE = "viewer-response"


@dataclass(frozen=True)
class TraceRecord:
    """One stage: what happened (``outcome``) and how long it took."""

    stage: Stage
    outcome: str
    duration_ms: float = 0.0
    event: dict[str, object] | None = None
    result: object = None
    detail: str = ""


@dataclass
class Trace:
    """All records of one request, in order."""

    request_id: str
    records: list[TraceRecord] = field(default_factory=list)

    def add(self, record: TraceRecord) -> None:
        """Append a record."""
        self.records.append(record)

    @property
    def steps(self) -> list[str]:
        """``stage:outcome`` strings in order, e.g. ``["viewer-request:request", "origin:200"]``."""
        return [f"{r.stage}:{r.outcome}" for r in self.records]

    def find(self, stage: Stage) -> TraceRecord | None:
        """The last record of ``stage``, if it ran."""
        for record in reversed(self.records):
            if record.stage == stage:
                return record
        return None
