"""A pool's idle workers: reused most recent first, retired when idle too long, and watched.

Between invocations a worker should be silent. One that dies then (a timer that throws after the
handler returned, a late promise rejection, ``os._exit`` from a thread) or writes to its reply
pipe (a function that forged a reply) is taken out of the idle set at once and handed to the
pool's ``on_lost`` callback, which reports it in the function's log, so the next invocation gets
a fresh worker and never the broken one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from edgesim.runtime.worker import Broken, Exited, WorkerProcess
from edgesim.tasks import spawn

__all__ = ["IdleWorkers"]


class IdleWorkers:
    """The idle workers of one pool. Use from one event loop."""

    def __init__(
        self,
        idle_timeout_s: float,
        *,
        on_retire: Callable[[WorkerProcess], None],
        on_lost: Callable[[WorkerProcess, Exited | Broken], Coroutine[Any, Any, None]],
    ) -> None:
        """``on_retire`` gets a worker idle for ``idle_timeout_s``; ``on_lost`` one that died or
        broke the protocol while idle. Either is no longer in the set when called."""
        self._idle_timeout_s = idle_timeout_s
        self._on_retire = on_retire
        self._on_lost = on_lost
        self._stack: list[WorkerProcess] = []
        self._timers: dict[WorkerProcess, asyncio.TimerHandle] = {}
        self._watches: dict[WorkerProcess, asyncio.Task[None]] = {}

    def __len__(self) -> int:
        return len(self._stack)

    def __contains__(self, worker: object) -> bool:
        return worker in self._stack

    def put(self, worker: WorkerProcess) -> None:
        """Keep ``worker`` for the next invocation."""
        self._stack.append(worker)
        loop = asyncio.get_running_loop()
        self._timers[worker] = loop.call_later(self._idle_timeout_s, self._retire, worker)
        self._watches[worker] = spawn(self._watch(worker), name=f"edgesim-idle-{worker.pid}")

    def take(self) -> WorkerProcess | None:
        """The most recently used idle worker that is still alive, out of the set."""
        while self._stack:
            worker = self._stack[-1]
            self.remove(worker)
            if worker.alive:
                return worker
            # Dead, and its watch not yet told: report it as the watch would have.
            self._lost_later(worker, Exited(worker.process.returncode or 0))
        return None

    def remove(self, worker: WorkerProcess) -> None:
        """Forget ``worker`` (no retirement, no watch) if it is idle."""
        if worker in self._stack:
            self._stack.remove(worker)
        timer = self._timers.pop(worker, None)
        if timer is not None:
            timer.cancel()
        watch = self._watches.pop(worker, None)
        if watch is not None and watch is not asyncio.current_task():
            watch.cancel()

    def clear(self) -> list[WorkerProcess]:
        """Forget every idle worker; returns them."""
        workers = list(self._stack)
        for worker in workers:
            self.remove(worker)
        return workers

    def _retire(self, worker: WorkerProcess) -> None:
        self._timers.pop(worker, None)
        if worker in self._stack:
            self.remove(worker)
            self._on_retire(worker)

    async def _watch(self, worker: WorkerProcess) -> None:
        what = await worker.wait_between_invocations()
        self.remove(worker)
        # Reported from a task of its own, which taking the worker cannot cancel.
        self._lost_later(worker, what)

    def _lost_later(self, worker: WorkerProcess, what: Exited | Broken) -> None:
        _ = spawn(self._on_lost(worker, what), name=f"edgesim-lost-{worker.pid}")
