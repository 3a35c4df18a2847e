"""Batches of changed files under watched folders, recursive or not, until told to stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from edgesim.config.load import load_distribution_data
from edgesim.frontdoors.watching import Root, distribution_roots, watch


@asynccontextmanager
async def watching(roots: Sequence[Root]) -> AsyncIterator[asyncio.Queue[set[Path]]]:
    """Follow ``roots`` in a task, as a front door does; its batches, once the watchers run."""
    stop, ready = asyncio.Event(), asyncio.Event()
    batches: asyncio.Queue[set[Path]] = asyncio.Queue()

    async def follow() -> None:
        async for batch in watch(roots, stop, ready=ready):
            batches.put_nowait(batch)

    follower = asyncio.ensure_future(follow())
    try:
        await asyncio.wait_for(ready.wait(), 30)
        yield batches
    finally:
        stop.set()
        await asyncio.wait_for(follower, 30)


async def _seen_until(batches: asyncio.Queue[set[Path]], wanted: Path) -> set[Path]:
    """Every path of the batches up to the one holding ``wanted``."""
    seen: set[Path] = set()
    while wanted not in seen:
        seen |= await asyncio.wait_for(batches.get(), 30)
    return seen


async def test_changes_come_in_batches_from_each_kind_of_root(tmp_path: Path) -> None:
    flat, deep = tmp_path / "flat", tmp_path / "deep"
    (flat / "sub").mkdir(parents=True)
    (deep / "sub").mkdir(parents=True)
    async with watching([([flat], False), ([deep], True)]) as batches:
        # Not recursive: a file in a subfolder is not seen; a file of the folder is.
        (flat / "sub" / "ignored.yaml").write_text("x")
        (flat / "dist.yaml").write_text("x")
        seen = await _seen_until(batches, flat / "dist.yaml")
        # Recursive: a file deep in the folder is seen.
        (deep / "sub" / "app.py").write_text("x")
        seen |= await _seen_until(batches, deep / "sub" / "app.py")
    assert flat / "sub" / "ignored.yaml" not in seen


async def test_setting_stop_ends_the_batches_without_a_change(tmp_path: Path) -> None:
    async with watching([([tmp_path], True)]) as batches:
        pass
    assert batches.empty()


async def test_no_roots_is_ready_at_once_and_waits_for_stop() -> None:
    async with watching([([], True)]) as batches:
        await asyncio.sleep(0.05)
    assert batches.empty()


def test_a_distribution_is_watched_by_its_files_folder_and_its_functions_code(
    tmp_path: Path,
) -> None:
    for folder in ("fn", "fn/inner", "other"):
        (tmp_path / folder).mkdir(parents=True)
    data = {
        "origins": {"site": {"url": "http://127.0.0.1:8080"}},
        "functions": {
            name: {"runtime": "python3.12", "code": code, "handler": "app.handler"}
            for name, code in (("outer", "fn"), ("inner", "fn/inner"), ("other", "other"))
        },
        "behaviors": [{"path_pattern": "*", "origin": "site"}],
    }
    file = tmp_path / "dist.yaml"
    distribution = load_distribution_data(data, name="dist.yaml", source=file, base_dir=tmp_path)
    folders, code = distribution_roots([file], [distribution])
    assert folders == (frozenset({tmp_path.resolve()}), False)
    # fn/inner is watched with fn, which holds it.
    assert code == (frozenset({(tmp_path / "fn").resolve(), (tmp_path / "other").resolve()}), True)
