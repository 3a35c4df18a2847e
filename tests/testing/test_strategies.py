from __future__ import annotations

from typing import Any

from hypothesis import given, settings

from edgesim.lambda_edge.rules import is_disallowed
from edgesim.testing import judge, strategies
from edgesim.types import EventType

FEW = settings(max_examples=15, deadline=None)


def _returned_unchanged(event: dict[str, Any]) -> object:
    cf = event["Records"][0]["cf"]
    return cf["response"] if "response" in cf else cf["request"]


@FEW
@given(strategies.events("viewer-request", include_body=True))
def test_viewer_request_events_are_valid_by_construction(event: dict[str, Any]) -> None:
    request = event["Records"][0]["cf"]["request"]
    assert request["uri"].startswith("/")
    assert request["headers"]["host"]
    assert not any(is_disallowed(name) for name in request["headers"])
    if "body" in request:
        assert request["method"] in ("PUT", "PATCH", "POST", "DELETE")
    assert judge(_returned_unchanged(event), event=event).accepted


@FEW
@given(strategies.events("origin-request", origin="s3"))
def test_origin_request_events_carry_the_origin(event: dict[str, Any]) -> None:
    request = event["Records"][0]["cf"]["request"]
    assert "s3" in request["origin"]
    assert request["headers"]["user-agent"][0]["value"] == "Amazon CloudFront"
    assert judge(_returned_unchanged(event), event=event).accepted


@FEW
@given(strategies.events(EventType.VIEWER_RESPONSE), strategies.events("origin-response"))
def test_response_events_have_statuses_the_trigger_sees(
    viewer: dict[str, Any], origin: dict[str, Any]
) -> None:
    assert int(viewer["Records"][0]["cf"]["response"]["status"]) < 400
    assert 200 <= int(origin["Records"][0]["cf"]["response"]["status"]) <= 599
    assert judge(_returned_unchanged(viewer), event=viewer).accepted
    assert judge(_returned_unchanged(origin), event=origin).accepted
