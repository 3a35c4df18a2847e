"""How a worker process is started for a function: which program, which interpreter, which
environment.

Interpreter choice for ``pythonX.Y``: every ``pythonX.Y`` on the host's ``PATH`` is probed in
order (run with a clean environment, asked for its version and real path); the first that runs
and really is X.Y wins. Probing matters because version managers put shims on ``PATH`` that
fail without their own environment variables. After ``PATH``, the interpreters a pyenv
installation keeps (``$PYENV_ROOT/versions/X.Y.*/bin``, ``~/.pyenv`` by default) are tried too,
since pyenv's shims only work inside a shell pyenv set up. When none works, the worker runs
under the interpreter running edgesim (``sys.executable``) and a warning says so, once per
runtime: the function still runs, on a possibly different Python version. The result is cached
for the life of the process.

The worker always runs as ``<python> -I -S -B``: isolated mode and no ``site`` keep edgesim's
own virtualenv out of the function's reach (a function sees the standard library and its own
folder, like a deployment package on Lambda, minus the SDK Lambda preinstalls), and ``-B``
keeps ``__pycache__`` out of the function's folder, which is read-only on Lambda.

Every ``nodejsNN.x`` runtime runs on the first ``node`` on the host's ``PATH``, which must be
Node.js 18 or newer; that is checked when a pool is created (``node --version``, once per
binary), so a missing or old ``node`` stops ``edgesim serve`` at start rather than failing
requests. A ``node`` of another major version than the runtime's name runs it anyway, with one
warning. The worker gets the V8 limits Lambda's own Node.js bootstrap derives from the memory
size (old space 90 %, semi space 5 %), so a heap that outgrows the function's memory ends the
process the way it ends on Lambda, alongside the pool's resident-memory watch.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from edgesim.exceptions import RuntimeUnavailableError
from edgesim.runtime import debug
from edgesim.runtime.spec import FunctionSpec

__all__ = [
    "NODE_RUNTIMES",
    "NODE_WORKER",
    "PYTHON_BOOT",
    "PYTHON_RUNTIMES",
    "PYTHON_WORKER",
    "RUNTIME_DIR",
    "WORKER_PATH",
    "bytecode_cache_dir",
    "check_runtime",
    "invoked_function_arn",
    "MIN_NODE_MAJOR",
    "log_group_name",
    "new_log_stream_name",
    "node_options",
    "resolve_node",
    "resolve_python",
    "worker_command",
    "worker_environment",
]

logger = logging.getLogger(__name__)

RUNTIME_DIR = Path(__file__).resolve().parent
PYTHON_WORKER = RUNTIME_DIR / "python_worker.py"
PYTHON_BOOT = RUNTIME_DIR / "python_boot.py"
NODE_WORKER = RUNTIME_DIR / "node_worker.js"

PYTHON_RUNTIMES: dict[str, tuple[int, int]] = {
    "python3.9": (3, 9),
    "python3.10": (3, 10),
    "python3.11": (3, 11),
    "python3.12": (3, 12),
    "python3.13": (3, 13),
}
NODE_RUNTIMES: dict[str, int] = {"nodejs18.x": 18, "nodejs20.x": 20, "nodejs22.x": 22}
# The oldest Node.js the worker program supports (and the oldest runtime edgesim accepts).
MIN_NODE_MAJOR = 18

# What a worker gets as PATH; the host's PATH never reaches it.
WORKER_PATH = "/usr/local/bin:/usr/bin:/bin"
# Placeholder account of every ARN edgesim shows; Lambda@Edge functions live in us-east-1.
_ACCOUNT_ID = "123456789012"
_PROBE_TIMEOUT_S = 10.0
_PROBE_SCRIPT = "import sys; print(sys.executable); print(*sys.version_info[:2])"

_NODE_VERSION = re.compile(r"v(\d+)\.\d+\.\d+\S*")

_resolved_pythons: dict[tuple[str, str, bool], str] = {}
_python_lookups: dict[tuple[str, str, bool], asyncio.Task[str]] = {}
# `node --version` by (path, mtime, size): asked once per binary for the life of the process.
_node_versions: dict[tuple[str, int, int], str | None] = {}
_warned_node: set[tuple[str, str]] = set()


def check_runtime(spec: FunctionSpec) -> None:
    """Fail fast, without starting anything, when ``spec.runtime`` cannot run here."""
    if spec.runtime in PYTHON_RUNTIMES:
        return
    if spec.runtime in NODE_RUNTIMES:
        if not NODE_WORKER.is_file():
            raise RuntimeUnavailableError(
                f"function {spec.name!r}: runtime {spec.runtime} needs the Node.js worker "
                f"program {NODE_WORKER}, which this edgesim does not include"
            )
        resolve_node(spec.runtime, function_name=spec.name)
        return
    known = ", ".join([*PYTHON_RUNTIMES, *NODE_RUNTIMES])
    raise RuntimeUnavailableError(
        f"function {spec.name!r}: unknown runtime {spec.runtime!r} (known: {known})"
    )


async def worker_command(spec: FunctionSpec) -> list[str]:
    """The argv prefix that starts a worker for ``spec`` (protocol options are appended)."""
    check_runtime(spec)
    port = spec.debug_port
    if spec.runtime in PYTHON_RUNTIMES:
        python = await resolve_python(spec.runtime, function_name=spec.name)
        boot = [str(PYTHON_BOOT), str(PYTHON_WORKER), bytecode_cache_dir()]
        if port is None:
            return [python, "-I", "-S", "-B", *boot]
        # Frozen standard modules would make the debugger miss breakpoints set in them.
        interpreter = [python, "-I", "-S", "-B", "-Xfrozen_modules=off"]
        return [*interpreter, *boot, *debug.python_debug_options(port)]
    node = resolve_node(spec.runtime, function_name=spec.name)
    inspector = [] if port is None else [debug.inspect_option(port)]
    return [node, *node_options(spec.memory_mb), *inspector, str(NODE_WORKER)]


@functools.cache
def bytecode_cache_dir() -> str:
    """The folder where Python workers keep the worker program's compiled code, or ``""``.

    It is the user's own (``$XDG_CACHE_HOME/edgesim/bytecode``, mode 0700): code read from it
    runs in every worker, so a folder that is not this user's alone, or cannot be made, is not
    used, and workers then compile the program as they start.
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "edgesim", "bytecode")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        status = os.stat(folder)
    except OSError:
        return ""
    if status.st_uid != os.getuid() or status.st_mode & 0o077:
        return ""
    return folder


