from __future__ import annotations

from pathlib import Path

import pytest

from edgesim.exceptions import LambdaExecutionError
from edgesim.testing import EventFactory, Function, Invoker, ResultRefused
from edgesim.trace import FunctionOutcome
from tests.testing.conftest import FUNCTIONS


def test_handler_and_runtime_are_found_in_the_folder() -> None:
    node = Function(FUNCTIONS / "rewrite").spec()
    assert (node.handler, node.runtime, node.name) == ("index.handler", "nodejs20.x", "rewrite")
    python = Function("auth", handler="app.handler").spec(FUNCTIONS)
    assert python.runtime.startswith("python3.")
    assert python.code_dir == FUNCTIONS / "auth"
    with pytest.raises(ValueError, match="pass handler="):
        Function(FUNCTIONS).spec()  # a folder with no handler file
    with pytest.raises(ValueError, match="does not exist"):
        Function("nowhere").spec(FUNCTIONS)


async def test_one_function_on_one_event(edge_invoke: Invoker, edge_event: EventFactory) -> None:
    invoked = await edge_invoke(FUNCTIONS / "rewrite", edge_event.viewer_request("/docs/"))
    assert invoked.accepted
    assert invoked.value["uri"] == "/docs/index.html"  # type: ignore[index]
    assert any("rewriting /docs/" in line for line in invoked.logs)
    assert invoked.duration_ms > 0
    assert invoked.assert_valid() is invoked

    auth = Function(FUNCTIONS / "auth", handler="app.handler")
    denied = await edge_invoke(auth, trigger="viewer-request")
    assert denied.verdict.outcome is FunctionOutcome.RESPONSE

    broken = await edge_invoke(FUNCTIONS / "fragile", edge_event.viewer_request("/", cookies="a=1"))
    assert isinstance(broken.error, LambdaExecutionError)
    assert broken.verdict.status == 503
    refused = await edge_invoke(FUNCTIONS / "fragile", edge_event.viewer_request("/?q"))
    assert refused.verdict.outcome is FunctionOutcome.VALIDATION_ERROR
    with pytest.raises(ResultRefused, match="read-only header"):
        refused.assert_valid()


async def test_quotas_and_arguments_are_checked(tmp_path: Path) -> None:
    invoker = Invoker()
    with pytest.raises(ValueError, match="viewer-request allows at most 5 s"):
        await invoker(Function(FUNCTIONS / "echo", timeout=30), trigger="viewer-request")
    with pytest.raises(TypeError, match="give an event"):
        await invoker(FUNCTIONS / "echo")
    await invoker.aclose()
