"""Function pools against real worker processes running the fixture functions."""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from edgesim.exceptions import (
    LambdaExecutionError,
    LambdaLimitExceeded,
    LambdaValidationError,
    RuntimeUnavailableError,
)
from edgesim.runtime import FunctionPool
from edgesim.runtime import pool as pool_module
from edgesim.runtime.pool import INVALID_JSON
from edgesim.runtime.worker import WorkerProcess
from edgesim.tasks import spawn
from tests.runtime.helpers import (
    FIXTURES,
    UUID,
    LogRecorder,
    PoolFactory,
    descendants,
    exits,
    living,
    spec_for,
)

ROOT = Path(__file__).resolve().parents[2]
NODE_ECHO = ROOT / "tests" / "fixtures" / "node" / "echo"


async def test_invoke_returns_the_value_and_a_report(make_pool: PoolFactory) -> None:
    pool = make_pool("echo")
    result = await pool.invoke({"hello": "world"})
    assert isinstance(result.value, dict)
    assert result.value["event"] == {"hello": "world"}
    report = result.report
    assert re.fullmatch(UUID, report.request_id)
    assert report.memory_size_mb == 128
    assert 5 <= report.max_memory_used_mb <= 128
    assert report.billed_ms >= max(1, report.duration_ms)
    assert report.billed_ms < report.duration_ms + 1 or report.billed_ms == 1
    assert report.init_duration_ms is not None and report.init_duration_ms > 0


async def test_warm_worker_is_reused_and_only_the_cold_start_has_init(
    make_pool: PoolFactory,
) -> None:
    pool = make_pool("echo")
    first = await pool.invoke({})
    second = await pool.invoke({})
    assert isinstance(first.value, dict) and isinstance(second.value, dict)
    assert first.value["pid"] == second.value["pid"]
    assert len(pool.worker_pids) == 1
    assert first.report.init_duration_ms is not None
    assert second.report.init_duration_ms is None
    assert first.report.request_id != second.report.request_id


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("none", None), ("string", "just a string"), ("list", [1, "two", {"three": 3.0}])],
)
async def test_any_json_value_comes_back_unchanged(
    make_pool: PoolFactory, kind: str, expected: object
) -> None:
    result = await make_pool("values").invoke({"kind": kind})
    assert result.value == expected


@pytest.mark.parametrize("kind", ["set", "nan", "huge"])
async def test_a_value_that_is_not_json_fails_validation_and_keeps_the_worker(
    make_pool: PoolFactory, kind: str
) -> None:
    pool = make_pool("values")
    await pool.invoke({"kind": "none"})
    pids = pool.worker_pids
    with pytest.raises(LambdaValidationError) as caught:
        await pool.invoke({"kind": kind})
    assert caught.value.reason == INVALID_JSON
    assert (await pool.invoke({"kind": "string"})).value == "just a string"
    assert pool.worker_pids == pids


async def test_an_exception_is_an_execution_error_and_the_worker_stays_warm(
    make_pool: PoolFactory,
) -> None:
    logs = LogRecorder()
    pool = make_pool("raises", log_sink=logs)
    before = await pool.invoke({"ok": True})
    with pytest.raises(LambdaExecutionError) as caught:
        await pool.invoke({"detail": "bad input"})
    assert caught.value.reason == "ValueError: boom: bad input"
    frame = logs.last
    error_at = frame.index("[ERROR] ValueError: boom: bad input")
    assert frame[error_at + 1] == "Traceback (most recent call last):"
    assert any("in fail" in line for line in frame[error_at:])
    assert not any("python_worker" in line for line in frame)
    after = await pool.invoke({"ok": True})
    assert after.value == before.value
    assert after.report.init_duration_ms is None


@pytest.mark.parametrize(
    ("how", "reason", "detail"),
    [
        (
            "exit",
            "Runtime exited with error: exit status 3 (Runtime.ExitError)",
            "Runtime exited with error: exit status 3",
        ),
        (
            "segfault",
            "Runtime exited with error: signal: segmentation fault (Runtime.ExitError)",
            "Runtime exited with error: signal: segmentation fault",
        ),
        (
            "sys.exit",
            "Runtime exited without providing a reason (Runtime.ExitError)",
            "Runtime exited without providing a reason",
        ),
    ],
)
async def test_a_crash_costs_one_invocation_and_the_worker_is_replaced(
    make_pool: PoolFactory, how: str, reason: str, detail: str
) -> None:
    logs = LogRecorder()
    pool = make_pool("crash", log_sink=logs)
    first = await pool.invoke({})
    assert isinstance(first.value, dict)
    [old_pid] = pool.worker_pids
    with pytest.raises(LambdaExecutionError) as caught:
        await pool.invoke({"how": how})
    assert caught.value.reason == reason
    assert old_pid not in pool.worker_pids
    assert not living([old_pid])
    frame = logs.last
    request_id = frame[0].split()[2]
    assert f"about to crash: {how}" in frame
    assert frame[-2:] == [f"RequestId: {request_id} Error: {detail}", "Runtime.ExitError"]
    assert frame[-3].startswith(f"REPORT RequestId: {request_id}\t")
    again = await pool.invoke({})
    assert isinstance(again.value, dict)
    assert pool.worker_pids != [old_pid]
    assert again.report.init_duration_ms is not None


