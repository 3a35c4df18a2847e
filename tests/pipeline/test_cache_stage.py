"""The cache stage in process: traces of hit, miss, refresh and background revalidation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edgesim.config import load_distribution
from edgesim.http import EdgeRequest, Headers
from edgesim.pipeline import Edge, EdgeResult
from tests.e2e.conftest import FUNCTIONS, FakeClock, Origin, start_origin


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
    assert miss.trace.steps == ["behavior:matched", "cache:miss", "origin:200", "cache:store"]
    hit = await built.dispatch(EdgeRequest("GET", url))
    assert hit.trace.steps == ["behavior:matched", "cache:hit"]
    clock.advance(6)
    refresh = await built.dispatch(EdgeRequest("GET", url))
    assert refresh.trace.steps == ["behavior:matched", "cache:stale", "origin:304", "cache:refresh"]
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
    assert stale.trace.steps == ["behavior:matched", "cache:stale-while-revalidate"]
    assert stale.response.headers.get("X-Cache") == "RefreshHit from cloudfront"
    for _ in range(100):  # the refresh runs in the background; wait for the origin to see it
        if len(origin.seen) == 2:
            break
        await asyncio.sleep(0.01)
    assert len(origin.seen) == 2
    await asyncio.sleep(0.05)
    fresh = await built.dispatch(EdgeRequest("GET", url))
    assert fresh.trace.steps == ["behavior:matched", "cache:hit"]
    assert fresh.response.headers.get("Age") == "0"


async def test_head_is_cached_apart_and_hits_a_stored_get(
    edge: tuple[Edge, FakeClock], origin: Origin
) -> None:
    built, _ = edge
    head = await built.dispatch(EdgeRequest("HEAD", "/h"))
    assert head.trace.steps == ["behavior:matched", "cache:miss", "origin:200", "cache:store"]
    assert origin.seen[-1].method == "HEAD"
    again = await built.dispatch(EdgeRequest("HEAD", "/h"))
    assert again.trace.steps == ["behavior:matched", "cache:hit"]
    assert again.response.headers.get("Content-Length") == head.response.headers.get(
        "Content-Length"
    )
    get = await built.dispatch(EdgeRequest("GET", "/h"))
    assert get.trace.steps[1] == "cache:miss"  # a HEAD answer has no body to serve a GET
    assert get.response.body
    await built.dispatch(EdgeRequest("HEAD", "/h2"))
    await built.dispatch(EdgeRequest("GET", "/h3"))
    from_get = await built.dispatch(EdgeRequest("HEAD", "/h3"))
    assert from_get.trace.steps == ["behavior:matched", "cache:hit"]
    assert await built.invalidate(["/h"]) == 2  # both the HEAD and the GET object
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


async def test_a_failed_collapsed_fetch_gives_each_viewer_its_own_page(
    tmp_path: Path, origin: Origin
) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(
        f"""
origins: {{api: {{url: "{origin.url}"}}}}
functions:
  faulty: {{runtime: python3.12, code: "{FUNCTIONS}/faulty", handler: index.handler}}
behaviors:
  - path_pattern: "*"
    origin: api
    cache_policy: {{min_ttl: 0, default_ttl: 60, max_ttl: 600, query_strings: all}}
    functions: {{origin-request: faulty}}
"""
    )
    built = Edge(load_distribution(path))
    try:
        request = EdgeRequest("GET", "/x", "case=raise")
        results = await asyncio.gather(*(built.dispatch(request) for _ in range(3)))
    finally:
        await built.aclose()
    assert len({r.request_id for r in results}) == 3
    for result in results:
        assert result.response.status == 503
        assert result.response.headers.get("X-Cache") == "LambdaExecutionError from cloudfront"
        # The page names this viewer's own request, never the one it waited on.
        assert f"Request ID: {result.request_id}".encode() in result.response.body
    waiters = [r for r in results if "cache:collapsed" in r.trace.steps]
    assert len(waiters) == 2
    for waiter in waiters:
        assert waiter.trace.steps == [
            "behavior:matched",
            "cache:miss",
            "cache:collapsed",
            "origin-request:LambdaExecutionError",
        ]
    assert origin.seen == []


async def test_an_error_caching_min_ttl_of_zero_keeps_no_stale_copy_on_hold(
    tmp_path: Path, origin: Origin
) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(
        f"""
origins: {{api: {{url: "{origin.url}"}}}}
behaviors: [{{path_pattern: "*", origin: api, cache_policy: CachingOptimized}}]
custom_error_responses: [{{error_code: 503, error_caching_min_ttl: 0}}]
"""
    )
    clock = FakeClock()
    built = Edge(load_distribution(path), clock=clock)
    url = "/cc/max-age%3D5/x"
    try:
        stale = await _stale_when_the_origin_fails(built, clock, origin, url)
        assert stale.response.status == 200
        # 0 s means the stale copy is not held: the next viewer asks the origin again.
        again = await built.dispatch(EdgeRequest("GET", url))
    finally:
        await built.aclose()
    assert again.trace.steps[:3] == ["behavior:matched", "cache:stale", "origin:503"]
    assert len(origin.seen) == 3


async def test_without_a_setting_the_stale_copy_is_held_for_ten_seconds(
    edge: tuple[Edge, FakeClock], origin: Origin
) -> None:
    built, clock = edge
    url = "/cc/max-age%3D5/held"
    await _stale_when_the_origin_fails(built, clock, origin, url)
    clock.advance(9)
    assert (await built.dispatch(EdgeRequest("GET", url))).trace.steps[-1] == "cache:hit"
    clock.advance(2)
    late = await built.dispatch(EdgeRequest("GET", url))
    assert late.trace.steps[1:3] == ["cache:stale", "origin:503"]


async def _stale_when_the_origin_fails(
    built: Edge, clock: FakeClock, origin: Origin, url: str
) -> EdgeResult:
    """Cache ``url`` for 5 s, let it go stale, and ask again while the origin answers 503."""
    await built.dispatch(EdgeRequest("GET", url))
    clock.advance(6)
    origin.override_status = 503
    stale = await built.dispatch(EdgeRequest("GET", url))
    assert stale.trace.steps[-1] == "cache:stale-served"
    return stale


async def test_a_body_shorter_than_its_length_is_passed_on_and_never_cached(
    tmp_path: Path,
) -> None:
    """cloudfront-caching.md §3.10: the bytes that came are forwarded, nothing is cached, and the
    next request goes to the origin again (a real origin that closes mid-body)."""
    served: list[bytes] = []

    async def short_origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nCache-Control: max-age=60\r\n\r\npart"
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(short_origin, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    path = tmp_path / "d.yaml"
    path.write_text(
        f"""
