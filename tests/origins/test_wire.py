"""An origin connection's bytes: strict response heads, request heads that cannot be split, and
surplus bytes on an idle connection."""

from __future__ import annotations

import asyncio

import pytest

from edgesim.origins.wire import BrokenExchange, RequestNotSendable, Wire, read_head, request_head


def _wire(data: bytes, *, eof: bool = True) -> Wire:
    wire = Wire()
    wire.data_received(data)
    if eof:
        wire.eof_received()
    return wire


async def test_a_head_is_read_with_names_as_sent_and_values_trimmed() -> None:
    wire = _wire(b"HTTP/1.1 200 OK\r\nX-Name:  v \r\nServer: nginx\r\n\r\nbody")
    minor, status, reason, headers = await read_head(wire, 1.0)
    assert (minor, status, reason) == (1, 200, b"OK")
    assert headers == [(b"X-Name", b"v"), (b"Server", b"nginx")]
    assert bytes(wire.buffer) == b"body"  # the body is left for the framing to read


@pytest.mark.parametrize(
    ("head", "problem"),
    [
        (b"HTTP/2 200 OK\r\n\r\n", "status line"),
        (b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", "folded"),
        (b"HTTP/1.1 200 OK\r\nBad Name: v\r\n\r\n", "invalid header line"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", "too"),
        (b"HTTP/1.1 200 OK\r\nX: a", "ended"),
    ],
    ids=["not-http-1", "folded", "bad-name", "too-large", "cut"],
)
async def test_heads_that_parsers_could_read_differently_are_refused(
    head: bytes, problem: str
) -> None:
    with pytest.raises(BrokenExchange, match=problem):
        await read_head(_wire(head), 1.0)


async def _head_fed_in_pieces(data: bytes) -> tuple[object, bytes]:
    """``read_head`` on ``data`` arriving in small pieces (a byte each for a short head): the
    line-by-line reading."""
    wire = Wire()
    reading = asyncio.ensure_future(read_head(wire, 1.0))
    piece = max(1, len(data) // 64)
    for at in range(0, len(data), piece):
        wire.data_received(data[at : at + piece])
        await asyncio.sleep(0)
    wire.eof_received()
    try:
        return await reading, bytes(wire.buffer)
    except BrokenExchange as problem:
        return f"refused: {problem}", bytes(wire.buffer)


async def _head_at_once(data: bytes) -> tuple[object, bytes]:
    wire = _wire(data)
    try:
        return await read_head(wire, 1.0), bytes(wire.buffer)
    except BrokenExchange as problem:
        return f"refused: {problem}", bytes(wire.buffer)


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 200 OK\r\nA: 1\r\nB:2 \r\n\r\nbody",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\nA: 1\r\n\r\nbody",  # a bare LF ends a line too
        b"HTTP/1.1 200 OK\r\nA: 1\nB: 2\r\n\r\nbody",
        b"HTTP/1.1 200 OK\r\nA: x\ry\r\n\r\nbody",  # a bare CR stays in its value
        b"HTTP/1.1 200 OK\r\n folded\r\n\r\n",
        b"\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * 65_530 + b"\r\n\r\n",
    ],
    ids=["crlf", "no-headers", "bare-lf-first", "bare-lf-later", "bare-cr", "folded", "blank",
         "near-limit"],
)  # fmt: skip
async def test_a_head_read_at_once_reads_as_it_does_in_pieces(data: bytes) -> None:
    at_once = await _head_at_once(data)
    assert at_once == await _head_fed_in_pieces(data)


def test_a_request_head_is_written_as_given() -> None:
    head = request_head(b"GET", b"/a?b", [(b"Host", b"o.example"), (b"X-Tab", b"a\tb")])
    assert head == b"GET /a?b HTTP/1.1\r\nHost: o.example\r\nX-Tab: a\tb\r\n\r\n"


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        (b"GE T", [(b"Host", b"h")]),
        (b"GET", [(b"Ho st", b"h")]),
        (b"GET", [(b"X", b"a\r\nInjected: 1")]),
        (b"GET", [(b"X", b"a\x00")]),
        (b"GET", [(b"A", b"1"), (b"", b"2")]),
        (b"GET", [(b"A", b"1"), (b"B:", b"2")]),
        (b"GET", [(b"A", b"1"), (b"B", b"2\n")]),
    ],
    ids=["method", "name", "crlf-in-value", "nul-in-value", "empty-name", "colon", "lf-later"],
)
def test_a_request_head_that_would_split_is_not_written(
    method: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    with pytest.raises(RequestNotSendable, match="method" if b" " in method else "header"):
        request_head(method, b"/", headers)


def test_a_request_head_names_the_line_at_fault() -> None:
    with pytest.raises(RequestNotSendable, match="header b'B'"):
        request_head(b"GET", b"/", [(b"A", b"1"), (b"B", b"x\ry"), (b"C", b"3")])
    assert request_head(b"GET", b"/", []) == b"GET / HTTP/1.1\r\n\r\n"
    assert request_head(b"GET", b"/", [(b"A", b"x\ty")]) == b"GET / HTTP/1.1\r\nA: x\ty\r\n\r\n"


def test_a_byte_on_an_idle_connection_makes_it_unusable() -> None:
    wire = _wire(b"", eof=False)
    wire.idle = True
    wire.data_received(b"HTTP/1.1 200 OK\r\n")  # an answer nobody asked for
    assert not wire.usable
