"""The ``edgesim`` command: ``serve`` distributions, ``validate`` files, ``invalidate`` paths,
browse through ``mitm``; ``schema`` prints the distribution file's JSON Schema, ``init`` writes a
starter project."""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from edgesim.cache.store import DEFAULT_CACHE_SIZE, check_invalidation_path
from edgesim.config import load_distribution, load_distributions
from edgesim.exceptions import ConfigError, EdgesimError
from edgesim.frontdoors.admin_auth import TOKEN_ENV
from edgesim.frontdoors.admin_client import find_token, invalidate
from edgesim.frontdoors.code_check import check_distribution_code
from edgesim.frontdoors.console import LOG_FORMATS, Console
from edgesim.frontdoors.debugging import (
    DEBUGPY_PORT,
    NODE_INSPECTOR_PORT,
    inspect_target,
)
from edgesim.frontdoors.server import DEFAULT_SHUTDOWN_GRACE
from edgesim.frontdoors.serving import ServeOptions, serve
from edgesim.frontdoors.viewer_connection import (
    DEFAULT_LIMITS,
    ViewerLimits,
)
from edgesim.mitm import ADDON_PATH
from edgesim.pipeline.cache_stage import DEFAULT_MAX_OBJECT_BYTES
from edgesim.schema import schema_text
from edgesim.starter import write_starter

__all__ = ["main"]

DEFAULT_DISTRIBUTION = Path("distributions/example.yaml")
DEFAULT_ADMIN = "http://127.0.0.1:9080"
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``edgesim`` console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "validate":
            return _validate(args.files)
        if args.command == "schema":
            sys.stdout.write(schema_text())
            return 0
        if args.command == "init":
            return _init(args.directory)
        if args.command == "serve":
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
            )
            console = Console(fmt=args.log_format, quiet=args.quiet)
            files = list(args.files) or [DEFAULT_DISTRIBUTION]
            return asyncio.run(serve(files, options, console))
        if args.command == "mitm":
            return _mitm(args.file, args.mitmproxy_args, web=not args.no_web)
        if args.command == "invalidate":
            return _invalidate(
                args.paths, admin=args.admin, distribution=args.distribution, token=args.admin_token
            )
    except ConfigError as error:
        print(f"edgesim: {error}", file=sys.stderr)
        return 1
    except EdgesimError as error:
        print(f"edgesim: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgesim",
        description="Run CloudFront distributions and their Lambda@Edge functions locally.",
    )
    parser.add_argument("--version", action="version", version=f"edgesim {_version()}")
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="serve distributions, one port each")
    serve.add_argument(
        "files",
        nargs="*",
        type=Path,
        help=f"distribution files (default: {DEFAULT_DISTRIBUTION})",
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
        type=_size,
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
        type=_size,
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
        "--inspect",
        action="append",
        type=inspect_target,
        metavar="FUNCTION[:PORT]",
        help="let a debugger attach to this function's worker on 127.0.0.1:PORT (Node.js "
        f"inspector, default {NODE_INSPECTOR_PORT}; debugpy, default {DEBUGPY_PORT}); repeatable",
    )
    validate = commands.add_parser(
        "validate", help="check distribution files and their functions' code, and exit"
    )
    validate.add_argument("files", nargs="+", type=Path, help="distribution files")
    commands.add_parser("schema", help="print the JSON Schema of distribution files (for editors)")
    init = commands.add_parser(
        "init",
        help="write a starter project: a distribution, a Python and a Node.js function, a test",
    )
    init.add_argument(
        "directory", nargs="?", type=Path, default=Path(), help="where (default: here)"
    )
    invalidate = commands.add_parser(
        "invalidate", help="remove cached objects from a running edgesim (CloudFront paths)"
    )
    invalidate.add_argument("paths", nargs="+", help="paths such as /index.html or /images/*")
    invalidate.add_argument(
        "--admin", default=DEFAULT_ADMIN, help=f"admin API of the server (default {DEFAULT_ADMIN})"
    )
    invalidate.add_argument(
        "--distribution", default=None, help="distribution id (default: every one served)"
    )
    invalidate.add_argument(
        "--admin-token",
        default=None,
        help=f"the admin API's token (default: ${TOKEN_ENV}, else the file `edgesim serve` "
        "writes for the admin port, readable only by its user)",
    )
    mitm = commands.add_parser(
        "mitm",
        help="browse a distribution through mitmweb, every flow annotated by the edge",
        description="Start mitmweb (mitmdump with --no-web) with edgesim's addon serving FILE. "
        "By default it is a reverse proxy on 127.0.0.1:8080 in front of the distribution's own "
        "origins: open http://127.0.0.1:8080/. Arguments after FILE go to mitmproxy as they "
        "are, e.g. --mode regular --set edgesim_upstream=true to put the edge in front of "
        "every site the browser visits.",
    )
    mitm.add_argument(
        "--no-web", action="store_true", help="run mitmdump (flows in the terminal) instead"
    )
    mitm.add_argument("file", type=Path, help="the distribution file")
    mitm.add_argument(
        "mitmproxy_args", nargs=argparse.REMAINDER, help="passed on to mitmweb or mitmdump"
    )
    return parser


