"""Soak: many mixed requests, failing functions among them, through the real proxy.

Marked slow and left out of the default run; run with ``pytest -m slow``.
"""

from __future__ import annotations

import asyncio
import random

import psutil
import pytest

from edgesim.runtime import FunctionRuntime
from tests.e2e.conftest import MakeEdge, Origin

DIST = """
origins:
  api: {{url: "{origin}"}}
functions:
  faulty: {{runtime: {runtime}, code: "{{functions}}/faulty", handler: index.handler,
            memory: 128, timeout: 1, reserved_concurrency: 4}}
behaviors:
  - path_pattern: /cached/*
    origin: api
    cache_policy: CachingOptimized
  - path_pattern: "*"
    origin: api
    functions: {{viewer-request: faulty}}
"""
EXPECTED = {"": {200, 503}, "raise": {503}, "crash": {503}, "print": {200, 503}}


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("runtime", ["python3.12", "nodejs20.x"])
async def test_mixed_load_keeps_serving_and_leaks_nothing(
    make_edge: MakeEdge, origin: Origin, runtime: str
) -> None:
    edge = await make_edge(DIST.format(origin=origin.url, runtime=runtime))
    rng = random.Random(7)
    me = psutil.Process()
    cases = list(EXPECTED)

    async def one(i: int) -> None:
        if i % 3 == 0:
            response = await edge.client.get(f"/cached/{i % 50}")
            assert response.status_code == 200
            return
        case = rng.choice(cases)
        response = await edge.client.get("/echo", params={"case": case})
        # 503 is also a throttle when more than `concurrency` run at once
        assert response.status_code in EXPECTED[case], (case, response.status_code)

    for batch in range(20):
        await asyncio.gather(*(one(batch * 50 + i) for i in range(50)))
        if batch == 2:
            baseline_rss = me.memory_info().rss
            baseline_fds = me.num_fds()
    pools = edge.edge.runtime
    assert isinstance(pools, FunctionRuntime)
    assert len(pools.pool("faulty").worker_pids) <= 4
    assert me.num_fds() <= baseline_fds + 20
    assert me.memory_info().rss < baseline_rss + 64 * 1024 * 1024
    final = await edge.client.get("/echo")
    assert final.status_code == 200
