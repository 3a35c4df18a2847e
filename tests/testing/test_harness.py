from __future__ import annotations

from typing import Any

import psutil
import pytest

from edgesim.runtime import FunctionRuntime
from edgesim.testing import EdgeHarness, FakeClock, RecordingOrigin, resolve_distribution
from tests.testing.conftest import FUNCTIONS


def _config(origin: RecordingOrigin) -> dict[str, Any]:
    return {
        "origins": {"site": origin},
        "functions": {
            "auth": {
                "runtime": "python3.12",
                "code": str(FUNCTIONS / "auth"),
                "handler": "app.handler",
            },
            "rewrite": {
                "runtime": "nodejs20.x",
                "code": str(FUNCTIONS / "rewrite"),
                "handler": "index.handler",
            },
        },
        "behaviors": [
            {
                "path_pattern": "/private/*",
                "origin": "site",
                "allowed_methods": ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"],
                "functions": {"viewer-request": "auth"},
            },
            {
                "path_pattern": "*",
                "origin": "site",
                "cache_policy": "CachingOptimized",
                "functions": {"viewer-request": "rewrite"},
            },
        ],
    }


async def test_in_process_responses_carry_trace_calls_and_logs(
    edge_origin: RecordingOrigin,
) -> None:
    edge_origin.route("/docs/index.html", body="docs", headers={"Cache-Control": "max-age=60"})
    clock = FakeClock()
    async with EdgeHarness(resolve_distribution(_config(edge_origin)), clock=clock) as e:
        denied = await e.get("/private/x?token=1")
        assert denied.status == 401
        assert denied.headers.get("X-Cache") == "LambdaGeneratedResponse from cloudfront"
        assert denied.steps == ["behavior:matched", "viewer-request:response"]
        request = denied.event("viewer-request")["Records"][0]["cf"]["request"]
        assert (request["uri"], request["querystring"]) == ("/private/x", "token=1")
        assert request["headers"]["host"][0]["value"] == e.distribution.settings.domain_name
        assert denied.result("viewer-request") == {
            "status": "401",
            "statusDescription": "Unauthorized",
            "headers": {},
        }
        assert "refused /private/x" in denied.logs
        assert denied.logs[0].startswith("START RequestId:")

        first = await e.get("/docs/")
        assert (first.status, first.text) == (200, "docs")
        assert "rewriting /docs/" in "\n".join(first.logs)
        assert edge_origin.last.path == "/docs/index.html"
        clock.advance(30)
        assert (await e.get("/docs/")).headers.get("X-Cache") == "Hit from cloudfront"
        clock.advance(60)
        assert (await e.get("/docs/")).steps[-2:] != ["cache:hit"]
        assert len(e.logs) >= 4 * 4


async def test_a_wrong_header_type_is_a_type_error_before_the_edge(
    edge_origin: RecordingOrigin,
) -> None:
    async with EdgeHarness(resolve_distribution(_config(edge_origin))) as e:
        with pytest.raises(TypeError, match="headers must be a dict or a list"):
            await e.get("/", headers="Accept: */*")
        assert edge_origin.requests == []


async def test_served_on_a_port_the_same_answers_come_back(edge_origin: RecordingOrigin) -> None:
    async with EdgeHarness(resolve_distribution(_config(edge_origin)), serve=True) as e:
        assert e.url.startswith("http://127.0.0.1:")
        response = await e.post("/private/p", headers={"Authorization": "t"}, body="data")
        assert response.status == 200, response.steps
        assert response.steps[:2] == ["behavior:matched", "viewer-request:request"]
        assert response.call("viewer-request").function == "auth"
        assert edge_origin.last.body == b"data"
        assert edge_origin.last.method == "POST"


async def test_closing_stops_every_worker(edge_origin: RecordingOrigin) -> None:
    e = EdgeHarness(resolve_distribution(_config(edge_origin)), serve=True)
    await e.start()
    await e.get("/private/x")
    await e.get("/docs/")
    runtime = e.recorder.runtime
    assert isinstance(runtime, FunctionRuntime)
    pids = [pid for name in runtime.names for pid in runtime.pool(name).worker_pids]
    assert len(pids) == 2
    await e.aclose()
    assert not [pid for pid in pids if psutil.pid_exists(pid)]
    with pytest.raises(RuntimeError, match="closed"):
        await e.get("/")
