"""Servers the benchmarks start in their own processes.

``python bench/_servers.py plain``: an aiohttp server answering every GET with the benchmarks'
1 KB body (the hit path's baseline, and the HTTP origin of the miss rows); it prints
``listening on PORT`` once bound to a free port of 127.0.0.1. ``--uvloop`` runs it on uvloop.

``python bench/_servers.py pools CONFIG URI``: the bare round trips of a request's functions.
It sends ``GET URI`` through the pipeline of the distribution ``CONFIG`` once, in this process,
keeping the event each function was invoked with; then, on uvloop like ``edgesim serve``, it
answers ``GET /invoke`` by invoking those functions with those events through the function
runtime alone (no pipeline: no event built, no result checked or applied, no log lines shown),
one after another (its ``X-Invocations`` counts those done so far), and ``GET /none`` without
invoking anything; both with the 1 KB body.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop
from _lab import BODY
from aiohttp import web

from edgesim.config import load_distribution
from edgesim.http import EdgeRequest, Headers
from edgesim.pipeline import Edge, function_specs
from edgesim.runtime import FunctionRuntime
from edgesim.types import Invocation

Handler = Callable[[web.Request], Awaitable[web.Response]]


async def serve(routes: dict[str, Handler]) -> None:
    app = web.Application()
    for path, handle in routes.items():
        app.router.add_get(path, handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"listening on {runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()


async def answer_body(request: web.Request) -> web.Response:
    """The benchmarks' 1 KB body, whatever was asked."""
    return web.Response(body=BODY, content_type="text/html")


async def plain() -> None:
    await serve({"/{tail:.*}": answer_body})


class _Capture:
    """A function invoker over the runtime that keeps each (function, event) it is given."""

    def __init__(self, runtime: FunctionRuntime) -> None:
        self.runtime = runtime
        self.calls: list[tuple[str, dict[str, object]]] = []

    async def invoke(self, name: str, event: dict[str, object]) -> Invocation:
        self.calls.append((name, event))
        return await self.runtime.invoke(name, event)

    async def aclose(self) -> None:
        await self.runtime.aclose()


async def pools(config: Path, uri: str) -> None:
    distribution = load_distribution(config)
    runtime = FunctionRuntime(function_specs(distribution))
    capture = _Capture(runtime)
    edge = Edge(distribution, runtime=capture)
    host = Headers([("Host", distribution.settings.domain_name), ("User-Agent", "bench")])
    result = await edge.dispatch(EdgeRequest("GET", uri, headers=host))
    if result.response.status != 200 or not capture.calls:
        raise SystemExit(f"GET {uri}: {result.response.status}, {len(capture.calls)} functions")
    await edge.origins.aclose()
    calls = list(capture.calls)

    invoked = 0

    async def invoke(request: web.Request) -> web.Response:
        nonlocal invoked
        for name, event in calls:
            await runtime.invoke(name, event)
            invoked += 1
        headers = {"X-Invocations": str(invoked)}
        return web.Response(body=BODY, content_type="text/html", headers=headers)

    print(f"functions: {', '.join(name for name, _ in calls)}", flush=True)
    try:
        await serve({"/invoke": invoke, "/none": answer_body})
    finally:
        await runtime.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    plain_parser = sub.add_parser("plain", help="the plain aiohttp server")
    plain_parser.add_argument("--uvloop", action="store_true", help="on uvloop, as edgesim serve")
    pools_parser = sub.add_parser("pools", help="the bare round trips of a request's functions")
    pools_parser.add_argument("config", type=Path, help="the distribution's YAML file")
    pools_parser.add_argument("uri", help="the request whose functions are invoked")
    args = parser.parse_args()
    if args.kind == "pools":
        uvloop.run(pools(args.config, args.uri))
    elif args.uvloop:
        uvloop.run(plain())
    else:
        asyncio.run(plain())


if __name__ == "__main__":
    main()
