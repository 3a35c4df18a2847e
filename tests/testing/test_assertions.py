from __future__ import annotations

import pytest

from edgesim.exceptions import LambdaLimitExceeded
from edgesim.testing import ResultRefused, assert_valid, judge
from edgesim.testing.calls import FunctionCall
from edgesim.testing.events import viewer_request
from edgesim.trace import FunctionOutcome
from edgesim.types import EventType


def test_an_accepted_result_passes_and_says_what_it_is() -> None:
    event = viewer_request("/a")
    request = event["Records"][0]["cf"]["request"]
    verdict = assert_valid(request, "viewer-request", event=event)
    assert verdict.accepted and verdict.status is None
    assert verdict.outcome is FunctionOutcome.REQUEST
    generated = {"status": 302, "headers": {"location": [{"key": "Location", "value": "/b"}]}}
    assert assert_valid(generated, EventType.VIEWER_REQUEST).outcome is FunctionOutcome.RESPONSE


def test_a_refused_result_fails_in_cloudfronts_words() -> None:
    result = {
        "uri": "/a",
        "method": "GET",
        "headers": {"x-cache": [{"key": "X-Cache", "value": "1"}]},
    }
    with pytest.raises(ResultRefused) as refused:
        assert_valid(result, "viewer-request")
    message = str(refused.value)
    assert message.startswith(
        "CloudFront would answer 502 LambdaValidationError for this viewer-request"
    )
    assert "The Lambda function result failed validation: " in message
    assert "X-Cache" in message
    assert '"uri": "/a"' in message
    assert refused.value.verdict.status == 502


def test_the_event_decides_what_counts_as_a_change() -> None:
    event = viewer_request("/a", headers={"Via": "1.1 proxy"})
    request = event["Records"][0]["cf"]["request"]
    assert judge(request, event=event).accepted  # Via as received is fine
    assert not judge(request, "viewer-request").accepted  # against the default event it is added


def test_function_calls_and_errors_are_judged_too() -> None:
    event = viewer_request("/a")
    failed = FunctionCall(
        "f", EventType.VIEWER_REQUEST, "R", event, error=LambdaLimitExceeded("Task timed out")
    )
    with pytest.raises(ResultRefused, match="503 LambdaLimitExceeded.*\n  Task timed out"):
        assert_valid(failed)
    with pytest.raises(TypeError, match="give the trigger"):
        judge({})
