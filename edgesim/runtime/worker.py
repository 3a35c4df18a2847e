"""One worker process seen from the pool: its pipes, its memory watch and how it ends.

:meth:`WorkerProcess.exchange` is the one place that waits on a worker. It sends a request (or
nothing, while the worker starts) and returns what happened, as a value rather than an
exception: a reply, a timeout, a memory excess, an exit, or a broken protocol. The pool turns
those into Lambda's errors and log lines.

Memory is enforced on the worker's resident set size, the whole interpreter included, as Lambda
counts it: sampled every :data:`MEMORY_POLL_S` while the worker is busy, and checked against the
peak the worker itself reports with each reply (which catches spikes between samples). A kernel
data-segment limit well above the quota is only a backstop against runaway allocations.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from edgesim.runtime.logs import LogCapture
from edgesim.runtime.protocol import (
    ProtocolError,
    WorkerError,
    WorkerMessage,
    parse_worker_message,
    read_message,
)
from edgesim.tasks import spawn

__all__ = [
    "MEMORY_POLL_S",
    "Broken",
    "Exited",
    "Outcome",
    "OutOfMemory",
    "Reply",
    "TimedOut",
    "WorkerProcess",
]

MEMORY_POLL_S = 0.01
_MIB = 1024 * 1024
# How long a dead worker's log pipe may stay open (held by a process that escaped the group).
_LOG_DRAIN_S = 0.5

_PR_SET_PDEATHSIG = 1  # <sys/prctl.h>


@dataclass(frozen=True)
class Reply:
    """The worker answered."""

    message: WorkerMessage


@dataclass(frozen=True)
class TimedOut:
    """No answer in time; the worker was killed."""


@dataclass(frozen=True)
class OutOfMemory:
    """The worker went past its memory quota; it was killed."""

    peak_bytes: int


@dataclass(frozen=True)
class Exited:
    """The worker died on its own (``returncode`` < 0 is the signal number, negated)."""

    returncode: int


@dataclass(frozen=True)
class Broken:
    """The worker broke the protocol; it was killed."""

    reason: str


Outcome = Reply | TimedOut | OutOfMemory | Exited | Broken


class WorkerProcess:
    """A started worker. Create with :meth:`start`; end with :meth:`discard`."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        replies: asyncio.StreamReader,
        reply_transport: asyncio.BaseTransport,
        request_transport: asyncio.WriteTransport,
        log: LogCapture,
        memory_limit_bytes: int,
        started: float,
    ) -> None:
        self.process = process
        self.pid = process.pid
        self.log = log
        self.started = started
        self.peak_rss_bytes = 0
        self._replies = replies
        self._reply_transport = reply_transport
        self._request_transport = request_transport
        self._memory_limit = memory_limit_bytes
        self._memory_exceeded = False
        self._killed = False
        self._discarded: asyncio.Event | None = None
        try:
            self._ps: psutil.Process | None = psutil.Process(self.pid)
        except psutil.Error:
            self._ps = None

    @classmethod
    async def start(
        cls,
        command: Sequence[str],
        *,
        env: dict[str, str],
        cwd: Path,
        memory_limit_bytes: int,
    ) -> WorkerProcess:
        """Spawn a worker in its own process group and connect its three pipes.

        Raises :class:`OSError` when the program cannot be executed.
        """
        loop = asyncio.get_running_loop()
        request_r, request_w = os.pipe()
        reply_r, reply_w = os.pipe()
        log_r, log_w = os.pipe()
        child_ends = (request_r, reply_w, log_w)
        parent_ends = (request_w, reply_r, log_r)
        started = time.perf_counter()
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                "--in-fd",
                str(request_r),
                "--out-fd",
                str(reply_w),
                "--parent-pid",
                str(os.getpid()),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_w,
                stderr=log_w,
                pass_fds=(request_r, reply_w),
                cwd=cwd,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        except BaseException:
            for fd in (*child_ends, *parent_ends):
                os.close(fd)
            raise
        for fd in child_ends:
            os.close(fd)
        _limit_data_segment(process.pid, memory_limit_bytes)
        # From here on each parent end is owned by a file object, then by its transport.
        request_file = open(request_w, "wb", 0)
        reply_file = open(reply_r, "rb", 0)
        log_file = open(log_r, "rb", 0)
        log = LogCapture()
        replies = asyncio.StreamReader()
        transports: list[asyncio.BaseTransport] = []
        try:
            log_transport, _ = await loop.connect_read_pipe(lambda: log, log_file)
            transports.append(log_transport)
            reply_transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(replies), reply_file
            )
            transports.append(reply_transport)
            request_transport, _ = await loop.connect_write_pipe(asyncio.Protocol, request_file)
        except BaseException:
            for transport in transports:
                transport.close()
            for file in (request_file, reply_file, log_file):
                file.close()
            _kill_group(process.pid)
            await process.wait()
            raise
        return cls(
            process,
            replies,
            reply_transport,
            request_transport,
            log,
            memory_limit_bytes,
            started,
        )

    @property
    def alive(self) -> bool:
        """Not killed, not exited."""
        return not self._killed and self.process.returncode is None

    async def exchange(self, request: bytes | None, timeout_s: float) -> Outcome:
        """Send ``request`` (if any) and wait for the next message, watching memory meanwhile."""
        watch = spawn(self._watch_memory(), name=f"edgesim-memory-watch-{self.pid}")
        try:
            if request is not None:
                self._request_transport.write(request)
            try:
                async with asyncio.timeout(timeout_s):
                    try:
                        raw = await read_message(self._replies)
                    except (asyncio.IncompleteReadError, ConnectionError):
                        # The reply pipe closed: the worker is dying or dead.
                        returncode = await self.process.wait()
                        if self._memory_exceeded or self.peak_rss_bytes > self._memory_limit:
                            return OutOfMemory(self.peak_rss_bytes)
                        return Exited(returncode)
                message = parse_worker_message(raw)
            except TimeoutError:
                if self._memory_exceeded:
                    return OutOfMemory(self.peak_rss_bytes)
                self.kill()
                return TimedOut()
            except ProtocolError as exc:
                self.kill()
                return Broken(str(exc))
        finally:
            watch.cancel()
            await asyncio.wait([watch])
        if message.max_rss_bytes is not None:
            self.peak_rss_bytes = max(self.peak_rss_bytes, message.max_rss_bytes)
        over = self.peak_rss_bytes > self._memory_limit
        if over or (isinstance(message, WorkerError) and message.error_type == "MemoryError"):
            # Lambda's sandbox would have been killed by the kernel at the quota.
            self.kill()
            return OutOfMemory(self.peak_rss_bytes)
        return Reply(message)

    def kill(self) -> None:
        """SIGKILL the worker's whole process group now (it is reaped by :meth:`discard`)."""
        self._killed = True
        _kill_group(self.pid)

    async def discard(self) -> None:
        """Kill the worker, reap it, close its pipes and wait (briefly) for its last output.

        Safe to call more than once and from several tasks.
        """
        if self._discarded is not None:
            await self._discarded.wait()
            return
        self._discarded = asyncio.Event()
        try:
            self.kill()
            await self.process.wait()
            self._request_transport.close()
            self._reply_transport.close()
            if not await self.log.wait_closed(_LOG_DRAIN_S):
                self.log.close()
        finally:
            self._discarded.set()

    async def _watch_memory(self) -> None:
        if self._ps is None:
            return
        while True:
            try:
                rss = self._ps.memory_info().rss
            except psutil.Error:
                return
            self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
            if rss > self._memory_limit:
                self._memory_exceeded = True
                self.kill()
                return
            await asyncio.sleep(MEMORY_POLL_S)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _limit_data_segment(pid: int, memory_limit_bytes: int) -> None:
    """Backstop: cap the data segment far above the quota, where the RSS watch cannot miss."""
    rlimit_data = getattr(psutil, "RLIMIT_DATA", None)
    if rlimit_data is None:
        return
    limit = memory_limit_bytes + max(memory_limit_bytes, 1024 * _MIB)
    try:
        psutil.Process(pid).rlimit(rlimit_data, (limit, limit))
    except (psutil.Error, OSError, ValueError):
        pass


def _die_with_parent() -> None:
    """In the child before exec: have Linux SIGKILL it when edgesim dies, whatever the runtime.

    The Python worker also asks for this itself; doing it here covers every worker program,
    including a Node.js worker stuck in a synchronous loop that would never notice its pipe close.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
