"""``edgesim serve --workers N``: N edge processes on the same ports, as a CloudFront location
runs several edge servers.

The supervisor binds one listening socket per process and port with ``SO_REUSEPORT``, so the
kernel spreads viewer connections over the processes, and hands each process its sockets when
it starts it (:mod:`edgesim.frontdoors.edge_process`, its settings as one JSON line on its
standard input). Each process is a whole edge: its own cache, function pools, origin connections and
file watcher (hot reload reaches every process because each follows the files), and its own
edge id, which its ``Via`` header shows. The supervisor serves the one admin API: an
invalidation goes to every process's private admin API (127.0.0.1, the same token) and the
counts are summed. Closing a process's standard input asks it to stop (so does the supervisor's
own end); a process that dies is started again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from edgesim.cache.store import CacheStats, NullCacheStore
from edgesim.config import Distribution, load_distributions
from edgesim.frontdoors.admin import AdminServer
from edgesim.frontdoors.admin_auth import TOKEN_ENV, new_token
from edgesim.frontdoors.code_check import check_distribution_code
from edgesim.frontdoors.console import Console
from edgesim.frontdoors.viewer_limits import ACCEPT_BATCH, raise_open_files_limit
from edgesim.http import EdgeRequest, EdgeResponse
from edgesim.origins.targets import OriginTarget
from edgesim.pipeline import Edge
from edgesim.types import Invocation

if TYPE_CHECKING:
    from edgesim.frontdoors.serving import ServeOptions

__all__ = ["FanOutStore", "Supervision", "bind_ports", "supervise", "workers_option"]

# How long a stopping process gets beyond the in-flight grace before it is killed.
_EXIT_MARGIN = 5.0
# A process that dies sooner than this after starting is not started again (it would only
# die again: a broken file, a port taken).
_MIN_LIFETIME = 2.0


@dataclass(frozen=True)
class Supervision:
    """What the supervisor needs of ``serve``'s options; ``settings`` is what each edge
    process is told (JSON), to which the supervisor adds its index."""

    distributions: Sequence[Distribution]
    host: str
    port: int
    admin_host: str
    admin_port: int
    token: str
    shutdown_grace: float
    cache_size: int
    workers: int
    settings: dict[str, Any] = field(default_factory=dict)


def workers_option(text: str) -> int:
    """``--workers``: a number of processes, or ``auto`` for one per core."""
    if text == "auto":
        return os.cpu_count() or 1
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"not a number of processes or auto: {text!r}")
    return count


def bind_ports(host: str, ports: Sequence[int], copies: int) -> list[list[socket.socket]]:
    """``copies`` listening sockets on each of ``ports`` (0: a free port, the same for every
    copy), all with ``SO_REUSEPORT``; one list per copy, in the order of ``ports``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    per_copy: list[list[socket.socket]] = [[] for _ in range(copies)]
    try:
        for port in ports:
            for copy in range(copies):
                sock = socket.socket(family, socket.SOCK_STREAM)
                per_copy[copy].append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                sock.bind((host, port))
                sock.listen(ACCEPT_BATCH)
                port = int(sock.getsockname()[1])
    except OSError:
        for sock in (s for copy in per_copy for s in copy):
            sock.close()
        raise
    return per_copy


class FanOutStore(NullCacheStore):
    """The supervisor's view of every process's cache: invalidations and figures go to each
    process's admin API; objects are never read or written here (the null store's no-ops)."""

    def __init__(self, token: str) -> None:
        self._token = token
        self.admins: dict[int, str] = {}
        """Each running process's admin API, by process index."""
        self.max_bytes = 0
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=aiohttp.ClientTimeout(total=30),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def invalidate(self, distribution_id: str, paths: Iterable[str]) -> int:
        body = {"paths": list(paths), "distribution_id": distribution_id}
        answers = await asyncio.gather(
            *(self._call("POST", url + "/invalidations", body) for url in self.admins.values())
        )
        return sum(int(a.get("invalidated", 0)) for a in answers)

    async def stats(self) -> CacheStats:
        answers = await asyncio.gather(
            *(self._call("GET", url + "/cache", None) for url in self.admins.values())
        )
        return CacheStats(
            objects=sum(int(a.get("objects", 0)) for a in answers),
            size_bytes=sum(int(a.get("size_bytes", 0)) for a in answers),
            max_bytes=self.max_bytes,
            evictions=0,
        )

    async def _call(self, method: str, url: str, body: object) -> dict[str, Any]:
        async with self._client().request(method, url, json=body) as answer:
            data = await answer.json()
            if answer.status >= 400:
                raise RuntimeError(f"an edge process answered {answer.status}: {data}")
            return data if isinstance(data, dict) else {}


