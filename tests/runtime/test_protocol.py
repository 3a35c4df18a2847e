"""The worker protocol's framing and message shapes."""

from __future__ import annotations

import asyncio
import json
import struct

import pytest

from edgesim.runtime.protocol import (
    MAX_MESSAGE_BYTES,
    InitError,
    ProtocolError,
    Ready,
    Result,
    WorkerError,
    decode_message,
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
        encode_message({"type": "invoke", "event": object()})


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


@pytest.mark.parametrize(
    "value",
    [
        '{"status": NaN}',
        '{"status": 1E400}',
        '{"body": "\\ud800 alone"}',
        '{"status": 123456789012345678901234567890}',
        '{"a": 1, "a": 2}',
        '{"body": "caf\u00e9 \\u2028", "n": -0.0}',
    ],
)
def test_a_reply_decodes_as_the_standard_library_reads_it(value: str) -> None:
    # What a function returns must reach CloudFront's checks as json would read it, including
    # what the fast decoder refuses.
    body = value.encode("utf-8")
    assert repr(decode_message(body)) == repr(json.loads(value))


def test_an_event_encodes_as_the_standard_library_writes_it() -> None:
    class Name(str):
        pass

    event = {"uri": "/caf\u00e9", "n": [1, True, None], "k": Name("v"), "big": 10**30}
    body = encode_message(event)[4:]
    assert body == json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


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
