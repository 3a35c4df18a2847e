"""Background tasks stay referenced until they end."""

import asyncio
import gc

from edgesim.tasks import _running, spawn


async def test_spawned_task_survives_garbage_collection_and_is_named() -> None:
    done = asyncio.Event()

    async def work() -> int:
        await asyncio.sleep(0)
        gc.collect()
        done.set()
        return 7

    task = spawn(work(), name="edgesim-test")
    assert task.get_name() == "edgesim-test"
    assert task in _running
    await done.wait()
    assert await task == 7
    await asyncio.sleep(0)
    assert task not in _running
