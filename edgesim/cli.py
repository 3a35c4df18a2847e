"""The ``edgesim`` command: ``serve`` distributions, ``validate`` distribution files."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from edgesim.config import load_distributions
from edgesim.exceptions import ConfigError, EdgesimError
from edgesim.http import EdgeRequest
from edgesim.pipeline import Edge, EdgeResult
from edgesim.server import EdgeServer

__all__ = ["main"]

DEFAULT_DISTRIBUTION = Path("distributions/example.yaml")


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
        if args.command == "serve":
            return asyncio.run(_serve(args.files, host=args.host, port=args.port))
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
    validate = commands.add_parser("validate", help="check distribution files and exit")
    validate.add_argument("files", nargs="+", type=Path, help="distribution files")
    return parser


def _validate(files: Sequence[Path]) -> int:
    for distribution in load_distributions(files):
        behaviors = len(distribution.behaviors)
        functions = len(distribution.functions)
        print(
            f"{distribution.source}: ok ({behaviors} behaviors, "
            f"{len(distribution.origins)} origins, {functions} functions)"
        )
    return 0


def _print_function_log(function: str, lines: list[str]) -> None:
    for line in lines:
        print(f"[{function}] {line}", flush=True)


def _print_access(request: EdgeRequest, result: EdgeResult, elapsed_ms: float) -> None:
    response = result.response
    x_cache = (response.headers.get("X-Cache") or "").replace(" from cloudfront", "")
    print(
        f"{request.client_ip} {request.method} {request.target} {response.status} "
        f"{x_cache} {elapsed_ms:.1f}ms",
        flush=True,
    )


async def _serve(files: Sequence[Path], *, host: str, port: int) -> int:
    paths = list(files) or [DEFAULT_DISTRIBUTION]
    distributions = load_distributions(paths)
    edges = [Edge(d, log_sink=_print_function_log) for d in distributions]
    server = EdgeServer(edges, host=host, port=port, access_log=_print_access)
    try:
        await server.start()
    except OSError as error:
        for edge in edges:
            await edge.aclose()
        print(f"edgesim: cannot listen on {host}:{port}: {error.strerror}", file=sys.stderr)
        return 1
    for listener in server.listeners:
        settings = listener.edge.distribution.settings
        print(
            f"edgesim: {listener.edge.distribution.source} ({settings.id}, "
            f"{settings.domain_name}) on http://{host}:{listener.port}/",
            flush=True,
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        print("edgesim: shutting down", flush=True)
        await server.aclose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
