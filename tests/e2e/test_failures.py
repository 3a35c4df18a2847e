"""A misbehaving function costs one request its CloudFront error, never the proxy or another.

The function (functions/faulty) has a Python and a Node.js twin; every test runs on both.
"""

from __future__ import annotations

import asyncio

import psutil
import pytest

from tests.e2e.conftest import MakeEdge, Origin, RunningEdge

DIST = """
origins:
  api: {{url: "{origin}"}}
functions:
  faulty: {{runtime: {runtime}, code: "{{functions}}/faulty", handler: index.handler,
            memory: 128, timeout: 1, concurrency: 2}}
behaviors:
  - path_pattern: "*"
    origin: api
    functions: {{viewer-request: faulty}}
"""


RUNTIMES = ["python3.12", "nodejs20.x"]


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def edge(make_edge: MakeEdge, origin: Origin, runtime: str) -> RunningEdge:
    return await make_edge(DIST.format(origin=origin.url, runtime=runtime))


async def _assert_still_serves(edge: RunningEdge) -> None:
    response = await edge.client.get("/echo")
    assert response.status_code == 200
    assert response.headers["x-cache"] == "Miss from cloudfront"


@pytest.mark.parametrize(
    ("case", "status", "label"),
    [
        ("raise", 503, "LambdaExecutionError"),
        ("crash", 503, "LambdaExecutionError"),
        ("memory", 503, "LambdaExecutionError"),
        ("hang", 503, "LambdaLimitExceeded"),
    ],
)
async def test_failure_gets_cloudfront_error_and_proxy_survives(
    edge: RunningEdge, case: str, status: int, label: str
) -> None:
    await _assert_still_serves(edge)
    response = await edge.client.get("/echo", params={"case": case})
    assert response.status_code == status
    assert response.headers["x-cache"] == f"{label} from cloudfront"
    assert response.headers["server"] == "CloudFront"
    assert "The request could not be satisfied" in response.text
    await _assert_still_serves(edge)


async def test_exception_is_logged_with_report(edge: RunningEdge) -> None:
    await edge.client.get("/echo", params={"case": "raise"})
    text = edge.log_text()
    assert "START RequestId:" in text
    assert "the function failed on purpose" in text
    assert "REPORT RequestId:" in text


async def test_print_reaches_the_log_inside_the_frame(edge: RunningEdge) -> None:
    await edge.client.get("/echo", params={"case": "print"})
    lines = edge.logs[-1][1]
    assert lines[0].startswith("START RequestId:")
    assert any("hello from the function" in line for line in lines)
    assert lines[-1].startswith("REPORT RequestId:")
    assert "Billed Duration:" in lines[-1] and "Max Memory Used:" in lines[-1]


async def test_throttle_over_concurrency(edge: RunningEdge) -> None:
    responses = await asyncio.gather(
        *(edge.client.get("/echo", params={"case": "slow"}) for _ in range(3))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 503]
    throttled = next(r for r in responses if r.status_code == 503)
    assert throttled.headers["x-cache"] == "LambdaLimitExceeded from cloudfront"
    await _assert_still_serves(edge)


async def test_one_failure_does_not_hurt_a_concurrent_request(edge: RunningEdge) -> None:
    bad, good = await asyncio.gather(
        edge.client.get("/echo", params={"case": "crash"}),
        edge.client.get("/echo"),
    )
    assert bad.status_code == 503
    assert good.status_code == 200


async def test_no_worker_left_behind(make_edge: MakeEdge, origin: Origin, runtime: str) -> None:
    edge = await make_edge(DIST.format(origin=origin.url, runtime=runtime))
    for case in ("", "raise", "hang", "crash", ""):
        await edge.client.get("/echo", params={"case": case})
    pids = edge.edge.runtime.pool("faulty").worker_pids
    assert pids
    await edge.server.aclose()
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    children = psutil.Process().children(recursive=True)
    assert [c for c in children if c.status() != psutil.STATUS_ZOMBIE] == []
