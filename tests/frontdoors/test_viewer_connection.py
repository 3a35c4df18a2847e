"""Viewer connections: CloudFront's pages for what the HTTP parser refuses, one request at a
time and what the edge leaves unread, keep-alive, and raw non-ASCII request lines; all over real
sockets."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from edgesim.config import load_distribution
from edgesim.frontdoors import messages
from edgesim.frontdoors import server as server_module
from edgesim.frontdoors.server import EdgeServer
from edgesim.pipeline import Edge
from tests.frontdoors.viewer_connection_helpers import (
    Start,
    close_what_the_test_opened,  # noqa: F401  (a fixture, found by name)
    closed_without_answer,
    exchange,
    head_of,
    start_fixture,  # noqa: F401  (a fixture, found by name)
)
from tests.raw_http import one_response

# -- CloudFront's pages where the parser refuses ---------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
        (b"GET /\r\n\r\n", b"HTTP/1.1 400 Bad Request"),  # HTTP/0.9 gets no HTTP/0.9 answer
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", b"HTTP/1.1 413"),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", b"HTTP/1.1 413"),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\n" + b"A:\r\n" * 6000 + b"\r\n",
            b"HTTP/1.1 413",
        ),
    ],
    ids=["garbage", "http-0.9", "70000-byte-header", "70000-byte-url", "6000-headers"],
)
async def test_what_the_parser_refuses_gets_cloudfronts_page(
    start: Start, request_bytes: bytes, status: bytes
) -> None:
    """spec cloudfront-caching.md §4.3/§5: a request over 20,480 bytes is 413 and the connection
    is closed; a malformed one is CloudFront's 400. Never aiohttp's plain text."""
    server = await start()
    answer = await exchange(server, request_bytes)
    line, headers = head_of(answer)
    assert line.startswith(status)
    assert headers["server"] == "CloudFront"
    assert headers["x-cache"] == "Error from cloudfront"
    assert headers["connection"] == "close"
    assert headers["x-amz-cf-id"]
    assert b"The request could not be satisfied" in answer
    assert b"aiohttp" not in answer and b"Python" not in answer
    assert start.origin.heads == []  # type: ignore[attr-defined]


async def test_many_small_headers_within_cloudfronts_limit_are_served(start: Start) -> None:
    """300 headers in 4 KB are well inside 20,480 bytes (aiohttp alone refuses past 128)."""
    server = await start()
    many = b"".join(b"X-%d: v\r\n" % i for i in range(300))
    answer = await exchange(
        server, b"GET /m HTTP/1.1\r\nHost: a\r\nConnection: close\r\n" + many + b"\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 200")


async def test_an_upload_over_cloudfronts_maximum_is_refused_unread(start: Start) -> None:
    """spec cloudfront-caching.md §5: GET, POST and PUT requests are limited to 30 GB."""
    server = await start()
    answer = await exchange(
        server, b"PUT /big HTTP/1.1\r\nHost: a\r\nContent-Length: 40000000000\r\n\r\nxx"
    )
    assert answer.startswith(b"HTTP/1.1 413")
    assert head_of(answer)[1]["connection"] == "close"
    assert start.origin.heads == []  # type: ignore[attr-defined]


# -- one request at a time, and what the edge leaves unread ----------------------------------


def _paths(heads: list[bytes]) -> list[bytes]:
    return [head.split(b" ")[1] for head in heads]


async def test_pipelined_requests_are_answered_one_by_one_in_order(start: Start) -> None:
    server = await start(function=True)  # the function makes each answer wait on a worker
    requests = b"".join(b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(40))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
    writer.write(requests)  # more than the queue holds: reading pauses, then resumes
    await writer.drain()
    answers = [await one_response(reader) for _ in range(40)]
    writer.close()
    assert all(answer.startswith(b"HTTP/1.1 200") for answer in answers)
    heads: list[bytes] = start.origin.heads  # type: ignore[attr-defined]
    assert _paths(heads) == [b"/%d" % i for i in range(40)]


async def test_a_body_left_unread_is_discarded_and_the_connection_serves_on(start: Start) -> None:
    """CloudFront refuses a GET with a body without reading it (spec cloudfront-caching.md
    §1.3); the next request on the connection is read from where the body ends."""
    server = await start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
    writer.write(b"GET /with-body HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab")
    writer.write(b"cdeGET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    await writer.drain()
    refused = await one_response(reader)
    rest = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert refused.startswith(b"HTTP/1.1 403")
    assert rest.startswith(b"HTTP/1.1 200")
    assert _paths(start.origin.heads) == [b"/next"]  # type: ignore[attr-defined]


async def test_a_body_the_viewer_never_finishes_closes_the_connection(start: Start) -> None:
    server = await start(body_timeout=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
    writer.write(b"GET /with-body HTTP/1.1\r\nHost: a\r\nContent-Length: 50\r\n\r\nabc")
    await writer.drain()
    assert (await one_response(reader)).startswith(b"HTTP/1.1 403")
    assert await closed_without_answer(reader)
    writer.close()


async def test_an_upload_reaches_the_origin_as_the_viewer_sent_it(start: Start) -> None:
    """A gzip-encoded upload is passed on, not inflated on the way."""
    server = await start()
    body = gzip.compress(b"a" * 1000)
    head = b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Encoding: gzip\r\nConnection: close\r\n"
    answer = await exchange(server, head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    assert answer.startswith(b"HTTP/1.1 200")
    assert start.origin.bodies == [body]  # type: ignore[attr-defined]


async def test_an_upgrade_is_answered_then_the_connection_closes(start: Start) -> None:
    server = await start()
    answer = await exchange(
        server,
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        b"\x81\x05hello",
    )
    assert answer.startswith(b"HTTP/1.1 ")
    assert answer.count(b"HTTP/1.1 ") == 1  # the frame after it is never read as a request


async def test_a_defect_answering_one_request_costs_only_its_connection(
    start: Start, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start()
    # `serve` run in this process by another test keeps edgesim's records to its console.
    monkeypatch.setattr(logging.getLogger("edgesim"), "propagate", True)
    real = messages.send_response

    async def broken(request: Any, result: Any) -> bool:
        if request.message.path == "/boom":
            raise RuntimeError("a defect")
        return await real(request, result)

    monkeypatch.setattr(server_module, "send_response", broken)
    boom = await exchange(server, b"GET /boom HTTP/1.1\r\nHost: a\r\n\r\n")
    fine = await exchange(server, b"GET /fine HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert boom == b""
    assert fine.startswith(b"HTTP/1.1 200")
    assert "edgesim failed to answer GET /boom" in caplog.text


async def test_shutdown_lets_a_request_under_way_finish_and_closes_idle_connections(
    tmp_path: Path,
) -> None:
    reached, release = asyncio.Event(), asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        reached.set()
        await release.wait()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate")
        await writer.drain()
        writer.close()

    origin = await asyncio.start_server(slow, "127.0.0.1", 0)
    path = tmp_path / "d.yaml"
    path.write_text(
        f'origins: {{api: {{url: "http://127.0.0.1:{origin.sockets[0].getsockname()[1]}"}}}}\n'
        "behaviors: [{path_pattern: '*', origin: api}]\n"
    )
    server = EdgeServer([Edge(load_distribution(path))], port=0, shutdown_grace=30)
    await server.start()
    port = server.listeners[0].port
    idle = await asyncio.open_connection("127.0.0.1", port)
    busy = await asyncio.open_connection("127.0.0.1", port)
    busy[1].write(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
    await busy[1].drain()
    await asyncio.wait_for(reached.wait(), 10)  # the request is under way at the origin
    closing = asyncio.ensure_future(server.aclose())
    assert await closed_without_answer(idle[0])
    assert not closing.done()
    release.set()
    answer = await asyncio.wait_for(busy[0].read(), 10)
    await asyncio.wait_for(closing, 10)
    origin.close()
    await origin.wait_closed()
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"late")


@pytest.mark.parametrize(
    ("request_head", "connection", "stays_open"),
    [
        (b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n", None, True),
        (b"GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "close", False),
        (b"GET /a HTTP/1.0\r\nHost: a\r\n\r\n", None, False),
        (b"GET /a HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", "keep-alive", True),
    ],
    ids=["1.1", "1.1-close", "1.0", "1.0-keep-alive"],
)
async def test_the_connection_stays_open_as_the_viewer_asked(
    start: Start, request_head: bytes, connection: str | None, stays_open: bool
) -> None:
    server = await start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
    writer.write(request_head)
    await writer.drain()
    answer = await one_response(reader)
    assert answer.split(b" ", 2)[1] == b"200"
    assert head_of(answer)[1].get("connection") == connection
    if stays_open:
        writer.write(b"GET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        await writer.drain()
        assert (await asyncio.wait_for(reader.read(), 10)).startswith(b"HTTP/1.1 200")
    else:
        assert await closed_without_answer(reader)
    writer.close()


# -- raw non-ASCII request lines ------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", ["café".encode(), "café".encode("latin-1")], ids=["utf-8", "iso-8859-1"]
)
async def test_raw_non_ascii_request_lines_reach_the_function_as_utf8(
    start: Start, raw: bytes
) -> None:
    """spec lambda-edge.md §3.4: functions get UTF-8 (ISO-8859-1 converted first); the origin
    gets the bytes the viewer sent, since the function did not change the URI."""
    server = await start(function=True)
    first = b"GET /" + raw + b"?q=" + raw + b" HTTP/1.1\r\nHost: a\r\n\r\n"
    second = b"GET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
    writer.write(first)
    await writer.drain()
    answer = await one_response(reader)
    writer.write(second)  # the same connection keeps serving
    await writer.drain()
    rest = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200")
    assert rest.startswith(b"HTTP/1.1 200")
    heads: list[bytes] = start.origin.heads  # type: ignore[attr-defined]
    # The viewer's own bytes (not their UTF-8 conversion), percent-encoded where HTTP/1.1
    # forbids raw bytes in a request target (edgesim.origins.fetcher).
    sent = re.sub(rb"[\x80-\xff]", lambda byte: b"%%%02X" % byte.group()[0], raw)
    assert heads[0].startswith(b"GET /" + sent + b"?q=" + sent + b" HTTP/1.1\r\n")
    seen = next(line for line in heads[0].split(b"\r\n") if line.startswith(b"X-Seen: "))
    assert json.loads(seen.removeprefix(b"X-Seen: ")) == {"uri": "/café", "qs": "q=café"}
    assert heads[1].startswith(b"GET /after HTTP/1.1")
