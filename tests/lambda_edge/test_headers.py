"""Headers in events: CloudFront's header map both ways, and the lines a function never sees."""

from __future__ import annotations

from edgesim.http import EdgeRequest, EdgeResponse, Headers
from edgesim.lambda_edge import headers as headers_module
from edgesim.lambda_edge.events import (
    apply_request,
    apply_response,
    origin_request_event,
    origin_response_event,
    viewer_request_event,
    viewer_response_event,
)
from edgesim.lambda_edge.headers import (
    as_utf8,
    headers_from_cf,
    headers_from_lines,
    headers_to_cf,
    kept_or_changed,
    merge_hidden,
    split_hidden,
)
from edgesim.lambda_edge.rules import ParsedRequest, parse_result
from edgesim.lambda_edge.rules.headers import HeaderLines
from edgesim.types import EventType
from tests.lambda_edge.test_events import API, CTX, cf


def test_headers_to_cf_groups_duplicates_in_order_and_keeps_case() -> None:
    headers = Headers(
        [("Set-Cookie", "a=1"), ("content-type", "text/plain"), ("set-cookie", "b=2")]
    )
    assert headers_to_cf(headers) == {
        "set-cookie": [
            {"key": "Set-Cookie", "value": "a=1"},
            {"key": "set-cookie", "value": "b=2"},
        ],
        "content-type": [{"key": "content-type", "value": "text/plain"}],
    }


def test_headers_from_cf_fills_missing_keys_title_cased() -> None:
    headers = headers_from_cf(
        {
            "user-agent": [{"value": "x"}],
            "x-my-custom-header": [{"key": "", "value": "1"}],
            "cookie": [{"key": "cookie", "value": "a=1"}, {"value": "b=2"}],
        }
    )
    assert headers.items() == [
        ("User-Agent", "x"),
        ("X-My-Custom-Header", "1"),
        ("cookie", "a=1"),
        ("Cookie", "b=2"),
    ]


def test_headers_round_trip() -> None:
    headers = Headers([("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2"), ("ETag", '"x"')])
    assert headers_from_cf(headers_to_cf(headers)) == headers


def test_hidden_headers_are_not_shown_to_functions() -> None:
    request = EdgeRequest(
        "GET",
        "/",
        headers=Headers(
            [
                ("Host", "a.test"),
                ("Connection", "keep-alive, X-Private"),
                ("X-Private", "1"),
                ("Keep-Alive", "timeout=5"),
                ("X-Amz-Cf-Id", "spoof"),
                ("X-Cache", "Hit"),
                ("X-Edge-Location", "x"),
                ("X-Forwarded-Proto", "https"),
                ("X-Real-IP", "1.2.3.4"),
                ("X-Amzn-RequestId", "r"),
                ("Expect", "100-continue"),
                ("X-Kept", "yes"),
            ]
        ),
    )
    headers = cf(viewer_request_event(CTX, request, include_body=False))["request"]["headers"]
    assert list(headers) == ["host", "x-kept"]


def test_transfer_encoding_is_shown_to_every_trigger() -> None:
    """CloudFront lists ``Transfer-Encoding`` among the read-only headers of all four triggers
    (spec lambda-edge.md §3.2, Docs-2025 column; a real log of a function that deleted it:
    "the function tried to delete read-only header, headerName : Transfer-Encoding",
    CodeGenieApp/serverless-express#369), so a function sees it whenever the message has it:
    a chunked origin response at origin-response and viewer-response, a chunked upload at
    viewer-request and origin-request. It is not hidden like the other hop-by-hop lines."""
    chunked = [("Transfer-Encoding", "chunked")]
    upload = EdgeRequest("POST", "/up", headers=Headers([("Host", "a.test"), *chunked]))
    response = EdgeResponse(200, Headers([("Content-Type", "text/plain"), *chunked]))
    shown = {"key": "Transfer-Encoding", "value": "chunked"}
    events = {
        "viewer-request": cf(viewer_request_event(CTX, upload, include_body=False))["request"],
        "origin-request": cf(origin_request_event(CTX, upload, API, include_body=False))["request"],
        "origin-response": cf(origin_response_event(CTX, upload, API, response))["response"],
        "viewer-response": cf(viewer_response_event(CTX, upload, response))["response"],
    }
    for trigger, part in events.items():
        assert part["headers"]["transfer-encoding"] == [shown], trigger


def test_a_response_keeps_transfer_encoding_through_a_function() -> None:
    """Read-only at origin-response (spec lambda-edge.md §3.2): what the function returns
    unchanged goes on, so the viewer still gets the body chunked (spec cloudfront-caching.md
    §3.10: CloudFront streams a chunked origin response to the viewer, re-chunked)."""
    response = EdgeResponse(200, Headers([("Transfer-Encoding", "chunked"), ("X-A", "1")]))
    event = origin_response_event(CTX, EdgeRequest("GET", "/"), API, response)
    parsed = parse_result(
        EventType.ORIGIN_RESPONSE, event, cf(event)["response"], include_body=False
    )
    assert not isinstance(parsed, ParsedRequest)
    applied = apply_response(parsed, response)
    assert applied.headers.get_all("transfer-encoding") == ["chunked"]


