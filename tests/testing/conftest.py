"""The test kit's own tests: functions written as users write them, in ./functions."""

from __future__ import annotations

from pathlib import Path

FUNCTIONS = Path(__file__).parent / "functions"
