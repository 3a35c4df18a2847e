"""The fault soak's viewers: a small raw HTTP/1.1 load generator over asyncio, and its tallies.

Raw sockets rather than an HTTP library, for two reasons: a library would hide what the soak
must see (a body cut short with the connection closed, stray bytes before the next answer on a
kept-alive connection), and it would cost the test process more CPU than the edge it measures.

Each :class:`Case` is one class of request with the statuses, ``X-Cache`` labels and body it may
get. :func:`run_load` sends a plan of cases over ``concurrency`` kept-alive connections and
tallies every answer by class; a request that gets no status line within
:data:`REQUEST_TIMEOUT_S` is unanswered. :class:`StalledViewer` is a viewer that sends half a
request line (or nothing) and waits for the edge to give up on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

__all__ = ["Answer", "Case", "StalledViewer", "Tally", "run_load"]

REQUEST_TIMEOUT_S = 30.0
_MAX_HEAD = 256 * 1024
_PROBLEMS_KEPT = 5


@dataclass(frozen=True)
class Answer:
    """What a viewer received for one request."""

    status: int
    headers: dict[str, str]  # names lower-cased; a repeated header keeps its last value
    body: bytes
    whole: bool  # the body ended where its framing said
    closed: bool  # the connection cannot carry another request

    @property
    def x_cache(self) -> str:
        """The ``X-Cache`` label's first word (``Hit``, ``Miss``, ``LambdaExecutionError``...)."""
        return self.headers.get("x-cache", "-").split(" ", 1)[0]


# Returns what is wrong with an answer to a path, or None.
Check = Callable[[str, Answer], str | None]


@dataclass(frozen=True)
class Case:
    """A class of request: how to build its nth path and what its answer may be."""

    name: str
    weight: int
    path: Callable[[int], str]
    statuses: frozenset[int]
    labels: frozenset[str]  # allowed X-Cache first words
    check: Check | None = None
    method: str = "GET"

    def problem(self, path: str, answer: Answer) -> str | None:
        if answer.status not in self.statuses:
            return f"status {answer.status}, expected {sorted(self.statuses)}"
        if answer.x_cache not in self.labels:
            return f"X-Cache {answer.headers.get('x-cache')!r}, expected {sorted(self.labels)}"
        return None if self.check is None else self.check(path, answer)


@dataclass
class Tally:
    """Answers to one class of request."""

    sent: int = 0
    answered: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    short: int = 0  # answers whose body was cut short
    problems: int = 0  # wrong status, label or body, or no answer
    examples: list[str] = field(default_factory=list)

    def note(self, problem: str) -> None:
        self.problems += 1
        if len(self.examples) < _PROBLEMS_KEPT:
            self.examples.append(problem)


class _Connection:
    """One viewer's kept-alive connection to the edge, reopened when the edge closes it."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str) -> Answer:
        """Send one request and read its answer; raises ``ConnectionError`` or ``ValueError``
        (the edge closed before a whole status line and head, or sent something not HTTP)."""
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(
                self._host, self._port, limit=_MAX_HEAD
            )
        reader, writer = self._reader, self._writer
        try:
            writer.write(f"{method} {path} HTTP/1.1\r\nHost: soak.test\r\n\r\n".encode())
            answer = await _read_answer(reader, head_request=method == "HEAD")
        except BaseException:
            self.close()
            raise
        if answer.closed:
            self.close()
        return answer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


async def _read_answer(reader: asyncio.StreamReader, *, head_request: bool) -> Answer:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as cut:
        raise ConnectionError(f"closed after {len(cut.partial)} bytes of the head") from cut
    lines = head[:-4].decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
        raise ValueError(f"not a status line: {lines[0][:60]!r}")
    status = int(rest[:3])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    closed = "close" in headers.get("connection", "").lower()
    if head_request or status in (204, 304) or status < 200:
        return Answer(status, headers, b"", True, closed)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, whole = await _read_chunked(reader)
    elif "content-length" in headers:
        try:
            body, whole = await reader.readexactly(int(headers["content-length"])), True
        except asyncio.IncompleteReadError as cut:
            body, whole = cut.partial, False
    else:
        body, whole, closed = await reader.read(), True, True
    return Answer(status, headers, body, whole, closed or not whole)


async def _read_chunked(reader: asyncio.StreamReader) -> tuple[bytes, bool]:
    body = bytearray()
    try:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass
                return bytes(body), True
            body += await reader.readexactly(size)
            if await reader.readexactly(2) != b"\r\n":
                raise ValueError("a chunk longer than its size")
    except asyncio.IncompleteReadError as cut:
        body += cut.partial
        return bytes(body), False


async def run_load(
    host: str,
    port: int,
    plan: list[tuple[Case, int]],
    *,
    concurrency: int,
    tallies: dict[str, Tally],
) -> None:
    """Send every ``(case, n)`` of ``plan`` over ``concurrency`` connections, tallying answers.

    Cancel it to stop early: what was in flight is counted as sent and unanswered.
    """
    work: Iterator[tuple[Case, int]] = iter(plan)

    async def viewer() -> None:
        connection = _Connection(host, port)
        try:
            for case, n in work:
                await _one(connection, case, n, tallies.setdefault(case.name, Tally()))
        finally:
            connection.close()

    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(viewer())


async def _one(connection: _Connection, case: Case, n: int, tally: Tally) -> None:
    path = case.path(n)
    tally.sent += 1
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            answer = await connection.request(case.method, path)
    except asyncio.CancelledError:
        tally.note(f"{case.method} {path}: unanswered (the soak was stopped)")
        raise
    except TimeoutError:
        connection.close()
        tally.note(f"{case.method} {path}: unanswered within {REQUEST_TIMEOUT_S:g} s")
        return
    except (OSError, ValueError) as error:
        tally.note(f"{case.method} {path}: unanswered ({error})")
        return
    tally.answered += 1
    tally.statuses[answer.status] += 1
    tally.short += not answer.whole
    problem = case.problem(path, answer)
    if problem is not None:
        tally.note(f"{case.method} {path}: {problem}")


@dataclass
class StalledViewer:
    """A viewer that opens a connection, sends ``sent`` (maybe nothing) and then waits."""

    sent: bytes
    opened: float = 0.0
    closed_after: float | None = None  # by the edge
    left_after: float | None = None  # by the soak, tired of waiting
    received: bytes = b""

    async def run(self, host: str, port: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        self.opened = time.monotonic()
        try:
            if self.sent:
                writer.write(self.sent)
            while chunk := await reader.read(4096):
                self.received += chunk
            self.closed_after = time.monotonic() - self.opened
        except ConnectionError:
            self.closed_after = time.monotonic() - self.opened
        except asyncio.CancelledError:
            self.left_after = time.monotonic() - self.opened
            raise
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def state(self) -> str:
        """How the edge treated it, for the table."""
        if self.closed_after is None:
            held = self.left_after or time.monotonic() - self.opened
            return f"still open after {held:.0f} s"
        answer = self.received.split(b"\r\n", 1)[0].decode("latin-1") or "no answer"
        return f"closed after {self.closed_after:.1f} s ({answer})"
