"""Trace records."""

from edgesim.trace import Stage, Trace, TraceRecord


def test_steps_and_find() -> None:
    trace = Trace(request_id="r")
    trace.add(TraceRecord(Stage.ROUTING, "*"))
    trace.add(TraceRecord(Stage.ORIGIN, "200", 1.5))
    trace.add(TraceRecord(Stage.ORIGIN, "504"))
    assert trace.steps == ["routing:*", "origin:200", "origin:504"]
    found = trace.find(Stage.ORIGIN)
    assert found is not None and found.outcome == "504"
    assert trace.find(Stage.CACHE) is None
