"""The event loop ``serve`` runs on: uvloop by default where installed, asyncio's on request.

The rest of the suite runs in-process edges on pytest-asyncio's (asyncio's) loop, as the test
kit's users do; here the whole request path (viewer socket, origin socket, function workers,
streamed bodies) runs on uvloop, as ``edgesim serve`` does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import uvloop

from edgesim.config import load_distribution
from edgesim.frontdoors import event_loop
from edgesim.frontdoors.server import EdgeServer
from edgesim.pipeline import Edge
from tests import http_clients
from tests.e2e.conftest import FUNCTIONS, start_origin


def test_auto_means_uvloop_where_it_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert event_loop.resolve("auto") == "uvloop"
    assert event_loop.resolve("asyncio") == "asyncio"
    monkeypatch.setattr(event_loop, "available", lambda: False)
    assert event_loop.resolve("auto") == "asyncio"
    with pytest.raises(event_loop.LoopUnavailableError, match="uvloop is not installed"):
        event_loop.resolve("uvloop")


@pytest.mark.parametrize(("name", "kind"), [("uvloop", uvloop.Loop), ("asyncio", None)])
def test_run_runs_on_the_loop_named(name: event_loop.LoopName, kind: type | None) -> None:
    async def which() -> type:
        return type(asyncio.get_running_loop())

    loop_type = event_loop.run(which(), name)
    if kind is None:
        assert not issubclass(loop_type, uvloop.Loop)
        assert issubclass(loop_type, asyncio.BaseEventLoop)
    else:
        assert issubclass(loop_type, kind)


def _distribution(tmp_path: Path, origin_url: str) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    (site / "page.html").write_bytes(b"<p>cached</p>")
    path = tmp_path / "d.yaml"
    path.write_text(
        f"""\
origins:
  site: {{s3: "{site}"}}
  api: {{url: "{origin_url}"}}
functions:
  tag: {{runtime: python3.12, code: "{FUNCTIONS / "tag"}", handler: index.handler}}
behaviors:
  - path_pattern: "/api/*"
    origin: api
    cache_policy: CachingDisabled
    origin_request_policy: AllViewer
    allowed_methods: [GET, HEAD, OPTIONS, PUT, PATCH, POST, DELETE]
  - path_pattern: "*"
    origin: site
    cache_policy: CachingOptimized
    functions: {{viewer-response: tag}}
"""
    )
    return path


async def _every_path(tmp_path: Path) -> list[tuple[int, str, str, bytes]]:
    origin, runner = await start_origin()
    edge = Edge(load_distribution(_distribution(tmp_path, origin.url)))
    server = EdgeServer([edge], port=0)
    await server.start()
    seen: list[tuple[int, str, str, bytes]] = []
    try:
        async with http_clients.async_client() as client:
            for method, path, body in [
                ("GET", "/page.html", b""),  # Miss, from the folder origin
                ("GET", "/page.html", b""),  # Hit
                ("POST", "/api/upload", b"x" * 300_000),  # a body streamed both ways
                ("GET", "/api/status/503/", b""),  # the origin's error, passed on
            ]:
                response = await client.request(method, server.url() + path, content=body)
                tag = response.headers.get("x-viewer-response", "")
                seen.append(
                    (response.status_code, response.headers["x-cache"], tag, response.content)
                )
        seen.append((len(origin.seen[0].body), "", "", b""))
    finally:
        await server.aclose()
        await runner.cleanup()
    return seen


@pytest.mark.parametrize("name", ["uvloop", "asyncio"])
def test_the_whole_request_path_runs_on_either_loop(
    tmp_path: Path, name: event_loop.LoopName
) -> None:
    miss, hit, upload, error, uploaded = event_loop.run(_every_path(tmp_path), name)
    assert miss == (200, "Miss from cloudfront", "ran", b"<p>cached</p>")
    assert hit == (200, "Hit from cloudfront", "ran", b"<p>cached</p>")
    assert upload[:2] == (200, "Miss from cloudfront")
    assert error[:2] == (503, "Error from cloudfront")
    assert uploaded[0] == 300_000
