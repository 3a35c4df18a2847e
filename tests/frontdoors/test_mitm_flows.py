"""Flows in, edge results out: the addon's translation, and what it writes on a flow."""

from __future__ import annotations

import json
import os
import warnings

import pytest

if os.environ.get("CI"):
    import mitmproxy  # noqa: F401  (under CI a missing mitmproxy fails here, never skips)
else:
    pytest.importorskip("mitmproxy", reason="the addon needs mitmproxy (Python 3.12+)")

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # ldap3 on pyasn1, via mitmproxy
    from mitmproxy import http
    from mitmproxy.test import tflow

from edgesim.frontdoors.mitm_flows import (
    METADATA_KEY,
    Upstream,
    annotate,
    answered_by,
    problem_response,
    to_edge_request,
    to_flow_response,
    upstream_of,
)
from edgesim.http import EdgeResponse, Headers
from edgesim.pages import XCache
from edgesim.pipeline import EdgeResult
from edgesim.trace import (
    BehaviorOutcome,
    CacheOutcome,
    FunctionOutcome,
    OriginOutcome,
    Stage,
    Trace,
    TraceRecord,
)


def _flow(request: http.Request, *, tls: bool = False) -> http.HTTPFlow:
    flow = tflow.tflow(req=request)
    if not tls:
        flow.client_conn.timestamp_tls_setup = None
    flow.client_conn.peername = ("192.0.2.7", 50000)
    flow.client_conn.sockname = ("127.0.0.1", 8080)
    return flow


def test_the_request_reaches_the_edge_as_the_viewer_sent_it() -> None:
    request = http.Request.make(
        "POST",
        "http://example.test/a%20b/c?x=1&x=2",
        content=b"\x00body",
        headers=[(b"X-Mixed-Case", b"one"), (b"x-mixed-case", b"two"), (b"Cookie", b"a=1")],
    )
    edge = to_edge_request(_flow(request))
    assert (edge.method, edge.uri, edge.querystring) == ("POST", "/a%20b/c", "x=1&x=2")
    assert edge.headers.get_all("x-mixed-case") == ["one", "two"]
    assert [name for name, _ in edge.headers][:2] == ["X-Mixed-Case", "x-mixed-case"]
    assert edge.body == b"\x00body"
    assert (edge.client_ip, edge.local_port, edge.scheme, edge.http_version) == (
        "192.0.2.7",
        8080,
        "http",
        "1.1",
    )


def test_an_http2_viewer_names_its_host_in_authority_and_tls_makes_it_https() -> None:
    request = http.Request.make("GET", "https://example.test/")
    request.http_version = "HTTP/2.0"
    request.authority = "example.test"
    request.headers.pop("Host", None)
    edge = to_edge_request(_flow(request, tls=True))
    assert edge.headers.get("Host") == "example.test"
    assert (edge.scheme, edge.http_version) == ("https", "2.0")


def test_the_upstream_is_where_mitmproxy_would_have_gone() -> None:
    flow = _flow(http.Request.make("GET", "https://example.test:8443/x"))
    assert upstream_of(flow) == Upstream("https", "example.test", 8443)
    assert Upstream("http", "::1", 8080).url == "http://[::1]:8080"


def _result(response: EdgeResponse, *records: TraceRecord, request_id: str = "id-1") -> EdgeResult:
    trace = Trace(request_id=request_id)
    for record in records:
        trace.add(record)
    return EdgeResult(response=response, trace=trace)


def test_the_response_keeps_the_edges_lines_and_framing() -> None:
    lines = [("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked"), ("x-a", "1")]
    result = _result(EdgeResponse(200, Headers(lines), body=b"hello"))
    response = to_flow_response(result)
    assert response.headers.fields[:3] == tuple((k.encode(), v.encode()) for k, v in lines)
    assert [name for name, _ in response.headers.fields[3:]] == [b"Date"]  # as aiohttp adds
    assert (response.status_code, response.raw_content, response.reason) == (200, b"hello", "OK")
    older = to_flow_response(result, http10_viewer=True)
    assert "Transfer-Encoding" not in older.headers  # HTTP/1.0 has no chunks


