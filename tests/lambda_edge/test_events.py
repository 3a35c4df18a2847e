"""The event codec: building each trigger's event and applying a function's result."""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edgesim.exceptions import LambdaValidationError
from edgesim.http import EdgeRequest, EdgeResponse, Headers
from edgesim.lambda_edge import events
from edgesim.lambda_edge import headers as event_headers
from edgesim.lambda_edge import origin as event_origins
from edgesim.lambda_edge.events import (
    EventContext,
    apply_request,
    apply_response,
    generated_response,
    origin_request_event,
    origin_response_event,
    viewer_request_event,
    viewer_response_event,
)
from edgesim.lambda_edge.rules import ParsedRequest, ParsedResponse, parse_result
from edgesim.origins.targets import OriginTarget
from edgesim.quotas import LAMBDA_EDGE
from edgesim.types import EventType

CTX = EventContext("d111111abcdef8.cloudfront.net", "EDFDVBD6EXAMPLE", "req-id==")
API = OriginTarget(
    kind="custom",
    domain_name="api.example.test",
    port=9000,
    protocol="http",
    connect_host="127.0.0.1",
    origin_id="api",
    custom_headers=Headers([("X-Origin-Secret", "abc")]),
)
SITE = OriginTarget(
    kind="s3",
    domain_name="site.s3.amazonaws.com",
    local_root=Path("/srv/site"),
    origin_id="site",
)


