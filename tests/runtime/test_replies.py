"""The reply pipe's protocol: frames to the waiting exchange, oversized frames dropped, bytes
nobody asked for reported."""

from __future__ import annotations

import json
import struct

from edgesim.runtime.protocol import MAX_MESSAGE_BYTES, Oversized, ProtocolError
from edgesim.runtime.replies import PipeEnded, ReplyPipe


def frame(message: object) -> bytes:
    body = json.dumps(message).encode()
    return struct.pack(">I", len(body)) + body


async def test_a_frame_split_across_reads_resolves_the_waiting_exchange() -> None:
    pipe = ReplyPipe()
    waiter = pipe.wait(1000)
    data = frame({"type": "ready"})
    pipe.data_received(data[:3])
    assert not waiter.done()
    pipe.data_received(data[3:])
    assert await waiter == {"type": "ready"}
    assert pipe.consumed == pipe.received == len(data)


async def test_a_frame_over_the_decode_limit_is_dropped_as_it_arrives() -> None:
    pipe = ReplyPipe()
    waiter = pipe.wait(10)
    data = frame({"type": "result", "value": "x" * 100})
    pipe.data_received(data[:20])
    pipe.data_received(data[20:])
    assert await waiter == Oversized(len(data) - 4)
    assert pipe.consumed == len(data)


async def test_bytes_nobody_asked_for_are_reported() -> None:
    pipe = ReplyPipe()
    told: list[bool] = []
    pipe.on_unasked = lambda: told.append(True)
    pipe.data_received(b"x")
    assert told == [True] and pipe.received > pipe.consumed


async def test_an_end_or_an_oversized_length_ends_the_wait() -> None:
    pipe = ReplyPipe()
    waiter = pipe.wait(1000)
    pipe.data_received(struct.pack(">I", MAX_MESSAGE_BYTES + 1))
    assert isinstance(await waiter, ProtocolError)
    ended = ReplyPipe()
    waiter = ended.wait(1000)
    ended.data_received(b"\x00\x00")
    ended.eof_received()
    assert await waiter == PipeEnded()
