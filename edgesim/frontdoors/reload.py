"""Hot reload: ``edgesim serve`` follows the distribution files and function folders as they change.

The :class:`Reloader` watches each distribution file (its folder, not recursively) and each
function's code folder (recursively) with watchfiles, and applies each batch of changes:

- a changed function folder: the function's code is checked in a worker (it imports and exports
  its handler), then the function gets a new pool. New invocations start fresh workers on the new
  code; invocations already running finish on the old workers, which then end.
- a changed distribution file: it is loaded and validated, the functions it adds or changes are
  checked, then a new :class:`Edge` is built and swapped in on the same port
  (:meth:`EdgeServer.swap`): requests already in flight finish on the old edge, which is closed
  once idle. Functions whose settings and code did not change keep their warm workers.
- a broken edit (the file does not load, a function does not import) changes nothing: the old
  version keeps serving and the reason is printed once, until the next edit changes it.

The cache, shared by every distribution, loses the objects of a distribution whose behaviors
(paths, policies, functions) changed, or whose origin-request or origin-response function's code
changed, since what is cached was made by them; a line says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from edgesim.config import Distribution, load_distributions
from edgesim.exceptions import ConfigError, EdgesimError
from edgesim.frontdoors.code_check import check_functions
from edgesim.frontdoors.server import EdgeServer
from edgesim.frontdoors.watching import DistributionRoots, distribution_roots, watch
from edgesim.pipeline import Edge
from edgesim.pipeline.cache_stage import DEFAULT_MAX_OBJECT_BYTES
from edgesim.pipeline.functions import function_specs
from edgesim.runtime import FunctionRuntime, FunctionSpec
from edgesim.types import CacheStore, EventType, LogSink

__all__ = ["EdgeBuilder", "EdgeFactory", "Reloader", "plain_edge"]

_ORIGIN_TRIGGERS = (EventType.ORIGIN_REQUEST, EventType.ORIGIN_RESPONSE)


EdgeBuilder = Callable[[Distribution, FunctionRuntime], Edge]


def plain_edge(
    store: CacheStore,
    *,
    log_sink: LogSink | None = None,
    max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES,
) -> EdgeBuilder:
    """An :data:`EdgeBuilder` of plain :class:`Edge` objects sharing one cache ``store``."""

    def build(distribution: Distribution, runtime: FunctionRuntime) -> Edge:
        return Edge(
            distribution,
            runtime=runtime,
            store=store,
            log_sink=log_sink,
            max_object_bytes=max_object_bytes,
        )

    return build


class EdgeFactory:
    """How ``edgesim serve`` builds the edge of a distribution, at start and on every reload.

    ``build`` wraps a distribution and its function runtime into an edge (the front door's own
    kind of edge, its cache store, its log sink); the factory makes the runtime, with the debug
    ports of the functions a debugger may attach to (``--inspect``), and on a reload hands the
    warm pools of unchanged functions from the old edge's runtime to the new one's.
    """

    def __init__(
        self,
        build: EdgeBuilder,
        *,
        log_sink: LogSink | None = None,
        debug_ports: Mapping[str, int] | None = None,
    ) -> None:
        self._build = build
        self._log_sink = log_sink
        self.debug_ports: Mapping[str, int] = dict(debug_ports or {})
        self._runtimes: dict[Edge, FunctionRuntime] = {}

    def specs(self, distribution: Distribution) -> list[FunctionSpec]:
        """The distribution's functions as the runtime runs them here."""
        return [
            dataclasses.replace(spec, debug_port=self.debug_ports.get(spec.name))
            for spec in function_specs(distribution)
        ]

    def edge(
        self,
        distribution: Distribution,
        *,
        previous: Edge | None = None,
        restart: Sequence[str] = (),
    ) -> Edge:
        """A new edge; with ``previous``, it takes over that edge's warm pools of functions that
        did not change and are not in ``restart``."""
        specs = self.specs(distribution)
        old = None if previous is None else self._runtimes.pop(previous, None)
        if old is not None:
            runtime = old.successor(specs, restart=restart)
        else:
            runtime = FunctionRuntime(specs, log_sink=self._log_sink)
        edge = self._build(distribution, runtime)
        self._runtimes[edge] = runtime
        return edge

    def runtime(self, edge: Edge) -> FunctionRuntime | None:
        """The function runtime of an edge this factory built and has not replaced."""
        return self._runtimes.get(edge)


def _print(line: str) -> None:
    print(f"edgesim: {line}", file=sys.stderr, flush=True)


