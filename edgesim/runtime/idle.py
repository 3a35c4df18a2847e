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
        # when each worker became idle; the bottom of the stack has been idle longest
        self._since: dict[WorkerProcess, float] = {}
        # one timer for the pool, due when the longest-idle worker retires, instead of one
        # timer (and one watch task) per invocation
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._stack)

    def __contains__(self, worker: object) -> bool:
        return worker in self._since

    def put(self, worker: WorkerProcess) -> None:
        """Keep ``worker`` for the next invocation."""
        loop = asyncio.get_running_loop()
        self._stack.append(worker)
        self._since[worker] = loop.time()
        if self._timer is None:
            self._timer = loop.call_later(self._idle_timeout_s, self._expire)
        worker.watch_idle(lambda: self._lost(worker))

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
        if self._since.pop(worker, None) is None:
            return
        if self._stack[-1] is worker:
            self._stack.pop()
        else:
            self._stack.remove(worker)
        worker.watch_idle(None)

    def clear(self) -> list[WorkerProcess]:
        """Forget every idle worker; returns them."""
        workers = list(self._stack)
        for worker in workers:
            self.remove(worker)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return workers

    def _expire(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        # a timer may fire a hair early (the loop's clock resolution)
        while self._stack and self._since[self._stack[0]] + self._idle_timeout_s <= now + 0.001:
            worker = self._stack[0]
            self.remove(worker)
            self._on_retire(worker)
        if self._stack:
            due = self._since[self._stack[0]] + self._idle_timeout_s
            self._timer = loop.call_at(due, self._expire)

    def _lost(self, worker: WorkerProcess) -> None:
        if worker not in self._since:
            return
        self.remove(worker)

        async def report() -> None:
            await self._on_lost(worker, await worker.idle_outcome())

        _ = spawn(report(), name=f"edgesim-lost-{worker.pid}")

    def _lost_later(self, worker: WorkerProcess, what: Exited | Broken) -> None:
        _ = spawn(self._on_lost(worker, what), name=f"edgesim-lost-{worker.pid}")
