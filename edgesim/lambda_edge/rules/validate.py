"""Lambda@Edge result validation: does CloudFront accept what a function returned?

The pipeline calls :func:`parse_result` with the trigger, the event exactly as the function
received it, and the function's JSON result. It gets back the result as a typed value
(:mod:`edgesim.lambda_edge.rules.result`): a request to carry on with, or a response (generated,
or the modified response of a response trigger); or it gets a
:class:`~edgesim.exceptions.LambdaValidationError` whose reason uses CloudFront's wording
(lambda-edge.md §4.1) plus the detail CloudFront omits. That error becomes CloudFront's 502.
Checking and reading are one pass, so whatever is accepted is exactly what gets applied.

How CloudFront reads a result:

- request triggers: a result with a ``status`` field is a generated response; anything else
  must be the request object (``uri``, ``method``, ``headers``);
- response triggers: the result must be the response object (``status``, ``headers``).

The rules themselves live next to their subject: header lists and header shape in
:mod:`edgesim.lambda_edge.rules.headers`, bodies and size limits in
:mod:`edgesim.lambda_edge.rules.body`, the origin object in :mod:`edgesim.lambda_edge.rules.origin`.
Header-size limits (:mod:`edgesim.lambda_edge.rules.limits`) are checked before the headers are
read line by line, so a result with a huge headers object is refused at little cost.

Decisions where the sources leave room (see lambda-edge.md, DESIGN.md "Fidelity decisions"):

- ``status`` may be a number or a numeric string; anything else fails. A float with a whole value
  (``200.0``, which a Python function's JSON can carry) is that integer, as it is to the
  JavaScript that reads CloudFront's JSON; a fraction fails.
- A viewer-response function that changes the status fails; it may set a body, held to the
  trigger's generated-response quota (40 KB, :data:`edgesim.quotas.LAMBDA_EDGE`).
- A generated response may not carry the trigger's read-only headers either: it has no
  "before", so any such header counts as added. Real origin-request functions returning a
  generated response with ``Content-Length`` got CloudFront's read-only-header 502 (reported
  by users of Next.js and ASGI adapters). Disallowed headers apply everywhere.
- A returned request must keep ``method`` and, when it returns them, ``clientIp`` and
  ``body.inputTruncated``; ``querystring`` may be left out. Fields CloudFront does not define
  are ignored. In origin-request a missing ``origin`` keeps the event's origin.
- A changed query string must not contain spaces, control characters or ``#``; an unchanged one
  is the viewer's and passes as received. ``uri`` plus ``querystring`` must stay under 8,192
  characters (the ``?`` between them not counted). Beyond its leading ``/``, a ``uri`` only
  has to be free of control characters, which could not be sent on a request line.
- ``origin`` in a viewer-request result is ignored: CloudFront has not picked an origin yet, and
  only origin-request functions can change it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgesim.lambda_edge.rules.body import BODY_REJECTED, check_request_body, check_response_body
from edgesim.lambda_edge.rules.common import (
    FAILED,
    INVALID_JSON,
    as_int,
    first_control_char,
    json_type,
    percent_encoded,
    reject,
    shown,
)
from edgesim.lambda_edge.rules.headers import (
    DISALLOWED_HEADERS,
    READ_ONLY_HEADERS,
    check_disallowed,
    check_header_map,
    check_read_only,
    check_viewer_headers_not_added,
    event_header_lines,
    is_disallowed,
)
from edgesim.lambda_edge.rules.limits import (
    check_generated_headers_size,
    check_response_headers_size,
)
from edgesim.lambda_edge.rules.origin import check_origin
from edgesim.lambda_edge.rules.result import (
    ParsedRequest,
    ParsedResponse,
    ParsedResult,
    ResultKind,
)
from edgesim.types import EventType

__all__ = [
    "DISALLOWED_HEADERS",
    "MAX_URL_LENGTH",
    "READ_ONLY_HEADERS",
    "ParsedRequest",
    "ParsedResponse",
    "ParsedResult",
    "ResultKind",
    "is_disallowed",
    "parse_result",
    "validate_result",
]

# uri + querystring must be shorter than this (lambda-edge.md §3.4)
MAX_URL_LENGTH = 8192


def validate_result(
    event_type: EventType,
    event: dict[str, Any],
    result: object,
    *,
    include_body: bool = False,
) -> ResultKind:
    """Check a function's result the way CloudFront does; only its kind is kept.

    See :func:`parse_result`, which this calls, for the arguments and the errors.
    """
    return parse_result(event_type, event, result, include_body=include_body).kind


def parse_result(
    event_type: EventType,
    event: dict[str, Any],
    result: object,
    *,
    include_body: bool = False,
) -> ParsedResult:
    """Check a function's result the way CloudFront does for ``event_type``, and read it.

    ``event`` is the event exactly as it was sent to the function (``Records[0].cf``...);
    ``include_body`` is the association's Include Body setting. Returns a
    :class:`ParsedRequest` for a (possibly modified) request and a :class:`ParsedResponse` for a
    generated or modified response. Raises :class:`~edgesim.exceptions.LambdaValidationError`
    naming the broken rule otherwise.
    """
    if not isinstance(result, dict):
        reject(
            f"{INVALID_JSON}The JSON output must be an object type. "
            f"The function returned {json_type(result)}"
        )
    cf: Mapping[str, Any] = event["Records"][0]["cf"]
    notes: list[str] = []
    if event_type.is_request:
        if "status" in result:
            return _generated_response(event_type, result, notes)
        return _request(event_type, cf["request"], result, notes, include_body=include_body)
    return _response(event_type, cf["response"], result, notes)


def _whole_event_hint(result: Mapping[str, Any]) -> str:
    if "Records" in result:
        return " (the function returned the whole event, not Records[0].cf.request/response)"
    return ""


def _request(
    event_type: EventType,
    request: Mapping[str, Any],
    result: dict[str, Any],
    notes: list[str],
    *,
    include_body: bool,
) -> ParsedRequest:
    for name in ("uri", "method", "headers"):
        if name not in result:
            reject(
                f"{FAILED}The request is missing the field {name}; a request trigger must "
                f"return the request object, or a response with a status{_whole_event_hint(result)}"
            )
    for name in ("method", "clientIp"):
        if name in result and result[name] != request.get(name):
            reject(
                f"{FAILED}The function tried to change the read-only field {name}, "
                f"value : {shown(result[name])}"
            )

    before = event_header_lines(request.get("headers"))
    after = check_header_map(
        result["headers"],
        field="headers",
        notes=notes,
        sent=request.get("headers"),
        sent_lines=before,
    )
    check_disallowed(after)
    check_read_only(event_type, before, after)
    if event_type is EventType.VIEWER_REQUEST:
        check_viewer_headers_not_added(before, after)

    _check_uri(result["uri"], result.get("querystring", request.get("querystring", "")))
    if "querystring" in result and result["querystring"] != request.get("querystring"):
        _check_querystring(result["querystring"])

    body = None
    if "body" in result:
        body = check_request_body(
            event_type, request.get("body"), result["body"], include_body=include_body
        )
    origin = None
    if event_type is EventType.ORIGIN_REQUEST and "origin" in result:
        check_origin(result["origin"], request.get("origin"), after)
        origin = result["origin"]
    return ParsedRequest(
        uri=result["uri"],
        querystring=result.get("querystring"),
        headers=after,
        body=body,
        origin=origin,
        notes=tuple(notes),
    )


def _check_uri(uri: object, querystring: object) -> None:
    if not isinstance(uri, str):
        reject(f"{FAILED}The uri must be a string, got {json_type(uri)}, field : uri")
    if not uri.startswith("/"):
        reject(f"{FAILED}The uri must start with '/', uri : {shown(uri)}")
    bad = first_control_char(uri, allow_tab=False)
    if bad is not None:
        reject(f"{FAILED}The uri contains the invalid character '{percent_encoded(bad)}'")
    if not isinstance(querystring, str):
        reject(
            f"{FAILED}The querystring must be a string without the leading '?', "
            f"got {json_type(querystring)}, field : querystring"
        )
    length = len(uri) + len(querystring)
    if length >= MAX_URL_LENGTH:
        reject(
            f"{FAILED}The uri and querystring together are {length} characters; they must be "
            f"shorter than {MAX_URL_LENGTH}"
        )


def _check_querystring(querystring: str) -> None:
    bad = first_control_char(querystring, allow_tab=False)
    if bad is None:
        bad = next((char for char in querystring if char in " #"), None)
    if bad is not None:
        reject(
            f"{FAILED}The querystring must not contain spaces, control characters or '#', "
            f"invalid character : '{percent_encoded(bad)}'"
        )


def _status(value: object) -> int:
    number = as_int(value)
    if number is None and isinstance(value, str) and value.isascii() and value.isdigit():
        # beyond nine digits it is out of range anyway; int() of huge strings is costly
        number = int(value) if len(value) <= 9 else 10**9
    if number is None:
        reject(
            f"{FAILED}The status must be a number or a numeric string, got {json_type(value)}, "
            f"status : {shown(value)}"
        )
    return number


def _check_status_range(value: object) -> int:
    number = _status(value)
    if not 200 <= number <= 599:
        reject(f"{FAILED}The status code must be between 200 and 599, status : {shown(value)}")
    return number


def _description(result: Mapping[str, Any]) -> str | None:
    if "statusDescription" not in result:
        return None
    description = result["statusDescription"]
    if not isinstance(description, str):
        reject(
            f"{FAILED}The statusDescription must be a string, got {json_type(description)}, "
            "field : statusDescription"
        )
    bad = first_control_char(description, allow_tab=True)
    if bad is not None:
        reject(
            f"{FAILED}The statusDescription contains the invalid character '{percent_encoded(bad)}'"
        )
    return description


def _generated_response(
    event_type: EventType, result: Mapping[str, Any], notes: list[str]
) -> ParsedResponse:
    status = _check_status_range(result["status"])
    description = _description(result)
    check_generated_headers_size(event_type, result.get("headers"))
    lines = check_header_map(result.get("headers", {}), field="headers", notes=notes)
    check_disallowed(lines)
    check_read_only(event_type, {}, lines)
    body = check_response_body(event_type, result, lines, generated=True)
    if event_type is EventType.VIEWER_REQUEST and status == 204 and body:
        reject(f"{BODY_REJECTED}A viewer request function cannot return a 204 with a body")
    return ParsedResponse(
        status=status, description=description, headers=lines, body=body, notes=tuple(notes)
    )


def _response(
    event_type: EventType,
    response: Mapping[str, Any],
    result: Mapping[str, Any],
    notes: list[str],
) -> ParsedResponse:
    for name in ("status", "headers"):
        if name not in result:
            reject(
                f"{FAILED}The response is missing the field {name}; a response trigger must "
                f"return the response object{_whole_event_hint(result)}"
            )
    if event_type is EventType.VIEWER_RESPONSE:
        status = _status(result["status"])
        sent = _status(response.get("status"))
        if status != sent:
            reject(
                f"{FAILED}A viewer response function cannot change the status code, "
                f"status : {shown(response.get('status'))} -> {shown(result['status'])}"
            )
    else:
        status = _check_status_range(result["status"])
    description = _description(result)
    check_response_headers_size(event_type, result["headers"])
    before = event_header_lines(response.get("headers"))
    after = check_header_map(
        result["headers"],
        field="headers",
        notes=notes,
        sent=response.get("headers"),
        sent_lines=before,
    )
    check_disallowed(after)
    check_read_only(event_type, before, after)
    body = check_response_body(event_type, result, after, generated=False)
    return ParsedResponse(
        status=status, description=description, headers=after, body=body, notes=tuple(notes)
    )
