"""Servers the benchmarks measure, each in its own process group, and the lab that starts
them: the plain aiohttp server, ``edgesim serve``, the bare round trips of a request's
functions; their CPU time read from /proc, their output in a log file, and the GETs that check
what they answer. ``_harness.py`` re-exports all of it for the benchmark scripts.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = sys.executable
ADMIN_TOKEN = "bench-" + "0" * 32
BODY_SIZE = 1024
# Text, so a JavaScript peer that handles bodies as strings serves the very same bytes.
BODY = (b"edgesim benchmark body " * (BODY_SIZE // 23 + 1))[:BODY_SIZE]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class CpuSnapshot:
    """CPU seconds (user + system) of a process and of its whole tree, per process."""

    main: float
    tree: dict[tuple[int, float], float]

    def since(self, before: CpuSnapshot) -> tuple[float, float]:
        """(main, tree) CPU seconds spent between ``before`` and this snapshot. A process that
        started in between counts from its start; one that ended in between is not counted."""
        tree = sum(seconds - before.tree.get(key, 0.0) for key, seconds in self.tree.items())
        return self.main - before.main, tree


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


class Server:
    """A server in its own process group (so a stop reaches whatever it started), its output
    in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        workdir: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = workdir / f"{re.sub(r'[^a-z0-9]+', '-', name.lower())}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
        self.process = psutil.Process(self.popen.pid)
        self.url = ""
        self.admin_url = ""
        self.config: Path | None = None  # an edgesim's distribution file, files beside it

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def fail(self, why: str) -> RuntimeError:
        tail = "\n".join(self.log_text().splitlines()[-15:])
        return RuntimeError(f"{self.name}: {why}; its output ends with:\n{tail}")

    def wait_for_log(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """The first match of ``pattern`` in the log, waiting for it to be written."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.log_text())
            if found is not None:
                return found
            if self.popen.poll() is not None:
                raise self.fail(f"exited with status {self.popen.returncode}")
            time.sleep(0.05)
        raise self.fail(f"did not print {pattern!r} within {timeout:g} s")

    def wait_for_http(self, url: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise self.fail(f"exited with status {self.popen.returncode}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(url, timeout=2) as answer:
                    answer.read()
                    return
            time.sleep(0.1)
        raise self.fail(f"did not answer {url} within {timeout:g} s")

    def cpu(self) -> CpuSnapshot:
        main = _cpu(self.process)
        tree = {(self.pid, self.process.create_time()): main}
        for child in self.process.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                tree[(child.pid, child.create_time())] = _cpu(child)
        return CpuSnapshot(main, tree)

    def rss(self) -> int:
        """Resident memory of the main process, in bytes."""
        return int(self.process.memory_info().rss)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)  # the group this server started
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        self._log.close()


class Lab(contextlib.ExitStack):
    """A temporary folder and the servers started in it, all stopped on exit."""

    def __init__(self, prefix: str = "edgesim-bench-") -> None:
        super().__init__()
        self._tmp = tempfile.TemporaryDirectory(prefix=prefix)
        self.dir = Path(self._tmp.name)
        self.callback(self._tmp.cleanup)

    def start(self, server: Server) -> Server:
        self.callback(server.stop)
        return server

    def plain(
        self,
        name: str = "plain aiohttp",
        *,
        uvloop: bool = False,
        prefix: Sequence[str] = (),
        timeout: float = 30.0,
    ) -> Server:
        """An aiohttp server answering every GET with :data:`BODY` (the hit baseline, and the
        HTTP origin of the miss rows), on asyncio's loop or on uvloop; ``prefix`` is a command
        the interpreter runs under (a profiler), ``timeout`` how long it may take to start."""
        argv = [*prefix, PYTHON, str(BENCH / "_servers.py"), "plain"]
        argv += ["--uvloop"] if uvloop else []
        server = self.start(Server(name, argv, workdir=self.dir))
        port = server.wait_for_log(r"listening on (\d+)", timeout).group(1)
        server.url = f"http://127.0.0.1:{port}"
        return server

    def pools(self, name: str, config: Path, uri: str, *, timeout: float = 60.0) -> Server:
        """The bare round trips of the functions that ``GET uri`` runs under the distribution
        ``config`` (see ``_servers.py pools``); its URL ends in ``/invoke`` or ``/none``."""
        argv = [PYTHON, str(BENCH / "_servers.py"), "pools", str(config), uri]
        server = self.start(Server(name, argv, workdir=self.dir, cwd=config.parent))
        port = server.wait_for_log(r"listening on (\d+)", timeout).group(1)
        server.url = f"http://127.0.0.1:{port}"
        return server

    def edgesim(
        self,
        name: str,
        config: str,
        *,
        args: Sequence[str] = (),
        files: dict[str, bytes] | None = None,
        entry: Sequence[str] = ("-m", "edgesim"),
        prefix: Sequence[str] = (),
        timeout: float = 30.0,
    ) -> Server:
        """``edgesim serve`` on the distribution ``config`` (YAML, written to the lab's folder
        with ``files`` beside it), its access log in the server's log file; ``entry`` is what
        the interpreter runs (another script taking ``edgesim``'s arguments), ``prefix`` and
        ``timeout`` as for :meth:`plain`."""
        folder = self.dir / re.sub(r"[^a-z0-9]+", "-", name.lower())
        folder.mkdir()
        for relative, content in (files or {}).items():
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).write_bytes(content)
        path = folder / "bench.yaml"
        path.write_text(config)
        argv = [*prefix, PYTHON, *entry, "serve", "--port", "0", "--admin-port", "0"]
        argv += ["--shutdown-grace", "1", *args, str(path)]
        server = self.start(
            Server(name, argv, workdir=self.dir, env={"EDGESIM_ADMIN_TOKEN": ADMIN_TOKEN})
        )
        server.config = path
        server.url = server.wait_for_log(r" on (http://[0-9.]+:\d+)/", timeout).group(1)
        admin = server.wait_for_log(r"admin API[^\n]* on (http://[0-9.]+:\d+)/", timeout).group(1)
        server.admin_url = admin
        return server


def admin_cache(server: Server) -> dict[str, object]:
    """``GET /cache`` of an edgesim's admin API: objects and the bytes its bound counts."""
    request = urllib.request.Request(
        server.admin_url + "/cache",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        data: dict[str, object] = json.loads(answer.read())
    return data


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    """One GET: status, headers, body (errors included)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, dict(answer.headers.items()), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


def expect(url: str, *, x_cache: str | None = None) -> None:
    """Fail unless ``url`` answers 200 with :data:`BODY` (and the given ``X-Cache``)."""
    status, headers, body = fetch(url)
    seen = headers.get("X-Cache", "")
    if status != 200 or body != BODY or (x_cache is not None and not seen.startswith(x_cache)):
        raise RuntimeError(
            f"{url} answered {status}, X-Cache {seen!r}, {len(body)} bytes; "
            f"expected 200, {x_cache!r}, the {BODY_SIZE}-byte body"
        )


def warm(url: str, *, streak: int = 12, tries: int = 200) -> None:
    """Fetch ``url`` on fresh connections until ``streak`` answers in a row are cache Hits.

    With ``serve --workers N`` each connection lands on one of N processes, each with its own
    cache: a single Miss warms only the process that took it.
    """
    hits = 0
    for _ in range(tries):
        _, headers, _ = fetch(url)
        hits = hits + 1 if headers.get("X-Cache", "").startswith("Hit") else 0
        if hits >= streak:
            return
    expect(url, x_cache="Hit")
