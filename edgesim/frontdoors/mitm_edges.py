"""The edges a loaded distribution file gives the mitmproxy addon.

In the default mode one :class:`Edge` serves every flow: the distribution's own origins answer,
whatever host the viewer asked for. In upstream mode the host the viewer asked for is the
origin: each upstream gets an edge whose origins all point at it, so the edge can sit in front
of any site a developer browses. Those edges share one runtime (one pool of workers per
function), one origin client and one cache, whose keys are kept apart by upstream: CloudFront
keys objects by distribution, and here each site browsed stands for a distribution of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from pydantic import ValidationError

from edgesim.cache.store import CachedObject, CacheStats, MemoryCacheStore
from edgesim.config import Distribution, OriginConfig
from edgesim.exceptions import EdgesimError
from edgesim.frontdoors.mitm_flows import Upstream
from edgesim.pipeline import Edge, function_specs
from edgesim.runtime import FunctionRuntime
from edgesim.types import CacheStore, LogSink, OriginClient

__all__ = ["EdgeSet", "UpstreamNotUsable"]


class UpstreamNotUsable(EdgesimError):
    """The host a flow was headed for cannot be a CloudFront origin (a port CloudFront does not
    reach, a malformed name)."""

    def __init__(self, upstream: Upstream, reason: str) -> None:
        super().__init__(f"{upstream.url} cannot be an origin: {reason}")
        self.upstream = upstream
        self.reason = reason


class _UpstreamStore:
    """One upstream's view of the shared cache: its keys carry the upstream's name, so two
    sites' ``/index.html`` are two objects. Objects leave with the key the edge gave them."""

    def __init__(self, store: CacheStore, prefix: str) -> None:
        self._store = store
        self._prefix = prefix

    async def get(self, key: str) -> CachedObject | None:
        obj = await self._store.get(self._prefix + key)
        return None if obj is None else replace(obj, key=key)

    async def put(self, obj: CachedObject) -> bool:
        return await self._store.put(replace(obj, key=self._prefix + obj.key))

    async def delete(self, key: str) -> bool:
        return await self._store.delete(self._prefix + key)

    async def invalidate(self, distribution_id: str, paths: Iterable[str]) -> int:
        return await self._store.invalidate(distribution_id, paths)

    async def stats(self) -> CacheStats:
        return await self._store.stats()


class EdgeSet:
    """The edges of one version of a distribution file, closed together by :meth:`aclose`.

    ``origins`` is the addon's origin client, shared by every version and closed by the addon;
    the runtime (the functions' workers) belongs to this version. ``in_flight`` counts flows
    being served, so a version replaced by a reload is closed only once they are done.
    """

    def __init__(
        self,
        distribution: Distribution,
        *,
        upstream: bool,
        cache_size: int,
        origins: OriginClient,
        log_sink: LogSink,
    ) -> None:
        self.distribution = distribution
        self.upstream = upstream
        self.in_flight = 0
        self.retired = False
        self._origins = origins
        self._log_sink = log_sink
        self._store = MemoryCacheStore(cache_size)
        self.runtime = FunctionRuntime(function_specs(distribution), log_sink=log_sink)
        self._edges: dict[Upstream | None, Edge] = {}
        self._closed = False

    def edge_for(self, upstream: Upstream) -> Edge:
        """The edge serving a flow headed for ``upstream``."""
        key = upstream if self.upstream else None
        edge = self._edges.get(key)
        if edge is None:
            distribution = self.distribution
            store: CacheStore = self._store
            if key is not None:
                distribution = _in_front_of(distribution, key)
                store = _UpstreamStore(self._store, f"{key.url}|")
            edge = Edge(
                distribution,
                runtime=self.runtime,
                origins=self._origins,
                store=store,
                log_sink=self._log_sink,
            )
            self._edges[key] = edge
        return edge

    async def aclose(self) -> None:
        """Stop this version's workers (once); the shared origin client stays open."""
        if self._closed:
            return
        self._closed = True
        await self.runtime.aclose()


def _in_front_of(distribution: Distribution, upstream: Upstream) -> Distribution:
    """``distribution`` with every origin replaced by ``upstream``, as a custom HTTP origin.

    Each origin keeps its id, custom headers and timeouts, so behaviors, origin groups and
    functions read the same; its path and S3 folder go, since the upstream serves the paths the
    viewer asked for.
    """
    origins: dict[str, OriginConfig] = {}
    for origin_id, origin in distribution.origins.items():
        try:
            origins[origin_id] = OriginConfig.model_validate(
                {
                    "id": origin_id,
                    "url": upstream.url,
                    "custom_headers": dict(origin.custom_headers),
                    "read_timeout": origin.read_timeout,
                    "keepalive_timeout": origin.keepalive_timeout,
                    "connection_attempts": origin.connection_attempts,
                    "connection_timeout": origin.connection_timeout,
                }
            )
        except ValidationError as error:
            raise UpstreamNotUsable(upstream, error.errors()[0]["msg"]) from None
    return distribution.model_copy(update={"origins": origins})
