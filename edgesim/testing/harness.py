"""An edge under test: a distribution's real pipeline with a client, in-process or on a port.

In-process (the default) the client builds the viewer's request and calls
:meth:`Edge.dispatch` directly: no socket, but real worker processes, rules, cache and headers,
exactly as ``edgesim serve`` runs them. With ``serve=True`` the edge runs behind edgesim's own
HTTP front door (:class:`~edgesim.frontdoors.server.EdgeServer`) on a free 127.0.0.1 port and
the client sends real HTTP; each response's trace is taken from the server's access log hook,
matched by ``X-Amz-Cf-Id``. Either way every function call is recorded (:mod:`.calls`).
"""

from __future__ import annotations

import asyncio
from types import TracebackType

import aiohttp
from yarl import URL

from edgesim.config import Distribution
from edgesim.frontdoors.server import EdgeServer
from edgesim.http import EdgeRequest, Headers
from edgesim.pipeline import Edge, EdgeResult
from edgesim.pipeline.functions import function_specs
from edgesim.testing.calls import CallRecorder
from edgesim.testing.events import DEFAULT_CLIENT_IP, viewer_request_model
from edgesim.testing.inputs import CookiesInput, HeadersInput, QueryInput
from edgesim.testing.response import Response, attach_outcomes
from edgesim.types import CacheStore, Clock

__all__ = ["EdgeHarness"]

# How long a served response's trace may take to reach the access log after its last byte.
_TRACE_WAIT_S = 10.0


class EdgeHarness:
    """One distribution's edge with a client; ``async with`` it or :meth:`start`/:meth:`aclose`.

    ``clock`` moves cache time (a :class:`~edgesim.testing.FakeClock`), ``store`` shares a cache
    between edges, ``echo`` copies function log lines to stderr.
    """

    def __init__(
        self,
        distribution: Distribution,
        *,
        clock: Clock | None = None,
        store: CacheStore | None = None,
        serve: bool = False,
        echo: bool = False,
    ) -> None:
        self.distribution = distribution
        self.recorder = CallRecorder.over(function_specs(distribution), echo=echo)
        self.edge = Edge(
            distribution,
            runtime=self.recorder,
            store=store,
            clock=clock,
            log_sink=self.recorder.sink,
        )
        self.serve = serve
        self._server: EdgeServer | None = None
        self._session: aiohttp.ClientSession | None = None
        self._served: dict[str, EdgeResult] = {}
        self._arrival = asyncio.Event()
        self._closed = False

    async def start(self) -> EdgeHarness:
        """Bind the port and open the client (``serve=True``); in-process there is nothing to do."""
        if self.serve and self._server is None:
            self._server = EdgeServer([self.edge], port=0, access_log=self._on_access)
            try:
                await self._server.start()
            except BaseException:
                await self.aclose()
                raise
            self._session = aiohttp.ClientSession(
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                timeout=aiohttp.ClientTimeout(total=120),
            )
        return self

    async def aclose(self) -> None:
        """Close the client and the port, and stop every worker."""
        if self._closed:
            return
        self._closed = True
        if self._session is not None:
            await self._session.close()
        if self._server is not None:
            await self._server.aclose()  # closes the edge too
        else:
            await self.edge.aclose()

    async def __aenter__(self) -> EdgeHarness:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def url(self) -> str:
        """The base URL (``serve=True`` only)."""
        if self._server is None:
            raise RuntimeError("the edge is in-process; pass serve=True for a port")
        return self._server.url()

    @property
    def logs(self) -> list[str]:
        """Every function log line so far, all requests together."""
        return list(self.recorder.lines)

    async def request(
        self,
        method: str,
        target: str = "/",
        *,
        headers: HeadersInput = None,
        body: bytes | str | None = None,
        cookies: CookiesInput = None,
        querystring: QueryInput = None,
        client_ip: str = DEFAULT_CLIENT_IP,
        host: str | None = None,
    ) -> Response:
        """Send one viewer request; ``target`` is kept as written (``"/a?b=1"``).

        ``host`` defaults to the distribution's domain name; ``client_ip`` is the viewer's
        address in-process (on a port it is the real peer, 127.0.0.1).
        """
        if self._closed:
            raise RuntimeError("this edge is closed")
        viewer = viewer_request_model(
            target,
            method=method,
            querystring=querystring,
            headers=headers,
            cookies=cookies,
            body=body,
            client_ip=client_ip,
            host=host or self.distribution.settings.domain_name,
        )
        if self.serve:
            return await self._over_http(viewer)
        result = await self.edge.dispatch(viewer)
        return self._response(result, result.response.body)

    async def get(self, target: str = "/", **options: object) -> Response:
        """A GET; see :meth:`request` for the options."""
        return await self.request("GET", target, **options)  # type: ignore[arg-type]

    async def head(self, target: str = "/", **options: object) -> Response:
        """A HEAD; see :meth:`request`."""
        return await self.request("HEAD", target, **options)  # type: ignore[arg-type]

    async def post(self, target: str = "/", **options: object) -> Response:
        """A POST; see :meth:`request`."""
        return await self.request("POST", target, **options)  # type: ignore[arg-type]

    async def put(self, target: str = "/", **options: object) -> Response:
        """A PUT; see :meth:`request`."""
        return await self.request("PUT", target, **options)  # type: ignore[arg-type]

    async def delete(self, target: str = "/", **options: object) -> Response:
        """A DELETE; see :meth:`request`."""
        return await self.request("DELETE", target, **options)  # type: ignore[arg-type]

    def _response(self, result: EdgeResult, body: bytes) -> Response:
        trace = result.trace
        calls = attach_outcomes(self.recorder.forget(trace.request_id), trace)
        response = result.response
        return Response(
            status=response.status,
            headers=response.headers,
            body=body,
            trace=trace,
            calls=calls,
            reason=response.reason,
        )

    async def _over_http(self, viewer: EdgeRequest) -> Response:
        assert self._session is not None and self._server is not None
        url = URL(self._server.url() + viewer.target, encoded=True)
        async with self._session.request(
            viewer.method,
            url,
            headers=[(k, v) for k, v in viewer.headers],
            data=viewer.body or None,
            allow_redirects=False,
        ) as answer:
            body = await answer.read()
            headers = Headers(
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in answer.raw_headers
            )
        request_id = headers.get("X-Amz-Cf-Id") or ""
        result = await self._served_result(request_id)
        response = self._response(result, body)
        return Response(
            status=answer.status,
            headers=headers,
            body=body,
            trace=response.trace,
            calls=response.calls,
            reason=answer.reason or "",
        )

    def _on_access(self, request: EdgeRequest, result: EdgeResult, elapsed_ms: float) -> None:
        self._served[result.trace.request_id] = result
        self._arrival.set()

    async def _served_result(self, request_id: str) -> EdgeResult:
        # The access log is written once the body has gone out, which may be just after the
        # client has read it.
        async with asyncio.timeout(_TRACE_WAIT_S):
            while request_id not in self._served:
                self._arrival.clear()
                await self._arrival.wait()
        return self._served.pop(request_id)
