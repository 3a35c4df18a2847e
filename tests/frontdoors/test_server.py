"""The aiohttp adapter: what crosses the socket is what the pipeline saw and said."""

from __future__ import annotations

from pathlib import Path

import httpx

from edgesim.config import load_distribution
from edgesim.frontdoors.server import EdgeServer, to_web_response
from edgesim.http import EdgeRequest, EdgeResponse, Headers
from edgesim.pipeline import Edge, EdgeResult


def _site_edge(tmp_path: Path) -> Edge:
    site = tmp_path / "site"
    site.mkdir()
    (site / "a.txt").write_bytes(b"hello")
    path = tmp_path / "d.yaml"
    path.write_text(
        f'origins: {{site: {{s3: "{site}"}}}}\nbehaviors: [{{path_pattern: "*", origin: site}}]\n'
    )
    return Edge(load_distribution(path))


async def test_one_port_per_distribution_and_access_log(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first, second = _site_edge(tmp_path / "one"), _site_edge(tmp_path / "two")
    seen: list[tuple[str, int]] = []
    server = EdgeServer(
        [first, second],
        port=0,
        access_log=lambda req, res, ms: seen.append((req.target, res.response.status)),
    )
    await server.start()
    try:
        assert server.listeners[0].port != server.listeners[1].port
        async with httpx.AsyncClient() as client:
            for index in (0, 1):
                response = await client.get(server.url(index) + "/a.txt?x=1")
                assert response.content == b"hello"
                assert response.headers["x-cache"] == "Miss from cloudfront"
        assert seen == [("/a.txt?x=1", 200), ("/a.txt?x=1", 200)]
    finally:
        await server.aclose()
        await server.aclose()  # closing twice is harmless


async def test_raw_target_and_header_case_reach_the_pipeline(tmp_path: Path) -> None:
    edge = _site_edge(tmp_path)
    captured: list[EdgeRequest] = []
    original = edge.dispatch

    async def spy(request: EdgeRequest) -> EdgeResult:
        captured.append(request)
        return await original(request)

    edge.dispatch = spy  # type: ignore[method-assign]
    server = EdgeServer([edge], port=0)
    await server.start()
    try:
        async with httpx.AsyncClient() as client:
            await client.get(server.url() + "/a%2Fb/..%2f?q=%20x", headers={"X-MiXed": "1"})
        request = captured[0]
        assert request.uri == "/a%2Fb/..%2f"
        assert request.querystring == "q=%20x"
        assert ("X-MiXed", "1") in request.headers.items()
        assert request.client_ip == "127.0.0.1"
        assert request.local_port == server.listeners[0].port
    finally:
        await server.aclose()


def test_web_response_recomputes_length_and_keeps_repeats() -> None:
    response = EdgeResponse(
        200,
        Headers([("Content-Length", "999"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]),
        b"abc",
    )
    web_response = to_web_response(response, head=False)
    assert web_response.body == b"abc"
    assert web_response.headers.getall("Set-Cookie") == ["a=1", "b=2"]
    assert "999" not in web_response.headers.values()
    head = to_web_response(response, head=True)
    assert head.headers["Content-Length"] == "999"


async def test_long_urls_reach_cloudfronts_own_limit(tmp_path: Path) -> None:
    server = EdgeServer([_site_edge(tmp_path)], port=0)
    await server.start()
    try:
        async with httpx.AsyncClient() as client:
            near = await client.get(server.url() + "/" + "a" * 8000)
            over = await client.get(server.url() + "/" + "a" * 9000)
        # the S3-style origin answers (the name is too long for a file), not aiohttp's own 400
        assert near.status_code in (403, 404)
        assert near.headers["server"] == "AmazonS3"
        assert over.status_code == 413
        assert over.headers["x-cache"] == "Error from cloudfront"
    finally:
        await server.aclose()
