"""The Node.js runtime: the worker program through real pools of real ``node`` processes; its
logs, the context and environment a handler sees, the processes it starts, its memory, and its
end when the pool dies.

The fixture functions live in ``tests/fixtures/node/`` (one folder per function); how handlers
are found and loaded, and what their answers and failures become, is tested in
``tests/runtime/test_node_worker.py``.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import textwrap
import time

import psutil
import pytest

from edgesim.exceptions import LambdaExecutionError
from edgesim.runtime import containment
from edgesim.runtime.containment import Isolation
from tests.runtime.helpers import (
    NAMESPACES,
    RESERVED_VARIABLES,
    descendants,
    exits,
    remaining_ms_window,
)
from tests.runtime.node_worker_helpers import (
    NODE_FIXTURES,
    STAMP,
    Frames,
    NodePool,
    node_pool_fixture,  # noqa: F401  (a fixture, found by name)
)


async def test_console_writes_lambdas_text_format_inside_the_frame(node_pool: NodePool) -> None:
    frames: Frames = []
    result = await node_pool("logs", frames).invoke({"n": 7})
    request_id = result.report.request_id
    lines = frames[0]
    assert re.fullmatch(rf"{STAMP}\tundefined\tINFO\tloading the module", lines[0])
    assert lines[1] == "START RequestId: " + request_id + " Version: 1"
    body = lines[2:-2]
    assert lines[-2:][0] == f"END RequestId: {request_id}"
    assert lines[-1].startswith(f"REPORT RequestId: {request_id}\tDuration: ")
    prefix = rf"{STAMP}\t{request_id}\t"
    expected = [
        rf"{prefix}INFO\tlog text and 7",
        rf"{prefix}INFO\tinfo \{{ a: 1 \}}",
        rf"{prefix}WARN\twarn",
        rf"{prefix}ERROR\terror Error: shown with its stack\r    at .*",
        rf"{prefix}DEBUG\tdebug",
        rf"{prefix}TRACE\ttrace",
        rf"{prefix}INFO\tfirst line\rsecond line",
        "raw stdout",
        "raw stderr",
        rf"{prefix}INFO\tundefined",
    ]
    assert len(body) == len(expected)
    for line, pattern in zip(body, expected, strict=True):
        assert re.fullmatch(pattern, line), line


async def test_context_and_environment_are_lambdas(node_pool: NodePool) -> None:
    pool = node_pool("context", memory_mb=256, region="eu-west-3", version="7", timeout_s=30.0)
    started = time.time()
    result = await pool.invoke({})
    ended = time.time()
    value = result.value
    assert isinstance(value, dict)
    code_dir = str(NODE_FIXTURES / "context")
    assert value["functionName"] == "context" and value["functionVersion"] == "7"
    assert value["invokedFunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:context:7"
    assert value["memoryLimitInMB"] == "256"
    assert value["awsRequestId"] == value["requestIdSymbol"] == result.report.request_id
    assert value["logGroupName"] == "/aws/lambda/us-east-1.context"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[7\][0-9a-f]{32}", value["logStreamName"])
    low, high = remaining_ms_window(30.0, started, ended)
    assert low <= value["remainingMs"] <= high
    assert value["waits"] is True and value["hasIdentity"] is True
    env = value["environ"]
    assert set(env) == RESERVED_VARIABLES | {"NODE_PATH"}
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs20.x"
    assert env["AWS_REGION"] == "eu-west-3"
    assert env["LAMBDA_TASK_ROOT"] == env["NODE_PATH"] == value["cwd"] == code_dir
    assert value["execArgv"] == [
        "--expose-gc",
        "--max-http-header-size=81920",
        "--max-semi-space-size=12",
        "--max-old-space-size=231",
    ]
    # V8's heap is bounded by the memory size, not by the host (node's default is gigabytes).
    assert value["heapSizeLimit"] < 2 * 256 * 1024 * 1024 and value["gcExposed"] is True


async def test_processes_the_function_starts_inherit_no_protocol_pipe(
    node_pool: NodePool,
) -> None:
    pool = node_pool("spawner")
    result = await pool.invoke({})
    assert isinstance(result.value, dict)
    [child] = descendants(pool.worker_pids)
    try:
        # Between fork and exec the child still holds the spawner's own exec-status pipe (and
        # close-on-exec descriptors): what it inherits is what `sleep` holds once it runs.
        for _ in range(1000):
            if psutil.Process(child).name() == "sleep":
                break
            await asyncio.sleep(0.01)
        fds = os.listdir(f"/proc/{child}/fd")
        assert sorted(fds) == ["0", "1", "2"]
    finally:
        psutil.Process(child).kill()


async def test_a_heap_beyond_the_quota_is_an_execution_error(node_pool: NodePool) -> None:
    # The heap grows until something stops it; a limit far past the time that takes on a busy
    # machine leaves the memory quota as the only thing that can.
    pool = node_pool("memory", timeout_s=30.0)
    with pytest.raises(LambdaExecutionError, match="memory quota 128 MB exceeded"):
        await pool.invoke({})
    assert pool.worker_pids == []


async def test_a_heap_past_v8s_limit_ends_node_before_the_quota(node_pool: NodePool) -> None:
    """With 1,024 MB, the old space (922 MB) fills before the resident memory reaches the size."""
    frames: Frames = []
    # Filling 922 MB takes seconds, and many more on a busy machine: the limit stays out of the
    # way (below pytest's own 60 s) so the heap is what ends the invocation.
    pool = node_pool("memory", frames, memory_mb=1024, timeout_s=45.0)
    with pytest.raises(LambdaExecutionError) as caught:
        await pool.invoke({})
    # V8 aborts; a worker that is PID 1 of its namespace cannot die of its own SIGABRT, and
    # glibc's abort() then ends it with a fault.
    signal_name = "segmentation fault" if NAMESPACES else "aborted"
    assert caught.value.reason == (
        f"Runtime exited with error: signal: {signal_name} (Runtime.ExitError)"
    )
    assert any("JavaScript heap out of memory" in line for line in frames[0])


@pytest.mark.parametrize("isolation", list(Isolation))
async def test_max_memory_used_is_the_workers_own_peak(
    node_pool: NodePool, monkeypatch: pytest.MonkeyPatch, isolation: Isolation
) -> None:
    # Without namespaces a worker is forked from edgesim itself, and getrusage's peak carries
    # the parent's over the exec: a parent past 300 MB must not make a worker look that big.
    if isolation is Isolation.NAMESPACES and not NAMESPACES:
        pytest.skip("no PID namespaces here")
    monkeypatch.setattr(containment, "_chosen", None)
    if isolation is Isolation.PROCESS_TREE:
        monkeypatch.setattr(containment, "_chosen", (Isolation.PROCESS_TREE, ()))
    ballast = b"x" * (300 << 20)
    pool = node_pool("grow", memory_mb=1024)
    small = await pool.invoke({"mb": 1})
    del ballast
    grown = await pool.invoke({"mb": 200})
    assert small.value == 1 << 20 and grown.value == 200 << 20
    assert 20 < small.report.max_memory_used_mb < 200
    assert small.report.max_memory_used_mb + 190 < grown.report.max_memory_used_mb < 300


@pytest.mark.parametrize("runtime", ["nodejs18.x", "nodejs20.x", "nodejs22.x"])
async def test_every_node_runtime_runs_and_names_itself(node_pool: NodePool, runtime: str) -> None:
    value = (await node_pool("context", runtime=runtime).invoke({})).value
    assert isinstance(value, dict)
    assert value["environ"]["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{runtime}"


async def test_an_orphaned_worker_exits_when_the_pool_dies() -> None:
    parent_script = textwrap.dedent(
        f"""
        import asyncio, time
        from pathlib import Path
        from edgesim.runtime import FunctionPool, FunctionSpec
        async def main():
            spec = FunctionSpec("echo", "nodejs20.x", Path({str(NODE_FIXTURES / "echo")!r}),
                                "index.handler", 128, 5)
            pool = FunctionPool(spec)
            await pool.invoke({{}})
            print(pool.worker_pids[0], flush=True)
            time.sleep(60)
        asyncio.run(main())
        """
    )
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", parent_script, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert parent.stdout is not None
        worker = int(await asyncio.wait_for(parent.stdout.readline(), 10))
        assert psutil.pid_exists(worker)
    finally:
        parent.kill()
        await parent.wait()
    exited = await exits(worker)
    if not exited:
        os.kill(worker, signal.SIGKILL)
    assert exited, "the orphaned worker kept running"
