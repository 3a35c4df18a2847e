"""The Node.js runtime: the worker program through real pools of real ``node`` processes.

The fixture functions live in ``tests/fixtures/node/`` (one folder per function, with a vendored
npm package committed under ``vendored/node_modules``). How ``node`` is found and started is
tested in ``tests/test_runtime_launch.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from edgesim.exceptions import (
    LambdaExecutionError,
    LambdaLimitExceeded,
    LambdaValidationError,
)
from edgesim.runtime import FunctionPool, FunctionSpec, containment, protocol
from edgesim.runtime.containment import Isolation
from edgesim.runtime.launch import NODE_WORKER
from edgesim.runtime.pool import INVALID_JSON
from tests.runtime.helpers import (
    NAMESPACES,
    RESERVED_VARIABLES,
    descendants,
    exits,
    remaining_ms_window,
)

NODE_FIXTURES = Path(__file__).parent.parent / "fixtures" / "node"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"

Frames = list[list[str]]
NodePool = Callable[..., FunctionPool]


@pytest.fixture
async def node_pool() -> AsyncIterator[NodePool]:
    """Make pools of Node.js fixture functions; each logs into the ``frames`` it is given."""
    pools: list[FunctionPool] = []

    def make(fixture: str, frames: Frames | None = None, **overrides: Any) -> FunctionPool:
        values: dict[str, Any] = {
            "name": fixture,
            "runtime": "nodejs20.x",
            "code_dir": NODE_FIXTURES / fixture,
            "handler": "index.handler",
            "memory_mb": 128,
            "timeout_s": 2.0,
        }
        values.update(overrides)
        sink = None if frames is None else (lambda _name, lines: frames.append(lines))
        pool = FunctionPool(FunctionSpec(**values), log_sink=sink)
        pools.append(pool)
        return pool

    yield make
    pids = [pid for pool in pools for pid in pool.worker_pids]
    for pool in pools:
        await pool.aclose()
    assert not [pid for pid in pids if psutil.pid_exists(pid)]


def test_protocol_constants_agree_with_the_pool_side() -> None:
    script = f"console.log(JSON.stringify(require({json.dumps(str(NODE_WORKER))})))"
    out = subprocess.run(["node", "-e", script], capture_output=True, check=True, timeout=10)
    constants = json.loads(out.stdout)
    assert constants == {
        "MAX_PAYLOAD_BYTES": protocol.MAX_PAYLOAD_BYTES,
        "MAX_MESSAGE_BYTES": protocol.MAX_MESSAGE_BYTES,
        "LOG_MARK_PREFIX": protocol.LOG_MARK_PREFIX.decode(),
        "LOG_MARK_END": protocol.LOG_MARK_END.decode(),
        "INIT_MARK_ID": protocol.INIT_MARK_ID,
    }


def test_the_worker_program_needs_only_node_builtins() -> None:
    required = re.findall(r"require\('([^']+)'\)", NODE_WORKER.read_text())
    assert required and all(name.startswith("node:") for name in required)
    # The entry loads its sibling files by their path beside it; they need only built-ins too.
    programs = sorted(NODE_WORKER.parent.glob("*.js"))
    assert NODE_WORKER in programs and len(programs) > 1
    for program in programs:
        text = program.read_text()
        for call in re.finditer(r"\brequire\(\s*", text):
            rest = text[call.end() :]
            builtin = re.match(r"'node:[^']+'\)", rest)
            sibling = re.match(r"path\.join\(__dirname, '([^']+)'\),?\s*\)", rest)
            assert builtin or sibling, f"{program.name}: require({rest[:40]}"
            assert sibling is None or (NODE_WORKER.parent / sibling[1]).is_file()


async def test_a_warm_worker_is_reused_and_only_the_cold_start_has_init(
    node_pool: NodePool,
) -> None:
    pool = node_pool("echo")
    first = await pool.invoke({"n": 1})
    second = await pool.invoke({"n": 2})
    assert isinstance(first.value, dict) and isinstance(second.value, dict)
    assert first.value["event"] == {"n": 1} and second.value["event"] == {"n": 2}
    assert first.value["pid"] == second.value["pid"] and len(pool.worker_pids) == 1
    assert first.report.init_duration_ms is not None and second.report.init_duration_ms is None
    assert 20 <= first.report.max_memory_used_mb <= 128


@pytest.mark.parametrize(
    ("fixture", "handler", "expected"),
    [
        ("echo", "index.handler", "cjs-async"),  # exports.handler in index.js
        ("esm", "index.handler", "esm-mjs"),  # export const handler in index.mjs
        ("esm-js", "index.handler", "esm-js"),  # .js under "type": "module"
        ("lookup", "both.handler", "both.js"),  # .js before .mjs
        ("lookup", "late.handler", "late.mjs"),  # .mjs before .cjs
        ("lookup", "only.handler", "only.cjs"),
        ("lookup", "index.handlers.main", "index.handlers.main"),  # nested property
        ("nested", "lib/app.handler", "from lib/label.js"),  # dir/file.fn
    ],
)
async def test_handlers_are_found_the_way_lambda_finds_them(
    node_pool: NodePool, fixture: str, handler: str, expected: str
) -> None:
    value = (await node_pool(fixture, handler=handler).invoke({})).value
    found = value.get("style") or value.get("label") if isinstance(value, dict) else value
    assert found == expected
    if fixture == "esm-js":
        assert isinstance(value, dict) and value["isModule"] is True


@pytest.mark.parametrize("handler", ["index.handler", "esm.handler"])
async def test_a_vendored_package_resolves_from_the_functions_node_modules(
    node_pool: NodePool, handler: str
) -> None:
    result = await node_pool("vendored", handler=handler).invoke({"name": "edge"})
    assert result.value == {
        "greeting": "hello, edge",
        "from": str(NODE_FIXTURES / "vendored" / "node_modules" / "tiny-greeter" / "index.js"),
    }


@pytest.mark.parametrize(
    ("fixture", "handler", "reason"),
    [
        ("syntax", "index.handler", "Runtime.UserCodeSyntaxError: SyntaxError: Unexpected token"),
        ("syntax-esm", "index.handler", "Runtime.UserCodeSyntaxError: SyntaxError: Unexpected"),
        ("lookup", "index.nothing", "Runtime.HandlerNotFound: index.nothing is undefined or not"),
        ("lookup", "index.notAFunction", "Runtime.HandlerNotFound: index.notAFunction is not a"),
        (
            "lookup",
            "absent.handler",
            "Runtime.ImportModuleError: Error: Cannot find module 'absent'",
        ),
        (
            "missing-dep",
            "index.handler",
            "Runtime.ImportModuleError: Error: Cannot find module 'not-",
        ),
        ("lookup", "handler", "Runtime.MalformedHandlerName: Bad handler"),
        ("lookup", "../lookup/index.handler", "Runtime.MalformedHandlerName: '../lookup/index.han"),
        ("initthrow", "index.handler", "RangeError: cannot start: missing configuration"),
    ],
)
async def test_a_handler_that_cannot_load_is_an_init_error_logged_before_start(
    node_pool: NodePool, fixture: str, handler: str, reason: str
) -> None:
    frames: Frames = []
    pool = node_pool(fixture, frames, handler=handler)
    with pytest.raises(LambdaExecutionError) as caught:
        await pool.invoke({})
    assert caught.value.reason.startswith(reason)
    [lines] = frames
    start = next(i for i, line in enumerate(lines) if line.startswith("START RequestId:"))
    logged = [line for line in lines[:start] if "\tERROR\tUncaught Exception \t" in line]
    assert len(logged) == 1
    assert re.match(rf"{STAMP}\tundefined\tERROR\t", logged[0])
    error = json.loads(logged[0].split("Uncaught Exception \t", 1)[1])
    assert reason.startswith(error["errorType"]) and isinstance(error["stack"], list)
    assert pool.worker_pids == []


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("throw", "Error: boom: x"),
        ("reject", "TypeError: rejected on purpose"),
        ("reject-string", "string: a plain string"),
        ("never", "Runtime.NodeJsExit: Runtime exited without providing a reason"),
    ],
)
async def test_a_failing_async_handler_is_an_execution_error_and_stays_warm(
    node_pool: NodePool, case: str, reason: str
) -> None:
    frames: Frames = []
    pool = node_pool("errors", frames)
    warm = await pool.invoke({})
    with pytest.raises(LambdaExecutionError) as caught:
        await pool.invoke({"case": case, "detail": "x"})
    assert caught.value.reason == reason
    assert (await pool.invoke({})).value == warm.value
    logged = [line for line in frames[1] if "\tERROR\tInvoke Error \t" in line]
    assert len(logged) == 1
    error = json.loads(logged[0].split("Invoke Error \t", 1)[1])
    assert f"{error['errorType']}: {error['errorMessage']}".endswith(reason.split(": ", 1)[1])
    if case == "throw":
        assert error["code"] == "E_BOOM"


@pytest.mark.parametrize(
    ("case", "reason", "exit_line"),
    [
        ("uncaught", "exit status 129", "Uncaught Exception \t"),
        ("unhandled", "exit status 128", "Unhandled Promise Rejection \t"),
        ("exit", "exit status 3", None),
    ],
)
async def test_a_crash_costs_one_invocation_and_the_worker(
    node_pool: NodePool, case: str, reason: str, exit_line: str | None
) -> None:
    frames: Frames = []
    pool = node_pool("errors", frames)
    with pytest.raises(LambdaExecutionError) as caught:
        await pool.invoke({"case": case})
    assert caught.value.reason == f"Runtime exited with error: {reason} (Runtime.ExitError)"
    lines = frames[0]
    request_id = next(line for line in lines if line.startswith("START ")).split()[2]
    detail = caught.value.reason.removesuffix(" (Runtime.ExitError)")
    assert lines[-2:] == [f"RequestId: {request_id} Error: {detail}", "Runtime.ExitError"]
    if exit_line is not None:
        assert any(exit_line in line for line in lines)
    fresh = await pool.invoke({})
    assert fresh.report.init_duration_ms is not None


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("value", {"fired": 0, "waits": True}),
        ("twice", "first"),
        ("succeed", "via succeed"),
        ("sync-return", None),
        ("default", "default"),
    ],
)
async def test_callback_handlers_return_their_first_answer(
    node_pool: NodePool, case: str, expected: object
) -> None:
    assert (await node_pool("callback").invoke({"case": case})).value == expected


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("error", "TypeError: bad input"),
        ("string-error", "string: plain failure"),
        ("done-error", "RangeError: via done"),
    ],
)
async def test_a_callback_error_is_an_execution_error(
    node_pool: NodePool, case: str, reason: str
) -> None:
    with pytest.raises(LambdaExecutionError) as caught:
        await node_pool("callback").invoke({"case": case})
    assert caught.value.reason == reason


async def test_a_callback_result_waits_for_the_event_loop_to_empty(node_pool: NodePool) -> None:
    frames: Frames = []
    # Ample time for the timer, so the answer cannot be a timeout on a busy machine.
    pool = node_pool("callback", frames, timeout_s=10.0)
    waited = await pool.invoke({"case": "wait-for-timer", "delay": 200})
    assert waited.report.duration_ms >= 200
    assert any(line.endswith("\tINFO\ttimer fired") for line in frames[0])
    assert (await pool.invoke({"case": "value"})).value == {"fired": 1, "waits": True}


async def test_callback_waits_for_empty_event_loop_false_answers_at_once(
    node_pool: NodePool,
) -> None:
    frames: Frames = []
    pool = node_pool("callback", frames)
    # The timer is due long after the 2 s timeout: an answer at all means the loop was not
    # waited for, however slowly the machine ran.
    delay_ms = 60_000
    quick = await pool.invoke({"case": "do-not-wait", "delay": delay_ms})
    assert quick.value == {"fired": 0}
    assert quick.report.duration_ms < delay_ms
    assert not any("late timer fired" in line for line in frames[0])


async def test_a_loop_that_never_empties_runs_into_the_timeout(node_pool: NodePool) -> None:
    pool = node_pool("callback", timeout_s=0.5)
    with pytest.raises(LambdaLimitExceeded, match="Task timed out after 0.50 seconds"):
        await pool.invoke({"case": "interval"})
    assert pool.worker_pids == []


@pytest.mark.parametrize(("case", "expected"), [("undefined", None)])
async def test_undefined_comes_back_as_null(
    node_pool: NodePool, case: str, expected: object
) -> None:
    assert (await node_pool("errors").invoke({"case": case})).value == expected


@pytest.mark.parametrize("case", ["circular", "bigint", "huge"])
async def test_a_value_json_cannot_carry_fails_validation(node_pool: NodePool, case: str) -> None:
    pool = node_pool("errors")
    with pytest.raises(LambdaValidationError) as caught:
        await pool.invoke({"case": case})
    assert caught.value.reason == INVALID_JSON
    workers = pool.worker_pids
    assert (await pool.invoke({})).value["ok"] is True  # type: ignore[index]
    assert pool.worker_pids == workers, "the worker stays warm"


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
