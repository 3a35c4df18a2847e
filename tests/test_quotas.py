"""The Lambda@Edge quota table: one row per trigger, with the numbers of lambda-edge.md §2-3."""

from __future__ import annotations

import dataclasses

import pytest

from edgesim.quotas import (
    KB,
    LAMBDA_EDGE,
    MB,
    TriggerQuotas,
    function_memory_mb,
    function_timeout_s,
)
from edgesim.types import EventType

VR, OR = EventType.VIEWER_REQUEST, EventType.ORIGIN_REQUEST
ORS, VRS = EventType.ORIGIN_RESPONSE, EventType.VIEWER_RESPONSE


def test_every_trigger_has_a_row() -> None:
    assert set(LAMBDA_EDGE) == set(EventType)


@pytest.mark.parametrize("trigger", [VR, VRS])
def test_viewer_triggers_have_5_seconds_fixed_128_mb_and_40_kb(trigger: EventType) -> None:
    # §3.6, Docs-2023 and every older copy
    quotas = LAMBDA_EDGE[trigger]
    assert (quotas.timeout_max_s, quotas.memory_fixed_mb) == (5, 128)
    assert (quotas.response_max_bytes, quotas.package_max_bytes) == (40 * KB, 1 * MB)


@pytest.mark.parametrize("trigger", [OR, ORS])
def test_origin_triggers_have_30_seconds_lambdas_memory_and_1_mb(trigger: EventType) -> None:
    quotas = LAMBDA_EDGE[trigger]
    assert quotas.timeout_max_s == 30
    assert (quotas.memory_min_mb, quotas.memory_max_mb, quotas.memory_fixed_mb) == (
        128,
        10240,
        None,
    )
    assert (quotas.response_max_bytes, quotas.package_max_bytes) == (1 * MB, 50 * MB)


def test_request_bodies_seen_and_replaced() -> None:
    # §3.5 truncation, §2.4 replacement limits (base64 ones are 53.2 KB and 1.33 MB)
    assert LAMBDA_EDGE[VR].include_body_bytes == LAMBDA_EDGE[VR].replace_text_max_bytes == 40 * KB
    assert LAMBDA_EDGE[OR].include_body_bytes == LAMBDA_EDGE[OR].replace_text_max_bytes == 1 * MB
    assert (LAMBDA_EDGE[VR].replace_base64_max_chars, LAMBDA_EDGE[OR].replace_base64_max_chars) == (
        54_476,
        1_394_606,
    )


@pytest.mark.parametrize("trigger", [ORS, VRS])
def test_response_triggers_carry_no_request_body(trigger: EventType) -> None:
    quotas = LAMBDA_EDGE[trigger]
    assert quotas.include_body_bytes is None
    assert quotas.replace_text_max_bytes is quotas.replace_base64_max_chars is None


def test_the_table_cannot_be_changed() -> None:
    with pytest.raises(TypeError):
        LAMBDA_EDGE[VR] = LAMBDA_EDGE[OR]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        LAMBDA_EDGE[VR].timeout_max_s = 30  # type: ignore[misc]


def test_a_function_alone_is_held_to_the_widest_row() -> None:
    assert function_timeout_s() == (1, 30)
    assert function_memory_mb() == (128, 10240)
    viewer_only = {VR: LAMBDA_EDGE[VR], VRS: LAMBDA_EDGE[VRS]}
    assert (function_timeout_s(viewer_only), function_memory_mb(viewer_only)) == (
        (1, 5),
        (128, 128),
    )


def test_a_fixed_memory_is_a_range_of_one() -> None:
    row = dataclasses.replace(LAMBDA_EDGE[OR], memory_min_mb=512, memory_max_mb=512)
    assert isinstance(row, TriggerQuotas) and row.memory_fixed_mb == 512
