"""One of ``edgesim serve --workers N``'s edge processes (see
:mod:`edgesim.frontdoors.processes`): ``python -m edgesim.frontdoors.edge_process``.

Its settings (the files, ``serve``'s options, the console's format, its index, the descriptors
of the listening sockets its supervisor bound, and the one to report its admin API on) are the
first line of its standard input; the end of its standard input asks it to stop, so it also
stops when its supervisor dies.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from edgesim.frontdoors import event_loop
from edgesim.frontdoors.console import Console
from edgesim.frontdoors.serving import EdgeProcess, ServeOptions, serve
from edgesim.frontdoors.viewer_limits import ViewerLimits

__all__ = ["main", "options_from_json", "run"]


def options_from_json(fields: dict[str, Any]) -> ServeOptions:
    """:class:`ServeOptions` from :func:`dataclasses.asdict`'s JSON."""
    fields = dict(fields)
    fields["limits"] = ViewerLimits(**fields["limits"])
    fields["inspect"] = tuple((str(name), port) for name, port in fields["inspect"])
    return ServeOptions(**fields)


async def run(settings: dict[str, Any]) -> int:
    """One of ``serve --workers``'s edge processes, with the settings its supervisor sent; the
    end of its standard input asks it to stop."""
    options = options_from_json(settings["options"])
    console = Console(fmt=settings["log_format"], quiet=settings["quiet"], color=settings["color"])
    report_fd = int(settings["report_fd"])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stdin_readable() -> None:
        if not os.read(0, 4096):
            loop.remove_reader(0)
            stop.set()

    loop.add_reader(0, stdin_readable)

    def ready(admin_url: str) -> None:
        os.write(report_fd, json.dumps({"admin": admin_url}).encode() + b"\n")
        os.close(report_fd)

    sockets = [socket.socket(fileno=int(fd)) for fd in settings["fds"]]
    process = EdgeProcess(index=int(settings["index"]), sockets=sockets, ready=ready, stop=stop)
    return await serve([Path(f) for f in settings["files"]], options, console, process=process)


def main() -> None:
    # The settings are the first line of standard input (read before the loop they choose).
    settings: dict[str, Any] = json.loads(sys.stdin.buffer.readline())
    sys.exit(event_loop.run(run(settings), settings["options"]["loop"]))


if __name__ == "__main__":
    main()