class _NoFunctions:
    """The supervisor's edges only carry invalidations: they run no function."""

    async def invoke(self, name: str, event: dict[str, object]) -> Invocation:
        raise RuntimeError("the supervisor runs no function")

    async def aclose(self) -> None:
        return None


class _NoOrigins:
    async def fetch(self, request: EdgeRequest, target: OriginTarget) -> EdgeResponse:
        raise RuntimeError("the supervisor fetches from no origin")

    async def aclose(self) -> None:
        return None


@dataclass
class _Process:
    index: int
    popen: subprocess.Popen[bytes]
    started: float
    waiter: asyncio.Future[int]


class _Supervisor:
    def __init__(self, plan: Supervision, console: Console, store: FanOutStore) -> None:
        self._plan = plan
        self._console = console
        self._store = store
        self._processes: dict[int, _Process] = {}
        self._stopping = False
        self.failed = asyncio.Event()
        self.ports: list[int] = []
        """The ports bound, once chosen (a process started again binds the same)."""

    async def start(self, index: int, sockets: list[socket.socket]) -> None:
        """Start process ``index`` on ``sockets`` and wait until it serves."""
        loop = asyncio.get_running_loop()
        read_end, write_end = os.pipe()
        settings = dict(self._plan.settings, index=index, report_fd=write_end)
        settings["fds"] = [s.fileno() for s in sockets]
        popen = subprocess.Popen(
            [sys.executable, "-m", "edgesim.frontdoors.edge_process"],
            stdin=subprocess.PIPE,
            pass_fds=[write_end, *settings["fds"]],
            env={**os.environ, "EDGESIM_ADMIN_TOKEN": self._plan.token},
        )
        os.close(write_end)
        for sock in sockets:
            sock.close()  # the process holds them now
        assert popen.stdin is not None
        popen.stdin.write(json.dumps(settings).encode() + b"\n")
        popen.stdin.flush()
        try:
            line = await loop.run_in_executor(None, _read_line, read_end)
        finally:
            os.close(read_end)
        waiter = asyncio.ensure_future(loop.run_in_executor(None, popen.wait))
        self._processes[index] = _Process(index, popen, loop.time(), waiter)
        if not line:
            raise RuntimeError(f"edge process {index} exited before serving")
        self._store.admins[index] = json.loads(line)["admin"]
        waiter.add_done_callback(lambda _: self._exited(index, popen))

    def _exited(self, index: int, popen: subprocess.Popen[bytes]) -> None:
        process = self._processes.get(index)
        if self._stopping or process is None or process.popen is not popen:
            return
        self._store.admins.pop(index, None)
        lived = asyncio.get_running_loop().time() - process.started
        if lived < _MIN_LIFETIME:
            self._console.error(f"edge process {index} exited ({popen.returncode}) at start")
            self.failed.set()
            return
        self._console.error(f"edge process {index} exited ({popen.returncode}); starting it again")
        _ = asyncio.ensure_future(self._restart(index))

    async def _restart(self, index: int) -> None:
        try:
            sockets = bind_ports(self._plan.host, self.ports, 1)[0]
            await self.start(index, sockets)
        except (OSError, RuntimeError) as error:
            self._console.error(f"edge process {index} could not be started again: {error}")

    async def stop(self) -> None:
        """Ask every process to stop (their standard input closes), then wait for them; a
        process still there after the grace and a margin is killed."""
        self._stopping = True
        for process in self._processes.values():
            if process.popen.stdin is not None:
                with contextlib.suppress(OSError):
                    process.popen.stdin.close()
        waiters = [p.waiter for p in self._processes.values()]
        if not waiters:
            return
        _, late = await asyncio.wait(waiters, timeout=self._plan.shutdown_grace + _EXIT_MARGIN)
        for process in self._processes.values():
            if process.waiter in late:
                with contextlib.suppress(ProcessLookupError):
                    process.popen.kill()
        if late:
            await asyncio.wait(late)


