"""Small shared vocabulary: the trigger names and the injectable collaborators.

Kept apart from the modules that use them so that config, events, rules, the
runtime and the pipeline can agree on one spelling without importing each other.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Protocol

__all__ = ["Clock", "EventType", "MonotonicClock", "SystemClock"]


class EventType(StrEnum):
    """The four Lambda@Edge triggers, valued with CloudFront's own strings."""

    VIEWER_REQUEST = "viewer-request"
    ORIGIN_REQUEST = "origin-request"
    ORIGIN_RESPONSE = "origin-response"
    VIEWER_RESPONSE = "viewer-response"

    @property
    def is_viewer(self) -> bool:
        """Viewer triggers have the tighter quotas (5 s, 128 MB, 40 KB)."""
        return self in (EventType.VIEWER_REQUEST, EventType.VIEWER_RESPONSE)

    @property
    def is_request(self) -> bool:
        """Request triggers may return a request or generate a response."""
        return self in (EventType.VIEWER_REQUEST, EventType.ORIGIN_REQUEST)


class Clock(Protocol):
    """Wall-clock time in seconds since the epoch; injected so tests can move time."""

    def __call__(self) -> float: ...


class SystemClock:
    """The real wall clock."""

    def __call__(self) -> float:
        return time.time()


class MonotonicClock:
    """A monotonic clock for durations."""

    def __call__(self) -> float:
        return time.monotonic()
