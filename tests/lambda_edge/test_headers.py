"""Headers in events: CloudFront's header map both ways, and the lines a function never sees."""

from __future__ import annotations

from edgesim.http import EdgeRequest, Headers
from edgesim.lambda_edge.events import viewer_request_event
from edgesim.lambda_edge.headers import (
    headers_from_cf,
    headers_from_lines,
    headers_to_cf,
    merge_hidden,
    split_hidden,
)
from edgesim.lambda_edge.rules.headers import HeaderLines
from tests.lambda_edge.test_events import CTX, cf


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
                ("Transfer-Encoding", "chunked"),
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
