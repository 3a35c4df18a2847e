"""Function pools against real worker processes running the fixture functions: concurrency and
throttling, waiting for a worker, idle workers, shutdown and cancellation, and the log frames."""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from edgesim.exceptions import LambdaExecutionError, LambdaLimitExceeded, RuntimeUnavailableError
from edgesim.runtime import FunctionPool
from edgesim.tasks import spawn
from tests.runtime.helpers import (
    FIXTURES,
    LogRecorder,
    PoolFactory,
    descendants,
    exits,
    living,
    spec_for,
)

ROOT = Path(__file__).resolve().parents[2]
NODE_ECHO = ROOT / "tests" / "fixtures" / "node" / "echo"


async def test_invocations_beyond_the_reserved_concurrency_are_throttled(
    make_pool: PoolFactory,
) -> None:
    # Ample time for the two admitted sleeps: only the concurrency check may refuse one.
    pool = make_pool("slow", reserved_concurrency=2, timeout_s=30.0)
    outcomes = await asyncio.gather(
        *(pool.invoke({"sleep": 0.3}) for _ in range(3)), return_exceptions=True
    )
    throttled = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(throttled) == 1
    assert isinstance(throttled[0], LambdaLimitExceeded)
    assert throttled[0].reason == "Rate Exceeded."
    workers = pool.worker_pids
    assert len(workers) == 2
    later = await pool.invoke({"sleep": 0})
    assert isinstance(later.value, dict) and later.report.init_duration_ms is None
    assert pool.worker_pids == workers


async def test_log_frame_holds_the_invocation_output_in_order(make_pool: PoolFactory) -> None:
    logs = LogRecorder()
    pool = make_pool("logs", log_sink=logs, version="3")
    cold = await pool.invoke({"n": 1})
    warm = await pool.invoke({"n": 2})
    assert cold.value == warm.value == "done"
    assert [name for name, _ in logs.frames] == ["logs", "logs"]
    for report, frame, n, init in [
        (cold.report, logs.frames[0][1], 1, ["loading function"]),
        (warm.report, logs.frames[1][1], 2, []),
    ]:
        rid = report.request_id
        body = frame[len(init) :]
        assert frame[: len(init)] == init
        assert body[0] == f"START RequestId: {rid} Version: 3"
        assert body[1:3] == ["one", "two"]
        assert re.fullmatch(
            rf"\[INFO\]\t\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\t{rid}\tthree {n}", body[3]
        )
        assert body[4:6] == ["four (no newline)", f"END RequestId: {rid}"]
        assert body[6] == (
            f"REPORT RequestId: {rid}\tDuration: {report.duration_ms:.2f} ms\t"
            f"Billed Duration: {report.billed_ms} ms\tMemory Size: 128 MB\t"
            f"Max Memory Used: {report.max_memory_used_mb} MB"
            + (f"\tInit Duration: {report.init_duration_ms:.2f} ms" if init else "")
        )
        assert len(body) == 7


async def test_aclose_kills_busy_and_idle_workers_and_their_children(
    make_pool: PoolFactory,
) -> None:
    pool = make_pool("spawner", timeout_s=5.0)
    await asyncio.gather(pool.invoke({"sleep": 0.2}), pool.invoke({"sleep": 0.2}))
    workers = pool.worker_pids
    children = descendants(workers)
    assert len(workers) == 2 and len(children) == 2

    busy = spawn(pool.invoke({"sleep": 30}), name="busy-invocation")
    await asyncio.sleep(0)  # one loop turn: the invoke request is on its way
    await pool.aclose()
    with pytest.raises(LambdaExecutionError) as caught:
        await busy
    assert "signal: killed" in caught.value.reason
    assert pool.worker_pids == []
    assert not [pid for pid in workers if psutil.pid_exists(pid)]
    assert [await exits(pid) for pid in children] == [True, True]
    with pytest.raises(RuntimeUnavailableError):
        await pool.invoke({})


async def test_a_cancelled_invocation_does_not_leave_its_worker_behind(
    make_pool: PoolFactory,
) -> None:
    pool = make_pool("slow", timeout_s=5.0)
    warm = await pool.invoke({"sleep": 0})
    assert isinstance(warm.value, dict)
    [warm_pid] = pool.worker_pids
    task = spawn(pool.invoke({"sleep": 30}), name="cancelled-invocation")
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    fresh = await pool.invoke({"sleep": 0})
    assert isinstance(fresh.value, dict) and fresh.report.init_duration_ms is not None
    await pool.aclose()
    assert not living([warm_pid])


