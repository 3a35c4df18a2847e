"""The Python worker's boot: the worker program as ``__main__``, its bytecode cached privately.

A stand-in program takes the worker's place: it reports what a script run as ``__main__``
would see, and imports a module from beside it, as a function's code is imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from edgesim.runtime.launch import PYTHON_BOOT

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