def test_split_hidden_keeps_each_side_in_the_original_order() -> None:
    headers = Headers(
        [
            ("Host", "a.test"),
            ("Connection", "close, X-Private"),
            ("X-Private", "1"),
            ("X-Kept", "yes"),
            ("X-Amz-Cf-Id", "id=="),
        ]
    )
    shown, hidden = split_hidden(headers)
    assert shown.items() == [("Host", "a.test"), ("X-Kept", "yes")]
    assert hidden.items() == [
        ("Connection", "close, X-Private"),
        ("X-Private", "1"),
        ("X-Amz-Cf-Id", "id=="),
    ]


def test_split_hidden_without_connection_hides_hop_by_hop_and_disallowed_names() -> None:
    headers = Headers(
        [
            ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"),
            ("X-Edge-Origin", "a"),
            ("x-amz-cf-pop", "LAX1"),
            ("X-Amz-Meta-Id", "7"),
            ("Via", "1.1 proxy"),
        ]
    )
    for _ in range(2):  # the second time from what the first worked out
        shown, hidden = split_hidden(headers)
        assert shown.items() == [
            ("Transfer-Encoding", "chunked"),
            ("X-Amz-Meta-Id", "7"),
            ("Via", "1.1 proxy"),
        ]
        assert [name for name, _ in hidden] == ["Keep-Alive", "X-Edge-Origin", "x-amz-cf-pop"]


def test_split_hidden_answers_alike_once_many_names_have_been_seen() -> None:
    # What is worked out per name is bounded: past its limit it starts over, answering alike.
    for index in range(10_000):
        split_hidden(Headers([(f"X-Seen-{index}", "1")]))
    shown, hidden = split_hidden(Headers([("X-Edge-Late", "1"), ("X-Late", "2")]))
    assert shown.items() == [("X-Late", "2")] and hidden.items() == [("X-Edge-Late", "1")]
    assert len(headers_module._hidden) <= headers_module._HiddenNames._MOST


def test_merge_hidden_adds_back_the_lines_the_function_never_saw() -> None:
    original = Headers([("Host", "a.test"), ("X-Amz-Cf-Id", "id=="), ("Accept", "*/*")])
    result: HeaderLines = {"host": [("Host", "b.test")], "x-added": [(None, "1")]}
    assert merge_hidden(result, original).items() == [
        ("Host", "b.test"),
        ("X-Added", "1"),
        ("X-Amz-Cf-Id", "id=="),
    ]


def test_header_lines_read_by_the_rules_become_headers_in_order() -> None:
    lines: HeaderLines = {
        "set-cookie": [("Set-Cookie", "a=1"), (None, "b=2")],
        "x-amz-meta-id": [(None, "7")],
    }
    assert headers_from_lines(lines).items() == [
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("X-Amz-Meta-Id", "7"),
    ]


# Wire bytes as the front door keeps them: UTF-8 decoded, other bytes as surrogate escapes.
LATIN1 = "café".encode("latin-1").decode("utf-8", "surrogateescape")
UTF8 = "café"


def test_functions_see_utf8_and_iso_8859_1_converted_to_it() -> None:
    """spec lambda-edge.md §3.4: values reach functions as UTF-8; CloudFront converts other
    encodings assuming ISO-8859-1."""
    assert as_utf8(UTF8) == "café"
    assert as_utf8(LATIN1) == "café"
    assert as_utf8("plain") == "plain"
    mixed = ("é".encode() + b"\xe9").decode("utf-8", "surrogateescape")
    assert as_utf8(mixed) == "Ã©é"  # the whole value is read as ISO-8859-1


def test_unchanged_values_keep_their_original_bytes() -> None:
    """spec lambda-edge.md §3.4: what a function did not change goes on as the original bytes;
    what it changed goes on as the UTF-8 it returned."""
    assert kept_or_changed(LATIN1, "café") == LATIN1
    assert kept_or_changed(LATIN1, "cafe") == "cafe"
    assert kept_or_changed(UTF8, "café") == UTF8


def _round_trip(request: EdgeRequest, change: dict[str, object] | None = None) -> EdgeRequest:
    event = viewer_request_event(CTX, request, include_body=False)
    shown = cf(event)["request"]
    result = {**shown, **(change or {})}
    parsed = parse_result(EventType.VIEWER_REQUEST, event, result)
    assert isinstance(parsed, ParsedRequest)
    return apply_request(parsed, request)


def test_an_iso_8859_1_request_reaches_the_function_as_utf8_and_the_origin_as_sent() -> None:
    request = EdgeRequest(
        method="GET",
        uri="/" + LATIN1,
        querystring="q=" + LATIN1,
        headers=Headers([("Host", "h"), ("X-Name", LATIN1)]),
    )
    shown = cf(viewer_request_event(CTX, request, include_body=False))["request"]
    assert shown["uri"] == "/café"
    assert shown["querystring"] == "q=café"
    assert shown["headers"]["x-name"] == [{"key": "X-Name", "value": "café"}]
    unchanged = _round_trip(request)
    assert (unchanged.uri, unchanged.querystring) == (request.uri, request.querystring)
    assert unchanged.headers.get("X-Name") == LATIN1
    headers = {**shown["headers"], "x-name": [{"key": "X-Name", "value": "né"}]}
    changed = _round_trip(request, {"uri": "/new-é", "headers": headers})
    assert changed.uri == "/new-é"
    assert changed.headers.get("X-Name") == "né"