class Reloader:
    """Keeps ``server`` serving what ``files`` (one per listener, in order) say now."""

    def __init__(
        self,
        server: EdgeServer,
        files: Sequence[Path],
        factory: EdgeFactory,
        *,
        info: Callable[[str], None] = _print,
        warning: Callable[[str], None] = _print,
    ) -> None:
        self._server = server
        self._files = list(files)
        self._factory = factory
        self._info = info
        self._warning = warning
        self._shown: dict[str, str] = {}
        self.ready = asyncio.Event()
        """Set once the watchers run: changes from then on are seen."""

    async def run(self, stop: asyncio.Event) -> None:
        """Watch and apply changes until ``stop`` is set."""
        while not stop.is_set():
            roots = self._roots()
            async with contextlib.aclosing(watch(roots, stop, ready=self.ready)) as batches:
                async for batch in batches:
                    await self.apply(batch)
                    if self._roots() != roots:
                        break  # a function folder came or went: watch the new set

    def _roots(self) -> DistributionRoots:
        return distribution_roots(
            self._files, (listener.edge.distribution for listener in self._server.listeners)
        )

    async def apply(self, changed: set[Path]) -> None:
        """Apply one batch of changed paths (absolute)."""
        changed = {path.resolve() for path in changed}
        for index, file in enumerate(self._files):
            edge = self._server.listeners[index].edge
            touched = [
                name
                for name, function in edge.distribution.functions.items()
                if any(path.is_relative_to(function.code.resolve()) for path in changed)
            ]
            if file.resolve() in changed:
                await self._reload_distribution(index, file, touched)
            elif touched:
                await self._reload_functions(index, file, touched)

    async def _reload_distribution(self, index: int, file: Path, touched: list[str]) -> None:
        edge = self._server.listeners[index].edge
        try:
            distribution = load_distributions(self._files)[index]
        except ConfigError as error:
            self._problem(str(file), f"{error} (still serving the previous version)")
            return
        # Functions whose settings and code are as before were checked when they came.
        before = {spec.name: spec for spec in self._factory.specs(edge.distribution)}
        changed = [
            spec
            for spec in self._factory.specs(distribution)
            if spec.name in touched or before.get(spec.name) != spec
        ]
        if not await self._checked(str(file), changed):
            return
        new = self._factory.edge(distribution, previous=edge, restart=touched)
        self._server.swap(index, new)
        self._shown.pop(str(file), None)
        self._info(f"{file}: reloaded")
        old, now = edge.distribution, distribution
        if old.behaviors != now.behaviors or old.settings.id != now.settings.id:
            await self._drop_cache(edge, f"{file}: the behaviors changed")
        elif self._origin_side(now, touched):
            await self._drop_cache(edge, f"{file}: an origin-side function changed")

    async def _reload_functions(self, index: int, file: Path, names: list[str]) -> None:
        edge = self._server.listeners[index].edge
        runtime = self._factory.runtime(edge)
        if runtime is None:
            return
        specs = [s for s in self._factory.specs(edge.distribution) if s.name in names]
        if not await self._checked(str(file), specs):
            return
        for spec in specs:
            runtime.replace(spec)
            self._info(f"function {spec.name}: reloaded (new invocations get new workers)")
        if self._origin_side(edge.distribution, names):
            await self._drop_cache(edge, f"{file}: an origin-side function changed")

    async def _checked(self, file: str, specs: list[FunctionSpec]) -> bool:
        """Whether these functions' code loads; what does not is printed once."""
        try:
            problems = await check_functions(file, specs)
        except EdgesimError as error:
            problems = [ConfigError(file, "", str(error))]
        broken = {problem.key.split(".")[1] for problem in problems if problem.key}
        for spec in specs:
            if spec.name not in broken:
                self._shown.pop(f"{file}#{spec.name}", None)
        for problem in problems:
            name = problem.key.split(".")[1] if problem.key else ""
            self._problem(f"{file}#{name}", f"{problem} (still serving the previous version)")
        return not problems

    def _problem(self, key: str, text: str) -> None:
        if self._shown.get(key) != text:
            self._shown[key] = text
            self._warning(text)

    @staticmethod
    def _origin_side(distribution: Distribution, names: list[str]) -> bool:
        """Whether one of ``names`` runs at an origin trigger of some behavior."""
        return any(
            association.function in names
            for behavior in distribution.behaviors
            for trigger, association in behavior.functions.items()
            if trigger in _ORIGIN_TRIGGERS
        )

    async def _drop_cache(self, edge: Edge, why: str) -> None:
        identifier = edge.distribution.settings.id
        dropped = await edge.store.invalidate(identifier, ["/*"])
        self._info(f"{why}; dropped the cache of {identifier} ({dropped} objects)")
