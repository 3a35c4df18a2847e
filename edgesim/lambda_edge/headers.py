"""Headers in Lambda@Edge events: CloudFront's header map, and the headers a function never sees.

CloudFront's header map keys each lowercase name to one ``{"key", "value"}`` object per line, in
the order of the lines; a function may leave ``key`` out, and then the name is title-cased.

Headers a function never sees. Hop-by-hop lines (and those a ``Connection`` line names) and the
headers Lambda@Edge lists as disallowed (``X-Amz-Cf-*``, ``X-Cache``, ``X-Edge-*``,
``X-Forwarded-Proto``, ``X-Real-IP`` ...) are left out of every event. Because the function could
neither see nor touch them, applying its result keeps them on the request or response as they
were; this is how ``X-Amz-Cf-Id`` survives an origin-request function on its way to the origin.

``Transfer-Encoding`` is the one hop-by-hop line a function does see: CloudFront lists it among
the read-only headers of all four triggers (spec lambda-edge.md §3.2), so a chunked upload shows
it at viewer-request and origin-request, and a chunked origin response at origin-response and
viewer-response, where code that drops it fails validation as it does at a real edge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from edgesim.http import HOP_BY_HOP, Headers
from edgesim.lambda_edge.rules import is_disallowed
from edgesim.lambda_edge.rules.headers import HeaderLines

__all__ = [
    "SHOWN_HOP_BY_HOP",
    "as_utf8",
    "kept_or_changed",
    "headers_from_cf",
    "headers_from_lines",
    "headers_to_cf",
    "merge_hidden",
    "split_hidden",
    "visible_cf",
]


def as_utf8(raw: str) -> str:
    """Viewer or origin text as a function receives it: always UTF-8.

    Bytes from the wire are kept as text decoded from UTF-8, with undecodable bytes as surrogate
    escapes, so they can go on byte for byte. CloudFront hands functions UTF-8 and converts
    anything else assuming ISO-8859-1 (spec lambda-edge.md §3.4), so text holding such bytes is
    read again, whole, as ISO-8859-1.
    """
    if raw.isascii():
        return raw
    data = raw.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def kept_or_changed(original: str, returned: str) -> str:
    """What goes on for a value a function was shown as :func:`as_utf8` of ``original``: the
    original bytes when it returned that unchanged, else the UTF-8 it returned (§3.4)."""
    return original if returned == as_utf8(original) else returned


def headers_to_cf(
    headers: Headers, *, skip: Callable[[str], bool] | None = None
) -> dict[str, list[dict[str, str]]]:
    """CloudFront's header map: lowercase name -> one ``{key, value}`` per line, in order.

    Converts every line it is given but those whose lowercase name ``skip`` accepts (the event
    builders skip the hidden headers, see :func:`visible_cf`).
    """
    cf: dict[str, list[dict[str, str]]] = {}
    items, names = headers.named_lines()
    for (name, value), lower in zip(items, names, strict=True):
        if skip is not None and skip(lower):
            continue
        entry = {"key": name, "value": value if value.isascii() else as_utf8(value)}
        entries = cf.get(lower)
        if entries is None:
            cf[lower] = [entry]
        else:
            entries.append(entry)
    return cf


def headers_from_cf(cf: Mapping[str, Any]) -> Headers:
    """A header map from a function back to lines; a missing ``key`` is the name title-cased."""
    headers = Headers()
    for name, entries in cf.items():
        for entry in entries or ():
            key = entry.get("key") or _title_case(name)
            headers.add(str(key), str(entry["value"]))
    return headers


def headers_from_lines(lines: HeaderLines) -> Headers:
    """Header lines the rules read from a result; a missing ``key`` is the name title-cased."""
    headers = Headers()
    for name, entries in lines.items():
        for key, value in entries:
            headers.add(key or _title_case(name), value)
    return headers


def _title_case(name: str) -> str:
    return "-".join(word[:1].upper() + word[1:] for word in name.split("-"))


# Hop-by-hop, yet read-only rather than hidden at every trigger (spec lambda-edge.md §3.2).
SHOWN_HOP_BY_HOP = frozenset({"transfer-encoding"})


# The hop-by-hop lines hidden when no Connection line names more.
_HIDDEN_HOP_BY_HOP = HOP_BY_HOP - SHOWN_HOP_BY_HOP


class _HiddenNames(dict[str, bool]):
    """Whether a lowercase name is hidden (when no Connection line names more), worked out once
    per name: a lookup in C for the names every request repeats, where a Python predicate per
    line was most of the cost of splitting a request's headers twice per function."""

    # Names come from viewers and origins: the memory is bounded by starting over.
    _MOST = 4096

    def __missing__(self, lower: str) -> bool:
        if len(self) >= self._MOST:
            self.clear()
        hides = self[lower] = lower in _HIDDEN_HOP_BY_HOP or is_disallowed(lower)
        return hides


_hidden = _HiddenNames()


def split_hidden(headers: Headers) -> tuple[Headers, Headers]:
    """(what a function sees, what it does not), each in the original order."""
    return headers.partition(_hides(headers))


def _hides(headers: Headers) -> Callable[[str], bool]:
    """Whether a line of ``headers``, by its lowercase name, is hidden from functions."""
    if "connection" not in headers:
        return _hidden.__getitem__
    named = {
        token.strip().lower()
        for value in headers.get_all("connection")
        for token in value.split(",")
    } - SHOWN_HOP_BY_HOP
    return lambda lower: lower in named or _hidden[lower]


def visible_cf(headers: Headers) -> dict[str, list[dict[str, str]]]:
    """The header map of the lines a function may see."""
    return headers_to_cf(headers, skip=_hides(headers))


def merge_hidden(result_headers: HeaderLines, original: Headers) -> Headers:
    """The function's headers plus the original lines it was never shown.

    A line the function returned as it was shown keeps its original bytes (see
    :func:`kept_or_changed`).
    """
    merged = headers_from_lines(result_headers)
    converted = {
        (name.lower(), as_utf8(value)): value for name, value in original if not value.isascii()
    }
    if converted:
        merged = Headers(
            (name, converted.get((name.lower(), value), value)) for name, value in merged
        )
    hidden = split_hidden(original)[1]
    if hidden:
        merged.extend(*hidden.named_lines())
    return merged
