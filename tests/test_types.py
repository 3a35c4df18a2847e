"""Trigger names and clocks."""

from edgesim.types import EventType, MonotonicClock, SystemClock


def test_event_types_use_cloudfront_strings() -> None:
    assert [e.value for e in EventType] == [
        "viewer-request",
        "origin-request",
        "origin-response",
        "viewer-response",
    ]
    assert EventType("origin-request") is EventType.ORIGIN_REQUEST
    assert EventType.VIEWER_RESPONSE.is_viewer and not EventType.ORIGIN_RESPONSE.is_viewer
    assert EventType.ORIGIN_REQUEST.is_request and not EventType.VIEWER_RESPONSE.is_request


def test_clocks_move_forward() -> None:
    assert SystemClock()() > 1_700_000_000
    mono = MonotonicClock()
    assert mono() <= mono()
