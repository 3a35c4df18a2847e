"""Lambda@Edge header rules: the shape of a headers object, and which headers a function may touch.

A headers object maps a lowercase header name to an array of ``{"key": ..., "value": ...}``
entries, one per header line. On top of that shape CloudFront enforces three lists
(lambda-edge.md §3.1-3.3): *disallowed* headers a function may never return, *read-only* headers
it may read but must return exactly as received (per trigger; edgesim follows the Docs-2025
lists), and the CloudFront viewer headers that only exist after the viewer-request event. Origin
custom headers have a fourth list, the headers CloudFront refuses to add to origin requests
(§3.4).

Read-only headers are compared by value, line by line: a function that rewrites ``key`` casing
alone has changed nothing CloudFront forwards, so that is not a change.
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
    "VIEWER_HEADER_PREFIXES",
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

# §3.3: device and location headers CloudFront adds after the viewer-request event.
VIEWER_HEADER_PREFIXES = ("cloudfront-viewer-", "cloudfront-is-")

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
    if not isinstance(headers, Mapping):
        return lines
    for name, entries in headers.items():
        if not isinstance(entries, list):
            continue
        lines[str(name).lower()] = [
            (entry.get("key"), str(entry.get("value", "")))
            for entry in entries
            if isinstance(entry, Mapping)
        ]
    return lines


def check_header_map(value: object, *, field: str, prefix: str = INVALID_HEADERS) -> HeaderLines:
    """Validate the shape and characters of a headers object returned by a function.

    ``field`` names where it sits in the result (``headers``, ``origin.custom.customHeaders``);
    ``prefix`` is the opening of every reason, so origin custom headers can be reported as an
    invalid origin configuration the way CloudFront does.
    """
    where = "" if field == "headers" else f", field : {field}"
    if not isinstance(value, dict):
        reject(
            f"{prefix}The {field} field must be an object mapping lowercase header names to "
            f"arrays, got {json_type(value)}"
        )
    lines: HeaderLines = {}
    for name, entries in value.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            reject(f"{prefix}Header names must be valid HTTP tokens, headerName : {name!r}{where}")
        if name != name.lower():
            reject(
                f"{prefix}Header names in the headers object must be lowercase, "
                f"headerName : {name}{where}"
            )
        if not isinstance(entries, list):
            reject(
                f"{prefix}Each header entry in the headers object must be an array, "
                f"headerName : {name}{where}"
            )
        lines[name] = [_check_entry(name, entry, prefix=prefix, where=where) for entry in entries]
    return lines


def _check_entry(name: str, entry: object, *, prefix: str, where: str) -> tuple[str | None, str]:
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
        if not key.isascii() or key.lower() != name:
            reject(
                f"{prefix}The key of a header entry must match its header name ignoring case, "
                f"headerName : {name}{where}, key : {key}"
            )
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


def check_read_only(event_type: EventType, before: HeaderLines, after: HeaderLines) -> None:
    """Reject a read-only header of this trigger that was added, removed or changed."""
    for name in sorted(READ_ONLY_HEADERS[event_type]):
        old = [value for _, value in before.get(name, ())]
        new = [value for _, value in after.get(name, ())]
        if old != new:
            reject(
                f"{FAILED}The function tried to add, delete, or change a read-only header, "
                f"headerName : {display_name(name, after, before)}"
            )


def check_viewer_headers_not_added(before: HeaderLines, after: HeaderLines) -> None:
    """Viewer-request only: CloudFront's device/location headers cannot be added yet (§3.3).

    A viewer may send such a header itself; the function may keep, edit or drop that one.
    """
    for name in after:
        if name.startswith(VIEWER_HEADER_PREFIXES) and after[name] and not before.get(name):
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
