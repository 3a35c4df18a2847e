"""``edgesim serve``'s command line: options read as the user means them, refused clearly."""

from __future__ import annotations

import argparse

import pytest

from edgesim.cli import main
from edgesim.frontdoors import event_loop
from edgesim.frontdoors.serve_command import size


def test_cache_size_accepts_units() -> None:
    assert size("256MiB") == 256 * 1024 * 1024
    assert size("64mb") == 64_000_000
    assert size("1000") == 1000
    with pytest.raises(argparse.ArgumentTypeError):
        size("lots")


def test_an_unknown_loop_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--loop", "trio"])
    assert exit_.value.code == 2
    assert "--loop" in capsys.readouterr().err


def test_serve_refuses_a_loop_that_is_not_installed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(event_loop, "available", lambda: False)
    assert main(["serve", "--loop", "uvloop", "--no-reload"]) == 2
    assert "uvloop is not installed (pip install uvloop)" in capsys.readouterr().out
