from __future__ import annotations

import pytest

from edgesim.testing import FunctionCheckFailed, Invoker, check_function, strategies
from tests.testing.conftest import FUNCTIONS


async def test_a_function_within_the_rules_passes(edge_invoke: Invoker) -> None:
    report = await check_function(
        FUNCTIONS / "rewrite", "viewer-request", max_examples=15, invoker=edge_invoke
    )
    assert (report.function, report.examples) == ("rewrite", 15)


async def test_the_smallest_refused_event_is_reported_with_cloudfronts_rule() -> None:
    only_queries = strategies.events("viewer-request").filter(
        lambda e: "cookie" not in e["Records"][0]["cf"]["request"]["headers"]
    )
    with pytest.raises(FunctionCheckFailed) as failed:
        await check_function(
            FUNCTIONS / "fragile", "viewer-request", events=only_queries, max_examples=200
        )
    message = str(failed.value)
    assert "viewer-request function 'fragile' gets 502 LambdaValidationError" in message
    assert "read-only header" in message
    assert "event: {" in message
    request = failed.value.invoked.event["Records"][0]["cf"]["request"]
    assert len(request["querystring"]) <= 3  # shrunk: one short parameter


async def test_a_function_that_raises_is_reported() -> None:
    no_query = strategies.events("viewer-request").filter(
        lambda e: not e["Records"][0]["cf"]["request"]["querystring"]
    )
    with pytest.raises(FunctionCheckFailed, match="503 LambdaExecutionError") as failed:
        await check_function(
            FUNCTIONS / "fragile", "viewer-request", events=no_query, max_examples=200
        )
    assert "ValueError: cookies are not handled" in str(failed.value)
