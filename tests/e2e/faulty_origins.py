"""Origins for the fault soak, as raw asyncio socket servers that misbehave on purpose.

No HTTP library stands between these servers and the wire, so they can send what no library
would: a body longer than its ``Content-Length``, a stray CRLF, a body on a HEAD answer, an
answer nobody asked for, a body cut short, a reset mid-body, a header with a control byte, a
head over CloudFront's 20,480 bytes, or no answer at all.

The request path picks the behaviour: ``/o/<fault>/<n>`` misbehaves as :data:`FAULTS` names; any
other path gets a well-behaved answer. Every answer's body is :func:`body_for` its own request
target (the target repeated), so a viewer that receives bytes meant for another exchange, or the
surplus of a faulty one (which carries :data:`POISON`), sees a body that is not its URL's.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["FAULTS", "POISON", "RawOrigin", "body_for", "is_chunked"]

FAULTS = ("longer", "crlf", "headbody", "second", "short", "reset", "ctl", "bighead")
# The marker of bytes no viewer asked for: surplus after a body, an answer nobody requested.
POISON = "/poison/0"
# Body sizes by request number: one packet, a few, and more than one read of the edge's client.
SIZES = (200, 1_500, 16_000, 70_000)
# An origin closes keep-alive connections idle this long: past the end of any soak, so a
# connection still open when the soak has settled is one the edge kept.
IDLE_CLOSE_S = 600.0
_MAX_HEAD = 64 * 1024


def body_for(target: str) -> bytes:
    """The well-behaved body for ``target``: the target repeated, its size set by ``<n>``."""
    last = target.rsplit("/", 1)[-1]
    size = SIZES[int(last) % len(SIZES)] if last.isdigit() else SIZES[0]
    unit = f"{target}|".encode()
    return (unit * (size // len(unit) + 1))[: max(size, len(unit))]


def is_chunked(target: str) -> bool:
    """Whether the well-behaved answer for ``target`` is sent chunked (every third one)."""
    last = target.rsplit("/", 1)[-1]
    return last.isdigit() and int(last) % 3 == 0


def _head(status: str, lines: list[str]) -> bytes:
    return ("\r\n".join([f"HTTP/1.1 {status}", *lines]) + "\r\n\r\n").encode("latin-1")


def _length_answer(target: str, extra: list[str] | None = None) -> tuple[bytes, bytes]:
    body = body_for(target)
    lines = ["Content-Type: text/plain", f"Content-Length: {len(body)}", *(extra or [])]
    return _head("200 OK", lines), body


def _chunked(body: bytes) -> bytes:
    chunks = [body[i : i + 4096] for i in range(0, len(body), 4096)]
    return b"".join(b"%X\r\n%b\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


@dataclass
class RawOrigin:
    """A loopback origin on a free port; ``silent`` ones read requests and never answer."""

    silent: bool = False
    port: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # Each open connection's last exchange: ``good``, a fault, or ``new`` (none yet).
    _last: dict[asyncio.StreamWriter, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def open_connections(self) -> Counter[str]:
        """The connections open now, by their last exchange."""
        return Counter(self._last.values())

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", 0, limit=_MAX_HEAD, backlog=1024
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        # Hanging up ends every handler on its own; cancelling them upsets asyncio's streams.
        for writer in list(self._last):
            writer.transport.abort()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._last[writer] = "new"
        self.connections += 1
        try:
            while await self._exchange(reader, writer):
                pass
        except (
            ConnectionError,
            ValueError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ):
            pass
        except TimeoutError:
            pass  # idle past IDLE_CLOSE_S
        finally:
            self._tasks.discard(task)
            del self._last[writer]
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; ``False`` once the connection is to be closed."""
        async with asyncio.timeout(IDLE_CLOSE_S):
            head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        soak = [
            line.split(":", 1)[1].strip()
            for line in head.decode("latin-1").split("\r\n")[1:]
            if line.lower().startswith("x-soak:")
        ]
        parts = target.split("/")
        fault = parts[2] if len(parts) > 3 and parts[1] == "o" else "good"
        self.requests["silent" if self.silent else fault] += 1
        self._last[writer] = fault
        if self.silent:
            await reader.read()  # until the edge gives up and hangs up
            return False
        extra = [f"X-Soak-Seen: {soak[0]}"] if soak else []
        return await self._answer(writer, method, target, fault, extra)

    async def _answer(
        self, writer: asyncio.StreamWriter, method: str, target: str, fault: str, extra: list[str]
    ) -> bool:
        head, body = _length_answer(target, extra)
        if fault == "good" and is_chunked(target):
            lines = ["Content-Type: text/plain", "Transfer-Encoding: chunked", *extra]
            head = _head("200 OK", lines)
            body = _chunked(body)
        if method == "HEAD" and fault != "headbody":
            body = b""
        if fault == "ctl":
            head = head[:-2] + b"X-Bad: a\x01b\r\n\r\n"
        elif fault == "bighead":
            big = "".join(f"X-Big-{i}: {'b' * 8000}\r\n" for i in range(3)).encode()
            head = head[:-2] + big + b"\r\n"
        elif fault == "longer":
            body += b"HTTP/1.1 200 OK\r\n" + POISON.encode()
        elif fault == "crlf":
            body += b"\r\n"
        elif fault == "second":
            poison_head, poison_body = _length_answer(POISON)
            body += poison_head + poison_body
        elif fault in ("short", "reset"):
            writer.write(head + body[: len(body) // 2])
            await writer.drain()
            if fault == "reset":
                # Give the edge time to pass the head on, then reset (RST, not FIN).
                await asyncio.sleep(0.05)
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
            return False
        writer.write(head + body)
        await writer.drain()
        return True