def _mitm(file: Path, extra: Sequence[str], *, web: bool) -> int:
    """Run mitmweb or mitmdump in this process with the addon serving ``file``."""
    rest = [arg for arg in extra if arg != "--no-web"]
    web = web and len(rest) == len(extra)  # --no-web after FILE counts too
    distribution = load_distribution(file)  # a broken file stops here, with its reason
    try:
        from mitmproxy.tools.main import mitmdump, mitmweb
    except ImportError:
        print(
            "edgesim: `edgesim mitm` needs mitmproxy, which needs Python 3.12 or newer: "
            "pip install 'edgesim[mitm]'",
            file=sys.stderr,
        )
        return 1
    chosen_mode = any(a in ("-m", "--mode") or a.startswith("--mode=") for a in rest)
    default_mode = (
        []
        if chosen_mode
        else [
            *("--mode", f"reverse:http://{distribution.settings.domain_name}"),
            # the viewer's Host reaches functions as sent, as with `edgesim serve`
            *("--set", "keep_host_header=true"),
        ]
    )
    columns = []
    if web and not any("web_columns" in arg for arg in rest):
        # mitmweb's flow list, with the comment column: each flow's X-Cache and stages
        for column in ("tls", "icon", "path", "method", "status", "size", "time", "comment"):
            columns += ["--set", f"web_columns={column}"]
    arguments = [
        *("--listen-host", "127.0.0.1"),
        *default_mode,
        *columns,
        *("-s", str(ADDON_PATH)),
        *("--set", f"edgesim_distribution={file.resolve()}"),
        *rest,  # last, so the user's own settings win
    ]
    tool = "mitmweb" if web else "mitmdump"
    print(
        f"edgesim: {file} ({distribution.settings.id}) through {tool}; "
        "flows carry the edge's X-Cache and stages",
        flush=True,
    )
    (mitmweb if web else mitmdump)(arguments)
    return 0


def _version() -> str:
    try:
        return importlib.metadata.version("edgesim")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        from edgesim import __version__

        return __version__


def _init(directory: Path) -> int:
    try:
        written = write_starter(directory)
    except FileExistsError as error:
        print(f"edgesim: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    print(
        f"next: cd {directory} && edgesim serve distribution.yaml   (or: pytest, which needs "
        "pip install 'edgesim[testing]')"
    )
    return 0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def _size(text: str) -> int:
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 256MiB, 1000000)")
    return int(match.group(1)) * _UNITS[(match.group(2) or "b").lower()]


def _invalidate(
    paths: Sequence[str], *, admin: str, distribution: str | None, token: str | None
) -> int:
    for path in paths:
        try:
            check_invalidation_path(path)
        except ValueError as problem:
            print(f"edgesim: {problem}", file=sys.stderr)
            return 1
    answer = invalidate(
        admin, paths, distribution=distribution, token=find_token(admin, explicit=token)
    )
    print(
        f"invalidated {answer.invalidated} objects for {', '.join(answer.paths)} "
        f"in {', '.join(answer.distributions)}"
    )
    return 0


def _validate(files: Sequence[Path]) -> int:
    distributions = load_distributions(files)
    problems = asyncio.run(check_distribution_code([str(f) for f in files], distributions))
    for problem in problems:
        print(f"edgesim: {problem}", file=sys.stderr)
    if problems:
        return 1
    for distribution in distributions:
        behaviors = len(distribution.behaviors)
        functions = len(distribution.functions)
        print(
            f"{distribution.source}: ok ({behaviors} behaviors, "
            f"{len(distribution.origins)} origins, {functions} functions)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
