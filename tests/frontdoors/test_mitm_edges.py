"""The edges of one loaded file: one for every flow, or one per upstream sharing a cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

if os.environ.get("CI"):
    import mitmproxy  # noqa: F401  (under CI a missing mitmproxy fails here, never skips)
else:
    pytest.importorskip("mitmproxy", reason="the addon needs mitmproxy (Python 3.12+)")

from edgesim.cache.store import CachedObject, MemoryCacheStore
from edgesim.config import load_distribution
from edgesim.frontdoors.mitm_edges import EdgeSet, UpstreamNotUsable, _UpstreamStore
from edgesim.frontdoors.mitm_flows import Upstream
from edgesim.http import EdgeResponse
from edgesim.origins.fetcher import OriginFetcher

DISTRIBUTION = """
origins:
  site:
    s3: site
    custom_headers: {X-Origin-Secret: abc}
    read_timeout: 7
  backup:
    s3: site
origin_groups:
  failover: {primary: site, secondary: backup, status_codes: [503]}
behaviors:
  - path_pattern: "*"
    origin: failover
"""

A = Upstream("http", "127.0.0.1", 8001)
B = Upstream("https", "example.test", 443)


@pytest.fixture
async def fetcher() -> OriginFetcher:
    return OriginFetcher()


def _edges(tmp_path: Path, fetcher: OriginFetcher, *, upstream: bool) -> EdgeSet:
    (tmp_path / "site").mkdir()
    path = tmp_path / "dist.yaml"
    path.write_text(DISTRIBUTION)
    return EdgeSet(
        load_distribution(path),
        upstream=upstream,
        cache_size=1 << 20,
        origins=fetcher,
        log_sink=lambda name, lines: None,
    )


async def test_one_edge_serves_every_upstream_by_default(
    tmp_path: Path, fetcher: OriginFetcher
) -> None:
    edges = _edges(tmp_path, fetcher, upstream=False)
    assert edges.edge_for(A) is edges.edge_for(B)
    assert edges.edge_for(A).distribution is edges.distribution
    await edges.aclose()
    await edges.aclose()  # once is enough; the second does nothing


async def test_in_upstream_mode_each_upstream_is_every_origin(
    tmp_path: Path, fetcher: OriginFetcher
) -> None:
    edges = _edges(tmp_path, fetcher, upstream=True)
    a, b = edges.edge_for(A), edges.edge_for(B)
    assert a is not b and edges.edge_for(A) is a
    assert a.runtime is b.runtime is edges.runtime and a.origins is fetcher
    origin = a.distribution.origins["site"]
    assert (origin.url, origin.s3, origin.read_timeout) == ("http://127.0.0.1:8001", None, 7)
    assert origin.custom_headers == {"X-Origin-Secret": "abc"}
    assert b.distribution.origins["site"].url == "https://example.test:443"
    assert a.distribution.origin_groups == edges.distribution.origin_groups
    await edges.aclose()


async def test_a_port_cloudfront_does_not_reach_is_refused(
    tmp_path: Path, fetcher: OriginFetcher
) -> None:
    edges = _edges(tmp_path, fetcher, upstream=True)
    with pytest.raises(UpstreamNotUsable, match="http://127.0.0.1:81 cannot be an origin"):
        edges.edge_for(Upstream("http", "127.0.0.1", 81))
    await edges.aclose()


def _object(key: str) -> CachedObject:
    return CachedObject(
        key=key,
        distribution_id="E1",
        path="/x",
        query="",
        response=EdgeResponse(200, body=b"x"),
        stored_at=0.0,
        fresh_until=10.0,
    )


async def test_upstreams_keep_their_objects_apart_in_one_store() -> None:
    shared = MemoryCacheStore()
    one, two = _UpstreamStore(shared, "a|"), _UpstreamStore(shared, "b|")
    assert await one.put(_object("k"))
    got = await one.get("k")
    assert got is not None and got.key == "k"  # as the edge named it
    assert await two.get("k") is None
    assert (await two.stats()).objects == 1
    assert await two.delete("k") is False and await one.delete("k") is True
    assert await one.put(_object("k")) and await two.put(_object("k"))
    assert await one.invalidate("E1", ["/*"]) == 2  # one distribution, every upstream
