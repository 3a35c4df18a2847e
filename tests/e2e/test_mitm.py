"""End to end: a real ``mitmdump`` with edgesim's addon on loopback, in front of a real origin.

One ``edgesim mitm --no-web`` (mitmdump as a reverse proxy with the addon) and one ``edgesim
serve`` on the same distribution serve the whole module; the helpers (:class:`Mitmdump`,
:class:`ThreadOrigin`) are shared with tests/e2e/test_mitm_lifecycle.py.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

if os.environ.get("CI"):
    import mitmproxy  # noqa: F401  (under CI a missing mitmproxy fails here, never skips)
else:
    pytest.importorskip("mitmproxy", reason="the addon needs mitmproxy (Python 3.12+)")

from aiohttp import web

from edgesim.mitm import ADDON_PATH
from tests import http_clients
from tests.e2e.conftest import Origin, start_origin
from tests.frontdoors.test_mitm import write_site

STARTUP_TIMEOUT = 30.0
_LISTENING = re.compile(r"listening at 127\.0\.0\.1:(\d+)")
_SERVING = re.compile(r" on (http://127\.0\.0\.1:\d+)/")


class ThreadOrigin:
    """The e2e recording origin, served from a thread so module-scoped fixtures can share it."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(start_origin(), self._loop).result(10)
        self.origin: Origin = started[0]
        self._runner: web.AppRunner = started[1]

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


class _Process:
    """A child process whose output is read line by line into :attr:`lines` as it comes."""

    def __init__(self, command: Sequence[str], found: re.Pattern[str]) -> None:
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        self.lines: list[str] = []
        self._found = found
        self._match = threading.Event()
        self.address = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            match = self._found.search(line)
            if match and not self._match.is_set():
                self.address = match.group(1)
                self._match.set()
        self._match.set()  # the process ended

    def wait_ready(self) -> None:
        ready = self._match.wait(STARTUP_TIMEOUT) and self.address
        assert ready, "did not start:\n" + self.log

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, *, after: int = 0) -> None:
        """Until ``text`` is in a line printed after line ``after``."""
        for _ in range(int(STARTUP_TIMEOUT / 0.02)):
            if any(text in line for line in self.lines[after:]):
                return
            threading.Event().wait(0.02)
        raise AssertionError(f"{text!r} never printed:\n{self.log}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        code = self.process.wait(STARTUP_TIMEOUT)
        self._reader.join(STARTUP_TIMEOUT)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code


def mitmdump_command() -> list[str]:
    beside = Path(sys.executable).with_name("mitmdump")
    if beside.exists():
        return [str(beside)]
    return [sys.executable, "-c", "from mitmproxy.tools.main import mitmdump; mitmdump()"]


class Mitmdump(_Process):
    """``mitmdump`` with the addon, on a free loopback port; ``url`` once it listens."""

    def __init__(self, distribution: Path, confdir: Path, *args: str) -> None:
        command = [
            *mitmdump_command(),
            *("--listen-host", "127.0.0.1", "--listen-port", "0"),
            *("--set", f"confdir={confdir}"),  # its CA stays out of the home folder
            *("-s", str(ADDON_PATH)),
            *("--set", f"edgesim_distribution={distribution}"),
            *args,
        ]
        super().__init__(command, _LISTENING)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.address}"


class EdgesimServe(_Process):
    """``edgesim serve`` on the same distribution, for comparison."""

    def __init__(self, distribution: Path) -> None:
        command = [sys.executable, "-m", "edgesim", "serve", str(distribution)]
        super().__init__([*command, "--port", "0", "--admin-port", "0"], _SERVING)

    @property
    def url(self) -> str:
        return self.address


def write_distribution(root: Path, origin_url: str) -> Path:
    """:func:`write_site`'s distribution plus an HTTP origin under ``/api/*``."""
    path = write_site(root)
    text = path.read_text().replace("origins:\n", f"origins:\n  api:\n    url: {origin_url}\n", 1)
    api = (
        "  - path_pattern: /api/*\n    origin: api\n    cache_policy: CachingOptimized\n"
        "    functions: {viewer-request: edge}\n"
    )
    path.write_text(text.replace("behaviors:\n", f"behaviors:\n{api}", 1))
    return path


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    served = ThreadOrigin()
    yield served.origin
    served.close()


@pytest.fixture(scope="module")
def distribution(tmp_path_factory: pytest.TempPathFactory, origin: Origin) -> Path:
    return write_distribution(tmp_path_factory.mktemp("mitm"), origin.url)


class EdgesimMitm(_Process):
    """``edgesim mitm --no-web FILE``: mitmdump in reverse mode with the addon, as users run it."""

    def __init__(self, distribution: Path, *args: str) -> None:
        command = [sys.executable, "-m", "edgesim", "mitm", "--no-web", str(distribution)]
        confdir = distribution.parent / "conf"  # mitmproxy's CA stays out of the home folder
        options = ["--listen-port", "0", "--set", f"confdir={confdir}", *args]
        super().__init__([*command, *options], _LISTENING)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.address}"