def test_a_body_without_framing_gets_a_length_as_the_http_front_door_gives_it() -> None:
    generated = _result(EdgeResponse(200, Headers([("Date", "then")]), body=b"made"))
    assert to_flow_response(generated).headers.fields == (
        (b"Date", b"then"),
        (b"Content-Length", b"4"),
    )
    assert "Content-Length" not in to_flow_response(_result(EdgeResponse(304))).headers
    assert "Content-Length" not in to_flow_response(generated, head=True).headers


def test_a_body_the_origin_cut_short_says_its_real_length() -> None:
    cut = TraceRecord(Stage.ORIGIN, OriginOutcome.BODY_CUT, detail="reset")
    result = _result(EdgeResponse(200, Headers([("Content-Length", "10")]), body=b"half"), cut)
    assert to_flow_response(result).headers["Content-Length"] == "4"


def test_without_a_distribution_the_viewer_is_told_why() -> None:
    response = problem_response("dist.yaml: behaviors: missing")
    assert response.status_code == 502
    assert b"dist.yaml: behaviors: missing" in (response.content or b"")
    assert response.headers["X-Edgesim-Error"] == "no distribution"


def _fn(stage: Stage, outcome: FunctionOutcome) -> TraceRecord:
    return TraceRecord(stage, outcome, event={"e": 1}, result={"r": 2})


@pytest.mark.parametrize(
    ("records", "x_cache", "expected"),
    [
        ([_fn(Stage.VIEWER_REQUEST, FunctionOutcome.RESPONSE)], XCache.GENERATED, "function"),
        ([_fn(Stage.ORIGIN_REQUEST, FunctionOutcome.RESPONSE)], XCache.MISS, "function"),
        ([TraceRecord(Stage.CACHE, CacheOutcome.HIT)], XCache.HIT, "cache"),
        ([TraceRecord(Stage.ORIGIN, OriginOutcome.RESPONSE, status=404)], XCache.ERROR, "origin"),
        ([TraceRecord(Stage.ORIGIN, OriginOutcome.ERROR_502)], XCache.ERROR, "edge"),
        (
            [
                TraceRecord(Stage.ORIGIN, OriginOutcome.RESPONSE, status=200),
                _fn(Stage.ORIGIN_RESPONSE, FunctionOutcome.EXECUTION_ERROR),
            ],
            XCache.LAMBDA_EXECUTION_ERROR,
            "edge",
        ),
    ],
)
def test_where_the_answer_came_from(
    records: list[TraceRecord], x_cache: XCache, expected: str
) -> None:
    trace = Trace(request_id="r")
    for record in records:
        trace.add(record)
    assert answered_by(trace, x_cache) == expected


def test_annotate_writes_comment_marker_and_plain_metadata() -> None:
    flow = _flow(http.Request.make("GET", "http://example.test/"))
    response = EdgeResponse(200, Headers([("X-Cache", "Miss from cloudfront")]))
    result = _result(
        response,
        TraceRecord(Stage.BEHAVIOR, BehaviorOutcome.MATCHED, detail="*"),
        TraceRecord(
            Stage.VIEWER_REQUEST,
            FunctionOutcome.REQUEST,
            duration_ms=1.23456,
            event={"Records": [{"cf": {"request": {"uri": "/"}}}]},
            result={"uri": "/", "odd": {1, 2}},  # not JSON: shown as text
        ),
        TraceRecord(Stage.CACHE, CacheOutcome.MISS),
        TraceRecord(Stage.ORIGIN, OriginOutcome.RESPONSE, status=200),
    )
    annotate(flow, result, ["[fn] START RequestId: x"])
    assert flow.comment == (
        "Miss: behavior:matched → viewer-request:request → cache:miss → origin:200"
    )
    assert flow.marked == ":large_blue_circle:"
    meta = flow.metadata[METADATA_KEY]
    assert json.loads(json.dumps(meta)) == meta
    assert meta["request_id"] == "id-1" and meta["logs"] == ["[fn] START RequestId: x"]
    [call] = meta["functions"]
    assert call["trigger"] == "viewer-request" and call["duration_ms"] == 1.235
    assert call["result"]["odd"] == "{1, 2}"


def test_a_response_without_x_cache_is_still_annotated() -> None:
    flow = _flow(http.Request.make("GET", "http://example.test/"))
    annotate(flow, _result(EdgeResponse(502)), [])
    assert flow.comment.startswith("no X-Cache") and flow.marked == ":red_circle:"
