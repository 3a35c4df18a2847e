"""Changed files under a set of folders, in batches: what hot reload reacts to.

One mechanism for every front door that follows files as they change (``edgesim serve`` and
the mitmproxy addon): watchfiles watches each root, some recursively (a function's code folder)
and some not (the folder of a distribution file, which may be a whole project), and an editor's
save, a burst of events, comes out as one batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from watchfiles import awatch

from edgesim.tasks import spawn

if TYPE_CHECKING:
    from edgesim.config import Distribution

__all__ = ["DistributionRoots", "Root", "distribution_roots", "watch"]

# watchfiles yields a batch once no change has come for this long, and looks at its stop event
# this often.
_QUIET_MS = 50
_WAKE_MS = 200

Root = tuple[Iterable[Path], bool]
"""Folders to watch, and whether their subfolders are watched too."""

DistributionRoots = tuple[tuple[frozenset[Path], bool], tuple[frozenset[Path], bool]]
"""(the distribution files' folders, not recursive), (their functions' code, recursive)."""


def distribution_roots(
    files: Iterable[Path], distributions: Iterable[Distribution]
) -> DistributionRoots:
    """What hot reload watches for distribution ``files`` and the functions of
    ``distributions``: each file's folder alone (it may be a whole project), each function's
    code folder with everything in it. Paths are resolved, as watchfiles reports them."""
    folders = {file.resolve().parent for file in files}
    code = {
        function.code.resolve()
        for distribution in distributions
        for function in distribution.functions.values()
    }
    # A folder inside another one is already watched with it.
    code = {c for c in code if not any(c != o and c.is_relative_to(o) for o in code)}
    return (frozenset(folders), False), (frozenset(code), True)


async def watch(
    roots: Sequence[Root], stop: asyncio.Event, *, ready: asyncio.Event | None = None
) -> AsyncGenerator[set[Path], None]:
    """The paths changed under ``roots``, one set per batch, until ``stop`` is set.

    ``ready`` is set once every watcher runs: changes from then on are seen. Use it with
    :func:`contextlib.aclosing` so that leaving the loop early stops the watchers at once.
    """
    batches: asyncio.Queue[set[Path]] = asyncio.Queue()
    halt = asyncio.Event()
    watched = [(folders, recursive) for paths, recursive in roots if (folders := frozenset(paths))]
    started = [asyncio.Event() for _ in watched]
    watchers = [
        spawn(_watch(paths, recursive, halt, batches, up), name="edgesim-watch")
        for (paths, recursive), up in zip(watched, started, strict=True)
    ]
    waiting = spawn(_all_set(started, ready), name="edgesim-watch-ready")
    stopped = spawn(stop.wait(), name="edgesim-watch-stop")
    try:
        while True:
            batch = spawn(batches.get(), name="edgesim-watch-batch")
            await asyncio.wait({batch, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not batch.done():
                batch.cancel()
                return
            yield batch.result()
    finally:
        halt.set()
        stopped.cancel()
        waiting.cancel()
        await asyncio.wait([stopped, waiting, *watchers])


async def _watch(
    paths: frozenset[Path],
    recursive: bool,
    halt: asyncio.Event,
    batches: asyncio.Queue[set[Path]],
    started: asyncio.Event,
) -> None:
    async for changes in awatch(
        *paths,
        recursive=recursive,
        stop_event=halt,
        step=_QUIET_MS,
        rust_timeout=_WAKE_MS,
        yield_on_timeout=True,
    ):
        started.set()
        if changes:
            batches.put_nowait({Path(path) for _, path in changes})


async def _all_set(events: list[asyncio.Event], ready: asyncio.Event | None) -> None:
    for event in events:
        await event.wait()
    if ready is not None:
        ready.set()
