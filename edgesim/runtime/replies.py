"""The reply pipe, read as it arrives: frames are cut out of the bytes by the pipe's protocol
and handed to the one exchange waiting for them, with no reader task in between.

A :class:`StreamReader` would cost the waiting exchange a task wake-up per ``readexactly`` and
leave bytes nobody asked for out of sight. Here the pipe knows whether an exchange waits: while
one does, the first complete frame resolves it; while none does, any byte (or the pipe's end)
is reported to the idle watch, since a worker that is not asked must stay silent. A frame
larger than the decode limit is dropped as it arrives, never held whole.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from dataclasses import dataclass

from edgesim.runtime.protocol import MAX_MESSAGE_BYTES, Oversized, ProtocolError, decode_message

__all__ = ["Expired", "PipeEnded", "ReplyPipe", "WaitResult", "expire"]

_LENGTH = struct.Struct(">I")


@dataclass(frozen=True)
class PipeEnded:
    """The reply pipe closed before a whole frame came: the worker is dying or dead."""


@dataclass(frozen=True)
class Expired:
    """The wait ran out of time: :func:`expire` answered it, not the worker."""


WaitResult = dict[str, object] | Oversized | PipeEnded | ProtocolError | Expired


def expire(waiter: asyncio.Future[WaitResult]) -> None:
    """Answer ``waiter`` with :class:`Expired` unless the worker answered first (a timer's
    callback: cheaper on every invocation than a timeout scope around the wait)."""
    if not waiter.done():
        waiter.set_result(Expired())


class ReplyPipe(asyncio.Protocol):
    """The protocol of a worker's reply pipe (one exchange at a time)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._waiter: asyncio.Future[WaitResult] | None = None
        self._decode_limit = 0
        self._skipping = 0  # bytes of an oversized frame still to drop
        self._skipped_size = 0
        self.received = 0
        self.consumed = 0  # bytes taken as frames; any beyond them were not asked for
        self.ended = False
        self.on_unasked: Callable[[], None] | None = None
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def wait(self, decode_limit: int) -> asyncio.Future[WaitResult]:
        """A future for the next frame (decoded when at most ``decode_limit`` bytes)."""
        waiter: asyncio.Future[WaitResult] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        self._decode_limit = decode_limit
        self._advance()
        return waiter

    def stop_waiting(self) -> None:
        self._waiter = None

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if self._skipping:
            dropped = min(self._skipping, len(data))
            self._skipping -= dropped
            self.consumed += dropped
            data = data[dropped:]
            if not self._skipping:
                self._resolve(Oversized(self._skipped_size))
        self._buffer += data
        if self._waiter is None:
            if self._buffer:
                self._unasked()
            return
        self._advance()

    def eof_received(self) -> bool:
        self._end()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._end()

    def _end(self) -> None:
        self.ended = True
        if self._waiter is not None:
            self._resolve(PipeEnded())
        else:
            self._unasked()

    def _unasked(self) -> None:
        if self.on_unasked is not None:
            self.on_unasked()

    def _advance(self) -> None:
        buffer = self._buffer
        if self._waiter is None or self._skipping or len(buffer) < _LENGTH.size:
            if self.ended and self._waiter is not None and not self._skipping:
                self._resolve(PipeEnded())
            return
        (length,) = _LENGTH.unpack_from(buffer)
        if length > MAX_MESSAGE_BYTES:
            self._resolve(
                ProtocolError(
                    f"message of {length} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit"
                )
            )
            return
        end = _LENGTH.size + length
        if length > self._decode_limit:
            held = min(len(buffer), end)
            del buffer[:held]
            self.consumed += held
            self._skipping, self._skipped_size = end - held, length
            if not self._skipping:
                self._resolve(Oversized(length))
            return
        if len(buffer) < end:
            if self.ended:
                self._resolve(PipeEnded())
            return
        body = bytes(buffer[_LENGTH.size : end])
        del buffer[:end]
        self.consumed += end
        self._resolve(_decode(body))

    def _resolve(self, result: WaitResult) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(result)


def _decode(body: bytes) -> dict[str, object] | ProtocolError:
    try:
        return decode_message(body)
    except ProtocolError as error:
        return error
