"""Viewer connections: timeouts, the connection budget, CloudFront's pages for what the HTTP
parser refuses, and raw non-ASCII request lines; all over real sockets."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import re
import resource
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from edgesim.config import load_distribution
from edgesim.frontdoors import messages
from edgesim.frontdoors import server as server_module
from edgesim.frontdoors.server import EdgeServer
from edgesim.frontdoors.viewer_limits import ViewerLimits
from edgesim.pipeline import Edge
from tests.raw_http import one_response

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


@pytest.fixture(autouse=True)
async def _close_what_the_test_opened(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
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


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
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


async def _exchange(server: EdgeServer, data: bytes, *, timeout: float = 10.0) -> bytes:
    """Send ``data`` on a new connection; everything the edge answers before it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


def _head(answer: bytes) -> tuple[bytes, dict[str, str]]:
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    status, *lines = head.split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status.encode(), headers


async def _closed_without_answer(reader: asyncio.StreamReader) -> bool:
    return await asyncio.wait_for(reader.read(), 10) == b""


# -- CloudFront's pages where the parser refuses ---------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
        (b"GET /\r\n\r\n", b"HTTP/1.1 400 Bad Request"),  # HTTP/0.9 gets no HTTP/0.9 answer
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", b"HTTP/1.1 413"),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", b"HTTP/1.1 413"),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\n" + b"A:\r\n" * 6000 + b"\r\n",
            b"HTTP/1.1 413",
        ),
    ],
    ids=["garbage", "http-0.9", "70000-byte-header", "70000-byte-url", "6000-headers"],
)
async def test_what_the_parser_refuses_gets_cloudfronts_page(
    start: Start, request_bytes: bytes, status: bytes
) -> None:
    """spec cloudfront-caching.md §4.3/§5: a request over 20,480 bytes is 413 and the connection
    is closed; a malformed one is CloudFront's 400. Never aiohttp's plain text."""
    server = await start()
    answer = await _exchange(server, request_bytes)
    line, headers = _head(answer)
    assert line.startswith(status)
    assert headers["server"] == "CloudFront"
    assert headers["x-cache"] == "Error from cloudfront"
    assert headers["connection"] == "close"
    assert headers["x-amz-cf-id"]
    assert b"The request could not be satisfied" in answer
    assert b"aiohttp" not in answer and b"Python" not in answer
    assert start.origin.heads == []  # type: ignore[attr-defined]


async def test_many_small_headers_within_cloudfronts_limit_are_served(start: Start) -> None:
    """300 headers in 4 KB are well inside 20,480 bytes (aiohttp alone refuses past 128)."""
    server = await start()
    many = b"".join(b"X-%d: v\r\n" % i for i in range(300))
    answer = await _exchange(
        server, b"GET /m HTTP/1.1\r\nHost: a\r\nConnection: close\r\n" + many + b"\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 200")


async def test_an_upload_over_cloudfronts_maximum_is_refused_unread(start: Start) -> None:
    """spec cloudfront-caching.md §5: GET, POST and PUT requests are limited to 30 GB."""
    server = await start()
    answer = await _exchange(
        server, b"PUT /big HTTP/1.1\r\nHost: a\r\nContent-Length: 40000000000\r\n\r\nxx"
    )
    assert answer.startswith(b"HTTP/1.1 413")
    assert _head(answer)[1]["connection"] == "close"
    assert start.origin.heads == []  # type: ignore[attr-defined]


# -- one request at a time, and what the edge leaves unread ----------------------------------


def _paths(heads: list[bytes]) -> list[bytes]:
    return [head.split(b" ")[1] for head in heads]


async def test_pipelined_requests_are_answered_one_by_one_in_order(start: Start) -> None:
    server = await start(function=True)  # the function makes each answer wait on a worker
    requests = b"".join(b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(40))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
    writer.write(requests)  # more than the queue holds: reading pauses, then resumes
    await writer.drain()
    answers = [await one_response(reader) for _ in range(40)]
    writer.close()
    assert all(answer.startswith(b"HTTP/1.1 200") for answer in answers)
    heads: list[bytes] = start.origin.heads  # type: ignore[attr-defined]
    assert _paths(heads) == [b"/%d" % i for i in range(40)]


