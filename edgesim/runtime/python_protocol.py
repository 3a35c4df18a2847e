"""The Python worker's end of the worker protocol (``protocol.py``): framed messages on its two
pipes, the log mark that closes each phase, the peak memory its messages report, and its death
with the pool.

The worker loads this file by path as it starts (it runs isolated, with edgesim out of reach).
Like the worker it is standalone (no edgesim imports, Python 3.9 syntax), and it duplicates the
few protocol constants it needs.
"""

from __future__ import annotations

import json
import os
import resource
import struct
import sys
from typing import Any

__all__ = [
    "INIT_MARK_ID",
    "LOG_MARK_END",
    "LOG_MARK_PREFIX",
    "MAX_MESSAGE_BYTES",
    "MAX_PAYLOAD_BYTES",
    "Channel",
    "die_with_parent",
    "max_rss_bytes",
    "write_log_mark",
]

MAX_PAYLOAD_BYTES = 6_291_556
MAX_MESSAGE_BYTES = MAX_PAYLOAD_BYTES + 64 * 1024
LOG_MARK_PREFIX = b"\x00edgesim-log-end "
LOG_MARK_END = b"\x00"
INIT_MARK_ID = "init"

_LENGTH = struct.Struct(">I")


class Channel:
    """The two protocol pipes, used with blocking reads and writes (one request at a time)."""

    def __init__(self, in_fd: int, out_fd: int) -> None:
        self.in_fd = in_fd
        self.out_fd = out_fd

    def receive(self) -> dict[str, Any] | None:
        """The next message, or None when the pool has gone (end of file)."""
        header = self._read_exactly(_LENGTH.size)
        if header is None:
            return None
        (length,) = _LENGTH.unpack(header)
        if length > MAX_MESSAGE_BYTES:
            raise SystemExit(f"edgesim worker: request of {length} bytes is over the limit")
        body = self._read_exactly(length)
        if body is None:
            return None
        message = json.loads(body.decode("utf-8"))
        if not isinstance(message, dict):
            raise SystemExit("edgesim worker: request is not a JSON object")
        return message

    def send(self, message: dict[str, Any]) -> None:
        """Frame and send a message built from plain values."""
        self.send_body(json.dumps(message, separators=(",", ":")).encode("utf-8"))

    def send_body(self, body: bytes) -> None:
        """Frame and send an already-encoded JSON object."""
        data = memoryview(_LENGTH.pack(len(body)) + body)
        while data:
            written = os.write(self.out_fd, data)
            data = data[written:]

    def _read_exactly(self, size: int) -> bytes | None:
        chunks = []
        remaining = size
        while remaining:
            chunk = os.read(self.in_fd, min(remaining, 1 << 20))
            if not chunk:
                return None
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this worker when the pool process dies, even mid-invocation."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig, sigkill = 1, 9
        libc.prctl(pr_set_pdeathsig, sigkill, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if parent_pid and os.getppid() != parent_pid:
        # The pool died before the request above took effect.
        os._exit(0)


def write_log_mark(mark_id: str) -> None:
    """Flush what the function printed, then close this phase's log with a mark."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    try:
        os.write(1, LOG_MARK_PREFIX + mark_id.encode("utf-8") + LOG_MARK_END)
    except OSError:
        pass


def _proc_peak_bytes() -> int | None:
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _rusage_peak_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux counts kilobytes


# ru_maxrss also carries the peak of the address space replaced at exec (the forking parent's);
# VmHWM is this program's own but costs a /proc read. ru_maxrss answers when it provably is ours.
_START_RUSAGE = _rusage_peak_bytes()
_START_PEAK = _proc_peak_bytes()
_RUSAGE_IS_OWN = _START_PEAK is None or _START_PEAK >= _START_RUSAGE


def max_rss_bytes() -> int:
    """This process's own peak resident memory so far."""
    peak = _rusage_peak_bytes()
    if _RUSAGE_IS_OWN or peak > _START_RUSAGE:
        return peak
    return _proc_peak_bytes() or peak
