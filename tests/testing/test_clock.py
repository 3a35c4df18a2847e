from __future__ import annotations

import pytest

from edgesim.testing import FakeClock
from edgesim.types import Clock


def test_time_moves_only_when_told() -> None:
    clock: Clock = FakeClock(100.0)
    assert clock() == 100.0
    assert isinstance(clock, FakeClock)
    assert clock.advance(60) == 160.0
    assert clock() == 160.0
    clock.set(50.0)
    assert clock() == 50.0


def test_it_never_advances_backward() -> None:
    with pytest.raises(ValueError, match="only moves forward"):
        FakeClock().advance(-1)
