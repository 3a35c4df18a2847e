"""Validators and byte ranges answered from a whole object."""

from __future__ import annotations

import email
import email.policy

import pytest

from edgesim.cache.conditional import (
    answer_from_object,
    asks_if_modified,
    etag_listed,
    for_the_origin,
    http_date,
    not_modified,
    parse_range,
    range_response,
)
from edgesim.http import EdgeRequest, EdgeResponse, Headers

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


def test_a_part_cut_from_a_chunked_object_goes_out_with_its_length() -> None:
    """cloudfront-caching.md §3.10 keeps an object that arrived chunked in chunked form; a range
    cut from it has a known length, so it is not sent in chunks."""
    chunked = _response()
    chunked.headers.remove("Content-Length")
    chunked.headers.add("Transfer-Encoding", "chunked")
    part = range_response(Headers([("Range", "bytes=2-5")]), chunked)
    assert part.status == 206
    assert "transfer-encoding" not in part.headers
    assert part.headers.get("Content-Length") == "4"


def _parts(response: EdgeResponse) -> list[tuple[str | None, str | None, bytes]]:
    """The (Content-Type, Content-Range, body) of each part of a multipart/byteranges body."""
    content_type = response.headers.get("Content-Type") or ""
    raw = f"Content-Type: {content_type}\r\n\r\n".encode() + response.body
    message = email.message_from_bytes(raw, policy=email.policy.HTTP)
    assert message.get_content_type() == "multipart/byteranges"
    return [
        (part["Content-Type"], part["Content-Range"], bytes(part.get_payload(decode=True)))
        for part in message.iter_parts()
    ]


def test_ascending_separate_ranges_get_a_multipart_206() -> None:
    """cloudfront-caching.md §3.3: CloudFront follows the RFC for several ranges, which are
    answered 206 ``multipart/byteranges`` (RFC 9110 §14.6): a boundary, and each part with the
    object's Content-Type and its own Content-Range."""
    result = range_response(Headers([("Range", "bytes=0-1, 4-5,-2")]), _response())
    assert result.status == 206
    content_type = result.headers.get("Content-Type") or ""
    assert content_type.startswith("multipart/byteranges; boundary=")
    assert result.headers.get("Content-Range") is None
    assert result.headers.get("Content-Length") == str(len(result.body))
    assert result.headers.get("ETag") == '"abc"'
    assert _parts(result) == [
        ("text/plain", "bytes 0-1/10", b"01"),
        ("text/plain", "bytes 4-5/10", b"45"),
        ("text/plain", "bytes 8-9/10", b"89"),
    ]
    boundary = content_type.split("boundary=", 1)[1]
    assert result.body.endswith(f"--{boundary}--\r\n".encode())


@pytest.mark.parametrize(
    "header",
    [
        "bytes=300-400,100-200",  # descending
        "bytes=4-5,0-1",
        "bytes=-2,0-1",  # the suffix is bytes 8-9, before 0-1 in the list
        "bytes=1-5,3-7",  # overlapping
        "bytes=0-,5-6",  # an open range overlaps everything after it
        "bytes=0-1,x-3",  # invalid specs
        "bytes=0-1,5-2",
        "bytes=0-1,--3",
    ],
)
def test_descending_overlapping_or_invalid_ranges_get_the_whole_object(header: str) -> None:
    """cloudfront-caching.md §3.3: ranges out of ascending order, overlapping ranges and any
    invalid range spec get 200 with the whole object instead of 206."""
    result = range_response(Headers([("Range", header)]), _response())
    assert (result.status, result.body) == (200, BODY)


def test_unsatisfiable_ranges_among_several_are_left_out() -> None:
    """RFC 9110 §14.1.1 (CloudFront follows the RFC, cloudfront-caching.md §3.3): a range set is
    unsatisfiable only when none of its ranges is; the others are served, one range alone as a
    plain 206."""
    one = range_response(Headers([("Range", "bytes=2-3,20-30")]), _response())
    assert (one.status, one.body) == (206, b"23")
    assert one.headers.get("Content-Range") == "bytes 2-3/10"
    assert one.headers.get("Content-Type") == "text/plain"
    none = range_response(Headers([("Range", "bytes=20-30,40-50")]), _response())
    assert none.status == 416 and none.headers.get("Content-Range") == "bytes */10"


def test_the_answer_from_a_held_object() -> None:
    """A held object answers validators with 304 (Age kept) and ranges with 206, but ranges
    only for GET: RFC 9110 §14.2 defines range handling for no other method, so a HEAD gets
    the object's headers whatever its Range says."""
    aged = _response()
    aged.headers.set("Age", "5")
    unchanged = answer_from_object("GET", Headers([("If-None-Match", '"abc"')]), aged)
    assert (unchanged.status, unchanged.headers.get("Age")) == (304, "5")
    ranged = Headers([("Range", "bytes=0-1")])
    assert answer_from_object("GET", ranged, _response()).status == 206
    assert answer_from_object("HEAD", ranged, _response()).status == 200
    headers_only = EdgeResponse(200, Headers([("Content-Length", "10")]))
    assert answer_from_object("HEAD", ranged, headers_only).status == 200
    assert answer_from_object("POST", ranged, _response()).status == 200


def test_what_the_edge_keeps_from_the_origin() -> None:
    """cloudfront-caching.md §3.3 and §4.1: Range (with If-Range) goes to the origin unless the
    edge holds the whole object; the viewer's validators never go on a cacheable request, so the
    origin sends a whole, storable object."""
    viewer = EdgeRequest(
        "GET",
        "/x",
        headers=Headers(
            [("Range", "bytes=0-1"), ("If-Range", '"abc"'), ("If-None-Match", '"abc"'), ("A", "1")]
        ),
    )
    with_range = for_the_origin(viewer, with_range=True)
    assert with_range.headers.items() == [("Range", "bytes=0-1"), ("If-Range", '"abc"'), ("A", "1")]
    assert for_the_origin(viewer, with_range=False).headers.items() == [("A", "1")]
    plain = EdgeRequest("GET", "/x", headers=Headers([("A", "1")]))
    assert for_the_origin(plain, with_range=False) is plain
    assert asks_if_modified(Headers([("if-modified-since", LAST_MODIFIED)]))
    assert not asks_if_modified(Headers([("If-Match", '"abc"')]))
