"""The request CloudFront forwards to an origin, and its ids."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web

from edgesim.http import EdgeRequest, Headers
from edgesim.origins.forwarding import (
    new_edge_id,
    new_request_id,
    origin_wire_headers,
    to_origin,
    via_value,
)
from edgesim.origins.targets import OriginTarget
from tests import http_clients

EDGE = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
RID = new_request_id()
ORIGIN = OriginTarget(
    kind="custom",
    domain_name="origin.example.org",
    port=8443,
    custom_headers=Headers([("X-Origin-Secret", "s3cret")]),
)
BUCKET = OriginTarget(kind="s3", domain_name="b.s3.amazonaws.com", local_root=Path("/srv/b"))


def viewer(*headers: tuple[str, str], method: str = "GET", version: str = "1.1") -> EdgeRequest:
    return EdgeRequest(
        method,
        "/docs/a%20b.html",
        "x=1&y=2",
        Headers([("Host", "www.example.net"), *headers]),
        body=b"form=1",
        client_ip="203.0.113.9",
        http_version=version,
    )


def forwarded(
    request: EdgeRequest,
    origin: OriginTarget = ORIGIN,
    forward: Callable[[str], bool] | None = None,
) -> Headers:
    return to_origin(request, origin, request_id=RID, edge_id=EDGE, forward=forward).headers


def test_request_id_format() -> None:
    ids = {new_request_id() for _ in range(50)}
    assert len(ids) == 50
    for rid in ids:
        assert len(rid) == 56 and rid.endswith("==")
        assert re.fullmatch(r"[A-Za-z0-9_-]{54}==", rid)
        assert len(base64.urlsafe_b64decode(rid)) == 40


def test_edge_id_format() -> None:
    ids = {new_edge_id() for _ in range(20)}
    assert len(ids) == 20
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


@pytest.mark.parametrize(
    ("version", "token"), [("1.1", "1.1"), ("2", "2.0"), ("2.0", "2.0"), ("HTTP/1.0", "1.0")]
)
def test_via_value(version: str, token: str) -> None:
    assert via_value(version, EDGE) == f"{token} {EDGE}.cloudfront.net (CloudFront)"


def test_cloudfront_headers_come_first_like_the_spec_example() -> None:
    headers = forwarded(viewer(("User-Agent", "curl/8"), ("Accept-Encoding", "gzip"), version="2"))
    assert headers.items() == [
        ("X-Forwarded-For", "203.0.113.9"),
        ("User-Agent", "Amazon CloudFront"),
        ("Via", f"2.0 {EDGE}.cloudfront.net (CloudFront)"),
        ("Host", "origin.example.org"),  # the domain only, even on port 8443
        ("Accept-Encoding", "gzip"),
        ("X-Amz-Cf-Id", RID),
    ]


def test_request_line_and_body_unchanged_custom_headers_not_added() -> None:
    request = viewer(("X-Foo", "1"))
    out = to_origin(request, ORIGIN, request_id=RID, edge_id=EDGE)
    assert (out.method, out.uri, out.querystring, out.body, out.client_ip) == (
        "GET",
        "/docs/a%20b.html",
        "x=1&y=2",
        b"form=1",
        "203.0.113.9",
    )
    assert out.http_version == "1.1"
    assert "x-origin-secret" not in out.headers
    assert request.headers.items() == [("Host", "www.example.net"), ("X-Foo", "1")]


def test_x_forwarded_for_appends_and_joins_lines() -> None:
    headers = forwarded(viewer(("X-Forwarded-For", "a, b"), ("x-forwarded-for", "c")))
    assert headers.get_all("x-forwarded-for") == ["a, b, c, 203.0.113.9"]


def test_viewer_via_gets_cloudfronts_hop_appended() -> None:
    headers = forwarded(viewer(("Via", "1.1 corp-proxy")))
    assert headers.get_all("via") == [f"1.1 corp-proxy, 1.1 {EDGE}.cloudfront.net (CloudFront)"]


def test_viewer_cf_id_is_replaced() -> None:
    assert forwarded(viewer(("X-Amz-Cf-Id", "spoofed"))).get_all("x-amz-cf-id") == [RID]


REMOVED = [
    ("Connection", "keep-alive, X-Named"),
    ("X-Named", "1"),
    ("Keep-Alive", "timeout=5"),
    ("TE", "trailers"),
    ("Trailer", "X-T"),
    ("Upgrade", "websocket"),
    ("Proxy-Authorization", "Basic x"),
    ("Proxy-Connection", "keep-alive"),
    ("Accept", "*/*"),
    ("Accept-Charset", "utf-8"),
    ("Accept-Language", "fr"),
    ("Referer", "https://r.test/"),
    ("Expect", "100-continue"),
    ("X-Real-IP", "1.1.1.1"),
    ("X-Forwarded-Proto", "https"),
    ("X-HTTP-Method-Override", "DELETE"),
    ("X-Edge-Thing", "1"),
    ("Cookie", "session=abc"),
    ("Authorization", "Bearer t"),
]


def test_legacy_removals() -> None:
    kept = [("X-Custom", "1"), ("Content-Type", "text/plain"), ("If-None-Match", '"e"')]
    headers = forwarded(viewer(*REMOVED, *kept))
    for name, _ in REMOVED:
        assert name not in headers, name
    for name, value in kept:
        assert headers.get(name) == value


def test_a_chunked_uploads_transfer_encoding_is_forwarded() -> None:
    """The legacy header table lists ``Transfer-Encoding`` as forwarded (spec
    cloudfront-caching.md §4.1), and it is read-only, so visible, at origin-request (spec
    lambda-edge.md §3.2); a policy has no say over it. Other hop-by-hop lines still go."""
    request = viewer(("Transfer-Encoding", "chunked"), ("Connection", "keep-alive"))
    assert forwarded(request).get_all("transfer-encoding") == ["chunked"]
    assert forwarded(request, forward=lambda name: False).get("Transfer-Encoding") == "chunked"
    assert "connection" not in forwarded(request)


@pytest.mark.parametrize(
    ("method", "kept"),
    [("GET", False), ("HEAD", False), ("OPTIONS", True), ("POST", True), ("PUT", True)],
)
def test_authorization_by_method(method: str, kept: bool) -> None:
    headers = forwarded(viewer(("Authorization", "Bearer t"), method=method))
    assert ("authorization" in headers) is kept


def test_accept_encoding_stripped_for_http_1_0() -> None:
    assert "accept-encoding" not in forwarded(viewer(("Accept-Encoding", "gzip"), version="1.0"))


def test_policy_predicate_is_an_allow_list() -> None:
    allowed = {"host", "user-agent", "cookie", "authorization", "x-real-ip"}
    request = viewer(
        ("User-Agent", "curl/8"),
        ("Cookie", "a=1"),
        ("Authorization", "Bearer t"),
        ("X-Custom", "1"),
        ("Content-Type", "text/plain"),
        ("X-Real-IP", "1.1.1.1"),
    )
    headers = forwarded(request, forward=allowed.__contains__)
    assert headers.get("host") == "www.example.net"
    assert headers.get("user-agent") == "curl/8"
    assert headers.get("cookie") == "a=1"
    assert headers.get("authorization") == "Bearer t"
    assert headers.get("content-type") == "text/plain"  # describes the body: always sent
    assert "x-custom" not in headers
    assert "x-real-ip" not in headers  # no policy can forward it
    assert headers.get("x-forwarded-for") == "203.0.113.9"
    # S3 origins always get their own domain as Host.
    assert (
        forwarded(request, BUCKET, forward=allowed.__contains__).get("host") == BUCKET.domain_name
    )


def test_wire_headers_custom_headers_overwrite_viewer_values() -> None:
    request = to_origin(
        viewer(("x-origin-secret", "forged"), ("Content-Length", "999"), method="POST"),
        ORIGIN,
        request_id=RID,
        edge_id=EDGE,
    )
    wire = origin_wire_headers(request, ORIGIN)
    assert wire.get_all("x-origin-secret") == ["s3cret"]
    assert wire.get("content-length") == "6"
    assert wire.get("host") == "origin.example.org"
    assert request.headers.get("x-origin-secret") == "forged"  # the request itself is untouched


async def test_wire_headers_reach_a_real_origin() -> None:
    seen: list[list[tuple[str, str]]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(list(request.headers.items()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        outbound = to_origin(
            viewer(("X-Forwarded-For", "198.51.100.1"), ("Cookie", "a=1")),
            ORIGIN,
            request_id=RID,
            edge_id=EDGE,
        )
        async with http_clients.async_client() as client:
            reply = await client.get(
                f"http://127.0.0.1:{port}{outbound.target}",
                headers=list(origin_wire_headers(outbound, ORIGIN)),
            )
        assert reply.status_code == 200
    finally:
        await runner.cleanup()
    got = {k.lower(): v for k, v in seen[0]}
    assert got["host"] == "origin.example.org"
    assert got["x-forwarded-for"] == "198.51.100.1, 203.0.113.9"
    assert got["user-agent"] == "Amazon CloudFront"
    assert got["x-amz-cf-id"] == RID
    assert got["x-origin-secret"] == "s3cret"
    assert "cookie" not in got


def test_a_policy_decides_authorization_and_method_override() -> None:
    from edgesim.cache.key import forwarding
    from edgesim.cache.policies import MANAGED_CACHE_POLICIES

    optimized = MANAGED_CACHE_POLICIES["CachingOptimized"]
    headers = Headers([("Authorization", "Bearer t"), ("X-HTTP-Method-Override", "PUT")])
    for method, cached, sent in [
        ("OPTIONS", ("GET", "HEAD", "OPTIONS"), False),  # §3.1: cached OPTIONS drop it
        ("OPTIONS", ("GET", "HEAD"), True),  # not cached: forwarded
        ("GET", ("GET", "HEAD"), False),
        ("POST", ("GET", "HEAD"), True),
    ]:
        request = EdgeRequest(method, "/a", headers=headers.copy())
        plan = forwarding(optimized, None, request, s3_origin=False, cached_methods=cached)
        out = to_origin(request, ORIGIN, request_id="r", edge_id="e", forward=plan.header_allowed)
        assert ("Authorization" in out.headers) is sent, (method, cached)
        assert "X-HTTP-Method-Override" not in out.headers
    keyed = MANAGED_CACHE_POLICIES["UseOriginCacheControlHeaders"]
    request = EdgeRequest("GET", "/a", headers=headers.copy())
    plan = forwarding(keyed, None, request, s3_origin=False)
    out = to_origin(request, ORIGIN, request_id="r", edge_id="e", forward=plan.header_allowed)
    assert out.headers.get("X-HTTP-Method-Override") == "PUT"  # in that policy's key
