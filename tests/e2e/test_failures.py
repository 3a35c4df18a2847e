"""A misbehaving function costs one request its CloudFront error, never the proxy or another.

The function (functions/faulty) has a Python and a Node.js twin; every test runs on both. The
throttling test uses a gate function instead, written beside the test, that holds each request
until the test opens the gate, so no request can finish before the test has seen the throttle.

The tests that leave their edge serving share one per runtime and timeout, so each failure also
meets an edge that earlier failures went through; they read only the logs of their own requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import psutil
import pytest
import pytest_asyncio

from edgesim.runtime import FunctionPool, FunctionRuntime
from edgesim.tasks import spawn
from tests.e2e.conftest import MakeEdge, Origin, RunningEdge, start_edge, start_origin, stop_edge

DIST = """
origins:
  api: {{url: "{origin}"}}
functions:
  faulty: {{runtime: {runtime}, code: "{{functions}}/faulty", handler: index.handler,
            memory: 128, timeout: {timeout}, reserved_concurrency: 2}}
behaviors:
  - path_pattern: "*"
    origin: api
    functions: {{viewer-request: faulty}}
"""


RUNTIMES = ["python3.12", "nodejs20.x"]
# A case that must end some other way gets viewer-request's whole 5 s quota, so a loaded machine
# cannot turn it into a timeout; only the hanging case, which never ends, gets a short limit.
TIMEOUT_S = 5
HANG_TIMEOUT_S = 1

# The gate gets viewer-request's whole 5 s quota: the test opens it as soon as the throttled
# answer is in, far sooner than that.
GATED_DIST = """
origins:
  api: {{url: "{origin}"}}
functions:
  gated: {{runtime: {runtime}, code: "{code}", handler: index.handler,
           memory: 128, timeout: 5, reserved_concurrency: 2}}
behaviors:
  - path_pattern: "*"
    origin: api
    functions: {{viewer-request: gated}}
"""
GATE_PY = '''"""Viewer-request: hold the request until the file ``open`` appears here."""

import time
from pathlib import Path

GATE = Path(__file__).with_name("open")


def handler(event, context):
    while not GATE.exists():
        time.sleep(0.01)
    return event["Records"][0]["cf"]["request"]
'''
GATE_MJS = """// The twin of index.py: hold the request until the file `open` appears here.
import { existsSync } from 'node:fs';

const gate = new URL('open', import.meta.url);

export const handler = async (event) => {
  while (!existsSync(gate)) await new Promise((resolve) => setTimeout(resolve, 10));
  return event.Records[0].cf.request;
};
"""


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class SharedEdges:
    """The module's edges, one per runtime and function timeout, each started on first use."""

    def __init__(self, origin: Origin, folder: Path) -> None:
        self.origin = origin
        self._folder = folder
        self._edges: dict[tuple[str, int], RunningEdge] = {}

    async def __call__(self, runtime: str, timeout: int) -> RunningEdge:
        if (runtime, timeout) not in self._edges:
            text = DIST.format(origin=self.origin.url, runtime=runtime, timeout=timeout)
            path = self._folder / f"{runtime}-{timeout}.yaml"
            self._edges[runtime, timeout] = await start_edge(text, path)
        return self._edges[runtime, timeout]

    async def aclose(self) -> None:
        while self._edges:
            await stop_edge(self._edges.popitem()[1])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_edge(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SharedEdges]:
    origin, runner = await start_origin()
    edges = SharedEdges(origin, tmp_path_factory.mktemp("failures"))
    yield edges
    await edges.aclose()
    await runner.cleanup()


@pytest_asyncio.fixture(loop_scope="module")
async def edge(shared_edge: SharedEdges, runtime: str) -> RunningEdge:
    return await shared_edge(runtime, TIMEOUT_S)


def _pool(edge: RunningEdge, name: str) -> FunctionPool:
    """The worker pool of function ``name`` on an edge that runs its own functions."""
    runtime = edge.edge.runtime
    assert isinstance(runtime, FunctionRuntime)
    return runtime.pool(name)


async def _assert_still_serves(edge: RunningEdge) -> None:
    response = await edge.client.get("/echo")
    assert response.status_code == 200
    assert response.headers["x-cache"] == "Miss from cloudfront"


