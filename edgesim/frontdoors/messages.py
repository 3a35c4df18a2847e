"""Between aiohttp and the pipeline: a viewer's request in, the edge's response out.

:func:`to_edge_request` turns an aiohttp request into an :class:`EdgeRequest` whose body (when
there is one) streams from the socket as the pipeline reads it, bounded by a gap timeout and
CloudFront's upload maximum. :func:`send_response` writes an :class:`EdgeResult` back, its body
chunk by chunk as it arrives, keeping the origin's length or chunked framing; a body cut short
leaves the viewer a short body and a closed connection, as CloudFront does. :func:`wire_bytes`
renders a response CloudFront sends before closing the connection (its 400 and 413 pages).

A whole body (a cache hit) goes out as one write of bytes built here, status line to body:
aiohttp's response objects and header maps cost more than the rest of a hit. Anything unusual
(a streamed or chunked body, a status or header aiohttp would refuse) takes aiohttp's path.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import HttpVersion10, HttpVersion11, StreamReader, http_exceptions, web
from aiohttp.helpers import rfc822_formatted_time
from multidict import CIMultiDict

from edgesim.exceptions import IncompleteBodyError
from edgesim.frontdoors.viewer_connection import DEFAULT_LIMITS, ViewerConnection
from edgesim.http import (
    BodyStream,
    EdgeRequest,
    EdgeResponse,
    Headers,
    has_control_bytes,
    reason_phrase,
)
from edgesim.pipeline import EdgeResult
from edgesim.pipeline.routing import MAX_REQUEST_BODY
from edgesim.trace import OriginOutcome, Stage, TraceRecord

__all__ = ["SENT_NAMES", "send_response", "to_edge_request", "to_web_response", "wire_bytes"]

# Statuses whose response never has a body (RFC 9110 §6.4.1).
_NO_BODY_STATUSES = frozenset({204, 304})
# The edge's own header names (lowercase) on a response aiohttp prepares, so that the front
# door can drop what aiohttp adds of its own accord.
SENT_NAMES = web.RequestKey("edgesim_sent_names", frozenset[str])
_FRAMING = frozenset({"content-length", "transfer-encoding"})
# Past this much unsent, a whole body waits for the viewer to read before the next request.
_HIGH_WATER = 64 * 1024


class _ViewerBody:
    """A viewer's upload as aiohttp receives it, chunk by chunk as the socket delivers them.

    A viewer that goes silent for ``gap`` seconds mid-body, or sends more than CloudFront
    accepts, is cut off: the body ends with :class:`IncompleteBodyError` and the connection
    closes, so a slow upload cannot hold the edge.
    """

    def __init__(self, request: web.BaseRequest, gap: float) -> None:
        self._request = request
        self._content: StreamReader = request.content
        self._gap = gap

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._relay()

    async def _relay(self) -> AsyncIterator[bytes]:
        received = 0
        while True:
            try:
                async with asyncio.timeout(self._gap):
                    chunk = await self._content.readany()
            except TimeoutError:
                self._hang_up()
                raise IncompleteBodyError(
                    f"the viewer sent no body bytes for {self._gap:g} s"
                ) from None
            except (ConnectionError, http_exceptions.HttpProcessingError) as exc:
                # The viewer hung up, or its framing (length, chunks) broke mid-body.
                raise IncompleteBodyError(f"the viewer's body ended early: {exc}") from exc
            if not chunk:
                return
            received += len(chunk)
            if received > MAX_REQUEST_BODY:
                self._hang_up()
                raise IncompleteBodyError("the viewer's body is over CloudFront's maximum")
            yield chunk

    def _hang_up(self) -> None:
        if self._request.transport is not None:
            self._request.transport.close()

    async def aclose(self) -> None:
        # Nothing to free: aiohttp discards what is left unread once the response is sent.
        return None


def to_edge_request(
    request: web.BaseRequest, *, body_timeout: float = DEFAULT_LIMITS.body_timeout
) -> EdgeRequest:
    """An aiohttp request as the edge sees it: raw target, header lines as sent, body streamed.

    A request with a body carries it as :attr:`EdgeRequest.stream`, read from the socket only as
    the pipeline asks for it (``body_timeout`` being the longest gap allowed between its
    chunks); one without has neither stream nor body.
    """
    raw = request.raw_path
    uri, _, query = raw.partition("?")
    headers = Headers.of_lines(
        # As the request line is decoded, so the origin client can send the same bytes back.
        [
            (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
            for name, value in request.raw_headers
        ]
    )
    connection = request.protocol
    if isinstance(connection, ViewerConnection):
        client_ip, local_port = connection.client_ip, connection.local_port
        scheme = connection.scheme
    else:
        transport = request.transport
        sockname = transport.get_extra_info("sockname") if transport else None
        client_ip, local_port = request.remote or "127.0.0.1", int(sockname[1]) if sockname else 0
        scheme = request.scheme
    version = request.version
    return EdgeRequest(
        method=request.method,
        uri=uri or "/",
        querystring=query,
        headers=headers,
        client_ip=client_ip,
        http_version="1.1" if version is HttpVersion11 else f"{version.major}.{version.minor}",
        scheme=scheme,
        local_port=local_port,
        stream=_ViewerBody(request, body_timeout) if request.body_exists else None,
    )


def _split_length(response: EdgeResponse) -> tuple[CIMultiDict[str], str | None]:
    """The response's header lines without its framing (``Content-Length``,
    ``Transfer-Encoding``: aiohttp writes those), and the length's value."""
    headers: CIMultiDict[str] = CIMultiDict()
    length = None
    for name, value in response.headers:
        lower = name.lower()
        if lower == "content-length":
            length = value
        elif lower != "transfer-encoding":
            headers.add(name, value)
    return headers, length


