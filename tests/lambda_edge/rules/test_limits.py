"""Header-size limits on function results, checked before the headers are read line by line.

Sources: cloudfront-caching.md §5 (a viewer request's line and headers may total 20,480 bytes,
and "the current quota page extends the same limit to origin response headers"); lambda-edge.md
§2.2 and §3.5 (a generated response, headers and body, is at most 40 KB at viewer-request and
1 MB at origin-request; over it is a 502) and §3.4 ("No documented per-header name/value length
limit for function output": nothing refuses a returned *request* for its header size).

A line is measured as ``Name: value`` plus CRLF, in UTF-8, as the origin fetcher measures what
an origin sends.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from edgesim.lambda_edge.rules.limits import LINE_OVERHEAD, over
from edgesim.quotas import HEADERS_MAX_BYTES
from edgesim.types import EventType
from tests.lambda_edge.rules.test_validate import (
    EVENT_FILES,
    EVENTS,
    KB,
    MB,
    OR,
    ORS,
    REQUEST,
    RESPONSE,
    VR,
    VRS,
    Change,
    check,
    fails,
    generated,
    header,
    put,
)

FAILED = "The Lambda function result failed validation: "
BODY_REJECTED = f"{FAILED}The body is not a string, is not an object, or exceeds the maximum size. "


def _size(headers: dict[str, Any]) -> int:
    return sum(
        len((entry.get("key") or name).encode()) + len(entry["value"].encode()) + LINE_OVERHEAD
        for name, entries in headers.items()
        for entry in entries
    )


def padded_to(total: int) -> Change:
    """Add one ``X-Pad`` line so that the result's header lines come to exactly ``total`` bytes."""

    def change(result: Any) -> Any:
        headers = result.setdefault("headers", {})
        room = total - _size(headers) - len("X-Pad") - LINE_OVERHEAD
        assert room >= 0
        headers["x-pad"] = header("X-Pad", "p" * room)
        assert _size(headers) == total
        return result

    return change


def _example_headers(trigger: EventType) -> dict[str, Any]:
    event = json.loads((EVENTS / EVENT_FILES[trigger]).read_text())
    headers: dict[str, Any] = event["Records"][0]["cf"]["response"]["headers"]
    return headers


def many_headers(count: int) -> Change:
    def change(result: Any) -> Any:
        for i in range(count):
            result["headers"][f"x-h{i}"] = header(f"X-H{i}", "v")
        return result

    return change


@pytest.mark.parametrize("trigger", [VRS, ORS])
def test_response_headers_at_the_limit_pass(trigger: EventType) -> None:
    assert check(trigger, padded_to(HEADERS_MAX_BYTES)) is RESPONSE


@pytest.mark.parametrize("trigger", [VRS, ORS])
def test_response_headers_one_byte_over_the_limit_fail(trigger: EventType) -> None:
    reason = fails(trigger, padded_to(HEADERS_MAX_BYTES + 1))
    assert reason.startswith(
        f"{FAILED}The response headers are over CloudFront's limit of 20480 bytes "
        f"in a {trigger} result (at least 20481 bytes"
    )


def test_non_ascii_values_count_in_utf8_bytes() -> None:
    # 10,240 two-byte characters are 20,480 bytes, not 10,240 characters.
    reason = fails(VRS, put("headers.x-a", header("X-A", "é" * (HEADERS_MAX_BYTES // 2))))
    assert "over CloudFront's limit of 20480 bytes" in reason


@pytest.mark.parametrize("trigger", [VRS, ORS])
def test_a_hundred_thousand_headers_get_the_size_reason(trigger: EventType) -> None:
    reason = fails(trigger, many_headers(100_000))
    assert "over CloudFront's limit of 20480 bytes" in reason
    assert reason.endswith(f"in {100_000 + len(_example_headers(trigger))} header names)")


class _CountingList(list[Any]):
    """A header array that counts how many of its entries were read."""

    read = 0

    def __iter__(self) -> Iterator[Any]:
        for item in super().__iter__():
            _CountingList.read += 1
            yield item


def test_counting_stops_once_over_the_limit() -> None:
    # Each line is at least 5 bytes (one-letter name, ": ", CRLF), so no more than
    # limit / 5 + 1 lines are ever read, however many the function returned.
    _CountingList.read = 0
    headers = {f"x{i}": _CountingList([{"value": ""}]) for i in range(100_000)}
    assert over(headers, HEADERS_MAX_BYTES) is not None
    assert _CountingList.read <= HEADERS_MAX_BYTES // 5 + 1


@pytest.mark.parametrize(
    "headers",
    [None, "text", [], {"x-a": "1"}, {"x-a": [None, 5]}, {"x-a": [{"value": 5}]}],
    ids=repr,
)
def test_malformed_headers_are_left_to_the_shape_rules(headers: object) -> None:
    assert over(headers, HEADERS_MAX_BYTES) is None


@pytest.mark.parametrize(("trigger", "limit"), [(VR, 40 * KB), (OR, 1 * MB)])
def test_generated_response_headers_alone_at_the_limit_pass(trigger: EventType, limit: int) -> None:
    assert check(trigger, lambda _: padded_to(limit)({"status": "200"})) is RESPONSE


@pytest.mark.parametrize(("trigger", "limit"), [(VR, 40 * KB), (OR, 1 * MB)])
def test_generated_response_headers_alone_over_the_limit_fail(
    trigger: EventType, limit: int
) -> None:
    reason = fails(trigger, lambda _: padded_to(limit + 1)({"status": "200"}))
    assert reason.startswith(
        f"{BODY_REJECTED}The response headers alone are over the {limit} byte limit of {trigger}"
    )


def test_generated_response_with_many_headers_fails_on_size() -> None:
    reason = fails(VR, generated(headers={f"x-h{i}": header(f"X-H{i}", "v") for i in range(5000)}))
    assert reason.startswith(BODY_REJECTED)
    assert "in 5000 header names" in reason


@pytest.mark.parametrize("trigger", [VR, OR])
def test_returned_request_is_not_held_to_a_header_size(trigger: EventType) -> None:
    # §3.4: no source documents a refusal of a function's request for its header size; the
    # 20,480-byte request limit is the viewer's request, answered 413 before any function.
    assert check(trigger, padded_to(2 * HEADERS_MAX_BYTES)) is REQUEST
