"""The fault soak's server: ``edgesim serve`` in a subprocess, measured from ``/proc``.

The soak judges the process a user runs, not an in-process edge: its open descriptors, its
worker processes (every descendant) and its resident memory, read from ``/proc`` while it serves.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

__all__ = ["Counts", "EdgeProcess", "Peaks"]


@dataclass(frozen=True)
class Counts:
    """What the server holds at one moment."""

    fds: int
    workers: int
    rss_mb: float


@dataclass
class Peaks:
    """The most workers and resident memory seen while sampling."""

    workers: int = 0
    rss_mb: float = 0.0


class EdgeProcess:
    """``edgesim serve FILE --port 0`` with its output in ``log``, until :meth:`stop`."""

    def __init__(self, dist: Path, log: Path) -> None:
        self.log = log
        self._output = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edgesim", "serve", str(dist)]
            + ["--port", "0", "--admin-port", "0"],
            stdout=self._output,
            stderr=subprocess.STDOUT,
            cwd=dist.parent,
        )
        self.port = 0

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    async def wait_listening(self, limit_s: float = 60.0) -> None:
        """Wait for the line that names the distribution's port."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline and self.alive:
            found = re.search(rb"on http://127\.0\.0\.1:(\d+)/", self.log.read_bytes())
            if found:
                self.port = int(found[1])
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"edgesim serve did not start:\n{self.tail()}")

    def counts(self) -> Counts:
        pid = self.process.pid
        return Counts(
            fds=len(os.listdir(f"/proc/{pid}/fd")),
            workers=len(psutil.Process(pid).children(recursive=True)),
            rss_mb=self.memory_mb("VmRSS"),
        )

    def memory_mb(self, field: str) -> float:
        """``VmRSS``, or ``VmHWM`` (the peak so far), of the server process in MiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        raise AssertionError(f"no {field} in /proc/{self.process.pid}/status")

    async def settle(self, done: Callable[[Counts], bool], limit_s: float) -> Counts:
        """The counts once ``done`` holds with the descriptors steady, or after ``limit_s``."""
        deadline = time.monotonic() + limit_s
        previous_fds = None
        while True:
            counts = self.counts()
            steady = done(counts) and counts.fds == previous_fds
            if steady or time.monotonic() > deadline:
                return counts
            previous_fds = counts.fds
            await asyncio.sleep(0.5)

    async def sample(self, peaks: Peaks) -> None:
        """Record peaks every half second until cancelled or the process is gone."""
        while self.alive:
            try:
                counts = self.counts()
            except (OSError, psutil.Error):
                return
            peaks.workers = max(peaks.workers, counts.workers)
            peaks.rss_mb = max(peaks.rss_mb, counts.rss_mb)
            await asyncio.sleep(0.5)

    def defects(self) -> list[str]:
        """Tracebacks edgesim itself printed (function logs are prefixed, so never match): a
        defect answers 502 ``Error``, which a fault class may expect for other reasons."""
        lines = self.log.read_text(errors="replace").splitlines()
        found = []
        for i, line in enumerate(lines):
            if line.startswith("Traceback (most recent call last)"):
                error = next((n for n in lines[i + 1 :] if n and not n[0].isspace()), "?")
                found.append(f"{lines[i - 1] if i else ''}: {error}")
        return found

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, as Ctrl-C would; SIGKILL if it is still there after 15 s."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._output.close()
