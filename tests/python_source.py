"""Reading the suite's Python sources as the interpreter runs them."""

from __future__ import annotations

import ast
from pathlib import Path


def run_time_tree(source: Path) -> ast.Module:
    """``source`` parsed, with the bodies of ``if TYPE_CHECKING:`` blocks dropped: what they
    import is the type checker's alone, never loaded when the module runs."""
    tree = ast.parse(source.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            node.body = []
    return tree
