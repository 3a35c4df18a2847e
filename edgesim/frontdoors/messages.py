"""Between the viewer's connection and the pipeline: a viewer's request in, the edge's response out.

:func:`to_edge_request` turns a :class:`ViewerRequest` into an :class:`EdgeRequest` whose body (when
there is one) streams from the socket as the pipeline reads it, bounded by a gap timeout and
CloudFront's upload maximum. :func:`send_response` writes an :class:`EdgeResult` back, its body
chunk by chunk as it arrives, keeping the origin's length or chunked framing; a body cut short
leaves the viewer a short body and a closed connection, as CloudFront does. :func:`wire_bytes`
renders a response CloudFront sends before closing the connection (its 400 and 413 pages).

A whole body (a cache hit), or a streamed one of known length, goes out as bytes built here,
status line to body: aiohttp's response objects and header maps cost more than the rest of a
hit. Anything unusual (a chunked body, a status or header aiohttp would refuse) is written by
aiohttp's response writer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import HttpVersion10, HttpVersion11, StreamReader, http_exceptions, web
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http_writer import StreamWriter
from multidict import CIMultiDict

from edgesim.exceptions import IncompleteBodyError
from edgesim.frontdoors.viewer_limits import DEFAULT_LIMITS
from edgesim.frontdoors.viewer_request import ViewerRequest
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

__all__ = ["send_response", "to_edge_request", "to_web_response", "wire_bytes"]

# Statuses whose response never has a body (RFC 9110 §6.4.1).
_NO_BODY_STATUSES = frozenset({204, 304})
_FRAMING = frozenset({"content-length", "transfer-encoding"})
# Past this much unsent, a whole body waits for the viewer to read before the next request.
_HIGH_WATER = 64 * 1024


# The interim answer to a viewer that waits for it before sending its body (RFC 9110 §10.1.1).
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class _ViewerBody:
    """A viewer's upload as aiohttp receives it, chunk by chunk as the socket delivers them.

    A viewer that goes silent for ``gap`` seconds mid-body, or sends more than CloudFront
    accepts, is cut off: the body ends with :class:`IncompleteBodyError` and the connection
    closes, so a slow upload cannot hold the edge.

    A viewer that sent ``Expect: 100-continue`` and waits before sending its body (curl does for
    uploads over 1 MB, and would otherwise wait a second) is told to go on when the edge first
    reads the body. CloudFront does not forward ``Expect``, so it answers the expectation itself;
    a request answered without its body (a refusal, a generated response) gets no 100.
    """

    def __init__(self, request: ViewerRequest, gap: float) -> None:
        self._request = request
        self._content: StreamReader = request.payload
        self._gap = gap

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._relay()

    async def _relay(self) -> AsyncIterator[bytes]:
        self._continue()
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

    def _continue(self) -> None:
        request = self._request
        transport = request.transport
        if (
            transport is not None
            and request.version >= HttpVersion11
            and self._content.total_bytes == 0
            and request.message.headers.get("Expect", "").strip().lower() == "100-continue"
        ):
            transport.write(_CONTINUE)

    def _hang_up(self) -> None:
        if self._request.transport is not None:
            self._request.transport.close()

    async def aclose(self) -> None:
        # Nothing to free: aiohttp discards what is left unread once the response is sent.
        return None


def to_edge_request(
    request: ViewerRequest, *, body_timeout: float = DEFAULT_LIMITS.body_timeout
) -> EdgeRequest:
    """A viewer's request as the edge sees it: raw target, header lines as sent, body streamed.

    A request with a body carries it as :attr:`EdgeRequest.stream`, read from the socket only as
    the pipeline asks for it (``body_timeout`` being the longest gap allowed between its
    chunks); one without has neither stream nor body.
    """
    message = request.message
    uri, _, query = message.path.partition("?")
    headers = Headers.of_lines(
        # As the request line is decoded, so the origin client can send the same bytes back.
        [
            (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
            for name, value in message.raw_headers
        ]
    )
    connection = request.connection
    version = message.version
    return EdgeRequest(
        method=message.method,
        uri=uri or "/",
        querystring=query,
        headers=headers,
        client_ip=connection.client_ip,
        http_version="1.1" if version is HttpVersion11 else f"{version.major}.{version.minor}",
        scheme=connection.scheme,
        local_port=connection.local_port,
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


def _sent_chunked(request: ViewerRequest, response: EdgeResponse) -> bool:
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


async def send_response(request: ViewerRequest, result: EdgeResult) -> bool:
    """Send ``result``'s response to the viewer, its streamed body chunk by chunk as it comes;
    whether the connection may serve another request.

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
            transport = request.transport
            if transport is None or transport.is_closing():
                return False  # the viewer left; nothing more can reach it
            transport.write(wire)
            if transport.get_write_buffer_size() > _HIGH_WATER:
                try:
                    await request.drain()
                except ConnectionError:
                    return False
            return request.keep_alive
        whole = to_web_response(response, head=request.method == "HEAD")
        await whole.prepare(_aiohttp_request(request, response))
        await whole.write_eof()
        return bool(whole.keep_alive) and _open(request)
    if stream is not None and not chunked and (known := _known_length(response)) is not None:
        head = _head_wire(request, response, known)
        if head is not None:
            return await _write_streamed(request, result, stream, head, int(known))
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
        await sent.prepare(_aiohttp_request(request, response))
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
        # Closed once what was written has gone out, so the viewer sees a short body rather
        # than a complete one.
        if request.transport is not None:
            request.transport.close()
        return False
    return bool(sent.keep_alive) and _open(request)