async def test_a_body_left_unread_is_discarded_and_the_connection_serves_on(start: Start) -> None:
    """CloudFront refuses a GET with a body without reading it (spec cloudfront-caching.md
    §1.3); the next request on the connection is read from where the body ends."""
    server = await start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
    writer.write(b"GET /with-body HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab")
    writer.write(b"cdeGET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    await writer.drain()
    refused = await one_response(reader)
    rest = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert refused.startswith(b"HTTP/1.1 403")
    assert rest.startswith(b"HTTP/1.1 200")
    assert _paths(start.origin.heads) == [b"/next"]  # type: ignore[attr-defined]


async def test_a_body_the_viewer_never_finishes_closes_the_connection(start: Start) -> None:
    server = await start(body_timeout=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
    writer.write(b"GET /with-body HTTP/1.1\r\nHost: a\r\nContent-Length: 50\r\n\r\nabc")
    await writer.drain()
    assert (await one_response(reader)).startswith(b"HTTP/1.1 403")
    assert await _closed_without_answer(reader)
    writer.close()


async def test_an_upload_reaches_the_origin_as_the_viewer_sent_it(start: Start) -> None:
    """A gzip-encoded upload is passed on, not inflated on the way."""
    server = await start()
    body = gzip.compress(b"a" * 1000)
    head = b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Encoding: gzip\r\nConnection: close\r\n"
    answer = await _exchange(server, head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    assert answer.startswith(b"HTTP/1.1 200")
    assert start.origin.bodies == [body]  # type: ignore[attr-defined]


async def test_an_upgrade_is_answered_then_the_connection_closes(start: Start) -> None:
    server = await start()
    answer = await _exchange(
        server,
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        b"\x81\x05hello",
    )
    assert answer.startswith(b"HTTP/1.1 ")
    assert answer.count(b"HTTP/1.1 ") == 1  # the frame after it is never read as a request


async def test_a_defect_answering_one_request_costs_only_its_connection(
    start: Start, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start()
    # `serve` run in this process by another test keeps edgesim's records to its console.
    monkeypatch.setattr(logging.getLogger("edgesim"), "propagate", True)
    real = messages.send_response

    async def broken(request: Any, result: Any) -> bool:
        if request.message.path == "/boom":
            raise RuntimeError("a defect")
        return await real(request, result)

    monkeypatch.setattr(server_module, "send_response", broken)
    boom = await _exchange(server, b"GET /boom HTTP/1.1\r\nHost: a\r\n\r\n")
    fine = await _exchange(server, b"GET /fine HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert boom == b""
    assert fine.startswith(b"HTTP/1.1 200")
    assert "edgesim failed to answer GET /boom" in caplog.text


async def test_shutdown_lets_a_request_under_way_finish_and_closes_idle_connections(
    tmp_path: Path,
) -> None:
    reached, release = asyncio.Event(), asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        reached.set()
        await release.wait()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate")
        await writer.drain()
        writer.close()

    origin = await asyncio.start_server(slow, "127.0.0.1", 0)
    path = tmp_path / "d.yaml"
    path.write_text(
        f'origins: {{api: {{url: "http://127.0.0.1:{origin.sockets[0].getsockname()[1]}"}}}}\n'
        "behaviors: [{path_pattern: '*', origin: api}]\n"
    )
    server = EdgeServer([Edge(load_distribution(path))], port=0, shutdown_grace=30)
    await server.start()
    port = server.listeners[0].port
    idle = await asyncio.open_connection("127.0.0.1", port)
    busy = await asyncio.open_connection("127.0.0.1", port)
    busy[1].write(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
    await busy[1].drain()
    await asyncio.wait_for(reached.wait(), 10)  # the request is under way at the origin
    closing = asyncio.ensure_future(server.aclose())
    assert await _closed_without_answer(idle[0])
    assert not closing.done()
    release.set()
    answer = await asyncio.wait_for(busy[0].read(), 10)
    await asyncio.wait_for(closing, 10)
    origin.close()
    await origin.wait_closed()
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"late")


@pytest.mark.parametrize(
    ("request_head", "connection", "stays_open"),
    [
        (b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n", None, True),
        (b"GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "close", False),
        (b"GET /a HTTP/1.0\r\nHost: a\r\n\r\n", None, False),
        (b"GET /a HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", "keep-alive", True),
    ],
    ids=["1.1", "1.1-close", "1.0", "1.0-keep-alive"],
)
async def test_the_connection_stays_open_as_the_viewer_asked(
    start: Start, request_head: bytes, connection: str | None, stays_open: bool
) -> None:
    server = await start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
    writer.write(request_head)
    await writer.drain()
    answer = await one_response(reader)
    assert answer.split(b" ", 2)[1] == b"200"
    assert _head(answer)[1].get("connection") == connection
    if stays_open:
        writer.write(b"GET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        await writer.drain()
        assert (await asyncio.wait_for(reader.read(), 10)).startswith(b"HTTP/1.1 200")
    else:
        assert await _closed_without_answer(reader)
    writer.close()


# -- raw non-ASCII request lines ------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", ["café".encode(), "café".encode("latin-1")], ids=["utf-8", "iso-8859-1"]
)
async def test_raw_non_ascii_request_lines_reach_the_function_as_utf8(
    start: Start, raw: bytes
) -> None:
    """spec lambda-edge.md §3.4: functions get UTF-8 (ISO-8859-1 converted first); the origin
    gets the bytes the viewer sent, since the function did not change the URI."""
    server = await start(function=True)
    first = b"GET /" + raw + b"?q=" + raw + b" HTTP/1.1\r\nHost: a\r\n\r\n"
    second = b"GET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
    writer.write(first)
    await writer.drain()
    answer = await one_response(reader)
    writer.write(second)  # the same connection keeps serving
    await writer.drain()
    rest = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200")
    assert rest.startswith(b"HTTP/1.1 200")
    heads: list[bytes] = start.origin.heads  # type: ignore[attr-defined]
    # The viewer's own bytes (not their UTF-8 conversion), percent-encoded where HTTP/1.1
    # forbids raw bytes in a request target (edgesim.origins.fetcher).
    sent = re.sub(rb"[\x80-\xff]", lambda byte: b"%%%02X" % byte.group()[0], raw)
    assert heads[0].startswith(b"GET /" + sent + b"?q=" + sent + b" HTTP/1.1\r\n")
    seen = next(line for line in heads[0].split(b"\r\n") if line.startswith(b"X-Seen: "))
    assert json.loads(seen.removeprefix(b"X-Seen: ")) == {"uri": "/café", "qs": "q=café"}
    assert heads[1].startswith(b"GET /after HTTP/1.1")


# -- timeouts -------------------------------------------------------------------------------


async def test_a_silent_connection_and_a_slow_header_are_closed(start: Start) -> None:
    server = await start(header_timeout=0.3)
    port = server.listeners[0].port
    silent = await asyncio.open_connection("127.0.0.1", port)
    slow = await asyncio.open_connection("127.0.0.1", port)
    slow[1].write(b"GET /slow HT")
    await slow[1].drain()
    assert await _closed_without_answer(silent[0])
    assert await _closed_without_answer(slow[0])
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
    assert await _closed_without_answer(reader)
    writer.close()


async def test_an_idle_keepalive_connection_is_closed(start: Start) -> None:
    server = await start(keepalive_timeout=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
    writer.write(b"GET /one HTTP/1.1\r\nHost: a\r\n\r\n")
    await writer.drain()
    assert (await one_response(reader)).startswith(b"HTTP/1.1 200")
    assert await _closed_without_answer(reader)
    writer.close()


async def test_a_stalled_upload_is_cut_and_the_edge_keeps_serving(start: Start) -> None:
    server = await start(body_timeout=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.listeners[0].port)
    writer.write(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789")
    await writer.drain()
    await asyncio.wait_for(reader.read(), 10)  # whatever came, the connection ends
    assert reader.at_eof()
    writer.close()
    answer = await _exchange(server, b"GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")


# -- the connection budget ------------------------------------------------------------------


async def test_idle_connections_make_room_for_a_real_viewer(start: Start) -> None:
    server = await start(max_connections=20, header_timeout=60, keepalive_timeout=60)
    port = server.listeners[0].port
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(40)]
    answer = await _exchange(server, b"GET /real HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")
    # The oldest idle connections were closed to make room; the budget was never exceeded.
    assert await _closed_without_answer(idle[0][0])
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
