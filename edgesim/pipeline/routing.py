"""Which behavior takes a request: CloudFront's path patterns, first match wins.

A pattern is literal text with two wildcards: ``*`` (zero or more characters, ``/`` included)
and ``?`` (exactly one character). Its leading ``/`` is optional and matching is case-sensitive.
Only the URI path takes part; the query string never does.

The path is matched in normalized form, as CloudFront does (RFC 3986 normalization before
behavior matching; the raw path is what reaches functions and the origin): percent-escapes of
unreserved characters are decoded and the others upper-cased, runs of ``/`` are merged, and
``.`` and ``..`` segments are resolved. So ``//api/x``, ``/%61pi/x`` and ``/static/../api/x``
all take an ``/api/*`` behavior. Other percent-escapes (``%20``, ``%2F``) stay encoded: a
pattern cannot contain ``%``, so they can only be matched by a wildcard.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgesim.config import BehaviorConfig, Distribution

__all__ = ["match_behavior", "normalize_path", "pattern_matches"]

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_SLASHES = re.compile(r"/{2,}")


@lru_cache(maxsize=4096)
def _compile(pattern: str) -> re.Pattern[str]:
    parts = ["/"]
    for char in pattern.removeprefix("/"):
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def pattern_matches(pattern: str, path: str) -> bool:
    """Whether a CloudFront path pattern matches a URI path (taken as given, not normalized)."""
    if not path.startswith("/"):
        path = "/" + path
    return _compile(pattern).fullmatch(path) is not None


def _unescape_unreserved(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def normalize_path(uri: str) -> str:
    """The path of ``uri`` as CloudFront compares it with path patterns (see the module doc)."""
    path = uri.split("#", 1)[0].split("?", 1)[0]
    if not path.startswith("/"):
        path = "/" + path
    path = _SLASHES.sub("/", _ESCAPE.sub(_unescape_unreserved, path))
    segments = path.split("/")[1:]
    kept: list[str] = []
    for index, segment in enumerate(segments):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
            continue
        if index == len(segments) - 1:
            kept.append("")  # "/a/.." names the folder "/", so it keeps its trailing slash
    return "/" + "/".join(kept)


def match_behavior(distribution: Distribution, uri: str) -> BehaviorConfig:
    """The first behavior whose pattern matches ``uri``'s normalized path.

    The last behavior of a loaded distribution is the default (``*``), so one always matches.
    """
    path = normalize_path(uri)
    for behavior in distribution.behaviors:
        if _compile(behavior.path_pattern).fullmatch(path):
            return behavior
    return distribution.behaviors[-1]
