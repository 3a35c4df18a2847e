"""``edgesim serve`` put together in process: it refuses to start on broken code or a taken
port, and otherwise serves until it is stopped. (The real command line, with signals, is in
tests/test_cli.py.)"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from edgesim.frontdoors.console import Console
from edgesim.frontdoors.serving import ServeOptions, serve


def _distribution(tmp_path: Path, code: str) -> Path:
    function = tmp_path / "fn"
    function.mkdir()
    (function / "app.py").write_text(code)
    site = tmp_path / "site"
    site.mkdir()
    path = tmp_path / "d.yaml"
    path.write_text(
        f'origins: {{site: {{s3: "{site}"}}}}\n'
        f'functions: {{f: {{runtime: python3.12, code: "{function}", handler: app.handler}}}}\n'
        'behaviors: [{path_pattern: "*", origin: site, functions: {viewer-request: f}}]\n'
    )
    return path


async def test_a_function_that_does_not_load_stops_serve_before_it_listens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _distribution(tmp_path, "def handler(event, context:\n")
    options = ServeOptions(port=0, admin_port=0, reload=False)
    assert await serve([path], options, Console(fmt="text", quiet=True)) == 1
    err = capsys.readouterr().err
    assert "Runtime.UserCodeSyntaxError" in err and "functions.f" in err


async def test_a_taken_port_is_one_line_and_status_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _distribution(tmp_path, "def handler(event, context):\n    return event\n")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        options = ServeOptions(port=taken.getsockname()[1], admin_port=0, reload=False)
        assert await serve([path], options, Console(fmt="text", quiet=True)) == 1
    finally:
        taken.close()
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err
