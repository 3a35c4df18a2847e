"""What `pip install edgesim` gives a user: a wheel with its data files, metadata and command.

The quick tests build a wheel from a copy of the source (the tree stays clean), read it, and
run `edgesim --version` from it alone; the slow one installs the wheel with its dependencies in
a fresh venv and runs the installed `edgesim` command, as the README's install line does.
"""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

import edgesim

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "edgesim", source / "edgesim", ignore=shutil.ignore_patterns("__pycache__")
    )
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(source)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (built,) = out.glob("edgesim-*.whl")
    return built


def test_the_wheel_carries_license_data_and_metadata_and_runs_alone(
    wheel: Path, tmp_path: Path
) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(archive.read(metadata_name))
        entry_points = archive.read(metadata_name.replace("METADATA", "entry_points.txt"))
    for shipped in ("py.typed", "distribution.schema.json", "runtime/node_worker.js"):
        assert f"edgesim/{shipped}" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert metadata["Version"] == edgesim.__version__
    assert metadata["License-Expression"] == "Apache-2.0"
    assert {"mitm", "testing"} <= set(metadata.get_all("Provides-Extra") or [])
    assert metadata.get_all("Project-URL") and metadata.get_all("Classifier")
    assert metadata["Keywords"] and "cloudfront" in metadata["Keywords"]
    assert b"edgesim = edgesim.cli:main" in entry_points
    assert b"edgesim = edgesim.testing.plugin" in entry_points
    # One test, so that the wheel is built once whatever worker runs it.
    _runs_from_the_wheel_alone(wheel, tmp_path)


def test_the_license_is_apache_2() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License")
    assert "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text


def _runs_from_the_wheel_alone(wheel: Path, tmp_path: Path) -> None:
    # Unpacked as pip would install it; its dependencies from this venv, whose .pth files
    # (the editable install's among them) are not read when it comes through PYTHONPATH.
    target = tmp_path / "installed"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    env = {**os.environ, "PYTHONPATH": f"{target}{os.pathsep}{sysconfig.get_paths()['purelib']}"}
    code = (
        "import sys, edgesim, edgesim.cli; print(edgesim.__file__); edgesim.cli.main(sys.argv[1:])"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, "--version"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    where, version = run.stdout.splitlines()
    assert where.startswith(str(target))
    assert version == f"edgesim {edgesim.__version__}"


@pytest.mark.slow
def test_pip_install_edgesim_in_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    # The README's line, `pip install edgesim`, with the wheel standing in for the index's.
    fresh = tmp_path / "venv"
    venv.create(fresh, with_pip=True)
    python = fresh / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", f"edgesim[testing] @ {wheel.as_uri()}"],
        check=True, timeout=600,
    )  # fmt: skip
    version = subprocess.run(
        [fresh / "bin" / "edgesim", "--version"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert version.stdout == f"edgesim {edgesim.__version__}\n"
    plugin = subprocess.run(
        [python, "-m", "pytest", "--fixtures", "-p", "no:cacheprovider"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "edge_invoke" in plugin.stdout
