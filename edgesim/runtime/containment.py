"""How a worker is contained: what it takes with it when it dies, and what it cannot see.

A function shares its worker process and may start processes of its own: a ``subprocess``, a
``child_process.spawn(..., {detached: true})``, a process that calls ``setsid()``, a
double-forked daemon. None of them may outlive the worker, and none of them may reach the
edgesim process that runs the pool (its environment, its signals). Two levels, chosen once per
process by :func:`isolation`:

:attr:`Isolation.NAMESPACES` (Linux, when ``unshare`` can create namespaces: as root, or as a
user where unprivileged user namespaces are allowed)
    The worker runs under ``unshare --pid --fork --kill-child --mount-proc``: it is PID 1 of a
    PID namespace of its own, with a ``/proc`` that shows that namespace only. When PID 1 dies
    the kernel kills every process of the namespace, whatever process group or session it made
    for itself, so nothing a function starts outlives its worker. ``unshare`` waits for the
    worker and dies with edgesim (parent-death signal), and ``--kill-child`` takes the worker
    with it, so a SIGKILLed edgesim leaves nothing behind. The edgesim process is outside the
    namespace: it has no pid a function can signal (``getppid()`` is 0) and no ``/proc`` entry a
    function can read. As PID 1 the worker also ignores signals sent from inside its namespace
    that it has no handler for. Cost: one small exec (about 1 ms per cold start).

:attr:`Isolation.PROCESS_TREE` (everywhere else)
    The worker runs in its own session and is a child subreaper, so descendants that detach or
    double-fork stay in its tree while it lives; ending a worker kills that tree and its process
    group. What this cannot give: descendants of a worker killed together with edgesim survive
    it (they are reparented to init), and a function can find and signal edgesim and read its
    ``/proc`` entries as far as the operating system lets the same user do that.
    :func:`protect_environment` narrows the second: edgesim marks itself non-dumpable, so other
    users' processes and non-root processes of the same user cannot read its environment.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence

import psutil

__all__ = [
    "Isolation",
    "contained_command",
    "isolation",
    "kill_contained",
    "preexec",
    "protect_environment",
    "unshare_note",
    "worker_pid",
]

_PR_SET_PDEATHSIG = 1  # <sys/prctl.h>
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
_PROBE_TIMEOUT_S = 10.0
# A process tree is killed round by round: a process may fork while the previous round runs.
_KILL_ROUNDS = 8


class Isolation(enum.Enum):
    """How workers are contained (see the module docstring)."""

    NAMESPACES = "namespaces"
    PROCESS_TREE = "process-tree"


_chosen: tuple[Isolation, tuple[str, ...]] | None = None
_protected = False


def isolation() -> Isolation:
    """The containment this process gives its workers, probed once (one ``unshare`` run)."""
    return _choose()[0]


def contained_command(command: Sequence[str]) -> list[str]:
    """``command`` as it is started under :func:`isolation`."""
    mode, prefix = _choose()
    return [*prefix, *command] if mode is Isolation.NAMESPACES else list(command)


def preexec(data_limit_bytes: int | None) -> Callable[[], None]:
    """What runs in the forked child before it execs the worker (or ``unshare``).

    The parent-death signal ties the started process to edgesim even while a worker is stuck in
    a synchronous loop; the data-segment limit is set before the exec so that every process of
    the worker inherits it; a worker without namespaces becomes a child subreaper.
    """
    subreaper = isolation() is Isolation.PROCESS_TREE

    def run() -> None:
        if data_limit_bytes is not None:
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_DATA, (data_limit_bytes, data_limit_bytes))
        if not sys.platform.startswith("linux"):
            return
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if subreaper:
                libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

    return run


def worker_pid(started_pid: int) -> int | None:
    """The pid (in edgesim's namespace) of the worker program started as ``started_pid``.

    Without namespaces it is ``started_pid`` itself; with them it is the child ``unshare``
    forked, or None while it has not forked yet (or is gone).
    """
    if isolation() is Isolation.PROCESS_TREE:
        return started_pid
    try:
        with open(f"/proc/{started_pid}/task/{started_pid}/children") as children:
            found = children.read().split()
    except OSError:
        found = []
    if found:
        return int(found[0])
    try:
        kids = psutil.Process(started_pid).children()
    except psutil.Error:
        return None
    return kids[0].pid if kids else None


def kill_contained(started_pid: int, worker_pidfd: int | None) -> None:
    """SIGKILL a worker and everything it started.

    With namespaces, killing PID 1 (through its pidfd, which cannot hit a recycled pid) ends the
    namespace, and ``unshare`` reaps it and exits: killing ``unshare`` too would leave the worker
    a zombie for init to reap, and not every init does. Before the worker is known, the process
    group is killed. Without namespaces the worker's descendants are killed first, round by round
    (the worker, a subreaper, collects the orphans of each round), then its process group.
    """
    if worker_pidfd is not None and isolation() is Isolation.NAMESPACES:
        with contextlib.suppress(OSError):
            signal.pidfd_send_signal(worker_pidfd, signal.SIGKILL)
            return
    if isolation() is Isolation.PROCESS_TREE:
        _kill_descendants(started_pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(started_pid, signal.SIGKILL)


def unshare_note() -> bytes | None:
    """The line ``unshare`` prints when the worker it waits for was SIGKILLed, or None.

    util-linux's ``unshare`` re-raises its child's fatal signal on itself, and for SIGKILL that
    fails with this note on stderr, which is the worker's log pipe: it is not the function's.
    """
    mode, prefix = _choose()
    if mode is not Isolation.NAMESPACES:
        return None
    return os.path.basename(prefix[0]).encode() + b": sigprocmask unblock failed"


def protect_environment() -> None:
    """Without namespaces, keep non-root processes (workers included) out of edgesim's memory.

    A non-dumpable process's ``/proc/<pid>/environ``, ``mem`` and ``fd`` are owned by root, so
    a function running as the same user cannot read edgesim's environment there. It does not
    stop a worker running as root; only the namespaces do.
    """
    global _protected
    if _protected or isolation() is Isolation.NAMESPACES or not sys.platform.startswith("linux"):
        return
    _protected = True
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def _kill_descendants(pid: int) -> None:
    try:
        root = psutil.Process(pid)
    except psutil.Error:
        return
    for _ in range(_KILL_ROUNDS):
        try:
            living = [
                child
                for child in root.children(recursive=True)
                if child.status() != psutil.STATUS_ZOMBIE
            ]
        except psutil.Error:
            return
        if not living:
            return
        for child in living:
            with contextlib.suppress(psutil.Error):
                child.kill()


def _choose() -> tuple[Isolation, tuple[str, ...]]:
    global _chosen
    if _chosen is None:
        _chosen = _probe()
    return _chosen


def _probe() -> tuple[Isolation, tuple[str, ...]]:
    unshare = shutil.which("unshare") if sys.platform.startswith("linux") else None
    if unshare is None:
        return Isolation.PROCESS_TREE, ()
    base = (unshare, "--pid", "--fork", "--kill-child", "--mount-proc")
    candidates: list[tuple[str, ...]]
    if os.geteuid() == 0:
        candidates = [base]
    else:
        # A user namespace lends the capabilities; keep the user's own id where unshare can.
        candidates = [
            (*base, "--user", "--map-current-user"),
            (*base, "--user", "--map-root-user"),
        ]
    for prefix in candidates:
        if _works(prefix):
            return Isolation.NAMESPACES, prefix
    return Isolation.PROCESS_TREE, ()


def _works(prefix: Sequence[str]) -> bool:
    """Whether ``prefix`` starts a process as PID 1 with a ``/proc`` of its namespace."""
    check = 'test "$$" -eq 1 && test "$(cat /proc/1/comm)" = sh'
    try:
        completed = subprocess.run(
            [*prefix, "/bin/sh", "-c", check],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin"},
            timeout=_PROBE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return completed.returncode == 0