def _sent_chunked(request: web.BaseRequest, response: EdgeResponse) -> bool:
    """Whether the body goes out in chunks: the edge kept ``Transfer-Encoding: chunked`` on it,
    and the viewer speaks HTTP/1.1 (HTTP/1.0 has no chunks: its body ends with the connection)."""
    return (
        response.headers.chunked()
        and request.version >= HttpVersion11
        and request.method != "HEAD"
        and response.status not in _NO_BODY_STATUSES
    )


def to_web_response(response: EdgeResponse, *, head: bool) -> web.Response:
    """A buffered :class:`EdgeResponse` as aiohttp sends it; lengths are recomputed from the
    body."""
    headers, length = _split_length(response)
    if head:
        # A HEAD response keeps the length the full response would have.
        if length is not None:
            headers["Content-Length"] = length
        return web.Response(status=response.status, reason=response.reason or None, headers=headers)
    return web.Response(
        status=response.status,
        reason=response.reason or None,
        headers=headers,
        body=response.body,
    )


async def send_response(request: web.BaseRequest, result: EdgeResult) -> web.StreamResponse:
    """Send ``result``'s response to the viewer, its streamed body chunk by chunk as it comes.

    A streamed body keeps the ``Content-Length`` it was announced with (chunked without one).
    A response the edge left ``Transfer-Encoding: chunked`` goes out in chunks, whether its body
    is streaming or whole (a cache hit). When a body ends early, the viewer gets the bytes that
    came and then a closed connection, with the response left unfinished, as CloudFront does;
    the cut is added to ``result.trace``.
    """
    response = result.response
    stream = response.stream
    chunked = _sent_chunked(request, response)
    no_body = request.method == "HEAD" or response.status in _NO_BODY_STATUSES
    if (stream is None and not chunked) or no_body:
        if stream is not None:
            response.stream = None
            await stream.aclose()
        wire = _whole_wire(request, response)
        if wire is not None:
            return await _write_whole(request, wire)
        request[SENT_NAMES] = _names(response)
        return to_web_response(response, head=request.method == "HEAD")
    if stream is not None and not chunked and (known := _known_length(response)) is not None:
        head = _head_wire(request, response, known)
        if head is not None:
            return await _write_streamed(request, result, stream, head, int(known))
    request[SENT_NAMES] = _names(response)
    headers, length = _split_length(response)
    sent = web.StreamResponse(
        status=response.status, reason=response.reason or None, headers=headers
    )
    if chunked:
        sent.enable_chunked_encoding()
    elif length is not None and length.strip().isdigit():
        sent.content_length = int(length)
    finished = False
    try:
        await sent.prepare(request)
        if stream is None:
            if response.body:
                await sent.write(response.body)
        else:
            async for chunk in stream:
                await sent.write(chunk)
        await sent.write_eof()
        finished = True
    except IncompleteBodyError as cut:
        result.trace.add(TraceRecord(Stage.ORIGIN, OriginOutcome.BODY_CUT, detail=str(cut)))
    except ConnectionError:
        pass  # the viewer left; nothing more can reach it
    finally:
        if stream is not None:
            await stream.aclose()
    if not finished:
        _hang_up(request, sent)
    return sent


def _names(response: EdgeResponse) -> frozenset[str]:
    return frozenset(name.lower() for name, _ in response.headers)


class _Written(web.StreamResponse):
    """A response whose bytes have gone to the transport already: aiohttp only reads whether
    the connection stays open, so two shared, unchanging instances serve every request."""

    def __init__(self, keep_alive: bool) -> None:
        super().__init__()
        self._keep_alive = keep_alive
        self._eof_sent = True


_KEPT_OPEN = _Written(keep_alive=True)
_CLOSING = _Written(keep_alive=False)


