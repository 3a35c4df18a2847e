"""The aiohttp adapter: what crosses the socket is what the pipeline saw and said."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from edgesim.config import load_distribution
from edgesim.frontdoors.server import EdgeServer
from edgesim.http import EdgeRequest
from edgesim.pipeline import Edge, EdgeResult
from tests import http_clients
from tests.raw_http import one_response


def _site_edge(tmp_path: Path) -> Edge:
    site = tmp_path / "site"
    site.mkdir()
    (site / "a.txt").write_bytes(b"hello")
    path = tmp_path / "d.yaml"
    path.write_text(
        f'origins: {{site: {{s3: "{site}"}}}}\nbehaviors: [{{path_pattern: "*", origin: site}}]\n'
    )
    return Edge(load_distribution(path))


async def test_one_port_per_distribution_and_access_log(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first, second = _site_edge(tmp_path / "one"), _site_edge(tmp_path / "two")
    seen: list[tuple[str, int]] = []
    server = EdgeServer(
        [first, second],
        port=0,
        access_log=lambda req, res, ms: seen.append((req.target, res.response.status)),
    )
    await server.start()
    try:
        assert server.listeners[0].port != server.listeners[1].port
        async with http_clients.async_client() as client:
            for index in (0, 1):
                response = await client.get(server.url(index) + "/a.txt?x=1")
                assert response.content == b"hello"
                assert response.headers["x-cache"] == "Miss from cloudfront"
        assert seen == [("/a.txt?x=1", 200), ("/a.txt?x=1", 200)]
    finally:
        await server.aclose()
        await server.aclose()  # closing twice is harmless


def _record_dispatched(edge: Edge) -> list[EdgeRequest]:
    """Every request the front door hands ``edge``, in order."""
    captured: list[EdgeRequest] = []
    original = edge.dispatch

    async def spy(request: EdgeRequest, *, stream: bool = False) -> EdgeResult:
        captured.append(request)
        return await original(request, stream=stream)

    edge.dispatch = spy  # type: ignore[method-assign]
    return captured


async def test_raw_target_and_header_case_reach_the_pipeline(tmp_path: Path) -> None:
    edge = _site_edge(tmp_path)
    captured = _record_dispatched(edge)
    server = EdgeServer([edge], port=0)
    await server.start()
    try:
        async with http_clients.async_client() as client:
            await client.get(server.url() + "/a%2Fb/..%2f?q=%20x", headers={"X-MiXed": "1"})
        request = captured[0]
        assert request.uri == "/a%2Fb/..%2f"
        assert request.querystring == "q=%20x"
        assert ("X-MiXed", "1") in request.headers.items()
        assert request.client_ip == "127.0.0.1"
        assert request.local_port == server.listeners[0].port
    finally:
        await server.aclose()


async def test_long_urls_reach_cloudfronts_own_limit(tmp_path: Path) -> None:
    server = EdgeServer([_site_edge(tmp_path)], port=0)
    await server.start()
    try:
        async with http_clients.async_client() as client:
            near = await client.get(server.url() + "/" + "a" * 8000)
            over = await client.get(server.url() + "/" + "a" * 9000)
        # the S3-style origin answers (the name is too long for a file), not aiohttp's own 400
        assert near.status_code in (403, 404)
        assert near.headers["server"] == "AmazonS3"
        assert over.status_code == 413
        assert over.headers["x-cache"] == "Error from cloudfront"
    finally:
        await server.aclose()


# -- streamed bodies through a real EdgeServer ------------------------------------------------

HALF = 256 * 1024
SLOW_BODY = os.urandom(2 * HALF)
UPLOAD = os.urandom(5 * 1024 * 1024)
BIG = os.urandom(8 * 1024 * 1024)


@dataclass
class StreamingOrigin:
    """A loopback origin: ``/halves`` sends half its body and the rest once ``release`` is set;
    ``/short`` promises more bytes than it sends, then hangs up; ``/upload`` records the body;
    ``/big`` sends 8 MiB of known length in 64 KiB writes."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    uploads: list[tuple[list[tuple[str, str]], bytes]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/upload":
            body = await request.read()
            lines = [(k.decode(), v.decode()) for k, v in request.raw_headers]
            self.uploads.append((lines, body))
            return web.Response(text=str(len(body)))
        if request.path == "/big":
            big = web.StreamResponse(headers={"Content-Length": str(len(BIG))})
            await big.prepare(request)
            for at in range(0, len(BIG), 64 * 1024):
                await big.write(BIG[at : at + 64 * 1024])
            await big.write_eof()
            return big
        if request.path == "/short":
            sent = web.StreamResponse(headers={"Content-Length": str(len(SLOW_BODY))})
            await sent.prepare(request)
            await sent.write(SLOW_BODY[:HALF])
            assert request.transport is not None
            request.transport.close()
            return sent
        sent = web.StreamResponse(headers={"Content-Length": str(len(SLOW_BODY))})
        await sent.prepare(request)
        await sent.write(SLOW_BODY[:HALF])
        await self.release.wait()
        await sent.write(SLOW_BODY[HALF:])
        await sent.write_eof()
        return sent


