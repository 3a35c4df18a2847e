"""The benchmarks import, parse their arguments and read wrk's output (they are not run here:
timed figures stay out of the test suite)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if not p.name.startswith("_"))

WRK_OUTPUT = """\
Running 2s test @ http://127.0.0.1:8080/page.html
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     9.46ms    4.09ms  36.61ms   90.17%
    Req/Sec     1.73k   541.79     2.58k    61.67%
  10331 requests in 2.01s, 15.58MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:   5139.80
Transfer/sec:      7.75MB
"""


def _harness() -> ModuleType:
    """The benchmarks' shared module, imported as the scripts import it (``bench`` first on
    the path, for its own imports of the modules beside it)."""
    if "_harness" in sys.modules:
        return sys.modules["_harness"]
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module("_harness")


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_benchmark_imports_and_parses_its_arguments(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:")


def test_wrk_output_is_read_with_its_errors() -> None:
    load = _harness().parse_wrk(WRK_OUTPUT)
    assert (load.requests, load.non_2xx, load.socket_errors) == (10331, 7, 5)
    assert load.rps == pytest.approx(10331 / 2.01)


def test_a_side_with_errors_makes_its_row_not_a_result() -> None:
    h = _harness()
    clean = h.Figures("a", [h.Round(h.Load(100, 1.0, 0, 0), 0.1, 0.1)])
    broken = h.Figures("b", [h.Round(h.Load(100, 1.0, 2, 0), 0.1, 0.1)])
    assert h.not_a_result("row", "target", clean, clean) is None
    row = h.not_a_result("row", "target", clean, broken)
    assert row.verdict == "not a result (errors)"
    assert "| row |" in h.table([row])


POOLS_CONFIG = """\
origins: {site: {s3: "./site"}}
functions:
  stamp: {runtime: python3.12, code: ./fn, handler: fns.stamp}
  secure: {runtime: python3.12, code: ./fn, handler: fns.secure}
behaviors:
  - path_pattern: "*"
    origin: site
    cache_policy: CachingDisabled
    functions: {viewer-request: stamp, viewer-response: secure}
"""
POOLS_FUNCTIONS = """\
def stamp(event, context):
    request = event["Records"][0]["cf"]["request"]
    print("stamp saw", request["uri"])
    return request


def secure(event, context):
    response = event["Records"][0]["cf"]["response"]
    print("secure saw", response["status"])
    return response
"""


def test_the_bare_round_trip_server_invokes_the_functions_a_request_ran(tmp_path: Path) -> None:
    h = _harness()
    (tmp_path / "fn").mkdir()
    (tmp_path / "site").mkdir()
    (tmp_path / "fn" / "fns.py").write_text(POOLS_FUNCTIONS)
    (tmp_path / "site" / "page.html").write_bytes(h.BODY)
    (tmp_path / "bench.yaml").write_text(POOLS_CONFIG)
    with h.Lab() as lab:
        server = lab.pools("pools", tmp_path / "bench.yaml", "/page.html")
        assert "functions: stamp, secure" in server.log_text()
        answers = [h.fetch(server.url + path) for path in ("/invoke", "/invoke", "/none")]
        assert [(status, body) for status, _, body in answers] == [(200, h.BODY)] * 3
        # the two functions the request ran, once per /invoke
        assert [headers.get("X-Invocations") for _, headers, _ in answers] == ["2", "4", None]
        assert len(server.process.children(recursive=True)) >= 2  # a warm worker per function
