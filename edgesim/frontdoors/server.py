"""The HTTP front door: an aiohttp server per distribution, translating to and from the pipeline.

Each distribution listens on its own port (DESIGN.md): ``edgesim serve a.yaml b.yaml`` puts ``a``
on the first port and ``b`` on the next. The adapter only converts between aiohttp's objects and
edgesim's :class:`EdgeRequest` / :class:`EdgeResponse`; every decision is :meth:`Edge.dispatch`'s.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import web
from multidict import CIMultiDict

from edgesim.http import EdgeRequest, EdgeResponse, Headers
from edgesim.pipeline import Edge, EdgeResult

__all__ = ["AccessLog", "EdgeServer", "to_edge_request", "to_web_response"]

AccessLog = Callable[[EdgeRequest, EdgeResult, float], None]

# Request bodies are buffered whole (functions may read them); CloudFront takes uploads far larger
# than aiohttp's 1 MiB default.
_MAX_BODY = 1024 * 1024 * 1024


async def to_edge_request(request: web.Request) -> EdgeRequest:
    """An aiohttp request as the edge sees it: raw target, header lines as sent, whole body."""
    raw = request.raw_path
    uri, _, query = raw.partition("?")
    headers = Headers(
        (name.decode("latin-1"), value.decode("latin-1")) for name, value in request.raw_headers
    )
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return EdgeRequest(
        method=request.method,
        uri=uri or "/",
        querystring=query,
        headers=headers,
        body=await request.read(),
        client_ip=request.remote or "127.0.0.1",
        http_version=f"{request.version.major}.{request.version.minor}",
        scheme=request.scheme,
        local_port=int(sockname[1]) if sockname else 0,
    )


def to_web_response(response: EdgeResponse, *, head: bool) -> web.Response:
    """An :class:`EdgeResponse` as aiohttp sends it; lengths are recomputed from the body."""
    headers: CIMultiDict[str] = CIMultiDict()
    length = None
    for name, value in response.headers:
        if name.lower() == "content-length":
            length = value
            continue
        headers.add(name, value)
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


@dataclass
class _Listener:
    edge: Edge
    port: int


class EdgeServer:
    """Serves one or more edges on consecutive ports until :meth:`aclose`."""

    def __init__(
        self,
        edges: Sequence[Edge],
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        access_log: AccessLog | None = None,
    ) -> None:
        self._edges = list(edges)
        self.host = host
        self._first_port = port
        self._access_log = access_log
        self._runners: list[web.AppRunner] = []
        self.listeners: list[_Listener] = []
        self._closed = False

    async def start(self) -> None:
        """Bind every port; port 0 picks free ports (tests use it)."""
        for index, edge in enumerate(self._edges):
            app = web.Application(client_max_size=_MAX_BODY)
            app.router.add_route("*", "/{tail:.*}", self._handler(edge))
            # aiohttp's own line and field limits (8 KiB) would answer 400 before CloudFront's
            # limits (8,192-byte URL, 20,480-byte request) get their 413.
            runner = web.AppRunner(
                app,
                access_log=None,
                handle_signals=False,
                max_line_size=65536,
                max_field_size=65536,
            )
            await runner.setup()
            port = self._first_port + index if self._first_port else 0
            self._runners.append(runner)  # cleaned up by aclose() even if binding fails
            site = web.TCPSite(runner, self.host, port, reuse_address=True)
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

    def _handler(self, edge: Edge) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            edge_request = await to_edge_request(request)
            result = await edge.dispatch(edge_request)
            if self._access_log is not None:
                self._access_log(edge_request, result, (time.perf_counter() - started) * 1000)
            return to_web_response(result.response, head=request.method == "HEAD")

        return handle
