"""Where mitmproxy finds edgesim's addon: ``python -m edgesim.mitm --path``.

The addon itself is :mod:`edgesim.frontdoors.mitm`; this module only names its file, so it
imports neither mitmproxy nor the rest of edgesim and answers on any Python edgesim runs on::

    mitmdump -s "$(python -m edgesim.mitm --path)" --set edgesim_distribution=site.yaml
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["ADDON_PATH", "main"]

ADDON_PATH = Path(__file__).resolve().parent / "frontdoors" / "mitm.py"
_USAGE = "usage: python -m edgesim.mitm --path   (prints the addon's file for mitmproxy's -s)"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the addon's path for ``--path``; anything else prints the usage (status 2)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--path"]:
        print(ADDON_PATH)
        return 0
    print(_USAGE, file=sys.stderr)
    return 0 if args in (["-h"], ["--help"]) else 2


if __name__ == "__main__":
    raise SystemExit(main())
