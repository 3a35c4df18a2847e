"""The edge's object stores (byte-bounded LRU in memory, and a null store) and invalidation paths.

Every store fits the :class:`~edgesim.types.CacheStore` contract.

What is cached and for how long is decided elsewhere (``ttl.py``, ``cachekey.py``); this module
keeps whole objects and nothing else. An object is stored only when its body is complete (its
``Content-Length``, when the origin sent one, matches), so a cut-short response is never served
from cache. The store is shared by every distribution of one edgesim process, like one edge
location's cache, and each object remembers its distribution so invalidations stay within it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from edgesim.http import EdgeResponse

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "LINE_OVERHEAD_BYTES",
    "OBJECT_OVERHEAD_BYTES",
    "CacheStats",
    "CachedObject",
    "MemoryCacheStore",
    "NullCacheStore",
    "check_invalidation_path",
    "invalidation_matches",
]

DEFAULT_CACHE_SIZE = 256 * 1024 * 1024
MAX_INVALIDATION_PATH = 4000
# The byte bound counts what an object costs in memory, not only its bytes on the wire: besides
# its body, key, path, query and header text, each object holds Python objects (the cached
# object, its response and Headers, the bytes and str headers, the store's entry) and each
# header line a tuple, two list slots, the lowercase copy of its name and the str headers of its
# name and value (less when they are shared constants, as an S3 origin's often are: the line
# figure sits between the two). Measured with tracemalloc on CPython 3.12; the proxy's RSS per
# cached 1 KB object (bench/bench_scale.py) agrees within 10 %, and tests/cache/test_store.py
# holds the count to tracemalloc's.
OBJECT_OVERHEAD_BYTES = 600
LINE_OVERHEAD_BYTES = 150


@dataclass(slots=True)
class CachedObject:
    """One stored response and its freshness, in wall-clock seconds."""

    key: str
    distribution_id: str
    path: str
    query: str
    response: EdgeResponse
    stored_at: float
    fresh_until: float
    stale_while_revalidate: float = 0.0
    stale_if_error: float = 0.0
    # stale-if-error=0 with MinTTL > 0 opts out of serving the stale copy when the origin fails
    serve_stale_on_error: bool = True
    # Vary: * with MinTTL 0: revalidate without validators, so the origin sends the whole body
    revalidate_conditionally: bool = True
    # the answer to a HEAD: its Content-Length describes a body it does not carry
    headers_only: bool = False
    size: int = field(init=False)

    def __post_init__(self) -> None:
        lines = 0
        text = 0
        for name, value in self.response.headers:
            lines += 1
            text += 2 * len(name) + len(value)  # the name is kept twice (see Headers)
        self.size = (
            len(self.response.body)
            + len(self.key)
            + len(self.path)
            + len(self.query)
            + text
            + lines * LINE_OVERHEAD_BYTES
            + OBJECT_OVERHEAD_BYTES
        )

    def is_fresh(self, now: float) -> bool:
        """Still within its TTL."""
        return now < self.fresh_until

    def age(self, now: float) -> int:
        """Whole seconds since the object was stored or last revalidated."""
        return max(0, int(now - self.stored_at))

    def copy_response(self) -> EdgeResponse:
        """A response the caller may change without touching the stored one."""
        return replace(self.response, headers=self.response.headers.copy())

    def is_complete(self) -> bool:
        """The body is as long as the origin said it would be."""
        declared = self.response.headers.get("Content-Length")
        if self.headers_only or declared is None or not declared.strip().isdigit():
            return True
        return int(declared) == len(self.response.body)


@dataclass(frozen=True)
class CacheStats:
    """A store's figures at one moment."""

    objects: int
    size_bytes: int
    max_bytes: int
    evictions: int


class NullCacheStore:
    """A store that keeps nothing: stands in where a behavior is not cached."""

    async def get(self, key: str) -> CachedObject | None:
        return None

    async def put(self, obj: CachedObject) -> bool:
        return False

    async def delete(self, key: str) -> bool:
        return False

    async def invalidate(self, distribution_id: str, paths: Iterable[str]) -> int:
        return 0

    async def stats(self) -> CacheStats:
        return CacheStats(objects=0, size_bytes=0, max_bytes=0, evictions=0)


class MemoryCacheStore:
    """An in-memory store bounded in bytes that evicts the least recently used object.

    Its methods never await, so each runs whole between two others: no reader sees a half-made
    change.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_SIZE) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.max_bytes = max_bytes
        self._objects: OrderedDict[str, CachedObject] = OrderedDict()
        self._size = 0
        self._evictions = 0

    def __len__(self) -> int:
        return len(self._objects)

    async def get(self, key: str) -> CachedObject | None:
        """The object under ``key``, marked as just used."""
        obj = self._objects.get(key)
        if obj is not None:
            self._objects.move_to_end(key)
        return obj

    async def put(self, obj: CachedObject) -> bool:
        """Store ``obj`` (replacing any object under its key); False if it cannot be kept."""
        self._drop(obj.key)
        if not obj.is_complete() or obj.size > self.max_bytes:
            return False
        while self._objects and self._size + obj.size > self.max_bytes:
            _, evicted = self._objects.popitem(last=False)
            self._size -= evicted.size
            self._evictions += 1
        self._objects[obj.key] = obj
        self._size += obj.size
        return True

    async def delete(self, key: str) -> bool:
        """Remove the object under ``key``."""
        return self._drop(key)

    async def invalidate(self, distribution_id: str, paths: Iterable[str]) -> int:
        """Remove every object of the distribution that one of ``paths`` matches."""
        patterns = list(paths)
        doomed = [
            key
            for key, obj in self._objects.items()
            if obj.distribution_id == distribution_id
            and any(invalidation_matches(p, obj.path, obj.query) for p in patterns)
        ]
        for key in doomed:
            self._drop(key)
        return len(doomed)

    async def stats(self) -> CacheStats:
        """Objects and the memory they take now (see :data:`OBJECT_OVERHEAD_BYTES`), and
        evictions so far."""
        return CacheStats(
            objects=len(self._objects),
            size_bytes=self._size,
            max_bytes=self.max_bytes,
            evictions=self._evictions,
        )

    def _drop(self, key: str) -> bool:
        old = self._objects.pop(key, None)
        if old is None:
            return False
        self._size -= old.size
        return True


def check_invalidation_path(path: str) -> None:
    """Raise ``ValueError`` unless ``path`` is a path CloudFront accepts for invalidation."""
    if not path.startswith("/"):
        raise ValueError(f"invalidation path {path!r} must start with '/'")
    if "*" in path[:-1]:
        raise ValueError(f"invalidation path {path!r} may use '*' only as its last character")
    if len(path) > MAX_INVALIDATION_PATH:
        raise ValueError(f"invalidation path is longer than {MAX_INVALIDATION_PATH} characters")


def invalidation_matches(pattern: str, path: str, query: str = "") -> bool:
    """Whether an invalidation ``pattern`` removes the object cached for ``path?query``.

    An exact path removes every variant of that path whose key holds no query string (header and
    cookie variants included); query variants need the query spelled out or a trailing ``*``.
    """
    target = f"{path}?{query}" if query else path
    if pattern.endswith("*"):
        return target.startswith(pattern[:-1])
    return target == pattern
