"""The ``edgesim`` command: ``serve`` distributions, ``validate`` files, ``invalidate`` paths,
browse through ``mitm``; ``schema`` prints the distribution file's JSON Schema, ``init`` writes a
starter project."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgesim.exceptions import ConfigError, EdgesimError
from edgesim.frontdoors.admin_auth import TOKEN_ENV
from edgesim.mitm import ADDON_PATH

__all__ = ["main"]

DEFAULT_DISTRIBUTION = Path("distributions/example.yaml")
DEFAULT_ADMIN = "http://127.0.0.1:9080"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``edgesim`` console script; returns the exit status."""
    given = list(sys.argv[1:] if argv is None else argv)
    parser = _parser(next((arg for arg in given if not arg.startswith("-")), None))
    args = parser.parse_args(given)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "validate":
            return _validate(args.files)
        if args.command == "schema":
            from edgesim.schema import schema_text

            sys.stdout.write(schema_text())
            return 0
        if args.command == "init":
            return _init(args.directory)
        if args.command == "serve":
            from edgesim.frontdoors.serve_command import serve_from_arguments

            return serve_from_arguments(args, default_file=DEFAULT_DISTRIBUTION)
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


def _parser(wanted: str | None = None) -> argparse.ArgumentParser:
    """The command line; only ``wanted``'s own options are defined (serve's defaults come from
    modules that load the whole server, which other commands and ``--version`` do not need)."""
    parser = argparse.ArgumentParser(
        prog="edgesim",
        description="Run CloudFront distributions and their Lambda@Edge functions locally.",
    )
    parser.add_argument("--version", action=_Version, help="show edgesim's version and exit")
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="serve distributions, one port each")
    if wanted == "serve":
        from edgesim.frontdoors.serve_command import add_serve_arguments

        add_serve_arguments(serve)
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
    from edgesim.config import load_distribution

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


class _Version(argparse.Action):
    """``--version``, looked up only when asked for: importlib.metadata stays out of the start
    of every other command, as asyncio does of those that do not run a loop (``invalidate``
    returns ~40 ms sooner, ``--version`` itself ~80 ms)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        print(f"edgesim {_version()}")
        parser.exit()


def _version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("edgesim")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        from edgesim import __version__

        return __version__


def _init(directory: Path) -> int:
    from edgesim.starter import write_starter

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


def _invalidate(
    paths: Sequence[str], *, admin: str, distribution: str | None, token: str | None
) -> int:
    from edgesim.cache.store import check_invalidation_path
    from edgesim.frontdoors.admin_client import find_token, invalidate

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
    import asyncio

    from edgesim.config import load_distributions
    from edgesim.frontdoors.code_check import check_distribution_code

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
