"""The HTTP front door: an aiohttp server per distribution, translating to and from the pipeline.

Each distribution listens on its own port (DESIGN.md): ``edgesim serve a.yaml b.yaml`` puts ``a``
on the first port and ``b`` on the next. The adapter only converts between aiohttp's objects and
edgesim's :class:`EdgeRequest` / :class:`EdgeResponse`; every decision is :meth:`Edge.dispatch`'s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import HttpVersion11, StreamReader, http_exceptions, web
from multidict import CIMultiDict

from edgesim.exceptions import IncompleteBodyError
from edgesim.frontdoors.viewer_connection import (
    DEFAULT_LIMITS,
    ConnectionBudget,
    Rejecter,
    ViewerConnection,
    ViewerLimits,
    default_max_connections,
    parser_limits,
)
from edgesim.http import EdgeRequest, EdgeResponse, Headers, reason_phrase
from edgesim.pipeline import Edge, EdgeResult
from edgesim.pipeline.routing import MAX_REQUEST_BODY
from edgesim.trace import OriginOutcome, RefusalOutcome, Stage, TraceRecord

__all__ = [
    "DEFAULT_SHUTDOWN_GRACE",
    "AccessLog",
    "EdgeServer",
    "send_response",
    "to_edge_request",
    "to_web_response",
]

AccessLog = Callable[[EdgeRequest, EdgeResult, float], None]

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


DEFAULT_SHUTDOWN_GRACE = 5.0
_SENT_NAMES = web.RequestKey("edgesim_sent_names", set[str])


async def _without_library_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Drop the ``Server`` and ``Content-Type`` lines aiohttp invents when the edge's response
    has none: CloudFront passes on the origin's (or says ``CloudFront`` on its own pages) and
    never labels a body the origin left unlabelled."""
    sent = request.get(_SENT_NAMES)
    if sent is None:
        return  # aiohttp's own answers (a parser error) are not the edge's
    for name in ("Server", "Content-Type"):
        if name.lower() not in sent:
            response.headers.popall(name, None)


@dataclass
class _Listener:
    edge: Edge
    port: int


class _ViewerSite(web.BaseSite):
    """A listening socket whose connections are :class:`ViewerConnection` objects."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        factory: Callable[[], ViewerConnection],
    ) -> None:
        super().__init__(runner, backlog=1024)
        self._host = host
        self._port = port
        self._factory = factory

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        self._server = await asyncio.get_running_loop().create_server(
            self._factory, self._host, self._port, backlog=self._backlog, reuse_address=True
        )


def _closes_connection(result: EdgeResult) -> bool:
    refused = result.trace.find(Stage.REFUSAL)
    return refused is not None and refused.outcome is RefusalOutcome.REQUEST_TOO_LARGE


def wire_bytes(response: EdgeResponse) -> bytes:
    """A buffered response as HTTP/1.1 bytes, closing the connection after it."""
    lines = [f"HTTP/1.1 {response.status} {response.reason or reason_phrase(response.status)}"]
    lines += [
        f"{name}: {value}" for name, value in response.headers if name.lower() != "connection"
    ]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + response.body


class EdgeServer:
    """Serves one or more edges on consecutive ports until :meth:`aclose`.

    ``limits`` bounds what one viewer connection may take (see :class:`ViewerLimits`); the
    connection budget is shared by every port, as open files are the process's.
    """

    def __init__(
        self,
        edges: Sequence[Edge],
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        access_log: AccessLog | None = None,
        shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE,
        limits: ViewerLimits = DEFAULT_LIMITS,
    ) -> None:
        self._edges = list(edges)
        self._shutdown_grace = shutdown_grace
        self.host = host
        self._first_port = port
        self._access_log = access_log
        self._limits = limits
        self.budget = ConnectionBudget(limits.max_connections or default_max_connections())
        self._runners: list[web.AppRunner] = []
        self.listeners: list[_Listener] = []
        self._closed = False

    async def start(self) -> None:
        """Bind every port; port 0 picks free ports (tests use it)."""
        loop = asyncio.get_running_loop()
        for index, edge in enumerate(self._edges):
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handler(edge))
            app.on_response_prepare.append(_without_library_headers)
            runner = web.AppRunner(
                app,
                access_log=None,
                handle_signals=False,
                # In-flight requests get this long to finish at shutdown, then are cut.
                shutdown_timeout=self._shutdown_grace,
            )
            await runner.setup()
            self._runners.append(runner)  # cleaned up by aclose() even if binding fails
            manager = runner.server
            assert manager is not None
            rejecter = self._rejecter(edge)

            def factory(
                manager: web.Server = manager, rejecter: Rejecter = rejecter
            ) -> ViewerConnection:
                return ViewerConnection(
                    manager,
                    loop=loop,
                    limits=self._limits,
                    budget=self.budget,
                    rejecter=rejecter,
                    access_log=None,
                    **parser_limits(),
                )

            port = self._first_port + index if self._first_port else 0
            site = _ViewerSite(runner, self.host, port, factory)
            await site.start()
            bound = runner.addresses[0][1]
            self.listeners.append(_Listener(edge=edge, port=int(bound)))

    def url(self, index: int = 0) -> str:
        """The base URL of the ``index``-th distribution."""
        return f"http://{self.host}:{self.listeners[index].port}"

    async def aclose(self) -> None:
        """Stop listening, then stop every edge's workers and origin connections (once)."""
        if self._closed:
            return
        self._closed = True
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()
        for edge in self._edges:
            await edge.aclose()

    def _rejecter(self, edge: Edge) -> Rejecter:
        """CloudFront's answer, as bytes, to a request ``edge``'s port could not parse."""

        def reject(status: int, client_ip: str) -> bytes:
            result = edge.refuse_unparsed(too_large=status == 413)
            if self._access_log is not None:
                self._access_log(EdgeRequest(method="-", uri="-", client_ip=client_ip), result, 0.0)
            return wire_bytes(result.response)

        return reject

    def _handler(self, edge: Edge) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        body_timeout = self._limits.body_timeout

        async def handle(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            connection = request.protocol
            if isinstance(connection, ViewerConnection):
                if request.version.major < 1:
                    # HTTP/0.9 has no status line or headers; CloudFront answers it as a bad
                    # HTTP/1.1 request rather than in kind.
                    connection.reject(400)
                    return web.Response(status=400)
                connection.request_started()
            try:
                edge_request = await to_edge_request(request, body_timeout=body_timeout)
                result = await edge.dispatch(edge_request, stream=True)
                request[_SENT_NAMES] = {name.lower() for name, _ in result.response.headers}
                try:
                    if _closes_connection(result) and isinstance(connection, ViewerConnection):
                        # CloudFront closes the connection after its 413 (spec
                        # cloudfront-caching.md §4.3): nothing more is read, not even the body.
                        await result.response.read()
                        connection.send_and_close(wire_bytes(result.response))
                        return web.Response(status=result.response.status)
                    return await send_response(request, result)
                finally:
                    # Logged once the body has gone out, so the time and the trace cover it.
                    if self._access_log is not None:
                        elapsed = (time.perf_counter() - started) * 1000
                        self._access_log(edge_request, result, elapsed)
            finally:
                if isinstance(connection, ViewerConnection):
                    connection.request_finished()

        return handle