def _whole_wire(request: web.BaseRequest, response: EdgeResponse) -> bytes | None:
    """A buffered response as the bytes aiohttp would send for it (the same lines in the same
    order, minus the ``Server`` and ``Content-Type`` it invents), or None when it is one
    aiohttp's own path must answer."""
    status = response.status
    head = request.method == "HEAD"
    empty = head or status in _NO_BODY_STATUSES
    if not empty:
        length: str | None = str(len(response.body))
    elif head and status not in _NO_BODY_STATUSES:
        # A HEAD answer keeps the length the full response would have.
        length = response.headers.get("Content-Length")
        if length is not None and not length.isdigit():
            return None  # aiohttp cannot frame it
    else:
        length = None
    wire = _head_wire(request, response, length)
    if wire is None or empty:
        return wire
    return wire + response.body


def _head_wire(
    request: web.BaseRequest, response: EdgeResponse, length: str | None
) -> bytes | None:
    """The status line and header lines aiohttp would send for ``response`` with ``length`` as
    its ``Content-Length`` (none when None), or None when aiohttp's own path must answer."""
    status, reason, version = response.status, response.reason, request.version
    if status < 200 or not reason or "\r" in reason or "\n" in reason:
        return None
    items, names = response.headers.named_lines()
    if "connection" in names:
        return None
    lines = [f"HTTP/{version.major}.{version.minor} {status} {reason}"]
    lines += [
        f"{name}: {value}"
        for (name, value), lower in zip(items, names, strict=True)
        if lower not in _FRAMING
    ]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if "date" not in names:
        lines.append(f"Date: {rfc822_formatted_time()}")
    keep_alive = request.keep_alive
    if keep_alive and version == HttpVersion10:
        lines.append("Connection: keep-alive")
    elif not keep_alive and version == HttpVersion11:
        lines.append("Connection: close")
    try:
        flat = "".join(lines).encode("utf-8")
    except UnicodeEncodeError:
        return None
    if has_control_bytes(flat):
        return None  # aiohttp refuses such a line (a header injection): its path answers
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def _known_length(response: EdgeResponse) -> str | None:
    """The one ``Content-Length`` of a response whose body streams, when it is plain digits."""
    names = response.headers.named_lines()[1]
    if names.count("content-length") != 1 or "transfer-encoding" in names:
        return None
    length = response.headers.get("Content-Length")
    return length if length is not None and length.isdigit() else None


async def _write_streamed(
    request: web.BaseRequest, result: EdgeResult, stream: BodyStream, head: bytes, length: int
) -> web.StreamResponse:
    """A streamed body of known length straight to the transport, behind ``head``, each chunk
    as it comes; a body that ends short leaves the viewer what came and a closed connection."""
    transport = request.transport
    finished = False
    try:
        if transport is None or transport.is_closing():
            return _CLOSING  # the viewer left; nothing more can reach it
        transport.write(head)
        left = length
        async for chunk in stream:
            if transport.is_closing():
                break  # the viewer left
            if len(chunk) > left:
                chunk = chunk[:left]  # never more than announced, as aiohttp's writer does
            if chunk:
                transport.write(chunk)
                left -= len(chunk)
            if transport.get_write_buffer_size() > _HIGH_WATER:
                await request.writer.drain()
        else:
            finished = left == 0
    except IncompleteBodyError as cut:
        result.trace.add(TraceRecord(Stage.ORIGIN, OriginOutcome.BODY_CUT, detail=str(cut)))
    except ConnectionError:
        pass  # the viewer left; nothing more can reach it
    finally:
        await stream.aclose()
    if not finished:
        if transport is not None:
            transport.close()  # what was written still goes out first
        return _CLOSING
    return _KEPT_OPEN if request.keep_alive else _CLOSING


async def _write_whole(request: web.BaseRequest, wire: bytes) -> web.StreamResponse:
    transport = request.transport
    if transport is None or transport.is_closing():
        return _CLOSING  # the viewer left; nothing more can reach it
    transport.write(wire)
    if transport.get_write_buffer_size() > _HIGH_WATER:
        await request.writer.drain()
    return _KEPT_OPEN if request.keep_alive else _CLOSING


def _hang_up(request: web.BaseRequest, sent: web.StreamResponse) -> None:
    """Close the viewer's connection once what was written has gone out, so it sees a short
    body rather than a complete one (aiohttp's own ``write_eof`` then meets a closed socket)."""
    sent.force_close()
    if request.transport is not None:
        request.transport.close()


def wire_bytes(response: EdgeResponse) -> bytes:
    """A buffered response as HTTP/1.1 bytes, closing the connection after it."""
    lines = [f"HTTP/1.1 {response.status} {response.reason or reason_phrase(response.status)}"]
    lines += [
        f"{name}: {value}" for name, value in response.headers if name.lower() != "connection"
    ]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + response.body
