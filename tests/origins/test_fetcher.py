"""OriginFetcher against real loopback origins: an aiohttp app and a raw TCP server."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from edgesim.exceptions import IncompleteBodyError, OriginError
from edgesim.http import EdgeRequest, EdgeResponse, Headers
from edgesim.origins.fetcher import OriginFetcher
from edgesim.origins.targets import OriginTarget
from edgesim.tasks import spawn

BIG = os.urandom(5 * 1024 * 1024)
CLOUDFRONT_HEADERS = [
    ("Host", "origin.example"),
    ("User-Agent", "Amazon CloudFront"),
    ("X-Forwarded-For", "203.0.113.9"),
    ("Via", "2.0 0123abcd.cloudfront.net (CloudFront)"),
    ("X-Amz-Cf-Id", "c2FtcGxlLWlk=="),
]


@dataclass
class Seen:
    """One request as the origin received it."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    peer_port: int


@dataclass
class Origin:
    """A loopback aiohttp origin that records what it receives."""

    seen: list[Seen] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0

    def target(self, **overrides: Any) -> OriginTarget:
        fields: dict[str, Any] = {
            "kind": "custom",
            "domain_name": "origin.example",
            "protocol": "http",
            "port": self.port,
            "connect_host": "127.0.0.1",
        }
        fields.update(overrides)
        return OriginTarget(**fields)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.seen.append(
            Seen(
                request.method,
                request.raw_path,
                [(k.decode(), v.decode()) for k, v in request.raw_headers],
                body,
                peer[1] if peer else 0,
            )
        )
        name = request.path.rsplit("/", 1)[-1]
        if name == "cookies":
            lines = [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X-Mixed-CASE", "v")]
            return web.Response(text="ok", headers=CIMultiDict(lines))
        if name == "gzip":
            packed = gzip.compress(b"hello " * 2000)
            headers = {"Content-Encoding": "gzip", "Content-Type": "text/plain"}
            return web.Response(body=packed, headers=headers)
        if name == "big":
            return web.Response(body=BIG, content_type="application/octet-stream")
        if name == "redirect":
            return web.Response(status=302, headers={"Location": "/elsewhere"})
        if name == "reason":
            return web.Response(status=299, reason="Custom Reason")
        if name == "hop":
            stream = web.StreamResponse(headers={"Keep-Alive": "timeout=5", "Trailer": "X-T"})
            stream.enable_chunked_encoding()
            await stream.prepare(request)
            await stream.write(b"part one, ")
            await stream.write(b"part two")
            await stream.write_eof()
            return stream
        if name == "slow":
            await self.release.wait()
            return web.Response(text="late")
        if name == "halves":
            # Half the body, then the rest only once the test releases it.
            half = len(BIG) // 2
            stream = web.StreamResponse(headers={"Content-Length": str(len(BIG))})
            await stream.prepare(request)
            await stream.write(BIG[:half])
            await self.release.wait()
            await stream.write(BIG[half:])
            await stream.write_eof()
            return stream
        if name == "empty":
            return web.Response(status=204)
        if name == "not-modified":
            return web.Response(status=304, headers={"ETag": '"x"'})
        if name == "slow-once" and len([s for s in self.seen if s.target == request.raw_path]) == 1:
            await self.release.wait()
            return web.Response(text="late")
        return web.Response(body=body, headers={"X-Echo": "1"})


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    origin = Origin()
    app = web.Application(client_max_size=2 * len(BIG))
    app.router.add_route("*", "/{tail:.*}", origin.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    assert server.port is not None
    origin.port = server.port
    yield origin
    origin.release.set()
    await server.close()


@pytest.fixture
async def fetcher() -> AsyncIterator[OriginFetcher]:
    fetcher = OriginFetcher(connect_timeout=2.0)
    yield fetcher
    await fetcher.aclose()


def request(
    method: str = "GET",
    uri: str = "/echo",
    querystring: str = "",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> EdgeRequest:
    lines = CLOUDFRONT_HEADERS if headers is None else headers
    return EdgeRequest(method, uri, querystring, Headers(lines), body)


# -- what reaches the origin ----------------------------------------------------------------


async def test_headers_reach_origin_as_given_and_nothing_else(origin, fetcher) -> None:
    lines = [*CLOUDFRONT_HEADERS, ("x-lower-case", "a"), ("X-Dup", "1"), ("X-Dup", "2")]
    await fetcher.fetch(request(headers=lines), origin.target())
    # Only CloudFront's own connection header is added; httpx's defaults never go out.
    assert origin.seen[0].headers == [*lines, ("Connection", "Keep-Alive")]


async def test_custom_headers_overwrite_viewer_values(origin, fetcher) -> None:
    lines = [*CLOUDFRONT_HEADERS, ("X-Origin-Secret", "from-viewer"), ("X-Other", "kept")]
    custom = Headers([("X-Origin-Secret", "abc"), ("X-Added", "1")])
    await fetcher.fetch(request(headers=lines), origin.target(custom_headers=custom))
    seen = origin.seen[0].headers
    assert [v for k, v in seen if k == "X-Origin-Secret"] == ["abc"]
    assert ("X-Added", "1") in seen and ("X-Other", "kept") in seen
    assert seen.index(("X-Origin-Secret", "abc")) == len(CLOUDFRONT_HEADERS)


async def test_host_header_is_the_requests_not_the_dialled_address(origin, fetcher) -> None:
    lines = [("Host", "viewer.example"), ("User-Agent", "Amazon CloudFront")]
    await fetcher.fetch(request(headers=lines), origin.target())
    assert origin.seen[0].headers[0] == ("Host", "viewer.example")


async def test_host_defaults_to_origin_domain(origin, fetcher) -> None:
    await fetcher.fetch(request(headers=[("X-A", "1")]), origin.target())
    assert ("Host", "origin.example") in origin.seen[0].headers


async def test_origin_path_prefixed_and_raw_query_kept(origin, fetcher) -> None:
    query = "a=%20b&c&d=%7e~&e=%2F/&f="
    await fetcher.fetch(request(uri="/x/a%2Fb/echo", querystring=query), origin.target(path="/v1"))
    assert origin.seen[0].target == f"/v1/x/a%2Fb/echo?{query}"


async def test_bytes_forbidden_in_a_request_line_are_percent_encoded(origin, fetcher) -> None:
    await fetcher.fetch(request(uri="/caf\u00e9/echo", querystring="q=\u00e9 x"), origin.target())
    assert origin.seen[0].target == "/caf%C3%A9/echo?q=%C3%A9%20x"


async def test_post_body_byte_for_byte_both_ways(origin, fetcher) -> None:
    result = await fetcher.fetch(request("POST", body=BIG), origin.target())
    assert result.status == 200
    assert origin.seen[0].body == BIG
    assert await result.read() == BIG
    assert ("Content-Length", str(len(BIG))) in origin.seen[0].headers


async def test_stale_content_length_is_corrected(origin, fetcher) -> None:
    lines = [*CLOUDFRONT_HEADERS, ("content-length", "999")]
    await fetcher.fetch(request("PUT", headers=lines, body=b"new body"), origin.target())
    assert ("content-length", "8") in origin.seen[0].headers


async def test_empty_post_gets_content_length_zero_and_get_none(origin, fetcher) -> None:
    await fetcher.fetch(request("POST"), origin.target())
    await fetcher.fetch(request("GET"), origin.target())
    assert ("Content-Length", "0") in origin.seen[0].headers
    assert not [k for k, _ in origin.seen[1].headers if k.lower() == "content-length"]


# -- what comes back ------------------------------------------------------------------------


async def test_large_binary_response(origin, fetcher) -> None:
    result = await fetcher.fetch(request(uri="/big"), origin.target())
    assert await result.read() == BIG
    assert result.headers.get("content-length") == str(len(BIG))


async def test_gzip_body_untouched(origin, fetcher) -> None:
    result = await fetcher.fetch(request(uri="/gzip"), origin.target())
    assert result.headers.get("Content-Encoding") == "gzip"
    assert await result.read() == gzip.compress(b"hello " * 2000)


async def test_repeated_headers_and_spelling_kept(origin, fetcher) -> None:
    result = await fetcher.fetch(request(uri="/cookies"), origin.target())
    assert result.headers.get_all("set-cookie") == ["a=1", "b=2"]
    assert ("X-Mixed-CASE", "v") in result.headers.items()


async def test_hop_by_hop_response_headers_dropped_but_chunked_framing_kept(
    origin, fetcher
) -> None:
    """Hop-by-hop lines go, except ``Transfer-Encoding: chunked``: CloudFront shows it to the
    origin-response function as a read-only header (spec lambda-edge.md §3.2) and streams the
    body to the viewer re-chunked (spec cloudfront-caching.md §3.10, §4.2; AWS
    RequestAndResponseBehaviorCustomOrigin, "Transfer-Encoding")."""
    result = await fetcher.fetch(request(uri="/hop"), origin.target())
    assert await result.read() == b"part one, part two"
    assert result.headers.get_all("transfer-encoding") == ["chunked"]
    for name in ("Keep-Alive", "Trailer"):
        assert name not in result.headers


@pytest.mark.parametrize(
    ("lines", "kept"),
    [
        (b"Transfer-Encoding: chunked\r\nContent-Length: 99\r\n", ["chunked"]),
        (b"transfer-encoding: CHUNKED\r\n", ["CHUNKED"]),
    ],
    ids=["with-a-length", "spelling"],
)
async def test_a_chunked_answer_keeps_its_framing_line_and_loses_any_length(
    lines: bytes, kept: list[str]
) -> None:
    """The chunks frame the body, so a ``Content-Length`` beside them is dropped (RFC 9112
    §6.3: Transfer-Encoding overrides it, and a proxy removes it), and the line is kept as the
    origin wrote it for the origin-response event (spec lambda-edge.md §3.2)."""

    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\n" + lines + b"\r\n2\r\nok\r\n0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(chunked, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    fetcher = OriginFetcher()
    try:
        target = OriginTarget(kind="custom", domain_name="127.0.0.1", port=port, protocol="http")
        result = await fetcher.fetch(request(), target)
        assert await result.read() == b"ok"
    finally:
        await fetcher.aclose()
        server.close()
        await server.wait_closed()
    assert result.headers.get_all("transfer-encoding") == kept
    assert "content-length" not in result.headers


async def test_redirect_not_followed(origin, fetcher) -> None:
    result = await fetcher.fetch(request(uri="/redirect"), origin.target())
    assert (result.status, result.headers.get("Location")) == (302, "/elsewhere")
    assert len(origin.seen) == 1


async def test_status_and_reason_as_sent(origin, fetcher) -> None:
    result = await fetcher.fetch(request(uri="/reason"), origin.target())
    assert (result.status, result.reason) == (299, "Custom Reason")


async def test_head_has_headers_and_no_body(origin, fetcher) -> None:
    result = await fetcher.fetch(request("HEAD", uri="/big"), origin.target())
    assert result.status == 200
    assert result.stream is None and result.body == b""
    assert result.headers.get("Content-Length") == str(len(BIG))


async def test_keep_alive_reuses_one_connection(origin, fetcher) -> None:
    # A body read to its end hands the connection back for the next request.
    await (await fetcher.fetch(request(), origin.target())).read()
    await (await fetcher.fetch(request(), origin.target())).read()
    assert origin.seen[0].peer_port == origin.seen[1].peer_port


async def test_s3_origin_without_local_folder_is_fetched_over_http(origin, fetcher) -> None:
    target = origin.target(kind="s3", domain_name="bucket.s3.amazonaws.com")
    result = await fetcher.fetch(request(uri="/echo"), target)
    assert result.headers.get("X-Echo") == "1"


# -- failures -------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_connection_refused_is_504(fetcher) -> None:
    target = OriginTarget(
        kind="custom", domain_name="origin.example", protocol="http", port=_closed_port(),
        connect_host="127.0.0.1",
    )  # fmt: skip
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


@dataclass
class Dials:
    """The TCP connections the test's event loop was asked to open; ``hang`` stalls each one."""

    count: int = 0
    hang: bool = False


@pytest.fixture
async def dials(monkeypatch: pytest.MonkeyPatch) -> Dials:
    # Every origin connection is opened through the running loop, so counting here sees the
    # attempts that are refused before any server could notice them.
    loop = asyncio.get_running_loop()
    dials = Dials()
    open_connection = loop.create_connection

    async def counted(*args: Any, **kwargs: Any) -> Any:
        dials.count += 1
        if dials.hang:
            await asyncio.Event().wait()
        return await open_connection(*args, **kwargs)

    monkeypatch.setattr(loop, "create_connection", counted)
    return dials


@pytest.mark.parametrize("attempts", [1, 2, 3])
async def test_a_refused_connection_is_tried_the_targets_number_of_times(
    dials: Dials, attempts: int
) -> None:
    fetcher = OriginFetcher()
    target = OriginTarget(
        kind="custom", domain_name="origin.example", protocol="http", port=_closed_port(),
        connect_host="127.0.0.1", connection_attempts=attempts,
    )  # fmt: skip
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
    target = OriginTarget(
        kind="custom", domain_name="origin.example", protocol="http", port=_closed_port(),
        connect_host="127.0.0.1", connection_attempts=2, connection_timeout=0.3,
    )  # fmt: skip
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
        return OriginTarget(
            kind="custom", domain_name="origin.example", protocol="http", port=self.port,
            connect_host="127.0.0.1",
        )  # fmt: skip


@pytest.fixture
async def raw_origin() -> AsyncIterator[RawOrigin]:
    origin = RawOrigin([])
    server = await asyncio.start_server(origin.handle, "127.0.0.1", 0)
    origin.port = server.sockets[0].getsockname()[1]
    yield origin
    server.close()
    await server.wait_closed()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


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


# -- streamed bodies ------------------------------------------------------------------------


async def test_response_body_streams_before_the_origin_has_sent_it_all(origin, fetcher) -> None:
    result = await fetcher.fetch(request(uri="/halves"), origin.target())
    assert result.stream is not None and result.body == b""
    assert result.headers.get("Content-Length") == str(len(BIG))
    received = bytearray()
    async for chunk in result.stream:
        received += chunk
        if len(received) >= len(BIG) // 2 and not origin.release.is_set():
            # The first half came while the origin was still holding back the second.
            assert bytes(received) == BIG[: len(received)]
            origin.release.set()
    assert origin.release.is_set()
    assert bytes(received) == BIG


async def test_a_stream_given_up_midway_closes_its_connection(origin, fetcher) -> None:
    result = await fetcher.fetch(request(uri="/big"), origin.target())
    assert result.stream is not None
    async for chunk in result.stream:
        assert chunk
        break
    await result.stream.aclose()
    # The half-read connection is not handed to the next request: a new one answers it whole.
    again = await fetcher.fetch(request(uri="/big"), origin.target())
    assert await again.read() == BIG
    assert origin.seen[0].peer_port != origin.seen[1].peer_port
    after = await fetcher.fetch(request(), origin.target())
    assert await after.read() == b""
    assert origin.seen[2].peer_port == origin.seen[1].peer_port


@pytest.mark.parametrize(
    ("method", "uri", "status"), [("HEAD", "/big", 200), ("GET", "/empty", 204)]
)
async def test_answers_without_a_body_carry_no_stream(
    origin, fetcher, method: str, uri: str, status: int
) -> None:
    result = await fetcher.fetch(request(method, uri=uri), origin.target())
    assert (result.status, result.stream, result.body) == (status, None, b"")
    # Nothing was left unread: the next request reuses the connection.
    await (await fetcher.fetch(request(), origin.target())).read()
    assert origin.seen[0].peer_port == origin.seen[1].peer_port


async def test_not_modified_carries_no_stream(origin, fetcher) -> None:
    result = await fetcher.fetch(request(uri="/not-modified"), origin.target())
    assert (result.status, result.stream, result.headers.get("ETag")) == (304, None, '"x"')


class Upload:
    """A viewer's body arriving in chunks; ``cut_after`` chunks, then the viewer is gone."""

    def __init__(self, body: bytes, chunk: int = 64 * 1024, cut_after: int | None = None) -> None:
        self.body = body
        self.chunk = chunk
        self.cut_after = cut_after
        self.taken = 0
        self.closed = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.body), self.chunk):
            if self.cut_after is not None and self.taken == self.cut_after:
                raise IncompleteBodyError("the viewer went away")
            self.taken += 1
            yield self.body[start : start + self.chunk]

    async def aclose(self) -> None:
        self.closed = True


def streamed(method: str, body: bytes, *, length: bool, **upload: Any) -> EdgeRequest:
    lines = [*CLOUDFRONT_HEADERS, *([("Content-Length", str(len(body)))] if length else [])]
    return EdgeRequest(method, "/echo", "", Headers(lines), stream=Upload(body, **upload))


async def test_streamed_upload_with_a_length_reaches_the_origin_whole(origin, fetcher) -> None:
    result = await fetcher.fetch(streamed("PUT", BIG, length=True), origin.target())
    assert result.status == 200
    assert origin.seen[0].body == BIG
    assert ("Content-Length", str(len(BIG))) in origin.seen[0].headers
    assert "transfer-encoding" not in {k.lower() for k, _ in origin.seen[0].headers}
    assert await result.read() == BIG


async def test_streamed_upload_without_a_length_goes_chunked(origin, fetcher) -> None:
    result = await fetcher.fetch(streamed("POST", BIG, length=False), origin.target())
    assert result.status == 200
    assert origin.seen[0].body == BIG
    assert ("Transfer-Encoding", "chunked") in origin.seen[0].headers
    assert "content-length" not in {k.lower() for k, _ in origin.seen[0].headers}


async def test_upload_cut_by_the_viewer_is_502_and_not_retried(origin, fetcher) -> None:
    outgoing = streamed("POST", BIG, length=True, cut_after=3)
    with pytest.raises(OriginError) as caught:
        await fetcher.fetch(outgoing, origin.target())
    assert caught.value.status == 502
    assert isinstance(caught.value.__cause__, IncompleteBodyError)
    assert isinstance(outgoing.stream, Upload) and outgoing.stream.closed
    assert origin.seen == []


async def test_upload_to_a_refused_port_is_tried_again_before_any_byte_left(dials) -> None:
    fetcher = OriginFetcher()
    target = OriginTarget(
        kind="custom", domain_name="origin.example", protocol="http", port=_closed_port(),
        connect_host="127.0.0.1", connection_attempts=3,
    )  # fmt: skip
    outgoing = streamed("PUT", b"body", length=True)
    try:
        with pytest.raises(OriginError) as caught:
            await fetcher.fetch(outgoing, target)
    finally:
        await fetcher.aclose()
    assert caught.value.status == 504
    assert dials.count == 3
    assert isinstance(outgoing.stream, Upload) and outgoing.stream.taken == 0


# -- framing: nothing beyond an answer is ever taken for the next one -------------------------

EVIL = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!"


@dataclass
class KeepAliveOrigin:
    """A raw HTTP/1.1 origin serving many requests per connection, some with crafted bytes.

    ``scripted`` maps a path to the exact bytes written for it; any other path gets its own
    true answer. ``seen`` records (connection number, method, path) of every request read.
    """

    scripted: dict[str, bytes] = field(default_factory=dict)
    seen: list[tuple[int, str, str]] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    # Once set, the first connection is sent an answer nobody asked for.
    unasked: asyncio.Event = field(default_factory=asyncio.Event)
    unasked_sent: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        if number == 1:
            sender = spawn(self._send_unasked(writer), name="unasked answer")
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, path, _ = head.split(b"\r\n", 1)[0].decode().split(" ")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                self.seen.append((number, method, path))
                reply = self.scripted.get(path)
                if reply is None:
                    body = f"true {path}".encode()
                    reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
                    reply += b"" if method == "HEAD" else body
                # One write: the surplus arrives with the answer, as from a real broken origin.
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if number == 1:
                sender.cancel()
            writer.close()

    async def _send_unasked(self, writer: asyncio.StreamWriter) -> None:
        await self.unasked.wait()
        writer.write(EVIL)
        await writer.drain()
        self.unasked_sent.set()

    def target(self) -> OriginTarget:
        return OriginTarget(
            kind="custom", domain_name="origin.example", protocol="http", port=self.port,
            connect_host="127.0.0.1",
        )  # fmt: skip


@pytest.fixture
async def keep_alive() -> AsyncIterator[KeepAliveOrigin]:
    origin = KeepAliveOrigin()
    server = await asyncio.start_server(origin.handle, "127.0.0.1", 0)
    origin.port = server.sockets[0].getsockname()[1]
    yield origin
    server.close()
    await server.wait_closed()


async def _answer(fetcher: OriginFetcher, origin: KeepAliveOrigin, method: str, path: str) -> Any:
    body = b"form" if method == "POST" else b""
    result = await fetcher.fetch(request(method, uri=path, body=body), origin.target())
    return result.status, await result.read()


async def test_clean_answers_share_one_raw_connection(keep_alive, fetcher) -> None:
    assert await _answer(fetcher, keep_alive, "GET", "/a") == (200, b"true /a")
    assert await _answer(fetcher, keep_alive, "GET", "/b") == (200, b"true /b")
    assert keep_alive.seen == [(1, "GET", "/a"), (1, "GET", "/b")]


LEFTOVERS = {
    "longer-than-content-length": (
        "GET",
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlong" + EVIL,
        b"long",
    ),
    "stray-crlf-after-the-body": ("GET", OK + b"\r\n", b"ok"),
    "body-on-a-head-answer": ("HEAD", EVIL, b""),
    "second-answer-unasked": ("GET", OK + EVIL, b"ok"),
}


@pytest.mark.parametrize("then", ["GET", "POST"])
@pytest.mark.parametrize("case", list(LEFTOVERS))
async def test_bytes_beyond_an_answer_close_its_connection(
    keep_alive, fetcher, case: str, then: str
) -> None:
    method, reply, first_body = LEFTOVERS[case]
    keep_alive.scripted["/c/first"] = reply
    assert await _answer(fetcher, keep_alive, method, "/c/first") == (200, first_body)
    # The next request, for another path, gets the origin's own answer on a fresh connection:
    # never the surplus, never a 502, and it reaches the origin exactly once.
    assert await _answer(fetcher, keep_alive, then, "/c/victim") == (200, b"true /c/victim")
    assert keep_alive.seen == [(1, method, "/c/first"), (2, then, "/c/victim")]


async def test_surplus_answer_is_never_cached_as_another_urls(keep_alive, fetcher) -> None:
    keep_alive.scripted["/c/long"] = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlong" + EVIL
    assert await _answer(fetcher, keep_alive, "GET", "/c/long") == (200, b"long")
    for _ in range(3):
        assert await _answer(fetcher, keep_alive, "GET", "/c/victim") == (200, b"true /c/victim")
    # After the poisoned connection, the clean one is kept for every later request.
    assert [s[0] for s in keep_alive.seen] == [1, 2, 2, 2]


async def test_an_answer_arriving_while_idle_closes_the_connection(keep_alive, fetcher) -> None:
    # The unasked answer comes only once the first one was read whole and its connection pooled.
    assert await _answer(fetcher, keep_alive, "GET", "/c/first") == (200, b"true /c/first")
    keep_alive.unasked.set()
    await keep_alive.unasked_sent.wait()
    for _ in range(10):
        # Loopback bytes are in the socket once sent; a few loop turns deliver them.
        await asyncio.sleep(0)
    assert await _answer(fetcher, keep_alive, "GET", "/c/victim") == (200, b"true /c/victim")
    assert keep_alive.seen == [(1, "GET", "/c/first"), (2, "GET", "/c/victim")]


def _answer_with(headers: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\n" + headers + b"Content-Length: 2\r\n\r\nok"


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (_answer_with(b"X-Bad: a\x01b\r\n"), "control byte"),
        (_answer_with(b"X-Bad: a\x7fb\r\n"), "control byte"),
        (
            _answer_with(b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(21))),
            "over CloudFront's 20480",
        ),
    ],
    ids=["x01", "x7f", "over-the-limit"],
)
async def test_origin_headers_cloudfront_refuses_are_a_502(answer: bytes, problem: str) -> None:
    async def origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(origin, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    target = OriginTarget(
        kind="custom", domain_name="127.0.0.1", port=port, protocol="http", connection_attempts=1
    )
    fetcher = OriginFetcher()
    try:
        with pytest.raises(OriginError) as refused:
            await fetcher.fetch(EdgeRequest("GET", "/x"), target)
    finally:
        await fetcher.aclose()
        server.close()
        await server.wait_closed()
    assert refused.value.status == 502 and problem in refused.value.reason


async def test_headers_within_the_limit_and_tabs_pass() -> None:
    lines = b"X-Tab: a\tb\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(19))

    async def origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(_answer_with(lines))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(origin, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    target = OriginTarget(kind="custom", domain_name="127.0.0.1", port=port, protocol="http")
    fetcher = OriginFetcher()
    try:
        response = await fetcher.fetch(EdgeRequest("GET", "/x"), target)
        assert await response.read() == b"ok"
    finally:
        await fetcher.aclose()
        server.close()
        await server.wait_closed()
    assert response.headers.get("X-Tab") == "a\tb"


# -- https origins ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    ca: Path
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A test CA, and a certificate it signed for origin.example (openssl's command line)."""
    folder = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=edgesim test CA", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    openssl("req", *ec, "-keyout", "origin.key", "-out", "origin.csr", "-subj", "/CN=origin")
    (folder / "origin.ext").write_text(
        "subjectAltName=DNS:origin.example\nbasicConstraints=CA:FALSE\n"
        "authorityKeyIdentifier=keyid\nextendedKeyUsage=serverAuth\n"
    )
    openssl(
        "x509", "-req", "-in", "origin.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "origin.pem", "-days", "2", "-extfile", "origin.ext",
    )  # fmt: skip
    return Certificates(folder / "ca.pem", folder / "origin.pem", folder / "origin.key")


@pytest.fixture
async def tls_origin(certificates: Certificates) -> AsyncIterator[Origin]:
    origin = Origin()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", origin.handle)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates.cert, certificates.key)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    origin.port = runner.addresses[0][1]
    yield origin
    origin.release.set()
    await runner.cleanup()


@pytest.fixture
def trusting_the_test_ca(certificates: Certificates, monkeypatch: pytest.MonkeyPatch) -> None:
    """The system's CAs, read at the first https origin, are the test CA."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca))


@pytest.mark.usefixtures("trusting_the_test_ca")
async def test_an_https_origin_is_dialled_with_tls_and_its_name(
    tls_origin: Origin, fetcher: OriginFetcher
) -> None:
    response = await fetcher.fetch(request(), tls_origin.target(protocol="https"))
    assert response.status == 200
    [seen] = tls_origin.seen
    assert ("Host", "origin.example") in seen.headers


async def test_a_certificate_the_system_does_not_trust_is_502(
    tls_origin: Origin, fetcher: OriginFetcher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "none.pem").write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "none.pem"))
    with pytest.raises(OriginError) as caught:
        await fetcher.fetch(request(), tls_origin.target(protocol="https"))
    assert caught.value.status == 502 and "TLS failure" in caught.value.reason
    assert tls_origin.seen == []


@pytest.mark.usefixtures("trusting_the_test_ca")
async def test_a_certificate_for_another_name_is_502(
    tls_origin: Origin, fetcher: OriginFetcher
) -> None:
    target = tls_origin.target(protocol="https", domain_name="elsewhere.example")
    with pytest.raises(OriginError) as caught:
        await fetcher.fetch(request(headers=[("Host", "elsewhere.example")]), target)
    assert caught.value.status == 502 and "TLS failure" in caught.value.reason
    assert tls_origin.seen == []


@pytest.mark.parametrize("split", [False, True], ids=["with-its-head", "after-its-head"])
async def test_a_body_that_came_with_its_head_is_handed_over_whole(split: bool) -> None:
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while await reader.readuntil(b"\r\n\r\n"):
                head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
                if split:
                    writer.write(head)
                    await writer.drain()
                    await asyncio.sleep(0.05)
                    writer.write(b"hello")
                else:
                    writer.write(head + b"hello")
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    target = OriginTarget(
        kind="custom", domain_name="origin.example", protocol="http",
        port=server.sockets[0].getsockname()[1], connect_host="127.0.0.1",
    )  # fmt: skip
    fetcher = OriginFetcher()
    try:
        for _ in range(2):
            result = await fetcher.fetch(request(), target)
            assert (result.stream is not None) is split
            assert await result.read() == b"hello"
            assert result.headers.get("Content-Length") == "5"
    finally:
        await fetcher.aclose()
        server.close()
        await server.wait_closed()
    assert len(connections) == 1  # handed over whole or read to its end, it is reused
