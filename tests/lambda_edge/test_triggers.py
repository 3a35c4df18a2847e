"""Running one trigger: event in, validated result out, failures as CloudFront's pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edgesim.config import BehaviorConfig, load_distribution
from edgesim.http import EdgeRequest, EdgeResponse, Headers
from edgesim.lambda_edge.triggers import Triggers
from edgesim.pages import EarlyResponse
from edgesim.pipeline import function_specs
from edgesim.runtime import FunctionRuntime
from edgesim.trace import Trace
from tests.e2e.conftest import FUNCTIONS

# Returns ?status=N as a JSON number: a float in Python, so 200.0 reaches edgesim as 200.0.
FLOAT_STATUS = """
def handler(event, context):
    cf = event["Records"][0]["cf"]
    status = float(cf["request"]["querystring"].removeprefix("status="))
    if "response" in cf:
        cf["response"]["status"] = status
        return cf["response"]
    return {"status": status, "body": "floated"}
"""


@pytest.fixture
async def triggers(tmp_path: Path) -> AsyncIterator[tuple[Triggers, list[list[str]]]]:
    site = tmp_path / "site"
    site.mkdir()
    floats = tmp_path / "floats"
    floats.mkdir()
    (floats / "index.py").write_text(FLOAT_STATUS)
    path = tmp_path / "d.yaml"
    path.write_text(
        f"""
distribution: {{id: ETRIGGERS00001}}
origins: {{site: {{s3: "{site}"}}}}
functions:
  mutate: {{runtime: python3.12, code: "{FUNCTIONS}/mutate", handler: index.handler}}
  tag: {{runtime: python3.12, code: "{FUNCTIONS}/tag", handler: index.handler}}
  floats: {{runtime: python3.12, code: "{floats}", handler: index.handler}}
