"""OriginFetcher against real loopback origins: what reaches them, what comes back, streams."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from typing import Any

import pytest

from edgesim.exceptions import IncompleteBodyError, OriginError
from edgesim.http import EdgeRequest, Headers
from edgesim.origins.fetcher import OriginFetcher
from edgesim.origins.targets import OriginTarget
from tests.origins.fetcher_origins import (
    BIG,
    CLOUDFRONT_HEADERS,
    closed_port,
    loopback_target,
    request,
)

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
    target = loopback_target(closed_port(), connection_attempts=3)
    outgoing = streamed("PUT", b"body", length=True)
    try:
        with pytest.raises(OriginError) as caught:
            await fetcher.fetch(outgoing, target)
    finally:
        await fetcher.aclose()
    assert caught.value.status == 504
    assert dials.count == 3
    assert isinstance(outgoing.stream, Upload) and outgoing.stream.taken == 0
