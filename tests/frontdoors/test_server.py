"""The aiohttp adapter: one port per distribution, the access log, and what reaches the
pipeline."""

from __future__ import annotations

from pathlib import Path

from edgesim.frontdoors.server import EdgeServer
from edgesim.http import EdgeRequest
from edgesim.pipeline import Edge, EdgeResult
from tests import http_clients
from tests.frontdoors.server_helpers import site_edge


async def test_one_port_per_distribution_and_access_log(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first, second = site_edge(tmp_path / "one"), site_edge(tmp_path / "two")
    seen: list[tuple[str, int]] = []
    server = EdgeServer(
        [first, second],
        port=0,
        access_log=lambda req, res, ms: seen.append((req.target, res.response.status)),
    )
    await server.start()
    try:
        assert server.listeners[0].port != server.listeners[1].port
        async with http_clients.async_client() as client:
            for index in (0, 1):
                response = await client.get(server.url(index) + "/a.txt?x=1")
                assert response.content == b"hello"
                assert response.headers["x-cache"] == "Miss from cloudfront"
        assert seen == [("/a.txt?x=1", 200), ("/a.txt?x=1", 200)]
    finally:
        await server.aclose()
        await server.aclose()  # closing twice is harmless


def _record_dispatched(edge: Edge) -> list[EdgeRequest]:
    """Every request the front door hands ``edge``, in order."""
    captured: list[EdgeRequest] = []
    original = edge.dispatch

    async def spy(request: EdgeRequest, *, stream: bool = False) -> EdgeResult:
        captured.append(request)
        return await original(request, stream=stream)

    edge.dispatch = spy  # type: ignore[method-assign]
    return captured


async def test_raw_target_and_header_case_reach_the_pipeline(tmp_path: Path) -> None:
    edge = site_edge(tmp_path)
    captured = _record_dispatched(edge)
    server = EdgeServer([edge], port=0)
    await server.start()
    try:
        async with http_clients.async_client() as client:
            await client.get(server.url() + "/a%2Fb/..%2f?q=%20x", headers={"X-MiXed": "1"})
        request = captured[0]
        assert request.uri == "/a%2Fb/..%2f"
        assert request.querystring == "q=%20x"
        assert ("X-MiXed", "1") in request.headers.items()
        assert request.client_ip == "127.0.0.1"
        assert request.local_port == server.listeners[0].port
    finally:
        await server.aclose()


async def test_long_urls_reach_cloudfronts_own_limit(tmp_path: Path) -> None:
    server = EdgeServer([site_edge(tmp_path)], port=0)
    await server.start()
    try:
        async with http_clients.async_client() as client:
            near = await client.get(server.url() + "/" + "a" * 8000)
            over = await client.get(server.url() + "/" + "a" * 9000)
        # the S3-style origin answers (the name is too long for a file), not aiohttp's own 400
        assert near.status_code in (403, 404)
        assert near.headers["server"] == "AmazonS3"
        assert over.status_code == 413
        assert over.headers["x-cache"] == "Error from cloudfront"
    finally:
        await server.aclose()


async def test_a_request_without_a_body_has_no_stream(tmp_path: Path) -> None:
    edge = site_edge(tmp_path)
    captured = _record_dispatched(edge)
    server = EdgeServer([edge], port=0)
    await server.start()
    try:
        async with http_clients.async_client() as client:
            await client.get(server.url() + "/a.txt")
            await client.post(server.url() + "/a.txt", content=b"abc")
        assert (captured[0].stream, captured[0].body) == (None, b"")
        assert captured[1].stream is not None
    finally:
        await server.aclose()
