"""Validators and byte ranges answered from a whole object."""

from __future__ import annotations

import pytest

from edgesim.cache.conditional import (
    etag_listed,
    http_date,
    not_modified,
    parse_range,
    range_response,
)
from edgesim.http import EdgeResponse, Headers

BODY = b"0123456789"
LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"


def _response() -> EdgeResponse:
    return EdgeResponse(
        200,
        Headers(
            [
                ("ETag", '"abc"'),
                ("Last-Modified", LAST_MODIFIED),
                ("Cache-Control", "max-age=60"),
                ("Content-Type", "text/plain"),
                ("Content-Length", "10"),
            ]
        ),
        BODY,
    )


def test_etag_lists() -> None:
    assert etag_listed('"x", "abc"', '"abc"', weak=False)
    assert etag_listed('W/"abc"', '"abc"', weak=True)
    assert not etag_listed('W/"abc"', '"abc"', weak=False)
    assert etag_listed("*", '"zzz"', weak=False)
    assert http_date(LAST_MODIFIED) == 1445412480
    assert http_date("yesterday") is None


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ([("If-None-Match", '"abc"')], 304),
        ([("If-None-Match", '"nope"')], None),
        ([("If-Modified-Since", LAST_MODIFIED)], 304),
        ([("If-Modified-Since", "Wed, 21 Oct 2015 07:27:59 GMT")], None),
        # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2)
        ([("If-None-Match", '"nope"'), ("If-Modified-Since", LAST_MODIFIED)], None),
        ([], None),
    ],
)
def test_not_modified(headers: list[tuple[str, str]], status: int | None) -> None:
    result = not_modified(Headers(headers), _response())
    if status is None:
        assert result is None
    else:
        assert result is not None and result.status == 304 and result.body == b""
        assert result.headers.get("ETag") == '"abc"'
        assert result.headers.get("Content-Type") is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=2-5", (2, 5)),
        ("bytes=7-", (7, 9)),
        ("bytes=-3", (7, 9)),
        ("bytes=5-100", (5, 9)),
        ("bytes=10-", "unsatisfiable"),
        ("bytes=5-2", None),
        ("bytes=0-1,3-4", None),
        ("items=0-1", None),
    ],
)
def test_parse_range(header: str, expected: object) -> None:
    assert parse_range(header, len(BODY)) == expected


def test_range_response() -> None:
    part = range_response(Headers([("Range", "bytes=2-5")]), _response())
    assert (part.status, part.body) == (206, b"2345")
    assert part.headers.get("Content-Range") == "bytes 2-5/10"
    assert part.headers.get("Content-Length") == "4"
    beyond = range_response(Headers([("Range", "bytes=20-")]), _response())
    assert beyond.status == 416 and beyond.headers.get("Content-Range") == "bytes */10"
    stale_if_range = Headers([("Range", "bytes=0-1"), ("If-Range", '"old"')])
    assert range_response(stale_if_range, _response()).status == 200
    assert range_response(Headers(), _response()).body == BODY
