"""``edgesim serve --inspect FUNCTION[:PORT]``: a debugger attaches to a function's worker.

The function runs one worker, started at once so a debugger can attach before the first
request, listening on ``127.0.0.1:PORT``: the Node.js inspector (Chrome DevTools, VS Code) by
default on 9229, debugpy (VS Code) on 5678; a second inspected function of the same kind takes
the next port. docs/debugging.md shows both editors' settings.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Sequence

from edgesim.config import Distribution
from edgesim.exceptions import EdgesimError, FunctionError, RuntimeUnavailableError
from edgesim.runtime import FunctionRuntime
from edgesim.runtime.launch import NODE_RUNTIMES

__all__ = [
    "DEBUGPY_PORT",
    "NODE_INSPECTOR_PORT",
    "InspectError",
    "debug_ports",
    "inspect_target",
    "open_debuggers",
]

NODE_INSPECTOR_PORT = 9229
DEBUGPY_PORT = 5678


class InspectError(EdgesimError):
    """``--inspect`` names no function of the distributions served."""


def inspect_target(text: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME:PORT``, as ``--inspect`` takes it (an argparse type)."""
    name, colon, port = text.rpartition(":")
    if not colon:
        return text, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"not a port: {port!r} (use FUNCTION or FUNCTION:PORT)")
    return name, int(port)


def debug_ports(
    targets: Sequence[tuple[str, int | None]], distributions: Iterable[Distribution]
) -> dict[str, int]:
    """The port of each inspected function; raises :class:`InspectError` for an unknown name."""
    runtimes = {
        name: function.runtime for d in distributions for name, function in d.functions.items()
    }
    ports: dict[str, int] = {}
    for name, port in targets:
        if name not in runtimes:
            known = ", ".join(sorted(runtimes)) or "none"
            raise InspectError(f"--inspect {name}: no function of that name (functions: {known})")
        if port is None:
            port = NODE_INSPECTOR_PORT if runtimes[name] in NODE_RUNTIMES else DEBUGPY_PORT
            while port in ports.values():
                port += 1
        ports[name] = port
    return ports


async def open_debuggers(
    ports: dict[str, int], runtimes: Iterable[FunctionRuntime], log: Callable[[str], None]
) -> None:
    """Start each inspected function's worker and say where a debugger attaches."""
    for runtime in runtimes:
        for name in runtime.names:
            port = ports.get(name)
            if port is None:
                continue
            node = runtime.pool(name).spec.runtime in NODE_RUNTIMES
            kind = "Node.js inspector" if node else "debugpy"
            how = "chrome://inspect or VS Code" if node else "VS Code (Python: attach)"
            try:
                await runtime.prewarm(name)
            except (FunctionError, RuntimeUnavailableError) as error:
                log(f"function {name}: its worker did not start: {error}")
                continue
            log(
                f"function {name}: {kind} on 127.0.0.1:{port}, attach with {how}; one worker, "
                "its timeout stopped while a debugger is attached"
            )
