"""A viewer's request as the front door reads it: method, version, whether the viewer keeps the
connection, whether a body follows; over a real connection's parser."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import HttpVersion10, HttpVersion11
from aiohttp.http_parser import HttpRequestParser

from edgesim.frontdoors.viewer_request import ViewerRequest


def _nothing(self: object, **_: object) -> None:
    return None


def _parsed(raw: bytes) -> ViewerRequest:
    loop = asyncio.get_running_loop()
    protocol: Any = type("P", (), {"pause_reading": _nothing, "resume_reading": _nothing})()
    messages, _, _ = HttpRequestParser(protocol, loop, 2**16).feed_data(raw)
    message, payload = messages[0]
    return ViewerRequest(message, payload, connection=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "version", "keep_alive", "body"),
    [
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", HttpVersion11, True, False),
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", HttpVersion11, False, False),
        (b"GET / HTTP/1.0\r\n\r\n", HttpVersion10, False, False),
        (b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", HttpVersion10, True, False),
        (b"POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", HttpVersion11, True, True),
        (
            b"PUT /f HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            HttpVersion11,
            True,
            True,
        ),
        (b"POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", HttpVersion11, True, False),
    ],
    ids=["1.1", "1.1-close", "1.0", "1.0-keep-alive", "length", "chunked", "empty"],
)
async def test_what_the_front_door_reads_of_a_request(
    raw: bytes, version: object, keep_alive: bool, body: bool
) -> None:
    request = _parsed(raw)
    assert request.method == raw.split(b" ")[0].decode()
    assert request.version == version
    assert request.keep_alive is keep_alive
    assert request.body_exists is body
