"""The function contract, held once for every runtime so that Python and Node.js cannot drift.

Each test runs twice, with the Python functions of ``tests/e2e/functions/`` (``index.py``) and
with their Node.js twins (``index.mjs``, same folder, same handler name), through the real proxy,
a real origin and real worker processes: each trigger's event and result, generated responses,
a refused result (502), the failure classes (503), throttling and the log frame.

One edge per runtime serves every test of the module, its workers warm after the first: a test
reads only what its own requests brought (the origin's requests and the function logs since it
began), and a store that keeps nothing makes each request the miss a fresh edge would see.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from edgesim.cache.store import NullCacheStore
from edgesim.config import load_distribution
from edgesim.frontdoors.server import EdgeServer
from edgesim.pipeline import Edge
from tests import http_clients
from tests.e2e.conftest import Origin, RunningEdge, start_edge, stop_edge

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parent.parent.parent
RUNTIMES = ["python3.12", "nodejs20.x"]

DIST = """
origins:
  api: {{url: "{origin}"}}
functions:
  body: {{runtime: {runtime}, code: "{{functions}}/body", handler: index.handler}}
  switch: {{runtime: {runtime}, code: "{{functions}}/switch_origin", handler: index.handler}}
  tag: {{runtime: {runtime}, code: "{{functions}}/tag", handler: index.handler}}
  mutate: {{runtime: {runtime}, code: "{{functions}}/mutate", handler: index.handler}}
  faulty: {{runtime: {runtime}, code: "{{functions}}/faulty", handler: index.handler,
            memory: 128, timeout: 1, reserved_concurrency: 2}}
