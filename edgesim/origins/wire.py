"""One origin connection's bytes, and the HTTP/1.1 heads written and read on it.

:class:`Wire` is the asyncio protocol under each pooled connection: it buffers what was received
and not yet read (bounded, with reading paused past a high-water mark), keeps write flow control,
and marks an idle connection broken the moment a byte arrives that nobody asked for.
:func:`read_head` reads a response's status line and header lines strictly (no obsolete line
folding, token names, a bounded size); :func:`request_head` refuses to write a request whose
method, header names or values would split or corrupt the head.

Failures are :class:`TransportError` subclasses; the caller maps them to what the viewer sees.
"""

from __future__ import annotations

import asyncio
import re
from typing import cast

from edgesim.http import has_control_bytes

__all__ = [
    "BrokenExchange",
    "ConnectFailed",
    "ConnectTimedOut",
    "ReadTimedOut",
    "RequestNotSendable",
    "TransportError",
    "Wire",
    "read_head",
    "request_head",
]

# Larger response heads are refused rather than buffered without bound.
_MAX_HEAD = 64 * 1024
# Reading pauses once this much is buffered and unread, so a fast origin cannot fill memory.
_HIGH_WATER = 256 * 1024
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: ([^\r\n]*))?")


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


class Wire(asyncio.Protocol):
    """One connection's bytes: what was received and not yet read, and write flow control."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.idle = False
        self._lost: BaseException | None = None
        # The reader waiting for more bytes, if any (one at a time: the exchange's).
        self._waiter: asyncio.Future[bool] | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's are not asyncio.Transport subclasses, so no isinstance).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.idle:
            # Nobody asked: these bytes can only be mistaken for the next request's answer.
            self.close()
            return
        self.buffer += data
        self._wake()
        if len(self.buffer) > _HIGH_WATER and self.transport is not None and not self._paused:
            self._paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self._lost = exc
        self._wake()
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
        if not self._writable.is_set():
            # Only when the transport asked to pause: a timer per write is a cost every miss
            # would pay.
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
        # A future and a timer rather than wait_for on an event: this wait is on every
        # exchange, and wait_for's timeout context costs several times as much.
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, _time_out, waiter)
        try:
            arrived = await waiter
        finally:
            timer.cancel()
            self._waiter = None
        if not arrived:
            raise ReadTimedOut("the origin went silent")
        return True

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(True)

    async def wait_for_bytes(self, timeout: float) -> None:
        """Return once bytes are buffered, or the connection has ended."""
        while not self.buffer and await self._more(timeout):
            pass

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

    def whole_head(self) -> list[bytes] | None:
        """The lines of a response head (status line first, the blank line left out), taken
        from the buffer when all of it is there with CRLF line ends; None otherwise, for the
        caller to read it line by line (:meth:`read_line`'s rules, bare LFs included)."""
        end = self.buffer.find(b"\r\n\r\n", 0, _MAX_HEAD + 4)
        if end < 0 or self.buffer.count(b"\n", 0, end) != self.buffer.count(b"\r\n", 0, end):
            return None
        return self.take(end + 4)[:-4].split(b"\r\n")

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


def _time_out(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


async def read_head(
    wire: Wire, timeout: float
) -> tuple[int, int, bytes, list[tuple[bytes, bytes]]]:
    if not wire.buffer:
        await wire.wait_for_bytes(timeout)  # the head usually comes whole in its first read
    lines = wire.whole_head()
    if lines is None:
        lines = [await wire.read_line(timeout)]
        size = len(lines[0])
        while line := await wire.read_line(timeout):
            size += len(line)
            if size > _MAX_HEAD:
                raise BrokenExchange("the response head is too large")
            lines.append(line)
    first = lines[0]
    match = _STATUS_LINE.fullmatch(first)
    if match is None:
        raise BrokenExchange(f"not an HTTP/1.1 status line: {first[:40]!r}")
    if sum(map(len, lines)) > _MAX_HEAD:
        raise BrokenExchange("the response head is too large")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            # Obsolete line folding (RFC 9112 §5.2) is ambiguous between parsers: refused.
            raise BrokenExchange("a folded header line")
        name, colon, value = line.partition(b":")
        if not colon or _TOKEN.fullmatch(name) is None:
            raise BrokenExchange(f"invalid header line {line[:40]!r}")
        headers.append((name, value.strip(b" \t")))
    return int(match[1]), int(match[2]), match[3] or b"", headers


def request_head(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    if _TOKEN.fullmatch(method) is None:
        raise RequestNotSendable(f"invalid method {method!r}")
    names = b"".join([name for name, _ in headers])
    values = b"".join([value for _, value in headers])
    # Tokens run together are one token, and a control byte shows in the values joined: two
    # tests for the whole head; the line at fault is looked for only when one fails.
    if headers and (
        _TOKEN.fullmatch(names) is None
        or not all([name for name, _ in headers])
        or has_control_bytes(values)
    ):
        for name, value in headers:
            if _TOKEN.fullmatch(name) is None:
                raise RequestNotSendable(f"invalid header name {name!r}")
            if has_control_bytes(value):
                raise RequestNotSendable(f"invalid value for header {name!r}")
    head = b"\r\n".join([b"%b: %b" % line for line in headers])
    if head:
        return b"%b %b HTTP/1.1\r\n%b\r\n\r\n" % (method, target, head)
    return b"%b %b HTTP/1.1\r\n\r\n" % (method, target)
