"""A function result too big to accept costs its own request a 502, never the other viewers.

A response-trigger function returns the response with tens of thousands of extra headers, far
over CloudFront's 20,480 bytes of response headers (cloudfront-caching.md §5; lambda-edge.md §4.1
for the 502 ``LambdaValidationError``). The function waits behind a gate the test opens, so the
test knows the hostile request is in flight while it fetches a cached path: every one of those
fetches must be answered before the gate opens, and the hostile request must get its 502.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.e2e.conftest import MakeEdge, Origin, RunningEdge

HOSTILE_PY = '''"""Response trigger: after the gate opens, add COUNT headers."""

import time
from pathlib import Path

GATE = Path(__file__).with_name("open")
COUNT = int(Path(__file__).with_name("count").read_text())


def handler(event, context):
    while not GATE.exists():
        time.sleep(0.01)
    response = event["Records"][0]["cf"]["response"]
    for i in range(COUNT):
        name = f"x-h{i}"
        response["headers"][name] = [{"key": name, "value": "v"}]
    return response
'''

DIST = """
origins:
  api: {{url: "{origin}"}}
functions:
  hostile: {{runtime: python3.12, code: "{code}", handler: index.handler, timeout: 5}}
behaviors:
  - path_pattern: /hostile/*
    origin: api
    cache_policy: CachingDisabled
    functions: {{{trigger}: hostile}}
  - path_pattern: "*"
    origin: api
    cache_policy: CachingOptimized
"""

# Cached fetches made while the hostile request waits at the gate.
FETCHES = 5


def _hostile_function(folder: Path, count: int) -> Path:
    folder.mkdir()
    (folder / "index.py").write_text(HOSTILE_PY)
    (folder / "count").write_text(str(count))
    return folder


async def _serve(make_edge: MakeEdge, origin: Origin, code: Path, trigger: str) -> RunningEdge:
    edge = await make_edge(DIST.format(origin=origin.url, code=code, trigger=trigger))
    first = await edge.client.get("/cached")
    assert first.headers["x-cache"] == "Miss from cloudfront"
    return edge


async def _cached_answers_while_hostile_in_flight(edge: RunningEdge, gate: Path) -> int:
    """Fetch the cached path while the hostile request waits; then let the function finish."""
    hostile = asyncio.ensure_future(edge.client.get("/hostile/x"))
    answered = 0
    try:
        for _ in range(FETCHES):
            response = await edge.client.get("/cached")
            assert response.status_code == 200
            assert response.headers["x-cache"] == "Hit from cloudfront"
            assert not hostile.done()
            answered += 1
    finally:
        gate.touch()
    result = await hostile
    assert result.status_code == 502
    assert result.headers["x-cache"] == "LambdaValidationError from cloudfront"
    assert result.headers["server"] == "CloudFront"
    return answered


@pytest.mark.timeout(120)
@pytest.mark.parametrize("trigger", ["viewer-response", "origin-response"])
async def test_hundred_thousand_headers_get_502_while_cached_path_answers(
    make_edge: MakeEdge, origin: Origin, tmp_path: Path, trigger: str
) -> None:
    code = _hostile_function(tmp_path / "hostile", 100_000)
    edge = await _serve(make_edge, origin, code, trigger)
    assert await _cached_answers_while_hostile_in_flight(edge, code / "open") == FETCHES
    assert "ERROR Validation error:" in edge.log_text()
    after = await edge.client.get("/cached")
    assert after.headers["x-cache"] == "Hit from cloudfront"


@pytest.mark.timeout(120)
async def test_refusal_names_the_header_limit_in_the_log(
    make_edge: MakeEdge, origin: Origin, tmp_path: Path
) -> None:
    # 20,000 short headers are about 300 KB of lines: over the header limit, yet a reply small
    # enough that the header rule, not a bound on the reply itself, is what refuses it.
    code = _hostile_function(tmp_path / "hostile", 20_000)
    edge = await _serve(make_edge, origin, code, "viewer-response")
    assert await _cached_answers_while_hostile_in_flight(edge, code / "open") == FETCHES
    assert (
        "The response headers are over CloudFront's limit of 20480 bytes in a viewer-response"
        in edge.log_text()
    )
