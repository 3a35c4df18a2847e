"""The Python worker's end of the protocol, in this process: framing on a pipe pair, the log
mark, the peak memory. The worker tests (test_python_worker.py) hold it to the protocol from
outside."""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator

import psutil
import pytest

from edgesim.runtime import protocol, python_protocol
from edgesim.runtime.python_protocol import Channel


@pytest.fixture
def pipes() -> Iterator[tuple[Channel, int, int]]:
    """A channel on two fresh pipes, with the pool's ends: (channel, pool writes, pool reads)."""
    request_r, request_w = os.pipe()
    reply_r, reply_w = os.pipe()
    yield Channel(request_r, reply_w), request_w, reply_r
    for fd in (request_r, request_w, reply_r, reply_w):
        try:
            os.close(fd)
        except OSError:
            pass


def test_protocol_constants_agree_with_the_pool_side() -> None:
    # The worker cannot import edgesim, so it carries its own copies.
    assert python_protocol.MAX_PAYLOAD_BYTES == protocol.MAX_PAYLOAD_BYTES
    assert python_protocol.MAX_MESSAGE_BYTES == protocol.MAX_MESSAGE_BYTES
    assert python_protocol.LOG_MARK_PREFIX == protocol.LOG_MARK_PREFIX
    assert python_protocol.LOG_MARK_END == protocol.LOG_MARK_END
    assert python_protocol.INIT_MARK_ID == protocol.INIT_MARK_ID


def test_the_channel_reads_the_pools_frames_and_the_pool_reads_its(
    pipes: tuple[Channel, int, int],
) -> None:
    channel, pool_w, pool_r = pipes
    invoke = {"type": "invoke", "requestId": "r", "event": {"text": "é"}}
    os.write(pool_w, protocol.encode_message(invoke))
    assert channel.receive() == invoke
    channel.send({"type": "ready", "maxRssBytes": 1})
    (length,) = struct.unpack(">I", os.read(pool_r, 4))
    assert json.loads(os.read(pool_r, length)) == {"type": "ready", "maxRssBytes": 1}


def test_a_body_sent_encoded_goes_out_as_it_is(pipes: tuple[Channel, int, int]) -> None:
    channel, _, pool_r = pipes
    channel.send_body(b'{"type":"result","value":1}')
    assert os.read(pool_r, 64) == b'\x00\x00\x00\x1b{"type":"result","value":1}'


@pytest.mark.parametrize("sent", [b"", b"\x00\x00", b"\x00\x00\x00\x09{}"])
def test_the_end_of_the_pipe_is_none_even_mid_frame(
    pipes: tuple[Channel, int, int], sent: bytes
) -> None:
    channel, pool_w, _ = pipes
    os.write(pool_w, sent)
    os.close(pool_w)
    assert channel.receive() is None


def test_a_frame_over_the_limit_ends_the_worker_unread(pipes: tuple[Channel, int, int]) -> None:
    channel, pool_w, _ = pipes
    os.write(pool_w, struct.pack(">I", python_protocol.MAX_MESSAGE_BYTES + 1) + b"{}")
    with pytest.raises(SystemExit, match="over the limit"):
        channel.receive()
    # The body was left in the pipe.
    assert os.read(channel.in_fd, 8) == b"{}"


def test_a_frame_that_is_not_an_object_ends_the_worker(pipes: tuple[Channel, int, int]) -> None:
    channel, pool_w, _ = pipes
    os.write(pool_w, struct.pack(">I", 2) + b"[]")
    with pytest.raises(SystemExit, match="not a JSON object"):
        channel.receive()


def test_the_log_mark_follows_what_was_printed(capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    print("buffered", end="")
    python_protocol.write_log_mark("request-1")
    out = capfdbinary.readouterr().out
    assert out == b"buffered" + protocol.LOG_MARK_PREFIX + b"request-1" + protocol.LOG_MARK_END


def test_the_peak_memory_keeps_a_spike_already_freed() -> None:
    resident = psutil.Process().memory_info().rss
    spike = b"\x01" * (64 << 20)  # written, so resident
    del spike
    # Short of the full 64 MB: the kernel's resident counts lag by up to a few hundred pages.
    assert python_protocol.max_rss_bytes() >= resident + (48 << 20)
