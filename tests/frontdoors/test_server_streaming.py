"""The aiohttp adapter: bodies stream through a real EdgeServer both ways, at each side's pace."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
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
