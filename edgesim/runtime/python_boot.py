"""Start the Python worker program from cached bytecode.

``python -I -S -B python_boot.py WORKER CACHE_DIR [worker options]`` runs ``WORKER`` (the
worker program, ``python_worker.py``) as ``__main__``, exactly as ``python WORKER [options]``
would, except that compiled code is read from, or written to, ``CACHE_DIR`` (a private
``sys.pycache_prefix``): Python never caches a script's own bytecode, and compiling the worker
is about a tenth of a cold start. What is cached is the worker's own code and that of the
modules it loads by path from beside it (``python_protocol.py``, ``python_debug.py``): its
``__loader__`` is a :class:`CachedLoader`, and the worker loads its siblings with a loader of
the same class. Each file is cached as Python caches an import (one file per Python version,
by cache tag; recompiled when the source's time stamp or size changes; a cache that cannot be
written is only read). The function's own modules are imported as before, with bytecode
writing off (``-B``), as on Lambda, where the code folder is read-only. An empty ``CACHE_DIR``
caches nothing.

Like the worker, this program is standalone: it imports nothing from edgesim, and sticks to
Python 3.9 syntax, since it runs under the function's runtime.
"""

from __future__ import annotations

import sys
import types
from importlib.machinery import SourceFileLoader


class CachedLoader(SourceFileLoader):
    """A source file's loader that keeps compiled code in the folder ``cache_dir`` names.

    The folder is a class attribute, so ``type(loader)(name, path)`` gives a loader for another
    file with the same cache: that is how the worker loads its siblings, knowing nothing of this
    program. The private prefix and bytecode writing are turned on only while compiling, so
    the function's own imports neither read nor write this cache.
    """

    cache_dir = ""

    def get_code(self, fullname: str) -> types.CodeType | None:
        """The file's code: from the cache when it matches the source, else compiled and cached."""
        if not self.cache_dir:
            return super().get_code(fullname)
        saved = sys.dont_write_bytecode, sys.pycache_prefix
        sys.dont_write_bytecode, sys.pycache_prefix = False, self.cache_dir
        try:
            return super().get_code(fullname)
        finally:
            sys.dont_write_bytecode, sys.pycache_prefix = saved


def _run() -> None:
    if len(sys.argv) < 3:
        raise SystemExit("usage: python_boot.py WORKER CACHE_DIR [worker options]")
    path, cache_dir = sys.argv[1], sys.argv[2]
    CachedLoader.cache_dir = cache_dir
    loader = CachedLoader("__main__", path)
    code = loader.get_code("__main__")
    if code is None:
        raise SystemExit(f"python_boot.py: no code in {path}")
    del sys.argv[1:3]
    sys.argv[0] = path
    # A fresh __main__, as for ``python WORKER``: nothing of this program shows in it but the
    # loader, where ``python WORKER`` has a SourceFileLoader too.
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__loader__ = loader
    main.__builtins__ = __builtins__  # type: ignore[attr-defined]
    sys.modules["__main__"] = main
    exec(code, vars(main))


_run()
