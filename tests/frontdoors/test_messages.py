"""Between the viewer's connection and the pipeline: responses as bytes built here, as aiohttp's
writer sends them, and as raw bytes when CloudFront answers and closes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import pytest
from aiohttp import HttpVersion, HttpVersion11

from edgesim.frontdoors.messages import _whole_wire, to_web_response, wire_bytes
from edgesim.frontdoors.viewer_request import ViewerRequest
from edgesim.http import EdgeResponse, Headers


def test_web_response_recomputes_length_and_keeps_repeats() -> None:
    response = EdgeResponse(
        200,
        Headers([("Content-Length", "999"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]),
        b"abc",
    )
    web_response = to_web_response(response, head=False)
    assert web_response.body == b"abc"
    assert web_response.headers.getall("Set-Cookie") == ["a=1", "b=2"]
    assert "999" not in web_response.headers.values()
    head = to_web_response(response, head=True)
    assert head.headers["Content-Length"] == "999"


def test_wire_bytes_is_http_1_1_and_closes_the_connection() -> None:
    response = EdgeResponse(
        413,
        Headers([("Server", "CloudFront"), ("Connection", "keep-alive"), ("Content-Length", "2")]),
        b"no",
    )
    assert wire_bytes(response) == (
        b"HTTP/1.1 413 Request Entity Too Large\r\nServer: CloudFront\r\nContent-Length: 2\r\n"
        b"Connection: close\r\n\r\nno"
    )


@dataclass
class _Viewer:
    """What the whole-body writer reads of a viewer's request."""

    method: str = "GET"
    version: HttpVersion = HttpVersion11
    keep_alive: bool = True


def _wire(response: EdgeResponse, viewer: _Viewer | None = None) -> bytes | None:
    return _whole_wire(cast(ViewerRequest, viewer or _Viewer()), response)


def test_a_whole_body_goes_out_as_one_write_with_its_own_length() -> None:
    lines = [("Date", "d"), ("Content-Length", "999"), ("ETag", '"e"'), ("Age", "3")]
    wire = _wire(EdgeResponse(200, Headers(lines), b"abc"))
    assert wire == (
        b'HTTP/1.1 200 OK\r\nDate: d\r\nETag: "e"\r\nAge: 3\r\nContent-Length: 3\r\n\r\nabc'
    )
    closing = _wire(EdgeResponse(200, Headers(lines), b"abc"), _Viewer(keep_alive=False))
    assert closing is not None and closing.endswith(b"Connection: close\r\n\r\nabc")


def test_tabs_and_non_ascii_values_are_written_as_utf_8() -> None:
    lines = [("Date", "d"), ("X-Name", "caf\u00e9\tcr\u00e8me")]
    wire = _wire(EdgeResponse(200, Headers(lines), b""))
    assert wire is not None and "X-Name: caf\u00e9\tcr\u00e8me\r\n".encode() in wire


@pytest.mark.parametrize("value", ["a\r\nSet-Cookie: x=1", "a\nb", "a\x00b", "a\x1fb", "a\x7fb"])
def test_a_control_character_leaves_the_response_to_aiohttp(value: str) -> None:
    # aiohttp's own path refuses such a line (a header injection) with its error answer.
    assert _wire(EdgeResponse(200, Headers([("Date", "d"), ("X-Bad", value)]), b"")) is None
    assert _wire(EdgeResponse(200, Headers([("Date", "d"), (f"X{value}", "v")]), b"")) is None


def test_bytes_that_are_not_utf_8_leave_the_response_to_aiohttp() -> None:
    undecodable = b"\xff".decode("utf-8", "surrogateescape")
    assert _wire(EdgeResponse(200, Headers([("Date", "d"), ("X-Raw", undecodable)]), b"")) is None
