"""Which behavior takes a request (CloudFront's path patterns, first match wins), and the
requests CloudFront refuses or redirects itself before any function runs.

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
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from typing import TYPE_CHECKING

from edgesim.http import EdgeRequest
from edgesim.pages import METHOD_NOT_ALLOWED_MESSAGE
from edgesim.quotas import HEADERS_MAX_BYTES
from edgesim.trace import RedirectOutcome, RefusalOutcome

if TYPE_CHECKING:
    from edgesim.config import BehaviorConfig, Distribution

__all__ = [
    "MAX_REQUEST_BODY",
    "MAX_REQUEST_SIZE",
    "MAX_URL_LENGTH",
    "Redirect",
    "Refusal",
    "has_body",
    "match_behavior",
    "normalize_path",
    "pattern_matches",
    "refusal",
    "unparsed_refusal",
]

# CloudFront's request limits (spec cloudfront-caching.md §5): over them the viewer gets 413.
MAX_URL_LENGTH = 8192
MAX_REQUEST_SIZE = HEADERS_MAX_BYTES  # request line and headers, the query included, no body
# "Maximum file size for HTTP GET, POST, and PUT requests" (spec cloudfront-caching.md §5, AWS2023:
# 30 GB): an upload announced beyond it is refused with the same 413.
MAX_REQUEST_BODY = 30 * 1024**3
_TOO_LARGE = "Bad request. The request is too large."

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


# Viewers ask for the same paths over and over; normalizing is pure, so a hit reuses it.
@lru_cache(maxsize=4096)
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


@dataclass(frozen=True)
class Refusal:
    """CloudFront answers the request itself with its error page."""

    outcome: RefusalOutcome
    status: int
    message: str


@dataclass(frozen=True)
class Redirect:
    """CloudFront redirects the viewer itself (``redirect-to-https``)."""

    outcome: RedirectOutcome
    status: int
    location: str


def refusal(
    request: EdgeRequest, behavior: BehaviorConfig, default_host: str
) -> Refusal | Redirect | None:
    """What CloudFront answers itself before any function runs, in the order it checks."""
    if (
        len(request.target) > MAX_URL_LENGTH
        or _over_size_limit(request)
        or _announced_length(request) > MAX_REQUEST_BODY
    ):
        return Refusal(RefusalOutcome.REQUEST_TOO_LARGE, 413, _TOO_LARGE)
    if request.method not in behavior.allowed_methods:
        return Refusal(RefusalOutcome.METHOD_NOT_ALLOWED, 403, METHOD_NOT_ALLOWED_MESSAGE)
    if request.method == "GET" and has_body(request):
        return Refusal(RefusalOutcome.GET_WITH_BODY, 403, "Bad request.")
    if request.scheme != "https":
        if behavior.viewer_protocol_policy == "https-only":
            return Refusal(RefusalOutcome.HTTPS_ONLY, 403, "Bad request.")
        if behavior.viewer_protocol_policy == "redirect-to-https":
            host = request.headers.get("Host") or default_host
            if request.method in ("GET", "HEAD"):
                status = 301
            elif _before_http_1_1(request.http_version):
                # A 307 keeps the method and body, and HTTP/1.0 has no 307: CloudFront refuses
                # instead (spec cloudfront-caching.md §1.3, viewer protocol policy results).
                return Refusal(RefusalOutcome.NO_REDIRECT_BELOW_HTTP11, 403, "Bad request.")
            else:
                status = 307
            location = f"https://{host.split(':')[0]}{request.target}"
            return Redirect(RedirectOutcome.TO_HTTPS, status, location)
    return None


def _before_http_1_1(version: str) -> bool:
    """Whether an ``http_version`` (``1.0``, ``HTTP/1.0``, ``2``) is older than HTTP/1.1."""
    major, _, minor = version.upper().removeprefix("HTTP/").partition(".")
    try:
        return (int(major), int(minor or 0)) < (1, 1)
    except ValueError:
        return False


def unparsed_refusal(*, too_large: bool) -> Refusal:
    """CloudFront's answer to bytes that are not an HTTP request it accepts: 413 when they broke
    a size limit before they could be read, 400 otherwise."""
    if too_large:
        return Refusal(RefusalOutcome.REQUEST_TOO_LARGE, 413, _TOO_LARGE)
    return Refusal(RefusalOutcome.MALFORMED, 400, "Bad request.")


def _announced_length(request: EdgeRequest) -> int:
    length = request.headers.get("Content-Length")
    if length is None or not length.strip().isdigit():
        return 0
    return int(length)


def has_body(request: EdgeRequest) -> bool:
    """Whether the request carries a body, buffered or still streaming in."""
    if request.body:
        return True
    if request.stream is None:
        return False
    length = request.headers.get("Content-Length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in request.headers


def _over_size_limit(request: EdgeRequest) -> bool:
    """Whether the request line and header lines, as they came on the wire (CRLFs included),
    are over :data:`MAX_REQUEST_SIZE` bytes."""
    line = f"{request.method} {request.target} HTTP/1.1\r\n"
    lines = request.headers.named_lines()[0]
    text = "".join(chain.from_iterable(lines))
    characters = len(line) + len(text) + 4 * len(lines)
    if 4 * characters <= MAX_REQUEST_SIZE or (line.isascii() and text.isascii()):
        # One byte a character; or so far under the limit that even four bytes each (the most
        # UTF-8 takes) cannot reach it.
        return characters > MAX_REQUEST_SIZE
    # Non-ASCII text stands for more than one byte each: count the bytes as they came.
    size = len(_wire(line)) + sum(len(_wire(name)) + len(_wire(value)) + 4 for name, value in lines)
    return size > MAX_REQUEST_SIZE


def _wire(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")
