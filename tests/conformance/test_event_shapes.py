"""Events edgesim builds have the shape of the spec's example events (tests/conformance/events).

Two checks per example. *Shape*: an event built from unrelated sample traffic has the same keys,
in the same order, with the same JSON types at every level (header maps are compared by their
entries, since their keys are header names). *Replay*: an event built from the example's own
values, through the real forwarding path, equals the example exactly.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgesim.http import EdgeRequest, EdgeResponse, Headers
from edgesim.lambda_edge.events import (
    EventContext,
    headers_from_cf,
    origin_request_event,
    origin_response_event,
    viewer_request_event,
    viewer_response_event,
)
from edgesim.origins.forwarding import to_origin
from edgesim.origins.targets import OriginTarget

EXAMPLES = Path(__file__).parent / "events"
# CloudFront Functions events are another product's format; edgesim does not emit them.
NOT_LAMBDA_EDGE = {"cloudfront-functions.json"}
HEADER_MAPS = {"headers", "customHeaders"}

Builder = Callable[[dict[str, Any] | None], dict[str, Any]]


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    return data


def shape(value: Any, key: str = "") -> Any:
    """Keys (ordered) and JSON types, with header maps reduced to the shape of their entries."""
    if isinstance(value, dict):
        if key in HEADER_MAPS:
            bad = [v for v in value.values() if shape(v) != shape([{"key": "", "value": ""}])]
            return "header-map" if not bad else ("bad header entries", bad)
        return [(k, shape(v, k)) for k, v in value.items()]
    if isinstance(value, list):
        return ["list", sorted({repr(shape(v)) for v in value})]
    return type(value).__name__


# -- models from an example (replay) or from sample traffic (shape) -------------------------------


def context(cf: dict[str, Any] | None) -> EventContext:
    if cf is None:
        return EventContext("d111111abcdef8.cloudfront.net", "EDFDVBD6EXAMPLE", "x" * 54 + "==")
    config = cf["config"]
    return EventContext(
        config["distributionDomainName"], config["distributionId"], config["requestId"]
    )


def viewer_request(cf: dict[str, Any] | None, *, with_body: bool = False) -> EdgeRequest:
    if cf is None:
        return EdgeRequest(
            "POST" if with_body else "GET",
            "/sample",
            "q=1" if not with_body else "",
            Headers([("Host", "sample.test"), ("X-Sample", "1"), ("X-Sample", "2")]),
            body=b"\x00\x01binary" if with_body else b"",
            client_ip="192.0.2.44",
        )
    request = cf["request"]
    body = base64.b64decode(request["body"]["data"]) if "body" in request else b""
    return EdgeRequest(
        request["method"],
        request["uri"],
        request["querystring"],
        headers_from_cf(request["headers"]),
        body=body,
        client_ip=request["clientIp"],
    )


def origin_of(cf_origin: dict[str, Any] | None) -> OriginTarget:
    if cf_origin is None:
        return OriginTarget(kind="custom", domain_name="sample-origin.test", port=8080)
    if "s3" in cf_origin:
        s3 = cf_origin["s3"]
        return OriginTarget(
            kind="s3",
            domain_name=s3["domainName"],
            path=s3["path"],
            custom_headers=headers_from_cf(s3["customHeaders"]),
            auth_method=s3["authMethod"],
            region=s3["region"],
        )
    custom = cf_origin["custom"]
    return OriginTarget(
        kind="custom",
        domain_name=custom["domainName"],
        path=custom["path"],
        custom_headers=headers_from_cf(custom["customHeaders"]),
        port=custom["port"],
        protocol=custom["protocol"],
        read_timeout=custom["readTimeout"],
        keepalive_timeout=custom["keepaliveTimeout"],
        ssl_protocols=tuple(custom["sslProtocols"]),
    )


def origin_request(cf: dict[str, Any] | None, origin: OriginTarget) -> EdgeRequest:
    """The origin request, produced by forwarding a viewer request the example implies."""
    if cf is None:
        viewer, edge = viewer_request(None), "a" * 32
        return to_origin(viewer, origin, request_id=context(None).request_id, edge_id=edge)
    request = cf["request"]
    headers = headers_from_cf(request["headers"])
    via = headers.get("via") or ""
    version, edge = via.split()[0], via.split()[1].split(".")[0]
    # What a viewer sent for CloudFront to produce those headers: the removed Accept shows
    # that legacy forwarding drops it.
    sent = Headers([("Host", "www.example.net"), ("User-Agent", "curl/8.5.0"), ("Accept", "*/*")])
    for name, value in headers:
        if name.lower() not in ("host", "user-agent", "via", "x-forwarded-for"):
            sent.add(name, value)
    viewer = EdgeRequest(
        request["method"],
        request["uri"],
        request["querystring"],
        sent,
        client_ip=request["clientIp"],
        http_version=version,
    )
    return to_origin(viewer, origin, request_id=cf["config"]["requestId"], edge_id=edge)


def response_of(cf: dict[str, Any] | None) -> EdgeResponse:
    if cf is None:
        headers = Headers([("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("ETag", '"e"')])
        return EdgeResponse(404, headers, b"not shown")
    response = cf["response"]
    return EdgeResponse(
        int(response["status"]),
        headers_from_cf(response["headers"]),
        b"not shown",
        reason=response["statusDescription"],
    )


def cf_of(example: dict[str, Any] | None) -> dict[str, Any] | None:
    if example is None:
        return None
    record: dict[str, Any] = example["Records"][0]["cf"]
    return record


def build_viewer_request(example: dict[str, Any] | None) -> dict[str, Any]:
    cf = cf_of(example)
    return viewer_request_event(context(cf), viewer_request(cf), include_body=False)


def build_viewer_request_body(example: dict[str, Any] | None) -> dict[str, Any]:
    cf = cf_of(example)
    request = viewer_request(cf, with_body=True)
    return viewer_request_event(context(cf), request, include_body=True)


def build_origin_request(example: dict[str, Any] | None) -> dict[str, Any]:
    cf = cf_of(example)
    origin = origin_of(cf["request"]["origin"] if cf else None)
    request = origin_request(cf, origin)
    return origin_request_event(context(cf), request, origin, include_body=False)


def build_origin_response(example: dict[str, Any] | None) -> dict[str, Any]:
    cf = cf_of(example)
    origin = origin_of(cf["request"]["origin"] if cf else None)
    request = origin_request(cf, origin)
    return origin_response_event(context(cf), request, origin, response_of(cf))


def build_viewer_response(example: dict[str, Any] | None) -> dict[str, Any]:
    cf = cf_of(example)
    return viewer_response_event(context(cf), viewer_request(cf), response_of(cf))


def build_s3_fragment(example: dict[str, Any] | None) -> dict[str, Any]:
    origin = origin_of(example["origin"] if example else None)
    if example is None:
        origin = OriginTarget(kind="s3", domain_name="sample.s3.amazonaws.com")
    event = origin_request_event(context(None), viewer_request(None), origin, include_body=False)
    return {"origin": event["Records"][0]["cf"]["request"]["origin"]}


BUILDERS: dict[str, Builder] = {
    "viewer-request.json": build_viewer_request,
    "viewer-request-include-body.json": build_viewer_request_body,
    "origin-request-custom.json": build_origin_request,
    "origin-request-s3-origin-fragment.json": build_s3_fragment,
    "origin-response.json": build_origin_response,
    "viewer-response.json": build_viewer_response,
}


def test_every_example_is_covered() -> None:
    on_disk = {p.name for p in EXAMPLES.glob("*.json")}
    assert on_disk == set(BUILDERS) | NOT_LAMBDA_EDGE


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_shape_matches_example(name: str) -> None:
    example = load(name)
    built = BUILDERS[name](None)
    assert shape(json.loads(json.dumps(built))) == shape(example)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_replay_equals_example(name: str) -> None:
    example = load(name)
    built = BUILDERS[name](example)
    assert built == example
    # Same key order too, down to the header lists.
    assert json.dumps(built) == json.dumps(example)
