"""``edgesim serve``: distributions loaded and checked, one edge each behind the HTTP front
door, the admin API, hot reload and debugger ports, until a signal stops them.

This is where the front doors are put together; the command line that asks for it is
:mod:`edgesim.frontdoors.serve_command`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
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
from edgesim.frontdoors.console import Console, CorrelatedRuntime
from edgesim.frontdoors.debugging import (
    debug_ports,
    open_debuggers,
)
from edgesim.frontdoors.dev_errors import DevErrors, DevErrorsEdge
from edgesim.frontdoors.event_loop import LoopName
from edgesim.frontdoors.processes import supervise
from edgesim.frontdoors.reload import EdgeFactory, Reloader
from edgesim.frontdoors.server import DEFAULT_SHUTDOWN_GRACE, EdgeServer
from edgesim.frontdoors.viewer_limits import (
    DEFAULT_LIMITS,
    ViewerLimits,
    raise_open_files_limit,
)
from edgesim.pipeline import Edge
from edgesim.pipeline.cache_stage import DEFAULT_MAX_OBJECT_BYTES
from edgesim.runtime import FunctionRuntime
from edgesim.tasks import spawn

__all__ = ["EdgeProcess", "ServeOptions", "serve"]


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
    loop: LoopName = "auto"
    """The event loop (:mod:`edgesim.frontdoors.event_loop`)."""


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
    stop = asyncio.Event()

    def on_signal() -> None:
        if stop.is_set():
            # A second signal: the user will not wait. Workers die with this process (they
            # watch their parent), so nothing is left behind.
            console.info("stopping now")
            os._exit(130)
        stop.set()

    # Taken before the ports are announced: a signal from someone who saw the banner always
    # gets the graceful shutdown, however long the admin API and debuggers take to start.
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal)
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
    # What is loaded by now (modules, distributions, edges) lives as long as the process: out of
    # the cycle collector's sight, its full collections no longer walk it every few thousand
    # requests.
    gc.freeze()
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
