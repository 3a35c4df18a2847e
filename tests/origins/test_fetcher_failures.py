"""OriginFetcher against real loopback origins: refusals, timeouts, retries, broken answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import pytest

from edgesim.exceptions import IncompleteBodyError, OriginError
from edgesim.http import EdgeResponse
from edgesim.origins.fetcher import OriginFetcher
from edgesim.origins.targets import OriginTarget
from tests.origins.fetcher_origins import OK, Dials, closed_port, loopback_target, request

# -- failures -------------------------------------------------------------------------------


async def test_connection_refused_is_504(fetcher) -> None:
    target = loopback_target(closed_port())
    with pytest.raises(OriginError) as caught:
        await fetcher.fetch(request(), target)
    assert caught.value.status == 504


async def test_dns_failure_is_502(fetcher) -> None:
    # RFC 6761 reserves .invalid: it never resolves.
    target = OriginTarget(kind="custom", domain_name="no-such-origin.invalid", protocol="http")
    with pytest.raises(OriginError) as caught:
        await fetcher.fetch(request(), target)
    assert caught.value.status == 502
    assert "resolve" in caught.value.reason


async def test_read_timeout_is_504_without_retry_for_post(origin, fetcher) -> None:
    started = time.monotonic()
    with pytest.raises(OriginError) as caught:
        await fetcher.fetch(request("POST", uri="/slow"), origin.target(read_timeout=1))
    assert caught.value.status == 504
    assert len(origin.seen) == 1
    assert time.monotonic() - started < 1.8


async def test_read_timeout_on_get_is_tried_again(origin, fetcher) -> None:
    result = await fetcher.fetch(request(uri="/slow-once"), origin.target(read_timeout=1))
    assert result.status == 200
    assert len(origin.seen) == 2


async def test_read_timeout_after_every_attempt_is_504(origin) -> None:
    fetcher = OriginFetcher(connection_attempts=1)
    try:
        with pytest.raises(OriginError) as caught:
            await fetcher.fetch(request(uri="/slow"), origin.target(read_timeout=1))
    finally:
        await fetcher.aclose()
    assert caught.value.status == 504
    assert len(origin.seen) == 1


def test_connection_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError):
        OriginFetcher(connection_attempts=0)


@pytest.mark.parametrize("attempts", [1, 2, 3])
async def test_a_refused_connection_is_tried_the_targets_number_of_times(
    dials: Dials, attempts: int
) -> None:
    fetcher = OriginFetcher()
    target = loopback_target(closed_port(), connection_attempts=attempts)
    try:
        with pytest.raises(OriginError) as caught:
            await fetcher.fetch(request("POST"), target)
    finally:
        await fetcher.aclose()
    assert caught.value.status == 504
    assert "cannot connect" in caught.value.reason
    assert dials.count == attempts


async def test_the_targets_connection_timeout_bounds_each_attempt(dials: Dials) -> None:
    dials.hang = True
    fetcher = OriginFetcher()
    target = loopback_target(closed_port(), connection_attempts=2, connection_timeout=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(OriginError) as caught:
            await fetcher.fetch(request(), target)
    finally:
        await fetcher.aclose()
    assert caught.value.status == 504
    assert "timed out" in caught.value.reason
    assert dials.count == 2
    assert time.monotonic() - started < 1.5


@dataclass
class RawOrigin:
    """A TCP server answering connection n with replies[n] (the last one repeats; None: hang up)."""

    replies: list[bytes | None]
    connections: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        reply = self.replies[min(self.connections, len(self.replies) - 1)]
        self.connections += 1
        await reader.readuntil(b"\r\n\r\n")
        if reply is not None:
            writer.write(reply)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    def target(self) -> OriginTarget:
        return loopback_target(self.port)


@pytest.fixture
async def raw_origin() -> AsyncIterator[RawOrigin]:
    origin = RawOrigin([])
    server = await asyncio.start_server(origin.handle, "127.0.0.1", 0)
    origin.port = server.sockets[0].getsockname()[1]
    yield origin
    server.close()
    await server.wait_closed()


async def _fetch_raw(origin: RawOrigin, fetcher: OriginFetcher, method: str) -> EdgeResponse:
    return await fetcher.fetch(request(method), origin.target())


async def test_get_tried_again_after_the_origin_hangs_up(raw_origin, fetcher) -> None:
    raw_origin.replies = [None, OK]
    result = await _fetch_raw(raw_origin, fetcher, "GET")
    assert (result.status, await result.read()) == (200, b"ok")
    assert raw_origin.connections == 2


async def test_post_not_tried_again_after_the_origin_hangs_up(raw_origin, fetcher) -> None:
    raw_origin.replies = [None, OK]
    with pytest.raises(OriginError) as caught:
        await _fetch_raw(raw_origin, fetcher, "POST")
    assert caught.value.status == 502
    assert raw_origin.connections == 1


async def test_one_connection_attempt_means_one_connection(raw_origin) -> None:
    # A GET that meets a hang-up is tried again while attempts remain; with one, it is not.
    raw_origin.replies = [None, OK]
    fetcher = OriginFetcher()
    try:
        with pytest.raises(OriginError) as caught:
            await fetcher.fetch(request(), replace(raw_origin.target(), connection_attempts=1))
    finally:
        await fetcher.aclose()
    assert caught.value.status == 502
    assert raw_origin.connections == 1


async def test_invalid_response_is_502_after_every_attempt(raw_origin, fetcher) -> None:
    raw_origin.replies = [b"SPEAKING GOPHER\r\n\r\n"]
    with pytest.raises(OriginError) as caught:
        await _fetch_raw(raw_origin, fetcher, "GET")
    assert caught.value.status == 502
    assert raw_origin.connections == 3


async def test_body_cut_short_after_the_headers_ends_the_stream(raw_origin, fetcher) -> None:
    # The status has already gone on by then: the stream says the body is short, once.
    raw_origin.replies = [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"]
    result = await _fetch_raw(raw_origin, fetcher, "GET")
    assert result.status == 200
    assert result.stream is not None
    received: list[bytes] = []
    with pytest.raises(IncompleteBodyError):
        async for chunk in result.stream:
            received.append(chunk)
    assert b"".join(received) == b"abc"
    assert raw_origin.connections == 1


async def test_body_delimited_by_close_is_complete(raw_origin, fetcher) -> None:
    raw_origin.replies = [b"HTTP/1.1 200 OK\r\nX-Raw: 1\r\n\r\nuntil the end"]
    result = await _fetch_raw(raw_origin, fetcher, "GET")
    assert (result.status, await result.read()) == (200, b"until the end")
    assert result.headers.items() == [("X-Raw", "1")]