def _read_line(fd: int) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.strip()


async def _run(plan: Supervision, console: Console) -> int:
    wanted = [plan.port + i if plan.port else 0 for i in range(len(plan.distributions))]
    try:
        sockets = bind_ports(plan.host, wanted, plan.workers)
    except OSError as error:
        print(
            f"edgesim: cannot listen on {plan.host}:{plan.port}: {error.strerror or error}",
            file=sys.stderr,
        )
        return 1
    ports = [int(s.getsockname()[1]) for s in sockets[0]]
    store = FanOutStore(plan.token)
    store.max_bytes = plan.cache_size * plan.workers
    supervisor = _Supervisor(plan, console, store)
    supervisor.ports = ports
    edges = [
        Edge(d, runtime=_NoFunctions(), origins=_NoOrigins(), store=store)
        for d in plan.distributions
    ]
    admin: AdminServer | None = None
    # Before anything is announced: a signal sent once the ports are printed stops cleanly.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        try:
            await asyncio.gather(*(supervisor.start(i, socks) for i, socks in enumerate(sockets)))
        except RuntimeError as error:
            print(f"edgesim: {error}", file=sys.stderr)
            return 1
        for distribution, port in zip(plan.distributions, ports, strict=True):
            settings = distribution.settings
            console.info(
                f"{distribution.source} ({settings.id}, {settings.domain_name}) on "
                f"http://{plan.host}:{port}/ ({plan.workers} edge processes)"
            )
        admin = AdminServer(
            edges,
            host=plan.admin_host,
            port=plan.admin_port,
            token=plan.token,
            publish_token=True,
        )
        try:
            await admin.start()
        except OSError as error:
            console.warning(
                f"admin API not started on {plan.admin_host}:{plan.admin_port}: "
                f"{error.strerror or error}; `edgesim invalidate` is unavailable "
                "(pick a free port with --admin-port)"
            )
            admin = None
        else:
            console.info(f"admin API (invalidations) on {admin.url}/, token in {admin.token_file}")
        failed = asyncio.ensure_future(supervisor.failed.wait())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait([stopped, failed], return_when=asyncio.FIRST_COMPLETED)
        for waiting in (stopped, failed):
            waiting.cancel()
        console.info(
            f"shutting down {plan.workers} edge processes (in-flight requests get "
            f"{plan.shutdown_grace:g} s)"
        )
        return 1 if supervisor.failed.is_set() else 0
    finally:
        await supervisor.stop()
        if admin is not None:
            await admin.aclose()
        await store.aclose()


async def supervise(files: Sequence[Path], options: ServeOptions, console: Console) -> int:
    """Serve ``files`` as ``options.workers`` edge processes until SIGINT or SIGTERM; the exit
    status (1 when the code check fails or a port cannot be bound)."""
    if options.inspect:
        print("edgesim: --inspect needs one edge process (--workers 1)", file=sys.stderr)
        return 1
    raise_open_files_limit()
    paths = list(files)
    distributions = load_distributions(paths)
    problems = await check_distribution_code([str(p) for p in paths], distributions)
    for problem in problems:
        print(f"edgesim: {problem}", file=sys.stderr)
    if problems:
        return 1
    settings = {
        "files": [str(p) for p in paths],
        "options": asdict(replace(options, workers=1)),
        "log_format": console.fmt,
        "quiet": console.quiet,
        "color": console.color,
    }
    plan = Supervision(
        distributions=distributions,
        host=options.host,
        port=options.port,
        admin_host=options.admin_host,
        admin_port=options.admin_port,
        token=os.environ.get(TOKEN_ENV) or new_token(),
        shutdown_grace=options.shutdown_grace,
        cache_size=options.cache_size,
        workers=options.workers,
        settings=settings,
    )
    return await _run(plan, console)