behaviors:
  - path_pattern: /faulty
    origin: api
    functions: {{viewer-request: faulty}}
  - path_pattern: /mutate
    origin: api
    functions: {{viewer-request: mutate, origin-request: mutate}}
  - path_pattern: "*"
    origin: api
    allowed_methods: [GET, HEAD, OPTIONS, PUT, PATCH, POST, DELETE]
    functions:
      viewer-request: {{function: body, include_body: true}}
      origin-request: switch
      origin-response: tag
      viewer-response: tag
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=RUNTIMES)
async def edge(
    module_origin: Origin, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> AsyncIterator[RunningEdge]:
    path = tmp_path_factory.mktemp(f"contract-{request.param}") / "dist.yaml"
    text = DIST.format(origin=module_origin.url, runtime=request.param)
    running = await start_edge(text, path, store=NullCacheStore())
    yield running
    await stop_edge(running)


async def test_every_trigger_gets_its_event_and_its_result_is_applied(
    edge: RunningEdge, module_origin: Origin
) -> None:
    before = len(module_origin.seen)
    response = await edge.client.post(
        "/echo", params={"port": str(module_origin.port), "path": "/base"}, content=b"hello"
    )
    assert response.status_code == 200, response.text
    [seen] = module_origin.seen[before:]
    assert seen.header("X-Body-Seen") == "5"  # viewer-request saw the body
    assert seen.header("X-Body-Truncated") == "false"
    assert seen.header("X-Switched") == "yes"  # origin-request replaced the origin
    assert seen.target.startswith("/base/echo?")
    assert response.headers["x-origin-response"] == "ran"
    assert response.headers["x-viewer-response"] == "ran"


async def test_a_request_trigger_may_replace_the_body(
    edge: RunningEdge, module_origin: Origin
) -> None:
    before = len(module_origin.seen)
    await edge.client.post("/echo", params={"case": "replace-text"}, content=b"original")
    [seen] = module_origin.seen[before:]
    assert seen.body == b"replaced body"


async def test_viewer_response_is_skipped_for_an_origin_error(
    edge: RunningEdge, module_origin: Origin
) -> None:
    failed = await edge.client.get("/echo", params={"status": "503"})
    assert failed.status_code == 503
    assert failed.headers["x-origin-response"] == "ran"
    assert "x-viewer-response" not in failed.headers


@pytest.mark.parametrize(
    ("case", "status", "body"),
    [
        ("vreq-generated-200", 200, "made at the edge"),
        ("oreq-generated-200", 200, "made at the edge"),
        ("vreq-generated-500", 500, "failure made at the edge"),
    ],
)
async def test_a_generated_response_goes_back_without_the_origin(
    edge: RunningEdge, module_origin: Origin, case: str, status: int, body: str
) -> None:
    seen = len(module_origin.seen)
    response = await edge.client.get("/mutate", params={"case": case})
    assert response.status_code == status
    assert response.text == body
    assert response.headers["x-cache"] == "LambdaGeneratedResponse from cloudfront"
    assert len(module_origin.seen) == seen  # the origin was not asked


@pytest.mark.parametrize("case", ["vreq-add-via", "vreq-not-object", "oreq-origin-port-22"])
async def test_a_result_that_breaks_the_rules_is_a_502(edge: RunningEdge, case: str) -> None:
    logged = len(edge.logs)
    response = await edge.client.get("/mutate", params={"case": case})
    assert response.status_code == 502
    assert response.headers["x-cache"] == "LambdaValidationError from cloudfront"
    assert any("Validation error" in line for _, lines in edge.logs[logged:] for line in lines)


@pytest.mark.parametrize(
    ("case", "label"),
    [
        ("raise", "LambdaExecutionError"),
        ("crash", "LambdaExecutionError"),
        ("memory", "LambdaExecutionError"),
        ("hang", "LambdaLimitExceeded"),
    ],
)
async def test_each_failure_is_a_503_of_its_class(edge: RunningEdge, case: str, label: str) -> None:
    response = await edge.client.get("/faulty", params={"case": case})
    assert response.status_code == 503
    assert response.headers["x-cache"] == f"{label} from cloudfront"
    assert (await edge.client.get("/faulty")).status_code == 200


async def test_invocations_beyond_the_concurrency_are_throttled(edge: RunningEdge) -> None:
    responses = await asyncio.gather(
        *(edge.client.get("/faulty", params={"case": "slow"}) for _ in range(3))
    )
    assert sorted(r.status_code for r in responses) == [200, 200, 503]
    throttled = next(r for r in responses if r.status_code == 503)
    assert throttled.headers["x-cache"] == "LambdaLimitExceeded from cloudfront"


async def test_each_invocation_logs_its_output_inside_its_frame(edge: RunningEdge) -> None:
    await edge.client.get("/faulty")  # a cold start, when the edge is new
    logged = len(edge.logs)
    await edge.client.get("/faulty", params={"case": "print"})
    [(name, lines)] = edge.logs[logged:]
    assert name == "faulty"
    start = re.fullmatch(r"START RequestId: (\S+) Version: 1", lines[0])
    assert start is not None
    request_id = start.group(1)
    assert [line for line in lines[1:-2] if "hello from the function" in line] == lines[1:-2]
    assert len(lines) == 4
    assert lines[-2] == f"END RequestId: {request_id}"
    assert lines[-1].startswith(f"REPORT RequestId: {request_id}\tDuration: ")
    assert "Init Duration" not in lines[-1]


async def test_an_execution_error_is_logged_with_its_message(edge: RunningEdge) -> None:
    logged = len(edge.logs)
    await edge.client.get("/faulty", params={"case": "raise"})
    [(_, lines)] = edge.logs[logged:]
    assert any("the function failed on purpose" in line for line in lines)
    assert lines[-1].startswith("REPORT RequestId:")


async def test_the_bundled_example_serves_folder_urls_through_its_node_function() -> None:
    edge = Edge(load_distribution(ROOT / "distributions" / "example.yaml"))
    server = EdgeServer([edge], port=0)
    await server.start()
    try:
        async with http_clients.async_client(base_url=server.url()) as client:
            about = await client.get("/about/")
            blog = await client.get("/blog/")
            bare = await client.get("/about")
    finally:
        await server.aclose()
    assert about.status_code == 200 and "<title>About" in about.text
    assert blog.status_code == 200 and "<title>Blog" in blog.text
    assert bare.status_code == 404  # only a trailing slash names a folder
