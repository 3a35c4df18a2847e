"""What the runtime is given and hands back: function specs, reports, results, billing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from edgesim.runtime.spec import (
    FunctionSpec,
    InvocationReport,
    InvocationResult,
    billed_duration_ms,
)


def make_spec(**overrides: object) -> FunctionSpec:
    values: dict[str, object] = {
        "name": "viewer-request",
        "runtime": "python3.12",
        "code_dir": Path("functions/viewer"),
        "handler": "index.handler",
        "memory_mb": 128,
        "timeout_s": 5.0,
    }
    values.update(overrides)
    return FunctionSpec(**values)  # type: ignore[arg-type]


def make_report(**overrides: object) -> InvocationReport:
    values: dict[str, object] = {
        "request_id": "8f0c1a52-51f4-4d0c-9b43-0d7a2b3c4d5e",
        "duration_ms": 1.5,
        "billed_ms": 2,
        "memory_size_mb": 128,
        "max_memory_used_mb": 40,
        "init_duration_ms": None,
    }
    values.update(overrides)
    return InvocationReport(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("duration_ms", "billed"),
    [(0.0, 1), (0.001, 1), (1.0, 1), (1.0001, 2), (12.5, 13), (999.99, 1000), (3000.0, 3000)],
)
def test_billed_duration_rounds_up_to_the_millisecond_with_a_minimum_of_one(
    duration_ms: float, billed: int
) -> None:
    assert billed_duration_ms(duration_ms) == billed


def test_a_function_spec_defaults_to_lambda_edge_values() -> None:
    spec = make_spec()
    assert spec.reserved_concurrency is None  # unreserved, as in Lambda
    assert spec.region == "us-east-1"
    assert spec.version == "1"


def test_a_function_spec_is_immutable_and_compares_by_value() -> None:
    spec = make_spec()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.memory_mb = 256  # type: ignore[misc]
    assert spec == make_spec()
    assert spec != make_spec(version="2")
    assert {spec: "pool"}[make_spec()] == "pool"
    changed = dataclasses.replace(spec, memory_mb=256, region="eu-west-3")
    assert (changed.memory_mb, changed.region, changed.name) == (256, "eu-west-3", spec.name)
    assert spec.memory_mb == 128


def test_a_report_and_a_result_are_immutable_values() -> None:
    report = make_report(init_duration_ms=120.5)
    result = InvocationResult(value={"status": "200"}, report=report)
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.billed_ms = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.value = None  # type: ignore[misc]
    assert result == InvocationResult(
        value={"status": "200"}, report=make_report(init_duration_ms=120.5)
    )
    assert result.report.init_duration_ms == 120.5
    assert make_report().init_duration_ms is None
