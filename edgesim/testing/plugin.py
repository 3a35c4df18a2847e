"""The edgesim pytest plugin: typed factory fixtures over :mod:`edgesim.testing`.

Registered through the ``pytest11`` entry point, so installing edgesim is all it takes;
``pytest -p no:edgesim`` turns it off. Async fixtures are declared with pytest-asyncio's own
decorator, so they work in its ``strict`` mode as well as ``auto``. Everything a fixture creates
(edges and their worker processes, ports, client sessions, origins) is closed when the test
ends. Function log lines are written to stderr as they come, so a failing test's report shows
them under "Captured stderr".

Relative paths (a distribution file, a function's ``code``) are taken from the test file's
folder.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

if TYPE_CHECKING:
    # The kit is imported by the fixtures that use it: every pytest run loads this plugin.
    from edgesim.testing.clock import FakeClock
    from edgesim.testing.config import ConfigInput, OriginsInput
    from edgesim.testing.events import EventFactory
    from edgesim.testing.harness import EdgeHarness
    from edgesim.testing.invoke import Invoker
    from edgesim.testing.origin import RecordingOrigin
    from edgesim.types import CacheStore, Clock

try:
    import pytest_asyncio

    _async_fixture: Callable[..., Any] = pytest_asyncio.fixture
except ImportError:  # pragma: no cover - another async plugin may still run the fixtures
    _async_fixture = pytest.fixture

__all__ = [
    "EdgeFactory",
    "edge",
    "edge_clock",
    "edge_event",
    "edge_invoke",
    "edge_origin",
]


class EdgeFactory(Protocol):
    """The ``edge`` fixture: ``await edge(config, origins=..., clock=..., serve=...)``."""

    def __call__(
        self,
        config: ConfigInput,
        *,
        origins: OriginsInput = None,
        clock: Clock | None = None,
        store: CacheStore | None = None,
        serve: bool = False,
    ) -> Awaitable[EdgeHarness]:
        """An edge for ``config`` (a distribution file, a dict or a ``Distribution``).

        ``origins`` replaces origins by id with test origins; ``clock`` defaults to the test's
        ``edge_clock``; ``serve=True`` runs it on a 127.0.0.1 port.
        """
        ...


def _test_dir(request: pytest.FixtureRequest) -> Path:
    return Path(request.path).parent


@pytest.fixture
def edge_clock() -> FakeClock:
    """A fake wall clock for cache time: ``edge_clock.advance(60)``. Edges made by the ``edge``
    fixture use it unless given another clock."""
    from edgesim.testing.clock import FakeClock

    return FakeClock()


@pytest.fixture
def edge_event() -> EventFactory:
    """Builders of CloudFront events: ``edge_event.viewer_request("/a?b=1", headers={...})``,
    ``edge_event("origin-response", "/a", status=404)``."""
    from edgesim.testing.events import EventFactory

    return EventFactory()


@_async_fixture
async def edge_origin() -> AsyncIterator[RecordingOrigin]:
    """A programmable origin on 127.0.0.1, named ``origin``: ``edge_origin.route(...)``,
    ``edge_origin.requests``. Use it as ``{"origins": {"site": edge_origin}}`` or
    ``edge(config, origins={"site": edge_origin})``."""
    from edgesim.testing.origin import RecordingOrigin

    origin = RecordingOrigin("origin")
    await origin.start()
    try:
        yield origin
    finally:
        await origin.aclose()


@_async_fixture
async def edge(request: pytest.FixtureRequest, edge_clock: FakeClock) -> AsyncIterator[EdgeFactory]:
    """Makes edges: ``e = await edge(config)``, then ``await e.get("/path?q=1")``."""
    from edgesim.testing.config import resolve_distribution
    from edgesim.testing.harness import EdgeHarness

    made: list[EdgeHarness] = []
    base_dir = _test_dir(request)

    async def make(
        config: ConfigInput,
        *,
        origins: OriginsInput = None,
        clock: Clock | None = None,
        store: CacheStore | None = None,
        serve: bool = False,
    ) -> EdgeHarness:
        distribution = resolve_distribution(config, origins=origins, base_dir=base_dir)
        harness = EdgeHarness(
            distribution, clock=clock or edge_clock, store=store, serve=serve, echo=True
        )
        made.append(harness)
        return await harness.start()

    try:
        yield make
    finally:
        for harness in reversed(made):
            await harness.aclose()


@_async_fixture
async def edge_invoke(request: pytest.FixtureRequest) -> AsyncIterator[Invoker]:
    """Runs one function on one event: ``await edge_invoke("functions/auth", event)`` gives the
    value, logs, duration and CloudFront's verdict."""
    from edgesim.testing.invoke import Invoker

    invoker = Invoker(base_dir=_test_dir(request), echo=True)
    try:
        yield invoker
    finally:
        await invoker.aclose()
