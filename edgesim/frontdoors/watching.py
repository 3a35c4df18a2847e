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

from watchfiles import awatch

from edgesim.tasks import spawn

__all__ = ["Root", "watch"]

# watchfiles yields a batch once no change has come for this long, and looks at its stop event
# this often.
_QUIET_MS = 50
_WAKE_MS = 200

Root = tuple[Iterable[Path], bool]
"""Folders to watch, and whether their subfolders are watched too."""


async def watch(
    roots: Sequence[Root], stop: asyncio.Event, *, ready: asyncio.Event | None = None
) -> AsyncGenerator[set[Path], None]:
    """The paths changed under ``roots``, one set per batch, until ``stop`` is set.

    ``ready`` is set once every watcher runs: changes from then on are seen. Use it with
    :func:`contextlib.aclosing` so that leaving the loop early stops the watchers at once.
    """
    batches: asyncio.Queue[set[Path]] = asyncio.Queue()
    halt = asyncio.Event()
    watched = [(frozenset(paths), recursive) for paths, recursive in roots]
    watched = [(paths, recursive) for paths, recursive in watched if paths]
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
