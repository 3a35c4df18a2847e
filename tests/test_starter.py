"""edgesim init: a starter project that validates, passes its own tests, and overwrites nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from edgesim.cli import main
from edgesim.config import load_distribution
from edgesim.schema import SCHEMA_FILE, distribution_schema
from edgesim.starter import STARTER_FILES, write_starter


def test_init_writes_a_project_that_loads_and_passes_the_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", str(tmp_path / "site")]) == 0
    out = capsys.readouterr().out
    project = tmp_path / "site"
    assert sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()) == sorted(
        [*STARTER_FILES, "distribution.schema.json"]
    )
    assert "edgesim serve distribution.yaml" in out
    distribution = load_distribution(project / "distribution.yaml")
    assert {f.runtime for f in distribution.functions.values()} == {"python3.12", "nodejs20.x"}
    assert (project / "distribution.schema.json").read_text() == SCHEMA_FILE.read_text()
    text = (project / "distribution.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=distribution.schema.json\n")
    jsonschema.validate(yaml.safe_load(text), distribution_schema())


def test_init_overwrites_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "distribution.yaml").write_text("mine")
    assert main(["init", str(tmp_path)]) == 1
    assert "distribution.yaml" in capsys.readouterr().err
    assert (tmp_path / "distribution.yaml").read_text() == "mine"
    assert not (tmp_path / "functions").exists()
    with pytest.raises(FileExistsError):
        write_starter(tmp_path)


@pytest.mark.skipif(shutil.which("node") is None, reason="the starter has a Node.js function")
def test_the_starters_tests_pass(tmp_path: Path) -> None:
    write_starter(tmp_path)
    # Its own pytest.ini, not this project's configuration; the plugin comes from the install.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "PYTHON"))}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout
