"""The functions of one process: pools by name, closed together."""

from __future__ import annotations

import psutil
import pytest

from edgesim.runtime import FunctionRuntime
from tests.runtime.helpers import spec_for


async def test_function_runtime_routes_by_name_and_closes_every_pool() -> None:
    runtime = FunctionRuntime([spec_for("echo"), spec_for("context")])
    try:
        assert runtime.names == ["echo", "context"]
        echoed = await runtime.invoke("echo", {"x": 1})
        assert isinstance(echoed.value, dict) and echoed.value["event"] == {"x": 1}
        context = await runtime.invoke("context", {})
        assert isinstance(context.value, dict) and context.value["function_name"] == "context"
        with pytest.raises(KeyError, match="no function named 'nope'"):
            runtime.pool("nope")
        pids = runtime.pool("echo").worker_pids + runtime.pool("context").worker_pids
        assert len(pids) == 2
    finally:
        await runtime.aclose()
    assert not [pid for pid in pids if psutil.pid_exists(pid)]


def test_function_runtime_refuses_two_functions_with_one_name() -> None:
    with pytest.raises(ValueError, match="two functions are named 'echo'"):
        FunctionRuntime([spec_for("echo"), spec_for("echo", handler="index.other")])
