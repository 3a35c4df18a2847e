"""The Python worker's boot: the worker program as ``__main__``, its bytecode cached privately.

A stand-in program takes the worker's place: it reports what a script run as ``__main__``
would see, and imports a module from beside it, as a function's code is imported. For the
modules the worker loads by path from beside it, the real worker program runs beside a stand-in
``python_protocol.py`` that reports and ends the program as it is loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from edgesim.runtime.launch import PYTHON_BOOT, PYTHON_WORKER

PROGRAM = """\
import json, sys
import helper
print(json.dumps({
    "name": __name__,
    "file": __file__,
    "argv": sys.argv,
    "main_is_this": sys.modules["__main__"].__dict__ is globals(),
    "dont_write_bytecode": sys.dont_write_bytecode,
    "pycache_prefix": sys.pycache_prefix,
    "says": helper.SAYS,
}))
"""


SIBLING = """\
import json, sys
print(json.dumps({
    "name": __name__,
    "says": SAYS,
    "dont_write_bytecode": sys.dont_write_bytecode,
    "pycache_prefix": sys.pycache_prefix,
}))
raise SystemExit(0)
"""


def _run(program: Path, cache_dir: str, *options: str) -> dict[str, object]:
    # The folder of the program is on the path as a function's code folder is in a worker.
    env = {"PYTHONPATH": str(program.parent), "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-S", "-B", str(PYTHON_BOOT), str(program), cache_dir, *options]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 0, done.stderr
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


def _program(folder: Path, says: str = "A") -> Path:
    (folder / "helper.py").write_text(f"SAYS = {says!r}\n")
    program = folder / "program.py"
    program.write_text(PROGRAM)
    return program


def test_the_program_runs_as_main_with_its_own_argv(tmp_path: Path) -> None:
    program = _program(tmp_path)
    seen = _run(program, str(tmp_path / "cache"), "--in-fd", "3")
    assert seen["name"] == "__main__" and seen["main_is_this"] is True
    assert seen["file"] == str(program)
    assert seen["argv"] == [str(program), "--in-fd", "3"]
    assert seen["says"] == "A"


def test_the_program_is_compiled_once_into_the_cache_and_nothing_else_is(tmp_path: Path) -> None:
    program = _program(tmp_path)
    cache = tmp_path / "cache"
    seen = _run(program, str(cache))
    # The function's own imports write no bytecode, beside them or in the cache (-B, as the
    # read-only code folder of Lambda), and the program sees no prefix of ours.
    assert seen["dont_write_bytecode"] is True and seen["pycache_prefix"] is None
    cached = [path.name for path in cache.rglob("*.pyc")]
    assert cached == [f"program.{sys.implementation.cache_tag}.pyc"]
    assert not list(tmp_path.glob("__pycache__"))


def test_a_second_start_reads_the_cached_code(tmp_path: Path) -> None:
    program = _program(tmp_path)
    cache = tmp_path / "cache"
    _run(program, str(cache))
    # Same size and time stamp, other text (which would fail: the helper has no SAYZ): only
    # the cached code can still print "A".
    stamp = program.stat()
    program.write_text(PROGRAM.replace('"says": helper.SAYS', '"says": helper.SAYZ'))
    os.utime(program, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert program.stat().st_size == stamp.st_size
    assert _run(program, str(cache))["says"] == "A"


def test_without_a_cache_folder_nothing_is_cached(tmp_path: Path) -> None:
    program = _program(tmp_path)
    assert _run(program, "")["says"] == "A"
    assert not list(tmp_path.rglob("*.pyc"))


def _sibling(says: str) -> str:
    return SIBLING.replace("SAYS", repr(says))


def _worker_beside(folder: Path, says: str) -> Path:
    worker = folder / "python_worker.py"
    shutil.copyfile(PYTHON_WORKER, worker)
    (folder / "python_protocol.py").write_text(_sibling(says))
    return worker


def _cached(cache: Path, name: str) -> Path:
    # The cache mirrors the source's absolute path, one file per Python version.
    return cache / f"{name}.{sys.implementation.cache_tag}.pyc"


def test_a_sibling_of_the_worker_is_cached_reused_and_recompiled_once_edited(
    tmp_path: Path,
) -> None:
    worker = _worker_beside(tmp_path, "A")
    cache = tmp_path / "cache"
    seen = _run(worker, str(cache))
    assert seen["name"] == "_edgesim_protocol" and seen["says"] == "A"
    # The cache is on only while compiling: the sibling, like the function's code, runs with
    # bytecode writing off and no prefix of ours.
    assert seen["dont_write_bytecode"] is True and seen["pycache_prefix"] is None
    mirror = cache / tmp_path.relative_to(tmp_path.anchor)
    assert sorted(path.name for path in mirror.glob("*.pyc")) == [
        _cached(mirror, "python_protocol").name,
        _cached(mirror, "python_worker").name,
    ]
    assert not list(tmp_path.glob("__pycache__"))
    # Same size and time stamp, other text: only the cached code can still say "A".
    sibling = tmp_path / "python_protocol.py"
    stamp = sibling.stat()
    sibling.write_text(_sibling("B"))
    os.utime(sibling, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert _run(worker, str(cache))["says"] == "A"
    # Edited as a source is edited (a new time stamp): compiled again, and cached again.
    sibling.write_text(_sibling("Edited"))
    os.utime(sibling, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 2_000_000_000))
    assert _run(worker, str(cache))["says"] == "Edited"
    assert b"Edited" in _cached(mirror, "python_protocol").read_bytes()


def test_a_cache_that_cannot_be_written_only_costs_the_compiling(tmp_path: Path) -> None:
    worker = _worker_beside(tmp_path, "A")
    # A file where the cache folder would be: nothing can be written under it (root included).
    blocked = tmp_path / "cache"
    blocked.write_text("not a folder")
    seen = _run(worker, str(blocked))
    assert seen["says"] == "A" and seen["pycache_prefix"] is None
    assert not list(tmp_path.rglob("*.pyc"))


def test_a_plain_run_of_the_worker_loads_its_sibling_uncached(tmp_path: Path) -> None:
    worker = _worker_beside(tmp_path, "A")
    command = [sys.executable, "-I", "-S", "-B", str(worker)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["says"] == "A"
    assert not list(tmp_path.rglob("*.pyc"))
