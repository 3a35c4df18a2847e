"""The recording invoker: each call's record, its timing and value or error, the current call."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from edgesim.exceptions import LambdaExecutionError
from edgesim.runtime import InvocationReport, InvocationResult
from edgesim.runtime.calls import FunctionCall, RecordingInvoker, current_call
from edgesim.trace import FunctionOutcome
from edgesim.types import EventType, Invocation


def _event(request_id: object = "R1", event_type: object = "origin-request") -> dict[str, object]:
    config = {"requestId": request_id, "eventType": event_type}
    return {"Records": [{"cf": {"config": config, "request": {"uri": "/a"}}}]}


@dataclass
class _Value:
    value: object


class _Runtime:
    """Sees which call is current while it runs; fails, sleeps or reports when told."""

    def __init__(
        self, *, fail: bool = False, sleep_s: float = 0.0, report_ms: float | None = None
    ) -> None:
        self.fail = fail
        self.sleep_s = sleep_s
        self.report_ms = report_ms
        self.seen: list[FunctionCall | None] = []
        self.closed = False

    async def invoke(self, name: str, event: dict[str, object]) -> Invocation:
        self.seen.append(current_call())
        if self.sleep_s:
            await asyncio.sleep(self.sleep_s)
        if self.fail:
            raise LambdaExecutionError("Exception: boom")
        if self.report_ms is not None:
            report = InvocationReport("uuid", self.report_ms, 2, 128, 40, None)
            return InvocationResult({"uri": "/b"}, report)
        return _Value({"uri": "/b"})

    async def aclose(self) -> None:
        self.closed = True


async def test_a_call_is_recorded_and_current_while_and_after_it_runs() -> None:
    runtime = _Runtime()
    seen: list[tuple[FunctionCall, object]] = []
    invoker = RecordingInvoker(runtime, on_call=lambda call: seen.append((call, call.value)))
    event = _event()
    invocation = await invoker.invoke("auth", event)
    call = current_call()
    assert call is not None and runtime.seen == [call]
    assert seen == [(call, None)]  # on_call sees the call before the function runs
    assert (call.function, call.trigger, call.request_id) == (
        "auth",
        EventType.ORIGIN_REQUEST,
        "R1",
    )
    assert call.trigger is EventType.ORIGIN_REQUEST
    assert call.event is event
    assert call.value == invocation.value == {"uri": "/b"}
    assert call.error is None and call.logs == []
    assert call.duration_ms >= 0.0


async def test_a_failure_is_kept_on_the_call_which_stays_current() -> None:
    invoker = RecordingInvoker(_Runtime(fail=True, sleep_s=0.02))
    with pytest.raises(LambdaExecutionError):
        await invoker.invoke("auth", _event("R2"))
    call = current_call()
    assert call is not None and call.request_id == "R2"
    assert isinstance(call.error, LambdaExecutionError) and call.value is None
    assert call.duration_ms >= 15.0  # timed even though it failed


async def test_the_runtime_reported_duration_wins_over_the_wall_time() -> None:
    invoker = RecordingInvoker(_Runtime(sleep_s=0.02, report_ms=1.5))
    await invoker.invoke("auth", _event())
    call = current_call()
    assert call is not None and call.duration_ms == 1.5
    unreported = RecordingInvoker(_Runtime(sleep_s=0.02))
    await unreported.invoke("auth", _event())
    call = current_call()
    assert call is not None and call.duration_ms >= 15.0


@pytest.mark.parametrize(
    ("event", "request_id"),
    [
        ({}, ""),
        ({"Records": []}, ""),
        ({"Records": [{"cf": {"config": "not a mapping"}}]}, ""),
        (_event(request_id=7, event_type="no-such-trigger"), "7"),
        (_event(event_type=["unhashable"]), "R1"),
    ],
)
async def test_an_event_without_cloudfront_config_still_gets_a_record(
    event: dict[str, object], request_id: str
) -> None:
    invoker = RecordingInvoker(_Runtime())
    await invoker.invoke("f", event)
    call = current_call()
    assert call is not None and call.trigger is EventType.VIEWER_REQUEST
    assert call.request_id == request_id


async def test_each_task_has_its_own_current_call() -> None:
    runtime = _Runtime(sleep_s=0.01)
    invoker = RecordingInvoker(runtime)

    async def one(request_id: str) -> FunctionCall | None:
        await invoker.invoke("f", _event(request_id))
        return current_call()

    first, second = await asyncio.gather(one("A"), one("B"))
    assert first is not None and first.request_id == "A"
    assert second is not None and second.request_id == "B"
    assert {c.request_id for c in runtime.seen if c is not None} == {"A", "B"}


async def test_aclose_closes_the_runtime() -> None:
    runtime = _Runtime()
    await RecordingInvoker(runtime).aclose()
    assert runtime.closed


@pytest.mark.parametrize(
    ("outcome", "refused"),
    [
        (None, False),
        (FunctionOutcome.REQUEST, False),
        (FunctionOutcome.RESPONSE, False),
        (FunctionOutcome.VALIDATION_ERROR, True),
        (FunctionOutcome.EXECUTION_ERROR, True),
        (FunctionOutcome.LIMIT_EXCEEDED, True),
    ],
)
def test_refused_means_cloudfront_ended_the_request(
    outcome: FunctionOutcome | None, refused: bool
) -> None:
    call = FunctionCall("f", EventType.VIEWER_REQUEST, "R", {}, outcome=outcome)
    assert call.refused is refused