origins: {{api: {{url: "http://127.0.0.1:{port}"}}}}
behaviors: [{{path_pattern: "*", origin: api, cache_policy: CachingOptimized}}]
"""
    )
    built = Edge(load_distribution(path))
    try:
        first = await built.dispatch(EdgeRequest("GET", "/x"))
        second = await built.dispatch(EdgeRequest("GET", "/x"))
    finally:
        await built.aclose()
        server.close()
        await server.wait_closed()
    assert first.response.status == 200 and first.response.body == b"part"
    assert first.trace.steps[-1] == "origin:body-cut"
    assert "cache:store" not in first.trace.steps
    assert second.trace.steps[1:3] == ["cache:miss", "origin:200"]
    assert len(served) == 2


async def test_vary_star_under_min_ttl_zero_is_not_shared_with_waiting_requests(
    edge: tuple[Edge, FakeClock], origin: Origin
) -> None:
    """cloudfront-caching.md §2.2: with MinTTL 0, every request for a `Vary: *` object goes to
    the origin; requests that waited on the same fetch go too, as they would for an answer that
    turns collapsing off (§3.8)."""
    built, _ = edge
    url = "/zero/slow/0.2/etag/w/vary/%2A/x"
    results = await asyncio.gather(*(built.dispatch(EdgeRequest("GET", url)) for _ in range(3)))
    assert all(r.response.headers.get("X-Cache") == "Miss from cloudfront" for r in results)
    assert len(origin.seen) == 3
    later = await built.dispatch(EdgeRequest("GET", url))
    assert later.trace.steps == ["behavior:matched", "cache:stale", "origin:200", "cache:store"]
    assert later.response.headers.get("X-Cache") == "Miss from cloudfront"
    assert origin.seen[-1].header("If-None-Match") is None


async def test_ranged_requests_that_wait_on_a_whole_object_get_it_cut(
    edge: tuple[Edge, FakeClock], origin: Origin
) -> None:
    """cloudfront-caching.md §3.3: the Range goes to the origin; this one ignores it, so the
    leading viewer gets the whole object (200) as it streams, and the viewers that waited for it
    are answered from the cached object with the range cut (206)."""
    built, _ = edge
    ranged = EdgeRequest("GET", "/slow/0.2/whole", headers=Headers([("Range", "bytes=0-3")]))
    results = await asyncio.gather(*(built.dispatch(ranged) for _ in range(3)))
    answers = sorted((r.response.status, r.response.headers.get("X-Cache")) for r in results)
    assert answers == [(200, "Miss from cloudfront")] + [(206, "Hit from cloudfront")] * 2
    assert len(origin.seen) == 1 and origin.seen[0].header("Range") == "bytes=0-3"
    whole = next(r.response.body for r in results if r.response.status == 200)
    assert all(r.response.body == whole[:4] for r in results if r.response.status == 206)


async def test_a_stale_part_is_revalidated_with_its_range(tmp_path: Path) -> None:
    """cloudfront-caching.md §3.3 and §3.4: a part the origin cut is cached for its range, and
    once stale it is revalidated like any object (its ETag as If-None-Match), with the range;
    a 304 refreshes it (RefreshHit)."""
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    (bucket / "data.bin").write_bytes(b"0123456789")
    path = tmp_path / "d.yaml"
    path.write_text(
        f"""
origins: {{files: {{s3: "{bucket}"}}}}
behaviors:
  - {{path_pattern: "*", origin: files, cache_policy: {{min_ttl: 0, default_ttl: 10}}}}
"""
    )
    clock = FakeClock()
    built = Edge(load_distribution(path), clock=clock)
    ranged = EdgeRequest("GET", "/data.bin", headers=Headers([("Range", "bytes=2-5")]))
    try:
        first = await built.dispatch(ranged)
        clock.advance(11)
        refreshed = await built.dispatch(ranged)
        whole = await built.dispatch(EdgeRequest("GET", "/data.bin"))
    finally:
        await built.aclose()
    assert first.trace.steps == ["behavior:matched", "cache:miss", "origin:206", "cache:store"]
    assert refreshed.trace.steps == [
        "behavior:matched",
        "cache:stale",
        "origin:304",
        "cache:refresh",
    ]
    assert (refreshed.response.status, refreshed.response.body) == (206, b"2345")
    assert refreshed.response.headers.get("X-Cache") == "RefreshHit from cloudfront"
    assert whole.trace.steps[1:3] == ["cache:miss", "origin:200"]
