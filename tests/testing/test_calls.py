from __future__ import annotations

import pytest

import edgesim.testing
from edgesim.exceptions import LambdaExecutionError
from edgesim.frontdoors import console
from edgesim.runtime import calls
from edgesim.testing.calls import CallRecorder
from edgesim.testing.events import viewer_request
from edgesim.types import EventType, Invocation


class _Value:
    def __init__(self, value: object) -> None:
        self.value = value


class _Runtime:
    """Logs like a pool, from inside the invocation; fails when the uri says so."""

    def __init__(self) -> None:
        self.sink: CallRecorder | None = None

    async def invoke(self, name: str, event: dict[str, object]) -> Invocation:
        assert self.sink is not None
        self.sink.sink(name, ["START", "inside"])
        request = event["Records"][0]["cf"]["request"]  # type: ignore[index]
        if request["uri"] == "/fail":
            raise LambdaExecutionError("Exception: boom")
        return _Value(request)

    async def aclose(self) -> None:
        return None


async def test_calls_are_filed_by_request_id_with_value_error_and_logs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    runtime = _Runtime()
    recorder = CallRecorder(runtime, echo=True)
    runtime.sink = recorder
    event = viewer_request("/a", request_id="R1")
    await recorder.invoke("f", event)
    # a line the pipeline logs after the call returned lands on that call
    recorder.sink("f", ["Validation note"])
    with pytest.raises(LambdaExecutionError):
        await recorder.invoke("f", viewer_request("/fail", request_id="R2"))
    [ok] = recorder.calls_for("R1")
    assert ok.trigger is EventType.VIEWER_REQUEST
    assert ok.event is event
    assert ok.value == event["Records"][0]["cf"]["request"]
    assert ok.logs == ["START", "inside", "Validation note"]
    [failed] = recorder.forget("R2")
    assert isinstance(failed.error, LambdaExecutionError)
    assert failed.value is None
    assert recorder.calls_for("R2") == []
    assert recorder.lines == ["START", "inside", "Validation note", "START", "inside"]
    assert "[f] inside" in capsys.readouterr().err


async def test_call_returns_the_record_without_raising() -> None:
    runtime = _Runtime()
    recorder = CallRecorder(runtime)
    runtime.sink = recorder
    call = await recorder.call("f", viewer_request("/fail", request_id="R3"))
    assert isinstance(call.error, LambdaExecutionError)
    assert recorder.calls_for("R3") == []


def test_the_kit_and_serve_share_one_call_record() -> None:
    assert edgesim.testing.FunctionCall is console.FunctionCall is calls.FunctionCall
    assert console.current_call is calls.current_call
    assert issubclass(CallRecorder, calls.RecordingInvoker)
    assert issubclass(console.CorrelatedRuntime, calls.RecordingInvoker)
