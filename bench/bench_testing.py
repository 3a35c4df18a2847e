"""What the test kit adds per request, against the plain in-process ``Edge.dispatch``.

Run by hand from the project root::

    .venv/bin/python bench/bench_testing.py [--requests 2000]

One distribution (the bundled example's S3-style folder origin, CachingOptimized, a Python
viewer-request function) is served twice in this process: by a bare :class:`Edge`, called with
``dispatch(EdgeRequest(...))``, and by :class:`edgesim.testing.EdgeHarness` (what the ``edge``
fixture returns), called with ``get(...)``, which adds the viewer's headers, the recording of
every function call and log line, and the :class:`~edgesim.testing.Response`. The requests
alternate between the two so both see the same machine; every request is a cache ``Hit`` after
the first, so the function's invocation dominates both. Prints each median and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

from edgesim.config import Distribution
from edgesim.http import EdgeRequest, Headers
from edgesim.pipeline import Edge
from edgesim.testing import EdgeHarness, resolve_distribution

ROOT = Path(__file__).resolve().parent.parent


def _distribution() -> Distribution:
    return resolve_distribution(
        {
            "origins": {"site": {"s3": str(ROOT / "origins" / "site")}},
            "functions": {
                "redirect": {
                    "runtime": "python3.12",
                    "code": str(ROOT / "functions" / "redirect-legacy"),
                    "handler": "app.handler",
                }
            },
            "behaviors": [
                {
                    "path_pattern": "*",
                    "origin": "site",
                    "cache_policy": "CachingOptimized",
                    "functions": {"viewer-request": "redirect"},
                }
            ],
        }
    )


async def main(requests: int) -> None:
    distribution = _distribution()
    plain = Edge(distribution)
    kit = EdgeHarness(distribution)
    host = Headers([("Host", distribution.settings.domain_name)])
    bare: list[float] = []
    wrapped: list[float] = []
    try:
        for _ in range(20):  # warm workers and the cache on both sides
            await plain.dispatch(EdgeRequest("GET", "/index.html", headers=host.copy()))
            await kit.get("/index.html")
        for _ in range(requests):
            started = time.perf_counter()
            result = await plain.dispatch(EdgeRequest("GET", "/index.html", headers=host.copy()))
            bare.append(time.perf_counter() - started)
            started = time.perf_counter()
            response = await kit.get("/index.html")
            wrapped.append(time.perf_counter() - started)
        assert result.response.status == response.status == 200
    finally:
        await plain.aclose()
        await kit.aclose()
    base, test = statistics.median(bare) * 1e6, statistics.median(wrapped) * 1e6
    print(f"requests per side        {requests}")
    print(f"Edge.dispatch median     {base:8.1f} us")
    print(f"EdgeHarness.get median   {test:8.1f} us")
    print(f"added per request        {test - base:8.1f} us")
    print(f"ratio                    {test / base:8.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    asyncio.run(main(parser.parse_args().requests))
