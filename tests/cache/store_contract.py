"""The contract every cache store keeps, written once and run against each store.

A store's test module subclasses :class:`CacheStoreContract` and provides ``make_store``, a
factory taking the byte bound (see tests/cache/test_store.py). The pipeline relies on nothing
beyond what these tests check.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest

from edgesim.cache.store import CachedObject
from edgesim.http import EdgeResponse, Headers
from edgesim.types import CacheStore

StoreFactory = Callable[[int], Awaitable[CacheStore]]


def cached(
    key: str,
    body: bytes = b"x" * 100,
    *,
    path: str = "/a",
    query: str = "",
    distribution_id: str = "E1",
    stored_at: float = 100.0,
    fresh_until: float = 110.0,
) -> CachedObject:
    """A stored 200 answer with a text body."""
    response = EdgeResponse(200, Headers([("Content-Type", "text/plain")]), body)
    return CachedObject(
        key=key,
        distribution_id=distribution_id,
        path=path,
        query=query,
        response=response,
        stored_at=stored_at,
        fresh_until=fresh_until,
    )


class CacheStoreContract:
    """What every :class:`~edgesim.types.CacheStore` must do."""

    @pytest.fixture
    async def make_store(self) -> AsyncIterator[StoreFactory]:
        """Overridden by each store's test class: a factory of empty stores of a given bound."""

        async def unprovided(max_bytes: int) -> CacheStore:
            raise NotImplementedError("a store's test class provides make_store")

        yield unprovided

    async def test_get_returns_what_put_stored(self, make_store: StoreFactory) -> None:
        store = await make_store(1 << 20)
        obj = cached("k", b"hello", stored_at=50.0, fresh_until=80.0)
        assert await store.put(obj)
        got = await store.get("k")
        assert got is not None
        assert (got.response.status, got.response.body) == (200, b"hello")
        assert got.response.headers.get("content-type") == "text/plain"
        assert (got.path, got.query, got.distribution_id) == ("/a", "", "E1")
        assert await store.get("other") is None

    async def test_expiry_times_come_back_as_stored(self, make_store: StoreFactory) -> None:
        store = await make_store(1 << 20)
        await store.put(cached("k", stored_at=100.0, fresh_until=110.0))
        got = await store.get("k")
        assert got is not None
        # A stale object stays retrievable: the cache stage revalidates it, it does not vanish.
        assert got.is_fresh(109.9) and not got.is_fresh(110.0)
        assert got.age(107.6) == 7

    async def test_put_replaces_and_delete_removes(self, make_store: StoreFactory) -> None:
        store = await make_store(1 << 20)
        await store.put(cached("k", b"old"))
        await store.put(cached("k", b"new"))
        got = await store.get("k")
        assert got is not None and got.response.body == b"new"
        assert (await store.stats()).objects == 1
        assert await store.delete("k")
        assert not await store.delete("k")
        assert await store.get("k") is None

    async def test_vary_variants_are_kept_apart(self, make_store: StoreFactory) -> None:
        store = await make_store(1 << 20)
        # One path, two keys (e.g. two Accept-Encoding variants): both live, each its own body.
        await store.put(cached("/a|gzip", b"zipped"))
        await store.put(cached("/a|identity", b"plain"))
        gzip, plain = await store.get("/a|gzip"), await store.get("/a|identity")
        assert gzip is not None and gzip.response.body == b"zipped"
        assert plain is not None and plain.response.body == b"plain"
        assert await store.invalidate("E1", ["/a"]) == 2  # a path invalidates every variant

    async def test_invalidation_by_distribution_and_pattern(self, make_store: StoreFactory) -> None:
        store = await make_store(1 << 20)
        await store.put(cached("1", path="/images/a.png"))
        await store.put(cached("2", path="/images/b.png", query="v=2"))
        await store.put(cached("3", path="/index.html"))
        await store.put(cached("4", path="/images/a.png", distribution_id="E2"))
        assert await store.invalidate("E1", ["/images/a.png"]) == 1
        assert await store.invalidate("E1", ["/images/b.png"]) == 0  # query variants: named
        assert await store.invalidate("E1", ["/images/*"]) == 1
        assert await store.get("3") is not None
        assert await store.get("4") is not None  # another distribution's object stays

    async def test_eviction_keeps_the_bound(self, make_store: StoreFactory) -> None:
        one = cached("k1")
        store = await make_store(one.size * 2)
        assert await store.put(one) and await store.put(cached("k2"))
        assert await store.get("k1") is not None  # now the most recently used
        assert await store.put(cached("k3"))
        assert await store.get("k2") is None  # the least recently used went first
        assert await store.get("k1") is not None and await store.get("k3") is not None
        stats = await store.stats()
        assert stats.size_bytes <= stats.max_bytes
        assert (stats.objects, stats.evictions) == (2, 1)

    async def test_never_a_partial_object(self, make_store: StoreFactory) -> None:
        store = await make_store(500)
        await store.put(cached("cut", b"whole"))
        truncated = cached("cut")
        truncated.response.headers.add("Content-Length", "5000")
        assert not await store.put(truncated)
        # The old object under the key is gone too: a failed refresh never leaves a mix.
        assert await store.get("cut") is None
        assert not await store.put(cached("huge", b"x" * 1000))
        assert await store.get("huge") is None
        assert (await store.stats()).size_bytes == 0

    async def test_readers_during_writes_see_whole_objects(self, make_store: StoreFactory) -> None:
        store = await make_store(1 << 20)
        bodies = [bytes([i]) * 1000 for i in range(20)]
        base = cached("k", bodies[0])

        async def write() -> None:
            for body in bodies:
                await store.put(replace(base, response=replace(base.response, body=body)))

        async def read() -> list[bytes]:
            seen = []
            for _ in range(40):
                got = await store.get("k")
                if got is not None:
                    seen.append(got.response.body)
                await asyncio.sleep(0)
            return seen

        _, seen = await asyncio.gather(write(), read())
        assert all(body in bodies for body in seen)

    async def test_stats_count_objects_and_bytes(self, make_store: StoreFactory) -> None:
        store = await make_store(1 << 20)
        empty = await store.stats()
        assert (empty.objects, empty.size_bytes) == (0, 0)
        obj = cached("k", b"y" * 300)
        await store.put(obj)
        stats = await store.stats()
        assert stats.objects == 1 and stats.size_bytes >= 300
        assert stats.max_bytes == 1 << 20
