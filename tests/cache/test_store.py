"""The stores: the memory store under the store contract, the null store, invalidation paths."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import AsyncIterator

import pytest

from edgesim.cache.store import (
    CachedObject,
    MemoryCacheStore,
    NullCacheStore,
    check_invalidation_path,
    invalidation_matches,
)
from edgesim.http import EdgeResponse, Headers
from edgesim.types import CacheStore
from tests.cache.store_contract import CacheStoreContract, StoreFactory, cached


class TestMemoryCacheStore(CacheStoreContract):
    @pytest.fixture
    async def make_store(self) -> AsyncIterator[StoreFactory]:
        async def make(max_bytes: int) -> CacheStore:
            return MemoryCacheStore(max_bytes=max_bytes)

        yield make


def test_cached_objects_copy_their_response() -> None:
    obj = cached("k")
    copy = obj.copy_response()
    copy.headers.add("Age", "1")
    assert obj.response.headers.get("Age") is None


def test_a_negative_bound_is_refused() -> None:
    with pytest.raises(ValueError):
        MemoryCacheStore(max_bytes=-1)


async def test_null_store_keeps_nothing() -> None:
    store = NullCacheStore()
    assert not await store.put(cached("k"))
    assert await store.get("k") is None
    assert await store.invalidate("E1", ["/*"]) == 0
    assert not await store.delete("k")
    assert (await store.stats()).objects == 0


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


@pytest.mark.parametrize("bad", ["images/*", "/a*b", "/" + "x" * 4000])
def test_bad_invalidation_paths(bad: str) -> None:
    with pytest.raises(ValueError):
        check_invalidation_path(bad)


async def test_the_byte_bound_counts_what_objects_take_in_memory() -> None:
    """The bound is on memory: objects count about what they hold (tracemalloc's figure)."""

    def one(i: int) -> CachedObject:
        headers = Headers([(f"X-Line-{j}-{i}", f"value {j} of {i} " * 2) for j in range(8)])
        return CachedObject(
            key=f"d111111abcdef8.cloudfront.net|GET|/obj.html?n={i}",
            distribution_id="EDFDVBD6EXAMPLE",
            path="/obj.html",
            query=f"n={i}",
            response=EdgeResponse(200, headers, b"%06d" % i + bytes(1018)),
            stored_at=0.0,
            fresh_until=1.0,
        )

    store = MemoryCacheStore(max_bytes=1 << 40)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(2000):
            assert await store.put(one(i))
        gc.collect()
        real = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    counted = (await store.stats()).size_bytes
    assert 0.8 <= counted / real <= 1.25, (counted, real)
