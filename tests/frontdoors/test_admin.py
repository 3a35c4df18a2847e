"""The admin API, through a real AdminServer on a loopback port and a real HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from edgesim.config import load_distribution
from edgesim.frontdoors.admin import MAX_BODY_BYTES, AdminServer
from edgesim.frontdoors.server import EdgeServer
from edgesim.http import EdgeRequest
from edgesim.pipeline import Edge
from tests import http_clients

TOKEN = "test-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

# One event loop for the module: its tests share an edge.
pytestmark = pytest.mark.asyncio(loop_scope="module")


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


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_edge(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Edge]:
    """The distribution of the tests that use :func:`_admin`."""
    edge = _edge(tmp_path_factory.mktemp("admin"), "EADMIN0000001")
    yield edge
    await edge.aclose()


@asynccontextmanager
async def _admin(edge: Edge) -> AsyncIterator[tuple[AdminServer, Edge, httpx.AsyncClient]]:
    """``edge``'s distribution with /a.html cached (again, if an earlier test invalidated it) and
    nothing else, its admin API, and a client holding no token."""
    admin = AdminServer([edge], port=0, token=TOKEN)
    await admin.start()
    try:
        await edge.dispatch(EdgeRequest("GET", "/a.html"))
        assert await _cached(edge) == 1
        async with http_clients.async_client(base_url=admin.url) as client:
            yield admin, edge, client
    finally:
        await admin.aclose()


async def _cached(edge: Edge) -> int:
    return (await edge.store.stats()).objects


def _assert_json_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert isinstance(response.json()["error"], str)


async def test_invalidate_one_or_every_distribution(tmp_path: Path) -> None:
    first, second = _edge(tmp_path, "EADMIN0000001"), _edge(tmp_path, "EADMIN0000002")
    admin = AdminServer([first, second], port=0, token=TOKEN)
    await admin.start()
    try:
        for edge in (first, second):
            await edge.dispatch(EdgeRequest("GET", "/a.html"))
        async with http_clients.async_client(base_url=admin.url, headers=AUTH) as client:
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
            # CloudFront's NoSuchDistribution is a 404, not a malformed request.
            unknown = await client.post(
                "/invalidations", json={"paths": ["/*"], "distribution_id": "ENOPE"}
            )
            _assert_json_error(unknown, 404)
            stats = (await client.get("/cache")).json()
            assert stats["distributions"] == ["EADMIN0000001", "EADMIN0000002"]
    finally:
        await admin.aclose()
        await first.aclose()
        await second.aclose()


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/jsonp",
        None,
    ],
)
async def test_a_body_that_is_not_declared_json_is_refused(
    shared_edge: Edge, content_type: str | None
) -> None:
    # A browser sends the first three cross-site without a preflight; even with the token
    # (which a page does not have) only application/json is taken.
    headers = dict(AUTH)
    if content_type is not None:
        headers["Content-Type"] = content_type
    async with _admin(shared_edge) as (_, edge, client):
        answer = await client.post("/invalidations", content=b'{"paths": ["/*"]}', headers=headers)
        _assert_json_error(answer, 415)
        assert await _cached(edge) == 1


async def test_json_with_a_charset_is_json(shared_edge: Edge) -> None:
    headers = {**AUTH, "Content-Type": "Application/JSON; charset=utf-8"}
    async with _admin(shared_edge) as (_, edge, client):
        answer = await client.post("/invalidations", content=b'{"paths": ["/*"]}', headers=headers)
        assert answer.status_code == 201
        assert await _cached(edge) == 0


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong-token", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN}x"],
)
async def test_a_missing_or_wrong_token_is_403(
    shared_edge: Edge, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with _admin(shared_edge) as (_, edge, client):
        post = await client.post("/invalidations", json={"paths": ["/*"]}, headers=headers)
        _assert_json_error(post, 403)
        _assert_json_error(await client.get("/cache", headers=headers), 403)
        assert await _cached(edge) == 1


@pytest.mark.parametrize(
    "host",
    [
        "evil.example:{port}",
        "127.0.0.1.nip.io:{port}",
        "localhost.evil.example:{port}",
        "localhost:1{port}",
        "127.0.0.1",
        "[::2]:{port}",
    ],
)
async def test_a_foreign_host_is_refused(shared_edge: Edge, host: str) -> None:
    # DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 sends
    # Host: evil.example, and the browser treats the admin's answers as its own.
    async with _admin(shared_edge) as (admin, edge, client):
        headers = {**AUTH, "Host": host.format(port=admin.port)}
        _assert_json_error(await client.get("/cache", headers=headers), 421)
        post = await client.post("/invalidations", json={"paths": ["/*"]}, headers=headers)
        _assert_json_error(post, 421)
        assert await _cached(edge) == 1


@pytest.mark.parametrize(
    "host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}", "[::1]:{port}"]
)
async def test_loopback_hosts_are_accepted(shared_edge: Edge, host: str) -> None:
    async with _admin(shared_edge) as (admin, _, client):
        headers = {**AUTH, "Host": host.format(port=admin.port)}
        assert (await client.get("/cache", headers=headers)).status_code == 200


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "null",
        "http://localhost:1{port}",
        "https://127.0.0.1:{port}",
        "http://127.0.0.1:{port}/path",
    ],
)
async def test_a_foreign_origin_is_refused(shared_edge: Edge, origin: str) -> None:
    async with _admin(shared_edge) as (admin, edge, client):
        headers = {**AUTH, "Origin": origin.format(port=admin.port)}
        post = await client.post("/invalidations", json={"paths": ["/*"]}, headers=headers)
        _assert_json_error(post, 403)
        assert await _cached(edge) == 1


async def test_the_admins_own_origin_is_accepted(shared_edge: Edge) -> None:
    async with _admin(shared_edge) as (admin, edge, client):
        headers = {**AUTH, "Origin": f"http://localhost:{admin.port}"}
        post = await client.post("/invalidations", json={"paths": ["/*"]}, headers=headers)
        assert post.status_code == 201
        assert await _cached(edge) == 0


async def test_a_preflight_gets_no_cors_permission(shared_edge: Edge) -> None:
    async with _admin(shared_edge) as (admin, _, client):
        headers = {
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        }
        answer = await client.options("/invalidations", headers=headers)
        assert answer.status_code >= 400
        assert not any(name.lower().startswith("access-control-") for name in answer.headers)


def _deep(depth: int) -> bytes:
    return b'{"paths": ' + b"[" * depth + b"]" * depth + b"}"


MALFORMED = {
    "not JSON": b"{",
    "not UTF-8": b'{"paths": ["/\xff"]}',
    "a list": b'["/a.html"]',
    "a string": b'"/a.html"',
    "null": b"null",
    "no paths": b"{}",
    "paths a string": b'{"paths": "/a.html"}',
    "paths empty": b'{"paths": []}',
    "paths null": b'{"paths": null}',
    "a path a number": b'{"paths": ["/a.html", 1]}',
    "a path null": b'{"paths": [null]}',
    "a path a list": b'{"paths": [["/a.html"]]}',
    "a path without /": b'{"paths": ["a.html"]}',
    "a * inside": b'{"paths": ["/*.html"]}',
    "distribution_id a number": b'{"paths": ["/*"], "distribution_id": 1}',
    "distribution_id a list": b'{"paths": ["/*"], "distribution_id": ["EADMIN0000001"]}',
    "an unknown key": b'{"paths": ["/*"], "distribution": "EADMIN0000001"}',
    "deeply nested": _deep(200_000),
    "nested a little": _deep(50),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_body_is_a_400_json_answer(shared_edge: Edge, body: bytes) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    async with _admin(shared_edge) as (_, edge, client):
        _assert_json_error(await client.post("/invalidations", content=body, headers=headers), 400)
        assert await _cached(edge) == 1


async def _chunks(total: int) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * 65536
        sent += 65536


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_huge_body_is_413(shared_edge: Edge, chunked: bool) -> None:
    size = MAX_BODY_BYTES + 65536
    headers = {**AUTH, "Content-Type": "application/json"}
    async with _admin(shared_edge) as (_, edge, client):
        content: bytes | AsyncIterator[bytes] = _chunks(size) if chunked else b" " * size
        answer = await client.post("/invalidations", content=content, headers=headers)
        _assert_json_error(answer, 413)
        assert await _cached(edge) == 1


async def test_unknown_routes_and_methods_answer_json(shared_edge: Edge) -> None:
    async with _admin(shared_edge) as (_, _, client):
        _assert_json_error(await client.get("/nope", headers=AUTH), 404)
        _assert_json_error(await client.get("/invalidations", headers=AUTH), 405)


async def test_a_published_token_file_lives_while_the_server_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    edge = _edge(tmp_path, "EADMIN0000001")
    admin = AdminServer([edge], port=0, publish_token=True)
    await admin.start()
    try:
        assert admin.token_file is not None
        assert admin.token_file.read_text() == admin.token
        assert admin.token_file.stat().st_mode & 0o777 == 0o600
        assert str(admin.port) in admin.token_file.name
        async with http_clients.async_client(base_url=admin.url) as client:
            auth = {"Authorization": f"Bearer {admin.token}"}
            assert (await client.get("/cache", headers=auth)).status_code == 200
    finally:
        await admin.aclose()
        await edge.aclose()
    assert not admin.token_file.exists()


async def test_the_admin_api_follows_a_reloaded_distribution(tmp_path: Path) -> None:
    """After a hot reload swaps a port's edge (here for a new distribution id), invalidations
    reach the edge now served, not the one it replaced."""
    old, new = _edge(tmp_path, "EADMIN0000001"), _edge(tmp_path, "EADMIN0000002")
    server = EdgeServer([old], port=0)
    await server.start()
    admin = AdminServer(server.edges, port=0, token=TOKEN)
    await admin.start()
    try:
        server.swap(0, new)
        await new.dispatch(EdgeRequest("GET", "/a.html"))
        async with http_clients.async_client(base_url=admin.url, headers=AUTH) as client:
            answer = await client.post(
                "/invalidations", json={"paths": ["/*"], "distribution_id": "EADMIN0000002"}
            )
        assert answer.status_code == 201, answer.text
        assert answer.json()["invalidated"] == 1
    finally:
        await admin.aclose()
        await server.aclose()
