"""Shared by the launch tests: a fake ``python`` in a folder that stands in for ``PATH``."""

from __future__ import annotations

import stat
import sys
from pathlib import Path


def fake_python(directory: Path, name: str, script: str | None = None) -> Path:
    path = directory / name
    if script is None:
        path.symlink_to(sys.executable)
    else:
        path.write_text(script)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path
