"""Between aiohttp and the pipeline: a viewer's request in, the edge's response out.

:func:`to_edge_request` turns an aiohttp request into an :class:`EdgeRequest` whose body (when
there is one) streams from the socket as the pipeline reads it, bounded by a gap timeout and
CloudFront's upload maximum. :func:`send_response` writes an :class:`EdgeResult` back, its body
chunk by chunk as it arrives, keeping the origin's length or chunked framing; a body cut short
leaves the viewer a short body and a closed connection, as CloudFront does. :func:`wire_bytes`
renders a response CloudFront sends before closing the connection (its 400 and 413 pages).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import HttpVersion11, StreamReader, http_exceptions, web
from multidict import CIMultiDict

from edgesim.exceptions import IncompleteBodyError
from edgesim.frontdoors.viewer_connection import DEFAULT_LIMITS
from edgesim.http import EdgeRequest, EdgeResponse, Headers, reason_phrase
from edgesim.pipeline import EdgeResult
from edgesim.pipeline.routing import MAX_REQUEST_BODY
from edgesim.trace import OriginOutcome, Stage, TraceRecord

__all__ = ["send_response", "to_edge_request", "to_web_response", "wire_bytes"]

# Statuses whose response never has a body (RFC 9110 §6.4.1).
_NO_BODY_STATUSES = frozenset({204, 304})


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


async def to_edge_request(
    request: web.BaseRequest, *, body_timeout: float = DEFAULT_LIMITS.body_timeout
) -> EdgeRequest:
    """An aiohttp request as the edge sees it: raw target, header lines as sent, body streamed.

    A request with a body carries it as :attr:`EdgeRequest.stream`, read from the socket only as
    the pipeline asks for it (``body_timeout`` being the longest gap allowed between its
    chunks); one without has neither stream nor body.
    """
    raw = request.raw_path
    uri, _, query = raw.partition("?")
    headers = Headers(
        # As the request line is decoded, so the origin client can send the same bytes back.
        (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
        for name, value in request.raw_headers
    )
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return EdgeRequest(
        method=request.method,
        uri=uri or "/",
        querystring=query,
        headers=headers,
        client_ip=request.remote or "127.0.0.1",
        http_version=f"{request.version.major}.{request.version.minor}",
        scheme=request.scheme,
        local_port=int(sockname[1]) if sockname else 0,
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
        return to_web_response(response, head=request.method == "HEAD")
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
