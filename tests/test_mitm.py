"""``python -m edgesim.mitm --path``: the addon's file, found without mitmproxy or the pipeline."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgesim.mitm import ADDON_PATH, main

ROOT = ADDON_PATH.parent.parent.parent


def test_path_names_the_addon_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "edgesim.mitm", "--path"],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.stdout.strip() == str(ADDON_PATH)
    assert ADDON_PATH.is_file() and ADDON_PATH.parts[-2:] == ("frontdoors", "mitm.py")


def test_anything_else_prints_the_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--bogus"]) == 2
    assert "--path" in capsys.readouterr().err
    assert main(["--help"]) == 0


def test_it_loads_neither_mitmproxy_nor_the_pipeline() -> None:
    code = (
        "import sys, edgesim.mitm;"
        "print(' '.join(m for m in sys.modules if m.startswith(('mitmproxy', 'edgesim.'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout.split()
    assert loaded == ["edgesim.mitm"]
