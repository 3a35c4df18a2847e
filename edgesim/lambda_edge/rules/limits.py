"""Header-size limits, checked before the per-header rules so that a huge result is cheap to refuse.

Reading a headers object line by line (names, keys, characters, the read-only lists) costs time
in proportion to its size, and it runs on the event loop every other viewer is waiting on. A
function that returns 100,000 headers would hold that loop for most of a second per request.
These checks come first and stop counting as soon as a limit is passed: every line costs at least
five bytes (a one-letter name, ``": "`` and CRLF), so at most ``limit / 5 + 1`` lines are read
whatever the function returned.

Which limits, from the sources (lambda-edge.md §2.2, §3.4, §3.5; cloudfront-caching.md §5):

- A response trigger's result is the response CloudFront goes on with, and CloudFront's quota
  page caps an origin response's headers at 20,480 bytes (:data:`edgesim.quotas.HEADERS_MAX_BYTES`,
  the limit the origin fetcher already applies to what an origin sends). edgesim holds the
  response a function returns to the same limit; over it is the Lambda validation error (502).
  lambda-edge.md §3.4 also cites a Docs-2025 figure of 32,768 bytes; edgesim keeps one limit for
  origin responses and function results alike, the one the fetcher uses.
- A generated response counts its header lines towards its trigger's generated-response size
  (40 KB viewer-request, 1 MB origin-request, headers and body together); the headers alone can
  already pass it.
- A request returned by a request trigger is not held to any header size here. CloudFront's
  20,480-byte request limit is documented for the viewer's request (answered 413 on arrival,
  before any function runs), and no source documents a refusal of a function's request for its
  size (§3.4: "No documented per-header name/value length limit for function output").

Lines are measured as :func:`~edgesim.lambda_edge.rules.headers.header_bytes` measures them:
``Name: value`` and CRLF, in UTF-8. An entry of the wrong shape counts what it has; the header
rules that run next name the shape problem.
"""

from __future__ import annotations

from edgesim.lambda_edge.rules.body import BODY_REJECTED
from edgesim.lambda_edge.rules.common import FAILED, reject
from edgesim.quotas import HEADERS_MAX_BYTES, LAMBDA_EDGE
from edgesim.types import EventType

__all__ = ["LINE_OVERHEAD", "check_generated_headers_size", "check_response_headers_size", "over"]

# ": " between name and value, CRLF after the value
LINE_OVERHEAD = 4


def over(headers: object, limit: int) -> int | None:
    """Bytes counted once a headers object's lines pass ``limit``, or None when they fit.

    The count stops at the first line that passes the limit, so the number returned is a lower
    bound on the whole size, always greater than ``limit``. Anything that is not a headers
    object of lists counts as no lines: the shape rules refuse it.
    """
    if not isinstance(headers, dict):
        return None
    total = 0
    for name, entries in headers.items():
        if not isinstance(entries, list):
            continue
        name_bytes = len(name) if isinstance(name, str) else 0
        for entry in entries:
            total += LINE_OVERHEAD + _line_bytes(name_bytes, entry)
            if total > limit:
                return total
    return None


def _line_bytes(name_bytes: int, entry: object) -> int:
    if not isinstance(entry, dict):
        return name_bytes
    key, value = entry.get("key"), entry.get("value")
    if isinstance(key, str) and key:
        name_bytes = _utf8_len(key)
    return name_bytes + (_utf8_len(value) if isinstance(value, str) else 0)


def _utf8_len(text: str) -> int:
    # A lone surrogate has no UTF-8 form; the header rules refuse it, so only measure it here.
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def check_response_headers_size(event_type: EventType, headers: object) -> None:
    """Refuse a response trigger's headers beyond CloudFront's 20,480 bytes of response headers."""
    size = over(headers, HEADERS_MAX_BYTES)
    if size is not None:
        reject(
            f"{FAILED}The response headers are over CloudFront's limit of {HEADERS_MAX_BYTES} "
            f"bytes in a {event_type} result (at least {size} bytes in 'Name: value' lines "
            f"with CRLF, in {_count(headers)} header names)"
        )


def check_generated_headers_size(event_type: EventType, headers: object) -> None:
    """Refuse a generated response whose headers alone pass the trigger's response size."""
    limit = LAMBDA_EDGE[event_type].response_max_bytes
    size = over(headers, limit)
    if size is not None:
        reject(
            f"{BODY_REJECTED}The response headers alone are over the {limit} byte limit of "
            f"{event_type} (at least {size} bytes in 'Name: value' lines with CRLF, "
            f"in {_count(headers)} header names)"
        )


def _count(headers: object) -> int:
    return len(headers) if isinstance(headers, dict) else 0
