"""One worker process seen from the pool: its pipes, its memory watch and how it ends.

:meth:`WorkerProcess.exchange` is the one place that waits on a worker. It sends a request (or
nothing, while the worker starts) and returns what happened, as a value rather than an
exception: a reply, a timeout, a memory excess, an exit, or a broken protocol. The pool turns
those into Lambda's errors and log lines.

Memory is enforced on the worker's resident set size, the whole interpreter included, as Lambda
counts it: sampled every :data:`MEMORY_POLL_S` while the worker is busy, and checked against the
peak the worker itself reports with each reply (which catches spikes between samples). A kernel
data-segment limit well above the quota is only a backstop against runaway allocations.

The worker is started and ended as :mod:`edgesim.runtime.containment` says: with namespaces the
process the pool starts is ``unshare`` and :attr:`WorkerProcess.pid` is the worker program it
forked (the process that is measured), and ending a worker ends everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from edgesim.quotas import FUNCTION_RESULT_MAX_BYTES
from edgesim.runtime import containment, debug
from edgesim.runtime.containment import Isolation
from edgesim.runtime.logs import LogCapture
from edgesim.runtime.protocol import (
    Oversized,
    ProtocolError,
    WorkerError,
    WorkerMessage,
    parse_worker_message,
)
from edgesim.runtime.replies import Expired, PipeEnded, ReplyPipe, expire
from edgesim.tasks import spawn

__all__ = [
    "MEMORY_POLL_S",
    "Broken",
    "Exited",
    "Outcome",
    "OutOfMemory",
    "Reply",
    "TimedOut",
    "TooLarge",
    "WorkerProcess",
]

MEMORY_POLL_S = 0.01
_MIB = 1024 * 1024
# How long a dead worker's log pipe may stay open (held by a process that escaped the group).
_LOG_DRAIN_S = 0.5
# How long unshare may take to reap a killed worker and exit before its group is killed too.
_REAP_S = 2.0


@dataclass(frozen=True)
class Reply:
    """The worker answered."""

    message: WorkerMessage


@dataclass(frozen=True)
class TooLarge:
    """The reply was larger than any result CloudFront accepts; it was dropped undecoded."""

    size: int


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


Outcome = Reply | TooLarge | TimedOut | OutOfMemory | Exited | Broken


class WorkerProcess:
    """A started worker. Create with :meth:`start`; end with :meth:`discard`."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        reply_pipe: ReplyPipe,
        reply_transport: asyncio.BaseTransport,
        request_transport: asyncio.WriteTransport,
        log: LogCapture,
        memory_limit_bytes: int,
        started: float,
    ) -> None:
        self.process = process
        self.log = log
        self.started = started
        self.peak_rss_bytes = 0
        self._reply_pipe = reply_pipe
        self._sampler: asyncio.TimerHandle | None = None
        self._reply_transport = reply_transport
        self._request_transport = request_transport
        self._memory_limit = memory_limit_bytes
        self._memory_exceeded = False
        self._killed = False
        self._discarded: asyncio.Event | None = None
        self._pid: int | None = None
        self._pidfd: int | None = None
        self._ps: psutil.Process | None = None
        self._resolve()

    @property
    def pid(self) -> int:
        """The worker program's pid, as edgesim sees it (the process that is measured)."""
        self._resolve()
        return self.process.pid if self._pid is None else self._pid

    def _resolve(self) -> None:
        """Find the worker program (with namespaces, ``unshare`` forks it a moment after start)."""
        if self._pid is not None or self._killed or self.process.returncode is not None:
            return
        pid = containment.worker_pid(self.process.pid)
        if pid is None:
            return
        try:
            self._ps = psutil.Process(pid)
            if pid != self.process.pid:
                self._pidfd = os.pidfd_open(pid)
        except (psutil.Error, OSError):
            return
        self._pid = pid

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
        program = shutil.which(command[0], path=env.get("PATH", os.defpath))
        if program is None:
            # Under unshare a missing program would only show as unshare's exit status.
            raise FileNotFoundError(errno.ENOENT, "no such program", command[0])
        request_r, request_w = os.pipe()
        reply_r, reply_w = os.pipe()
        log_r, log_w = os.pipe()
        child_ends = (request_r, reply_w, log_w)
        parent_ends = (request_w, reply_r, log_r)
        started = time.perf_counter()
        containment.protect_environment()
        # In a PID namespace of its own the worker's parent has no pid it could check.
        parent_pid = 0 if containment.isolation() is Isolation.NAMESPACES else os.getpid()
        try:
            process = await asyncio.create_subprocess_exec(
                *containment.contained_command(command),
                "--in-fd",
                str(request_r),
                "--out-fd",
                str(reply_w),
                "--parent-pid",
                str(parent_pid),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_w,
                stderr=log_w,
                pass_fds=(request_r, reply_w),
                cwd=cwd,
                env=env,
                start_new_session=True,
                preexec_fn=containment.preexec(_data_segment_limit(memory_limit_bytes)),
            )
        except BaseException:
            for fd in (*child_ends, *parent_ends):
                os.close(fd)
            raise
        for fd in child_ends:
            os.close(fd)
        # From here on each parent end is owned by a file object, then by its transport.
        request_file = open(request_w, "wb", 0)
        reply_file = open(reply_r, "rb", 0)
        log_file = open(log_r, "rb", 0)
        log = LogCapture()
        transports: list[asyncio.BaseTransport] = []
        try:
            log_transport, _ = await loop.connect_read_pipe(lambda: log, log_file)
            transports.append(log_transport)
            reply_pipe = ReplyPipe()
            reply_transport, _ = await loop.connect_read_pipe(lambda: reply_pipe, reply_file)
            transports.append(reply_transport)
            request_transport, _ = await loop.connect_write_pipe(asyncio.Protocol, request_file)
        except BaseException:
            for transport in transports:
                transport.close()
            for file in (request_file, reply_file, log_file):
                file.close()
            containment.kill_contained(process.pid, None)
            await process.wait()
            raise
        return cls(
            process,
            reply_pipe,
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

    async def exchange(
        self,
        request: bytes | None,
        timeout_s: float,
        *,
        attached: Callable[[], bool] | None = None,
    ) -> Outcome:
        """Send ``request`` (if any) and wait for the next message, watching memory meanwhile.

        With ``attached``, time during which it says a debugger is attached does not count.
        """
        loop = asyncio.get_running_loop()
        pipe = self._reply_pipe
        # A timer rather than a task: most invocations end before the first sample is due, and
        # the peak the worker reports with its reply covers them.
        self._sampler = loop.call_later(MEMORY_POLL_S, self._sample_memory)
        clock: asyncio.Task[None] | None = None
        try:
            waiter = pipe.wait(FUNCTION_RESULT_MAX_BYTES)
            if request is not None:
                self._request_transport.write(request)
            try:
                if attached is None:
                    deadline = loop.time() + timeout_s
                    timer = loop.call_later(timeout_s, expire, waiter)
                    try:
                        raw = await waiter
                    finally:
                        timer.cancel()
                    if isinstance(raw, PipeEnded):
                        async with asyncio.timeout_at(deadline):
                            returncode = await self.process.wait()
                else:
                    async with asyncio.timeout(None) as scope:
                        watch = debug.expire_unless_attached(
                            timeout_s, attached, lambda: scope.reschedule(loop.time())
                        )
                        clock = spawn(watch, name=f"edgesim-debug-clock-{self.pid}")
                        raw = await waiter
                        if isinstance(raw, PipeEnded):
                            returncode = await self.process.wait()
                if isinstance(raw, Expired):
                    raise TimeoutError
            except TimeoutError:
                if self._memory_exceeded:
                    return OutOfMemory(self.peak_rss_bytes)
                self.kill()
                return TimedOut()
        finally:
            pipe.stop_waiting()
            if self._sampler is not None:
                self._sampler.cancel()
                self._sampler = None
            if clock is not None:
                clock.cancel()
                await asyncio.wait([clock])
        if isinstance(raw, PipeEnded):
            if self._killed:
                # unshare cannot pass a SIGKILL on as its own status
                returncode = -signal.SIGKILL
            if self._memory_exceeded or self.peak_rss_bytes > self._memory_limit:
                return OutOfMemory(self.peak_rss_bytes)
            return Exited(returncode)
        if isinstance(raw, Oversized):
            return TooLarge(raw.size)
        try:
            if isinstance(raw, ProtocolError):
                raise raw
            message = parse_worker_message(raw)
        except ProtocolError as exc:
            self.kill()
            return Broken(str(exc))
        if message.max_rss_bytes is not None:
            self.peak_rss_bytes = max(self.peak_rss_bytes, message.max_rss_bytes)
        over = self.peak_rss_bytes > self._memory_limit
        if over or (isinstance(message, WorkerError) and message.error_type == "MemoryError"):
            # Lambda's sandbox would have been killed by the kernel at the quota.
            self.kill()
            return OutOfMemory(self.peak_rss_bytes)
        return Reply(message)

    def watch_idle(self, on_event: Callable[[], None] | None) -> None:
        """Call ``on_event`` as soon as this idle worker sends anything or closes its reply pipe
        (at once if it already has); None stops watching. See :meth:`idle_outcome`."""
        pipe = self._reply_pipe
        pipe.on_unasked = on_event
        if on_event is not None and (pipe.received > pipe.consumed or pipe.ended):
            on_event()

    async def idle_outcome(self) -> Exited | Broken:
        """What the event :meth:`watch_idle` reported means: bytes nobody asked for (the worker is
        killed as broken), or its end."""
        pipe = self._reply_pipe
        if pipe.received > pipe.consumed:
            self.kill()
            return Broken("it wrote to its reply pipe between invocations")
        return Exited(await self.process.wait())

    def kill(self) -> None:
        """SIGKILL the worker and all it started, now (it is reaped by :meth:`discard`)."""
        self._resolve()
        self._killed = True
        containment.kill_contained(self.process.pid, self._pidfd)

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
            try:
                async with asyncio.timeout(_REAP_S):
                    await self.process.wait()
            except TimeoutError:
                # unshare did not end with its worker: take its whole group.
                containment.kill_contained(self.process.pid, None)
                await self.process.wait()
            self._request_transport.close()
            self._reply_transport.close()
            if not await self.log.wait_closed(_LOG_DRAIN_S):
                self.log.close()
            note = containment.unshare_note()
            if note is not None:
                self.log.drop_last_line(note)
        finally:
            if self._pidfd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._pidfd)
                self._pidfd = None
            self._discarded.set()

    def _sample_memory(self) -> None:
        self._sampler = None
        self._resolve()
        if self._ps is not None:
            try:
                rss = self._ps.memory_info().rss
            except psutil.Error:
                return
            self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
            if rss > self._memory_limit:
                self._memory_exceeded = True
                self.kill()
                return
        self._sampler = asyncio.get_running_loop().call_later(MEMORY_POLL_S, self._sample_memory)


def _data_segment_limit(memory_limit_bytes: int) -> int:
    """Backstop: the data segment is capped far above the quota, where the RSS watch cannot miss."""
    return memory_limit_bytes + max(memory_limit_bytes, 1024 * _MIB)
