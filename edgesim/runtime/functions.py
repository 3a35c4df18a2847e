"""The functions of one edgesim process: one :class:`FunctionPool` per function, by name."""

from __future__ import annotations

from collections.abc import Iterable

from edgesim.runtime.pool import FunctionPool
from edgesim.runtime.spec import FunctionSpec, InvocationResult, LogSink

__all__ = ["FunctionRuntime"]


class FunctionRuntime:
    """The pools of every function of one edgesim process, by function name."""

    def __init__(self, specs: Iterable[FunctionSpec], *, log_sink: LogSink | None = None) -> None:
        """Raises :class:`RuntimeUnavailableError` for a runtime that cannot run here and
        :class:`ValueError` for two functions with one name."""
        self._pools: dict[str, FunctionPool] = {}
        for spec in specs:
            if spec.name in self._pools:
                raise ValueError(f"two functions are named {spec.name!r}")
            self._pools[spec.name] = FunctionPool(spec, log_sink=log_sink)

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

    async def aclose(self) -> None:
        """Close every pool."""
        for pool in self._pools.values():
            await pool.aclose()
