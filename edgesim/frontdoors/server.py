"""The HTTP front door: an aiohttp server per distribution, translating to and from the pipeline.

Each distribution listens on its own port (DESIGN.md): ``edgesim serve a.yaml b.yaml`` puts ``a``
on the first port and ``b`` on the next. The adapter only converts between aiohttp's objects and
edgesim's :class:`EdgeRequest` / :class:`EdgeResponse`; every decision is :meth:`Edge.dispatch`'s.

It sits on aiohttp's low-level server (:class:`aiohttp.web.Server`, :class:`BaseRequest`): no
application, router or signals, whose work a cache hit would otherwise pay for on every request.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader

from edgesim.frontdoors.messages import (
    SENT_NAMES,
    send_response,
    to_edge_request,
    wire_bytes,
)
from edgesim.frontdoors.viewer_connection import (
    ACCEPT_BATCH,
    DEFAULT_LIMITS,
    ConnectionBudget,
    Rejecter,
    ViewerConnection,
    ViewerLimits,
    default_max_connections,
    parser_limits,
)
from edgesim.http import EdgeRequest
from edgesim.pipeline import Edge, EdgeResult
from edgesim.tasks import spawn
from edgesim.trace import RefusalOutcome, Stage

__all__ = ["DEFAULT_SHUTDOWN_GRACE", "AccessLog", "EdgeServer"]

AccessLog = Callable[[EdgeRequest, EdgeResult, float], None]

DEFAULT_SHUTDOWN_GRACE = 5.0


class _ViewerRequest(web.BaseRequest):
    """A viewer's request; what aiohttp adds to a response it prepares is checked here."""

    async def _prepare_hook(self, response: web.StreamResponse) -> None:
        # Drop the ``Server`` and ``Content-Type`` lines aiohttp invents when the edge's
        # response has none: CloudFront passes on the origin's (or says ``CloudFront`` on its
        # own pages) and never labels a body the origin left unlabelled.
        sent = self.get(SENT_NAMES)
        if sent is None:
            return  # aiohttp's own answers (a parser error) are not the edge's
        for name in ("Server", "Content-Type"):
            if name.lower() not in sent:
                response.headers.popall(name, None)


def _request_factory(
    loop: asyncio.AbstractEventLoop,
) -> Callable[..., web.BaseRequest]:
    def make(
        message: RawRequestMessage,
        payload: StreamReader,
        protocol: ViewerConnection,
        writer: AbstractStreamWriter,
        task: asyncio.Task[None],
    ) -> web.BaseRequest:
        return _ViewerRequest(message, payload, protocol, writer, task, loop)

    return make


@dataclass
class _Listener:
    """One port and the edge its new requests go to (:meth:`EdgeServer.swap` changes it)."""

    edge: Edge
    port: int


def _closes_connection(result: EdgeResult) -> bool:
    if result.response.status != 413:
        return False
    refused = result.trace.find(Stage.REFUSAL)
    return refused is not None and refused.outcome is RefusalOutcome.REQUEST_TOO_LARGE


