"""The worker protocol's framing and message shapes, and the log-mark splitter."""

from __future__ import annotations

import asyncio
import json
import struct

import pytest

from edgesim.runtime.logs import LogCapture
from edgesim.runtime.protocol import (
    LOG_MARK_END,
    LOG_MARK_PREFIX,
    MAX_MESSAGE_BYTES,
    InitError,
    ProtocolError,
    Ready,
    Result,
    WorkerError,
    encode_invoke,
    encode_message,
    parse_worker_message,
    read_message,
)


def reader_with(data: bytes, *, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


def mark(mark_id: str) -> bytes:
    return LOG_MARK_PREFIX + mark_id.encode() + LOG_MARK_END


async def test_a_message_is_length_prefixed_utf8_json() -> None:
    frame = encode_message({"type": "ready", "note": "héllo"})
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    assert json.loads(frame[4:].decode("utf-8")) == {"type": "ready", "note": "héllo"}
    reader = reader_with(frame + encode_message({"type": "second"}))
    assert await read_message(reader) == {"type": "ready", "note": "héllo"}
    assert await read_message(reader) == {"type": "second"}
    with pytest.raises(asyncio.IncompleteReadError):
        await read_message(reader)


async def test_invoke_message_carries_the_request() -> None:
    frame = encode_invoke("rid-1", 1_700_000_000_000, "arn:x", {"Records": []})
    assert await read_message(reader_with(frame)) == {
        "type": "invoke",
        "requestId": "rid-1",
        "deadlineMs": 1_700_000_000_000,
        "invokedFunctionArn": "arn:x",
        "event": {"Records": []},
    }


def test_encoding_refuses_oversized_or_non_json_messages() -> None:
    with pytest.raises(ProtocolError, match="exceeds"):
        encode_message({"type": "invoke", "event": "x" * MAX_MESSAGE_BYTES})
    with pytest.raises(ProtocolError, match="not JSON"):
        encode_message({"type": "invoke", "event": {1, 2}})


async def test_an_oversized_length_is_refused_before_the_body_is_read() -> None:
    reader = reader_with(struct.pack(">I", MAX_MESSAGE_BYTES + 1), eof=False)
    with pytest.raises(ProtocolError, match="exceeds"):
        await read_message(reader)


@pytest.mark.parametrize(
    ("body", "problem"),
    [(b"[1, 2]", "not an object"), (b"{not json", "not UTF-8 JSON"), (b"\xff\xfe", "UTF-8")],
)
async def test_a_malformed_body_is_a_protocol_error(body: bytes, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem):
        await read_message(reader_with(struct.pack(">I", len(body)) + body))


async def test_eof_in_the_middle_of_a_frame_is_an_incomplete_read() -> None:
    frame = encode_message({"type": "ready"})
    with pytest.raises(asyncio.IncompleteReadError):
        await read_message(reader_with(frame[:-2]))


def test_worker_messages_parse_into_their_types() -> None:
    assert parse_worker_message({"type": "ready", "maxRssBytes": 1024}) == Ready(1024)
    assert parse_worker_message({"type": "ready"}) == Ready(None)
    assert parse_worker_message(
        {"type": "init_error", "errorType": "Runtime.ImportModuleError", "errorMessage": "m"}
    ) == InitError("Runtime.ImportModuleError", "m", [])
    assert parse_worker_message({"type": "result", "requestId": "r", "value": None}) == Result(
        "r", None
    )
    assert parse_worker_message(
        {
            "type": "error",
            "requestId": "r",
            "errorType": "ValueError",
            "errorMessage": "boom",
            "stackTrace": ['  File "index.py", line 1, in handler\n'],
            "maxRssBytes": 5,
        }
    ) == WorkerError("r", "ValueError", "boom", ['  File "index.py", line 1, in handler\n'], 5)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"type": "hello"}, "unknown message type 'hello'"),
        ({}, "unknown message type None"),
        ({"type": "result", "requestId": "r"}, "without 'value'"),
        ({"type": "result", "requestId": 7, "value": 1}, "'requestId' must be a string"),
        ({"type": "error", "requestId": "r", "errorType": "E"}, "'errorMessage' must be"),
        (
            {"type": "error", "requestId": "r", "errorType": "E", "errorMessage": "m",
             "stackTrace": "line"},
            "'stackTrace' must be a list of strings",
        ),
        ({"type": "ready", "maxRssBytes": -1}, "'maxRssBytes' must be a non-negative integer"),
        ({"type": "ready", "maxRssBytes": True}, "'maxRssBytes' must be a non-negative integer"),
    ],
)  # fmt: skip
def test_malformed_worker_messages_are_protocol_errors(
    raw: dict[str, object], problem: str
) -> None:
    with pytest.raises(ProtocolError, match=problem):
        parse_worker_message(raw)


def fed(*chunks: bytes, close: bool = False) -> LogCapture:
    capture = LogCapture()
    for chunk in chunks:
        capture.data_received(chunk)
    if close:
        capture.connection_lost(None)
    return capture


async def test_log_marks_split_output_into_phases() -> None:
    capture = fed(b"loading\n" + mark("init") + b"one\ntwo\r\nthree" + mark("r1") + b"four\n")
    assert await capture.phase("init") == ["loading"]
    assert await capture.phase("r1") == ["one", "two", "three"]
    capture.connection_lost(None)
    assert capture.rest() == ["four"]


async def test_a_mark_split_across_reads_is_still_found() -> None:
    whole = b"alpha\n" + mark("request-42") + b"omega\n"
    for cut in range(1, len(whole)):
        capture = fed(whole[:cut], whole[cut:], close=True)
        assert await capture.phase("request-42") == ["alpha"], cut
        assert capture.rest() == ["omega"]


async def test_a_fake_mark_merges_into_the_real_phase() -> None:
    capture = fed(b"a\n" + mark("spoof") + b"b\n" + mark("real"))
    assert await capture.phase("real") == ["a", "b"]


async def test_a_mark_prefix_without_an_end_is_plain_output() -> None:
    text = LOG_MARK_PREFIX + b"x" * 100 + b"\nafter\n"
    capture = fed(text + mark("r"))
    lines = await capture.phase("r")
    assert lines[-1] == "after"
    assert "x" * 100 in lines[0]


async def test_phase_gives_up_waiting_and_returns_what_arrived() -> None:
    capture = fed(b"partial output\n")
    assert await capture.phase("never", timeout_s=0.05) == ["partial output"]


async def test_output_past_the_cap_is_dropped_with_a_note() -> None:
    capture = LogCapture(cap_bytes=10)
    capture.data_received(b"0123456789abcdef\n" + mark("r"))
    assert await capture.phase("r") == [
        "0123456789",
        "[edgesim] 7 more bytes of output were dropped",
    ]


async def test_data_arriving_while_waiting_completes_the_phase() -> None:
    capture = LogCapture()

    async def feed() -> None:
        await asyncio.sleep(0)
        capture.data_received(b"late line\n")
        await asyncio.sleep(0)
        capture.data_received(mark("r"))

    lines, _ = await asyncio.gather(capture.phase("r"), feed())
    assert lines == ["late line"]


async def test_wait_closed_reports_whether_the_pipe_ended() -> None:
    capture = LogCapture()
    assert await capture.wait_closed(0.01) is False
    capture.connection_lost(None)
    assert await capture.wait_closed(0.01) is True
