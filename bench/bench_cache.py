"""Cache-hit throughput of the edge against a plain aiohttp server serving the same bytes.

Run by hand from the project root::

    .venv/bin/python bench/bench_cache.py [--seconds 5] [--connections 32] [--size 1024]

Both servers run in this process's machine, one after the other, loaded by the same client:
``wrk`` when it is installed (``apt-get install wrk``), otherwise a load generator in a separate
Python process (aiohttp client, keep-alive connections). The baseline is an aiohttp server that
answers every request with the same bytes; the edge serves a cached object of that size (S3-style
folder origin, CachingOptimized, every request a ``Hit``). The ratio is what to watch: absolute
figures depend on the machine and on the load generator.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from aiohttp import web

from edgesim.config import load_distribution
from edgesim.frontdoors.server import EdgeServer
from edgesim.pipeline import Edge

LOADER = textwrap.dedent(
    """
    import asyncio, sys, time
    import aiohttp

    async def main(url, seconds, connections):
        done = 0
        deadline = time.perf_counter() + seconds
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections)
        ) as session:
            async def worker():
                nonlocal done
                while time.perf_counter() < deadline:
                    async with session.get(url) as response:
                        await response.read()
                        assert response.status == 200
                    done += 1
            await asyncio.gather(*(worker() for _ in range(connections)))
        print(done / seconds)

    asyncio.run(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3])))
    """
)


def load(url: str, seconds: float, connections: int) -> float:
    """Requests per second against ``url`` for ``seconds``."""
    wrk = shutil.which("wrk")
    if wrk is not None:
        out = subprocess.run(
            [wrk, "-t2", f"-c{connections}", f"-d{int(seconds)}s", url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        match = re.search(r"Requests/sec:\s+([\d.]+)", out)
        assert match is not None, out
        return float(match.group(1))
    out = subprocess.run(
        [sys.executable, "-c", LOADER, url, str(seconds), str(connections)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out.strip())


async def serve_plain(body: bytes) -> tuple[web.AppRunner, str]:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/page.html"


async def serve_edge(folder: Path, body: bytes) -> tuple[EdgeServer, str]:
    (folder / "page.html").write_bytes(body)
    config = folder / "bench.yaml"
    config.write_text(
        f'origins: {{site: {{s3: "{folder}"}}}}\n'
        'behaviors: [{path_pattern: "*", origin: site, cache_policy: CachingOptimized}]\n'
    )
    server = EdgeServer([Edge(load_distribution(config))], port=0)
    await server.start()
    return server, server.url() + "/page.html"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--size", type=int, default=1024, help="body size in bytes")
    args = parser.parse_args()
    body = os.urandom(args.size)
    loader = "wrk" if shutil.which("wrk") else "python aiohttp client"

    plain, plain_url = await serve_plain(body)
    baseline = await asyncio.to_thread(load, plain_url, args.seconds, args.connections)
    await plain.cleanup()

    with tempfile.TemporaryDirectory() as tmp:
        edge, edge_url = await serve_edge(Path(tmp), body)
        await asyncio.to_thread(load, edge_url, 1, 2)  # the first request is the Miss
        hits = await asyncio.to_thread(load, edge_url, args.seconds, args.connections)
        await edge.aclose()

    print(f"load generator: {loader}, {args.connections} connections, {args.seconds:g} s each")
    print(f"plain aiohttp, {args.size} B body: {baseline:10.0f} req/s")
    print(f"edgesim cache hits, {args.size} B:  {hits:10.0f} req/s")
    print(f"ratio edgesim / plain aiohttp:     {hits / baseline:10.2f}")


if __name__ == "__main__":
    asyncio.run(main())
