"""Function pools against real worker processes running the fixture functions: results,
handler errors, crashes, timeouts and init failures, and the runtime package's exports."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from edgesim.exceptions import LambdaExecutionError, LambdaLimitExceeded, LambdaValidationError
from edgesim.runtime import pool as pool_module
from edgesim.runtime.pool import INVALID_JSON
from edgesim.runtime.worker import WorkerProcess
from tests.runtime.helpers import FIXTURES, UUID, LogRecorder, PoolFactory, living


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