behaviors:
  - path_pattern: /float/*
    origin: site
    functions: {{viewer-request: floats, origin-response: floats}}
  - path_pattern: /tag/*
    origin: site
    functions: {{viewer-response: tag}}
  - path_pattern: "*"
    origin: site
    functions: {{viewer-request: mutate}}
"""
    )
    distribution = load_distribution(path)
    logs: list[list[str]] = []
    runtime = FunctionRuntime(function_specs(distribution), log_sink=lambda f, lines: None)
    targets = [o.target() for o in distribution.origins.values()]
    yield Triggers(distribution, runtime, targets, lambda f, lines: logs.append(lines)), logs
    await runtime.aclose()


def _behavior(triggers: Triggers, pattern: str) -> BehaviorConfig:
    return next(b for b in triggers._distribution.behaviors if b.path_pattern == pattern)


async def test_request_trigger_changes_request_or_generates(
    triggers: tuple[Triggers, list[list[str]]],
) -> None:
    runner, _ = triggers
    behavior = _behavior(runner, "*")
    trace = Trace(request_id="r1")
    changed = await runner.viewer_request(
        behavior, EdgeRequest("GET", "/a", "case=vreq-change-uri"), trace
    )
    assert isinstance(changed, EdgeRequest) and changed.uri == "/echo/changed"
    generated = await runner.viewer_request(
        behavior, EdgeRequest("GET", "/a", "case=vreq-generated-200"), trace
    )
    assert isinstance(generated, EdgeResponse) and generated.body == b"made at the edge"
    assert trace.steps == ["viewer-request:request", "viewer-request:response"]
    assert trace.records[0].event is not None


async def test_refused_result_raises_the_502_page_and_logs_the_reason(
    triggers: tuple[Triggers, list[list[str]]],
) -> None:
    runner, logs = triggers
    trace = Trace(request_id="r2")
    with pytest.raises(EarlyResponse) as raised:
        await runner.viewer_request(
            _behavior(runner, "*"), EdgeRequest("GET", "/a", "case=vreq-change-host"), trace
        )
    assert raised.value.response.status == 502
    assert trace.steps == ["viewer-request:LambdaValidationError"]
    assert "/aws/cloudfront/LambdaEdge/ETRIGGERS00001 r2 ERROR Validation error" in logs[-1][0]


async def test_an_undocumented_reading_is_applied_and_logged_as_a_warning(
    triggers: tuple[Triggers, list[list[str]]],
) -> None:
    """AWS's "Override a response header" example returns an entry whose key names another
    header, and expects it to work; CloudFront documents no refusal and no outcome. edgesim
    applies it under the map name and warns in the log where refusals are written."""
    runner, logs = triggers
    trace = Trace(request_id="r9")
    request = await runner.viewer_request(
        _behavior(runner, "*"), EdgeRequest("GET", "/a", "case=vreq-header-key-mismatch"), trace
    )
    assert isinstance(request, EdgeRequest)
    assert request.headers.get_all("X-Custom") == ["1"]  # x-custom, not the key's X-Other
    assert "X-Other" not in request.headers
    assert trace.steps == ["viewer-request:request"]
    (line,) = logs[-1]
    assert line.startswith("/aws/cloudfront/LambdaEdge/ETRIGGERS00001 r9 WARNING ")
    assert "not documented by CloudFront" in line
    assert "not documented by CloudFront" in trace.records[0].detail


async def test_response_trigger_and_missing_association(
    triggers: tuple[Triggers, list[list[str]]],
) -> None:
    runner, _ = triggers
    trace = Trace(request_id="r3")
    response = EdgeResponse(200, Headers([("Content-Type", "text/plain")]), b"x")
    tagged = await runner.viewer_response(
        _behavior(runner, "/tag/*"), EdgeRequest("GET", "/tag/a"), response, trace
    )
    assert tagged.headers.get("x-viewer-response") == "ran"
    untouched = await runner.viewer_response(
        _behavior(runner, "*"), EdgeRequest("GET", "/a"), response, trace
    )
    assert untouched is response


async def test_a_result_that_cannot_be_applied_is_refused(
    triggers: tuple[Triggers, list[list[str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, _ = triggers

    def broken(result: object, request: EdgeRequest) -> EdgeRequest:
        raise KeyError("uri")

    monkeypatch.setattr("edgesim.lambda_edge.events.apply_request", broken)
    trace = Trace(request_id="r4")
    with pytest.raises(EarlyResponse) as raised:
        await runner.viewer_request(
            _behavior(runner, "*"), EdgeRequest("GET", "/a", "case=vreq-add-header"), trace
        )
    assert raised.value.response.status == 502
    assert trace.steps == ["viewer-request:request", "viewer-request:LambdaValidationError"]


async def test_a_refusal_raised_while_applying_keeps_its_reason(
    triggers: tuple[Triggers, list[list[str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgesim.exceptions import LambdaValidationError

    runner, _ = triggers

    def refuse(result: object, request: EdgeRequest) -> EdgeRequest:
        raise LambdaValidationError("The body is not valid base64.")

    monkeypatch.setattr("edgesim.lambda_edge.events.apply_request", refuse)
    trace = Trace(request_id="r5")
    with pytest.raises(EarlyResponse) as raised:
        await runner.viewer_request(
            _behavior(runner, "*"), EdgeRequest("GET", "/a", "case=vreq-add-header"), trace
        )
    assert raised.value.response.status == 502
    assert b"The body is not valid base64." in raised.value.response.body


@pytest.mark.parametrize(("sent", "status"), [("200.0", 200), ("404.0", 404)])
async def test_a_whole_float_status_is_that_status(
    triggers: tuple[Triggers, list[list[str]]], sent: str, status: int
) -> None:
    # JavaScript reads 200.0 as the number 200, so CloudFront sees no float; neither may edgesim.
    runner, _ = triggers
    behavior = _behavior(runner, "/float/*")
    request = EdgeRequest("GET", "/float/a", f"status={sent}")
    trace = Trace(request_id="r6")
    generated = await runner.viewer_request(behavior, request, trace)
    assert isinstance(generated, EdgeResponse)
    assert (generated.status, generated.body) == (status, b"floated")
    origin = EdgeResponse(200, Headers([("Content-Type", "text/plain")]), b"from origin")
    changed = await runner.origin_response(behavior, request, runner._targets[0], origin, trace)
    assert (changed.status, changed.body) == (status, b"from origin")
    assert trace.steps == ["viewer-request:response", "origin-response:response"]


async def test_a_fractional_status_is_refused(
    triggers: tuple[Triggers, list[list[str]]],
) -> None:
    runner, logs = triggers
    trace = Trace(request_id="r7")
    with pytest.raises(EarlyResponse) as raised:
        await runner.viewer_request(
            _behavior(runner, "/float/*"), EdgeRequest("GET", "/float/a", "status=200.5"), trace
        )
    assert raised.value.response.status == 502
    assert trace.steps == ["viewer-request:LambdaValidationError"]
    assert "The status must be a number or a numeric string" in logs[-1][0]
