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
import re
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

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

# Larger response heads are refused rather than buffered without bound.
_MAX_HEAD = 64 * 1024
# Reading pauses once this much is buffered and unread, so a fast origin cannot fill memory.
_HIGH_WATER = 256 * 1024
_READ_SIZE = 64 * 1024
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Any control byte but TAB, including CR and LF, would split or corrupt the request's head.
_NOT_FIELD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: ([^\r\n]*))?")
_NO_BODY_STATUSES = frozenset({204, 304})


class TransportError(Exception):
    """An exchange with an origin failed."""


class ConnectFailed(TransportError):
    """No connection could be opened; the cause (``gaierror``, ``SSLError``...) is chained."""


class ConnectTimedOut(TransportError):
    """Opening the connection took longer than the connect timeout."""


class ReadTimedOut(TransportError):
    """The origin was silent, or did not take our bytes, for longer than the read timeout."""


class RequestNotSendable(TransportError):
    """The request cannot be written as HTTP/1.1 (a forbidden byte, a body of the wrong length)."""


class BrokenExchange(TransportError):
    """The origin answered with something that is not HTTP/1.1, or the connection broke."""


class _Wire(asyncio.Protocol):
    """One connection's bytes: what was received and not yet read, and write flow control."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.idle = False
        self._lost: BaseException | None = None
        self._data = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.idle:
            # Nobody asked: these bytes can only be mistaken for the next request's answer.
            self.close()
            return
        self.buffer += data
        self._data.set()
        if len(self.buffer) > _HIGH_WATER and self.transport is not None and not self._paused:
            self._paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.eof = True
        self._data.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self._lost = exc
        self._data.set()
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    @property
    def usable(self) -> bool:
        """Whether the connection is open with nothing received that was not read."""
        return (
            self.transport is not None
            and not self.transport.is_closing()
            and not self.eof
            and not self.buffer
        )

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self.eof = True

    async def write(self, data: bytes, timeout: float) -> None:
        if self.transport is None or self.transport.is_closing():
            raise BrokenExchange("the connection is closed")
        self.transport.write(data)
        try:
            await asyncio.wait_for(self._writable.wait(), timeout)
        except TimeoutError as exc:
            raise ReadTimedOut("the origin did not take the request") from exc
        if self._lost is not None:
            raise BrokenExchange(f"the connection broke: {self._lost}") from self._lost

    async def _more(self, timeout: float) -> bool:
        """Wait for bytes beyond those buffered; ``False`` if the connection ended cleanly."""
        if self.eof:
            if self._lost is not None:
                raise BrokenExchange(f"the connection broke: {self._lost}") from self._lost
            return False
        self._data.clear()
        try:
            await asyncio.wait_for(self._data.wait(), timeout)
        except TimeoutError as exc:
            raise ReadTimedOut("the origin went silent") from exc
        return True

    def take(self, limit: int) -> bytes:
        data = bytes(self.buffer[:limit])
        del self.buffer[:limit]
        if self._paused and len(self.buffer) < _HIGH_WATER and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    async def read_some(self, limit: int, timeout: float) -> bytes:
        """Up to ``limit`` bytes, at least one; ``b""`` at a clean end of the connection."""
        while not self.buffer:
            if not await self._more(timeout):
                return b""
        return self.take(limit)

    async def read_line(self, timeout: float) -> bytes:
        """One line without its CRLF; :class:`BrokenExchange` if the connection ends first."""
        searched = 0
        while True:
            end = self.buffer.find(b"\n", searched)
            if end >= 0:
                line = self.take(end + 1)
                return line[:-2] if line.endswith(b"\r\n") else line[:-1]
            searched = len(self.buffer)
            if searched > _MAX_HEAD:
                raise BrokenExchange("a line of the response is too long")
            if not await self._more(timeout):
                raise BrokenExchange("the connection ended before the line did")


@dataclass
class _Connection:
    wire: _Wire
    key: tuple[str, str, int, str | None]
    expires_at: float = 0.0


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

    async def _dechunked(self, wire: _Wire) -> AsyncIterator[bytes]:
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
        self._open: set[_Wire] = set()

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
        head = _request_head(method, target, headers)
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

    async def aclose(self) -> None:
        """Close every connection, including those whose body is still being read."""
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
            connection.wire.close()
            self._open.discard(connection.wire)
        return None

    async def _connect(
        self, key: tuple[str, str, int, str | None], tls: ssl.SSLContext | None, timeout: float
    ) -> _Connection:
        _, host, port, sni = key
        loop = asyncio.get_running_loop()
        wire = _Wire()
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
        wire: _Wire,
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
            version, status, reason, headers = await _read_head(wire, timeout)
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


async def _read_head(
    wire: _Wire, timeout: float
) -> tuple[int, int, bytes, list[tuple[bytes, bytes]]]:
    first = await wire.read_line(timeout)
    match = _STATUS_LINE.fullmatch(first)
    if match is None:
        raise BrokenExchange(f"not an HTTP/1.1 status line: {first[:40]!r}")
    headers: list[tuple[bytes, bytes]] = []
    size = len(first)
    while line := await wire.read_line(timeout):
        size += len(line)
        if size > _MAX_HEAD:
            raise BrokenExchange("the response head is too large")
        if line[:1] in (b" ", b"\t"):
            # Obsolete line folding (RFC 9112 §5.2) is ambiguous between parsers: refused.
            raise BrokenExchange("a folded header line")
        name, colon, value = line.partition(b":")
        if not colon or _TOKEN.fullmatch(name) is None:
            raise BrokenExchange(f"invalid header line {line[:40]!r}")
        headers.append((name, value.strip(b" \t")))
    return int(match[1]), int(match[2]), match[3] or b"", headers


def _request_head(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    if _TOKEN.fullmatch(method) is None:
        raise RequestNotSendable(f"invalid method {method!r}")
    lines = [b"%b %b HTTP/1.1" % (method, target)]
    for name, value in headers:
        if _TOKEN.fullmatch(name) is None:
            raise RequestNotSendable(f"invalid header name {name!r}")
        if _NOT_FIELD_VALUE.search(value):
            raise RequestNotSendable(f"invalid value for header {name!r}")
        lines.append(b"%b: %b" % (name, value))
    return b"\r\n".join(lines) + b"\r\n\r\n"
