"""A small HTTP/1.1 client for origins, over asyncio, with strict response framing.

Each response's end is found from its framing alone (RFC 9112 §6.3): no body for HEAD, 1xx, 204
and 304; ``Transfer-Encoding: chunked``; ``Content-Length``; otherwise the close of the
connection. A connection goes back to the pool only when the response ended exactly where its
framing said, the origin did not ask to close, and not one byte more has been received. A byte
that arrives while a connection waits in the pool (an answer nobody asked for) closes it too.
Without that, surplus bytes would be read as the answer to the next request, for another URL.

Failures are :class:`TransportError` subclasses; the caller maps them to what the viewer sees.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from edgesim.origins.wire import (
    BrokenExchange,
    ConnectFailed,
    ConnectTimedOut,
    ReadTimedOut,
    RequestNotSendable,
    TransportError,
    Wire,
    read_head,
    request_head,
)

__all__ = [
    "BrokenExchange",
    "ConnectFailed",
    "ConnectTimedOut",
    "OriginBody",
    "OriginPool",
    "OriginResponse",
    "ReadTimedOut",
    "RequestNotSendable",
    "TransportError",
]

_NO_BODY_STATUSES = frozenset({204, 304})
# How much of a body is asked of the connection at a time.
_READ_SIZE = 64 * 1024


@dataclass
class _Connection:
    wire: Wire
    key: tuple[str, str, int, str | None]
    expires_at: float = 0.0
    # Closes the connection when it has been idle for the keep-alive timeout.
    expiry: asyncio.TimerHandle | None = None


@dataclass
class OriginResponse:
    """An origin's status line and header lines as received, and its body when it has one."""

    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: OriginBody | None


class OriginBody:
    """A response body as it arrives, framing removed; owns its connection until the end.

    At a clean end the connection goes back to the pool if it may be reused; ``aclose`` before
    the end closes it, since the rest of the body would still be on its way.
    """

    def __init__(
        self,
        pool: OriginPool,
        connection: _Connection,
        framing: str,
        length: int,
        reusable: bool,
        timeout: float,
    ) -> None:
        self._pool = pool
        self._connection = connection
        self._framing = framing
        self._length = length
        self._reusable = reusable
        self._timeout = timeout
        self._done = False
        if framing == "length" and length == 0:
            # Already complete: the connection need not wait for a read that yields nothing.
            self._finish(reuse=reusable)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    def take_whole(self) -> bytes | None:
        """The whole body when all of it has already arrived (a length-framed body in the
        connection's buffer, the usual case for small ones), ending it; else None, and the
        body streams as usual."""
        if self._framing != "length":
            return None
        if self._done:
            return b""  # a zero length: the body ended with its head
        wire = self._connection.wire
        if len(wire.buffer) < self._length:
            return None
        data = wire.take(self._length)
        self._finish(reuse=self._reusable)
        return data

    async def _chunks(self) -> AsyncIterator[bytes]:
        if self._done:
            return
        wire = self._connection.wire
        try:
            if self._framing == "length":
                left = self._length
                while left:
                    data = await wire.read_some(min(left, _READ_SIZE), self._timeout)
                    if not data:
                        raise BrokenExchange(f"{left} bytes of the body never came")
                    left -= len(data)
                    yield data
            elif self._framing == "chunked":
                async for data in self._dechunked(wire):
                    yield data
            else:
                while data := await wire.read_some(_READ_SIZE, self._timeout):
                    yield data
        except BaseException:
            self._finish(reuse=False)
            raise
        self._finish(reuse=self._reusable)

    async def _dechunked(self, wire: Wire) -> AsyncIterator[bytes]:
        while True:
            line = await wire.read_line(self._timeout)
            size_text = line.split(b";", 1)[0].strip()
            if not size_text or not all(c in b"0123456789abcdefABCDEF" for c in size_text):
                raise BrokenExchange(f"invalid chunk size line {line[:40]!r}")
            size = int(size_text, 16)
            if size == 0:
                # Trailer fields end at an empty line; they are not passed on.
                while await wire.read_line(self._timeout):
                    pass
                return
            while size:
                data = await wire.read_some(min(size, _READ_SIZE), self._timeout)
                if not data:
                    raise BrokenExchange("the connection ended inside a chunk")
                size -= len(data)
                yield data
            if await wire.read_line(self._timeout) != b"":
                raise BrokenExchange("a chunk is longer than its size")

    def _finish(self, *, reuse: bool) -> None:
        if not self._done:
            self._done = True
            self._pool.release(self._connection, reuse=reuse)

    async def aclose(self) -> None:
        """Give up on the rest of the body: its connection is closed unless it had ended."""
        self._finish(reuse=False)


