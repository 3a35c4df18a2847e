"""A wall clock that moves only when a test says so.

The cache reads time through :class:`edgesim.types.Clock`; handing an edge a :class:`FakeClock`
lets a test expire a cached object with ``clock.advance(3600)`` instead of sleeping an hour.
"""

from __future__ import annotations

__all__ = ["FakeClock"]

# 2027-01-15: a fixed, unremarkable instant, so cache dates in a test's output never change.
DEFAULT_START = 1_800_000_000.0


class FakeClock:
    """Wall-clock seconds since the epoch, frozen until :meth:`advance` or :meth:`set`.

    Satisfies :class:`edgesim.types.Clock`: pass it as ``edge(config, clock=...)``. Only cache
    time follows it; function timeouts and durations stay real.
    """

    def __init__(self, start: float = DEFAULT_START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (never backward) and return the new time."""
        if seconds < 0:
            raise ValueError(f"a clock only moves forward; got advance({seconds})")
        self.now += seconds
        return self.now

    def set(self, now: float) -> None:
        """Jump to ``now`` seconds since the epoch, forward or back."""
        self.now = now

    def __repr__(self) -> str:
        return f"FakeClock(now={self.now})"
