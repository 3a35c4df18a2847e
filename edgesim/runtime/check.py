"""Checking a function's code before it serves: the handler file exists, the module imports in
the function's runtime, and it exports the handler.

:func:`check_code` first looks for the handler's file where the runtime would look, then starts
one worker, as a cold start does, and waits for its init phase: ``ready`` means the module
imported and the handler is there; ``init_error`` carries the runtime's own error
(``Runtime.HandlerNotFound``, ``Runtime.UserCodeSyntaxError``, ``Runtime.ImportModuleError``,
or the exception the module raised), from which the file and line are read. The init phase gets
what Lambda gives it: 10 seconds, or the function's timeout when that is longer.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from edgesim.exceptions import EdgesimError
from edgesim.runtime import launch, logs
from edgesim.runtime.pool import INIT_TIMEOUT_S
from edgesim.runtime.protocol import InitError, Ready
from edgesim.runtime.spec import FunctionSpec
from edgesim.runtime.worker import Exited, Reply, TimedOut, WorkerProcess

__all__ = ["FunctionCodeError", "check_code", "handler_candidates"]

_MIB = 1024 * 1024
# `File "/x/app.py", line 3` (Python tracebacks), `File "/x/app.py" Line 3` (Lambda's syntax
# error), `/x/index.js:3` and `file:///x/index.mjs:3:7` (Node.js stacks).
_PY_LOCATION = re.compile(r'File "([^"]+)",? [Ll]ine (\d+)')
_JS_LOCATION = re.compile(r"(?:file://)?(/[^\s:()]+):(\d+)")


class FunctionCodeError(EdgesimError):
    """A function's code cannot serve: the runtime's error type and message, and the file and
    line the error points at when it names one."""

    def __init__(
        self, function: str, error_type: str, message: str, file: Path | None, line: int | None
    ) -> None:
        self.function = function
        self.error_type = error_type
        self.message = message
        self.file = file
        self.line = line
        where = "" if file is None else f" ({file}{'' if line is None else f', line {line}'})"
        super().__init__(f"{error_type}: {message}{where}")


def handler_candidates(spec: FunctionSpec) -> list[Path]:
    """The files (or folders) the runtime would load the handler's module from, in its order."""
    module, _, _ = spec.handler.rpartition(".")
    if spec.runtime in launch.NODE_RUNTIMES:
        # Node.js: `dir/file.fn.nested`; the module is the part before the first dot.
        last = Path(spec.handler).name
        base = spec.code_dir / Path(spec.handler).parent / last.split(".")[0]
        name = base.name
        return [
            base,
            *(base.with_name(name + ext) for ext in (".js", ".mjs", ".cjs")),
            spec.code_dir / "node_modules" / name,
        ]
    base = spec.code_dir / module.replace(".", "/")
    return [base.with_name(base.name + ".py"), base / "__init__.py", base]


async def check_code(spec: FunctionSpec) -> None:
    """Raise :class:`FunctionCodeError` when the function's code would fail its init phase.

    Also raises :class:`RuntimeUnavailableError` when the runtime cannot run here.
    """
    launch.check_runtime(spec)
    module, dot, _ = spec.handler.rpartition(".")
    if dot and module and not any(p.exists() for p in handler_candidates(spec)):
        expected = handler_candidates(spec)[0 if spec.runtime in launch.PYTHON_RUNTIMES else 1]
        raise FunctionCodeError(
            spec.name,
            "Runtime.ImportModuleError",
            f"handler {spec.handler!r}: there is no {expected.name} in {spec.code_dir}",
            expected,
            None,
        )
    # A check must not wait for a debugger, nor hold its port.
    command = await launch.worker_command(_without_debugger(spec))
    env = launch.worker_environment(spec, launch.new_log_stream_name(spec))
    limit = max(INIT_TIMEOUT_S, spec.timeout_s)
    worker = await WorkerProcess.start(
        command, env=env, cwd=spec.code_dir.absolute(), memory_limit_bytes=spec.memory_mb * _MIB
    )
    try:
        outcome = await worker.exchange(None, limit)
    finally:
        await worker.discard()
    if isinstance(outcome, Reply) and isinstance(outcome.message, Ready):
        return
    if isinstance(outcome, Reply) and isinstance(outcome.message, InitError):
        failure = outcome.message
        file, line = _location([failure.error_message, *failure.stack_trace], spec.code_dir)
        if file is None and failure.error_type == "Runtime.UserCodeSyntaxError":
            file, line = await _node_syntax_location(spec)
        message = failure.error_message.strip().splitlines()[0] if failure.error_message else ""
        raise FunctionCodeError(spec.name, failure.error_type, message, file, line)
    if isinstance(outcome, TimedOut):
        problem = ("Sandbox.Timedout", f"the init phase took longer than {limit:g} seconds")
    elif isinstance(outcome, Exited):
        problem = ("Runtime.ExitError", logs.exit_detail(outcome.returncode))
    else:
        problem = ("Runtime.InvalidResponse", f"the worker did not start: {outcome}")
    output = " | ".join(line for line in worker.log.rest() if line.strip())[-500:]
    detail = f"{problem[1]}; its output: {output}" if output else problem[1]
    raise FunctionCodeError(spec.name, problem[0], detail, None, None)


async def _node_syntax_location(spec: FunctionSpec) -> tuple[Path | None, int | None]:
    """Where ``node --check`` finds the syntax error (an ES module's error does not say)."""
    if spec.runtime not in launch.NODE_RUNTIMES:
        return None, None
    files = [p for p in handler_candidates(spec) if p.is_file()]
    if not files:
        return None, None
    node = launch.resolve_node(spec.runtime, function_name=spec.name)
    process = await asyncio.create_subprocess_exec(
        node,
        "--check",
        str(files[0]),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": launch.WORKER_PATH},
    )
    try:
        async with asyncio.timeout(INIT_TIMEOUT_S):
            _, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        return None, None
    return _location([err.decode("utf-8", "replace")], spec.code_dir)


def _without_debugger(spec: FunctionSpec) -> FunctionSpec:
    if spec.debug_port is None:
        return spec
    return FunctionSpec(**{**spec.__dict__, "debug_port": None})


def _location(texts: list[str], code_dir: Path) -> tuple[Path | None, int | None]:
    """The first place in the function's own folder that the error's texts name."""
    root = code_dir.resolve()
    for text in texts:
        for pattern in (_PY_LOCATION, _JS_LOCATION):
            for match in pattern.finditer(text):
                path = Path(match.group(1))
                if path.is_relative_to(root) and "node_modules" not in path.parts:
                    return path, int(match.group(2))
    return None, None