async def test_a_failing_log_sink_does_not_fail_the_invocation(
    make_pool: PoolFactory, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_sink(name: str, lines: list[str]) -> None:
        raise OSError("disk full")

    pool = FunctionPool(spec_for("echo"), log_sink=broken_sink)
    try:
        with caplog.at_level(logging.ERROR, logger="edgesim.runtime.pool"):
            result = await pool.invoke({"a": 1})
    finally:
        await pool.aclose()
    assert isinstance(result.value, dict) and result.value["event"] == {"a": 1}
    assert "log sink failed for function 'echo'" in caplog.text


async def test_an_unreserved_burst_beyond_the_worker_cap_waits_and_is_served(
    make_pool: PoolFactory,
) -> None:
    # Lambda's default is unreserved: a cold burst is served, never throttled at 10.
    pool = make_pool("slow", max_workers=2, timeout_s=30.0)
    outcomes = await asyncio.gather(*(pool.invoke({"sleep": 0.2}) for _ in range(6)))
    pids = {o.value["pid"] for o in outcomes}  # type: ignore[index]
    assert len(outcomes) == 6 and len(pids) <= 2
    assert len(pool.worker_pids) <= 2


async def test_the_wait_for_a_worker_is_neither_timeout_nor_duration(
    make_pool: PoolFactory,
) -> None:
    # One worker, four invocations of 0.4 s each: the last waits 1.2 s, longer than the 1 s
    # timeout (Lambda's shortest); it is still served, because its time starts when it gets
    # the worker.
    pool = make_pool("slow", max_workers=1, timeout_s=1.0)
    outcomes = await asyncio.gather(*(pool.invoke({"sleep": 0.4}) for _ in range(4)))
    assert all(o.report.duration_ms < 1000 for o in outcomes)
    assert len({o.value["pid"] for o in outcomes}) == 1  # type: ignore[index]


async def test_a_throttle_names_the_function_and_the_setting(make_pool: PoolFactory) -> None:
    log = LogRecorder()
    pool = make_pool("slow", reserved_concurrency=1, timeout_s=30.0, log_sink=log)
    outcomes = await asyncio.gather(
        *(pool.invoke({"sleep": 0.3}) for _ in range(2)), return_exceptions=True
    )
    assert sum(isinstance(o, LambdaLimitExceeded) for o in outcomes) == 1
    throttles = [lines for _, lines in log.frames if lines[0].startswith("Throttled")]
    assert throttles == [
        ["Throttled: function 'slow' has 1 invocations running and reserved_concurrency is 1 "
         "(503 LambdaLimitExceeded)"]
    ]  # fmt: skip


async def test_idle_workers_retire_so_pools_shrink(make_pool: PoolFactory) -> None:
    pool = make_pool("slow", idle_timeout_s=0.2)
    first = await pool.invoke({"sleep": 0})
    assert first.report.init_duration_ms is not None and len(pool.worker_pids) == 1
    for _ in range(400):  # wait until the idle worker has been retired and reaped
        if not pool.worker_pids:
            break
        await asyncio.sleep(0.05)
    assert pool.worker_pids == []
    again = await pool.invoke({"sleep": 0})
    assert again.report.init_duration_ms is not None  # a cold start: the old worker is gone


@pytest.mark.parametrize("runtime", ["python3.12", "nodejs20.x"])
def test_a_worker_is_measured_alone_whatever_the_parent_holds(runtime: str) -> None:
    """A parent holding far more than 128 MB cold-starts a 128 MB function: the worker's own
    peak is what counts, not the high-water mark the fork would carry over."""
    folder = FIXTURES / "echo" if runtime.startswith("python") else NODE_ECHO
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from edgesim.runtime import FunctionPool, FunctionSpec

        held = bytearray(400 * 1024 * 1024)
        for i in range(0, len(held), 4096):
            held[i] = 1  # touch every page: the parent's peak is now over 400 MB

        async def main():
            spec = FunctionSpec(name="echo", runtime={runtime!r}, code_dir=Path({str(folder)!r}),
                                handler="index.handler", memory_mb=128, timeout_s=30.0)
            pool = FunctionPool(spec)
            try:
                result = await pool.invoke({{"a": 1}})
                print(result.report.max_memory_used_mb)
            finally:
                await pool.aclose()

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) < 128
