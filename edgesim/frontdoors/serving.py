"""``edgesim serve``: distributions loaded and checked, one edge each behind the HTTP front
door, the admin API, hot reload and debugger ports, until a signal stops them.

This is where the front doors are put together, and where ``serve``'s options are declared:
:mod:`edgesim.cli` loads this module only for ``serve``, so ``--version``, ``invalidate`` and
the other commands start without loading the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edgesim.cache.store import DEFAULT_CACHE_SIZE, MemoryCacheStore
from edgesim.config import Distribution, load_distributions
from edgesim.frontdoors.admin import AdminServer
from edgesim.frontdoors.admin_auth import TOKEN_ENV
from edgesim.frontdoors.code_check import check_distribution_code
from edgesim.frontdoors.console import LOG_FORMATS, Console, CorrelatedRuntime
from edgesim.frontdoors.debugging import (
    DEBUGPY_PORT,
    NODE_INSPECTOR_PORT,
    debug_ports,
    inspect_target,
    open_debuggers,
)
from edgesim.frontdoors.dev_errors import DevErrors, DevErrorsEdge
from edgesim.frontdoors.processes import supervise, workers_option
from edgesim.frontdoors.reload import EdgeFactory, Reloader
from edgesim.frontdoors.server import DEFAULT_SHUTDOWN_GRACE, EdgeServer
from edgesim.frontdoors.viewer_connection import (
    DEFAULT_LIMITS,
    ViewerLimits,
    raise_open_files_limit,
)
from edgesim.pipeline import Edge
from edgesim.pipeline.cache_stage import DEFAULT_MAX_OBJECT_BYTES
from edgesim.runtime import FunctionRuntime
from edgesim.tasks import spawn

__all__ = ["ServeOptions", "add_serve_arguments", "serve", "serve_from_arguments", "size"]


@dataclass(frozen=True)
class ServeOptions:
    """What ``edgesim serve`` is told on its command line, besides the files."""

    host: str = "127.0.0.1"
    port: int = 8080
    admin_host: str = "127.0.0.1"
    admin_port: int = 9080
    cache_size: int = DEFAULT_CACHE_SIZE
    max_object_size: int = DEFAULT_MAX_OBJECT_BYTES
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE
    limits: ViewerLimits = DEFAULT_LIMITS
    dev_errors: bool = False
    reload: bool = True
    inspect: Sequence[tuple[str, int | None]] = ()
    workers: int = 1
    """Edge processes on the same ports (:mod:`edgesim.frontdoors.processes`)."""


@dataclass(frozen=True)
class EdgeProcess:
    """``serve`` as one of several edge processes: on sockets its supervisor bound, its admin
    API private (127.0.0.1, any port, told to the supervisor through ``ready``), the code
    checked and the ports announced by the supervisor; it stops when ``stop`` is set too."""

    index: int
    sockets: Sequence[socket.socket]
    ready: Callable[[str], None]
    stop: asyncio.Event


async def serve(
    files: Sequence[Path],
    options: ServeOptions,
    console: Console | None = None,
    *,
    process: EdgeProcess | None = None,
) -> int:
    """Serve ``files`` until SIGINT or SIGTERM; the exit status (1 when a file's functions fail
    their code check or the port cannot be bound)."""
    console = console or Console()
    if options.workers > 1 and process is None:
        return await supervise(files, options, console)
    paths = list(files)
    host, port = options.host, options.port
    admin_host, admin_port = options.admin_host, options.admin_port
    shutdown_grace = options.shutdown_grace
    raise_open_files_limit()
    distributions = load_distributions(paths)
    problems = (
        await check_distribution_code([str(p) for p in paths], distributions)
        if process is None
        else []
    )
    for problem in problems:
        print(f"edgesim: {problem}", file=sys.stderr)
    if problems:
        return 1
    ports = debug_ports(options.inspect, distributions)
    # One edge location: one cache for every distribution.
    store = MemoryCacheStore(options.cache_size)
    # edgesim's own records (a defect's traceback) go out in the console's format too.
    edgesim_logger = logging.getLogger("edgesim")
    edgesim_logger.addHandler(console.log_handler())
    edgesim_logger.propagate = False

    dev = DevErrors() if options.dev_errors else None

    sink = console.function_log

    def edge(distribution: Distribution, runtime: FunctionRuntime) -> Edge:
        # Files each function's log lines under its request's id, for the console (and the
        # calls themselves for the dev error page).
        correlated = CorrelatedRuntime(runtime, on_call=dev.keep if dev else None)
        if dev is not None:
            return DevErrorsEdge(
                distribution,
                dev,
                runtime=correlated,
                log_sink=sink,
                store=store,
                max_object_bytes=options.max_object_size,
            )
        return Edge(
            distribution,
            runtime=correlated,
            log_sink=sink,
            store=store,
            max_object_bytes=options.max_object_size,
        )

    factory = EdgeFactory(edge, log_sink=sink, debug_ports=ports)
    edges = [factory.edge(d) for d in distributions]
    server = EdgeServer(
        edges,
        host=host,
        port=port,
        access_log=console.access,
        shutdown_grace=shutdown_grace,
        limits=options.limits,
        sockets=process.sockets if process is not None else None,
    )
    try:
        await server.start()
    except OSError as error:
        await server.aclose()
        print(
            f"edgesim: cannot listen on {host}:{port}: {error.strerror or error}", file=sys.stderr
        )
        return 1
    for listener in server.listeners if process is None else ():
        settings = listener.edge.distribution.settings
        console.info(
            f"{listener.edge.distribution.source} ({settings.id}, "
            f"{settings.domain_name}) on http://{host}:{listener.port}/"
        )
    admin = AdminServer(
        server.edges,
        host=admin_host if process is None else "127.0.0.1",
        port=admin_port if process is None else 0,
        token=os.environ.get(TOKEN_ENV) or None,
        publish_token=process is None,
    )
    try:
        await admin.start()
    except OSError as error:
        # The viewer ports matter more than invalidations: keep serving without the admin API.
        console.warning(
            f"admin API not started on {admin_host}:{admin_port}: "
            f"{error.strerror or error}; `edgesim invalidate` is unavailable "
            "(pick a free port with --admin-port)"
        )
    else:
        if process is None:
            console.info(f"admin API (invalidations) on {admin.url}/, token in {admin.token_file}")
        else:
            process.ready(admin.url)
    runtimes = [factory.runtime(e) for e in edges]
    await open_debuggers(ports, [r for r in runtimes if r is not None], console.info)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Every edge process follows the files; the first one says what it reloaded, for all.
    quiet = process is not None and process.index > 0
    reloader = Reloader(
        server,
        paths,
        factory,
        info=_silent if quiet else console.info,
        warning=_silent if quiet else console.warning,
    )
    watching = spawn(reloader.run(stop), name="edgesim-reload") if options.reload else None

    def on_signal() -> None:
        if stop.is_set():
            # A second signal: the user will not wait. Workers die with this process (they
            # watch their parent), so nothing is left behind.
            console.info("stopping now")
            os._exit(130)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal)
    if process is not None:
        _ = spawn(_relay(process.stop, stop), name="edgesim-edge-process-stop")
    try:
        await stop.wait()
    finally:
        if process is None:
            console.info(
                f"shutting down (in-flight requests get {shutdown_grace:g} s; "
                "signal again to stop at once)"
            )
        stop.set()  # the watchers stop with it, whatever ended the wait
        if watching is not None:
            await watching
        await admin.aclose()
        await server.aclose()
    return 0


def _silent(message: str) -> None:
    return None


async def _relay(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


def add_serve_arguments(serve: argparse.ArgumentParser) -> None:
    """``edgesim serve``'s options, on its subcommand parser."""
    serve.add_argument(
        "files",
        nargs="*",
        type=Path,
        help="distribution files (default: distributions/example.yaml)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=8080, help="port of the first distribution (default 8080)"
    )
    serve.add_argument(
        "--admin-host", default="127.0.0.1", help="address of the admin API (default 127.0.0.1)"
    )
    serve.add_argument(
        "--admin-port", type=int, default=9080, help="port of the admin API (default 9080)"
    )
    serve.add_argument(
        "--cache-size",
        type=size,
        default=DEFAULT_CACHE_SIZE,
        help="cache bound in bytes; suffixes KB, KiB, MB, MiB, GB, GiB (default 256MiB)",
    )
    serve.add_argument(
        "--shutdown-grace",
        type=float,
        default=DEFAULT_SHUTDOWN_GRACE,
        help="seconds in-flight requests get to finish on SIGINT/SIGTERM; a second signal "
        "exits at once (default 5)",
    )
    serve.add_argument(
        "--max-object-size",
        type=size,
        default=DEFAULT_MAX_OBJECT_BYTES,
        help="largest object the cache keeps; larger answers stream through (default 64MiB)",
    )
    serve.add_argument(
        "--header-timeout",
        type=_seconds,
        default=DEFAULT_LIMITS.header_timeout,
        help="seconds a viewer gets to send a request line and headers "
        f"(default {DEFAULT_LIMITS.header_timeout:g})",
    )
    serve.add_argument(
        "--body-timeout",
        type=_seconds,
        default=DEFAULT_LIMITS.body_timeout,
        help="longest silence allowed between a request body's chunks "
        f"(default {DEFAULT_LIMITS.body_timeout:g})",
    )
    serve.add_argument(
        "--keepalive-timeout",
        type=_seconds,
        default=DEFAULT_LIMITS.keepalive_timeout,
        help="seconds an idle viewer connection stays open "
        f"(default {DEFAULT_LIMITS.keepalive_timeout:g})",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        default=0,
        help="viewer connections open at once; past it the longest-idle one is closed "
        "(default: what the open-files limit leaves room for)",
    )
    serve.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="text (a time, a level and the request id on each line) or json (one object a "
        "line, for machines)",
    )
    serve.add_argument("--quiet", action="store_true", help="print only access lines and errors")
    serve.add_argument(
        "--dev-errors",
        action="store_true",
        help="show a failed function's name, trigger, error, stack trace and value on the "
        "error page, below CloudFront's text (off: the page is CloudFront's alone)",
    )
    serve.add_argument(
        "--no-reload",
        action="store_true",
        help="do not follow edits of the distribution files and function folders",
    )
    serve.add_argument(
        "--workers",
        type=workers_option,
        default=1,
        metavar="N|auto",
        help="edge processes serving the same ports, each with its own cache and function "
        "workers, as a CloudFront location has several edge servers; auto: one per core "
        "(default 1)",
    )
    serve.add_argument(
        "--inspect",
        action="append",
        type=inspect_target,
        metavar="FUNCTION[:PORT]",
        help="let a debugger attach to this function's worker on 127.0.0.1:PORT (Node.js "
        f"inspector, default {NODE_INSPECTOR_PORT}; debugpy, default {DEBUGPY_PORT}); repeatable",
    )


def serve_from_arguments(args: argparse.Namespace, *, default_file: Path) -> int:
    """Run ``edgesim serve`` as the parsed command line says."""
    options = ServeOptions(
        host=args.host,
        port=args.port,
        admin_host=args.admin_host,
        admin_port=args.admin_port,
        cache_size=args.cache_size,
        max_object_size=args.max_object_size,
        shutdown_grace=args.shutdown_grace,
        limits=ViewerLimits(
            header_timeout=args.header_timeout,
            body_timeout=args.body_timeout,
            keepalive_timeout=args.keepalive_timeout,
            max_connections=args.max_connections,
        ),
        dev_errors=args.dev_errors,
        reload=not args.no_reload,
        inspect=tuple(args.inspect or ()),
        workers=args.workers,
    )
    console = Console(fmt=args.log_format, quiet=args.quiet)
    return asyncio.run(serve(list(args.files) or [default_file], options, console))


_SIZE = re.compile(r"(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?", re.IGNORECASE)
_UNITS = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def size(text: str) -> int:
    """A byte count from the command line: a number with an optional unit (KB, KiB, MB, ...)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 256MiB, 1000000)")
    return int(match.group(1)) * _UNITS[(match.group(2) or "b").lower()]
