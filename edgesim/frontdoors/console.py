"""What ``edgesim serve`` prints: access lines, function logs and its own messages, correlated.

A page load can run dozens of functions, and their CloudWatch-style lines arrive interleaved with
other requests'. So every line gets a time and a level, and each function line carries the
CloudFront request id of the request it ran for, which the access line shows as well (in the
text format, its first eight characters, which also start the ``X-Amz-Cf-Id`` header and the
error page's ``Request ID``). ``json`` writes one object per line for machines; ``quiet`` keeps
the access lines and the errors; colour is used only on a terminal, and never under
``NO_COLOR``.

Log lines reach a :data:`~edgesim.types.LogSink` without a request id. :class:`CorrelatedRuntime`
sits between an edge and its function runtime and notes which call is running
(:func:`current_call`), so each function line is filed under that call's request id. It is a
:class:`~edgesim.runtime.calls.RecordingInvoker`, as the test kit's recorder is; that module says
why a line the pipeline logs after a call returned (a refused result's ``Validation error``)
still lands on the call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import IntEnum
from typing import Literal, TextIO

from edgesim.http import EdgeRequest
from edgesim.pages import XCache
from edgesim.pipeline import EdgeResult
from edgesim.runtime.calls import FunctionCall, RecordingInvoker, current_call

__all__ = [
    "LOG_FORMATS",
    "Console",
    "CorrelatedRuntime",
    "FunctionCall",
    "Level",
    "LogFormat",
    "current_call",
    "line_level",
]

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
SHORT_ID = 8


class Level(IntEnum):
    """A line's level; the text format shows :attr:`label`."""

    DEBUG = 10
    INFO = 20
    WARNING = 30
    ERROR = 40

    @property
    def label(self) -> str:
        """Five characters at most, so text lines stay aligned."""
        return "WARN" if self is Level.WARNING else self.name


class CorrelatedRuntime(RecordingInvoker):
    """``edgesim serve``'s :class:`~edgesim.runtime.calls.RecordingInvoker`: it notes each call
    as the task's current one, so :meth:`Console.function_log` files the worker's lines under the
    call's CloudFront request id; ``on_call`` (the dev error page's) sees each new call."""


# Lambda's own level markers at the start of a line, tried in this order: Python's logging
# format, Node.js's console format, CloudFront's validation notes, and the lines the runtime
# writes when a function fails. One pattern, so a line costs one match rather than four.
_LEVEL_MARK = re.compile(
    r"\[(?P<python>DEBUG|INFO|WARNING|ERROR|CRITICAL)\]"
    r"|\S+\t\S+\t(?P<node>TRACE|DEBUG|INFO|WARN|ERROR|FATAL)\t"
    r"|/aws/cloudfront/LambdaEdge/\S+ \S+ (?P<cloudfront>ERROR|WARNING) "
    r"|(?P<failure>RequestId: \S+ Error: |\S+ \S+ Task timed out after |Runtime\.\w+Error)"
)
_LEVELS = {
    "TRACE": Level.DEBUG,
    "DEBUG": Level.DEBUG,
    "INFO": Level.INFO,
    "WARN": Level.WARNING,
    "WARNING": Level.WARNING,
    "ERROR": Level.ERROR,
    "CRITICAL": Level.ERROR,
    "FATAL": Level.ERROR,
}


def line_level(line: str, previous: Level = Level.INFO) -> Level:
    """The level a function's log line states; a continuation (a stack frame, an indented or
    ``Traceback`` line) keeps the ``previous`` line's, anything else is INFO."""
    found = _LEVEL_MARK.match(line)
    if found is not None:
        marker = found.lastgroup
        return Level.ERROR if marker == "failure" else _LEVELS[found[marker or 0]]
    if line[:1].isspace() or line.startswith("Traceback ("):
        return previous
    return Level.INFO


_LABELS = {level: f"{level.label:<5}" for level in Level}
_SHORT_X_CACHE = {value.value: value.short for value in XCache}
_COLORS = {Level.DEBUG: "2", Level.INFO: "36", Level.WARNING: "33", Level.ERROR: "31;1"}