@pytest.mark.parametrize(
    ("case", "status", "label", "timeout"),
    [
        ("raise", 503, "LambdaExecutionError", TIMEOUT_S),
        ("crash", 503, "LambdaExecutionError", TIMEOUT_S),
        ("memory", 503, "LambdaExecutionError", TIMEOUT_S),
        ("hang", 503, "LambdaLimitExceeded", HANG_TIMEOUT_S),
    ],
)
@pytest.mark.asyncio(loop_scope="module")
async def test_failure_gets_cloudfront_error_and_proxy_survives(
    shared_edge: SharedEdges, runtime: str, case: str, status: int, label: str, timeout: int
) -> None:
    edge = await shared_edge(runtime, timeout)
    await _assert_still_serves(edge)
    response = await edge.client.get("/echo", params={"case": case})
    assert response.status_code == status
    assert response.headers["x-cache"] == f"{label} from cloudfront"
    assert response.headers["server"] == "CloudFront"
    assert "The request could not be satisfied" in response.text
    await _assert_still_serves(edge)


@pytest.mark.asyncio(loop_scope="module")
async def test_exception_is_logged_with_report(edge: RunningEdge) -> None:
    logged = len(edge.logs)
    await edge.client.get("/echo", params={"case": "raise"})
    text = "\n".join(line for _, lines in edge.logs[logged:] for line in lines)
    assert "START RequestId:" in text
    assert "the function failed on purpose" in text
    assert "REPORT RequestId:" in text


@pytest.mark.asyncio(loop_scope="module")
async def test_print_reaches_the_log_inside_the_frame(edge: RunningEdge) -> None:
    logged = len(edge.logs)
    await edge.client.get("/echo", params={"case": "print"})
    [(_, lines)] = edge.logs[logged:]
    assert lines[0].startswith("START RequestId:")
    assert any("hello from the function" in line for line in lines)
    assert lines[-1].startswith("REPORT RequestId:")
    assert "Billed Duration:" in lines[-1] and "Max Memory Used:" in lines[-1]


async def test_throttle_over_concurrency(
    make_edge: MakeEdge, origin: Origin, runtime: str, tmp_path: Path
) -> None:
    code = tmp_path / "gated"
    code.mkdir()
    (code / "index.py").write_text(GATE_PY)
    (code / "index.mjs").write_text(GATE_MJS)
    edge = await make_edge(GATED_DIST.format(origin=origin.url, runtime=runtime, code=code))
    requests = [spawn(edge.client.get("/echo"), name=f"viewer-request-{n}") for n in range(3)]
    try:
        # While the gate is shut the two requests holding both slots cannot finish, so the
        # only one that can be answered is the third, and it must have been throttled.
        done, held = await asyncio.wait(requests, return_when=asyncio.FIRST_COMPLETED)
        assert (len(done), len(held)) == (1, 2)
        [throttled] = [task.result() for task in done]
        assert throttled.status_code == 503
        assert throttled.headers["x-cache"] == "LambdaLimitExceeded from cloudfront"
        assert _pool(edge, "gated").in_flight == 2
    finally:
        (code / "open").touch()
    responses: list[httpx.Response] = await asyncio.gather(*requests)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 503]
    await _assert_still_serves(edge)


@pytest.mark.asyncio(loop_scope="module")
async def test_one_failure_does_not_hurt_a_concurrent_request(edge: RunningEdge) -> None:
    bad, good = await asyncio.gather(
        edge.client.get("/echo", params={"case": "crash"}),
        edge.client.get("/echo"),
    )
    assert bad.status_code == 503
    assert good.status_code == 200


@pytest.mark.asyncio(loop_scope="module")
async def test_no_worker_left_behind(
    shared_edge: SharedEdges, runtime: str, tmp_path: Path
) -> None:
    await shared_edge.aclose()  # the other tests' edges: this test counts every child process
    dist = DIST.format(origin=shared_edge.origin.url, runtime=runtime, timeout=HANG_TIMEOUT_S)
    edge = await start_edge(dist, tmp_path / "dist.yaml")
    try:
        for case in ("", "raise", "hang", "crash", ""):
            await edge.client.get("/echo", params={"case": case})
        pids = _pool(edge, "faulty").worker_pids
        assert pids
        await edge.server.aclose()
        for pid in pids:
            assert (
                not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
            )
        children = psutil.Process().children(recursive=True)
        assert [c for c in children if c.status() != psutil.STATUS_ZOMBIE] == []
    finally:
        await stop_edge(edge)
