"""Project layout rules: every module has its mirror test file; the public API is explicit."""

from __future__ import annotations

import importlib
from pathlib import Path

import edgesim

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "edgesim"

# Modules whose behaviour is covered by a test file of another name, and why.
COVERED_ELSEWHERE = {
    "__init__": "tests/test_layout.py (exports)",
    "__main__": "tests/test_cli.py (python -m edgesim serve)",
    "rules_common": "tests/test_rules_common.py",
    "runtime/__init__": "tests/test_runtime_pool.py",
}


def _mirror(module: Path) -> Path:
    relative = module.relative_to(PACKAGE).with_suffix("")
    name = "_".join(relative.parts)
    return ROOT / "tests" / f"test_{name}.py"


def test_every_module_has_a_mirror_test() -> None:
    missing = []
    for module in sorted(PACKAGE.rglob("*.py")):
        key = str(module.relative_to(PACKAGE).with_suffix(""))
        if key in COVERED_ELSEWHERE:
            continue
        if not _mirror(module).exists():
            missing.append(f"{module.relative_to(ROOT)} -> {_mirror(module).relative_to(ROOT)}")
    assert missing == []


def test_public_names_are_exported_and_importable() -> None:
    for name in edgesim.__all__:
        assert getattr(edgesim, name) is not None
    for module in sorted(PACKAGE.rglob("*.py")):
        relative = module.relative_to(PACKAGE).with_suffix("")
        if relative.name in ("__main__", "python_worker"):
            continue  # scripts, not libraries
        dotted = ".".join(("edgesim", *relative.parts)).removesuffix(".__init__")
        imported = importlib.import_module(dotted)
        exported = getattr(imported, "__all__", None)
        if relative.name == "__init__" or exported is None:
            continue
        for name in exported:
            assert hasattr(imported, name), f"{dotted}.__all__ names missing {name}"
