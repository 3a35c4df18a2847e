"""A pool's idle workers: most recent first, retired after the idle time, watched while idle."""

from __future__ import annotations

import asyncio
import sys

from edgesim.runtime.idle import IdleWorkers
from edgesim.runtime.launch import WORKER_PATH
from edgesim.runtime.worker import Broken, Exited, WorkerProcess
from tests.runtime.helpers import FIXTURES, MIB

# A stand-in worker: ready at once, then does what BODY says while idle.
PRELUDE = """\
import json, os, struct, sys, time
OUT = int(dict(zip(sys.argv[1::2], sys.argv[2::2]))["--out-fd"])
body = json.dumps({"type": "ready"}).encode()
os.write(OUT, struct.pack(">I", len(body)) + body)
"""


async def started(body: str) -> WorkerProcess:
    worker = await WorkerProcess.start(
        [sys.executable, "-I", "-S", "-c", PRELUDE + body],
        env={"PATH": WORKER_PATH},
        cwd=FIXTURES,
        memory_limit_bytes=128 * MIB,
    )
    await worker.exchange(None, 10)
    return worker


async def test_the_most_recent_is_taken_and_a_silent_worker_is_not_lost() -> None:
    lost: list[object] = []

    async def on_lost(worker: WorkerProcess, what: Exited | Broken) -> None:
        lost.append(what)

    idle = IdleWorkers(60, on_retire=lambda w: None, on_lost=on_lost)
    first, second = await started("time.sleep(60)"), await started("time.sleep(60)")
    idle.put(first)
    idle.put(second)
    assert idle.take() is second and idle.take() is first and idle.take() is None
    assert lost == []
    for worker in (first, second):
        await worker.discard()


async def test_a_worker_that_dies_or_writes_while_idle_is_lost_not_taken() -> None:
    lost: asyncio.Queue[tuple[WorkerProcess, Exited | Broken]] = asyncio.Queue()

    async def on_lost(worker: WorkerProcess, what: Exited | Broken) -> None:
        await worker.discard()
        lost.put_nowait((worker, what))

    idle = IdleWorkers(60, on_retire=lambda w: None, on_lost=on_lost)
    dying = await started("time.sleep(0.1); os._exit(5)")
    chatty = await started("time.sleep(0.1); os.write(OUT, b'x'); time.sleep(60)")
    idle.put(dying)
    idle.put(chatty)
    outcomes = {}
    async with asyncio.timeout(10):
        for _ in range(2):
            worker, what = await lost.get()
            outcomes[worker] = what
    assert outcomes[dying] == Exited(5)
    assert isinstance(outcomes[chatty], Broken)
    assert len(idle) == 0 and idle.take() is None


async def test_an_idle_worker_retires_after_the_idle_time() -> None:
    retired: asyncio.Queue[WorkerProcess] = asyncio.Queue()
    idle = IdleWorkers(0.05, on_retire=retired.put_nowait, on_lost=lambda w, o: asyncio.sleep(0))
    worker = await started("time.sleep(60)")
    idle.put(worker)
    async with asyncio.timeout(10):
        assert await retired.get() is worker
    assert worker not in idle
    await worker.discard()