def node_options(memory_mb: int) -> list[str]:
    """The options Lambda's Node.js bootstrap passes to ``node`` for a function of this size."""
    new_space = memory_mb // 10
    return [
        "--expose-gc",
        "--max-http-header-size=81920",
        f"--max-semi-space-size={max(1, new_space // 2)}",
        f"--max-old-space-size={memory_mb - new_space}",
    ]


def resolve_node(runtime: str, *, function_name: str, search_path: str | None = None) -> str:
    """The ``node`` that runs ``runtime``: the first on ``PATH``, if it is Node.js 18 or newer.

    Raises :class:`RuntimeUnavailableError` naming the function and what was found.
    """
    path = os.environ.get("PATH", os.defpath) if search_path is None else search_path
    needs = f"function {function_name!r}: runtime {runtime} needs Node.js {MIN_NODE_MAJOR} or newer"
    found = shutil.which("node", path=path)
    if found is None:
        raise RuntimeUnavailableError(f"{needs}, and there is no `node` on PATH")
    node = os.path.abspath(found)
    version = _node_version(node)
    if version is None:
        raise RuntimeUnavailableError(f"{needs}; `node --version` fails at {node}")
    match = _NODE_VERSION.fullmatch(version)
    if match is None:
        raise RuntimeUnavailableError(f"{needs}; {node} reports version {version!r}")
    major = int(match.group(1))
    if major < MIN_NODE_MAJOR:
        raise RuntimeUnavailableError(f"{needs}; found {version} at {node}")
    if major != NODE_RUNTIMES[runtime] and (runtime, node) not in _warned_node:
        _warned_node.add((runtime, node))
        logger.warning(
            "runtime %s (first needed by function %r) runs on Node.js %s at %s",
            runtime,
            function_name,
            version,
            node,
        )
    return node