def cf(event: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = event["Records"][0]["cf"]
    return record


def as_request(
    event: dict[str, Any], result: dict[str, Any], *, include_body: bool = False
) -> ParsedRequest:
    """A request result as the rules read it, for the event it answers."""
    event_type = EventType(cf(event)["config"]["eventType"])
    parsed = parse_result(event_type, event, result, include_body=include_body)
    assert isinstance(parsed, ParsedRequest)
    return parsed


def as_response(event: dict[str, Any], result: dict[str, Any]) -> ParsedResponse:
    """A response result (generated, or a response trigger's) as the rules read it."""
    parsed = parse_result(EventType(cf(event)["config"]["eventType"]), event, result)
    assert isinstance(parsed, ParsedResponse)
    return parsed


def generated(result: dict[str, Any]) -> EdgeResponse:
    """The response a viewer-request function generated with ``result``."""
    event = viewer_request_event(CTX, EdgeRequest("GET", "/"), include_body=False)
    return generated_response(as_response(event, result))


def _seen(event_type: EventType) -> int:
    limit = LAMBDA_EDGE[event_type].include_body_bytes
    assert limit is not None
    return limit


VIEWER_BODY_LIMIT = _seen(EventType.VIEWER_REQUEST)
ORIGIN_BODY_LIMIT = _seen(EventType.ORIGIN_REQUEST)


def post(body: bytes, method: str = "POST") -> EdgeRequest:
    return EdgeRequest(method, "/upload", headers=Headers([("Host", "a.test")]), body=body)


def test_the_header_and_origin_parts_are_importable_from_events() -> None:
    for part in (event_headers, event_origins):
        for name in set(part.__all__) & set(events.__all__):
            assert getattr(events, name) is getattr(part, name)
    assert {"headers_to_cf", "headers_from_cf", "origin_to_cf", "apply_origin"} <= set(
        events.__all__
    )


# -- building events ----------------------------------------------------------------------------


def test_viewer_request_event_fields() -> None:
    request = EdgeRequest("GET", "/a b", headers=Headers([("Host", "a.test")]), client_ip="::1")
    event = viewer_request_event(CTX, request, include_body=True)
    assert cf(event)["config"] == {
        "distributionDomainName": "d111111abcdef8.cloudfront.net",
        "distributionId": "EDFDVBD6EXAMPLE",
        "eventType": "viewer-request",
        "requestId": "req-id==",
    }
    assert cf(event)["request"] == {
        "clientIp": "::1",
        "headers": {"host": [{"key": "Host", "value": "a.test"}]},
        "method": "GET",
        "querystring": "",
        "uri": "/a b",
    }
    assert "response" not in cf(event)
    assert json.loads(json.dumps(event)) == event


def test_body_is_base64_and_not_truncated_below_the_limit() -> None:
    body = cf(viewer_request_event(CTX, post(b"a=1&b=2"), include_body=True))["request"]["body"]
    assert body == {
        "action": "read-only",
        "data": base64.b64encode(b"a=1&b=2").decode(),
        "encoding": "base64",
        "inputTruncated": False,
    }
    assert list(body) == ["action", "data", "encoding", "inputTruncated"]


@pytest.mark.parametrize(
    ("build", "limit"),
    [
        (lambda r: viewer_request_event(CTX, r, include_body=True), VIEWER_BODY_LIMIT),
        (lambda r: origin_request_event(CTX, r, API, include_body=True), ORIGIN_BODY_LIMIT),
    ],
    ids=["viewer-40KB", "origin-1MB"],
)
def test_body_truncates_exactly_at_the_limit(build: Any, limit: int) -> None:
    assert limit in (40 * 1024, 1024 * 1024)
    exact = bytes(i % 251 for i in range(limit))
    at = cf(build(post(exact)))["request"]["body"]
    assert base64.b64decode(at["data"]) == exact
    assert at["inputTruncated"] is False
    over = cf(build(post(exact + b"!")))["request"]["body"]
    assert base64.b64decode(over["data"]) == exact
    assert over["inputTruncated"] is True


def test_binary_body_survives_base64() -> None:
    raw = bytes(range(256)) * 3
    body = cf(viewer_request_event(CTX, post(raw, "PUT"), include_body=True))["request"]["body"]
    assert base64.b64decode(body["data"]) == raw


@pytest.mark.parametrize(
    ("method", "raw", "include", "expected"),
    [
        ("GET", b"", True, False),
        ("HEAD", b"", True, False),
        ("POST", b"x", False, False),
        ("POST", b"", True, True),
        ("DELETE", b"", True, True),
        ("OPTIONS", b"x", True, True),
    ],
)
def test_body_offered_only_with_include_body_and_a_body_method(
    method: str, raw: bytes, include: bool, expected: bool
) -> None:
    request = cf(viewer_request_event(CTX, post(raw, method), include_body=include))["request"]
    assert ("body" in request) is expected


def test_origin_request_event_custom_origin() -> None:
    request = EdgeRequest("GET", "/x", "a=1", Headers([("Host", "api.example.test")]))
    got = cf(origin_request_event(CTX, request, API, include_body=False))
    assert got["config"]["eventType"] == "origin-request"
    assert list(got["request"]) == ["clientIp", "headers", "method", "origin", "querystring", "uri"]
    assert got["request"]["origin"] == {
        "custom": {
            "customHeaders": {"x-origin-secret": [{"key": "X-Origin-Secret", "value": "abc"}]},
            "domainName": "api.example.test",
            "keepaliveTimeout": 5,
            "path": "",
            "port": 9000,
            "protocol": "http",
            "readTimeout": 30,
            "sslProtocols": ["TLSv1.2"],
        }
    }


def test_origin_request_event_s3_origin() -> None:
    request = EdgeRequest("GET", "/x", headers=Headers([("Host", SITE.domain_name)]))
    got = cf(origin_request_event(CTX, request, SITE, include_body=False))["request"]["origin"]
    assert got == {
        "s3": {
            "authMethod": "none",
            "customHeaders": {},
            "domainName": "site.s3.amazonaws.com",
            "path": "",
            "region": "us-east-1",
        }
    }


def test_response_events() -> None:
    request = post(b"secret")
    response = EdgeResponse(
        404, Headers([("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X-Cache", "Miss")]), b"gone"
    )
    origin = cf(origin_response_event(CTX, request, API, response))
    assert origin["config"]["eventType"] == "origin-response"
    assert "origin" in origin["request"] and "body" not in origin["request"]
    assert origin["response"] == {
        "headers": {
            "set-cookie": [
                {"key": "Set-Cookie", "value": "a=1"},
                {"key": "Set-Cookie", "value": "b=2"},
            ]
        },
        "status": "404",
        "statusDescription": "Not Found",
    }
    viewer = cf(viewer_response_event(CTX, request, response))
    assert viewer["config"]["eventType"] == "viewer-response"
    assert "origin" not in viewer["request"] and "body" not in viewer["request"]
    assert viewer["response"] == origin["response"]


# -- applying request results -------------------------------------------------------------------


def test_apply_request_takes_uri_querystring_and_headers() -> None:
    request = EdgeRequest(
        "GET",
        "/",
        "a=1",
        Headers([("Host", "a.test"), ("X-Amz-Cf-Id", "id=="), ("Accept", "*/*")]),
        client_ip="192.0.2.1",
    )
    event = viewer_request_event(CTX, request, include_body=False)
    result = copy.deepcopy(cf(event)["request"])
    result["uri"] = "/index.html"
    result["querystring"] = ""
    result["headers"]["x-added"] = [{"value": "1"}]
    del result["headers"]["accept"]
    new = apply_request(as_request(event, result), request)
    assert (new.method, new.uri, new.querystring, new.client_ip) == (
        "GET",
        "/index.html",
        "",
        "192.0.2.1",
    )
    # The id the function never saw still goes on.
    assert new.headers.items() == [("Host", "a.test"), ("X-Added", "1"), ("X-Amz-Cf-Id", "id==")]
    assert request.uri == "/" and "accept" in request.headers


def test_read_only_body_keeps_the_full_original_even_when_truncated() -> None:
    raw = b"z" * (VIEWER_BODY_LIMIT + 10)
    request = post(raw)
    event = viewer_request_event(CTX, request, include_body=True)
    result = copy.deepcopy(cf(event)["request"])
    assert result["body"]["inputTruncated"] is True
    result["body"]["data"] = base64.b64encode(b"ignored").decode()
    assert apply_request(as_request(event, result, include_body=True), request).body == raw


@pytest.mark.parametrize(
    ("encoding", "data", "expected"),
    [
        ("text", "héllo", "héllo".encode()),
        ("base64", base64.b64encode(b"\x00\xff\x10").decode(), b"\x00\xff\x10"),
    ],
)
def test_replace_body(encoding: str, data: str, expected: bytes) -> None:
    request = post(b"old body")
    request.headers.add("Content-Length", "8")
    event = viewer_request_event(CTX, request, include_body=True)
    result = copy.deepcopy(cf(event)["request"])
    result["body"] = {"action": "replace", "encoding": encoding, "data": data}
    new = apply_request(as_request(event, result, include_body=True), request)
    assert new.body == expected
    assert new.headers.get("content-length") == str(len(expected))
    assert request.body == b"old body"


def test_replace_with_bad_base64_is_refused_before_it_is_applied() -> None:
    event = viewer_request_event(CTX, post(b"x"), include_body=True)
    result = copy.deepcopy(cf(event)["request"])
    result["body"] = {"action": "replace", "encoding": "base64", "data": "%%%"}
    with pytest.raises(LambdaValidationError, match="not valid base64"):
        as_request(event, result, include_body=True)


# -- responses ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["302", 302])
def test_generated_response(status: str | int) -> None:
    response = generated(
        {
            "status": status,
            "headers": {"location": [{"value": "https://a.test/"}]},
            "body": "déplacé",
        }
    )
    assert (response.status, response.reason) == (302, "Found")
    assert response.headers.items() == [("Location", "https://a.test/")]
    assert response.body == "déplacé".encode()


def test_generated_response_base64_body_and_description() -> None:
    response = generated(
        {"status": "200", "statusDescription": "Fine", "body": "AAEC", "bodyEncoding": "base64"}
    )
    assert (response.reason, response.body, len(response.headers)) == ("Fine", b"\x00\x01\x02", 0)
    assert generated({"status": "204"}).body == b""


def origin_response() -> EdgeResponse:
    return EdgeResponse(
        200,
        Headers(
            [
                ("Content-Length", "5"),
                ("Set-Cookie", "a=1"),
                ("Set-Cookie", "b=2"),
                ("Connection", "close"),
            ]
        ),
        b"hello",
        reason="Okay",
    )


def response_event(response: EdgeResponse) -> dict[str, Any]:
    return origin_response_event(CTX, EdgeRequest("GET", "/"), API, response)


def response_result(response: EdgeResponse) -> dict[str, Any]:
    result: dict[str, Any] = copy.deepcopy(cf(response_event(response))["response"])
    return result


def applied(result: dict[str, Any], response: EdgeResponse) -> EdgeResponse:
    """``result`` of the origin-response function that was shown ``response``, applied."""
    return apply_response(as_response(response_event(response), result), response)


def test_apply_response_unchanged_passes_the_body_through() -> None:
    response = origin_response()
    new = applied(response_result(response), response)
    assert (new.status, new.reason, new.body) == (200, "Okay", b"hello")
    assert new.headers == response.headers
    assert new.headers.get_all("set-cookie") == ["a=1", "b=2"]


def test_apply_response_status_headers_and_body() -> None:
    response = origin_response()
    result = response_result(response)
    result["status"] = 503
    del result["statusDescription"]
    result["headers"]["cache-control"] = [{"value": "no-store"}]
    result["body"] = "<p>down</p>"
    new = applied(result, response)
    assert (new.status, new.reason, new.body) == (503, "Service Unavailable", b"<p>down</p>")
    assert new.headers.get("content-length") == "11"
    assert new.headers.get("cache-control") == "no-store"
    assert new.headers.get("connection") == "close"  # never shown, so never changed
    assert response.body == b"hello"


def test_apply_response_empty_body_drops_it() -> None:
    response = origin_response()
    result = response_result(response)
    result["body"] = ""
    assert applied(result, response).body == b""


# -- a real function process --------------------------------------------------------------------

HANDLER = """
import json, sys
event = json.load(sys.stdin)
request = event["Records"][0]["cf"]["request"]
request["uri"] = "/rewritten" + request["uri"]
request["headers"]["x-seen-body"] = [{"key": "X-Seen-Body", "value": request["body"]["data"]}]
json.dump(request, sys.stdout)
"""


def test_event_round_trips_through_a_python_function_process() -> None:
    request = post(b"payload")
    event = viewer_request_event(CTX, request, include_body=True)
    done = subprocess.run(
        [sys.executable, "-c", HANDLER],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    new = apply_request(as_request(event, json.loads(done.stdout), include_body=True), request)
    assert new.uri == "/rewritten/upload"
    assert new.headers.get("x-seen-body") == base64.b64encode(b"payload").decode()
    assert new.body == b"payload"


def test_an_events_config_and_trigger_are_read_back_and_other_shapes_give_nothing() -> None:
    event = events.viewer_request_event(CTX, EdgeRequest("GET", "/"), include_body=False)
    assert events.event_config(event)["requestId"] == CTX.request_id
    assert events.event_trigger(event) is EventType.VIEWER_REQUEST
    others: list[dict[str, Any]] = [{}, {"Records": []}, {"Records": [{"cf": {"config": "x"}}]}]
    for other in others:
        assert events.event_config(other) == {}
        assert events.event_trigger(other) is None
    odd = {"Records": [{"cf": {"config": {"eventType": "nope"}}}]}
    assert events.event_trigger(odd) is None
