"""Trace records: labels, start offsets, lookups."""

from edgesim.trace import (
    BehaviorOutcome,
    CacheOutcome,
    OriginOutcome,
    Stage,
    Trace,
    TraceRecord,
)


def test_steps_and_find() -> None:
    trace = Trace(request_id="r")
    trace.add(TraceRecord(Stage.BEHAVIOR, BehaviorOutcome.MATCHED, detail="*"))
    trace.add(TraceRecord(Stage.ORIGIN, OriginOutcome.RESPONSE, 1.5, status=200))
    trace.add(TraceRecord(Stage.ORIGIN, OriginOutcome.ERROR_504))
    assert trace.steps == ["behavior:matched", "origin:200", "origin:error-504"]
    found = trace.find(Stage.ORIGIN)
    assert found is not None and found.outcome is OriginOutcome.ERROR_504
    assert trace.find(Stage.CACHE) is None


def test_records_carry_start_offsets_in_order() -> None:
    trace = Trace(request_id="r")
    trace.add(TraceRecord(Stage.CACHE, CacheOutcome.MISS))
    trace.add(TraceRecord(Stage.ORIGIN, OriginOutcome.RESPONSE, 0.0, status=200))
    given = TraceRecord(Stage.CACHE, CacheOutcome.STORE, start_ms=7.0)
    trace.add(given)
    first, second, third = trace.records
    assert first.start_ms is not None and second.start_ms is not None
    assert 0.0 <= first.start_ms <= second.start_ms
    assert third.start_ms == 7.0  # an offset given by the caller is kept


def test_a_record_that_took_time_starts_before_it_was_added() -> None:
    trace = Trace(request_id="r", started=0.0)
    trace.add(TraceRecord(Stage.ORIGIN, OriginOutcome.RESPONSE, duration_ms=5.0, status=200))
    (record,) = trace.records
    assert record.start_ms is not None
    # now - 5 ms, measured from the trace's start
    assert record.start_ms + record.duration_ms >= 5.0


def test_every_outcome_is_a_constant() -> None:
    for record in (
        TraceRecord(Stage.CACHE, CacheOutcome.HIT),
        TraceRecord(Stage.BEHAVIOR, BehaviorOutcome.MATCHED),
    ):
        assert record.label == f"{record.stage.value}:{record.outcome.value}"


def test_a_record_is_frozen_and_compares_by_its_fields() -> None:
    import dataclasses

    import pytest

    record = TraceRecord(Stage.ORIGIN, OriginOutcome.RESPONSE, 1.5, status=200)
    assert record == TraceRecord(Stage.ORIGIN, OriginOutcome.RESPONSE, 1.5, status=200)
    assert record != TraceRecord(Stage.ORIGIN, OriginOutcome.RESPONSE, 1.5, status=404)
    assert hash(record) == hash(TraceRecord(Stage.ORIGIN, OriginOutcome.RESPONSE, 1.5, status=200))
    assert dataclasses.asdict(record)["status"] == 200
    assert "status=200" in repr(record)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.status = 500  # type: ignore[misc]
