"""Which runtimes a worker can be started with, and which interpreter or ``node`` runs each:
found on ``PATH`` (then under pyenv), checked for its version, chosen once, or refused up front.

Fake ``python`` and ``node`` programs on a temporary ``PATH`` stand in for missing, old or broken
installations.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import uuid
from pathlib import Path

import pytest

from edgesim.cli import main
from edgesim.exceptions import RuntimeUnavailableError
from edgesim.runtime import FunctionPool, FunctionRuntime, FunctionSpec, launch
from edgesim.runtime.launch import (
    NODE_RUNTIMES,
    PYTHON_RUNTIMES,
    WORKER_PATH,
    check_runtime,
    resolve_node,
    resolve_python,
    worker_command,
)
from tests.runtime.helpers import CURRENT, spec_for
from tests.runtime.launch_helpers import fake_python
from tests.runtime.node_worker_helpers import NODE_FIXTURES


@pytest.mark.parametrize("runtime", ["python2.7", "ruby3.3", "nodejs4.3"])
def test_a_runtime_that_cannot_run_is_refused_up_front(runtime: str) -> None:
    with pytest.raises(RuntimeUnavailableError) as caught:
        FunctionPool(spec_for("echo", name="legacy-fn", runtime=runtime))
    assert "'legacy-fn'" in str(caught.value) and runtime in str(caught.value)


def test_every_python_runtime_passes_the_check() -> None:
    for runtime in PYTHON_RUNTIMES:
        check_runtime(spec_for("echo", runtime=runtime))


def test_an_unknown_runtime_is_refused_with_the_known_ones_listed() -> None:
    with pytest.raises(RuntimeUnavailableError) as caught:
        check_runtime(spec_for("echo", name="fn", runtime="java21"))
    message = str(caught.value)
    assert "'fn'" in message and "'java21'" in message
    assert [name for name in [*PYTHON_RUNTIMES, *NODE_RUNTIMES] if name not in message] == []


def _fake_node(directory: Path, script: str = "echo v20.11.0") -> Path:
    directory.mkdir(exist_ok=True)
    node = directory / "node"
    node.write_text(f"#!/bin/sh\n{script}\n")
    node.chmod(0o755)
    return node


def test_a_node_runtime_needs_the_node_worker_program(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(launch, "NODE_WORKER", tmp_path / "missing_worker.js")
    monkeypatch.setenv("PATH", str(_fake_node(tmp_path / "bin").parent))
    with pytest.raises(RuntimeUnavailableError) as caught:
        check_runtime(spec_for("echo", name="fn", runtime="nodejs20.x"))
    message = str(caught.value)
    assert "'fn'" in message and "nodejs20.x" in message and "missing_worker.js" in message


async def test_a_node_runtime_needs_node_on_path_and_runs_the_node_worker_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    program = tmp_path / "node_worker.js"
    program.write_text("")
    monkeypatch.setattr(launch, "NODE_WORKER", program)
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    spec = spec_for("echo", name="fn", runtime="nodejs20.x")
    with pytest.raises(RuntimeUnavailableError) as caught:
        check_runtime(spec)
    assert "'fn'" in str(caught.value) and "`node`" in str(caught.value)
    node = _fake_node(tmp_path / "bin")
    monkeypatch.setenv("PATH", str(node.parent))
    check_runtime(spec)
    command = await worker_command(spec)
    assert command[0] == str(node) and str(program) in command


@pytest.mark.parametrize(
    ("script", "problem"),
    [
        (None, ", and there is no `node` on PATH"),
        ("echo v16.20.2", "; found v16.20.2 at {node}"),
        ("exit 1", "; `node --version` fails at {node}"),
        ("echo hello", "; {node} reports version 'hello'"),
    ],
)
def test_a_missing_or_old_node_stops_the_runtime_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str | None, problem: str
) -> None:
    node = tmp_path / "bin" / "node"
    if script is None:
        node.parent.mkdir()
    else:
        _fake_node(node.parent, script)
    monkeypatch.setenv("PATH", str(node.parent))
    spec = FunctionSpec("rewrite", "nodejs20.x", NODE_FIXTURES / "echo", "index.handler", 128, 5)
    with pytest.raises(RuntimeUnavailableError) as caught:
        FunctionRuntime([spec])
    expected = "function 'rewrite': runtime nodejs20.x needs Node.js 18 or newer"
    assert str(caught.value) == expected + problem.format(node=node)


def test_edgesim_serve_refuses_to_start_without_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    dist = tmp_path / "d.yaml"
    dist.write_text(
        f"""
