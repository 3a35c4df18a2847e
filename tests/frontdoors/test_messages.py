"""Between the viewer's connection and the pipeline: responses as bytes built here, as aiohttp's
writer sends them, and as raw bytes when CloudFront answers and closes; and the interim 100 a
viewer waiting to send its body is given."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest
from aiohttp import HttpVersion, HttpVersion11, web
from aiohttp.test_utils import TestServer

from edgesim.config import load_distribution
from edgesim.frontdoors.messages import _whole_wire, to_web_response, wire_bytes
from edgesim.frontdoors.server import EdgeServer
from edgesim.frontdoors.viewer_request import ViewerRequest
from edgesim.http import EdgeResponse, Headers
from edgesim.pipeline import Edge
from tests.raw_http import one_response


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


CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@pytest.fixture
async def upload_edge(tmp_path: Path) -> AsyncIterator[int]:
    """An edge in front of an origin that echoes bodies: uploads allowed under ``/up/``, only
    GET and HEAD elsewhere. Yields the edge's port."""

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    origin = TestServer(app, host="127.0.0.1")
    await origin.start_server()
    path = tmp_path / "d.yaml"
    path.write_text(
        f'origins: {{api: {{url: "http://127.0.0.1:{origin.port}"}}}}\n'
        "behaviors:\n"
        '  - {path_pattern: "/up/*", origin: api, cache_policy: CachingDisabled,\n'
        "     allowed_methods: [GET, HEAD, OPTIONS, PUT, PATCH, POST, DELETE]}\n"
        '  - {path_pattern: "*", origin: api, cache_policy: CachingDisabled}\n'
    )
    server = EdgeServer([Edge(load_distribution(path))], port=0)
    await server.start()
    yield server.listeners[0].port
    await server.aclose()
    await origin.close()


def _post(path: str, version: str = "1.1", expect: str = "100-continue") -> bytes:
    return (
        f"POST {path} HTTP/{version}\r\nHost: x\r\nExpect: {expect}\r\nContent-Length: 5\r\n\r\n"
    ).encode()


async def test_a_viewer_waiting_to_send_its_body_is_told_to_go_on(upload_edge: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", upload_edge)
    try:
        writer.write(_post("/up/a"))
        assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10) == CONTINUE
        writer.write(b"hello")
        answer = await one_response(reader)
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"\r\n\r\nhello")
        # The expectation's spelling does not matter; the connection serves the next upload.
        writer.write(_post("/up/b", expect="100-Continue"))
        assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10) == CONTINUE
        writer.write(b"again")
        assert (await one_response(reader)).endswith(b"\r\n\r\nagain")
    finally:
        writer.close()


async def test_a_request_answered_without_its_body_gets_no_100(upload_edge: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", upload_edge)
    try:
        writer.write(_post("/elsewhere"))  # POST is not allowed here: CloudFront's 403
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    finally:
        writer.close()


async def test_an_http_1_0_viewer_gets_no_interim_answer(upload_edge: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", upload_edge)
    try:
        writer.write(_post("/up/a", version="1.0"))
        await asyncio.sleep(0.2)  # what an HTTP/1.0 viewer would never wait for
        writer.write(b"hello")
        answer = await asyncio.wait_for(reader.read(), 10)
        assert not answer.startswith(b"HTTP/1.1 100")
        assert b" 200 OK\r\n" in answer.split(b"\r\n", 1)[0] + b"\r\n"
        assert answer.endswith(b"\r\n\r\nhello")
    finally:
        writer.close()