class EdgeServer:
    """Serves one or more edges on consecutive ports until :meth:`aclose`.

    ``limits`` bounds what one viewer connection may take (see :class:`ViewerLimits`); the
    connection budget is shared by every port, as open files are the process's. ``sockets``,
    one listening socket per edge, serves on sockets bound elsewhere (by the process that runs
    several edge processes on one port) instead of binding ``host`` and ``port``.
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
        sockets: Sequence[socket.socket] | None = None,
    ) -> None:
        self._edges = list(edges)
        self._shutdown_grace = shutdown_grace
        self.host = host
        self._first_port = port
        self._access_log = access_log
        self._limits = limits
        self._sockets = list(sockets) if sockets is not None else None
        if self._sockets is not None and len(self._sockets) != len(self._edges):
            raise ValueError("one listening socket per edge")
        self.budget = ConnectionBudget(
            limits.max_connections or default_max_connections(listeners=len(self._edges))
        )
        self._managers: list[web.Server] = []
        self._servers: list[asyncio.Server] = []
        self.listeners: list[_Listener] = []
        self._closed = False
        # Requests each edge is serving (their bodies included), so a swapped-out edge is
        # closed only once its last one has finished.
        self._active: dict[Edge, int] = {}
        self._idle: dict[Edge, asyncio.Event] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        # Access lines wait for the end of the event loop's turn, so answers go out first and
        # the console writes a turn's lines at once.
        self._pending_log: list[tuple[EdgeRequest, EdgeResult, float]] = []

    async def start(self) -> None:
        """Bind every port; port 0 picks free ports (tests use it)."""
        loop = asyncio.get_running_loop()
        for index, edge in enumerate(self._edges):
            listener = _Listener(edge=edge, port=0)
            manager = web.Server(
                self._handler(listener), request_factory=_request_factory(loop), loop=loop
            )
            self._managers.append(manager)  # shut down by aclose() even if binding fails
            rejecter = self._rejecter(listener)

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

            if self._sockets is not None:
                server = await loop.create_server(
                    factory, sock=self._sockets[index], backlog=ACCEPT_BATCH
                )
            else:
                port = self._first_port + index if self._first_port else 0
                server = await loop.create_server(
                    factory, self.host, port, backlog=ACCEPT_BATCH, reuse_address=True
                )
            self._servers.append(server)
            listener.port = int(server.sockets[0].getsockname()[1])
            self.listeners.append(listener)

    def url(self, index: int = 0) -> str:
        """The base URL of the ``index``-th distribution."""
        return f"http://{self.host}:{self.listeners[index].port}"

    async def aclose(self) -> None:
        """Stop listening, then stop every edge's workers and origin connections (once)."""
        if self._closed:
            return
        self._closed = True
        servers, self._servers = self._servers, []
        managers, self._managers = self._managers, []
        for server in servers:
            server.close()
        if managers:
            # Requests that arrived before the listeners closed start being handled first.
            await asyncio.sleep(0)
        for manager in managers:
            manager.pre_shutdown()
        for manager in managers:
            # In-flight requests get this long to finish, then are cut.
            await manager.shutdown(self._shutdown_grace)
        self._flush_log()
        for edge in self._edges:
            await edge.aclose()
        retiring, self._retiring = list(self._retiring), set()
        for task in retiring:
            task.cancel()
        if retiring:
            await asyncio.wait(retiring)

    @property
    def edges(self) -> Sequence[Edge]:
        """The edges served now, one per port, in order; a live view that follows :meth:`swap`."""
        return self._edges

    def swap(self, index: int, edge: Edge) -> Edge:
        """Send the ``index``-th port's new requests to ``edge``, atomically; the edge it
        replaces finishes the requests it is serving, then is closed. Returns that edge."""
        listener = self.listeners[index]
        old, listener.edge = listener.edge, edge
        self._edges[index] = edge
        if old is not edge:
            task = spawn(self._close_when_idle(old), name=f"edgesim-retire-edge-{listener.port}")
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        return old

    async def _close_when_idle(self, edge: Edge) -> None:
        try:
            if self._active.get(edge, 0):
                await self._idle.setdefault(edge, asyncio.Event()).wait()
        finally:
            # Cancelled at shutdown: the edge is closed all the same.
            self._idle.pop(edge, None)
            await edge.aclose()

    def _enter(self, edge: Edge) -> None:
        self._active[edge] = self._active.get(edge, 0) + 1

    def _leave(self, edge: Edge) -> None:
        left = self._active.pop(edge) - 1
        if left:
            self._active[edge] = left
        elif edge in self._idle:
            self._idle[edge].set()

    def _log(self, request: EdgeRequest, result: EdgeResult, elapsed_ms: float) -> None:
        if not self._pending_log:
            asyncio.get_running_loop().call_soon(self._flush_log)
        self._pending_log.append((request, result, elapsed_ms))

    def _flush_log(self) -> None:
        pending, self._pending_log = self._pending_log, []
        if self._access_log is not None:
            for entry in pending:
                self._access_log(*entry)

    def _rejecter(self, listener: _Listener) -> Rejecter:
        """CloudFront's answer, as bytes, to a request the listener's port could not parse."""

        def reject(status: int, client_ip: str) -> bytes:
            result = listener.edge.refuse_unparsed(too_large=status == 413)
            if self._access_log is not None:
                self._access_log(EdgeRequest(method="-", uri="-", client_ip=client_ip), result, 0.0)
            return wire_bytes(result.response)

        return reject

    def _handler(
        self, listener: _Listener
    ) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:
        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            # The edge of this request's arrival serves it to the end, swapped out or not.
            edge = listener.edge
            self._enter(edge)
            try:
                return await self._handle(edge, request)
            finally:
                self._leave(edge)

        return handle

    async def _handle(self, edge: Edge, request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        connection = request.protocol
        viewer = connection if isinstance(connection, ViewerConnection) else None
        if viewer is not None:
            if request.version.major < 1:
                # HTTP/0.9 has no status line or headers; CloudFront answers it as a bad
                # HTTP/1.1 request rather than in kind.
                viewer.reject(400)
                return web.Response(status=400)
            viewer.request_started()
        try:
            edge_request = to_edge_request(request, body_timeout=self._limits.body_timeout)
            result = await edge.dispatch(edge_request, stream=True)
            try:
                if viewer is not None and _closes_connection(result):
                    # CloudFront closes the connection after its 413 (spec
                    # cloudfront-caching.md §4.3): nothing more is read, not even the body.
                    await result.response.read()
                    viewer.send_and_close(wire_bytes(result.response))
                    return web.Response(status=result.response.status)
                return await send_response(request, result)
            finally:
                # Logged once the body has gone out, so the time and the trace cover it.
                if self._access_log is not None:
                    self._log(edge_request, result, (time.perf_counter() - started) * 1000)
        finally:
            if viewer is not None:
                viewer.request_finished()
