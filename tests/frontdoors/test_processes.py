"""``edgesim serve --workers N``: several edge processes on one port, each its own edge (its own
``Via`` id and cache), one admin API whose invalidations reach every process, and a stop that
reaches them all. The real command line, in its own process."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil
import pytest
import pytest_asyncio

from edgesim.frontdoors.processes import bind_ports

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "processes-" + "0" * 32


@dataclass
class Served:
    process: asyncio.subprocess.Process
    url: str
    admin: str
    output: list[str]


async def _lines_until(process: asyncio.subprocess.Process, pattern: str, seen: list[str]) -> str:
    assert process.stdout is not None
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        assert line, "serve exited: " + "".join(seen)
        seen.append(line)
        found = re.search(pattern, line)
        if found is not None:
            return found.group(1)


async def _serve(tmp_path: Path) -> AsyncIterator[Served]:
    (tmp_path / "page.html").write_text("hello")
    (tmp_path / "other.html").write_text("hello")
    (tmp_path / "d.yaml").write_text(
        'origins: {site: {s3: "."}}\n'
        'behaviors: [{path_pattern: "*", origin: site, cache_policy: CachingOptimized}]\n'
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edgesim", "serve", "--port", "0", "--admin-port", "0",
        "--workers", "2", "--no-reload", "--shutdown-grace", "1", str(tmp_path / "d.yaml"),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "EDGESIM_ADMIN_TOKEN": TOKEN},
    )  # fmt: skip
    seen: list[str] = []
    try:
        url = await _lines_until(process, r" on (http://[0-9.]+:\d+)/ \(2 edge processes\)", seen)
        admin = await _lines_until(process, r"admin API[^\n]* on (http://[0-9.]+:\d+)/", seen)
        yield Served(process, url, admin, seen)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    """A server for the tests that leave it running; each asks for an object of its own."""
    async for server in _serve(tmp_path_factory.mktemp("served")):
        yield server


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """A server of this test's own, for a test that ends it."""
    async for server in _serve(tmp_path):
        yield server


async def _via_by_answer(url: str, times: int, path: str = "/page.html") -> list[tuple[str, str]]:
    """(Via, X-Cache) of ``times`` requests for ``path``, each on a new connection (the kernel
    spreads connections, not requests, over the processes)."""
    answers = []
    for _ in range(times):
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.get(url + path) as answer:
                assert answer.status == 200
                assert await answer.text() == "hello"
                answers.append((answer.headers["Via"], answer.headers["X-Cache"]))
    return answers


async def _admin(served: Served, method: str, path: str, body: object = None) -> object:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.request(method, served.admin + path, json=body) as answer:
            assert answer.status in (200, 201), await answer.text()
            return await answer.json()


@pytest.mark.asyncio(loop_scope="module")
async def test_several_processes_answer_each_with_its_own_edge_id_and_cache(
    shared: Served,
) -> None:
    before = await _admin(shared, "GET", "/cache")
    assert isinstance(before, dict)
    answers = await _via_by_answer(shared.url, 40)
    vias = {via for via, _ in answers}
    assert len(vias) == 2
    # Each process fetched the object once and keeps its own copy.
    misses = [via for via, x_cache in answers if x_cache.startswith("Miss")]
    assert sorted(misses) == sorted(vias)
    figures = await _admin(shared, "GET", "/cache")
    assert isinstance(figures, dict) and figures["objects"] - before["objects"] == 2


@pytest.mark.asyncio(loop_scope="module")
async def test_an_invalidation_reaches_every_process(shared: Served) -> None:
    await _via_by_answer(shared.url, 20, "/other.html")
    answer = await _admin(shared, "POST", "/invalidations", {"paths": ["/other.html"]})
    assert isinstance(answer, dict) and answer["invalidated"] == 2
    again = await _via_by_answer(shared.url, 40, "/other.html")
    misses = {via for via, x_cache in again if x_cache.startswith("Miss")}
    assert misses == {via for via, _ in again}


async def test_a_signal_stops_every_process(served: Served) -> None:
    children = psutil.Process(served.process.pid).children()
    assert len(children) == 2
    served.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(served.process.wait(), 30) == 0
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive


def test_ports_are_bound_once_per_process_and_share_the_port_chosen() -> None:
    copies = bind_ports("127.0.0.1", [0, 0], 3)
    try:
        assert len(copies) == 3 and all(len(c) == 2 for c in copies)
        for index in range(2):
            ports = {c[index].getsockname()[1] for c in copies}
            assert len(ports) == 1
            assert copies[0][index].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        assert copies[0][0].getsockname()[1] != copies[0][1].getsockname()[1]
    finally:
        for sock in (s for c in copies for s in c):
            sock.close()


def test_supervisor_settings_are_json() -> None:
    from dataclasses import asdict, replace

    from edgesim.frontdoors.serving import ServeOptions

    options = replace(ServeOptions(), inspect=(("f", 9229),), workers=3)
    assert json.loads(json.dumps(asdict(options)))["workers"] == 3


def test_workers_is_a_count_or_auto() -> None:
    import argparse

    from edgesim.frontdoors.processes import workers_option

    assert workers_option("3") == 3
    assert workers_option("auto") == (os.cpu_count() or 1)
    for wrong in ("0", "-1", "many"):
        with pytest.raises(argparse.ArgumentTypeError):
            workers_option(wrong)
