"""A real mitmdump's life with the addon: upstream mode, edits of the file (a broken one keeps
the previous version), and no process left once it exits; a broken file at start-up."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

if os.environ.get("CI"):
    import mitmproxy  # noqa: F401  (under CI a missing mitmproxy fails here, never skips)
else:
    pytest.importorskip("mitmproxy", reason="the addon needs mitmproxy (Python 3.12+)")

from edgesim.cli import main
from tests import http_clients
from tests.e2e.conftest import Origin
from tests.e2e.test_mitm import STARTUP_TIMEOUT, Mitmdump, ThreadOrigin, write_distribution


@pytest.fixture
def origin() -> Iterator[Origin]:
    served = ThreadOrigin()
    yield served.origin
    served.close()


def test_upstream_mode_edits_and_exit(tmp_path: Path, origin: Origin) -> None:
    dist = write_distribution(tmp_path, "http://192.0.2.1:1024")  # never used: upstream mode
    good = dist.read_text()
    proxy = Mitmdump(dist, tmp_path / "conf", "--set", "edgesim_upstream=true")
    proxy.wait_ready()
    try:
        with http_clients.client(proxy=proxy.url, timeout=STARTUP_TIMEOUT) as client:
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
        workers = psutil.Process(proxy.process.pid).children(recursive=True)
        assert workers  # the viewer-request function's, old and new
    finally:
        assert proxy.stop() == 0, proxy.log
    alive = [p.pid for p in workers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == []  # mitmproxy's shutdown closed them


def test_a_broken_file_at_start_is_named_before_mitmproxy_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dist = tmp_path / "broken.yaml"
    dist.write_text("origins: {}\nbehaviors: []\n")
    assert main(["mitm", "--no-web", str(dist)]) == 1
    assert capsys.readouterr().err.startswith(f"edgesim: {dist}: ")
