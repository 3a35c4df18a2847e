"""Fixtures for end-to-end tests: a real origin server and real edges on loopback ports."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote

import httpx
import pytest
from aiohttp import web

from edgesim.config import load_distribution
from edgesim.frontdoors.server import EdgeServer
from edgesim.pipeline import Edge
from edgesim.types import CacheStore, Clock
from tests import http_clients

FUNCTIONS = Path(__file__).parent / "functions"


@dataclass
class SeenRequest:
    """What the origin received."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class Origin:
    """A loopback origin that records every request it gets.

    Path segments steer it: ``/status/<n>/``, ``/cc/<Cache-Control>/`` (percent-encoded),
    ``/etag/<tag>/`` (answers a matching ``If-None-Match`` with 304), ``/slow/<seconds>/``,
    ``/vary/<Vary>/``, ``/cookie/<Set-Cookie>/``.
    ``override_status`` makes every answer that status.
    """

    port: int
    seen: list[SeenRequest] = field(default_factory=list)
    override_status: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def _origin_handler(origin: Origin, request: web.Request) -> web.StreamResponse:
    body = await request.read()
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]
    origin.seen.append(SeenRequest(request.method, request.raw_path, headers, body))
    status = int(request.query.get("status", "200"))
    steer = _steering(request.path)
    extra: dict[str, str] = {}
    if "slow" in steer:
        await asyncio.sleep(float(steer["slow"]))
    if "status" in steer:
        status = int(steer["status"])
    if "cc" in steer:
        extra["Cache-Control"] = steer["cc"]
    if "vary" in steer:
        extra["Vary"] = steer["vary"]
    if "cookie" in steer:
        extra["Set-Cookie"] = steer["cookie"]
    if "etag" in steer:
        extra["ETag"] = f'"{steer["etag"]}"'
        if request.headers.get("If-None-Match") == extra["ETag"]:
            return web.Response(status=304, headers=extra)
    if origin.override_status is not None:
        status = origin.override_status
    if request.path.startswith("/bin"):
        # Echo the request body byte for byte, with the request's content type.
        return web.Response(
            status=status,
            body=body,
            headers={
                "Content-Type": request.headers.get("Content-Type", "application/octet-stream")
            },
        )
    if request.path.startswith("/cookies"):
        response = web.Response(status=status, text="cookies")
        response.headers.add("Set-Cookie", "a=1; Path=/")
        response.headers.add("Set-Cookie", "b=2; Path=/")
        return response
    payload = {
        "method": request.method,
        "target": request.raw_path,
        "headers": headers,
        "body": base64.b64encode(body).decode(),
    }
    return web.Response(
        status=status,
        text=json.dumps(payload),
        content_type="application/json",
        headers={"Connection": "keep-alive", "X-Origin": "yes", **extra},
    )


def _steering(path: str) -> dict[str, str]:
    parts = [unquote(p) for p in path.split("/")]
    return {
        parts[i]: parts[i + 1]
        for i in range(len(parts) - 1)
        if parts[i] in ("status", "cc", "etag", "slow", "vary", "cookie")
    }


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def serve_handler(handler: Handler) -> tuple[web.AppRunner, int]:
    """An aiohttp server on a free loopback port answering every path with ``handler``; the
    runner (to clean up) and its port."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])


async def start_origin() -> tuple[Origin, web.AppRunner]:
    """Start an origin on a free loopback port."""
    origin = Origin(port=0)

    async def handle(request: web.Request) -> web.StreamResponse:
        return await _origin_handler(origin, request)

    runner, origin.port = await serve_handler(handle)
    return origin, runner


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    server, runner = await start_origin()
    yield server
    await runner.cleanup()


@dataclass
class RunningEdge:
    """An edge served on a loopback port, with the function logs it printed."""

    server: EdgeServer
    edge: Edge
    logs: list[tuple[str, list[str]]]
    client: httpx.AsyncClient

    @property
    def url(self) -> str:
        return self.server.url()

    def log_text(self) -> str:
        return "\n".join(line for _, lines in self.logs for line in lines)


class MakeEdge(Protocol):
    """Builds and serves an edge from distribution text."""

    def __call__(
        self, text: str, *, clock: Clock | None = None, store: CacheStore | None = None
    ) -> Awaitable[RunningEdge]: ...


class FakeClock:
    """Wall-clock time that moves only when a test says so."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def start_edge(
    text: str, path: Path, *, clock: Clock | None = None, store: CacheStore | None = None
) -> RunningEdge:
    """Write distribution ``text`` to ``path`` (``{functions}`` expands to the e2e functions
    folder) and serve it; :func:`stop_edge` ends it."""
    path.write_text(text.replace("{functions}", str(FUNCTIONS)))
    logs: list[tuple[str, list[str]]] = []
    edge = Edge(
        load_distribution(path),
        log_sink=lambda f, lines: logs.append((f, lines)),
        clock=clock,
        store=store,
    )
    server = EdgeServer([edge], port=0)
    await server.start()
    client = http_clients.async_client(base_url=server.url(), timeout=30)
    return RunningEdge(server=server, edge=edge, logs=logs, client=client)


async def stop_edge(item: RunningEdge) -> None:
    await item.client.aclose()
    await item.server.aclose()


@pytest.fixture
async def make_edge(tmp_path: Path) -> AsyncIterator[MakeEdge]:
    """Write a distribution file (``{functions}`` expands to the e2e functions folder), serve it."""
    running: list[RunningEdge] = []

    async def make(
        text: str, *, clock: Clock | None = None, store: CacheStore | None = None
    ) -> RunningEdge:
        path = tmp_path / f"dist{len(running)}.yaml"
        item = await start_edge(text, path, clock=clock, store=store)
        running.append(item)
        return item

    yield make
    for item in running:
        await stop_edge(item)
