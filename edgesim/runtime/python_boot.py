"""Start the Python worker program from cached bytecode.

``python -I -S -B python_boot.py WORKER CACHE_DIR [worker options]`` runs ``WORKER`` (the
worker program, ``python_worker.py``) as ``__main__``, exactly as ``python WORKER [options]``
would, except that its compiled code is read from, or written to, ``CACHE_DIR`` (a private
``sys.pycache_prefix``): Python never caches a script's own bytecode, and compiling the worker
is about a tenth of a cold start. The function's own modules are imported as before, with
bytecode writing off (``-B``), as on Lambda, where the code folder is read-only. An empty
``CACHE_DIR`` caches nothing.

Like the worker, this program is standalone: it imports nothing from edgesim.
"""

import sys
import types
from importlib.machinery import SourceFileLoader


def _load(path: str, cache_dir: str) -> types.CodeType:
    if cache_dir:
        sys.dont_write_bytecode, sys.pycache_prefix = False, cache_dir
    try:
        code = SourceFileLoader("__main__", path).get_code("__main__")
    finally:
        sys.dont_write_bytecode, sys.pycache_prefix = True, None
    if code is None:
        raise SystemExit(f"python_boot.py: no code in {path}")
    return code


def _run() -> None:
    if len(sys.argv) < 3:
        raise SystemExit("usage: python_boot.py WORKER CACHE_DIR [worker options]")
    path, cache_dir = sys.argv[1], sys.argv[2]
    code = _load(path, cache_dir)
    del sys.argv[1:3]
    sys.argv[0] = path
    # A fresh __main__, as for ``python WORKER``: nothing of this program shows in it.
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__builtins__ = __builtins__  # type: ignore[attr-defined]
    sys.modules["__main__"] = main
    exec(code, vars(main))


_run()
