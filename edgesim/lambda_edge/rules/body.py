"""Body rules: the request body of Include Body associations and the body of returned responses.

The sizes are each trigger's row of :data:`edgesim.quotas.LAMBDA_EDGE`. Two measuring choices,
since the documents give only the numbers:

- a replaced request body is measured as carried in the result: UTF-8 bytes of ``data`` for
  ``text``, characters of the base64 string for ``base64`` (the documented 53.2 KB / 1.33 MB
  limits are the text limits scaled by roughly 4/3);
- a response body is measured the same way, as the function returned it, plus its header lines
  (``Name: value`` and CRLF). CloudFront receives the result as JSON, and a real oversized
  base64 response was rejected while its decoded size was under the limit, so the encoded size
  is what counts.

Request body with Include Body off: the event had no body, so the function has nothing to keep
or replace; edgesim rejects any ``body`` in the result rather than silently ignoring a
replacement the function expected to take effect. The message says to turn Include Body on.

Each check returns the body it accepted, decoded to the bytes that will be sent, so the step that
applies a result never reads ``data``, ``encoding`` or ``bodyEncoding`` again.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from edgesim.lambda_edge.rules.common import FAILED, json_type, reject, shown
from edgesim.lambda_edge.rules.headers import HeaderLines, header_bytes
from edgesim.quotas import LAMBDA_EDGE
from edgesim.types import EventType

__all__ = ["BODY_REJECTED", "check_request_body", "check_response_body"]

# CloudFront's own sentence for every body problem
BODY_REJECTED = f"{FAILED}The body is not a string, is not an object, or exceeds the maximum size. "
_ACTIONS = ("read-only", "replace")
_ENCODINGS = ("base64", "text")


def check_request_body(
    event_type: EventType, event_body: object, body: object, *, include_body: bool
) -> bytes | None:
    """Validate ``request.body`` in a request-trigger result (lambda-edge.md §1.3, §2.4).

    Returns the replacement body, or None when the original body goes on (``read-only``).
    """
    if not include_body:
        reject(
            f"{FAILED}The function returned a request body, but this function association does "
            "not include the body (turn on include_body to read or replace it), field : body"
        )
    if not isinstance(body, dict):
        reject(f"{BODY_REJECTED}The request body must be an object, got {json_type(body)}")
    action: Any = body.get("action", "read-only")
    if action not in _ACTIONS:
        reject(
            f"{FAILED}The body action must be read-only or replace, "
            f"field : body.action, value : {shown(action)}"
        )
    if "inputTruncated" in body:
        sent = event_body.get("inputTruncated", False) if isinstance(event_body, Mapping) else False
        if body["inputTruncated"] != sent or not isinstance(body["inputTruncated"], bool):
            reject(
                f"{FAILED}The function tried to change the read-only field body.inputTruncated, "
                f"value : {shown(body['inputTruncated'])}"
            )
    if "encoding" in body and body["encoding"] not in _ENCODINGS:
        reject(
            f"{FAILED}The body encoding must be base64 or text, "
            f"field : body.encoding, value : {shown(body['encoding'])}"
        )
    if "data" in body and not isinstance(body["data"], str):
        reject(f"{BODY_REJECTED}The body data must be a string, got {json_type(body['data'])}")
    if action != "replace":
        return None
    return _replacement(event_type, body)


def _replacement(event_type: EventType, body: Mapping[str, Any]) -> bytes:
    for name in ("encoding", "data"):
        if name not in body:
            reject(f"{FAILED}A body with action replace needs the field body.{name}")
    quotas = LAMBDA_EDGE[event_type]
    data: str = body["data"]
    if body["encoding"] == "base64":
        decoded = _decode_base64(data, field="body.data")
        size, limit, unit = len(data), quotas.replace_base64_max_chars, "base64 characters"
    else:
        decoded = _utf8(data, field="body.data")
        size, limit, unit = len(decoded), quotas.replace_text_max_bytes, "bytes"
    # Only request triggers reach here, and each has replacement limits.
    assert limit is not None
    if size > limit:
        reject(
            f"{BODY_REJECTED}The replacement body is {size} {unit}, over the {limit} "
            f"{unit} limit of {event_type}, field : body.data"
        )
    return decoded


def check_response_body(
    event_type: EventType, result: Mapping[str, Any], lines: HeaderLines, *, generated: bool
) -> bytes | None:
    """Validate ``body`` / ``bodyEncoding`` of a returned response, and its size.

    A generated response is always measured; a response trigger's result only when it sets a
    body (otherwise the origin's body passes through, outside these limits). Returns the decoded
    body, or None when the result sets none.
    """
    encoding: Any = result.get("bodyEncoding", "text")
    if encoding not in _ENCODINGS:
        reject(
            f"{FAILED}The bodyEncoding must be text or base64, "
            f"field : bodyEncoding, value : {shown(encoding)}"
        )
    decoded: bytes | None = None
    size = 0
    if "body" in result:
        body: Any = result["body"]
        if not isinstance(body, str):
            reject(f"{BODY_REJECTED}The body of a response must be a string, got {json_type(body)}")
        carried = _utf8(body, field="body")
        decoded = _decode_base64(body, field="body") if encoding == "base64" else carried
        size = len(carried)
    elif not generated:
        return None
    total, limit = size + header_bytes(lines), LAMBDA_EDGE[event_type].response_max_bytes
    if total > limit:
        reject(
            f"{BODY_REJECTED}The response is {total} bytes with its headers, over the {limit} "
            f"byte limit of {event_type}"
        )
    return decoded


def _decode_base64(data: str, *, field: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        reject(f"{BODY_REJECTED}The {field} is not valid base64, field : {field}")


def _utf8(text: str, *, field: str) -> bytes:
    # A lone surrogate survives JSON decoding but has no UTF-8 form, so it cannot be sent.
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        reject(f"{BODY_REJECTED}The {field} is not valid Unicode text, field : {field}")
