"""``edgesim serve``: distributions loaded and checked, one edge each behind the HTTP front
door, the admin API, hot reload and debugger ports, until a signal stops them.

This is where the front doors are put together; :mod:`edgesim.cli` only reads the command line
into :class:`ServeOptions`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edgesim.cache.store import DEFAULT_CACHE_SIZE, MemoryCacheStore
from edgesim.config import Distribution, load_distributions
from edgesim.frontdoors.admin import AdminServer
from edgesim.frontdoors.admin_auth import TOKEN_ENV
from edgesim.frontdoors.code_check import check_distribution_code
from edgesim.frontdoors.console import Console, CorrelatedRuntime
from edgesim.frontdoors.debugging import debug_ports, open_debuggers
from edgesim.frontdoors.dev_errors import DevErrors, DevErrorsEdge
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

__all__ = ["ServeOptions", "serve"]


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


async def serve(
    files: Sequence[Path], options: ServeOptions, console: Console | None = None
) -> int:
    """Serve ``files`` until SIGINT or SIGTERM; the exit status (1 when a file's functions fail
    their code check or the port cannot be bound)."""
    console = console or Console()
    paths = list(files)
    host, port = options.host, options.port
    admin_host, admin_port = options.admin_host, options.admin_port
    shutdown_grace = options.shutdown_grace
    raise_open_files_limit()
    distributions = load_distributions(paths)
    problems = await check_distribution_code([str(p) for p in paths], distributions)
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
    )
    try:
        await server.start()
    except OSError as error:
        await server.aclose()
        print(
            f"edgesim: cannot listen on {host}:{port}: {error.strerror or error}", file=sys.stderr
        )
        return 1
    for listener in server.listeners:
        settings = listener.edge.distribution.settings
        console.info(
            f"{listener.edge.distribution.source} ({settings.id}, "
            f"{settings.domain_name}) on http://{host}:{listener.port}/"
        )
    admin = AdminServer(
        server.edges,
        host=admin_host,
        port=admin_port,
        token=os.environ.get(TOKEN_ENV) or None,
        publish_token=True,
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
        console.info(f"admin API (invalidations) on {admin.url}/, token in {admin.token_file}")
    runtimes = [factory.runtime(e) for e in edges]
    await open_debuggers(ports, [r for r in runtimes if r is not None], console.info)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    reloader = Reloader(server, paths, factory, info=console.info, warning=console.warning)
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
    try:
        await stop.wait()
    finally:
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