@pytest.fixture
async def streaming_origin() -> AsyncIterator[StreamingOrigin]:
    origin = StreamingOrigin()
    app = web.Application(client_max_size=2 * len(UPLOAD))
    app.router.add_route("*", "/{tail:.*}", origin.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    origin.url = f"http://127.0.0.1:{server.port}"
    yield origin
    origin.release.set()
    await server.close()


@pytest.fixture
async def proxy(
    tmp_path: Path, streaming_origin: StreamingOrigin
) -> AsyncIterator[tuple[EdgeServer, Logged]]:
    path = tmp_path / "d.yaml"
    path.write_text(
        f'origins: {{api: {{url: "{streaming_origin.url}"}}}}\n'
        'behaviors: [{path_pattern: "*", origin: api, cache_policy: CachingDisabled,\n'
        "             allowed_methods: [GET, HEAD, OPTIONS, PUT, PATCH, POST, DELETE]}]\n"
    )
    logged = Logged()
    server = EdgeServer([Edge(load_distribution(path))], port=0, access_log=logged.log)
    await server.start()
    yield server, logged
    await server.aclose()


@dataclass
class Logged:
    """What the access log was given; ``wait`` returns once ``count`` requests are logged."""

    results: list[EdgeResult] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def log(self, request: EdgeRequest, result: EdgeResult, ms: float) -> None:
        self.results.append(result)
        self.changed.set()

    async def wait(self, count: int = 1) -> list[EdgeResult]:
        # The viewer can hold the last byte before the handler has logged it.
        while len(self.results) < count:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 20)
        return self.results


async def test_the_first_half_reaches_the_viewer_before_the_origin_sends_the_rest(
    proxy, streaming_origin
) -> None:
    server, logged = proxy
    received = bytearray()
    async with http_clients.async_client(timeout=20) as client:
        async with client.stream("GET", server.url() + "/halves") as response:
            assert response.headers["content-length"] == str(len(SLOW_BODY))
            async for chunk in response.aiter_raw():
                received += chunk
                if len(received) >= HALF and not streaming_origin.release.is_set():
                    assert bytes(received) == SLOW_BODY[: len(received)]
                    streaming_origin.release.set()
    assert streaming_origin.release.is_set()
    assert bytes(received) == SLOW_BODY
    assert [result.response.status for result in await logged.wait()] == [200]


async def test_a_body_cut_by_the_origin_is_cut_for_the_viewer(proxy, streaming_origin) -> None:
    server, logged = proxy
    received = bytearray()
    async with http_clients.async_client(timeout=20) as client:
        async with client.stream("GET", server.url() + "/short") as response:
            assert response.status_code == 200
            assert response.headers["content-length"] == str(len(SLOW_BODY))
            with pytest.raises(httpx.RemoteProtocolError):
                async for chunk in response.aiter_raw():
                    received += chunk
    assert bytes(received) == SLOW_BODY[:HALF]
    assert "origin:body-cut" in (await logged.wait())[0].trace.steps


async def test_a_viewer_that_stops_reading_gets_a_large_body_whole(proxy) -> None:
    server, logged = proxy
    reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
    try:
        writer.write(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
        assert b"Content-Length: %d\r\n" % len(BIG) in head
        await asyncio.sleep(0.3)  # reads nothing for a while: the edge waits, serving others
        async with http_clients.async_client(timeout=20) as client:
            other = await client.head(server.url() + "/halves")
        assert other.status_code == 200
        assert await asyncio.wait_for(reader.readexactly(len(BIG)), 20) == BIG
        writer.write(b"HEAD /halves HTTP/1.1\r\nHost: x\r\n\r\n")  # still open, in step
        again = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
        assert again.startswith(b"HTTP/1.1 200 OK\r\n")
    finally:
        writer.close()
    assert [r.response.status for r in await logged.wait(3)] == [200, 200, 200]


async def test_a_viewer_that_leaves_mid_body_costs_no_one_else(proxy) -> None:
    server, logged = proxy
    reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
    writer.write(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.wait_for(reader.readexactly(100_000), 20)
    writer.close()
    await logged.wait(1)
    async with http_clients.async_client(timeout=20) as client:
        whole = await client.get(server.url() + "/big")
    assert whole.status_code == 200 and whole.content == BIG


async def test_head_keeps_the_length_and_sends_no_body(proxy) -> None:
    server, _ = proxy
    async with http_clients.async_client(timeout=20) as client:
        response = await client.head(server.url() + "/halves")
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(SLOW_BODY))
    assert response.content == b""


@pytest.mark.parametrize("chunked", [False, True])
async def test_an_upload_reaches_the_origin_whole(proxy, streaming_origin, chunked: bool) -> None:
    server, _ = proxy

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(UPLOAD), 100_000):
            yield UPLOAD[start : start + 100_000]

    content = pieces() if chunked else UPLOAD
    async with http_clients.async_client(timeout=20) as client:
        response = await client.put(server.url() + "/upload", content=content)
    assert (response.status_code, response.text) == (200, str(len(UPLOAD)))
    lines, body = streaming_origin.uploads[0]
    assert body == UPLOAD
    names = {k.lower(): v for k, v in lines}
    if chunked:
        assert names.get("transfer-encoding") == "chunked"
    else:
        assert names.get("content-length") == str(len(UPLOAD))


async def test_a_request_without_a_body_has_no_stream(tmp_path: Path) -> None:
    edge = _site_edge(tmp_path)
    captured = _record_dispatched(edge)
    server = EdgeServer([edge], port=0)
    await server.start()
    try:
        async with http_clients.async_client() as client:
            await client.get(server.url() + "/a.txt")
            await client.post(server.url() + "/a.txt", content=b"abc")
        assert (captured[0].stream, captured[0].body) == (None, b"")
        assert captured[1].stream is not None
    finally:
        await server.aclose()


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
    old, new = _site_edge(tmp_path / "old"), _site_edge(tmp_path / "new")
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
