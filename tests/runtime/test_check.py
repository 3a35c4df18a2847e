"""The code check: the handler's file, the module's import and the handler, in each runtime."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesim.runtime import FunctionSpec
from edgesim.runtime.check import FunctionCodeError, check_code, handler_candidates
from tests.runtime.helpers import RUNTIME

NODE = "nodejs20.x"

# (runtime, handler, files, error type, file named, line named)
CASES = {
    "python-ok": (RUNTIME, "app.handler", {"app.py": "def handler(e, c):\n    return e\n"}, None),
    "python-syntax": (
        RUNTIME,
        "app.handler",
        {"app.py": "x = 1\ndef handler(e, c)\n    return e\n"},
        ("Runtime.UserCodeSyntaxError", "app.py", 2),
    ),
    "python-no-handler": (
        RUNTIME,
        "app.handler",
        {"app.py": "def other(e, c):\n    return e\n"},
        ("Runtime.HandlerNotFound", None, None),
    ),
    "python-import": (
        RUNTIME,
        "app.handler",
        {"app.py": "import not_installed_anywhere\n"},
        ("Runtime.ImportModuleError", None, None),
    ),
    "python-no-file": (
        RUNTIME,
        "main.handler",
        {"app.py": ""},
        ("Runtime.ImportModuleError", "main.py", None),
    ),
    "python-raises": (
        RUNTIME,
        "app.handler",
        {"app.py": "\n\nraise ValueError('no config')\n"},
        ("ValueError", "app.py", 3),
    ),
    "node-ok": (NODE, "index.handler", {"index.js": "exports.handler = async (e) => e;\n"}, None),
    "node-syntax": (
        NODE,
        "index.handler",
        {"index.js": "exports.handler = async (e) => {\n  return e +;\n};\n"},
        ("Runtime.UserCodeSyntaxError", "index.js", 2),
    ),
    "node-esm-syntax": (
        NODE,
        "index.handler",
        {"index.mjs": "export const handler = async (e) => {\n\n  let x = ;\n};\n"},
        ("Runtime.UserCodeSyntaxError", "index.mjs", 3),
    ),
    "node-no-handler": (
        NODE,
        "index.handler",
        {"index.js": "exports.other = async (e) => e;\n"},
        ("Runtime.HandlerNotFound", None, None),
    ),
    "node-import": (
        NODE,
        "index.handler",
        {"index.js": "require('not-installed-anywhere');\nexports.handler = async (e) => e;\n"},
        ("Runtime.ImportModuleError", None, None),
    ),
    "node-no-file": (
        NODE,
        "main.handler",
        {"index.js": ""},
        ("Runtime.ImportModuleError", "main.js", None),
    ),
}


def _spec(tmp_path: Path, runtime: str, handler: str, files: dict[str, str]) -> FunctionSpec:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return FunctionSpec(
        name="fn", runtime=runtime, code_dir=tmp_path, handler=handler, memory_mb=128, timeout_s=3
    )


@pytest.mark.parametrize("case", sorted(CASES))
async def test_each_runtime_error_names_its_type_file_and_line(tmp_path: Path, case: str) -> None:
    runtime, handler, files, expected = CASES[case]
    spec = _spec(tmp_path, runtime, handler, files)
    if expected is None:
        await check_code(spec)
        return
    error_type, file, line = expected
    with pytest.raises(FunctionCodeError) as caught:
        await check_code(spec)
    error = caught.value
    assert error.function == "fn"
    assert error.error_type == error_type
    assert error_type in str(error)
    if file is not None:
        assert error.file is not None and error.file.name == file
        assert file in str(error)
    if line is not None:
        assert error.line == line
        assert f"line {line}" in str(error)


def test_handler_candidates_follow_each_runtimes_lookup(tmp_path: Path) -> None:
    python = _spec(tmp_path, RUNTIME, "pkg/mod.handler", {})
    assert handler_candidates(python)[:2] == [
        tmp_path / "pkg" / "mod.py",
        tmp_path / "pkg" / "mod" / "__init__.py",
    ]
    node = _spec(tmp_path, NODE, "src/index.handler.nested", {})
    assert handler_candidates(node) == [
        tmp_path / "src" / "index",
        tmp_path / "src" / "index.js",
        tmp_path / "src" / "index.mjs",
        tmp_path / "src" / "index.cjs",
        tmp_path / "node_modules" / "index",
    ]
