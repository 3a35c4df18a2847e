from __future__ import annotations

import pytest

from edgesim.http import Headers
from edgesim.testing.calls import FunctionCall
from edgesim.testing.response import Response, attach_outcomes
from edgesim.trace import BehaviorOutcome, FunctionOutcome, Stage, Trace, TraceRecord
from edgesim.types import EventType


def _response() -> Response:
    trace = Trace(request_id="R")
    event: dict[str, object] = {"Records": []}
    trace.add(TraceRecord(Stage.BEHAVIOR, BehaviorOutcome.MATCHED))
    trace.add(
        TraceRecord(
            Stage.VIEWER_REQUEST,
            FunctionOutcome.VALIDATION_ERROR,
            event=event,
            detail="The Lambda function result failed validation: ...",
        )
    )
    call = FunctionCall("f", EventType.VIEWER_REQUEST, "R", event, value={"x": 1}, logs=["a"])
    calls = attach_outcomes([call], trace)
    return Response(502, Headers([("X", "1")]), b'{"a": 1}', trace, calls)


def test_a_response_shows_its_calls_steps_and_logs() -> None:
    response = _response()
    assert response.steps == ["behavior:matched", "viewer-request:LambdaValidationError"]
    assert response.request_id == "R"
    assert response.json() == {"a": 1}
    assert response.text == '{"a": 1}'
    assert response.logs == ["a"]
    call = response.call("viewer-request")
    assert call.refused
    assert call.reason.startswith("The Lambda function result failed validation")
    assert response.result(EventType.VIEWER_REQUEST) == {"x": 1}
    assert response.event("viewer-request") == {"Records": []}


def test_asking_for_a_trigger_that_did_not_run_names_the_trace() -> None:
    with pytest.raises(LookupError, match="no origin-request function ran .*behavior:matched"):
        _response().call("origin-request")