async def test_timeout_kills_the_worker_and_the_next_invocation_is_cold(
    make_pool: PoolFactory,
) -> None:
    logs = LogRecorder()
    pool = make_pool("slow", timeout_s=0.5, log_sink=logs)
    first = await pool.invoke({"sleep": 0})
    assert isinstance(first.value, dict)
    first_workers = pool.worker_pids
    started = time.perf_counter()
    with pytest.raises(LambdaLimitExceeded) as caught:
        await pool.invoke({"sleep": 30})
    waited_ms = (time.perf_counter() - started) * 1000
    assert caught.value.reason == "Task timed out after 0.50 seconds"
    assert not living(first_workers)
    frame = logs.last
    request_id = frame[0].split()[2]
    assert frame[1] == "sleeping 30"
    assert frame[2] == f"END RequestId: {request_id}"
    duration = re.search(r"\tDuration: ([\d.]+) ms", frame[3])
    # At least the limit, at most what the caller waited, and the caller was back well before
    # the function's sleep could have ended.
    assert duration is not None and 500 <= float(duration.group(1)) <= waited_ms < 30_000
    assert re.fullmatch(
        rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z {request_id} "
        r"Task timed out after 0\.50 seconds",
        frame[4],
    )
    after = await pool.invoke({"sleep": 0})
    assert isinstance(after.value, dict)
    assert pool.worker_pids != first_workers
    assert after.report.init_duration_ms is not None


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


async def test_vendored_packages_and_nested_handlers_are_importable(
    make_pool: PoolFactory,
) -> None:
    vendored = await make_pool("vendored", handler="lambda_function.lambda_handler").invoke(
        {"name": "edge"}
    )
    assert vendored.value == {
        "greeting": "hello, edge",
        "from": str(FIXTURES / "vendored" / "tinylib" / "__init__.py"),
    }
    nested = await make_pool("nested", handler="pkg/mod.fn").invoke({})
    assert nested.value == {"module": "pkg.mod"}


@pytest.mark.parametrize(
    ("fixture", "handler", "reason"),
    [
        (
            "echo",
            "missing_module.handler",
            "Runtime.ImportModuleError: Unable to import module 'missing_module': "
            "No module named 'missing_module'",
        ),
        (
            "importerror",
            "index.handler",
            "Runtime.ImportModuleError: Unable to import module 'index': "
            "No module named 'edgesim_fixture_missing_dependency'",
        ),
        (
            "echo",
            "index.no_such_function",
            "Runtime.HandlerNotFound: Handler 'no_such_function' missing on module 'index'",
        ),
        ("echo", "index", "Runtime.MalformedHandlerName: Bad handler 'index'"),
        ("initraise", "index.handler", "RuntimeError: configuration missing"),
    ],
)
async def test_init_failures_are_execution_errors_and_discard_the_worker(
    make_pool: PoolFactory, fixture: str, handler: str, reason: str
) -> None:
    pool = make_pool(fixture, handler=handler)
    for _ in range(2):
        with pytest.raises(LambdaExecutionError) as caught:
            await pool.invoke({})
        assert caught.value.reason.startswith(reason)
        assert pool.worker_pids == []


async def test_init_failure_log_puts_init_output_before_start(make_pool: PoolFactory) -> None:
    logs = LogRecorder()
    pool = make_pool("initraise", log_sink=logs)
    with pytest.raises(LambdaExecutionError):
        await pool.invoke({})
    frame = logs.last
    start = next(i for i, line in enumerate(frame) if line.startswith("START "))
    assert frame[:2] == ["reading configuration", "[ERROR] RuntimeError: configuration missing"]
    assert any("load_configuration" in line for line in frame[:start])
    assert frame[start + 1].startswith("END RequestId: ")
    assert frame[start + 2].startswith("REPORT RequestId: ")
    assert "Init Duration" not in frame[start + 2]


async def test_an_init_phase_past_its_limit_is_a_timeout(
    make_pool: PoolFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool_module, "INIT_TIMEOUT_S", 0.3)
    printed = b"warming a cache that never finishes\n"
    start = WorkerProcess.start
    starts = 0

    async def start_once_init_printed(*args: Any, **kwargs: Any) -> WorkerProcess:
        # The init clock starts when the worker is handed over, so a slow interpreter start
        # cannot use up the limit before the import has printed its line.
        nonlocal starts
        starts += 1
        worker = await start(*args, **kwargs)
        await worker.log.wait_for_output(len(printed))
        return worker

    monkeypatch.setattr(WorkerProcess, "start", start_once_init_printed)
    logs = LogRecorder()
    pool = make_pool("slowinit", log_sink=logs, timeout_s=0.5)
    with pytest.raises(LambdaLimitExceeded) as caught:
        await pool.invoke({})
    # Past the init phase, Lambda runs the init again inside the invocation, bounded by the
    # function's timeout: two starts, and the timeout the viewer hears of is the function's.
    assert starts == 2
    assert caught.value.reason == "Task timed out after 0.50 seconds"
    assert pool.worker_pids == []
    frame = logs.last
    start_at = next(i for i, line in enumerate(frame) if line.startswith("START RequestId: "))
    assert frame[:start_at] == ["warming a cache that never finishes"] * 2
    assert frame[-1].endswith("Task timed out after 0.50 seconds")


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


def test_the_package_exports_exactly_the_runtime_api() -> None:
    import edgesim.runtime as runtime_package

    assert sorted(runtime_package.__all__) == [
        "FunctionPool",
        "FunctionRuntime",
        "FunctionSpec",
        "InvocationReport",
        "InvocationResult",
        "LogSink",
    ]
    assert all(hasattr(runtime_package, name) for name in runtime_package.__all__)


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
