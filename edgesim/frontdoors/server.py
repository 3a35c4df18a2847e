"""The HTTP front door: an aiohttp server per distribution, translating to and from the pipeline.

Each distribution listens on its own port (DESIGN.md): ``edgesim serve a.yaml b.yaml`` puts ``a``
on the first port and ``b`` on the next. The adapter only converts between aiohttp's objects and
edgesim's :class:`EdgeRequest` / :class:`EdgeResponse`; every decision is :meth:`Edge.dispatch`'s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

from edgesim.frontdoors.messages import send_response, to_edge_request, wire_bytes
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
    """One port and the edge its new requests go to (:meth:`EdgeServer.swap` changes it)."""

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
        super().__init__(runner, backlog=ACCEPT_BATCH)
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
        self.budget = ConnectionBudget(
            limits.max_connections or default_max_connections(listeners=len(self._edges))
        )
        self._runners: list[web.AppRunner] = []
        self.listeners: list[_Listener] = []
        self._closed = False
        # Requests each edge is serving (their bodies included), so a swapped-out edge is
        # closed only once its last one has finished.
        self._active: dict[Edge, int] = {}
        self._idle: dict[Edge, asyncio.Event] = {}
        self._retiring: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Bind every port; port 0 picks free ports (tests use it)."""
        loop = asyncio.get_running_loop()
        for index, edge in enumerate(self._edges):
            listener = _Listener(edge=edge, port=0)
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handler(listener))
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

            port = self._first_port + index if self._first_port else 0
            site = _ViewerSite(runner, self.host, port, factory)
            await site.start()
            listener.port = int(runner.addresses[0][1])
            self.listeners.append(listener)

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
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            # The edge of this request's arrival serves it to the end, swapped out or not.
            edge = listener.edge
            self._enter(edge)
            try:
                return await self._handle(edge, request)
            finally:
                self._leave(edge)

        return handle

    async def _handle(self, edge: Edge, request: web.Request) -> web.StreamResponse:
        body_timeout = self._limits.body_timeout
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
