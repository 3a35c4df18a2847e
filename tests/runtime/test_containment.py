"""Containment: hostile functions against real workers, pools and a real ``edgesim serve``.

Processes a function starts die with its worker, however they detach; a function cannot read
the server's environment, signal the server away, forge its worker's replies, or die between
invocations unnoticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import pytest_asyncio

from edgesim.exceptions import LambdaExecutionError, LambdaLimitExceeded, LambdaValidationError
from edgesim.runtime import FunctionPool, FunctionSpec, containment
from edgesim.runtime.containment import Isolation
from tests import http_clients
from tests.runtime.helpers import FIXTURES, NAMESPACES, RUNTIME, LogRecorder, PoolFactory

NODE_HOSTILE = FIXTURES / "hostile_node"
EDGESIM = Path(sys.executable).parent / "edgesim"
needs_namespaces = pytest.mark.skipif(not NAMESPACES, reason="needs Linux namespaces")


def marked(token: str) -> list[int]:
    """Pids of running processes whose command line carries ``token``."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        with contextlib.suppress(psutil.Error):
            if process.info["status"] != psutil.STATUS_ZOMBIE and token in (
                process.info["cmdline"] or []
            ):
                found.append(process.pid)
    return found


async def gone(token: str, within_s: float = 10.0) -> bool:
    """Whether every process marked ``token`` has ended before the bound; kills stragglers."""
    try:
        async with asyncio.timeout(within_s):
            while marked(token):
                await asyncio.sleep(0.02)
        return True
    except TimeoutError:
        for pid in marked(token):
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        return False


@pytest.fixture(params=list(Isolation))
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Isolation]:
    """Each containment level this machine has."""
    wanted: Isolation = request.param
    if wanted is Isolation.NAMESPACES:
        if not NAMESPACES:
            pytest.skip("needs Linux namespaces")
    else:
        monkeypatch.setattr(containment, "_chosen", (Isolation.PROCESS_TREE, ()))
    yield wanted


@pytest.mark.parametrize("ending", ["timeout", "memory", "idle-retire", "pool-close"])
async def test_what_a_function_starts_dies_with_its_worker(
    make_pool: PoolFactory, mode: Isolation, ending: str, tmp_path: Path
) -> None:
    token = uuid.uuid4().hex
    pool = make_pool("hostile", timeout_s=5.0 if ending != "timeout" else 1.0, idle_timeout_s=0.2)
    event: dict[str, Any] = {"what": "sleepers", "token": token, "folder": str(tmp_path)}
    if ending == "timeout":
        with pytest.raises(LambdaLimitExceeded):
            await pool.invoke({**event, "then": "hang"})
    elif ending == "memory":
        with pytest.raises(LambdaExecutionError, match="memory quota"):
            await pool.invoke({**event, "then": "grow"})
    else:
        await pool.invoke(event)
        assert len(marked(token)) == 3, "the child, the session leader and the daemon run"
        if ending == "pool-close":
            await pool.aclose()
        else:
            async with asyncio.timeout(10):
                while pool.worker_pids:
                    await asyncio.sleep(0.02)
    assert sorted(os.listdir(tmp_path)) == ["child", "daemon", "session"]
    assert await gone(token), "a process the function started outlived its worker"


