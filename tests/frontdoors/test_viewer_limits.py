"""The viewer limits: the connection budget and what the open-files limit leaves room for."""

from __future__ import annotations

import resource

import pytest

from edgesim.frontdoors.viewer_limits import (
    ACCEPT_BATCH,
    ConnectionBudget,
    default_max_connections,
    parser_limits,
)
from edgesim.pipeline.routing import MAX_REQUEST_SIZE


def test_the_budget_evicts_the_longest_idle_and_never_a_busy_connection() -> None:
    closed: list[str] = []

    class Fake:
        def __init__(self, name: str) -> None:
            self.name = name

        def evict(self) -> None:
            closed.append(self.name)

    budget = ConnectionBudget(2)
    a, b, c, d = Fake("a"), Fake("b"), Fake("c"), Fake("d")
    assert budget.opened(a)
    assert budget.opened(b)
    budget.busy(a)
    assert budget.opened(c)
    assert closed == ["b"]
    budget.closed(b)
    budget.busy(c)
    assert budget.opened(d) is False
    assert closed == ["b"]


def test_the_budget_counts_what_closes() -> None:
    class Fake:
        def evict(self) -> None:
            raise AssertionError("nothing is evicted below the limit")

    budget = ConnectionBudget(1)
    first = Fake()
    assert budget.opened(first) and budget.open == 1
    budget.closed(first)
    assert budget.open == 0
    assert budget.opened(Fake())


def test_room_is_kept_for_workers_files_and_one_accept_batch_per_listener(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _: (4096, 4096))
    one, two = default_max_connections(1), default_max_connections(2)
    assert one == 4096 - 1024 - ACCEPT_BATCH
    assert two == one - ACCEPT_BATCH
    monkeypatch.setattr(resource, "getrlimit", lambda _: (64, 64))
    assert default_max_connections(1) == 16  # never below a handful


def test_the_parser_allows_more_than_cloudfront_so_the_pipeline_counts_exactly() -> None:
    limits = parser_limits()
    assert limits["max_line_size"] > MAX_REQUEST_SIZE
    assert limits["max_field_size"] > MAX_REQUEST_SIZE
    # The shortest header line is four bytes: a head within CloudFront's limit never has more.
    assert limits["max_headers"] > MAX_REQUEST_SIZE // 4
