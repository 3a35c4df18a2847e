"""``edgesim serve``'s command line: its options, declared for :mod:`edgesim.cli`, and the run
they ask for (:func:`edgesim.frontdoors.serving.serve` on the event loop chosen).

:mod:`edgesim.cli` loads this module only for ``serve``, so ``--version``, ``invalidate`` and the
other commands start without loading the server.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from edgesim.cache.store import DEFAULT_CACHE_SIZE
from edgesim.frontdoors import event_loop
from edgesim.frontdoors.console import LOG_FORMATS, Console
from edgesim.frontdoors.debugging import (
    DEBUGPY_PORT,
    NODE_INSPECTOR_PORT,
    inspect_target,
)
from edgesim.frontdoors.processes import workers_option
from edgesim.frontdoors.server import DEFAULT_SHUTDOWN_GRACE
from edgesim.frontdoors.serving import ServeOptions, serve
from edgesim.frontdoors.viewer_limits import (
    DEFAULT_LIMITS,
    ViewerLimits,
)
from edgesim.pipeline.cache_stage import DEFAULT_MAX_OBJECT_BYTES

__all__ = ["add_serve_arguments", "serve_from_arguments", "size"]


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """``edgesim serve``'s options, on its subcommand parser."""
    parser.add_argument(
        "files",
        nargs="*",
        type=Path,
        help="distribution files (default: distributions/example.yaml)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8080, help="port of the first distribution (default 8080)"
    )
    parser.add_argument(
        "--admin-host", default="127.0.0.1", help="address of the admin API (default 127.0.0.1)"
    )
    parser.add_argument(
        "--admin-port", type=int, default=9080, help="port of the admin API (default 9080)"
    )
    parser.add_argument(
        "--cache-size",
        type=size,
        default=DEFAULT_CACHE_SIZE,
        help="cache bound in bytes; suffixes KB, KiB, MB, MiB, GB, GiB (default 256MiB)",
    )
    parser.add_argument(
        "--shutdown-grace",
        type=float,
        default=DEFAULT_SHUTDOWN_GRACE,
        help="seconds in-flight requests get to finish on SIGINT/SIGTERM; a second signal "
        "exits at once (default 5)",
    )
    parser.add_argument(
        "--max-object-size",
        type=size,
        default=DEFAULT_MAX_OBJECT_BYTES,
        help="largest object the cache keeps; larger answers stream through (default 64MiB)",
    )
    parser.add_argument(
        "--header-timeout",
        type=_seconds,
        default=DEFAULT_LIMITS.header_timeout,
        help="seconds a viewer gets to send a request line and headers "
        f"(default {DEFAULT_LIMITS.header_timeout:g})",
    )
    parser.add_argument(
        "--body-timeout",
        type=_seconds,
        default=DEFAULT_LIMITS.body_timeout,
        help="longest silence allowed between a request body's chunks "
        f"(default {DEFAULT_LIMITS.body_timeout:g})",
    )
    parser.add_argument(
        "--keepalive-timeout",
        type=_seconds,
        default=DEFAULT_LIMITS.keepalive_timeout,
        help="seconds an idle viewer connection stays open "
        f"(default {DEFAULT_LIMITS.keepalive_timeout:g})",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=0,
        help="viewer connections open at once; past it the longest-idle one is closed "
        "(default: what the open-files limit leaves room for)",
    )
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="text (a time, a level and the request id on each line) or json (one object a "
        "line, for machines)",
    )
    parser.add_argument("--quiet", action="store_true", help="print only access lines and errors")
    parser.add_argument(
        "--dev-errors",
        action="store_true",
        help="show a failed function's name, trigger, error, stack trace and value on the "
        "error page, below CloudFront's text (off: the page is CloudFront's alone)",
    )
    parser.add_argument(
        "--no-reload",
        action="store_true",
        help="do not follow edits of the distribution files and function folders",
    )
    parser.add_argument(
        "--workers",
        type=workers_option,
        default=1,
        metavar="N|auto",
        help="edge processes serving the same ports, each with its own cache and function "
        "workers, as a CloudFront location has several edge servers; auto: one per core "
        "(default 1)",
    )
    parser.add_argument(
        "--inspect",
        action="append",
        type=inspect_target,
        metavar="FUNCTION[:PORT]",
        help="let a debugger attach to this function's worker on 127.0.0.1:PORT (Node.js "
        f"inspector, default {NODE_INSPECTOR_PORT}; debugpy, default {DEBUGPY_PORT}); repeatable",
    )
    parser.add_argument(
        "--loop",
        choices=event_loop.LOOPS,
        default="auto",
        help="the event loop: uvloop (faster), asyncio's own, or auto: uvloop when installed "
        "(default auto)",
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
        loop=args.loop,
    )
    console = Console(fmt=args.log_format, quiet=args.quiet)
    try:
        loop = event_loop.resolve(options.loop)
    except event_loop.LoopUnavailableError as error:
        console.error(str(error))
        return 2
    return event_loop.run(serve(list(args.files) or [default_file], options, console), loop)


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
