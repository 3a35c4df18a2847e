"""The functions of one edgesim process: one :class:`FunctionPool` per function, by name.

A runtime can change while it serves: :meth:`FunctionRuntime.replace` gives a function fresh
workers (its code changed) and :meth:`FunctionRuntime.successor` builds the runtime of a reloaded
distribution, taking over the pools whose function did not change so their warm workers stay.
A pool may so be held by several runtimes (the old edge's, still finishing its requests, and
the new one's); it is closed when the last one lets it go, after its running invocations end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from edgesim.runtime.pool import FunctionPool
from edgesim.runtime.spec import FunctionSpec, InvocationResult, LogSink
from edgesim.tasks import spawn

__all__ = ["FunctionRuntime"]


class _Holders:
    """How many runtimes hold each pool, shared by a runtime and its successors."""

    def __init__(self) -> None:
        self.counts: dict[FunctionPool, int] = {}
        self.retiring: dict[asyncio.Task[None], FunctionPool] = {}

    def hold(self, pool: FunctionPool) -> None:
        self.counts[pool] = self.counts.get(pool, 0) + 1

    def release(self, pool: FunctionPool) -> bool:
        """Let go of ``pool``; True when no runtime holds it any more."""
        left = self.counts.get(pool, 1) - 1
        if left > 0:
            self.counts[pool] = left
            return False
        self.counts.pop(pool, None)
        return True

    def retire(self, pool: FunctionPool) -> None:
        """Close ``pool`` in the background once its running invocations have ended."""

        async def retire() -> None:
            await pool.drained()
            await pool.aclose()

        task = spawn(retire(), name=f"edgesim-retire-{pool.spec.name}")
        self.retiring[task] = pool
        task.add_done_callback(lambda done: self.retiring.pop(done, None))

    async def close_retiring(self) -> None:
        """Close the pools being retired now, running invocations or not."""
        retiring, self.retiring = self.retiring, {}
        for task, pool in retiring.items():
            task.cancel()
            await pool.aclose()


class FunctionRuntime:
    """The pools of every function of one edgesim process, by function name."""

    def __init__(
        self,
        specs: Iterable[FunctionSpec],
        *,
        log_sink: LogSink | None = None,
        _adopt: dict[str, FunctionPool] | None = None,
        _holders: _Holders | None = None,
    ) -> None:
        """Raises :class:`RuntimeUnavailableError` for a runtime that cannot run here and
        :class:`ValueError` for two functions with one name."""
        self._log_sink = log_sink
        self._holders = _holders or _Holders()
        self._pools: dict[str, FunctionPool] = {}
        adopt = _adopt or {}
        for spec in specs:
            if spec.name in self._pools:
                raise ValueError(f"two functions are named {spec.name!r}")
            pool = adopt.get(spec.name)
            self._pools[spec.name] = pool or FunctionPool(spec, log_sink=log_sink)
        for pool in self._pools.values():
            self._holders.hold(pool)

    @property
    def names(self) -> list[str]:
        """The function names, in the order they were given."""
        return list(self._pools)

    def pool(self, name: str) -> FunctionPool:
        """The pool of function ``name``; :class:`KeyError` if there is none."""
        try:
            return self._pools[name]
        except KeyError:
            raise KeyError(f"no function named {name!r}") from None

    async def invoke(self, name: str, event: dict[str, object]) -> InvocationResult:
        """Invoke function ``name``; see :meth:`FunctionPool.invoke`."""
        return await self.pool(name).invoke(event)

    def replace(self, spec: FunctionSpec) -> None:
        """Give function ``spec.name`` a new pool: new invocations start fresh workers (which
        load the code as it is now); running ones finish on the old workers, which then end.

        Raises :class:`KeyError` for an unknown function, and as :class:`FunctionPool` does.
        """
        old = self.pool(spec.name)
        self._pools[spec.name] = FunctionPool(spec, log_sink=self._log_sink)
        self._holders.hold(self._pools[spec.name])
        if self._holders.release(old):
            self._holders.retire(old)

    def successor(
        self, specs: Iterable[FunctionSpec], *, restart: Iterable[str] = ()
    ) -> FunctionRuntime:
        """The runtime for ``specs``, sharing this one's pool of every function whose spec is
        unchanged and whose name is not in ``restart``; the others get new pools.

        This runtime keeps serving (its edge may still have requests in flight) until
        :meth:`aclose`, which then closes only the pools no successor took over.
        """
        fresh = set(restart)
        wanted = list(specs)
        adopt = {
            spec.name: self._pools[spec.name]
            for spec in wanted
            if spec.name not in fresh
            and spec.name in self._pools
            and self._pools[spec.name].spec == spec
        }
        return FunctionRuntime(
            wanted, log_sink=self._log_sink, _adopt=adopt, _holders=self._holders
        )

    async def prewarm(self, name: str) -> None:
        """Start a worker of function ``name`` now; see :meth:`FunctionPool.prewarm`."""
        await self.pool(name).prewarm()

    async def aclose(self) -> None:
        """Close every pool no other runtime holds; the last runtime to close also closes the
        pools still being retired."""
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            if self._holders.release(pool):
                await pool.aclose()
        if not self._holders.counts:
            await self._holders.close_retiring()