async def test_a_detached_node_child_dies_with_its_worker(mode: Isolation, tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    spec = FunctionSpec(
        name="hostile",
        runtime="nodejs20.x",
        code_dir=NODE_HOSTILE,
        handler="index.handler",
        memory_mb=128,
        timeout_s=1.0,
    )
    pool = FunctionPool(spec)
    try:
        with pytest.raises(LambdaLimitExceeded):
            await pool.invoke(
                {"what": "sleepers", "token": token, "folder": str(tmp_path), "then": "hang"}
            )
    finally:
        await pool.aclose()
    assert os.listdir(tmp_path) == ["detached"]
    assert await gone(token)


@pytest.mark.parametrize("what", ["forge", "garbage"])
async def test_a_forged_reply_fails_its_invocation_and_the_next_is_answered(
    make_pool: PoolFactory, what: str
) -> None:
    logs = LogRecorder()
    pool = make_pool("hostile", log_sink=logs)
    await pool.invoke({})
    with pytest.raises(LambdaExecutionError, match="Runtime.InvalidResponse"):
        await pool.invoke({"what": what})
    assert "broke the protocol" in logs.last[-1]
    for _ in range(3):
        answer = await pool.invoke({"what": "plain"})
        assert answer.value == {"ok": True, "what": "plain"}


async def test_an_oversized_result_is_refused_undecoded_and_the_worker_goes_on(
    make_pool: PoolFactory,
) -> None:
    logs = LogRecorder()
    pool = make_pool("hostile", log_sink=logs)
    with pytest.raises(LambdaValidationError) as caught:
        await pool.invoke({"what": "huge"})
    assert caught.value.reason.startswith(
        "The Lambda function returned a response that exceeded the size limit: "
    )
    assert logs.last[-2].startswith("END RequestId: ")
    workers = pool.worker_pids
    assert (await pool.invoke({"what": "plain"})).value == {"ok": True, "what": "plain"}
    assert pool.worker_pids == workers, "the worker was healthy: it stays warm"


async def wait_for_line(logs: LogRecorder | list[list[str]], text: str) -> list[str]:
    """The first log frame holding ``text``, once one arrives."""
    async with asyncio.timeout(10):
        while True:
            frames = [f for _, f in logs.frames] if isinstance(logs, LogRecorder) else logs
            for frame in frames:
                if any(text in line for line in frame):
                    return frame
            await asyncio.sleep(0.02)


async def test_a_python_worker_that_exits_between_invocations_is_logged_and_replaced(
    make_pool: PoolFactory,
) -> None:
    logs = LogRecorder()
    pool = make_pool("hostile", log_sink=logs)
    first = await pool.invoke({"what": "exit-later"})
    request_id = first.report.request_id
    frame = await wait_for_line(logs, "Runtime.ExitError")
    assert frame == [
        "late words",
        f"RequestId: {request_id} Error: Runtime exited with error: exit status 7",
        "Runtime.ExitError",
    ]
    second = await pool.invoke({"what": "plain"})
    assert second.value == {"ok": True, "what": "plain"}
    assert second.report.init_duration_ms is not None, "a fresh worker"


@pytest.mark.parametrize(
    ("what", "status", "logged"),
    [("throw-later", 129, "late failure"), ("reject-later", 128, "late rejection")],
)
async def test_a_node_worker_that_dies_between_invocations_is_logged_and_replaced(
    what: str, status: int, logged: str
) -> None:
    frames: list[list[str]] = []
    spec = FunctionSpec(
        name="hostile",
        runtime="nodejs20.x",
        code_dir=NODE_HOSTILE,
        handler="index.handler",
        memory_mb=128,
        timeout_s=2.0,
    )
    pool = FunctionPool(spec, log_sink=lambda _name, lines: frames.append(lines))
    try:
        first = await pool.invoke({"what": what})
        frame = await wait_for_line(frames, "Runtime.ExitError")
        assert any(logged in line for line in frame)
        assert frame[-2:] == [
            f"RequestId: {first.report.request_id} Error: Runtime exited with error: "
            f"exit status {status}",
            "Runtime.ExitError",
        ]
        second = await pool.invoke({"what": "plain"})
        assert second.value == {"ok": True, "what": "plain"}
        assert second.report.init_duration_ms is not None
    finally:
        await pool.aclose()


# ---- against a real `edgesim serve` ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Served:
    """An `edgesim serve` subprocess with one behavior per hostile function."""

    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process = process
        self.url = url

    async def get(self, path: str, **params: str) -> httpx.Response:
        async with http_clients.async_client(timeout=30) as client:
            return await client.get(self.url + path, params=params)


async def _serve(tmp_path: Path) -> AsyncIterator[Served]:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text(
        "import json, sys, urllib.parse\n"
        f"sys.path.insert(0, {str(FIXTURES / 'hostile')!r})\n"
        "import index\n"
        "def handler(event, context):\n"
        "    request = event['Records'][0]['cf']['request']\n"
        "    query = dict(urllib.parse.parse_qsl(request['querystring']))\n"
        "    value = index.handler(query, context)\n"
        "    return {'status': '200', 'body': json.dumps(value)}\n"
    )
    port = free_port()
    distribution = tmp_path / "d.yaml"
    distribution.write_text(
        "origins: {site: {s3: site}}\n"
        "functions:\n"
        f"  hostile: {{runtime: {RUNTIME}, code: fn, handler: app.handler, memory: 128,"
        " timeout: 5}\n"
        "  hostile-node:"
        f" {{runtime: nodejs20.x, code: {NODE_HOSTILE}, handler: index.handler,"
        " memory: 128, timeout: 5}\n"
        "behaviors:\n"
        "  - {path_pattern: /node/*, origin: site, functions: {viewer-request: hostile-node}}\n"
        '  - {path_pattern: "*", origin: site, functions: {viewer-request: hostile}}\n'
    )
    (tmp_path / "site").mkdir()
    env = {**os.environ, "EDGESIM_TEST_SECRET": "s3cr3t-" + uuid.uuid4().hex}
    process = await asyncio.create_subprocess_exec(
        str(EDGESIM), "serve", str(distribution), "--port", str(port), "--admin-port", "0",
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # a function that signals the server's group misses the tests
    )  # fmt: skip
    assert process.stdout is not None
    banner = ""
    while " on http://" not in banner:
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        assert line, f"edgesim serve ended: {banner}"
        banner = line.decode()
    drain = asyncio.ensure_future(process.stdout.read())
    try:
        yield Served(process, f"http://127.0.0.1:{port}")
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        await drain


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """A server of this test's own, for a test that ends it."""
    async for server in _serve(tmp_path):
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    """One server for the tests that leave it running: each checks what its own request did,
    and one whose function did stop the server fails, as would the tests after it."""
    async for server in _serve(tmp_path_factory.mktemp("served")):
        yield server


@needs_namespaces
async def test_nothing_a_function_started_survives_a_killed_server(
    served: Served, tmp_path: Path
) -> None:
    token = uuid.uuid4().hex
    folder = tmp_path / "marks"
    folder.mkdir()
    answer = await served.get("/x", what="sleepers", token=token, folder=str(folder))
    assert answer.status_code == 200, answer.text
    assert len(marked(token)) == 3
    served.process.send_signal(signal.SIGKILL)
    await served.process.wait()
    assert await gone(token), "a process the function started outlived the killed server"


@needs_namespaces
@pytest.mark.asyncio(loop_scope="module")
async def test_a_function_cannot_read_the_servers_environment(shared_served: Served) -> None:
    secret = psutil.Process(shared_served.process.pid).environ()["EDGESIM_TEST_SECRET"]
    answer = await shared_served.get("/x", what="environ")
    assert answer.status_code == 200, answer.text
    environments = json.loads(answer.text)["environments"]
    assert environments, "the function read its own environment at least"
    assert secret not in answer.text


@needs_namespaces
@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("path", ["/x", "/node/x"], ids=["python", "node"])
async def test_a_function_cannot_stop_the_server_by_signalling_its_parent(
    shared_served: Served, path: str
) -> None:
    await shared_served.get(path, what="signal")
    answer = await shared_served.get(path, what="plain")
    assert answer.status_code == 200
    assert shared_served.process.returncode is None
