"""The origin HTTP/1.1 client's framing, against a raw loopback origin writing bytes by hand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field

import pytest

from edgesim.origins.http_client import (
    BrokenExchange,
    OriginPool,
    OriginResponse,
    RequestNotSendable,
)


@dataclass
class Scripted:
    """Answers the n-th request read (on any connection) with replies[n]; records each one."""

    replies: list[bytes]
    seen: list[tuple[int, bytes]] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.seen.append((number, head.split(b"\r\n", 1)[0]))
                writer.write(self.replies[len(self.seen) - 1])
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def origin() -> AsyncIterator[Scripted]:
    origin = Scripted([])
    server = await asyncio.start_server(origin.handle, "127.0.0.1", 0)
    origin.port = server.sockets[0].getsockname()[1]
    yield origin
    server.close()
    await server.wait_closed()


@pytest.fixture
async def pool() -> AsyncIterator[OriginPool]:
    pool = OriginPool(keepalive=5.0)
    yield pool
    await pool.aclose()


async def send(
    pool: OriginPool,
    origin: Scripted,
    path: bytes = b"/",
    *,
    method: bytes = b"GET",
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes | AsyncIterable[bytes] = b"",
    length: int | None = None,
) -> OriginResponse:
    return await pool.send(
        scheme="http", host="127.0.0.1", port=origin.port, sni_hostname=None, tls=None,
        method=method, target=path, headers=headers or [(b"Host", b"origin.example")],
        body=body, chunked=False, length=length, connect_timeout=2.0, read_timeout=2.0,
    )  # fmt: skip


async def read(response: OriginResponse) -> bytes:
    assert response.body is not None
    return b"".join([chunk async for chunk in response.body])


async def test_chunked_answer_with_trailers_is_decoded_and_its_connection_reused(
    origin, pool
) -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked += b"4;ext=1\r\nwiki\r\n5\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n"
    origin.replies = [chunked, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]
    assert await read(await send(pool, origin, b"/one")) == b"wikipedia"
    assert await read(await send(pool, origin, b"/two")) == b""
    assert origin.seen == [(1, b"GET /one HTTP/1.1"), (1, b"GET /two HTTP/1.1")]


async def test_an_answer_saying_close_is_not_reused(origin, pool) -> None:
    close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    origin.replies = [close, close]
    assert await read(await send(pool, origin, b"/one")) == b"ok"
    assert await read(await send(pool, origin, b"/two")) == b"ok"
    assert [number for number, _ in origin.seen] == [1, 2]


async def test_a_chunk_longer_than_its_size_is_broken(origin, pool) -> None:
    origin.replies = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokEVIL\r\n0\r\n\r\n"
    ]
    response = await send(pool, origin)
    with pytest.raises(BrokenExchange):
        await read(response)


async def test_conflicting_content_lengths_are_refused(origin, pool) -> None:
    origin.replies = [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 7\r\n\r\nok"]
    with pytest.raises(BrokenExchange):
        await send(pool, origin)


async def test_a_header_value_with_a_line_break_is_not_sent(origin, pool) -> None:
    with pytest.raises(RequestNotSendable):
        await send(pool, origin, headers=[(b"X-Split", b"a\r\nX-Injected: 1")])
    assert origin.seen == []


async def test_an_upload_longer_than_its_length_is_not_sent_whole(origin, pool) -> None:
    async def upload() -> AsyncIterator[bytes]:
        yield b"four"
        yield b"more"

    # The origin answers as soon as it has the head, and keeps the connection open.
    origin.replies = [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]
    with pytest.raises(RequestNotSendable):
        await send(pool, origin, method=b"PUT", body=upload(), length=4)


async def test_an_idle_connection_is_closed_when_its_keepalive_runs_out(origin) -> None:
    """spec cloudfront-caching.md §5: CloudFront keeps an idle origin connection for the
    origin's keep-alive timeout, then closes it, whether or not the origin is asked again."""
    closed = asyncio.Event()
    handle = origin.handle

    async def watching(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handle(reader, writer)
        closed.set()  # the origin saw the connection end

    origin.handle = watching
    server = await asyncio.start_server(origin.handle, "127.0.0.1", 0)
    origin.port = server.sockets[0].getsockname()[1]
    pool = OriginPool(keepalive=0.2)
    try:
        origin.replies = [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]
        assert await read(await send(pool, origin, b"/one")) == b"ok"
        await asyncio.wait_for(closed.wait(), 10)
    finally:
        await pool.aclose()
        server.close()
        await server.wait_closed()


async def test_a_connection_in_use_outlives_its_earlier_keepalive(origin) -> None:
    # Reused before its keep-alive ran out, a connection is timed from its latest release: the
    # first release's timer, firing while the second answer is still being read, closes nothing.
    pool = OriginPool(keepalive=0.5)
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    origin.replies = [ok, ok, ok]
    try:
        assert await read(await send(pool, origin, b"/one")) == b"ok"
        second = await send(pool, origin, b"/two")
        await asyncio.sleep(0.7)  # past the first release's keep-alive, the body still unread
        assert await read(second) == b"ok"
        assert await read(await send(pool, origin, b"/three")) == b"ok"
    finally:
        await pool.aclose()
    assert [number for number, _ in origin.seen] == [1, 1, 1]
