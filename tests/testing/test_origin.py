from __future__ import annotations

import asyncio

import aiohttp
import pytest

from edgesim.testing import OriginReply, OriginRequest, RecordingOrigin


async def test_routes_answer_and_every_request_is_recorded(edge_origin: RecordingOrigin) -> None:
    edge_origin.route("/api/*", status=201, headers=[("X-A", "1"), ("X-A", "2")], body="made")

    async def slow(request: OriginRequest) -> OriginReply:
        await asyncio.sleep(0)
        return OriginReply(status=202, body=request.query)

    edge_origin.route("/slow", slow)
    edge_origin.route("/text", lambda request: "plain")
    edge_origin.route("/api/special", OriginReply(status=404), method="DELETE")
    async with aiohttp.ClientSession() as session:
        async with session.post(edge_origin.url + "/api/x?y=1", data=b"payload") as r:
            assert (r.status, await r.text()) == (201, "made")
            assert r.headers.getall("X-A") == ["1", "2"]
        async with session.delete(edge_origin.url + "/api/special") as r:
            assert r.status == 404  # the later route wins
        async with session.get(edge_origin.url + "/slow?q=2") as r:
            assert (r.status, await r.text()) == (202, "q=2")
        async with session.get(edge_origin.url + "/text") as r:
            assert await r.text() == "plain"
        async with session.get(edge_origin.url + "/other", headers={"X-B": "b"}) as r:
            echoed = await r.json()
    assert echoed["method"] == "GET"
    assert echoed["target"] == "/other"
    assert ["X-B", "b"] in echoed["headers"]
    first = edge_origin.requests[0]
    assert (first.method, first.target, first.path, first.query) == (
        "POST",
        "/api/x?y=1",
        "/api/x",
        "y=1",
    )
    assert first.body == b"payload"
    assert first.header("content-length") == "7"
    assert [r.path for r in edge_origin.requests_to("/api/*")] == ["/api/x", "/api/special"]
    assert edge_origin.last.path == "/other"
    edge_origin.clear()
    with pytest.raises(LookupError, match="has received no request"):
        _ = edge_origin.last


async def test_a_wrong_header_type_fails_when_routed() -> None:
    origin = RecordingOrigin("o")
    with pytest.raises(TypeError, match="must be a dict"):
        origin.route("/", headers="X-A: 1")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="not started"):
        _ = origin.url
    async with origin:
        target = origin.target()
        assert (target.kind, target.port, target.origin_id) == ("custom", origin.port, "o")
        assert origin.config() == {"url": origin.url}
