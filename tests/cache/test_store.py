"""The object store, request collapsing and invalidation paths."""

from __future__ import annotations

import asyncio

import pytest

from edgesim.cache.store import (
    CachedObject,
    Collapser,
    MemoryCacheStore,
    NoOpCacheStore,
    check_invalidation_path,
    invalidation_matches,
)
from edgesim.http import EdgeResponse, Headers


def _obj(key: str, body: bytes = b"x" * 100, *, path: str = "/a", query: str = "") -> CachedObject:
    response = EdgeResponse(200, Headers([("Content-Type", "text/plain")]), body)
    return CachedObject(
        key=key,
        distribution_id="E1",
        path=path,
        query=query,
        response=response,
        stored_at=100.0,
        fresh_until=110.0,
    )


def test_freshness_and_age() -> None:
    obj = _obj("k")
    assert obj.is_fresh(109.9) and not obj.is_fresh(110.0)
    assert obj.age(107.6) == 7
    copy = obj.copy_response()
    copy.headers.add("Age", "1")
    assert obj.response.headers.get("Age") is None


def test_lru_eviction_keeps_the_bound() -> None:
    one = _obj("k1")
    store = MemoryCacheStore(max_bytes=one.size * 2)
    assert store.put(one) and store.put(_obj("k2"))
    assert store.get("k1") is not None  # now most recently used
    assert store.put(_obj("k3"))
    assert store.get("k2") is None  # least recently used went first
    assert store.get("k1") is not None and store.get("k3") is not None
    assert store.size_bytes <= store.max_bytes
    assert store.evictions == 1


def test_replacing_a_key_updates_the_size() -> None:
    store = MemoryCacheStore()
    store.put(_obj("k", b"a" * 10))
    small = store.size_bytes
    store.put(_obj("k", b"a" * 1000))
    assert store.size_bytes == small + 990
    assert len(store) == 1


def test_never_keeps_a_partial_or_oversized_object() -> None:
    store = MemoryCacheStore(max_bytes=500)
    truncated = _obj("cut")
    truncated.response.headers.add("Content-Length", "5000")
    assert not store.put(truncated)
    assert not store.put(_obj("huge", b"x" * 1000))
    assert store.get("cut") is None and store.get("huge") is None
    assert store.size_bytes == 0


def test_noop_store_keeps_nothing() -> None:
    store = NoOpCacheStore()
    assert not store.put(_obj("k"))
    assert store.get("k") is None and store.invalidate("E1", ["/*"]) == 0


@pytest.mark.parametrize(
    ("pattern", "path", "query", "matches"),
    [
        ("/images/*", "/images/a.png", "", True),  # §3.9 every file in the directory
        ("/images/*", "/images/sub/b.png", "", True),
        ("/images*", "/images-old/x", "", True),  # similar prefixes too
        ("/file.jpg*", "/file.jpg", "v=2", True),  # every query variant
        ("/file.jpg", "/file.jpg", "v=2", False),  # query variants must be named
        ("/file.jpg?v=2", "/file.jpg", "v=2", True),
        ("/*", "/anything", "", True),
        ("/Images/*", "/images/a.png", "", False),  # case-sensitive
        ("/a.html", "/a.html", "", True),
        ("/a", "/a.html", "", False),
    ],
)
def test_invalidation_matching(pattern: str, path: str, query: str, matches: bool) -> None:
    assert invalidation_matches(pattern, path, query) is matches


def test_invalidate_is_scoped_to_a_distribution() -> None:
    store = MemoryCacheStore()
    store.put(_obj("a", path="/a"))
    other = _obj("b", path="/a")
    other.distribution_id = "E2"
    store.put(other)
    assert store.invalidate("E1", ["/a"]) == 1
    assert store.get("a") is None and store.get("b") is not None


@pytest.mark.parametrize("bad", ["images/*", "/a*b", "/" + "x" * 4000])
def test_bad_invalidation_paths(bad: str) -> None:
    with pytest.raises(ValueError):
        check_invalidation_path(bad)


async def test_collapser_runs_one_fetch_for_concurrent_callers() -> None:
    collapser: Collapser[int] = Collapser()
    calls = 0
    gate = asyncio.Event()

    async def fetch() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return 42

    tasks = [asyncio.ensure_future(collapser.run("k", fetch)) for _ in range(5)]
    await asyncio.sleep(0)
    assert collapser.inflight == 1
    gate.set()
    results = await asyncio.gather(*tasks)
    assert calls == 1
    assert sorted(leader for _, leader in results) == [False] * 4 + [True]
    assert {value for value, _ in results} == {42}
    assert collapser.inflight == 0


async def test_collapser_shares_errors_and_forgets_the_key() -> None:
    collapser: Collapser[int] = Collapser()
    gate = asyncio.Event()

    async def fail() -> int:
        await gate.wait()
        raise RuntimeError("origin down")

    tasks = [asyncio.ensure_future(collapser.run("k", fail)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)

    async def ok() -> int:
        return 1

    assert await collapser.run("k", ok) == (1, True)
