"""Debugger attach for the Python worker: debugpy in the worker, and ``breakpoint()`` with it.

The worker loads this file by path, only when the pool asks for a debugger
(``--debug-port N --debugpy DIR``). Like the worker it is standalone (no edgesim imports,
Python 3.9 syntax): the worker runs isolated, with the standard library and the function's
folder on its path. debugpy is loaded from its own folder as one package, so the function gains
no other module of edgesim's environment. debugpy serves the Debug Adapter Protocol from inside
the worker (no adapter process), so a debugger attaches to the worker itself, which is also how
the pool sees it attached.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from types import FrameType, ModuleType
from typing import Any

__all__ = ["listen", "load_debugpy"]


def load_debugpy(folder: str) -> ModuleType:
    """Import the debugpy package found in ``folder`` without putting its parent on the path."""
    spec = importlib.util.spec_from_file_location(
        "debugpy", os.path.join(folder, "__init__.py"), submodule_search_locations=[folder]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"no debugpy package in {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["debugpy"] = module
    spec.loader.exec_module(module)
    return module


def listen(port: int, folder: str, ignored: Callable[[FrameType], None]) -> None:
    """Serve debuggers on ``127.0.0.1:port``; ``breakpoint()`` stops there when one is attached,
    and calls ``ignored`` with the caller's frame when none is."""
    debugpy = load_debugpy(folder)
    debugpy.listen(("127.0.0.1", port), in_process_debug_adapter=True)
    pydevd = sys.modules["pydevd"]

    def hook(*args: Any, **kwargs: Any) -> None:
        caller = sys._getframe(1)
        if not debugpy.is_client_connected():
            ignored(caller)
            return
        # debugpy.breakpoint() would stop in this hook; the user's frame is the one that asked.
        pydevd.settrace(
            suspend=True,
            trace_only_current_thread=True,
            patch_multiprocessing=False,
            stop_at_frame=caller,
            notify_stdin=False,
        )

    sys.breakpointhook = hook
    sys.stderr.write(f"Debugger (debugpy) listening on 127.0.0.1:{port}\n")