def _node_version(node: str) -> str | None:
    """``node --version`` (e.g. ``v20.11.0``), or None when it does not run."""
    try:
        info = os.stat(node)
    except OSError:
        return None
    key = (node, info.st_mtime_ns, info.st_size)
    if key in _node_versions:
        return _node_versions[key]
    try:
        completed = subprocess.run(
            [node, "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env={"PATH": WORKER_PATH, "LANG": "en_US.UTF-8"},
            timeout=_PROBE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        version = None
    else:
        out = completed.stdout.decode("utf-8", "replace").strip()
        version = out if completed.returncode == 0 and out else None
    _node_versions[key] = version
    return version


async def resolve_python(
    runtime: str, *, function_name: str, search_path: str | None = None
) -> str:
    """The interpreter to run ``runtime`` with (see the module docstring)."""
    path = os.environ.get("PATH", os.defpath) if search_path is None else search_path
    # An explicit search path is searched alone (no pyenv), so it is cached apart.
    key = (runtime, path, search_path is None)
    cached = _resolved_pythons.get(key)
    if cached is not None:
        return cached
    # Simultaneous first cold starts share one lookup instead of each probing every candidate.
    loop = asyncio.get_running_loop()
    pending = _python_lookups.get(key)
    if pending is not None and pending.get_loop() is loop:
        return await asyncio.shield(pending)
    lookup = loop.create_task(_lookup_python(runtime, key, path, function_name, search_path))
    _python_lookups[key] = lookup

    def forget(done: asyncio.Task[str]) -> None:
        if _python_lookups.get(key) is done:
            del _python_lookups[key]

    lookup.add_done_callback(forget)
    return await asyncio.shield(lookup)


async def _lookup_python(
    runtime: str,
    key: tuple[str, str, bool],
    path: str,
    function_name: str,
    search_path: str | None,
) -> str:
    major, minor = PYTHON_RUNTIMES[runtime]
    command = f"python{major}.{minor}"
    tried: list[str] = []
    candidates = _candidates(command, path)
    if search_path is None:
        candidates += _pyenv_candidates(command, (major, minor))
    for candidate in candidates:
        probed = await _probe(candidate)
        if probed is None:
            tried.append(f"{candidate} does not run")
            continue
        executable, version = probed
        if version == (major, minor):
            _resolved_pythons[key] = executable
            return executable
        tried.append(f"{candidate} is Python {version[0]}.{version[1]}")
    if not sys.executable:
        found = "; ".join(tried) or f"no {command} on PATH"
        raise RuntimeUnavailableError(
            f"function {function_name!r}: no interpreter for {runtime} ({found}) "
            "and no fallback interpreter"
        )
    found = "; ".join(tried) or f"no {command} on PATH"
    logger.warning(
        "runtime %s (first needed by function %r): %s; running it with %s (Python %d.%d) instead",
        runtime,
        function_name,
        found,
        sys.executable,
        sys.version_info.major,
        sys.version_info.minor,
    )
    _resolved_pythons[key] = sys.executable
    return sys.executable


def _candidates(command: str, path: str) -> list[str]:
    seen: list[str] = []
    for directory in path.split(os.pathsep):
        if not directory:
            continue
        candidate = shutil.which(command, path=directory)
        if candidate is not None and candidate not in seen:
            seen.append(candidate)
    return seen


def _pyenv_candidates(command: str, version: tuple[int, int]) -> list[str]:
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    pattern = f"{version[0]}.{version[1]}.*/bin/{command}"
    return [str(p) for p in sorted(root.glob(f"versions/{pattern}"), reverse=True) if p.is_file()]


async def _probe(candidate: str) -> tuple[str, tuple[int, int]] | None:
    """Run ``candidate`` the way a worker would run; its real path and version, or None."""
    try:
        process = await asyncio.create_subprocess_exec(
            candidate,
            "-I",
            "-S",
            "-c",
            _PROBE_SCRIPT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env={"PATH": WORKER_PATH, "LANG": "en_US.UTF-8"},
        )
    except OSError:
        return None
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT_S):
            out, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        return None
    lines = out.decode("utf-8", "replace").splitlines()
    if process.returncode != 0 or len(lines) < 2:
        return None
    try:
        major, minor = (int(part) for part in lines[-1].split())
    except ValueError:
        return None
    return lines[-2] or candidate, (major, minor)


def log_group_name(spec: FunctionSpec) -> str:
    """Lambda@Edge's log group: the replica's name carries the ``us-east-1.`` prefix."""
    return f"/aws/lambda/us-east-1.{spec.name}"


def new_log_stream_name(spec: FunctionSpec) -> str:
    """A fresh stream name, one per worker, as Lambda names one per execution environment."""
    return f"{datetime.now(UTC):%Y/%m/%d}/[{spec.version}]{uuid.uuid4().hex}"


def invoked_function_arn(spec: FunctionSpec) -> str:
    """The versioned ARN CloudFront invokes (edge functions always live in us-east-1)."""
    return f"arn:aws:lambda:us-east-1:{_ACCOUNT_ID}:function:{spec.name}:{spec.version}"


def worker_environment(spec: FunctionSpec, log_stream: str) -> dict[str, str]:
    """Lambda's reserved variables for ``spec``, and nothing of the host's environment.

    Node.js functions also get ``NODE_PATH`` holding their own folder, the one entry of Lambda's
    ``NODE_PATH`` that has a counterpart here (layers and the runtime's preinstalled SDK do not).
    """
    env = {
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": log_group_name(spec),
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "LAMBDA_TASK_ROOT": str(spec.code_dir.absolute()),
        "LAMBDA_RUNTIME_DIR": str(RUNTIME_DIR),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PATH": WORKER_PATH,
        "_HANDLER": spec.handler,
    }
    if spec.runtime in NODE_RUNTIMES:
        env["NODE_PATH"] = env["LAMBDA_TASK_ROOT"]
    return env
