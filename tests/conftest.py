"""Shared fixtures: runtime pools (helpers in tests/runtime_helpers.py) and loopback origins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psutil
import pytest
import pytest_asyncio

from edgesim.runtime import FunctionPool
from tests.e2e.conftest import Origin, start_origin
from tests.runtime.helpers import LogRecorder, PoolFactory, spec_for

# Modules of a few long tests, each running its own pytest, build or server: they sort last by
# name, and with xdist whichever worker drew one of them last ran it while the other had
# nothing left. Run first, they share out among the workers, and the short tests even out
# the end.
LONG_MODULES = (
    "tests/testing/test_plugin.py",
    "tests/test_starter.py",
    "tests/test_packaging.py",
    "tests/test_cli.py",
    "tests/test_containers.py",
    "tests/test_bench.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {module: place for place, module in enumerate(LONG_MODULES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture
async def make_pool() -> AsyncIterator[PoolFactory]:
    """Make pools for fixture functions; close them all and check no worker survives."""
    created: list[FunctionPool] = []
    pids: set[int] = set()

    def make(
        fixture: str, *, log_sink: LogRecorder | None = None, **overrides: Any
    ) -> FunctionPool:
        pool = FunctionPool(spec_for(fixture, **overrides), log_sink=log_sink)
        created.append(pool)
        return pool

    yield make
    for pool in created:
        pids.update(pool.worker_pids)
        await pool.aclose()
        assert pool.worker_pids == []
    assert not [pid for pid in pids if psutil.pid_exists(pid)]


@pytest.fixture
async def origins() -> AsyncIterator[tuple[Origin, Origin]]:
    """Two recording origins on loopback ports."""
    first, first_runner = await start_origin()
    second, second_runner = await start_origin()
    yield first, second
    await first_runner.cleanup()
    await second_runner.cleanup()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_origin() -> AsyncIterator[Origin]:
    """A recording origin shared by a module's tests (with its module-scoped edges)."""
    origin, runner = await start_origin()
    yield origin
    await runner.cleanup()
