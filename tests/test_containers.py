"""The container setup, checked without a Docker engine (CI has none).

`docker-compose config` validates docker-compose.yml (Debian's docker-compose package; .ci/run
installs it). Then each service's command runs natively, as the container would run it: the
volumes become symbolic links in a stand-in for the container's file system, the working
directory is the Dockerfile's, container ports become free local ports, and each service must
answer. That proves the wiring (paths, mounts, arguments) short of the image itself.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests import http_clients

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = shutil.which("docker-compose")
pytestmark = pytest.mark.skipif(
    COMPOSE is None, reason="docker-compose is not installed (apt-get install docker-compose)"
)


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    """Every service, the debug profile's included, as `docker-compose config` resolves them."""
    assert COMPOSE is not None
    run = subprocess.run(
        [COMPOSE, "--profile", "debug", "config"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return dict(yaml.safe_load(run.stdout)["services"])


def _dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def _instruction(name: str) -> list[str]:
    return [value for key, value in _dockerfile() if key == name]


def test_the_image_has_both_runtimes_edgesim_and_no_root() -> None:
    assert any("python:" in value for value in _instruction("FROM"))
    assert any("/bin/node" in value for value in _instruction("COPY"))
    assert any("pip install" in value for value in _instruction("RUN"))
    assert _instruction("USER")[-1] not in ("root", "0")
    assert _instruction("ENTRYPOINT") == ['["edgesim"]']
    for source in ("pyproject.toml", "README.md", "LICENSE", "edgesim", "functions", "origins"):
        assert any(re.search(rf"(^|\s){source}(\s|$)", v) for v in _instruction("COPY")), source


def test_the_services(services: dict[str, Any]) -> None:
    assert set(services) == {"edge", "origin", "mitm"}
    edge, mitm = services["edge"], services["mitm"]
    assert edge["command"][:2] == ["serve", "distributions/example.yaml"]
    assert any(p.startswith("127.0.0.1:8080:8080") for p in edge["ports"])
    targets = {v.split(":")[1] for v in edge["volumes"]}
    assert {"/app/distributions", "/app/functions", "/app/origins/site"} <= targets
    assert mitm["profiles"] == ["debug"] and mitm["command"][0] == "mitm"
    assert mitm["build"]["args"]["EXTRAS"] == "mitm"
    assert "profiles" not in edge and "profiles" not in services["origin"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _native(service: dict[str, Any], root: Path) -> tuple[list[str], Path, dict[int, int]]:
    """The service's command as this machine runs it, its working directory, and its ports."""
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        link = root / target.lstrip("/")
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(source)
    workdir = root / _instruction("WORKDIR")[-1].lstrip("/")
    workdir.mkdir(parents=True, exist_ok=True)
    ports = {int(p.split(":")[2].split("/")[0]): _free_port() for p in service.get("ports", [])}
    native = []
    for arg in map(str, service["command"]):
        if arg.isdigit() and int(arg) in ports:
            arg = str(ports[int(arg)])
        elif arg == "0.0.0.0":
            arg = "127.0.0.1"  # the container's own network stands in for all interfaces
        elif arg.startswith("/"):
            arg = str(root / arg.lstrip("/"))
        native.append(arg)
    if "build" in service:  # our image: its entrypoint is edgesim
        native = [sys.executable, "-m", "edgesim", *native]
    elif native[0] == "python":
        native[0] = sys.executable
    return native, workdir, ports


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    processes: list[subprocess.Popen[bytes]] = []
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)}

    def run(command: list[str], cwd: Path) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        processes.append(process)
        return process

    yield run
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answer(url: str, process: subprocess.Popen[bytes]) -> httpx.Response:
    """The first answer from ``url`` once the process listens (polled: it is a subprocess)."""
    for _ in range(300):
        assert process.poll() is None, f"{process.args!r} ended with {process.returncode}"
        try:
            return http_clients.get(url, timeout=20)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"nothing answered at {url}")


def test_the_origin_service_serves_the_site(
    services: dict[str, Any], tmp_path: Path, start: Any
) -> None:
    command, cwd, ports = _native(services["origin"], tmp_path)
    process = start(command, cwd)
    answer = _answer(f"http://127.0.0.1:{ports[9000]}/index.html", process)
    assert answer.status_code == 200 and "edgesim example site" in answer.text


def test_the_edge_service_serves_the_example_from_the_mounts(
    services: dict[str, Any], tmp_path: Path, start: Any
) -> None:
    command, cwd, ports = _native(services["edge"], tmp_path)
    # The container has its own network; here the admin API takes any free port.
    process = start([*command, "--admin-port", "0"], cwd)
    home = _answer(f"http://127.0.0.1:{ports[8080]}/", process)
    assert home.status_code == 200 and "edgesim example site" in home.text
    assert home.headers["x-content-type-options"] == "nosniff"  # a mounted function ran


@pytest.mark.slow  # mitmweb takes seconds to start
@pytest.mark.skipif(
    importlib.util.find_spec("mitmproxy") is None, reason="mitmproxy is not installed"
)
def test_the_debug_profiles_mitmweb_serves_through_the_addon(
    services: dict[str, Any], tmp_path: Path, start: Any
) -> None:
    command, cwd, ports = _native(services["mitm"], tmp_path)
    process = start(command, cwd)
    home = _answer(f"http://127.0.0.1:{ports[8081]}/", process)
    assert home.status_code == 200 and "edgesim example site" in home.text
    assert "x-cache" in home.headers
    assert _answer(f"http://127.0.0.1:{ports[8082]}/", process).status_code < 500
