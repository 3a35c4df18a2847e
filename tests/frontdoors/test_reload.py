"""Hot reload end to end: edits of functions (Python, Node.js) and of the distribution file
reach new requests while a load runs and no request fails; a broken edit keeps serving."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from edgesim.cache.store import MemoryCacheStore
from edgesim.config import load_distribution
from edgesim.frontdoors.reload import EdgeFactory, Reloader, plain_edge
from edgesim.frontdoors.server import EdgeServer
from tests import http_clients
from tests.runtime.helpers import RUNTIME

# Each poll for an outcome gives up after this long; passing never depends on it.
BOUND_S = 20.0

PYTHON = 'def handler(event, context):\n    return {{"status": "200", "body": "{body}"}}\n'
NODE = "exports.handler = async () => ({{ status: '200', body: '{body}' }});\n"
YAML = """
origins: {{site: {{s3: site}}}}
functions:
  py: {{runtime: {runtime}, code: py, handler: app.handler}}
  node: {{runtime: nodejs20.x, code: node, handler: index.handler}}
behaviors:
  - {{path_pattern: /py/*, origin: site, functions: {{viewer-request: py}}}}
  - {{path_pattern: /node/*, origin: site, functions: {{viewer-request: node}}}}
  - {{path_pattern: "{extra}", origin: site, functions: {{viewer-request: py}}}}
  - {{path_pattern: "*", origin: site, cache_policy: CachingOptimized}}
"""


@dataclass
class Served:
    server: EdgeServer
    reloader: Reloader
    folder: Path
    said: list[str] = field(default_factory=list)
    warned: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.server.url() + path

    def write_yaml(self, extra: str) -> None:
        _replace(self.folder / "d.yaml", YAML.format(runtime=RUNTIME, extra=extra))


def _replace(path: Path, text: str) -> None:
    """Save as editors do: a new file renamed over the old one."""
    temporary = path.with_name(path.name + ".tmp~")
    temporary.write_text(text)
    temporary.replace(path)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "a.txt").write_text("site")
    (tmp_path / "py").mkdir()
    (tmp_path / "py" / "app.py").write_text(PYTHON.format(body="py-1"))
    (tmp_path / "node").mkdir()
    (tmp_path / "node" / "index.js").write_text(NODE.format(body="node-1"))
    (tmp_path / "d.yaml").write_text(YAML.format(runtime=RUNTIME, extra="/unused/*"))
    factory = EdgeFactory(plain_edge(MemoryCacheStore()))
    server = EdgeServer([factory.edge(load_distribution(tmp_path / "d.yaml"))], port=0)
    await server.start()
    said: list[str] = []
    warned: list[str] = []
    reloader = Reloader(
        server, [tmp_path / "d.yaml"], factory, info=said.append, warning=warned.append
    )
    stop = asyncio.Event()
    running = asyncio.ensure_future(reloader.run(stop))
    try:
        await asyncio.wait_for(reloader.ready.wait(), BOUND_S)
        yield Served(server, reloader, tmp_path, said, warned)
    finally:
        stop.set()
        await running
        await server.aclose()


async def _eventually(client: httpx.AsyncClient, url: str, body: str) -> None:
    async with asyncio.timeout(BOUND_S):
        while (await client.get(url)).text != body:
            await asyncio.sleep(0.02)


async def _until(seen: Callable[[], bool]) -> None:
    async with asyncio.timeout(BOUND_S):
        while not seen():
            await asyncio.sleep(0.02)


async def test_edits_reach_new_requests_while_a_load_runs_and_none_fails(served: Served) -> None:
    statuses: list[int] = []
    done = asyncio.Event()

    async def load(client: httpx.AsyncClient, path: str) -> None:
        while not done.is_set():
            statuses.append((await client.get(served.url(path))).status_code)

    async with http_clients.async_client(timeout=BOUND_S) as client:
        assert (await client.get(served.url("/py/x"))).text == "py-1"
        assert (await client.get(served.url("/a.txt"))).headers["x-cache"].startswith("Miss")
        loads = [
            asyncio.ensure_future(load(client, path))
            for path in ("/py/x", "/node/x", "/a.txt", "/py/y")
        ]
        _replace(served.folder / "py" / "app.py", PYTHON.format(body="py-2"))
        await _eventually(client, served.url("/py/x"), "py-2")
        _replace(served.folder / "node" / "index.js", NODE.format(body="node-2"))
        await _eventually(client, served.url("/node/x"), "node-2")
        served.write_yaml("/extra/*")
        await _eventually(client, served.url("/extra/x"), "py-2")
        done.set()
        await asyncio.gather(*loads)
    assert statuses and set(statuses) == {200}
    assert any("function py: reloaded" in line for line in served.said)
    assert any("function node: reloaded" in line for line in served.said)
    assert any(line.endswith("d.yaml: reloaded") for line in served.said)
    # The behaviors changed, so the distribution's cache (/a.txt at least) went with them.
    dropped = [line for line in served.said if "the behaviors changed; dropped the cache" in line]
    assert len(dropped) == 1 and not dropped[0].endswith("(0 objects)")
    assert served.warned == []


async def test_a_broken_edit_keeps_the_old_version_serving_and_says_why_once(
    served: Served,
) -> None:
    async with http_clients.async_client(timeout=BOUND_S) as client:
        assert (await client.get(served.url("/py/x"))).text == "py-1"
        broken = "def handler(event, context)\n    return 1\n"
        _replace(served.folder / "py" / "app.py", broken)
        await _until(lambda: any("UserCodeSyntaxError" in line for line in served.warned))
        assert (await client.get(served.url("/py/x"))).text == "py-1"
        _replace(served.folder / "py" / "app.py", broken)  # the same problem again: no new line
        _replace(served.folder / "d.yaml", "origins: [")
        await _until(lambda: any("d.yaml" in line for line in served.warned[1:]))
        assert [line for line in served.warned if "UserCodeSyntaxError" in line] == [
            served.warned[0]
        ]
        assert "functions.py.handler: Runtime.UserCodeSyntaxError" in served.warned[0]
        assert "app.py, line 1" in served.warned[0]
        assert "still serving the previous version" in served.warned[0]
        assert (await client.get(served.url("/py/x"))).text == "py-1"
        # Both fixed: the new code serves.
        served.write_yaml("/unused/*")
        _replace(served.folder / "py" / "app.py", PYTHON.format(body="py-3"))
        await _eventually(client, served.url("/py/x"), "py-3")
