"""--dev-errors: the failed function's details below CloudFront's page, escaped; off by default."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from edgesim.config import Distribution, load_distribution_data
from edgesim.frontdoors.console import Console, CorrelatedRuntime
from edgesim.frontdoors.dev_errors import DevErrors, DevErrorsEdge, stack_trace
from edgesim.http import EdgeRequest, Headers
from edgesim.pipeline import Edge, function_specs
from edgesim.runtime import FunctionRuntime
from edgesim.runtime.calls import FunctionCall
from edgesim.types import EventType
from tests import http_clients

PYTHON = """
def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    if request["uri"] == "/raise":
        explode("<script>alert(1)</script>")
    if request["uri"] == "/refuse":
        return {"status": "nope", "body": "<b>bold</b>"}
    return request


def explode(what):
    raise ValueError(what)
"""
NODE = """
exports.handler = async (event) => {
  throw new TypeError('node says no');
};
"""


@pytest.fixture
def distribution(tmp_path: Path) -> Distribution:
    (tmp_path / "py").mkdir()
    (tmp_path / "py" / "app.py").write_text(PYTHON)
    (tmp_path / "node").mkdir()
    (tmp_path / "node" / "index.js").write_text(NODE)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "ok").write_text("fine")
    data = {
        "origins": {"site": {"s3": "site"}},
        "functions": {
            "guard": {"runtime": "python3.12", "code": "py", "handler": "app.handler"},
            "stamp": {"runtime": "nodejs20.x", "code": "node", "handler": "index.handler"},
        },
        "behaviors": [
            {"path_pattern": "/node", "origin": "site", "functions": {"origin-request": "stamp"}},
            {"path_pattern": "*", "origin": "site", "functions": {"viewer-request": "guard"}},
        ],
    }
    return load_distribution_data(
        data, name="d.yaml", source=tmp_path / "d.yaml", base_dir=tmp_path
    )


@pytest.fixture
async def edge(distribution: Distribution) -> AsyncIterator[Edge]:
    dev = DevErrors()
    console = Console()
    runtime = FunctionRuntime(function_specs(distribution), log_sink=console.function_log)
    built = DevErrorsEdge(
        distribution,
        dev,
        runtime=CorrelatedRuntime(runtime, on_call=dev.keep),
        log_sink=console.function_log,
    )
    yield built
    await built.aclose()


def _get(uri: str, method: str = "GET") -> EdgeRequest:
    return EdgeRequest(method=method, uri=uri, headers=Headers([("Host", "x.test")]))


async def test_an_exception_shows_function_trigger_error_and_stack(edge: Edge) -> None:
    result = await edge.dispatch(_get("/raise"))
    page = result.response.body.decode("latin-1")
    assert result.response.status == 503
    assert int(result.response.headers.get("Content-Length") or 0) == len(result.response.body)
    # CloudFront's own text first, then the details.
    assert page.index("The request could not be satisfied") < page.index("edgesim-dev-error")
    assert page.endswith("</BODY></HTML>")
    assert "<B>guard</B> at <B>viewer-request</B>: <B>LambdaExecutionError</B>" in page
    assert "Traceback (most recent call last):" in page and "in explode" in page
    assert "ValueError: &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in page
    assert result.request_id in page


async def test_a_refusal_shows_the_value_returned(edge: Edge) -> None:
    result = await edge.dispatch(_get("/refuse"))
    page = result.response.body.decode("latin-1")
    assert result.response.status == 502
    assert "<B>LambdaValidationError</B>" in page and "The value it returned" in page
    assert "&quot;status&quot;: &quot;nope&quot;" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page


async def test_a_node_exception_shows_its_stack(edge: Edge) -> None:
    page = (await edge.dispatch(_get("/node"))).response.body.decode("latin-1")
    assert "<B>stamp</B> at <B>origin-request</B>" in page
    assert "TypeError: node says no" in page and "index.js:3" in page


async def test_other_answers_and_head_requests_are_left_alone(edge: Edge) -> None:
    ok = await edge.dispatch(_get("/ok"))
    assert ok.response.status == 200 and ok.response.body == b"fine"
    head = await edge.dispatch(_get("/raise", "HEAD"))
    assert head.response.status == 503 and head.response.body == b""


async def test_without_the_option_the_page_is_cloudfronts_alone(
    distribution: Distribution,
) -> None:
    plain = Edge(distribution)
    try:
        page = (await plain.dispatch(_get("/raise"))).response.body
    finally:
        await plain.aclose()
    assert b"edgesim-dev-error" not in page and b"ValueError" not in page


def test_stack_traces_from_each_runtime_log() -> None:
    python = ["START x", "[ERROR] KeyError: 'a'", "Traceback (most recent call last):", "  a"]
    assert stack_trace(python) == "KeyError: 'a'\nTraceback (most recent call last):\n  a"
    node = ['t\tid\tERROR\tInvoke Error \t{"errorType":"E","stack":["E: m","    at f (a.js:1)"]}']
    assert stack_trace(node) == "E: m\n    at f (a.js:1)"
    assert stack_trace(["just output", "[ERROR] no traceback"]) == ""


def test_kept_requests_are_bounded() -> None:
    dev = DevErrors(max_requests=2)
    for request_id in "abc":
        dev.keep(FunctionCall("f", EventType.VIEWER_REQUEST, request_id, {}))
    assert list(dev._calls) == ["b", "c"]


async def test_serve_with_dev_errors_and_json_logs(
    tmp_path: Path, distribution: Distribution
) -> None:
    # The whole path: `edgesim serve --dev-errors --log-format json` in a process of its own.
    data = {
        "origins": {"site": {"s3": "site"}},
        "functions": {"guard": {"runtime": "python3.12", "code": "py", "handler": "app.handler"}},
        "behaviors": [
            {"path_pattern": "*", "origin": "site", "functions": {"viewer-request": "guard"}}
        ],
    }
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(data))
    env = {"XDG_RUNTIME_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edgesim", "serve", str(tmp_path / "d.yaml"), "--port", "0",
        "--admin-port", "0", "--dev-errors", "--log-format", "json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        banner = json.loads(await asyncio.wait_for(process.stdout.readline(), 20))
        url = banner["message"].split(" on ")[1].strip()
        async with http_clients.async_client(timeout=20) as client:
            answer = await client.get(url + "raise")
    finally:
        process.terminate()
        rest = (await asyncio.wait_for(process.stdout.read(), 20)).decode()
        await process.wait()
    assert answer.status_code == 503 and "in explode" in answer.text
    records = [json.loads(line) for line in rest.splitlines()]
    request_id = answer.headers["x-amz-cf-id"]
    mine = [r for r in records if r.get("request_id") == request_id]
    assert {r["kind"] for r in mine} == {"function", "access"}
    assert any(r["level"] == "error" and "ValueError" in r["message"] for r in mine[:-1])
