from __future__ import annotations

from typing import Any

import pytest

from edgesim.testing import EventFactory, RecordingOrigin
from edgesim.testing.events import (
    DEFAULT_DOMAIN_NAME,
    origin_request,
    origin_response,
    viewer_request,
    viewer_response,
)
from edgesim.types import EventType
from tests.testing.conftest import FUNCTIONS


def _cf(event: dict[str, Any]) -> dict[str, Any]:
    cf: dict[str, Any] = event["Records"][0]["cf"]
    return cf


def test_a_viewer_request_has_the_viewers_host_and_splits_the_query() -> None:
    cf = _cf(viewer_request("/docs/?lang=en", headers=[("Accept", "*/*")], cookies={"a": "1"}))
    assert cf["config"]["eventType"] == "viewer-request"
    request = cf["request"]
    assert (request["uri"], request["querystring"]) == ("/docs/", "lang=en")
    assert request["headers"]["host"] == [{"key": "Host", "value": DEFAULT_DOMAIN_NAME}]
    assert request["headers"]["cookie"] == [{"key": "Cookie", "value": "a=1"}]
    assert list(request) == ["clientIp", "headers", "method", "querystring", "uri"]


def test_include_body_adds_the_body_object() -> None:
    request = _cf(viewer_request("/f", method="POST", body="hi", include_body=True))["request"]
    assert request["body"] == {
        "action": "read-only",
        "data": "aGk=",
        "encoding": "base64",
        "inputTruncated": False,
    }
    assert request["headers"]["content-length"][0]["value"] == "2"


def test_origin_side_events_carry_what_cloudfront_adds() -> None:
    request = _cf(origin_request("/a", headers={"User-Agent": "curl/8"}, client_ip="198.51.100.7"))[
        "request"
    ]
    headers = request["headers"]
    assert headers["host"][0]["value"] == "origin.example.com"
    assert headers["user-agent"][0]["value"] == "Amazon CloudFront"
    assert headers["x-forwarded-for"][0]["value"] == "198.51.100.7"
    assert headers["via"][0]["value"].endswith(".cloudfront.net (CloudFront)")
    assert "custom" in request["origin"]
    s3 = _cf(origin_response("/a", origin="s3", status=404))
    assert "s3" in s3["request"]["origin"]
    assert s3["response"]["status"] == "404"
    assert s3["response"]["statusDescription"] == "Not Found"


def test_the_factory_builds_each_trigger() -> None:
    factory = EventFactory()
    for trigger in EventType:
        assert _cf(factory(trigger))["config"]["eventType"] == trigger.value
    vr = _cf(factory.viewer_response(response_headers={"Age": "3"}))
    assert vr["response"]["headers"]["age"] == [{"key": "Age", "value": "3"}]
    assert "origin" not in vr["request"]
    with pytest.raises(ValueError, match="unknown trigger 'viewer'"):
        factory("viewer")
    with pytest.raises(TypeError, match="response_headers must be a dict"):
        viewer_response(response_headers="Age: 3")  # type: ignore[arg-type]


async def test_an_event_from_the_builders_is_the_one_the_edge_hands_the_function(
    edge: Any, edge_origin: RecordingOrigin
) -> None:
    headers = {"Content-Type": "text/plain", "Date": "Tue, 04 Mar 2025 10:00:00 GMT"}
    edge_origin.route("/p/*", body="hi", headers={**headers, "Server": "test"})
    echo = {"runtime": "python3.12", "code": str(FUNCTIONS / "echo"), "handler": "index.handler"}
    e = await edge(
        {
            "origins": {"site": edge_origin},
            "functions": {"echo": echo},
            "behaviors": [
                {
                    "path_pattern": "*",
                    "origin": "site",
                    "cache_policy": "CachingOptimized",
                    "functions": {t.value: "echo" for t in EventType},
                }
            ],
        }
    )
    asked: dict[str, Any] = {
        "headers": {"Accept": "*/*", "X-Trace": "1"},
        "cookies": {"a": "1"},
        "client_ip": "198.51.100.9",
        "distribution": e.distribution,
    }
    response = await e.get("/p/a?x=1", **{k: v for k, v in asked.items() if k != "distribution"})
    assert response.status == 200, response.steps
    ids = {"request_id": response.request_id}
    sent = {**headers, "Server": "test", "Content-Length": "2"}
    factory = EventFactory()
    origin = {**ids, "edge_id": e.edge.edge_id}
    expected = {
        EventType.VIEWER_REQUEST: factory.viewer_request("/p/a?x=1", **asked, **ids),
        EventType.ORIGIN_REQUEST: factory.origin_request("/p/a?x=1", **asked, **origin),
        EventType.ORIGIN_RESPONSE: factory.origin_response(
            "/p/a?x=1", **asked, **origin, response_headers=sent
        ),
        EventType.VIEWER_RESPONSE: factory.viewer_response(
            "/p/a?x=1", **asked, **ids, response_headers=sent
        ),
    }
    for trigger, event in expected.items():
        assert response.event(trigger) == event, trigger
