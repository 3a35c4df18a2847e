"""Fixtures shared by the OriginFetcher tests: a loopback origin, a fetcher, dial counting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from edgesim.origins.fetcher import OriginFetcher
from tests.origins.fetcher_origins import BIG, Dials, Origin


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    origin = Origin()
    app = web.Application(client_max_size=2 * len(BIG))
    app.router.add_route("*", "/{tail:.*}", origin.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    assert server.port is not None
    origin.port = server.port
    yield origin
    origin.release.set()
    await server.close()


@pytest.fixture
async def fetcher() -> AsyncIterator[OriginFetcher]:
    fetcher = OriginFetcher(connect_timeout=2.0)
    yield fetcher
    await fetcher.aclose()


@pytest.fixture
async def dials(monkeypatch: pytest.MonkeyPatch) -> Dials:
    # Every origin connection is opened through the running loop, so counting here sees the
    # attempts that are refused before any server could notice them.
    loop = asyncio.get_running_loop()
    dials = Dials()
    open_connection = loop.create_connection

    async def counted(*args: Any, **kwargs: Any) -> Any:
        dials.count += 1
        if dials.hang:
            await asyncio.Event().wait()
        return await open_connection(*args, **kwargs)

    monkeypatch.setattr(loop, "create_connection", counted)
    return dials
