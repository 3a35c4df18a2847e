"""A real mitmdump's life with the addon: upstream mode, edits of the file, a broken file, and
``edgesim mitm`` leaving no process behind."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

if os.environ.get("CI"):
    import mitmproxy  # noqa: F401  (under CI a missing mitmproxy fails here, never skips)
else:
    pytest.importorskip("mitmproxy", reason="the addon needs mitmproxy (Python 3.12+)")

from tests.e2e.conftest import Origin
from tests.e2e.test_mitm import (
    _LISTENING,
    STARTUP_TIMEOUT,
    Mitmdump,
    ThreadOrigin,
    _Process,
    write_distribution,
)
from tests.frontdoors.test_mitm import write_site


@pytest.fixture
def origin() -> Iterator[Origin]:
    served = ThreadOrigin()
    yield served.origin
    served.close()


def test_upstream_mode_and_edits_of_the_file(tmp_path: Path, origin: Origin) -> None:
    dist = write_distribution(tmp_path, "http://192.0.2.1:1024")  # never used: upstream mode
    good = dist.read_text()
    proxy = Mitmdump(dist, tmp_path / "conf", "--set", "edgesim_upstream=true")
    proxy.wait_ready()
    try:
        with httpx.Client(proxy=proxy.url, timeout=STARTUP_TIMEOUT) as client:
            first = client.get(f"{origin.url}/api/x")
            assert first.headers["x-cache"] == "Miss from cloudfront"
            assert [s.target for s in origin.seen] == ["/api/x"]
            assert origin.seen[0].header("User-Agent") == "Amazon CloudFront"

            mark = len(proxy.lines)
            dist.write_text("behaviors: [not, a, behavior]\n")
            proxy.wait_for("not reloaded (the previous version keeps serving)", after=mark)
            kept = client.get(f"{origin.url}/api/x")
            assert kept.headers["x-cache"] == "Hit from cloudfront"  # the old edge, its cache

            mark = len(proxy.lines)
            dist.write_text(good.replace("CachingOptimized", "CachingDisabled"))
            proxy.wait_for(f"reloaded {dist}", after=mark)
            assert client.get(f"{origin.url}/api/x").headers["x-cache"] == "Miss from cloudfront"
    finally:
        assert proxy.stop() == 0, proxy.log


def test_a_broken_file_at_start_is_named_and_mitmdump_stops(tmp_path: Path) -> None:
    dist = tmp_path / "broken.yaml"
    dist.write_text("origins: {}\nbehaviors: []\n")
    proxy = Mitmdump(dist, tmp_path / "conf")
    assert proxy.process.wait(STARTUP_TIMEOUT) == 1
    assert proxy.stop() == 1  # mitmproxy's own rule for a bad option at start-up
    assert f"{dist}: " in proxy.log and "exiting" in proxy.log


def test_edgesim_mitm_serves_the_file_and_leaves_no_process(tmp_path: Path) -> None:
    dist = write_site(tmp_path)
    command = [sys.executable, "-m", "edgesim", "mitm", "--no-web", str(dist)]
    mitm = _Process(
        [*command, "--listen-port", "0", "--set", f"confdir={tmp_path / 'conf'}"], _LISTENING
    )
    mitm.wait_ready()
    try:
        response = httpx.get(f"http://127.0.0.1:{mitm.address}/", timeout=STARTUP_TIMEOUT)
        assert response.text == "<h1>home</h1>\n"
        assert response.headers["x-cache"] == "Miss from cloudfront"
        workers = psutil.Process(mitm.process.pid).children(recursive=True)
        assert workers  # the function's worker
    finally:
        assert mitm.stop() == 0, mitm.log
    assert f"edgesim: {dist} (" in mitm.log
    alive = [p.pid for p in workers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == []
