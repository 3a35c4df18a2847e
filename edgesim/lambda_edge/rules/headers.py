"""Lambda@Edge header rules: the shape of a headers object, and which headers a function may touch.

A headers object maps a lowercase header name to an array of ``{"key": ..., "value": ...}``
entries, one per header line. On top of that shape CloudFront enforces three lists
(lambda-edge.md §3.1-3.3): *disallowed* headers a function may never return, *read-only* headers
it may read but must return exactly as received (per trigger; edgesim follows the Docs-2025
lists), and CloudFront-Viewer-Country, which only exists after the viewer-request event. Origin
custom headers have a fourth list, the headers CloudFront refuses to add to origin requests
(§3.4).

Read-only headers are compared by value, line by line: a function that rewrites ``key`` casing
alone has changed nothing CloudFront forwards, so that is not a change.

Names CloudFront documents no refusal for. The map name is the header; ``key`` is only its
case-sensitive spelling (§1.3). AWS publishes functions that break the documented shape and
expects them to work: its "Override a response header" example copies the entry of
``x-amz-meta-last-modified`` (key ``X-Amz-Meta-Last-Modified``) into ``headers['last-modified']``
and reports Last-Modified as set; awslabs' modify-response-header sets
``headers['headerToModify']``. No source documents a refusal or what CloudFront sends, so in a
function's ``headers`` edgesim reads them as those examples expect, and records a note saying so:

- a map name that is not lowercase is that name lowercased (HTTP names ignore case); map names
  that differ only in case are one header, their lines in the order returned;
- a ``key`` that does not spell the map name is ignored, so the line is spelt as CloudFront
  spells an entry without a key. The map name wins because it is what the example sets, and
  because a key that won could carry a disallowed or read-only header past the lists, which are
  checked on the map name.

Origin custom headers stay strict: CloudFront documents their refusal ("One or more HeaderName
or HeaderValue values are invalid", §3.4).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from edgesim.lambda_edge.rules.common import (
    FAILED,
    INVALID_HEADERS,
    first_control_char,
    json_type,
    percent_encoded,
    reject,
)
from edgesim.types import EventType

__all__ = [
    "CUSTOM_HEADER_DENIED",
    "CUSTOM_HEADER_DENIED_PREFIXES",
    "DISALLOWED_HEADERS",
    "DISALLOWED_PREFIXES",
    "READ_ONLY_HEADERS",
    "UNDOCUMENTED",
    "VIEWER_REQUEST_NOT_ADDABLE",
    "HeaderLines",
    "check_disallowed",
    "check_header_map",
    "check_read_only",
    "check_viewer_headers_not_added",
    "display_name",
    "event_header_lines",
    "header_bytes",
    "is_custom_header_denied",
    "is_disallowed",
]

# name -> [(key or None, value), ...], in the order the function returned them
HeaderLines = dict[str, list[tuple[str | None, str]]]

# §3.1, identical in Docs-2023 and Docs-2025, lowercased; the two wildcards are prefixes below.
DISALLOWED_HEADERS = frozenset(
    {
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "trailer",
        "upgrade",
        "x-accel-buffering",
        "x-accel-charset",
        "x-accel-limit-rate",
        "x-accel-redirect",
        "x-amzn-auth",
        "x-amzn-cf-billing",
        "x-amzn-cf-id",
        "x-amzn-cf-xff",
        "x-amzn-errortype",
        "x-amzn-fle-profile",
        "x-amzn-header-count",
        "x-amzn-header-order",
        "x-amzn-lambda-integration-tag",
        "x-amzn-requestid",
        "x-cache",
        "x-forwarded-proto",
        "x-real-ip",
    }
)
DISALLOWED_PREFIXES = ("x-amz-cf-", "x-edge-")

# §3.2, Docs-2025 column (adds CDN-Loop to the request triggers and Content-Length,
# Content-Encoding and Transfer-Encoding to viewer-response).
READ_ONLY_HEADERS: Mapping[EventType, frozenset[str]] = {
    EventType.VIEWER_REQUEST: frozenset(
        {"cdn-loop", "content-length", "host", "transfer-encoding", "via"}
    ),
    EventType.ORIGIN_REQUEST: frozenset(
        {
            "accept-encoding",
            "cdn-loop",
            "content-length",
            "if-modified-since",
            "if-none-match",
            "if-range",
            "if-unmodified-since",
            "transfer-encoding",
            "via",
        }
    ),
    EventType.ORIGIN_RESPONSE: frozenset({"transfer-encoding", "via"}),
    EventType.VIEWER_RESPONSE: frozenset(
        {"content-encoding", "content-length", "transfer-encoding", "via", "warning"}
    ),
}

# §3.3: a function may add the CloudFront viewer headers anywhere, but CloudFront documents that a
# viewer-request function adding this one fails validation (CloudFront adds it later).
VIEWER_REQUEST_NOT_ADDABLE = frozenset({"cloudfront-viewer-country"})

# §3.4: headers CloudFront will not add to origin requests as origin custom headers.
CUSTOM_HEADER_DENIED = frozenset(
    {
        "cache-control",
        "connection",
        "content-length",
        "cookie",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "max-forwards",
        "pragma",
        "proxy-authorization",
        "proxy-connection",
        "range",
        "request-range",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "via",
        "x-real-ip",
    }
)
CUSTOM_HEADER_DENIED_PREFIXES = ("x-amz-", "x-edge-")

# Said in every note on a reading of a name or key CloudFront documents no refusal for.
UNDOCUMENTED = "the behaviour is not documented by CloudFront"

# RFC 9110 §5.6.2 token characters
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def is_disallowed(name: str) -> bool:
    """Whether a function may never return this header (§3.1), whatever its case."""
    lower = name.lower()
    return lower in DISALLOWED_HEADERS or lower.startswith(DISALLOWED_PREFIXES)


def is_custom_header_denied(name: str) -> bool:
    """Whether CloudFront refuses this name as an origin custom header (§3.4)."""
    lower = name.lower()
    return lower in CUSTOM_HEADER_DENIED or lower.startswith(CUSTOM_HEADER_DENIED_PREFIXES)


def display_name(name: str, *sources: HeaderLines) -> str:
    """The spelling to show for a header: a ``key`` the function or event used, else title case."""
    for lines in sources:
        for key, _ in lines.get(name, ()):
            if key:
                return key
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))


def event_header_lines(headers: object) -> HeaderLines:
    """Read a headers object that edgesim itself built into an event (trusted, not validated)."""
    lines: HeaderLines = {}
    # Events and results are JSON objects, so plain dicts: isinstance against the Mapping ABC
    # would cost a Python-level check for every header line.
    if not isinstance(headers, dict):
        return lines
    for name, entries in headers.items():
        if not isinstance(entries, list):
            continue
        lines[str(name).lower()] = _trusted_lines(entries)
    return lines


def _trusted_lines(entries: list[Any]) -> list[tuple[str | None, str]]:
    """The lines of a header array edgesim built itself, read without checks."""
    return [
        (entry.get("key"), str(entry.get("value", "")))
        for entry in entries
        if isinstance(entry, dict)
    ]


def check_header_map(
    value: object,
    *,
    field: str,
    prefix: str = INVALID_HEADERS,
    notes: list[str] | None = None,
    sent: Mapping[str, Any] | None = None,
    sent_lines: HeaderLines | None = None,
) -> HeaderLines:
    """Validate the shape and characters of a headers object returned by a function.

    ``field`` names where it sits in the result (``headers``, ``origin.custom.customHeaders``);
    ``prefix`` is the opening of every reason, so origin custom headers can be reported as an
    invalid origin configuration the way CloudFront does. With ``notes``, names and keys
    CloudFront documents no refusal for are read as its published examples expect (see the
    module doc) and each reading is described in ``notes``; without, they are refused.
    The lines returned are keyed by lowercase name. ``sent`` is the headers object of the
    event the function received: an array returned exactly as it was sent is edgesim's own,
    already in shape, so its lines are taken as they are (most functions return most headers
    untouched, and checking each line again is most of the cost of a result); ``sent_lines``,
    when given, are those lines as :func:`event_header_lines` already read them.
    """
    where = "" if field == "headers" else f", field : {field}"
    if not isinstance(value, dict):
        reject(
            f"{prefix}The {field} field must be an object mapping lowercase header names to "
            f"arrays, got {json_type(value)}"
        )
    lines: HeaderLines = {}
    for name, entries in value.items():
        if sent is not None and entries == sent.get(name):
            known = sent_lines.get(name) if sent_lines is not None else None
            lines.setdefault(name, []).extend(_trusted_lines(entries) if known is None else known)
            continue
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            reject(f"{prefix}Header names must be valid HTTP tokens, headerName : {name!r}{where}")
        lower = name.lower()
        if name != lower:
            if notes is None:
                reject(
                    f"{prefix}Header names in the headers object must be lowercase, "
                    f"headerName : {name}{where}"
                )
            notes.append(
                f"The {field} object names the header {name!r}, which is not lowercase; "
                f"{UNDOCUMENTED}, edgesim reads it as {lower!r}"
            )
        if not isinstance(entries, list):
            reject(
                f"{prefix}Each header entry in the headers object must be an array, "
                f"headerName : {name}{where}"
            )
        lines.setdefault(lower, []).extend(
            _check_entry(name, entry, prefix=prefix, where=where, notes=notes) for entry in entries
        )
    return lines


def _check_entry(
    name: str, entry: object, *, prefix: str, where: str, notes: list[str] | None
) -> tuple[str | None, str]:
    if not isinstance(entry, dict):
        reject(
            f"{prefix}Each element of a header array must be an object with a value, "
            f"headerName : {name}{where}, got {json_type(entry)}"
        )
    key: Any = entry.get("key")
    if key is not None:
        if not isinstance(key, str):
            reject(
                f"{prefix}The key of a header entry must be a string, headerName : {name}{where}, "
                f"got {json_type(key)}"
            )
        # ASCII first: the Kelvin sign lowercases to "k", yet it is no header name.
        if not key.isascii() or key.lower() != name.lower():
            if notes is None:
                reject(
                    f"{prefix}The key of a header entry must match its header name ignoring "
                    f"case, headerName : {name}{where}, key : {key}"
                )
            sent = display_name(name.lower())
            notes.append(
                f"A header entry under {name!r} has the key {key!r}, which names another "
                f"header; {UNDOCUMENTED}, edgesim sends the line as {sent}, the map name"
            )
            key = None
    if "value" not in entry:
        reject(f"{prefix}A header entry has no value, headerName : {key or name}{where}")
    header_value: Any = entry["value"]
    if not isinstance(header_value, str):
        reject(
            f"{prefix}The value of each header entry must be a string, "
            f"headerName : {key or name}{where}, got {json_type(header_value)}"
        )
    bad = first_control_char(header_value, allow_tab=True)
    if bad is not None:
        opening = (
            f"{FAILED}The function returned an invalid header, "
            if prefix == INVALID_HEADERS
            else prefix
        )
        reject(
            f"{opening}invalid character : '{percent_encoded(bad)}' in header value, "
            f"headerName : {key or name}{where}"
        )
    if not header_value.isascii() and not _has_utf8(header_value):
        reject(
            f"{prefix}The value of a header entry is not valid Unicode text (a lone surrogate), "
            f"headerName : {key or name}{where}"
        )
    return key, header_value


def _has_utf8(text: str) -> bool:
    # A lone surrogate survives JSON decoding but cannot be encoded, so it could not be sent.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_disallowed(lines: HeaderLines) -> None:
    """Reject any disallowed header: events never carry one, so its presence is an addition."""
    for name in lines:
        if is_disallowed(name):
            reject(
                f"{FAILED}The function tried to add a blacklisted header, "
                f"headerName : {display_name(name, lines)}"
            )


# Checked in name order, so the header a refusal names does not depend on set order.
_READ_ONLY_IN_ORDER = {kind: sorted(names) for kind, names in READ_ONLY_HEADERS.items()}


def check_read_only(event_type: EventType, before: HeaderLines, after: HeaderLines) -> None:
    """Reject a read-only header of this trigger that was added, removed or changed."""
    for name in _READ_ONLY_IN_ORDER[event_type]:
        old_lines = before.get(name, ())
        new_lines = after.get(name, ())
        if old_lines == new_lines:
            continue  # the lines as they were, keys included: nothing to compare value by value
        old = [value for _, value in old_lines]
        new = [value for _, value in new_lines]
        if old != new:
            reject(
                f"{FAILED}The function tried to add, delete, or change a read-only header, "
                f"headerName : {display_name(name, after, before)}"
            )


def check_viewer_headers_not_added(before: HeaderLines, after: HeaderLines) -> None:
    """Viewer-request only: CloudFront-Viewer-Country cannot be added yet (§3.3).

    A viewer may send it itself; the function may keep, edit or drop that one.
    """
    for name in VIEWER_REQUEST_NOT_ADDABLE:
        if after.get(name) and not before.get(name):
            reject(
                f"{FAILED}The function tried to add a CloudFront viewer header in a viewer "
                "request event, before CloudFront adds these headers, "
                f"headerName : {display_name(name, after)}"
            )


def header_bytes(lines: HeaderLines) -> int:
    """Size of the header lines as ``Name: value`` plus CRLF, for the generated-response limit."""
    total = 0
    for name, entries in lines.items():
        for key, value in entries:
            total += len((key or name).encode("utf-8")) + len(value.encode("utf-8")) + 4
    return total
