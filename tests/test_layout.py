"""Project layout rules: mirror tests, the public API, and which package may import which.

The tree is layered by CloudFront concept (docs/architecture.md). A package may import its own
modules and packages of lower layers, never one above it; base modules are the bottom layer.
Imports under ``if TYPE_CHECKING:`` are for annotations only and do not count.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import edgesim
from tests.python_source import run_time_tree

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "edgesim"

# Modules whose behaviour is covered by a test file of another name, and why.
COVERED_ELSEWHERE = {
    "__main__": "tests/test_cli.py (python -m edgesim serve)",
    "runtime/__init__": "tests/runtime/test_pool.py",
}

# Lowest first. A top-level module not listed is a base module (layer 0).
LAYERS: dict[str, int] = {
    "cache": 1,
    "runtime": 1,
    "origins": 2,
    "config": 3,
    "lambda_edge": 4,
    # The distribution file's JSON Schema, generated from the config models.
    "schema": 4,
    "pipeline": 5,
    # `edgesim init`: writes a starter project with a copy of the schema.
    "starter": 5,
    "frontdoors": 6,
    # The test kit is a front door over the pipeline; serve=True also runs the HTTP front door.
    "testing": 7,
    "cli": 7,
    "__init__": 7,
    "__main__": 8,
}


def _mirror(module: Path) -> Path:
    relative = module.relative_to(PACKAGE).with_suffix("")
    return ROOT / "tests" / relative.parent / f"test_{relative.name}.py"


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _unit(module: Path) -> str:
    """The package (or base module) a module belongs to, for the layer rules."""
    parts = module.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _layer(unit: str) -> int:
    return LAYERS.get(unit, 0)


def _edgesim_imports(module: Path) -> set[str]:
    """Dotted names of the edgesim modules ``module`` imports (submodules resolved)."""
    tree = run_time_tree(module)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("edgesim"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("edgesim"):
            found.add(node.module)
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                if (PACKAGE.parent / (candidate.replace(".", "/") + ".py")).exists() or (
                    PACKAGE.parent / candidate.replace(".", "/") / "__init__.py"
                ).exists():
                    found.add(candidate)
    return found


def _dotted(module: Path) -> str:
    relative = module.relative_to(PACKAGE.parent).with_suffix("")
    return ".".join(relative.parts).removesuffix(".__init__")


def test_every_module_has_a_mirror_test() -> None:
    missing = []
    for module in _modules():
        key = str(module.relative_to(PACKAGE).with_suffix(""))
        if key in COVERED_ELSEWHERE or (module.name == "__init__.py" and module.parent != PACKAGE):
            continue  # a subpackage's __init__ re-exports; its modules have the tests
        if key == "__init__":
            continue  # covered by the export test below
        if not _mirror(module).exists():
            missing.append(f"{module.relative_to(ROOT)} -> {_mirror(module).relative_to(ROOT)}")
    assert missing == []


def _mitmproxy_available() -> bool:
    if os.environ.get("CI"):
        return True  # in CI a missing mitmproxy must fail, not skip
    return importlib.util.find_spec("mitmproxy") is not None


def test_public_names_are_exported_and_importable() -> None:
    for name in edgesim.__all__:
        assert getattr(edgesim, name) is not None
    for module in _modules():
        relative = module.relative_to(PACKAGE).with_suffix("")
        if relative.name in ("__main__", "python_worker", "python_boot"):
            continue  # scripts, not libraries
        dotted = _dotted(module)
        if relative.parts[-1].startswith("mitm") and not _mitmproxy_available():
            continue  # the addon needs the optional mitmproxy (Python 3.12+); CI always has it
        imported = importlib.import_module(dotted)
        exported = getattr(imported, "__all__", None)
        if exported is None:
            continue
        for name in exported:
            assert hasattr(imported, name), f"{dotted}.__all__ names missing {name}"


def test_no_package_imports_one_above_it() -> None:
    upward = []
    for module in _modules():
        unit = _unit(module)
        for name in _edgesim_imports(module):
            parts = name.split(".")
            if len(parts) < 2:
                continue  # "import edgesim" (the package itself): only the top layer does it
            target = parts[1]
            same_package = target == unit
            if same_package:
                continue
            if _layer(target) > _layer(unit) or (
                _layer(target) == _layer(unit) and _layer(unit) != 0
            ):
                upward.append(f"{_dotted(module)} imports {name}")
    assert upward == []


def test_no_import_cycles() -> None:
    graph = {_dotted(m): _edgesim_imports(m) for m in _modules()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph or nxt == node or node.startswith(nxt + "."):
                continue  # a module importing its own package's __init__ is not a cycle
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_the_cache_loads_nothing_of_functions_or_front_doors() -> None:
    code = (
        "import sys, edgesim.cache.store, edgesim.cache.key, edgesim.cache.ttl, "
        "edgesim.cache.conditional, edgesim.cache.policies;"
        "print('\\n'.join(m for m in sys.modules if m.startswith('edgesim')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout.split()
    forbidden = ("edgesim.runtime", "edgesim.frontdoors", "edgesim.pipeline", "edgesim.lambda_edge")
    assert [m for m in loaded if m.startswith(forbidden)] == []
    assert "edgesim.cache.store" in loaded  # the check ran against the real import


def _top_level_imports(module: Path) -> set[str]:
    """First components of every module ``module`` imports, in any form."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_pipeline_imports_no_front_door_library() -> None:
    # aiohttp and mitmproxy belong to the front doors (the test kit is one); pytest only to the
    # test kit's plugin, so `import edgesim.testing` works without pytest.
    offenders = []
    for module in _modules():
        unit = _unit(module)
        allowed: set[str] = set()
        if unit in ("frontdoors", "cli", "__init__", "__main__", "testing"):
            allowed = {"aiohttp", "mitmproxy"}
        if module == PACKAGE / "testing" / "plugin.py":
            allowed.add("pytest")
            allowed.add("pytest_asyncio")
        for name in _top_level_imports(module) & {
            "aiohttp",
            "mitmproxy",
            "pytest",
            "pytest_asyncio",
        }:
            if name not in allowed:
                offenders.append(f"{_dotted(module)}: {name}")
    assert offenders == []


def test_nothing_outside_the_test_kit_imports_it() -> None:
    offenders = [
        f"{_dotted(module)} imports {name}"
        for module in _modules()
        if _unit(module) != "testing"
        for name in _edgesim_imports(module)
        if name == "edgesim.testing" or name.startswith("edgesim.testing.")
    ]
    assert offenders == []


def test_the_test_kit_loads_neither_pytest_nor_hypothesis() -> None:
    # Its plugin is the only place for pytest; Hypothesis is loaded when fuzzing is used.
    code = (
        "import sys, edgesim.testing;"
        "print(' '.join(m for m in ('pytest', 'pytest_asyncio', 'hypothesis') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout.split()
    assert loaded == []
