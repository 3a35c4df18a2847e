"""The Node.js runtime: the worker program through real pools of real ``node`` processes; how
handlers are found and loaded, and what their answers and failures become.

The fixture functions live in ``tests/fixtures/node/`` (one folder per function, with a vendored
npm package committed under ``vendored/node_modules``). How ``node`` is found and started is
tested in ``tests/runtime/test_launch_runtimes.py``; the worker's logs, context, environment,
memory and lifetime in ``tests/runtime/test_node_worker_process.py``.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from edgesim.exceptions import (
    LambdaExecutionError,
    LambdaLimitExceeded,
    LambdaValidationError,
)
from edgesim.runtime import protocol
from edgesim.runtime.launch import NODE_WORKER
from edgesim.runtime.pool import INVALID_JSON
from tests.runtime.node_worker_helpers import (
    NODE_FIXTURES,
    STAMP,
    Frames,
    NodePool,
    node_pool_fixture,  # noqa: F401  (a fixture, found by name)
)


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
