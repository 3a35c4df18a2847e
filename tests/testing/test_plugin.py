"""The pytest plugin, run as a user runs it: real test files in a sub-pytest (pytester).

Each run is a separate process (workers and event loops stay out of this one), importing the
same edgesim as this run, through the installed ``pytest11`` entry point.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import edgesim
from tests.testing.conftest import FUNCTIONS

pytest_plugins = ["pytester"]

ROOT = Path(edgesim.__file__).resolve().parent.parent

USER_TESTS = """
import psutil
import pytest

from edgesim.testing import Function, assert_valid, check_function

FUNCTIONS = {functions!r}
AUTH = Function(FUNCTIONS + "/auth")
FRAGILE = FUNCTIONS + "/fragile"
PY = {{"runtime": "python3.12", "code": FUNCTIONS + "/auth", "handler": "app.handler"}}
NODE = {{"runtime": "nodejs20.x", "code": FUNCTIONS + "/rewrite", "handler": "index.handler"}}


def config(origin):
    return {{
        "origins": {{"site": origin}},
        "functions": {{"auth": PY, "rewrite": NODE}},
        "behaviors": [
            {{"path_pattern": "/private/*", "origin": "site",
              "functions": {{"viewer-request": "auth"}}}},
            {{"path_pattern": "*", "origin": "site", "cache_policy": "CachingOptimized",
              "functions": {{"viewer-request": "rewrite"}}}},
        ],
    }}


{mark}
async def test_edge_origin_and_clock(edge, edge_origin, edge_clock):
    edge_origin.route("/docs/index.html", body="docs", headers={{"Cache-Control": "max-age=60"}})
    e = await edge(config(edge_origin))
    assert (await e.get("/private/a?x=1")).status == 401
    first = await e.get("/docs/")
    assert first.text == "docs"
    assert first.call("viewer-request").value["uri"] == "/docs/index.html"
    assert edge_origin.last.path == "/docs/index.html"
    edge_clock.advance(120)
    assert (await e.get("/docs/")).headers.get("X-Cache") != "Hit from cloudfront"


{mark}
async def test_served(edge, edge_origin):
    e = await edge(config(edge_origin), serve=True)
    response = await e.get("/private/a", headers={{"Authorization": "t"}})
    assert response.status == 200
    assert response.steps[1] == "viewer-request:request"


{mark}
async def test_invoke_and_events(edge_invoke, edge_event):
    invoked = await edge_invoke(AUTH, edge_event.viewer_request("/p"))
    assert_valid(invoked)
    assert invoked.value["status"] == "401"


{mark}
async def test_refused_result(edge_invoke, edge_event):
    assert_valid(await edge_invoke(FRAGILE, edge_event.viewer_request("/?q=1")))


{mark}
async def test_fuzz(edge_invoke):
    await check_function(FRAGILE, "viewer-request", invoker=edge_invoke, max_examples=200)


def test_nothing_is_left_behind():
    me = psutil.Process()
    assert me.children(recursive=True) == []
    assert [c for c in me.net_connections("inet") if c.status == psutil.CONN_LISTEN] == []
"""


@pytest.fixture
def sub(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    return pytester


@pytest.mark.parametrize("mode", ["auto", "strict"])
def test_every_fixture_in_a_users_test_file(sub: pytest.Pytester, mode: str) -> None:
    sub.makeini(
        f"""
        [pytest]
        asyncio_mode = {mode}
        asyncio_default_fixture_loop_scope = function
        filterwarnings = error
        """
    )
    mark = "@pytest.mark.asyncio" if mode == "strict" else ""
    sub.makepyfile(test_user=USER_TESTS.format(functions=str(FUNCTIONS), mark=mark))
    # The fuzz failure's report is the same in both modes; it is the slow one, so it runs once.
    only = [] if mode == "auto" else ["-k", "not fuzz"]
    result = sub.runpytest_subprocess("-p", "no:cacheprovider", *only)
    result.assert_outcomes(passed=4, failed=2 if mode == "auto" else 1)
    result.stdout.fnmatch_lines(
        [
            "*CloudFront would answer 502 LambdaValidationError for this viewer-request result:",
            "*The Lambda function result failed validation: *read-only header*Host",
            "*Captured stderr call*",
            "*?fragile? START RequestId:*",
        ]
    )
    if mode == "auto":
        result.stdout.fnmatch_lines(
            ["*viewer-request function 'fragile' gets 50? Lambda*Error on this event (the small*"]
        )


def test_disabled_with_no_edgesim(sub: pytest.Pytester) -> None:
    sub.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    sub.makepyfile(
        test_off="""
        import sys

        def test_the_plugin_is_not_loaded():
            assert "edgesim.testing.plugin" not in sys.modules

        def test_its_fixtures_are_gone(edge_clock):
            pass
        """
    )
    result = sub.runpytest_subprocess("-p", "no:edgesim", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*fixture 'edge_clock' not found*"])


def test_a_run_that_uses_no_fixture_loads_none_of_the_kit(sub: pytest.Pytester) -> None:
    # Every pytest run where edgesim is installed loads the plugin: it must stay light.
    sub.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    sub.makepyfile(
        test_light="""
        import sys

        def test_only_the_plugin_is_loaded():
            assert "edgesim.testing.plugin" in sys.modules
            heavy = ("edgesim.testing.harness", "edgesim.pipeline", "edgesim.config", "aiohttp")
            assert [name for name in heavy if name in sys.modules] == []
        """
    )
    result = sub.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
