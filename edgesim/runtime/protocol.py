"""The worker protocol: how a function pool talks to a worker process, in any language.

A worker is a small program that hosts one function (``python_worker.py`` for Python; a Node.js
worker speaks the same protocol). Adding a runtime means writing one more such program.

Starting a worker
    The pool runs the worker program in a new process group (session), with:

    - ``--in-fd N``: the read end of the *request pipe* (pool -> worker);
    - ``--out-fd M``: the write end of the *reply pipe* (worker -> pool);
    - ``--parent-pid P``: the pool's pid, so the worker can exit if it was orphaned at once
      (0 when the worker runs in a PID namespace of its own, where the pool has no pid);
    - stdout and stderr joined on one *log pipe*: everything the function prints is its log;
    - working directory = the function's code folder, and an environment holding only Lambda's
      reserved variables. The handler name is in ``_HANDLER``, the code folder in
      ``LAMBDA_TASK_ROOT``, the memory size in ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE``.

    The worker should mark both protocol fds close-on-exec so that processes the function starts
    do not keep the pipes open.

Framing
    Every message is a 4-byte big-endian unsigned length ``N`` followed by ``N`` bytes of UTF-8
    JSON encoding one object with a ``"type"`` member. ``N`` never exceeds
    :data:`MAX_MESSAGE_BYTES` (Lambda's 6 MB payload limit plus room for the envelope); a reader
    that sees a larger ``N`` treats the channel as broken and does not read the body.

Messages, worker -> pool
    - ``{"type": "ready", "maxRssBytes"?}``: the handler module is imported; sent once.
    - ``{"type": "init_error", "errorType", "errorMessage", "stackTrace"?, "maxRssBytes"?}``: the
      module or handler could not be loaded (``Runtime.ImportModuleError``,
      ``Runtime.HandlerNotFound``, or the class name of an exception raised at import). The
      worker may exit after sending it; the pool discards it either way.
    - ``{"type": "result", "requestId", "invocationId", "value", "maxRssBytes"?}``: the
      handler's JSON value.
    - ``{"type": "error", "requestId", "invocationId", "errorType", "errorMessage", "stackTrace",
      "maxRssBytes"?}``: the handler raised (or rejected). ``stackTrace`` is a list of strings.
      Two error types are the runtime's own: ``Runtime.MarshalError`` (the value is not JSON) and
      ``Function.ResponseSizeTooLarge`` (the JSON is over 6 MB).

    ``invocationId`` echoes the invoke's. The function shares the worker's process and could
    find the reply pipe, so the pool accepts only the reply that echoes the invocation it sent
    (the function is told its request id, not this id), and a worker that sends anything else,
    or anything at all between invocations, is broken and replaced. The pool decodes no reply
    larger than :data:`edgesim.quotas.FUNCTION_RESULT_MAX_BYTES`: such a result is refused as too
    large, its bytes read and dropped.

    ``maxRssBytes`` is optional: the worker process's own peak resident memory so far, in bytes
    (``VmHWM`` on Linux, ``getrusage`` elsewhere). It covers spikes between the pool's samples.

Messages, pool -> worker
    - ``{"type": "invoke", "requestId", "invocationId", "deadlineMs", "invokedFunctionArn",
      "event"}``: ``deadlineMs`` is the Unix time in milliseconds at which the pool will kill the
      worker (for ``get_remaining_time_in_millis``); ``invocationId`` is a fresh random string the
      reply must echo (the function is not given it). One invocation at a time: the pool sends
      the next invoke only after the reply to the previous one.

Log marks
    So that each invocation's output is attributed to it, the worker flushes its own stdout and
    stderr buffers and then writes a *log mark* to fd 1 before it sends ``ready``/``init_error``
    (mark id ``init``) and before it sends each ``result``/``error`` (mark id = the request id)::

        b"\\x00edgesim-log-end " + <mark id as UTF-8> + b"\\x00"

    The mark is written with a single ``write(2)`` call, so it is never interleaved. Everything on
    the log pipe before the mark is that phase's output; the pool removes the mark.

Ending
    A worker exits when its request pipe reaches end-of-file (the pool closed it or died). The
    pool ends workers on timeout, memory excess, or shutdown with SIGKILL, taking everything the
    function started with them (see ``containment.py``). On Linux a worker is also killed by the
    kernel when the pool's process dies.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass

import msgspec

from edgesim.exceptions import EdgesimError

__all__ = [
    "INIT_MARK_ID",
    "LOG_MARK_END",
    "LOG_MARK_PREFIX",
    "MAX_MESSAGE_BYTES",
    "MAX_PAYLOAD_BYTES",
    "InitError",
    "Oversized",
    "ProtocolError",
    "Ready",
    "Result",
    "WorkerError",
    "WorkerMessage",
    "decode_message",
    "encode_invoke",
    "encode_message",
    "parse_worker_message",
    "read_message",
    "read_reply",
]

# Lambda's synchronous invocation payload limit, in bytes, as its error messages state it.
MAX_PAYLOAD_BYTES = 6_291_556
MAX_MESSAGE_BYTES = MAX_PAYLOAD_BYTES + 64 * 1024

LOG_MARK_PREFIX = b"\x00edgesim-log-end "
LOG_MARK_END = b"\x00"
INIT_MARK_ID = "init"

_LENGTH = struct.Struct(">I")
# An oversized frame is dropped in pieces of this size rather than held whole.
_SKIP_CHUNK = 64 * 1024

# msgspec encodes an event several times faster than the standard library, and decodes a reply
# twice as fast. A reply it refuses and json reads (NaN, 1E400, a lone surrogate's escape) is
# read by json, so a function's value comes out as json alone would give it. Events hold only
# JSON's own types, which both encode alike; json takes what msgspec does not (str subclasses).
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class ProtocolError(EdgesimError):
    """A message broke the framing or the message shapes above."""


@dataclass(frozen=True)
class Oversized:
    """A frame too large to decode: its ``size`` bytes were read and dropped."""

    size: int


@dataclass(frozen=True)
class Ready:
    """The worker imported the handler and waits for invocations."""

    max_rss_bytes: int | None = None


@dataclass(frozen=True)
class InitError:
    """The worker could not load the handler."""

    error_type: str
    error_message: str
    stack_trace: list[str]
    max_rss_bytes: int | None = None


@dataclass(frozen=True)
class Result:
    """The handler returned ``value``."""

    request_id: str
    value: object
    max_rss_bytes: int | None = None
    invocation_id: str | None = None


@dataclass(frozen=True)
class WorkerError:
    """The handler raised, or its value could not be returned."""

    request_id: str
    error_type: str
    error_message: str
    stack_trace: list[str]
    max_rss_bytes: int | None = None
    invocation_id: str | None = None


WorkerMessage = Ready | InitError | Result | WorkerError


def encode_message(message: Mapping[str, object]) -> bytes:
    """Frame ``message``; :class:`ProtocolError` if it is not JSON or too large."""
    try:
        body = _encoder.encode(message)
    except (TypeError, ValueError):
        try:
            body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise ProtocolError(f"message is not JSON: {exc}") from exc
    if len(body) > MAX_MESSAGE_BYTES:
        raise ProtocolError(
            f"message of {len(body)} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit"
        )
    return _LENGTH.pack(len(body)) + body


def encode_invoke(
    request_id: str,
    deadline_ms: int,
    invoked_function_arn: str,
    event: Mapping[str, object],
    *,
    invocation_id: str | None = None,
) -> bytes:
    """Frame an ``invoke`` message (with ``invocationId`` when one is given)."""
    message: dict[str, object] = {"type": "invoke", "requestId": request_id}
    if invocation_id is not None:
        message["invocationId"] = invocation_id
    message.update(
        {"deadlineMs": deadline_ms, "invokedFunctionArn": invoked_function_arn, "event": event}
    )
    return encode_message(message)


async def read_message(reader: asyncio.StreamReader) -> dict[str, object]:
    """Read one framed JSON object.

    Raises :class:`asyncio.IncompleteReadError` at end-of-file (the peer is gone) and
    :class:`ProtocolError` for an oversized or malformed message.
    """
    message, _ = await read_reply(reader, MAX_MESSAGE_BYTES)
    assert not isinstance(message, Oversized)
    return message


async def read_reply(
    reader: asyncio.StreamReader, decode_limit: int
) -> tuple[dict[str, object] | Oversized, int]:
    """Read one framed JSON object, or skip one larger than ``decode_limit`` bytes undecoded;
    with the bytes the frame took from the stream.

    Raises as :func:`read_message` does.
    """
    header = await reader.readexactly(_LENGTH.size)
    (length,) = _LENGTH.unpack(header)
    if length > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {length} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")
    if length > decode_limit:
        left = length
        while left:
            left -= len(await reader.readexactly(min(left, _SKIP_CHUNK)))
        return Oversized(length), _LENGTH.size + length
    body = await reader.readexactly(length)
    return decode_message(body), _LENGTH.size + length


def decode_message(body: bytes) -> dict[str, object]:
    """The JSON object a frame's body holds; :class:`ProtocolError` if it holds none."""
    try:
        message = _decoder.decode(body)
    except (msgspec.DecodeError, ValueError):
        try:
            message = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProtocolError(f"message is not UTF-8 JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise ProtocolError(f"message is a JSON {type(message).__name__}, not an object")
    return message


def parse_worker_message(raw: Mapping[str, object]) -> WorkerMessage:
    """Turn a decoded worker message into its typed form, checking its members."""
    kind = raw.get("type")
    rss = _optional_int(raw, "maxRssBytes")
    if kind == "ready":
        return Ready(max_rss_bytes=rss)
    if kind == "init_error":
        return InitError(
            error_type=_str(raw, "errorType"),
            error_message=_str(raw, "errorMessage"),
            stack_trace=_str_list(raw, "stackTrace"),
            max_rss_bytes=rss,
        )
    if kind == "result":
        if "value" not in raw:
            raise ProtocolError("result message without 'value'")
        return Result(
            request_id=_str(raw, "requestId"),
            value=raw["value"],
            max_rss_bytes=rss,
            invocation_id=_optional_str(raw, "invocationId"),
        )
    if kind == "error":
        return WorkerError(
            request_id=_str(raw, "requestId"),
            error_type=_str(raw, "errorType"),
            error_message=_str(raw, "errorMessage"),
            stack_trace=_str_list(raw, "stackTrace"),
            max_rss_bytes=rss,
            invocation_id=_optional_str(raw, "invocationId"),
        )
    raise ProtocolError(f"unknown message type {kind!r}")


def _str(raw: Mapping[str, object], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str):
        raise ProtocolError(f"{raw.get('type')} message: {key!r} must be a string")
    return value


def _optional_str(raw: Mapping[str, object], key: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise ProtocolError(f"{raw.get('type')} message: {key!r} must be a string")
    return value


def _str_list(raw: Mapping[str, object], key: str) -> list[str]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ProtocolError(f"{raw.get('type')} message: {key!r} must be a list of strings")
    return list(value)


def _optional_int(raw: Mapping[str, object], key: str) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProtocolError(f"{raw.get('type')} message: {key!r} must be a non-negative integer")
    return value