origins: {{site: {{s3: "{site}"}}}}
functions:
  rewrite: {{runtime: nodejs20.x, code: "{NODE_FIXTURES / "echo"}", handler: index.handler}}
behaviors:
  - {{path_pattern: "*", origin: site, functions: {{viewer-request: rewrite}}}}
"""
    )
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["serve", str(dist), "--port", "0", "--admin-port", "0"]) == 1
    # The code check at start finds it first, and names the file and the key.
    assert capsys.readouterr().err == (
        f"edgesim: {dist}: functions.rewrite.runtime: function 'rewrite': runtime nodejs20.x "
        "needs Node.js 18 or newer, and there is no `node` on PATH\n"
    )


def test_a_node_of_another_major_runs_the_runtime_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    node = _fake_node(tmp_path / "bin", "echo v18.20.4")
    monkeypatch.setenv("PATH", str(node.parent))
    with caplog.at_level(logging.WARNING, logger="edgesim.runtime.launch"):
        for name in ("a", "b"):
            assert resolve_node("nodejs22.x", function_name=name) == str(node)
        assert resolve_node("nodejs18.x", function_name="c") == str(node)
    [record] = caplog.records
    assert record.getMessage() == (
        f"runtime nodejs22.x (first needed by function 'a') runs on Node.js v18.20.4 at {node}"
    )


async def test_the_runtime_named_interpreter_on_path_is_used(tmp_path: Path) -> None:
    fake_python(tmp_path, CURRENT)
    if CURRENT not in PYTHON_RUNTIMES:
        pytest.skip(f"edgesim knows no runtime for {CURRENT}")
    found = await resolve_python(CURRENT, function_name="fn", search_path=str(tmp_path))
    assert Path(found).resolve() == Path(sys.executable).resolve()


async def test_a_broken_shim_falls_back_to_the_current_interpreter_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = fake_python(tmp_path, "python3.12", "#!/bin/sh\nexit 1\n")
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    wrong = fake_python(other_dir, "python3.12") if CURRENT != "python3.12" else None
    search_path = os.pathsep.join([str(tmp_path), str(other_dir)])
    with caplog.at_level(logging.WARNING, logger="edgesim.runtime.launch"):
        first = await resolve_python("python3.12", function_name="fn-a", search_path=search_path)
        second = await resolve_python("python3.12", function_name="fn-b", search_path=search_path)
    if wrong is not None:
        assert first == second == sys.executable
        [record] = caplog.records
        assert f"{broken} does not run" in record.getMessage()
        assert f"{wrong} is Python {sys.version_info.major}.{sys.version_info.minor}" in (
            record.getMessage()
        )
        assert "'fn-a'" in record.getMessage() and sys.executable in record.getMessage()
    else:
        assert Path(first).resolve() == Path(sys.executable).resolve()


async def test_no_interpreter_on_path_falls_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    empty = tmp_path / f"empty-{uuid.uuid4().hex}"
    empty.mkdir()
    with caplog.at_level(logging.WARNING, logger="edgesim.runtime.launch"):
        found = await resolve_python("python3.10", function_name="fn", search_path=str(empty))
    assert found == sys.executable
    assert "no python3.10 on PATH" in caplog.text


def _recording_python(directory: Path, name: str, reports: str) -> Path:
    """A fake interpreter that answers the probe with ``reports`` and records how it was run."""
    directory.mkdir(exist_ok=True)
    script = (
        "#!/bin/sh\n"
        f'echo "$@" > "{directory / "args"}"\n'
        f'env > "{directory / "env"}"\n'
        f"printf '{reports}'\n"
    )
    return fake_python(directory, name, script)


async def test_the_first_candidate_of_the_right_version_wins_and_reports_its_real_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("EDGESIM_HOST_MARKER", "must not leak")
    old, right, later = tmp_path / "old", tmp_path / "right", tmp_path / "later"
    _recording_python(old, "python3.12", "/opt/old/python3.12\\n3 9\\n")
    _recording_python(right, "python3.12", "/opt/real/bin/python3.12\\n3 12\\n")
    _recording_python(later, "python3.12", "/opt/later/python3.12\\n3 12\\n")
    search_path = os.pathsep.join(["", str(old), str(right), str(later)])
    with caplog.at_level(logging.WARNING, logger="edgesim.runtime.launch"):
        found = await resolve_python("python3.12", function_name="fn", search_path=search_path)
    assert found == "/opt/real/bin/python3.12"
    assert caplog.records == []
    assert not (later / "args").exists()
    # Probed the way a worker runs: isolated, no site, and a clean environment.
    assert (right / "args").read_text().split()[:3] == ["-I", "-S", "-c"]
    probe_env = dict(
        line.split("=", 1) for line in (right / "env").read_text().splitlines() if "=" in line
    )
    assert probe_env["PATH"] == WORKER_PATH
    assert "EDGESIM_HOST_MARKER" not in probe_env


async def test_the_choice_is_made_once_per_runtime_and_path(tmp_path: Path) -> None:
    fake = _recording_python(tmp_path / "bin", "python3.12", "/opt/cached/python3.12\\n3 12\\n")
    first = await resolve_python("python3.12", function_name="fn", search_path=str(fake.parent))
    fake.unlink()
    again = await resolve_python("python3.12", function_name="fn", search_path=str(fake.parent))
    assert first == again == "/opt/cached/python3.12"


async def test_simultaneous_first_cold_starts_share_one_lookup(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    count = bin_dir / "runs"
    script = f"#!/bin/sh\necho run >> \"{count}\"\nprintf '/opt/once/python3.12\\n3 12\\n'\n"
    fake_python(bin_dir, "python3.12", script)
    found = await asyncio.gather(
        *(
            resolve_python("python3.12", function_name=f"fn-{i}", search_path=str(bin_dir))
            for i in range(10)
        )
    )
    assert found == ["/opt/once/python3.12"] * 10
    assert count.read_text().splitlines() == ["run"]  # probed once, not ten times


async def test_pyenv_interpreters_are_tried_after_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "pyenv"
    for patch in ("3.12.1", "3.12.4"):
        bin_dir = root / "versions" / patch / "bin"
        bin_dir.mkdir(parents=True)
        _recording_python(bin_dir, "python3.12", f"/pyenv/{patch}/python3.12\\n3 12\\n")
    monkeypatch.setenv("PYENV_ROOT", str(root))
    empty = tmp_path / f"empty-{uuid.uuid4().hex}"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert await resolve_python("python3.12", function_name="fn") == "/pyenv/3.12.4/python3.12"
    on_path = tmp_path / f"path-{uuid.uuid4().hex}"
    _recording_python(on_path, "python3.12", "/opt/path/python3.12\\n3 12\\n")
    monkeypatch.setenv("PATH", str(on_path))
    assert await resolve_python("python3.12", function_name="fn") == "/opt/path/python3.12"
    # An explicit search path is searched alone.
    other = tmp_path / f"other-{uuid.uuid4().hex}"
    other.mkdir()
    found = await resolve_python("python3.12", function_name="fn", search_path=str(other))
    assert found == sys.executable


async def test_an_interpreter_that_hangs_is_given_up_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(launch, "_PROBE_TIMEOUT_S", 0.3)
    hangs = fake_python(tmp_path, "python3.12", "#!/bin/sh\nexec sleep 30\n")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="edgesim.runtime.launch"):
        found = await resolve_python("python3.12", function_name="fn", search_path=str(tmp_path))
    # Back before the stand-in's sleep would have ended: the probe gave up on it.
    assert time.monotonic() - started < 30
    assert found == sys.executable
    assert f"{hangs} does not run" in caplog.text


async def test_without_any_interpreter_the_runtime_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", "")
    with pytest.raises(RuntimeUnavailableError) as caught:
        await resolve_python("python3.10", function_name="fn", search_path=str(tmp_path))
    message = str(caught.value)
    assert "'fn'" in message and "python3.10" in message and "no fallback interpreter" in message
