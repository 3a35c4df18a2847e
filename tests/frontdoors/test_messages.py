"""Between aiohttp and the pipeline: responses as aiohttp sends them, and as raw bytes when
CloudFront answers and closes."""

from __future__ import annotations

from edgesim.frontdoors.messages import to_web_response, wire_bytes
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