@pytest.fixture(scope="module")
def mitm(distribution: Path) -> Iterator[EdgesimMitm]:
    proxy = EdgesimMitm(distribution, "--set", "edgesim_log=flows")
    proxy.wait_ready()
    yield proxy
    assert proxy.stop() == 0, proxy.log


@pytest.fixture(scope="module")
def serve(distribution: Path) -> Iterator[EdgesimServe]:
    server = EdgesimServe(distribution)
    server.wait_ready()
    yield server
    server.stop()


def _get(base: str, path: str) -> httpx.Response:
    return http_clients.get(base + path, timeout=STARTUP_TIMEOUT)


def test_a_generated_response_comes_from_the_function(mitm: EdgesimMitm, origin: Origin) -> None:
    seen = len(origin.seen)
    response = _get(mitm.url, "/api/generated?case=generate")
    assert response.status_code == 200 and response.text == "generated by the edge"
    assert response.headers["x-cache"] == "LambdaGeneratedResponse from cloudfront"
    assert len(origin.seen) == seen  # neither mitmproxy nor the edge asked the origin


def test_a_miss_then_a_hit_from_the_origin(mitm: EdgesimMitm, origin: Origin) -> None:
    first = _get(mitm.url, "/api/cookies")
    again = _get(mitm.url, "/api/cookies")
    assert first.headers["x-cache"] == "Miss from cloudfront"
    assert again.headers["x-cache"] == "Hit from cloudfront"
    assert [s.target for s in origin.seen].count("/api/cookies") == 1
    assert first.text == again.text
    mitm.wait_for("/api/cookies Hit: behavior:matched → viewer-request:request → cache:hit")
    assert "[edge] viewer-request saw /api/cookies" in mitm.log  # function logs, event log


@pytest.mark.parametrize(
    ("case", "status", "x_cache"),
    [
        ("invalid", 502, "LambdaValidationError from cloudfront"),
        ("raise", 503, "LambdaExecutionError from cloudfront"),
    ],
)
def test_a_failing_function_gives_cloudfronts_error_page(
    mitm: EdgesimMitm, case: str, status: int, x_cache: str
) -> None:
    response = _get(mitm.url, f"/?case={case}")
    assert response.status_code == status and response.headers["x-cache"] == x_cache
    assert response.headers["server"] == "CloudFront"
    assert "<H1>" in response.text and response.headers["x-amz-cf-id"] in response.text


_PER_REQUEST = {"x-amz-cf-id", "date", "x-amz-request-id", "x-amz-id-2", "age"}
_EDGE_HOST = r"[0-9a-f]{32}\.cloudfront\.net"
_VIA = re.compile(rf"1\.1 {_EDGE_HOST} \(CloudFront\)")


def _comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], str]:
    """Status, header lines (per-request ids and dates out, Via by shape) and body (its ids
    replaced)."""
    body = response.text
    for name in ("x-amz-cf-id", "x-amz-request-id", "x-amz-id-2"):
        if name in response.headers:
            body = body.replace(response.headers[name], f"<{name}>")
    body = re.sub(_EDGE_HOST, "<edge>", body)  # the Via an HTTP origin echoes
    lines = []
    for name, value in response.headers.multi_items():
        if name in _PER_REQUEST:
            lines.append((name, "<per request>"))
        elif name == "via":
            assert _VIA.fullmatch(value), value
            lines.append((name, "<via>"))
        else:
            lines.append((name, value))
    return response.status_code, sorted(lines), body


def test_the_same_answers_as_edgesim_serve(mitm: EdgesimMitm, serve: EdgesimServe) -> None:
    paths = [
        "/",
        "/page.html",
        "/page.html",  # a hit
        "/missing.html",
        "/?case=generate",
        "/?case=raise",
        "/?case=invalid",
        "/api/echo?q=1",
    ]
    for path in paths:
        through_mitm, served = _get(mitm.url, path), _get(serve.url, path)
        assert _comparable(through_mitm) == _comparable(served), path


async def test_a_slow_function_does_not_stall_a_fast_flow(
    mitm: EdgesimMitm, tmp_path: Path
) -> None:
    marker = tmp_path / "release"
    finished: list[str] = []
    async with http_clients.async_client(base_url=mitm.url, timeout=STARTUP_TIMEOUT) as client:

        async def get(name: str, path: str) -> httpx.Response:
            response = await client.get(path)
            finished.append(name)
            return response

        slow = asyncio.ensure_future(get("slow", f"/page.html?case=wait&marker={marker}"))
        fast = await get("fast", "/index.html?fast")
        assert fast.status_code == 200 and finished == ["fast"] and not slow.done()
        marker.touch()
        assert (await slow).status_code == 200
    assert finished == ["fast", "slow"]
