"""HTTP validators and byte ranges, shared by the S3-style origin and the edge cache.

Both answer conditional and range requests from a whole object they hold: the folder origin from
a file, the cache from a stored response. The folder origin serves a single byte range only, as
S3 does (:func:`parse_range`). The cache follows CloudFront (spec cloudfront-caching.md §3.3),
which follows the RFC: several ranges get a 206 ``multipart/byteranges`` (RFC 9110 §14.6), except
that ranges out of ascending order, overlapping ranges or any invalid range spec get the whole
object with 200 (:func:`range_response`). Ranges past the end are left out of a set, which is
unsatisfiable (416) only when none of its ranges can be served (RFC 9110 §14.1.1).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import replace
from email.utils import parsedate_to_datetime

from edgesim.http import EdgeRequest, EdgeResponse, Headers

__all__ = [
    "answer_from_object",
    "asks_if_modified",
    "etag_listed",
    "for_the_origin",
    "http_date",
    "if_range_holds",
    "not_modified",
    "parse_range",
    "range_response",
]

_RANGES = re.compile(r"\s*bytes\s*=(.*)", re.ASCII | re.IGNORECASE | re.DOTALL)
_SPEC = re.compile(r"\s*(\d*)-(\d*)\s*", re.ASCII)
# What a 304 repeats of the full response (RFC 9110 §15.4.5).
_NOT_MODIFIED_KEEPS = ("cache-control", "content-location", "date", "etag", "expires", "vary")
# The viewer's validators: the edge answers them from the whole object it holds or fetches.
_VALIDATORS = frozenset({"if-match", "if-none-match", "if-modified-since", "if-unmodified-since"})
# Range goes to the origin unless the edge holds the whole object (spec §3.3, §4.1).
_RANGE = frozenset({"range", "if-range"})


def etag_listed(header: str, etag: str, *, weak: bool) -> bool:
    """Whether ``etag`` is in an ``If-Match``/``If-None-Match`` list (``*`` matches any)."""
    bare = etag[2:] if etag.startswith("W/") else etag
    for raw in header.split(","):
        candidate = raw.strip()
        if candidate == "*":
            return True
        if candidate.startswith("W/"):
            if not weak:
                continue
            candidate = candidate[2:]
        if candidate == etag or (weak and candidate == bare):
            return True
    return False


def http_date(value: str | None) -> int | None:
    """An HTTP date as epoch seconds, or None when absent or unreadable."""
    if value is None:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def parse_range(value: str, size: int) -> tuple[int, int] | str | None:
    """One byte range as inclusive ``(start, end)``, ``"unsatisfiable"``, or None to ignore.

    Several ranges are ignored too (None): S3 answers them with the whole object.
    """
    specs = _range_specs(value)
    if specs is None or len(specs) != 1:
        return None
    ranges = _served_ranges(specs, size)
    return ranges[0] if isinstance(ranges, list) else ranges


def _range_specs(value: str) -> list[tuple[int | None, int | None]] | None:
    """The ``first-last`` pairs of a ``bytes=`` header (a missing number is None), or None
    when any spec is malformed: a last before its first, a bare ``-``, a negative number."""
    match = _RANGES.fullmatch(value)
    if match is None:
        return None
    specs: list[tuple[int | None, int | None]] = []
    for item in match.group(1).split(","):
        if not item.strip():
            continue  # empty list members are allowed (RFC 9110 §5.6.1)
        spec = _SPEC.fullmatch(item)
        if spec is None:
            return None
        first = int(spec.group(1)) if spec.group(1) else None
        last = int(spec.group(2)) if spec.group(2) else None
        if (first is None and last is None) or (
            first is not None and last is not None and last < first
        ):
            return None
        specs.append((first, last))
    return specs or None


def _served_ranges(
    specs: list[tuple[int | None, int | None]], size: int
) -> list[tuple[int, int]] | str | None:
    """The ranges to serve, inclusive and within the object, in order; ``"unsatisfiable"``; or
    None when CloudFront serves the whole object instead (out of order or overlapping)."""
    served: list[tuple[int, int]] = []
    previous_end = -1.0
    for first, last in specs:
        if first is None:
            if not last:
                continue  # `-0` selects nothing
            start, end = max(size - last, 0), float(size - 1)
        else:
            # Judged as written: an open or overlong range reaches past anything after it.
            start, end = first, float("inf") if last is None else float(last)
        if start <= previous_end:
            return None
        previous_end = end
        if start < size:
            served.append((start, int(min(end, size - 1))))
    return served or "unsatisfiable"


def for_the_origin(request: EdgeRequest, *, with_range: bool) -> EdgeRequest:
    """A cacheable request minus what the edge answers itself: the viewer's validators, so the
    origin sends a whole, storable object, and its ``Range`` too unless ``with_range``."""
    drop = _VALIDATORS if with_range else _VALIDATORS | _RANGE
    if not any(name.lower() in drop for name, _ in request.headers):
        return request
    headers = request.headers.copy()
    headers.remove(*drop)
    return replace(request, headers=headers)


def asks_if_modified(headers: Headers) -> bool:
    """Whether the viewer sent a validator a 304 can answer."""
    return "if-none-match" in headers or "if-modified-since" in headers


def answer_from_object(
    method: str, request_headers: Headers, response: EdgeResponse
) -> EdgeResponse:
    """What a viewer gets from a whole 200 object the edge holds: a 304 when its validators
    match (keeping ``Age``), else its ``Range`` cut (206/416; for GET only, the one method
    with range handling, RFC 9110 §14.2), else the object itself."""
    if response.status != 200 or method not in ("GET", "HEAD"):
        return response
    unchanged = not_modified(request_headers, response)
    if unchanged is not None:
        if (age := response.headers.get("Age")) is not None:
            unchanged.headers.set("Age", age)
        return unchanged
    return range_response(request_headers, response) if method == "GET" else response


def not_modified(request_headers: Headers, response: EdgeResponse) -> EdgeResponse | None:
    """A 304 for ``response`` when the viewer's validators say it already has it, else None.

    ``If-None-Match`` wins over ``If-Modified-Since`` when both are sent (RFC 9110 §13.2.2).
    """
    if_none_match = request_headers.get("If-None-Match")
    if_modified_since = request_headers.get("If-Modified-Since")
    if if_none_match is None and if_modified_since is None:
        return None
    etag = response.headers.get("ETag")
    if if_none_match is not None:
        if etag is None or not etag_listed(if_none_match, etag, weak=True):
            return None
    else:
        since = http_date(if_modified_since)
        modified = http_date(response.headers.get("Last-Modified"))
        if since is None or modified is None or modified > since:
            return None
    kept = Headers((k, v) for k, v in response.headers if k.lower() in _NOT_MODIFIED_KEEPS)
    if (last_modified := response.headers.get("Last-Modified")) is not None:
        kept.add("Last-Modified", last_modified)
    return EdgeResponse(status=304, headers=kept)


def if_range_holds(request_headers: Headers, response: EdgeResponse) -> bool:
    """False when the viewer's ``If-Range`` names another version than ``response``, which turns
    a range request into a request for the whole object."""
    if_range = request_headers.get("If-Range")
    return if_range is None or if_range.strip() in (
        response.headers.get("ETag"),
        response.headers.get("Last-Modified"),
    )


def range_response(request_headers: Headers, response: EdgeResponse) -> EdgeResponse:
    """``response`` cut to the viewer's ``Range`` (206 or 416), or unchanged when none applies.

    Only a whole 200 object is cut. One range gets ``Content-Range``; several get a
    ``multipart/byteranges`` body.
    """
    header = request_headers.get("Range")
    if header is None or response.status != 200 or not if_range_holds(request_headers, response):
        return response
    size = len(response.body)
    specs = _range_specs(header)
    ranges = None if specs is None else _served_ranges(specs, size)
    if ranges is None:
        return response
    headers = response.headers.copy()
    # A part cut from the cache has a known length: it goes out with it, not in chunks, even
    # when the whole object is kept as the chunked answer it arrived as (§3.10).
    headers.remove("Transfer-Encoding")
    if isinstance(ranges, str):
        headers.remove("Content-Length")
        headers.set("Content-Range", f"bytes */{size}")
        return replace(
            response, status=416, reason="Range Not Satisfiable", headers=headers, body=b""
        )
    if len(ranges) == 1:
        [(start, end)] = ranges
        headers.set("Content-Range", f"bytes {start}-{end}/{size}")
        body = response.body[start : end + 1]
    else:
        boundary = secrets.token_hex(16)
        body = _multipart(response, ranges, boundary)
        headers.remove("Content-Range")
        headers.set("Content-Type", f"multipart/byteranges; boundary={boundary}")
    headers.set("Content-Length", str(len(body)))
    return replace(response, status=206, reason="Partial Content", headers=headers, body=body)


def _multipart(response: EdgeResponse, ranges: list[tuple[int, int]], boundary: str) -> bytes:
    """A ``multipart/byteranges`` body (RFC 9110 §14.6): each part carries the object's
    ``Content-Type`` and its own ``Content-Range``."""
    size = len(response.body)
    content_type = response.headers.get("Content-Type")
    out = bytearray()
    for start, end in ranges:
        out += f"--{boundary}\r\n".encode()
        if content_type is not None:
            out += f"Content-Type: {content_type}\r\n".encode("latin-1")
        out += f"Content-Range: bytes {start}-{end}/{size}\r\n\r\n".encode()
        out += response.body[start : end + 1]
        out += b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)
