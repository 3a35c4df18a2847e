"""The runtime's view of a distribution's functions."""

from __future__ import annotations

from pathlib import Path

from edgesim.config import load_distribution
from edgesim.pipeline.functions import function_specs


def test_each_function_becomes_a_spec_with_its_settings(tmp_path: Path) -> None:
    (tmp_path / "fn").mkdir()
    path = tmp_path / "d.yaml"
    path.write_text(
        f'origins: {{o: {{url: "http://127.0.0.1:9000"}}}}\n'
        f'functions: {{f: {{runtime: python3.12, code: "{tmp_path / "fn"}", '
        "handler: app.handler, memory: 256, timeout: 3, reserved_concurrency: 2}}\n"
        "behaviors: [{path_pattern: '*', origin: o, functions: {origin-request: f}}]\n"
    )
    [spec] = function_specs(load_distribution(path))
    assert (spec.name, spec.runtime, spec.handler) == ("f", "python3.12", "app.handler")
    assert (spec.memory_mb, spec.timeout_s, spec.reserved_concurrency) == (256, 3.0, 2)
    assert spec.code_dir == tmp_path / "fn"
