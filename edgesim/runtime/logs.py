"""A worker's log: capturing what the function prints, and Lambda's framing lines around it.

The worker's stdout and stderr share one pipe, read here as it arrives so a chatty function
never blocks on a full pipe. The worker ends each phase with a log mark (see ``protocol.py``);
the text before a mark belongs to that phase. Text with no mark yet (a worker killed mid-way)
is handed out by :meth:`LogCapture.rest` once the pipe is closed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import UTC, datetime

from edgesim.runtime.protocol import LOG_MARK_END, LOG_MARK_PREFIX
from edgesim.runtime.spec import InvocationReport

__all__ = [
    "LOG_CAP_BYTES",
    "LogCapture",
    "end_line",
    "exit_detail",
    "exit_error_lines",
    "report_line",
    "start_line",
    "timeout_line",
]

# Output kept per phase; beyond it the text is dropped and a note says how much.
LOG_CAP_BYTES = 1024 * 1024
# A mark id is a request id (a UUID) or "init"; anything longer is ordinary output.
_MAX_MARK_ID = 64


class LogCapture(asyncio.Protocol):
    """Reads a worker's log pipe and splits it into phases at the log marks."""

    def __init__(self, cap_bytes: int = LOG_CAP_BYTES) -> None:
        self._cap = cap_bytes
        self._pending = bytearray()  # not yet known to be output or a mark
        self._phase: list[bytes] = []
        self._phase_size = 0
        self._dropped = 0
        self._received = 0
        self._done: deque[tuple[str, list[str]]] = deque()
        self._changed = asyncio.Event()
        self._closed = asyncio.Event()
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._received += len(data)
        self._pending += data
        self._scan()
        self._changed.set()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._flush_pending()
        self._closed.set()
        self._changed.set()

    def close(self) -> None:
        """Stop reading (the pipe's write end may be held by a stray process)."""
        if self._transport is not None:
            self._transport.close()

    async def wait_closed(self, timeout_s: float) -> bool:
        """Wait until the pipe is at end-of-file; False if it is still open after the wait."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._closed.wait()
        except TimeoutError:
            return False
        return True

    @property
    def received_bytes(self) -> int:
        """Bytes read from the pipe so far, output and marks alike."""
        return self._received

    async def wait_for_output(self, size: int) -> None:
        """Wait until ``size`` bytes have been read from the pipe, or it is closed.

        Lets a caller know how far a worker has got (it printed this much) without a timer.
        """
        while self._received < size and not self._closed.is_set():
            self._changed.clear()
            await self._changed.wait()

    async def phase(self, mark_id: str, timeout_s: float = 1.0) -> list[str]:
        """The lines of the phase that ends with mark ``mark_id``.

        Phases before it (a function may print a fake mark) are merged in. If the mark does not
        come in time, or the pipe closes first, returns what has arrived so far.
        """
        lines: list[str] = []
        # The worker writes the mark before its reply, so it is nearly always here already.
        while self._done:
            done_id, done_lines = self._done.popleft()
            lines.extend(done_lines)
            if done_id == mark_id:
                return lines
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    while self._done:
                        done_id, done_lines = self._done.popleft()
                        lines.extend(done_lines)
                        if done_id == mark_id:
                            return lines
                    if self._closed.is_set():
                        break
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            self._flush_pending()
        lines.extend(self._take_partial())
        return lines

    def rest(self) -> list[str]:
        """Everything captured and not yet handed out, marks or not."""
        lines: list[str] = []
        while self._done:
            lines.extend(self._done.popleft()[1])
        self._flush_pending()
        lines.extend(self._take_partial())
        return lines

    def drop_last_line(self, prefix: bytes) -> bool:
        """Remove the last line of the output not yet handed out if it starts with ``prefix``.

        For a line that the process around the worker wrote as it ended (see ``containment``).
        """
        self._flush_pending()
        data = b"".join(self._phase)
        start = data.rstrip(b"\n").rfind(b"\n") + 1
        if not data[start:].startswith(prefix):
            return False
        self._phase = [data[:start]] if start else []
        self._phase_size = start
        return True

    def _flush_pending(self) -> None:
        """Treat held-back bytes as output: no more data is awaited for this phase."""
        self._keep(bytes(self._pending))
        self._pending.clear()

    def _scan(self) -> None:
        while True:
            start = self._pending.find(LOG_MARK_PREFIX)
            if start < 0:
                # Hold back a tail that could be the beginning of a mark split across reads.
                keep = min(len(self._pending), len(LOG_MARK_PREFIX) - 1)
                self._keep(bytes(self._pending[: len(self._pending) - keep]))
                del self._pending[: len(self._pending) - keep]
                return
            id_start = start + len(LOG_MARK_PREFIX)
            end = self._pending.find(LOG_MARK_END, id_start, id_start + _MAX_MARK_ID + 1)
            if end < 0:
                if len(self._pending) - id_start > _MAX_MARK_ID:
                    # Not a mark after all: pass the prefix on as output.
                    self._keep(bytes(self._pending[:id_start]))
                    del self._pending[:id_start]
                    continue
                self._keep(bytes(self._pending[:start]))
                del self._pending[:start]
                return
            self._keep(bytes(self._pending[:start]))
            mark_id = self._pending[id_start:end].decode("utf-8", "replace")
            del self._pending[: end + len(LOG_MARK_END)]
            self._done.append((mark_id, self._take_partial()))

    def _keep(self, data: bytes) -> None:
        if not data:
            return
        room = self._cap - self._phase_size
        if room < len(data):
            self._dropped += len(data) - max(room, 0)
            data = data[: max(room, 0)]
        if data:
            self._phase.append(data)
            self._phase_size += len(data)

    def _take_partial(self) -> list[str]:
        text = b"".join(self._phase).decode("utf-8", "replace")
        lines = [line.removesuffix("\r") for line in text.split("\n")]
        if lines and lines[-1] == "":
            lines.pop()
        if self._dropped:
            lines.append(f"[edgesim] {self._dropped} more bytes of output were dropped")
        self._phase.clear()
        self._phase_size = 0
        self._dropped = 0
        return lines


def _timestamp(epoch_s: float) -> str:
    moment = datetime.fromtimestamp(epoch_s, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def start_line(request_id: str, version: str) -> str:
    """Lambda's first line of an invocation."""
    return f"START RequestId: {request_id} Version: {version}"