class _AiohttpRequest(web.BaseRequest):
    """A viewer's request as aiohttp's response writer needs it, for the responses edgesim
    leaves to that writer; what aiohttp adds to them is checked here."""

    def __init__(self, request: ViewerRequest, sent: frozenset[str]) -> None:
        connection = request.connection
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        super().__init__(
            request.message,
            request.payload,
            connection,  # type: ignore[arg-type]  # what BaseRequest reads of a handler
            StreamWriter(connection, loop),
            task,
            loop,
        )
        self._sent = sent

    async def _prepare_hook(self, response: web.StreamResponse) -> None:
        # Drop the ``Server`` and ``Content-Type`` lines aiohttp invents when the edge's
        # response has none: CloudFront passes on the origin's (or says ``CloudFront`` on its
        # own pages) and never labels a body the origin left unlabelled.
        for name in ("Server", "Content-Type"):
            if name.lower() not in self._sent:
                response.headers.popall(name, None)


def _aiohttp_request(request: ViewerRequest, response: EdgeResponse) -> web.BaseRequest:
    return _AiohttpRequest(request, frozenset(name.lower() for name, _ in response.headers))


def _open(request: ViewerRequest) -> bool:
    transport = request.transport
    return request.keep_alive and transport is not None and not transport.is_closing()


def _whole_wire(request: ViewerRequest, response: EdgeResponse) -> bytes | None:
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


def _head_wire(request: ViewerRequest, response: EdgeResponse, length: str | None) -> bytes | None:
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
    request: ViewerRequest, result: EdgeResult, stream: BodyStream, head: bytes, length: int
) -> bool:
    """A streamed body of known length straight to the transport, behind ``head``, each chunk
    as it comes; a body that ends short leaves the viewer what came and a closed connection."""
    transport = request.transport
    finished = False
    try:
        if transport is None or transport.is_closing():
            return False  # the viewer left; nothing more can reach it
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
                await request.drain()
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
        return False
    return _open(request)


def wire_bytes(response: EdgeResponse) -> bytes:
    """A buffered response as HTTP/1.1 bytes, closing the connection after it."""
    lines = [f"HTTP/1.1 {response.status} {response.reason or reason_phrase(response.status)}"]
    lines += [
        f"{name}: {value}" for name, value in response.headers if name.lower() != "connection"
    ]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + response.body
