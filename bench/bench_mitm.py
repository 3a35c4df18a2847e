"""What the mitmproxy addon adds per request, against ``edgesim serve`` on the same distribution.

Run by hand from the project root (needs mitmproxy: Python 3.12+)::

    .venv/bin/python bench/bench_mitm.py [--requests 1000] [FILE]

``edgesim serve FILE`` and ``edgesim mitm --no-web FILE`` (mitmdump, a reverse proxy with the
addon) run side by side on loopback with their default output (an access line or a flow, and
the function log lines, read from a pipe). One keep-alive client sends each path to both
in turn, so both see the same machine; after a warm-up (workers started, objects cached) it
times ``--requests`` requests per path and front door. Prints the medians, what the addon adds
(mitm minus serve) and the ratio, for each path of the bundled example:

- ``/``: a Node.js viewer-request function, then a cache Hit;
- ``/old-blog/first-post``: a Python viewer-request function generates a 301;
- ``/api/hello?name=edge``: CachingDisabled, a Python origin-request function generates JSON.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PATHS = ["/", "/old-blog/first-post", "/api/hello?name=edge"]
_URL = {
    "serve": re.compile(r" on (http://127\.0\.0\.1:\d+)/"),
    "mitm": re.compile(r"listening at (127\.0\.0\.1:\d+)"),
}


class _Server:
    """A front door in a child process; :attr:`url` once it says where it listens."""

    def __init__(self, kind: str, command: list[str]) -> None:
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._found = threading.Event()
        self.url = ""
        self._pattern = _URL[kind]
        threading.Thread(target=self._read, daemon=True).start()
        if not self._found.wait(60) or not self.url:
            self.process.kill()
            raise SystemExit(f"{kind} did not start: {command}")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:  # read to the end, so the pipe never fills
            match = self._pattern.search(line)
            if match and not self.url:
                found = match.group(1)
                self.url = found if found.startswith("http") else f"http://{found}"
                self._found.set()
        self._found.set()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def _time(client: httpx.Client, url: str) -> float:
    started = time.perf_counter()
    response = client.get(url)
    elapsed = time.perf_counter() - started
    if "x-cache" not in response.headers:
        raise SystemExit(f"no X-Cache from {url}: {response.status_code}")
    return elapsed * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=ROOT / "distributions/example.yaml")
    parser.add_argument("--requests", type=int, default=1000, help="timed requests per path")
    args = parser.parse_args()
    edgesim = [sys.executable, "-m", "edgesim"]
    with tempfile.TemporaryDirectory() as confdir:
        serve = _Server(
            "serve",
            [*edgesim, "serve", str(args.file), "--port", "0", "--admin-port", "0"],
        )
        mitm = _Server(
            "mitm",
            [
                *(*edgesim, "mitm", "--no-web", str(args.file)),
                *("--listen-port", "0", "--set", f"confdir={confdir}"),
            ],
        )
        try:
            with httpx.Client(timeout=30) as client:
                print(f"{args.requests} requests per path and front door, medians in ms")
                print(f"{'path':<24} {'serve':>8} {'mitm':>8} {'added':>8} {'ratio':>6}")
                for path in PATHS:
                    for _ in range(50):  # warm: workers started, objects cached, connections
                        _time(client, serve.url + path)
                        _time(client, mitm.url + path)
                    served, mitmed = [], []
                    for _ in range(args.requests):
                        served.append(_time(client, serve.url + path))
                        mitmed.append(_time(client, mitm.url + path))
                    s, m = statistics.median(served), statistics.median(mitmed)
                    print(f"{path:<24} {s:8.2f} {m:8.2f} {m - s:8.2f} {m / s:6.2f}")
        finally:
            mitm.stop()
            serve.stop()


if __name__ == "__main__":
    main()
