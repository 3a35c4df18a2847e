"""Debugger attach: what a worker needs to let a debugger in, and how the pool sees one attached.

A function's worker listens for a debugger when its spec has a ``debug_port``: a Node.js worker
runs with the inspector on ``127.0.0.1:PORT`` (Chrome DevTools, VS Code), a Python worker loads
debugpy and serves the Debug Adapter Protocol on that port itself (VS Code's "attach"). The
Python worker runs isolated (``-I -S``), so it cannot import debugpy from edgesim's environment:
it is handed debugpy's own folder and loads that one package from it, nothing else of the
environment (see ``python_debug.py``).

An invocation's timeout stops running while a debugger is attached: a debugger is attached when
the worker has an established TCP connection on its debug port.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable
from pathlib import Path

import psutil

from edgesim.exceptions import RuntimeUnavailableError

__all__ = [
    "ATTACH_POLL_S",
    "PYTHON_DEBUG",
    "debugger_attached",
    "debugpy_dir",
    "expire_unless_attached",
    "inspect_option",
    "python_debug_options",
]

# How often the pool looks for an attached debugger while an inspected invocation runs.
ATTACH_POLL_S = 0.1
PYTHON_DEBUG = Path(__file__).resolve().parent / "python_debug.py"


def debugpy_dir() -> Path:
    """The folder of the debugpy package edgesim was installed with."""
    found = importlib.util.find_spec("debugpy")
    locations = None if found is None else found.submodule_search_locations
    if not locations:
        raise RuntimeUnavailableError(
            "debugging a Python function needs debugpy (pip install debugpy)"
        )
    return Path(next(iter(locations))).resolve()


def inspect_option(port: int) -> str:
    """The ``node`` option that opens the inspector on ``port``, on loopback only."""
    return f"--inspect=127.0.0.1:{port}"


def python_debug_options(port: int) -> list[str]:
    """The Python worker's options that make it load debugpy and listen on ``port``."""
    return ["--debug-port", str(port), "--debugpy", str(debugpy_dir())]


def debugger_attached(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds an established connection on its local port ``port``."""
    try:
        connections = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(
        c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
        for c in connections
    )


async def expire_unless_attached(
    timeout_s: float, attached: Callable[[], bool], expire: Callable[[], None]
) -> None:
    """Call ``expire`` once ``timeout_s`` seconds have passed with no debugger attached.

    Time spent attached (paused at a breakpoint, stepping) does not count, so a debugging
    session never ends in a timeout; time before and after it does.
    """
    left = timeout_s
    while left > 0:
        step = min(left, ATTACH_POLL_S)
        await asyncio.sleep(step)
        if not attached():
            left -= step
    expire()
