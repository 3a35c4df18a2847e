"""python_debug.py: debugpy loaded into an isolated interpreter, and nothing else with it."""

from __future__ import annotations

import subprocess
import sys

from edgesim.runtime.debug import PYTHON_DEBUG, debugpy_dir

SCRIPT = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("debug", sys.argv[1])
debug = importlib.util.module_from_spec(spec)
spec.loader.exec_module(debug)
debugpy = debug.load_debugpy(sys.argv[2])
print(debugpy.__file__)
for name in ("yaml", "edgesim", "debugpy"):
    print(name, importlib.util.find_spec(name) is not None)
"""


def test_debugpy_loads_from_its_folder_alone_in_an_isolated_worker() -> None:
    folder = debugpy_dir()
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", SCRIPT, str(PYTHON_DEBUG), str(folder)],
        check=True,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout.split("\n")
    assert out[0] == str(folder / "__init__.py")
    # edgesim's environment stays out of reach: only debugpy came.
    assert out[1:4] == ["yaml False", "edgesim False", "debugpy True"]
