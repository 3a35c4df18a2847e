"""Loopback origins and requests shared by the OriginFetcher tests."""

from __future__ import annotations

import asyncio
import gzip
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from edgesim.http import EdgeRequest, Headers
from edgesim.origins.targets import OriginTarget

BIG = os.urandom(5 * 1024 * 1024)
CLOUDFRONT_HEADERS = [
    ("Host", "origin.example"),
    ("User-Agent", "Amazon CloudFront"),
    ("X-Forwarded-For", "203.0.113.9"),
    ("Via", "2.0 0123abcd.cloudfront.net (CloudFront)"),
    ("X-Amz-Cf-Id", "c2FtcGxlLWlk=="),
]


def loopback_target(port: int, **overrides: Any) -> OriginTarget:
    """A custom origin named ``origin.example``, dialled at ``port`` on 127.0.0.1 over HTTP."""
    fields: dict[str, Any] = {
        "kind": "custom",
        "domain_name": "origin.example",
        "protocol": "http",
        "port": port,
        "connect_host": "127.0.0.1",
    }
    fields.update(overrides)
    return OriginTarget(**fields)


@dataclass
class Seen:
    """One request as the origin received it."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    peer_port: int


@dataclass
class Origin:
    """A loopback aiohttp origin that records what it receives."""

    seen: list[Seen] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0

    def target(self, **overrides: Any) -> OriginTarget:
        return loopback_target(self.port, **overrides)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.seen.append(
            Seen(
                request.method,
                request.raw_path,
                [(k.decode(), v.decode()) for k, v in request.raw_headers],
                body,
                peer[1] if peer else 0,
            )
        )
        name = request.path.rsplit("/", 1)[-1]
        if name == "cookies":
            lines = [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X-Mixed-CASE", "v")]
            return web.Response(text="ok", headers=CIMultiDict(lines))
        if name == "gzip":
            packed = gzip.compress(b"hello " * 2000)
            headers = {"Content-Encoding": "gzip", "Content-Type": "text/plain"}
            return web.Response(body=packed, headers=headers)
        if name == "big":
            return web.Response(body=BIG, content_type="application/octet-stream")
        if name == "redirect":
            return web.Response(status=302, headers={"Location": "/elsewhere"})
        if name == "reason":
            return web.Response(status=299, reason="Custom Reason")
        if name == "hop":
            stream = web.StreamResponse(headers={"Keep-Alive": "timeout=5", "Trailer": "X-T"})
            stream.enable_chunked_encoding()
            await stream.prepare(request)
            await stream.write(b"part one, ")
            await stream.write(b"part two")
            await stream.write_eof()
            return stream
        if name == "slow":
            await self.release.wait()
            return web.Response(text="late")
        if name == "halves":
            # Half the body, then the rest only once the test releases it.
            half = len(BIG) // 2
            stream = web.StreamResponse(headers={"Content-Length": str(len(BIG))})
            await stream.prepare(request)
            await stream.write(BIG[:half])
            await self.release.wait()
            await stream.write(BIG[half:])
            await stream.write_eof()
            return stream
        if name == "empty":
            return web.Response(status=204)
        if name == "not-modified":
            return web.Response(status=304, headers={"ETag": '"x"'})
        if name == "slow-once" and len([s for s in self.seen if s.target == request.raw_path]) == 1:
            await self.release.wait()
            return web.Response(text="late")
        return web.Response(body=body, headers={"X-Echo": "1"})


def request(
    method: str = "GET",
    uri: str = "/echo",
    querystring: str = "",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> EdgeRequest:
    lines = CLOUDFRONT_HEADERS if headers is None else headers
    return EdgeRequest(method, uri, querystring, Headers(lines), body)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class Dials:
    """The TCP connections the test's event loop was asked to open; ``hang`` stalls each one."""

    count: int = 0
    hang: bool = False


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
