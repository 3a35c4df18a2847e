"""Shared by the viewer connection tests: a recording origin, an edge in front of it, the
fixtures that start one and close what a test opened, and raw exchanges over real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from edgesim.config import load_distribution
from edgesim.frontdoors.server import EdgeServer
from edgesim.frontdoors.viewer_limits import ViewerLimits
from edgesim.pipeline import Edge

FUNCTION = """
import json
def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    seen = json.dumps({"uri": request["uri"], "qs": request["querystring"]})
    request["headers"]["x-seen"] = [{"key": "X-Seen", "value": seen}]
    return request
"""


class RecordingOrigin:
    """A raw origin that keeps each request head it receives and answers ``ok``."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                body = b""
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        body = await reader.readexactly(int(line.split(b":")[1]))
                self.bodies.append(body)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


Start = Callable[..., Awaitable[EdgeServer]]


@pytest.fixture(autouse=True, name="_close_what_the_test_opened")
async def close_what_the_test_opened(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """Every viewer connection a test opens is closed after it, even when an assertion ended
    the test early (an unclosed socket would be reported in a later test)."""
    opened: list[asyncio.StreamWriter] = []
    real = asyncio.open_connection

    async def tracked(
        *args: Any, **kwargs: Any
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await real(*args, **kwargs)
        opened.append(writer)
        return reader, writer

    monkeypatch.setattr(asyncio, "open_connection", tracked)
    yield
    for writer in opened:
        writer.close()


@pytest.fixture(name="start")
async def start_fixture(tmp_path: Path) -> AsyncIterator[Start]:
    """Starts an edge (optionally with a viewer-request function) in front of a recording
    origin; ``start.origin`` is that origin."""
    origin = RecordingOrigin()
    origin.server = await asyncio.start_server(origin.handle, "127.0.0.1", 0)
    port = origin.server.sockets[0].getsockname()[1]
    servers: list[EdgeServer] = []

    async def starter(*, function: bool = False, **limits: Any) -> EdgeServer:
        functions = ""
        if function:
            code = tmp_path / "fn"
            code.mkdir(exist_ok=True)
            (code / "app.py").write_text(FUNCTION)
            functions = (
                f'functions: {{seen: {{runtime: python3.11, code: "{code}", '
                "handler: app.handler}}\n"
            )
        path = tmp_path / "d.yaml"
        path.write_text(
            f'origins: {{api: {{url: "http://127.0.0.1:{port}"}}}}\n'
            + functions
            + "behaviors: [{path_pattern: '*', origin: api, "
            + "allowed_methods: [GET, HEAD, OPTIONS, PUT, PATCH, POST, DELETE]"
            + (", functions: {viewer-request: seen}" if function else "")
            + "}]\n"
        )
        server = EdgeServer([Edge(load_distribution(path))], port=0, limits=ViewerLimits(**limits))
        await server.start()
        servers.append(server)
        return server

    starter.origin = origin  # type: ignore[attr-defined]
    yield starter
    for server in servers:
        await server.aclose()
    origin.server.close()
    for writer in origin.writers:
        writer.close()
    await origin.server.wait_closed()


async def exchange(server: EdgeServer, data: bytes, *, timeout: float = 10.0) -> bytes:
    """Send ``data`` on a new connection; everything the edge answers before it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


def head_of(answer: bytes) -> tuple[bytes, dict[str, str]]:
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    status, *lines = head.split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status.encode(), headers


async def closed_without_answer(reader: asyncio.StreamReader) -> bool:
    return await asyncio.wait_for(reader.read(), 10) == b""