class OriginPool:
    """Keep-alive HTTP/1.1 connections, each reused for ``keepalive`` seconds when clean."""

    def __init__(self, keepalive: float) -> None:
        self._keepalive = keepalive
        self._idle: dict[tuple[str, str, int, str | None], list[_Connection]] = {}
        # Every connection opened, idle or in use, so that closing the pool closes them all.
        self._open: set[Wire] = set()

    async def send(
        self,
        *,
        scheme: str,
        host: str,
        port: int,
        sni_hostname: str | None,
        tls: ssl.SSLContext | None,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterable[bytes],
        chunked: bool,
        length: int | None,
        connect_timeout: float,
        read_timeout: float,
    ) -> OriginResponse:
        """Send one request and read its answer's head; the body streams from the result.

        ``chunked`` frames a streamed ``body`` as chunks; otherwise it must be ``length`` bytes
        (the caller put that ``Content-Length`` among ``headers``).
        """
        head = request_head(method, target, headers)
        key = (scheme, host, port, sni_hostname)
        connection = self._pooled(key)
        if connection is None:
            connection = await self._connect(key, tls, connect_timeout)
        try:
            await self._write(connection.wire, head, body, chunked, length, read_timeout)
            return await self._response(connection, method == b"HEAD", read_timeout)
        except BaseException:
            connection.wire.close()
            self._open.discard(connection.wire)
            raise

    def release(self, connection: _Connection, *, reuse: bool) -> None:
        """Pool ``connection`` if ``reuse`` and nothing beyond the response was received."""
        wire = connection.wire
        if not (reuse and wire.usable):
            wire.close()
            self._open.discard(wire)
            return
        wire.idle = True
        connection.expires_at = time.monotonic() + self._keepalive
        self._idle.setdefault(connection.key, []).append(connection)
        # CloudFront closes an idle origin connection once OriginKeepaliveTimeout has passed
        # (spec cloudfront-caching.md §5), not when the origin is next asked for. The timer is
        # left running when the connection is reused; when it fires it looks at the latest
        # expiry, so a busy connection costs no timer per request.
        if connection.expiry is None:
            connection.expiry = asyncio.get_running_loop().call_later(
                self._keepalive, self._expire, connection
            )

    def _expire(self, connection: _Connection) -> None:
        connection.expiry = None
        idle = self._idle.get(connection.key, [])
        if connection not in idle:
            return  # in use: its next release arms the timer again
        left = connection.expires_at - time.monotonic()
        if left > 0:
            connection.expiry = asyncio.get_running_loop().call_later(
                left, self._expire, connection
            )
            return
        idle.remove(connection)
        if not idle:
            del self._idle[connection.key]
        connection.wire.close()
        self._open.discard(connection.wire)

    async def aclose(self) -> None:
        """Close every connection, including those whose body is still being read."""
        for connections in self._idle.values():
            for connection in connections:
                if connection.expiry is not None:
                    connection.expiry.cancel()
        self._idle = {}
        wires, self._open = self._open, set()
        for wire in wires:
            wire.close()

    def _pooled(self, key: tuple[str, str, int, str | None]) -> _Connection | None:
        connections = self._idle.get(key, [])
        now = time.monotonic()
        while connections:
            connection = connections.pop()
            if connection.wire.usable and now < connection.expires_at:
                connection.wire.idle = False
                return connection
            if connection.expiry is not None:
                connection.expiry.cancel()
                connection.expiry = None
            connection.wire.close()
            self._open.discard(connection.wire)
        return None

    async def _connect(
        self, key: tuple[str, str, int, str | None], tls: ssl.SSLContext | None, timeout: float
    ) -> _Connection:
        _, host, port, sni = key
        loop = asyncio.get_running_loop()
        wire = Wire()
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: wire,
                    host,
                    port,
                    ssl=tls,
                    server_hostname=(sni or host) if tls is not None else None,
                ),
                timeout,
            )
        except TimeoutError as exc:
            raise ConnectTimedOut(f"no connection within {timeout} s") from exc
        except (OSError, UnicodeError) as exc:
            raise ConnectFailed(str(exc) or type(exc).__name__) from exc
        self._open.add(wire)
        return _Connection(wire, key)

    async def _write(
        self,
        wire: Wire,
        head: bytes,
        body: bytes | AsyncIterable[bytes],
        chunked: bool,
        length: int | None,
        timeout: float,
    ) -> None:
        if isinstance(body, bytes):
            await wire.write(head + body, timeout)
            return
        await wire.write(head, timeout)
        sent = 0
        async for data in body:
            sent += len(data)
            if chunked:
                await wire.write(b"%X\r\n%b\r\n" % (len(data), data), timeout)
            else:
                if length is not None and sent > length:
                    raise RequestNotSendable("the body is longer than its Content-Length")
                await wire.write(data, timeout)
        if chunked:
            await wire.write(b"0\r\n\r\n", timeout)
        elif length is not None and sent != length:
            raise RequestNotSendable("the body is shorter than its Content-Length")

    async def _response(
        self, connection: _Connection, head_request: bool, timeout: float
    ) -> OriginResponse:
        wire = connection.wire
        while True:
            version, status, reason, headers = await read_head(wire, timeout)
            # Interim answers (100 Continue...) precede the real one; 101 was never asked for.
            if not 100 <= status < 200 or status == 101:
                break
        if status == 101:
            raise BrokenExchange("the origin switched protocols unasked")
        names = [name.lower() for name, _ in headers]
        tokens = {
            token.strip().lower()
            for name, value in headers
            if name.lower() == b"connection"
            for token in value.split(b",")
        }
        reusable = version == 1 and b"close" not in tokens
        if head_request or status in _NO_BODY_STATUSES:
            self.release(connection, reuse=reusable)
            return OriginResponse(status, reason, headers, None)
        framing, length = "close", 0
        if b"transfer-encoding" in names:
            codings = b",".join(v for n, v in headers if n.lower() == b"transfer-encoding")
            last = codings.rsplit(b",", 1)[-1].strip().lower()
            framing = "chunked" if last == b"chunked" else "close"
            # With a Content-Length too, the message may be a smuggling attempt: never reuse.
            reusable = reusable and b"content-length" not in names
        elif b"content-length" in names:
            values = {
                v.strip()
                for n, value in headers
                if n.lower() == b"content-length"
                for v in value.split(b",")
            }
            if len(values) != 1 or not (text := values.pop()).isdigit():
                raise BrokenExchange("invalid or conflicting Content-Length")
            framing, length = "length", int(text)
        if framing == "close":
            reusable = False
        body = OriginBody(self, connection, framing, length, reusable, timeout)
        return OriginResponse(status, reason, headers, body)
