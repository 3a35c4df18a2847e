"""The admin API."""

from __future__ import annotations

from pathlib import Path

import httpx

from edgesim.config import load_distribution
from edgesim.frontdoors.admin import AdminServer
from edgesim.http import EdgeRequest
from edgesim.pipeline import Edge


def _edge(tmp_path: Path, dist_id: str) -> Edge:
    site = tmp_path / dist_id
    site.mkdir()
    (site / "a.html").write_text("a")
    path = tmp_path / f"{dist_id}.yaml"
    path.write_text(
        f"distribution: {{id: {dist_id}}}\n"
        f'origins: {{site: {{s3: "{site}"}}}}\n'
        'behaviors: [{path_pattern: "*", origin: site, cache_policy: CachingOptimized}]\n'
    )
    return Edge(load_distribution(path))


async def test_invalidate_one_or_every_distribution(tmp_path: Path) -> None:
    first, second = _edge(tmp_path, "EADMIN0000001"), _edge(tmp_path, "EADMIN0000002")
    admin = AdminServer([first, second], port=0)
    await admin.start()
    try:
        for edge in (first, second):
            await edge.dispatch(EdgeRequest("GET", "/a.html"))
        async with httpx.AsyncClient(base_url=admin.url) as client:
            one = await client.post(
                "/invalidations", json={"paths": ["/a.html"], "distribution_id": "EADMIN0000001"}
            )
            assert one.status_code == 201
            assert one.json() == {
                "invalidated": 1,
                "paths": ["/a.html"],
                "distributions": ["EADMIN0000001"],
            }
            every = await client.post("/invalidations", json={"paths": ["/*"]})
            assert every.json()["invalidated"] == 1
            unknown = await client.post(
                "/invalidations", json={"paths": ["/*"], "distribution_id": "ENOPE"}
            )
            assert unknown.status_code == 404
            assert (await client.post("/invalidations", content=b"{")).status_code == 400
            assert (await client.post("/invalidations", json={"paths": []})).status_code == 400
            stats = (await client.get("/cache")).json()
            assert stats["distributions"] == ["EADMIN0000001", "EADMIN0000002"]
    finally:
        await admin.aclose()
        await first.aclose()
        await second.aclose()
