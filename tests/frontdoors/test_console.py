"""The serve console: levels, times, request ids on function and access lines, json, quiet."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from dataclasses import dataclass

import pytest

from edgesim.exceptions import LambdaExecutionError
from edgesim.frontdoors.console import (
    Console,
    CorrelatedRuntime,
    FunctionCall,
    Level,
    current_call,
    line_level,
)
from edgesim.http import EdgeRequest, EdgeResponse, Headers
from edgesim.pipeline import EdgeResult
from edgesim.trace import Trace

CF_ID = "AbCdEfGh1234567890abcdefghijklmnopqrstuvwxyzABCDEFGHIJ=="
NOW = 1_700_000_000.25


def _result(status: int = 200, x_cache: str = "Miss from cloudfront") -> EdgeResult:
    headers = Headers([("X-Cache", x_cache)])
    return EdgeResult(EdgeResponse(status=status, headers=headers), Trace(request_id=CF_ID))


def _event(request_id: str = CF_ID) -> dict[str, object]:
    config = {"requestId": request_id, "eventType": "viewer-request"}
    return {"Records": [{"cf": {"config": config}}]}


@dataclass
class _Value:
    value: object


class _Runtime:
    """Logs like the real runtime: from inside the invocation, through the sink."""

    def __init__(self, sink: object, fail: bool = False) -> None:
        self.sink = sink
        self.fail = fail

    async def invoke(self, name: str, event: dict[str, object]) -> _Value:
        assert callable(self.sink)
        self.sink(name, ["START RequestId: 1 Version: 1", "hello", "END RequestId: 1"])
        if self.fail:
            raise LambdaExecutionError("ValueError: boom")
        return _Value({"uri": "/x"})

    async def aclose(self) -> None:
        return None


def _console(**options: object) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(out, now=lambda: NOW, **options), out  # type: ignore[arg-type]


async def test_function_lines_and_the_access_line_share_the_request_id() -> None:
    console, out = _console()
    runtime = CorrelatedRuntime(_Runtime(console.function_log))
    await runtime.invoke("auth", _event())
    request = EdgeRequest(method="GET", uri="/a", client_ip="10.0.0.1")
    console.access(request, _result(), 12.34)
    await asyncio.sleep(0)  # access lines are written at the end of the loop's turn
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    assert all(f"[{CF_ID[:8]}]" in line for line in lines)
    assert lines[1].split(" ", 3)[1:] == ["INFO", "", f"[{CF_ID[:8]}] auth: hello"]
    assert lines[-1].endswith("10.0.0.1 GET /a 200 Miss 12.3ms")
    # Every line starts with the local time to the millisecond.
    assert all(line[:12].count(":") == 2 and line[8] == "." for line in lines)


async def test_the_call_keeps_its_value_error_and_logs() -> None:
    console, _ = _console()
    seen: list[FunctionCall] = []
    runtime = CorrelatedRuntime(_Runtime(console.function_log), on_call=seen.append)
    await runtime.invoke("auth", _event())
    call = current_call()
    assert call is not None and seen == [call]
    assert (call.function, call.trigger, call.request_id) == ("auth", "viewer-request", CF_ID)
    assert call.value == {"uri": "/x"} and call.logs[1] == "hello"
    failing = CorrelatedRuntime(_Runtime(console.function_log, fail=True))
    with pytest.raises(LambdaExecutionError):
        await failing.invoke("auth", _event("other"))
    call = current_call()
    assert call is not None and call.request_id == "other"
    assert call.error is not None and call.value is None
    # A later line for the same call (a refused result's note) lands on it too.
    console.function_log("auth", ["/aws/cloudfront/LambdaEdge/E1 other ERROR Validation error"])
    assert call.logs[-1].endswith("Validation error")


def test_a_line_from_no_call_has_no_request_id() -> None:
    console, out = _console()
    console.function_log(
        "orphan", ["RequestId: x Error: Runtime exited with error: signal: killed"]
    )
    line = out.getvalue()
    assert " ERROR " in line and "[" not in line.split("orphan")[0]


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("[ERROR] ValueError: boom", Level.ERROR),
        ("[WARNING]\t2024-01-01T00:00:00.000Z\tid\tcareful", Level.WARNING),
        ("2024-01-01T00:00:00.000Z\tid\tWARN\tcareful", Level.WARNING),
        ("2024-01-01T00:00:00.000Z\tid\tERROR\tInvoke Error \t{}", Level.ERROR),
        ("2024-01-01T00:00:00.000Z id Task timed out after 5.00 seconds", Level.ERROR),
        ("RequestId: id Error: Runtime exited with error: exit status 3", Level.ERROR),
        ("/aws/cloudfront/LambdaEdge/E1 id ERROR Validation error: no", Level.ERROR),
        ("/aws/cloudfront/LambdaEdge/E1 id WARNING Validation: maybe", Level.WARNING),
        ("START RequestId: id Version: 1", Level.INFO),
        ("print output", Level.INFO),
    ],
)
def test_levels_come_from_lambdas_own_markers(line: str, level: Level) -> None:
    assert line_level(line) is level


def test_a_traceback_keeps_the_level_of_its_error_line() -> None:
    console, out = _console()
    lines = ["[ERROR] ValueError: boom", "Traceback (most recent call last):", '  File "a.py"']
    console.function_log("f", [*lines, "after"])
    levels = [line.split()[1] for line in out.getvalue().splitlines()]
    assert levels == ["ERROR", "ERROR", "ERROR", "INFO"]


def test_json_is_one_object_per_line() -> None:
    console, out = _console(fmt="json")
    console.info("listening")
    console.function_log("f", ["multi\rline"])
    console.access(EdgeRequest(method="GET", uri="/", client_ip="::1"), _result(503), 1.0)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["kind"] for r in records] == ["edgesim", "function", "access"]
    assert records[0]["time"] == "2023-11-14T22:13:20.250Z"
    assert records[1] == {
        "time": records[1]["time"],
        "level": "info",
        "kind": "function",
        "function": "f",
        "request_id": None,
        "message": "multi\rline",
    }
    access = records[2]
    assert (access["level"], access["status"], access["request_id"]) == ("error", 503, CF_ID)
    assert access["x_cache"] == "Miss" and access["steps"] == []


def test_quiet_keeps_access_lines_and_errors() -> None:
    console, out = _console(quiet=True)
    console.info("listening")
    console.warning("admin port taken")
    console.function_log("f", ["START RequestId: 1 Version: 1", "[ERROR] ValueError: boom"])
    console.access(EdgeRequest(method="GET", uri="/", client_ip="::1"), _result(), 1.0)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "ValueError" in lines[0] and "GET / 200" in lines[1]


def test_color_only_on_a_terminal_and_never_under_no_color(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert Console(Terminal()).color and not Console(io.StringIO()).color
    assert not Console(Terminal(), fmt="json").color
    monkeypatch.setenv("NO_COLOR", "1")
    assert not Console(Terminal()).color
    painted, out = _console(color=True)
    painted.error("boom")
    assert "\x1b[31;1mERROR\x1b[0m" in out.getvalue()


def test_edgesims_own_tracebacks_start_their_lines() -> None:
    console, out = _console()
    logger = logging.getLogger("edgesim.test_console")
    handler = console.log_handler()
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise RuntimeError("defect")
        except RuntimeError:
            logger.exception("edgesim failed on GET /")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    lines = out.getvalue().splitlines()
    assert " ERROR edgesim: edgesim failed on GET /" in lines[0]
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "RuntimeError: defect"


async def test_access_lines_wait_for_the_end_of_the_turn_and_keep_their_order() -> None:
    console, out = _console()
    for path in ("/a", "/b"):
        console.access(EdgeRequest(method="GET", uri=path, client_ip="10.0.0.1"), _result(), 1)
    assert out.getvalue() == ""  # one write for the turn's lines
    console.warning("written at once")  # takes what waited with it, in order
    lines = out.getvalue().splitlines()
    assert [line.split(" GET ")[-1][:2] for line in lines[:2]] == ["/a", "/b"]
    assert lines[2].endswith("written at once")
    console.access(EdgeRequest(method="GET", uri="/c", client_ip="10.0.0.1"), _result(), 1)
    await asyncio.sleep(0)
    assert out.getvalue().splitlines()[3].split(" GET ")[-1].startswith("/c 200")


def test_outside_the_event_loop_an_access_line_is_written_at_once() -> None:
    console, out = _console()
    console.access(EdgeRequest(method="GET", uri="/a", client_ip="10.0.0.1"), _result(), 1)
    assert out.getvalue().endswith("GET /a 200 Miss 1.0ms\n")
