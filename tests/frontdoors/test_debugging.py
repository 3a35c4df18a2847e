"""--inspect: its argument, the ports it gives, and the workers it starts before a request."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import socket
from pathlib import Path

import pytest

from edgesim.config import load_distribution
from edgesim.frontdoors.debugging import (
    DEBUGPY_PORT,
    NODE_INSPECTOR_PORT,
    InspectError,
    debug_ports,
    inspect_target,
    open_debuggers,
)
from edgesim.pipeline.functions import function_specs
from edgesim.runtime import FunctionRuntime
from edgesim.runtime.debug import debugger_attached
from tests import http_clients
from tests.frontdoors.test_code_check import _distribution


def test_inspect_takes_a_name_and_an_optional_port() -> None:
    assert inspect_target("auth") == ("auth", None)
    assert inspect_target("auth:9300") == ("auth", 9300)
    with pytest.raises(argparse.ArgumentTypeError, match="not a port"):
        inspect_target("auth:http")


def test_default_ports_by_runtime_and_unknown_names(tmp_path: Path) -> None:
    distribution = load_distribution(_distribution(tmp_path))
    ports = debug_ports([("good", None), ("typo", None), ("unnamed", None)], [distribution])
    assert ports == {"good": DEBUGPY_PORT, "typo": DEBUGPY_PORT + 1, "unnamed": NODE_INSPECTOR_PORT}
    assert debug_ports([("good", 7000)], [distribution]) == {"good": 7000}
    with pytest.raises(InspectError, match="--inspect nope: no function of that name"):
        debug_ports([("nope", None)], [distribution])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_inspected_workers_start_at_once_and_their_ports_answer(tmp_path: Path) -> None:
    distribution = load_distribution(_distribution(tmp_path))
    (tmp_path / "unnamed" / "index.js").write_text("exports.handler = async (e) => e;\n")
    node_port, python_port = _free_port(), _free_port()
    ports = {"unnamed": node_port, "good": python_port}
    specs = [
        dataclasses.replace(spec, debug_port=ports.get(spec.name))
        for spec in function_specs(distribution)
        if spec.name != "typo"
    ]
    runtime = FunctionRuntime(specs)
    said: list[str] = []
    try:
        await open_debuggers(ports, [runtime], said.append)
        async with http_clients.async_client() as client:
            version = await client.get(f"http://127.0.0.1:{node_port}/json/version")
        assert version.json()["Browser"].startswith("node.js/")
        with socket.create_connection(("127.0.0.1", python_port), timeout=5):
            pid = runtime.pool("good").worker_pids[0]
            # The connection is the worker's once debugpy has accepted it: poll, within a bound.
            for _ in range(200):
                if debugger_attached(pid, python_port):
                    break
                await asyncio.sleep(0.05)
            assert debugger_attached(pid, python_port)
        assert said == [
            f"function good: debugpy on 127.0.0.1:{python_port}, attach with VS Code (Python: "
            "attach); one worker, its timeout stopped while a debugger is attached",
            f"function unnamed: Node.js inspector on 127.0.0.1:{node_port}, attach with "
            "chrome://inspect or VS Code; one worker, its timeout stopped while a debugger is "
            "attached",
        ]
    finally:
        await runtime.aclose()