def end_line(request_id: str) -> str:
    """Lambda's line after the function's output."""
    return f"END RequestId: {request_id}"


def report_line(report: InvocationReport) -> str:
    """Lambda's billing line; ``Init Duration`` only after a cold start."""
    fields = [
        f"REPORT RequestId: {report.request_id}",
        f"Duration: {report.duration_ms:.2f} ms",
        f"Billed Duration: {report.billed_ms} ms",
        f"Memory Size: {report.memory_size_mb} MB",
        f"Max Memory Used: {report.max_memory_used_mb} MB",
    ]
    if report.init_duration_ms is not None:
        fields.append(f"Init Duration: {report.init_duration_ms:.2f} ms")
    return "\t".join(fields)


def timeout_line(request_id: str, timeout_s: float, epoch_s: float) -> str:
    """The line Lambda logs after ``REPORT`` when it stops a function at its timeout."""
    return f"{_timestamp(epoch_s)} {request_id} Task timed out after {timeout_s:.2f} seconds"


def exit_error_lines(request_id: str, detail: str) -> list[str]:
    """The lines Lambda logs after ``REPORT`` when the runtime process died."""
    return [f"RequestId: {request_id} Error: {detail}", "Runtime.ExitError"]


_SIGNAL_NAMES = {
    1: "hangup",
    2: "interrupt",
    4: "illegal instruction",
    6: "aborted",
    7: "bus error",
    8: "floating point exception",
    9: "killed",
    11: "segmentation fault",
    13: "broken pipe",
    15: "terminated",
}


def exit_detail(returncode: int) -> str:
    """Lambda's wording for how the runtime process ended."""
    if returncode == 0:
        return "Runtime exited without providing a reason"
    if returncode < 0:
        name = _SIGNAL_NAMES.get(-returncode, f"signal {-returncode}")
        return f"Runtime exited with error: signal: {name}"
    return f"Runtime exited with error: exit status {returncode}"
