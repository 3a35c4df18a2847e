"""Viewer connections: timeouts and the connection budget; all over real sockets."""

from __future__ import annotations

import asyncio
import resource
import signal
import sys
from pathlib import Path

from tests.frontdoors.viewer_connection_helpers import (
    Start,
    close_what_the_test_opened,  # noqa: F401  (a fixture, found by name)
    closed_without_answer,
    exchange,
    start_fixture,  # noqa: F401  (a fixture, found by name)
)
from tests.raw_http import one_response

# -- timeouts -------------------------------------------------------------------------------


async def test_a_silent_connection_and_a_slow_header_are_closed(start: Start) -> None:
    server = await start(header_timeout=0.3)
    port = server.listeners[0].port
    silent = await asyncio.open_connection("127.0.0.1", port)
    slow = await asyncio.open_connection("127.0.0.1", port)
    slow[1].write(b"GET /slow HT")
    await slow[1].drain()
    assert await closed_without_answer(silent[0])
    assert await closed_without_answer(slow[0])
    for _, writer in (silent, slow):
        writer.close()
    assert start.origin.heads == []  # type: ignore[attr-defined]


async def test_a_slow_header_after_a_served_request_is_closed(start: Start) -> None:
    server = await start(header_timeout=0.3, keepalive_timeout=60)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
    writer.write(b"GET /one HTTP/1.1\r\nHost: a\r\n\r\n")
    await writer.drain()
    assert (await one_response(reader)).startswith(b"HTTP/1.1 200")
    writer.write(b"GET /two HTTP/1.1\r\nHo")  # then nothing more
    await writer.drain()
    assert await closed_without_answer(reader)
    writer.close()


async def test_an_idle_keepalive_connection_is_closed(start: Start) -> None:
    server = await start(keepalive_timeout=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
    writer.write(b"GET /one HTTP/1.1\r\nHost: a\r\n\r\n")
    await writer.drain()
    assert (await one_response(reader)).startswith(b"HTTP/1.1 200")
    assert await closed_without_answer(reader)
    writer.close()


async def test_a_stalled_upload_is_cut_and_the_edge_keeps_serving(start: Start) -> None:
    server = await start(body_timeout=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
    writer.write(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789")
    await writer.drain()
    await asyncio.wait_for(reader.read(), 10)  # whatever came, the connection ends
    assert reader.at_eof()
    writer.close()
    answer = await exchange(server, b"GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")


# -- the connection budget ------------------------------------------------------------------


async def test_idle_connections_make_room_for_a_real_viewer(start: Start) -> None:
    server = await start(max_connections=20, header_timeout=60, keepalive_timeout=60)
    port = server.listeners[0].port
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(40)]
    answer = await exchange(server, b"GET /real HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")
    # The oldest idle connections were closed to make room; the budget was never exceeded.
    assert await closed_without_answer(idle[0][0])
    assert server.budget.open <= 20
    for _, writer in idle:
        writer.close()


def _limit_open_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


async def test_under_a_low_open_files_limit_idle_floods_do_not_starve_a_viewer(
    tmp_path: Path,
) -> None:
    """`edgesim serve` under `ulimit -n 256`, 300 idle connections open: a normal request is
    still served (before the budget, accept() failed with EMFILE and the request timed out)."""
    root = Path(__file__).resolve().parents[2]
    # The example's site without its functions, and no reloader: the test needs neither, and
    # serve starts sooner without checking and warming the functions' code.
    site_only = tmp_path / "site-only.yaml"
    site_only.write_text(
        f'origins: {{site: {{s3: "{root / "origins" / "site"}"}}}}\n'
        "behaviors: [{path_pattern: '*', origin: site}]\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edgesim", "serve", str(site_only), "--port", "0",
        "--admin-port", "0", "--no-reload",
        cwd=root, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        preexec_fn=_limit_open_files,
    )  # fmt: skip
    assert process.stdout is not None
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        banner = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        port = int(banner.split(" on ")[1].strip().rstrip("/").rsplit(":", 1)[1])
        for _ in range(300):
            idle.append(await asyncio.open_connection("127.0.0.1", port))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /style.css HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 20)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200")
    finally:
        for _, idle_writer in idle:
            idle_writer.close()
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.stdout.read(), 20)
        await process.wait()
