"""The cache stage in process: traces of hit, miss, refresh and background revalidation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edgesim.config import load_distribution
from edgesim.http import EdgeRequest
from edgesim.pipeline import Edge
from tests.e2e.conftest import FakeClock, Origin, start_origin


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    server, runner = await start_origin()
    yield server
    await runner.cleanup()


@pytest.fixture
async def edge(tmp_path: Path, origin: Origin) -> AsyncIterator[tuple[Edge, FakeClock]]:
    path = tmp_path / "d.yaml"
    path.write_text(
        f"""
origins: {{api: {{url: "{origin.url}"}}}}
behaviors:
  - path_pattern: /zero/*
    origin: api
    cache_policy: {{min_ttl: 0, default_ttl: 60, max_ttl: 600}}
  - {{path_pattern: "*", origin: api, cache_policy: CachingOptimized}}
"""
    )
    clock = FakeClock()
    built = Edge(load_distribution(path), clock=clock)
    yield built, clock
    await built.aclose()


async def test_traces_of_miss_store_hit_and_refresh(edge: tuple[Edge, FakeClock]) -> None:
    built, clock = edge
    url = "/etag/t1/cc/max-age%3D5/x"
    miss = await built.dispatch(EdgeRequest("GET", url))
    assert miss.trace.steps == ["routing:*", "cache:miss", "origin:200", "cache:store"]
    hit = await built.dispatch(EdgeRequest("GET", url))
    assert hit.trace.steps == ["routing:*", "cache:hit"]
    clock.advance(6)
    refresh = await built.dispatch(EdgeRequest("GET", url))
    assert refresh.trace.steps == ["routing:*", "cache:stale", "origin:304", "cache:refresh"]
    assert refresh.response.headers.get("X-Cache") == "RefreshHit from cloudfront"
    assert refresh.response.headers.get("Age") == "0"


async def test_stale_while_revalidate_answers_at_once(
    edge: tuple[Edge, FakeClock], origin: Origin
) -> None:
    built, clock = edge
    url = "/cc/max-age%3D10%2C%20stale-while-revalidate%3D60/x"
    await built.dispatch(EdgeRequest("GET", url))
    clock.advance(30)
    stale = await built.dispatch(EdgeRequest("GET", url))
    assert stale.trace.steps == ["routing:*", "cache:stale-while-revalidate"]
    assert stale.response.headers.get("X-Cache") == "RefreshHit from cloudfront"
    for _ in range(100):  # the refresh runs in the background; wait for the origin to see it
        if len(origin.seen) == 2:
            break
        await asyncio.sleep(0.01)
    assert len(origin.seen) == 2
    await asyncio.sleep(0.05)
    fresh = await built.dispatch(EdgeRequest("GET", url))
    assert fresh.trace.steps == ["routing:*", "cache:hit"]
    assert fresh.response.headers.get("Age") == "0"


async def test_head_is_cached_apart_and_hits_a_stored_get(
    edge: tuple[Edge, FakeClock], origin: Origin
) -> None:
    built, _ = edge
    head = await built.dispatch(EdgeRequest("HEAD", "/h"))
    assert head.trace.steps == ["routing:*", "cache:miss", "origin:200", "cache:store"]
    assert origin.seen[-1].method == "HEAD"
    again = await built.dispatch(EdgeRequest("HEAD", "/h"))
    assert again.trace.steps == ["routing:*", "cache:hit"]
    assert again.response.headers.get("Content-Length") == head.response.headers.get(
        "Content-Length"
    )
    get = await built.dispatch(EdgeRequest("GET", "/h"))
    assert get.trace.steps[1] == "cache:miss"  # a HEAD answer has no body to serve a GET
    assert get.response.body
    await built.dispatch(EdgeRequest("HEAD", "/h2"))
    await built.dispatch(EdgeRequest("GET", "/h3"))
    from_get = await built.dispatch(EdgeRequest("HEAD", "/h3"))
    assert from_get.trace.steps == ["routing:*", "cache:hit"]
    assert built.invalidate(["/h"]) == 2  # both the HEAD and the GET object
    assert len(origin.seen) == 4


async def test_uncollapsible_answers_send_each_waiter_to_the_origin(
    edge: tuple[Edge, FakeClock], origin: Origin
) -> None:
    built, _ = edge
    # §3.8: with MinTTL 0, a no-store answer turns collapsing off for that object
    url = "/zero/slow/0.2/cc/no-store/x"
    results = await asyncio.gather(*(built.dispatch(EdgeRequest("GET", url)) for _ in range(3)))
    assert all(r.response.status == 200 for r in results)
    assert len(origin.seen) == 3
    # with MinTTL 1 (CachingOptimized) the same answer is kept for MinTTL and shared (§2.2)
    url = "/slow/0.2/cc/no-store/y"
    results = await asyncio.gather(*(built.dispatch(EdgeRequest("GET", url)) for _ in range(3)))
    assert len(origin.seen) == 4
