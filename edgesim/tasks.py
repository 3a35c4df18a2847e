"""The one way edgesim starts background tasks.

``asyncio.create_task`` keeps only a weak reference to its task, so a task nobody holds can be
garbage-collected mid-flight. :func:`spawn` keeps a strong reference until the task ends and names
it, which makes leaks and hangs readable in ``asyncio`` debug output.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["spawn"]

T = TypeVar("T")
_running: set[asyncio.Task[Any]] = set()


def spawn(coro: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
    """Run ``coro`` as a named task and keep it referenced until it finishes."""
    task = asyncio.get_running_loop().create_task(coro, name=name)
    _running.add(task)
    task.add_done_callback(_running.discard)
    return task
