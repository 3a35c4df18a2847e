"""HTTP validators and byte ranges, shared by the S3-style origin and the edge cache.

Both answer conditional and range requests from a whole object they hold: the folder origin from
a file, the cache from a stored response. Only a single byte range is served, as S3 does; several
ranges or a malformed header get the whole object, which CloudFront also does for ranges it cannot
satisfy as asked (overlapping, descending or invalid).
"""

from __future__ import annotations

import re
from dataclasses import replace
from email.utils import parsedate_to_datetime

from edgesim.http import EdgeResponse, Headers

__all__ = ["etag_listed", "http_date", "not_modified", "parse_range", "range_response"]

_RANGE = re.compile(r"\s*bytes=(\d*)-(\d*)\s*", re.ASCII)
# What a 304 repeats of the full response (RFC 9110 §15.4.5).
_NOT_MODIFIED_KEEPS = ("cache-control", "content-location", "date", "etag", "expires", "vary")


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
    """One byte range as inclusive ``(start, end)``, ``"unsatisfiable"``, or None to ignore."""
    match = _RANGE.fullmatch(value)
    if match is None:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return max(size - suffix, 0), size - 1
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        return "unsatisfiable"
    end = min(int(last), size - 1) if last else size - 1
    return start, end


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


def range_response(request_headers: Headers, response: EdgeResponse) -> EdgeResponse:
    """``response`` cut to the viewer's ``Range`` (206 or 416), or unchanged when none applies."""
    header = request_headers.get("Range")
    if header is None or response.status != 200:
        return response
    if_range = request_headers.get("If-Range")
    if if_range is not None and if_range.strip() not in (
        response.headers.get("ETag"),
        response.headers.get("Last-Modified"),
    ):
        return response
    size = len(response.body)
    parsed = parse_range(header, size)
    if parsed is None:
        return response
    headers = response.headers.copy()
    if parsed == "unsatisfiable":
        headers.remove("Content-Length")
        headers.set("Content-Range", f"bytes */{size}")
        return replace(
            response, status=416, reason="Range Not Satisfiable", headers=headers, body=b""
        )
    assert isinstance(parsed, tuple)
    start, end = parsed
    headers.set("Content-Range", f"bytes {start}-{end}/{size}")
    headers.set("Content-Length", str(end - start + 1))
    return replace(
        response,
        status=206,
        reason="Partial Content",
        headers=headers,
        body=response.body[start : end + 1],
    )
