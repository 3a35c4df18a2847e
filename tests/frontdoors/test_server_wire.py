"""The aiohttp adapter: on the wire nothing of the HTTP library shows; header bytes pass as
sent, the Server header is the origin's or CloudFront's, and a swapped edge finishes its work."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from edgesim.config import load_distribution
from edgesim.frontdoors.server import EdgeServer
from edgesim.http import EdgeRequest
from edgesim.pipeline import Edge, EdgeResult
from tests import http_clients
from tests.frontdoors.server_helpers import site_edge
from tests.raw_http import one_response

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _serve_in_front_of(
    tmp_path: Path, handler: RawHandler
) -> tuple[asyncio.Server, EdgeServer]:
    """A raw origin on 127.0.0.1 answering with ``handler``, and a started edge in front of it."""
    origin = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = origin.sockets[0].getsockname()[1]
    path = tmp_path / "d.yaml"
    path.write_text(
        f'origins: {{api: {{url: "http://127.0.0.1:{port}"}}}}\n'
        'behaviors: [{path_pattern: "*", origin: api}]\n'
    )
    server = EdgeServer([Edge(load_distribution(path))], port=0)
    await server.start()
    return origin, server


async def test_nothing_of_the_http_library_shows(tmp_path: Path) -> None:
    """No ``Server: Python/... aiohttp/...`` and no invented Content-Type: the viewer sees the
    origin's lines, or none."""

    async def bare_origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if b"/named" in head.split(b"\r\n", 1)[0]:
            writer.write(b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 2\r\n\r\nok")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    origin, server = await _serve_in_front_of(tmp_path, bare_origin)
    try:
        async with http_clients.async_client() as client:
            bare = await client.get(server.url() + "/bare")
            named = await client.get(server.url() + "/named")
    finally:
        await server.aclose()
        origin.close()
        await origin.wait_closed()
    assert bare.content == b"ok"
    assert "server" not in bare.headers and "content-type" not in bare.headers
    assert named.headers["server"] == "nginx"


@pytest.mark.parametrize(
    "raw", ["café".encode(), "café".encode("latin-1"), b"plain"], ids=["utf-8", "latin-1", "ascii"]
)
async def test_header_bytes_reach_the_origin_byte_for_byte(tmp_path: Path, raw: bytes) -> None:
    seen: list[bytes] = []

    async def recording_origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.extend(line for line in head.split(b"\r\n") if line.lower().startswith(b"x-name:"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    origin, server = await _serve_in_front_of(tmp_path, recording_origin)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
        writer.write(
            b"GET /x HTTP/1.1\r\nHost: a.test\r\nX-Name: " + raw + b"\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        answer = await reader.read()
        writer.close()
    finally:
        await server.aclose()
        origin.close()
        await origin.wait_closed()
    assert answer.startswith(b"HTTP/1.1 200")
    assert seen == [b"X-Name: " + raw]


# -- the Server header on every path, as the viewer's socket sees it ----------------------------

GENERATE = """
def handler(event, context):
    return {"status": "200", "body": "made at the edge",
            "headers": {"cache-control": [{"key": "Cache-Control", "value": "max-age=300"}]}}
"""


async def _server_lines(port: int, method: str, path: str, extra: str = "") -> list[str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"{method} {path} HTTP/1.1\r\nHost: d.test\r\n{extra}Connection: close\r\n\r\n"
    writer.write(request.encode())
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    head = answer.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    return [line.partition(":")[2].strip() for line in head if line.lower().startswith("server:")]


async def test_the_server_header_is_the_origins_or_cloudfronts_on_every_path(
    tmp_path: Path,
) -> None:
    """CloudFront passes on the origin's ``Server`` (none if it sent none) and says
    ``Server: CloudFront`` on its own error pages and on function-generated responses (spec
    lambda-edge.md §4.1, §5.1; cloudfront-caching.md §4.2). A response generated at
    origin-request is cached (spec lambda-edge.md §4.3), so its later Hits are still CloudFront's
    own. edgesim's HTTP library never names itself."""
    (tmp_path / "gen.py").write_text(GENERATE)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "s3").mkdir()
    (tmp_path / "site" / "s3" / "a.txt").write_text("hi")

    async def bare(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if b"if-none-match" in head.lower():
            writer.write(b'HTTP/1.1 304 Not Modified\r\nETag: "e"\r\n\r\n')
        else:
            writer.write(
                b'HTTP/1.1 200 OK\r\nETag: "e"\r\nCache-Control: max-age=300\r\n'
                b"Content-Length: 2\r\n\r\nok"
            )
        await writer.drain()
        writer.close()

    origin = await asyncio.start_server(bare, "127.0.0.1", 0)
    port = origin.sockets[0].getsockname()[1]
    path = tmp_path / "d.yaml"
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = unused.getsockname()[1]  # nothing listens there once this socket is gone
    site = tmp_path / "site"
    path.write_text(
        f'origins: {{api: {{url: "http://127.0.0.1:{port}"}}, site: {{s3: "{site}"}},\n'
        f'          gone: {{url: "http://127.0.0.1:{closed}", connection_attempts: 1}}}}\n'
        f'functions: {{gen: {{runtime: python3.12, code: "{tmp_path}", handler: gen.handler}}}}\n'
        "behaviors:\n"
        "  - {path_pattern: /vreq/*, origin: api, functions: {viewer-request: gen}}\n"
        "  - {path_pattern: /oreq/*, origin: api, cache_policy: CachingOptimized,\n"
        "     functions: {origin-request: gen}}\n"
        "  - {path_pattern: /s3/*, origin: site}\n"
        "  - {path_pattern: /gone/*, origin: gone}\n"
        "  - {path_pattern: /pass/*, origin: api}\n"
        '  - {path_pattern: "*", origin: api, cache_policy: CachingOptimized}\n'
    )
    server = EdgeServer([Edge(load_distribution(path))], port=0)
    await server.start()
    viewer = server.listeners[0].port
    inm = 'If-None-Match: "e"\r\n'
    expected = [
        ("GET", "/vreq/x", "", ["CloudFront"]),  # generated at viewer-request
        ("HEAD", "/vreq/x", "", ["CloudFront"]),
        ("GET", "/oreq/x", "", ["CloudFront"]),  # generated at origin-request: Miss
        ("GET", "/oreq/x", "", ["CloudFront"]),  # ... then Hit
        ("HEAD", "/oreq/x", "", ["CloudFront"]),
        ("GET", "/plain", "", []),  # an origin without Server: Miss, Hit, HEAD, 304
        ("GET", "/plain", "", []),
        ("HEAD", "/plain", "", []),
        ("GET", "/plain", inm, []),
        ("GET", "/pass/x", inm, []),  # the origin's own 304, not cached
        ("GET", "/s3/a.txt", "", ["AmazonS3"]),  # an S3 folder origin
        ("HEAD", "/s3/a.txt", "", ["AmazonS3"]),
        ("GET", "/gone/x", "", ["CloudFront"]),  # CloudFront's error pages
        ("HEAD", "/gone/x", "", ["CloudFront"]),
        ("DELETE", "/plain", "", ["CloudFront"]),
    ]
    try:
        seen = [
            (method, target, await _server_lines(viewer, method, target, extra))
            for method, target, extra, _ in expected
        ]
    finally:
        await server.aclose()
        origin.close()
        await origin.wait_closed()
    assert seen == [(method, target, servers) for method, target, _, servers in expected]


async def test_a_swapped_edge_finishes_its_requests_then_closes(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old, new = site_edge(tmp_path / "old"), site_edge(tmp_path / "new")
    (tmp_path / "new" / "site" / "a.txt").write_bytes(b"new")
    release = asyncio.Event()
    original = old.dispatch
    closed: list[str] = []

    async def held(request: EdgeRequest, *, stream: bool = False) -> EdgeResult:
        await release.wait()
        return await original(request, stream=stream)

    async def record_close() -> None:
        closed.append("old")

    old.dispatch = held  # type: ignore[method-assign]
    old.aclose = record_close  # type: ignore[method-assign]
    server = EdgeServer([old], port=0)
    await server.start()
    try:
        async with http_clients.async_client() as client:
            in_flight = asyncio.ensure_future(client.get(server.url() + "/a.txt"))
            while not server._active:
                await asyncio.sleep(0.01)
            assert server.swap(0, new) is old
            assert server.listeners[0].edge is new
            assert (await client.get(server.url() + "/a.txt")).content == b"new"
            assert closed == []  # still serving its request
            release.set()
            assert (await in_flight).content == b"hello"
            while not closed:
                await asyncio.sleep(0.01)
    finally:
        await server.aclose()


async def test_a_response_left_to_aiohttps_writer_keeps_the_connection(tmp_path: Path) -> None:
    """A status the origin sent without a reason phrase is not rendered by edgesim itself but
    by aiohttp's response writer; nothing of the library shows, and the connection serves on."""

    async def unnamed_status(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            writer.write(b"HTTP/1.1 599 \r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        writer.close()

    origin, server = await _serve_in_front_of(tmp_path, unnamed_status)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
        answers = []
        for _ in range(2):  # the same connection, twice
            writer.write(b"GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n")
            await writer.drain()
            answers.append(await one_response(reader))
        writer.close()
    finally:
        await server.aclose()
        origin.close()
        await origin.wait_closed()
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 599")
        assert answer.endswith(b"\r\n\r\nok")
        assert b"aiohttp" not in answer and b"content-type" not in answer.lower()
