"""The HTTP front door: a listening port per distribution, translating to and from the pipeline.

Each distribution listens on its own port (DESIGN.md): ``edgesim serve a.yaml b.yaml`` puts ``a``
on the first port and ``b`` on the next. Each viewer connection is a
:class:`~edgesim.frontdoors.viewer_connection.ViewerConnection` (aiohttp's HTTP parser, no web
framework); the adapter only converts between its requests and edgesim's :class:`EdgeRequest` /
:class:`EdgeResponse` (:mod:`edgesim.frontdoors.messages`); every decision is
:meth:`Edge.dispatch`'s.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edgesim.frontdoors.messages import send_response, to_edge_request, wire_bytes
from edgesim.frontdoors.viewer_connection import ViewerConnection, ViewerConnections
from edgesim.frontdoors.viewer_limits import (
    ACCEPT_BATCH,
    DEFAULT_LIMITS,
    ConnectionBudget,
    Rejecter,
    ViewerLimits,
    default_max_connections,
)
from edgesim.frontdoors.viewer_request import Handler, ViewerRequest
from edgesim.http import EdgeRequest
from edgesim.pipeline import Edge, EdgeResult
from edgesim.tasks import spawn
from edgesim.trace import RefusalOutcome, Stage

__all__ = ["DEFAULT_SHUTDOWN_GRACE", "AccessLog", "EdgeServer"]

AccessLog = Callable[[EdgeRequest, EdgeResult, float], None]

DEFAULT_SHUTDOWN_GRACE = 5.0


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
        self._connections = ViewerConnections()
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
            handler, rejecter = self._handler(listener), self._rejecter(listener)

            def factory(
                handler: Handler = handler, rejecter: Rejecter = rejecter
            ) -> ViewerConnection:
                return ViewerConnection(
                    loop,
                    handler,
                    limits=self._limits,
                    budget=self.budget,
                    rejecter=rejecter,
                    connections=self._connections,
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
        for server in servers:
            server.close()
        if servers:
            # Requests that arrived before the listeners closed start being handled first.
            await asyncio.sleep(0)
        # In-flight requests get this long to finish, then are cut.
        await self._connections.shutdown(self._shutdown_grace)
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

    def _handler(self, listener: _Listener) -> Handler:
        limits, log = self._limits, self._log if self._access_log is not None else None

        async def handle(request: ViewerRequest) -> bool:
            """Answer one viewer request; whether its connection may serve another."""
            started = time.perf_counter()
            # The edge of this request's arrival serves it to the end, swapped out or not.
            edge = listener.edge
            self._enter(edge)
            try:
                edge_request = to_edge_request(request, body_timeout=limits.body_timeout)
                result = await edge.dispatch(edge_request, stream=True)
                try:
                    if _closes_connection(result):
                        # CloudFront closes the connection after its 413 (spec
                        # cloudfront-caching.md §4.3): nothing more is read, not even the body.
                        await result.response.read()
                        request.connection.send_and_close(wire_bytes(result.response))
                        return False
                    return await send_response(request, result)
                finally:
                    # Logged once the body has gone out, so the time and the trace cover it.
                    if log is not None:
                        log(edge_request, result, (time.perf_counter() - started) * 1000)
            finally:
                self._leave(edge)

        return handle
