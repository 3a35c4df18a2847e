"""Servers the benchmarks start in their own processes.

``python bench/_servers.py plain``: an aiohttp server answering every GET with the benchmarks'
1 KB body (the hit path's baseline, and the HTTP origin of the miss rows); it prints
``listening on PORT`` once bound to a free port of 127.0.0.1. ``--uvloop`` runs it on uvloop.
"""

from __future__ import annotations

import argparse
import asyncio

from _harness import BODY
from aiohttp import web


async def plain() -> None:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=BODY, content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"listening on {runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["plain"])
    parser.add_argument("--uvloop", action="store_true", help="on uvloop, as edgesim serve runs")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.run(plain())
    else:
        asyncio.run(plain())


if __name__ == "__main__":
    main()