class Console:
    """Writes ``edgesim serve``'s lines to ``stream`` (standard output by default).

    ``color`` None means: only when ``stream`` is a terminal and ``NO_COLOR`` is not set.
    ``now`` gives the time in seconds since the epoch (tests pin it).
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        fmt: LogFormat = "text",
        quiet: bool = False,
        color: bool | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._stream = stream
        self.fmt = fmt
        self.quiet = quiet
        if color is None:
            color = fmt == "text" and _is_terminal(self.stream) and not os.environ.get("NO_COLOR")
        self.color = color
        self._now = now
        self._lock = threading.Lock()  # the logging handler may write from other threads
        # The text format's time to the second, remade when the second changes: every access
        # line needs one, and formatting a date costs more than the rest of the line.
        self._second = -1
        self._second_text = ""
        self._flush_pending = False
        self._pending: list[str] = []

    @property
    def stream(self) -> TextIO:
        """Where lines go; standard output is looked up at each write (tests capture it)."""
        return self._stream if self._stream is not None else sys.stdout

    # -- the three kinds of line -----------------------------------------------------------

    def access(self, request: EdgeRequest, result: EdgeResult, elapsed_ms: float) -> None:
        """One viewer request answered (the front door's access log)."""
        response = result.response
        label = response.headers.get("X-Cache") or ""
        x_cache = _SHORT_X_CACHE.get(label, label)
        level = Level.ERROR if response.status >= 500 else Level.INFO
        if self.fmt == "json":
            fields: dict[str, object] = {
                "request_id": result.request_id,
                "client_ip": request.client_ip,
                "method": request.method,
                "target": request.target,
                "status": response.status,
                "x_cache": x_cache,
                "ms": round(elapsed_ms, 1),
                "steps": result.trace.steps,
            }
            self._json(level, "access", fields, flush_later=True)
            return
        status = str(response.status)
        if self.color:
            shade = "32" if response.status < 400 else "33" if response.status < 500 else "31"
            status = _paint(shade, status)
        self._text(
            level,
            f"{request.client_ip} {request.method} {request.target} {status} "
            f"{x_cache} {elapsed_ms:.1f}ms",
            request_id=result.request_id,
            always=True,
            flush_later=True,
        )

    def function_log(self, function: str, lines: list[str]) -> None:
        """The :data:`~edgesim.types.LogSink` for an edge: one invocation's log lines."""
        call = current_call()
        if call is not None and call.function == function:
            call.logs.extend(lines)
            request_id: str | None = call.request_id or None
        else:
            request_id = None  # a worker that died between invocations
        level = Level.INFO
        if self.fmt == "json":
            for line in lines:
                level = line_level(line, level)
                fields: dict[str, object] = {
                    "function": function,
                    "request_id": request_id,
                    "message": line,
                }
                self._json(level, "function", fields, flush_later=True)
            return
        shown: list[tuple[Level, str]] = []
        for line in lines:
            level = line_level(line, level)
            if self._shown(level, False):
                # Lambda's Node.js runtime keeps a multi-line message in one entry, joined by
                # \r; show it as continuation lines rather than let the terminal overwrite them.
                text = line.replace("\r", "\n    ")
                shown.append((level, f"{function}: {text}"))
        self._text_lines(shown, request_id=request_id, flush_later=True)

    def info(self, message: str) -> None:
        """One of edgesim's own messages."""
        self.message(Level.INFO, message)

    def warning(self, message: str) -> None:
        """Something the user should know that does not stop serving."""
        self.message(Level.WARNING, message)

    def error(self, message: str) -> None:
        """Something failed; shown even with ``quiet``."""
        self.message(Level.ERROR, message)

    def message(self, level: Level, message: str, *, traceback: str = "") -> None:
        """One of edgesim's own messages at ``level``, with a traceback below it if any."""
        if self.fmt == "json":
            fields: dict[str, object] = {"message": message}
            if traceback:
                fields["traceback"] = traceback
            self._json(level, "edgesim", fields)
        else:
            # A traceback keeps its lines at the start of the line, as Python prints it.
            self._text(level, f"edgesim: {message}" + (f"\n{traceback}" if traceback else ""))

    def log_handler(self) -> logging.Handler:
        """A :mod:`logging` handler writing edgesim's logger (defects, warnings) through here."""
        return _Handler(self)

    # -- writing ---------------------------------------------------------------------------

    def _shown(self, level: Level, always: bool) -> bool:
        return always or not self.quiet or level >= Level.ERROR

    def _text(
        self,
        level: Level,
        text: str,
        *,
        request_id: str | None = None,
        always: bool = False,
        flush_later: bool = False,
    ) -> None:
        if not self._shown(level, always):
            return
        stamp, labels, tag = self._heading(request_id)
        self._write(f"{stamp} {labels[level]} {tag}{text}\n", flush_later=flush_later)

    def _text_lines(
        self, lines: list[tuple[Level, str]], *, request_id: str | None, flush_later: bool
    ) -> None:
        """Lines of one moment and one request (an invocation's log), written at once."""
        if not lines:
            return
        stamp, labels, tag = self._heading(request_id)
        text = "".join(f"{stamp} {labels[level]} {tag}{line}\n" for level, line in lines)
        self._write(text, flush_later=flush_later)

    def _heading(self, request_id: str | None) -> tuple[str, dict[Level, str], str]:
        """What the text format puts before a line: the time, the labels, the request's tag."""
        stamp = self._stamp()
        tag = f"[{request_id[:SHORT_ID]}] " if request_id else ""
        if self.color:
            return _paint("2", stamp), _PAINTED_LABELS, _paint("35", tag) if tag else ""
        return stamp, _LABELS, tag

    def _stamp(self) -> str:
        """The text format's time of day, to the millisecond."""
        second, micro = divmod(round(self._now() * 1_000_000), 1_000_000)
        if second != self._second:
            self._second_text = datetime.fromtimestamp(second).strftime("%H:%M:%S.")
            self._second = second
        return f"{self._second_text}{micro // 1000:03d}"

    def _json(
        self, level: Level, kind: str, fields: dict[str, object], *, flush_later: bool = False
    ) -> None:
        if not self._shown(level, kind == "access"):
            return
        moment = datetime.fromtimestamp(self._now(), UTC)
        record = {
            "time": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
            "level": level.name.lower(),
            "kind": kind,
            **fields,
        }
        self._write(
            json.dumps(record, ensure_ascii=False, default=str) + "\n", flush_later=flush_later
        )

    def _write(self, text: str, *, flush_later: bool = False) -> None:
        if flush_later and self._flush_at_end_of_turn():
            # Written with the rest of the loop's turn: one write for a turn's access lines.
            self._pending.append(text)
            return
        with self._lock:
            stream = self.stream
            if self._pending:
                # What waited for the end of the turn goes first, so lines keep their order.
                pending, self._pending = self._pending, []
                stream.write("".join(pending))
            stream.write(text)
            stream.flush()

    def _flush_at_end_of_turn(self) -> bool:
        """Write and flush once the event loop's turn ends; False outside the loop's thread,
        where the caller writes at once."""
        if self._flush_pending:
            return True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._flush_pending = True
        loop.call_soon(self._flush)
        return True

    def _flush(self) -> None:
        with self._lock:
            self._flush_pending = False
            pending, self._pending = self._pending, []
            stream = self.stream
            if pending:
                stream.write("".join(pending))
            stream.flush()


def _paint(code: str, text: str) -> str:
    return f"\x1b[{code}m{text}\x1b[0m"


_PAINTED_LABELS = {level: _paint(_COLORS[level], label) for level, label in _LABELS.items()}


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _Handler(logging.Handler):
    def __init__(self, console: Console) -> None:
        super().__init__()
        self._console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = max((lv for lv in Level if lv <= record.levelno), default=Level.DEBUG)
            traceback = ""
            if record.exc_info:
                traceback = logging.Formatter().formatException(record.exc_info)
            self._console.message(level, record.getMessage(), traceback=traceback)
        except Exception:
            self.handleError(record)
