"""A programmable origin on 127.0.0.1 that records every request it receives.

A test routes paths to canned answers or to its own callables, points a distribution's origin
at it (by name: ``edge(config, origins=[origin])``, or as the value of an origin in an
in-memory distribution), and then asserts what reached the origin: method, target as sent,
header lines as sent, and the body. It is a real HTTP server (aiohttp), so what it records is
what edgesim put on the wire.
"""

from __future__ import annotations

import asyncio
import fnmatch
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from edgesim.http import Headers
from edgesim.origins.targets import OriginTarget
from edgesim.testing.inputs import HeadersInput, body_bytes, header_lines

__all__ = ["OriginReply", "OriginRequest", "RecordingOrigin", "RouteHandler"]


@dataclass(frozen=True)
class OriginRequest:
    """One request as the origin received it."""

    method: str
    target: str
    """The request target as sent (path and query, not decoded)."""
    headers: Headers
    body: bytes

    @property
    def path(self) -> str:
        """The target without its query string."""
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        """The query string, without ``?``."""
        return self.target.partition("?")[2]

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        return self.headers.get(name)


@dataclass(frozen=True)
class OriginReply:
    """What the origin answers: status, header lines, body, after ``delay`` seconds."""

    status: int = 200
    headers: HeadersInput = None
    body: bytes | str = b""
    delay: float = 0.0


RouteHandler = Callable[
    [OriginRequest], OriginReply | str | bytes | Awaitable[OriginReply | str | bytes]
]
"""A route's callable: given the request, returns (or awaits) the reply; a str or bytes is a
200 with that body."""


@dataclass
class _Route:
    pattern: str
    method: str | None
    answer: OriginReply | RouteHandler

    def matches(self, request: OriginRequest) -> bool:
        if self.method is not None and request.method != self.method:
            return False
        return fnmatch.fnmatchcase(request.path, self.pattern)


@dataclass(eq=False)
class RecordingOrigin:
    """An HTTP origin on a free 127.0.0.1 port; use with ``async with`` or start/aclose.

    ``name`` is the origin id it stands for in a distribution. Unrouted requests get a 200 whose
    JSON body echoes the request (method, target, headers, and body as text).
    """

    name: str = "origin"
    requests: list[OriginRequest] = field(default_factory=list)
    """Every request received, oldest first."""
    _routes: list[_Route] = field(default_factory=list, init=False, repr=False)
    _runner: web.AppRunner | None = field(default=None, init=False, repr=False)
    _port: int = field(default=0, init=False)

    async def start(self) -> RecordingOrigin:
        """Listen on a free loopback port."""
        if self._runner is not None:
            return self
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        return self

    async def aclose(self) -> None:
        """Stop listening and close every connection."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> RecordingOrigin:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def port(self) -> int:
        """The port it listens on (after :meth:`start`)."""
        if self._runner is None:
            raise RuntimeError(f"origin {self.name!r} is not started; await origin.start()")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the ``url`` of a distribution's origin."""
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        """This origin as a distribution's ``origins`` entry."""
        return {"url": self.url}

    def target(self) -> OriginTarget:
        """This origin as a Lambda@Edge event's ``request.origin`` describes it."""
        return OriginTarget(
            kind="custom",
            domain_name="127.0.0.1",
            port=self.port,
            protocol="http",
            origin_id=self.name,
        )

    def route(
        self,
        pattern: str,
        answer: OriginReply | RouteHandler | None = None,
        *,
        method: str | None = None,
        status: int = 200,
        headers: HeadersInput = None,
        body: bytes | str = b"",
        delay: float = 0.0,
    ) -> None:
        """Answer requests whose path matches ``pattern`` (``*`` and ``?`` wildcards).

        ``answer`` is an :class:`OriginReply` or a callable; without one the keyword arguments
        make the reply. The route added last is tried first, so a test can override an earlier
        one. ``method`` limits the route to one method.
        """
        if answer is None:
            header_lines(headers)  # a wrong type fails here, not when a request comes
            answer = OriginReply(status=status, headers=headers, body=body, delay=delay)
        self._routes.insert(0, _Route(pattern, method.upper() if method else None, answer))

    def requests_to(self, pattern: str) -> list[OriginRequest]:
        """The requests whose path matches ``pattern``."""
        return [r for r in self.requests if fnmatch.fnmatchcase(r.path, pattern)]

    @property
    def last(self) -> OriginRequest:
        """The most recent request; :class:`LookupError` if none came."""
        if not self.requests:
            raise LookupError(f"origin {self.name!r} has received no request")
        return self.requests[-1]

    def clear(self) -> None:
        """Forget the requests received so far."""
        self.requests.clear()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = Headers(
            (k.decode("utf-8", "surrogateescape"), v.decode("utf-8", "surrogateescape"))
            for k, v in request.raw_headers
        )
        seen = OriginRequest(request.method, request.raw_path, headers, body)
        self.requests.append(seen)
        route = next((r for r in self._routes if r.matches(seen)), None)
        if route is None:
            return _echo(seen)
        answer = route.answer
        reply: object = answer
        if not isinstance(answer, OriginReply):
            reply = answer(seen)
            if inspect.isawaitable(reply):
                reply = await reply
        if isinstance(reply, str | bytes):
            reply = OriginReply(body=reply)
        if not isinstance(reply, OriginReply):
            raise TypeError(
                f"route {route.pattern!r} returned {type(reply).__name__}; "
                "return an OriginReply, str or bytes"
            )
        if reply.delay:
            await asyncio.sleep(reply.delay)
        response = web.Response(status=reply.status, body=body_bytes(reply.body))
        for name, value in header_lines(reply.headers):
            response.headers.add(name, value)
        return response


def _echo(seen: OriginRequest) -> web.Response:
    payload = {
        "method": seen.method,
        "target": seen.target,
        "headers": seen.headers.items(),
        "body": seen.body.decode("utf-8", "replace"),
    }
    return web.json_response(payload)
