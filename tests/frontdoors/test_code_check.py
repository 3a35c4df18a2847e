"""The code check of whole distributions: one ConfigError per broken function, in the file's
terms (file, key, the runtime's own error)."""

from __future__ import annotations

from pathlib import Path

from edgesim.config import load_distribution
from edgesim.frontdoors.code_check import check_distribution_code, check_functions
from edgesim.pipeline.functions import function_specs
from tests.runtime.helpers import RUNTIME

ROOT = Path(__file__).resolve().parent.parent.parent


def _distribution(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    for name, file, text in (
        ("good", "app.py", "def handler(e, c):\n    return e\n"),
        ("typo", "app.py", "def handler(e, c):\n    return e +\n"),
        ("unnamed", "index.js", "exports.other = async (e) => e;\n"),
    ):
        (tmp_path / name).mkdir()
        (tmp_path / name / file).write_text(text)
    path = tmp_path / "d.yaml"
    path.write_text(
        f"""
origins: {{site: {{s3: site}}}}
functions:
  good: {{runtime: {RUNTIME}, code: good, handler: app.handler}}
  typo: {{runtime: {RUNTIME}, code: typo, handler: app.handler}}
  unnamed: {{runtime: nodejs20.x, code: unnamed, handler: index.handler}}
behaviors:
  - {{path_pattern: /a/*, origin: site, functions: {{viewer-request: typo}}}}
  - {{path_pattern: /b/*, origin: site, functions: {{viewer-request: unnamed}}}}
  - {{path_pattern: "*", origin: site, functions: {{viewer-request: good}}}}
"""
    )
    return path


async def test_each_broken_function_is_one_error_naming_file_key_and_runtime_error(
    tmp_path: Path,
) -> None:
    path = _distribution(tmp_path)
    problems = await check_distribution_code(["d.yaml"], [load_distribution(path)])
    assert [(p.file, p.key) for p in problems] == [
        ("d.yaml", "functions.typo.handler"),
        ("d.yaml", "functions.unnamed.handler"),
    ]
    typo, unnamed = (str(p) for p in problems)
    assert typo.startswith("d.yaml: functions.typo.handler: Runtime.UserCodeSyntaxError: ")
    assert f"{tmp_path / 'typo' / 'app.py'}, line 2" in typo
    assert "Runtime.HandlerNotFound: index.handler is undefined or not exported" in unnamed


async def test_the_bundled_example_passes() -> None:
    example = load_distribution(ROOT / "distributions" / "example.yaml")
    assert await check_functions("example.yaml", function_specs(example)) == []
