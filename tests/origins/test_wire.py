"""An origin connection's bytes: strict response heads, request heads that cannot be split, and
surplus bytes on an idle connection."""

from __future__ import annotations

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
    ],
    ids=["method", "name", "crlf-in-value", "nul-in-value"],
)
def test_a_request_head_that_would_split_is_not_written(
    method: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    with pytest.raises(RequestNotSendable):
        request_head(method, b"/", headers)


def test_a_byte_on_an_idle_connection_makes_it_unusable() -> None:
    wire = _wire(b"", eof=False)
    wire.idle = True
    wire.data_received(b"HTTP/1.1 200 OK\r\n")  # an answer nobody asked for
    assert not wire.usable
