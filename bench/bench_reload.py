"""Hot reload: time from saving a file to the first request served by what the file now says.

Run from the project root::

    .venv/bin/python bench/bench_reload.py [--rounds N]

Starts ``edgesim serve`` (the real command, in its own process) on a distribution in a
temporary folder with a Python and a Node.js function, each generating a response at
viewer-request. Each round saves a new version of one file the way editors do (a new file
renamed over the old one), then asks for a page as fast as the loop goes until the answer shows
the new version; the figure is the time from the save to that answer. Three kinds of edit, in
turn: the Python function, the Node.js function, and the distribution file (a new behavior whose
path pattern names the round). Medians and 90th percentiles per kind.

What one figure holds: the watcher noticing the change (inotify, then watchfiles' 50 ms of quiet
to group an editor's burst of events), the code check (a worker loads the module once), the
swap, and the first request (a cold start of the new worker).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

PYTHON = 'def handler(event, context):\n    return {{"status": "200", "body": "{body}"}}\n'
NODE = "exports.handler = async () => ({{ status: '200', body: '{body}' }});\n"
YAML = """
origins: {{site: {{s3: site}}}}
functions:
  py: {{runtime: python{major}.{minor}, code: py, handler: app.handler}}
  node: {{runtime: nodejs20.x, code: node, handler: index.handler}}
behaviors:
  - {{path_pattern: /py/*, origin: site, functions: {{viewer-request: py}}}}
  - {{path_pattern: /node/*, origin: site, functions: {{viewer-request: node}}}}
  - {{path_pattern: "/{round}/*", origin: site, functions: {{viewer-request: py}}}}
  - {{path_pattern: "*", origin: site}}
"""
GIVE_UP_S = 30.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _save(path: Path, text: str) -> float:
    """Save as an editor does; the time the save completed."""
    temporary = path.with_name(path.name + ".tmp~")
    temporary.write_text(text)
    temporary.replace(path)
    return time.perf_counter()


def _yaml(round_name: str) -> str:
    major, minor = sys.version_info[:2]
    return YAML.format(major=major, minor=minor, round=round_name)


def _until(client: httpx.Client, url: str, body: str) -> float:
    deadline = time.perf_counter() + GIVE_UP_S
    while time.perf_counter() < deadline:
        if client.get(url).text == body:
            return time.perf_counter()
    raise SystemExit(f"{url} never answered {body!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="edits of each kind (default 20)")
    rounds = parser.parse_args().rounds
    folder = Path(tempfile.mkdtemp(prefix="edgesim-bench-reload-"))
    (folder / "site").mkdir()
    (folder / "py").mkdir()
    (folder / "node").mkdir()
    (folder / "py" / "app.py").write_text(PYTHON.format(body="py-0"))
    (folder / "node" / "index.js").write_text(NODE.format(body="node-0"))
    (folder / "d.yaml").write_text(_yaml("r0"))
    port = _free_port()
    command = [sys.executable, "-m", "edgesim", "serve", str(folder / "d.yaml")]
    command += ["--port", str(port), "--admin-port", str(_free_port()), "--quiet"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    figures: dict[str, list[float]] = {"Python function": [], "Node.js function": [], "YAML": []}
    try:
        with httpx.Client(timeout=GIVE_UP_S) as client:
            deadline = time.perf_counter() + GIVE_UP_S
            while True:
                try:
                    if client.get(base + "/py/x").text == "py-0":
                        break
                except httpx.TransportError:
                    pass
                if time.perf_counter() > deadline:
                    raise SystemExit("edgesim serve did not start")
                time.sleep(0.05)
            time.sleep(1.0)  # the watchers start after the banner
            for index in range(1, rounds + 1):
                saved = _save(folder / "py" / "app.py", PYTHON.format(body=f"py-{index}"))
                figures["Python function"].append(
                    _until(client, base + "/py/x", f"py-{index}") - saved
                )
                saved = _save(folder / "node" / "index.js", NODE.format(body=f"node-{index}"))
                figures["Node.js function"].append(
                    _until(client, base + "/node/x", f"node-{index}") - saved
                )
                saved = _save(folder / "d.yaml", _yaml(f"r{index}"))
                figures["YAML"].append(_until(client, base + f"/r{index}/x", f"py-{index}") - saved)
    finally:
        server.terminate()
        server.wait(10)
    print(f"save to first new answer, {rounds} edits each ({os.cpu_count()} cores)\n")
    print("| edit | median | p90 |")
    print("|---|---|---|")
    for kind, values in figures.items():
        ordered = sorted(values)
        p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        print(f"| {kind} | {statistics.median(values) * 1000:.0f} ms | {p90 * 1000:.0f} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
