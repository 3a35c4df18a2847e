"""Which event loop ``edgesim serve`` runs on.

uvloop (libuv under asyncio's interface) runs the viewer sockets, timers and pipes in C, where
asyncio's default loop runs them in Python: a cache hit costs about 15% less CPU on it
(``bench/bench_cache.py``). It is the default wherever it is installed (it is a dependency on
Linux and macOS); ``--loop asyncio`` keeps the standard loop, for a debugger or a profiler that
expects it, or to tell whether a problem is the loop's.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

__all__ = ["LOOPS", "LoopName", "available", "resolve", "run"]

LoopName = Literal["auto", "asyncio", "uvloop"]
LOOPS: tuple[LoopName, ...] = ("auto", "asyncio", "uvloop")

T = TypeVar("T")


class LoopUnavailableError(RuntimeError):
    """``--loop uvloop`` where uvloop is not installed."""


def available() -> bool:
    """Whether uvloop can be imported here."""
    return importlib.util.find_spec("uvloop") is not None


def resolve(name: LoopName) -> Literal["asyncio", "uvloop"]:
    """The loop ``name`` stands for on this machine (``auto``: uvloop when installed)."""
    if name == "asyncio":
        return "asyncio"
    if available():
        return "uvloop"
    if name == "uvloop":
        raise LoopUnavailableError(
            "uvloop is not installed (pip install uvloop), or choose --loop asyncio"
        )
    return "asyncio"


def run(main: Coroutine[Any, Any, T], loop: LoopName = "auto") -> T:
    """``asyncio.run(main)`` on the loop ``loop`` names."""
    if resolve(loop) == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
