"""HTTP models to CloudFront's Lambda@Edge event JSON and back.

The builders turn an :class:`EdgeRequest` / :class:`EdgeResponse` (and, on the origin side, the
:class:`OriginTarget`) into the ``{"Records": [{"cf": ...}]}`` document CloudFront hands a
function; the ``apply_*`` functions turn a function's result, as the rules parsed it
(:mod:`edgesim.lambda_edge.rules.result`), back into models. They never read the raw JSON, so
nothing the rules accepted can fail or mean something else here. JSON objects are built in the
key order of AWS's own examples so that an event printed by edgesim reads like one printed at a
real edge.

Two parts live in their own modules, whose public names this one re-exports. Headers:
CloudFront's header map and the headers a function never sees (hop-by-hop and disallowed lines,
left out of every event and kept as they were when a result is applied) are in
:mod:`edgesim.lambda_edge.headers`. Origins: the ``request.origin`` object, and the origin an
origin-request result chooses, are in :mod:`edgesim.lambda_edge.origin`.

Bodies. With *include body*, request events carry ``request.body`` for methods that carry one:
``POST``, ``PUT``, ``PATCH`` and ``DELETE`` always (an empty body gives ``data: ""``), any other
method only when its body is not empty; a plain ``GET`` therefore has no ``body`` key. The data is
base64 of at most the trigger's ``include_body_bytes`` quota (:data:`edgesim.quotas.LAMBDA_EDGE`:
40 KB viewer-request, 1 MB origin-request), with ``inputTruncated`` telling whether more was cut.
Unless the function sets ``action: "replace"``, the original full body goes on, even when the
function saw a truncated copy.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from edgesim.http import EdgeRequest, EdgeResponse, Headers, reason_phrase
from edgesim.lambda_edge.headers import (
    as_utf8,
    headers_from_cf,
    headers_from_lines,
    headers_to_cf,
    kept_or_changed,
    merge_hidden,
    visible_cf,
)
from edgesim.lambda_edge.origin import apply_origin, origin_to_cf
from edgesim.lambda_edge.rules import ParsedRequest, ParsedResponse
from edgesim.origins.targets import OriginTarget
from edgesim.quotas import LAMBDA_EDGE
from edgesim.types import EventType, event_config

__all__ = [
    "EventContext",
    "apply_origin",
    "apply_request",
    "apply_response",
    "event_config",
    "event_trigger",
    "generated_response",
    "headers_from_cf",
    "headers_to_cf",
    "origin_request_event",
    "origin_response_event",
    "origin_to_cf",
    "viewer_request_event",
    "viewer_response_event",
]

# Methods whose requests carry a body by definition, so the body object is offered even if empty.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class EventContext:
    """The read-only ``cf.config`` part of every event."""

    distribution_domain_name: str
    distribution_id: str
    request_id: str


# -- building events -------------------------------------------------------------------------


def _record(ctx: EventContext, event_type: EventType, **parts: Any) -> dict[str, Any]:
    config = {
        "distributionDomainName": ctx.distribution_domain_name,
        "distributionId": ctx.distribution_id,
        "eventType": event_type.value,
        "requestId": ctx.request_id,
    }
    return {"Records": [{"cf": {"config": config, **parts}}]}


def event_trigger(event: Mapping[str, Any]) -> EventType | None:
    """The trigger an event was built for, or None when it names none CloudFront has."""
    try:
        return EventType(str(event_config(event).get("eventType", "")))
    except ValueError:
        return None


def _request_cf(
    request: EdgeRequest, origin: OriginTarget | None, body_limit: int | None
) -> dict[str, Any]:
    cf: dict[str, Any] = {}
    if body_limit is not None and (request.method.upper() in _BODY_METHODS or request.body):
        cf["body"] = {
            "action": "read-only",
            "data": base64.b64encode(request.body[:body_limit]).decode("ascii"),
            "encoding": "base64",
            "inputTruncated": len(request.body) > body_limit,
        }
    cf["clientIp"] = request.client_ip
    cf["headers"] = visible_cf(request.headers)
    cf["method"] = request.method
    if origin is not None:
        cf["origin"] = origin_to_cf(origin)
    cf["querystring"] = as_utf8(request.querystring)
    cf["uri"] = as_utf8(request.uri)
    return cf


def _response_cf(response: EdgeResponse) -> dict[str, Any]:
    return {
        "headers": visible_cf(response.headers),
        "status": str(response.status),
        "statusDescription": response.reason,
    }


def _body_limit(event_type: EventType, include_body: bool) -> int | None:
    return LAMBDA_EDGE[event_type].include_body_bytes if include_body else None


def viewer_request_event(
    ctx: EventContext, request: EdgeRequest, *, include_body: bool
) -> dict[str, Any]:
    """The viewer-request event for the viewer's request."""
    limit = _body_limit(EventType.VIEWER_REQUEST, include_body)
    return _record(ctx, EventType.VIEWER_REQUEST, request=_request_cf(request, None, limit))


def origin_request_event(
    ctx: EventContext, request: EdgeRequest, origin: OriginTarget, *, include_body: bool
) -> dict[str, Any]:
    """The origin-request event: ``request`` is the request as CloudFront would forward it."""
    limit = _body_limit(EventType.ORIGIN_REQUEST, include_body)
    return _record(ctx, EventType.ORIGIN_REQUEST, request=_request_cf(request, origin, limit))


def origin_response_event(
    ctx: EventContext, request: EdgeRequest, origin: OriginTarget, response: EdgeResponse
) -> dict[str, Any]:
    """The origin-response event: the origin request as sent (with ``origin``) and its response.

    Neither body is exposed.
    """
    return _record(
        ctx,
        EventType.ORIGIN_RESPONSE,
        request=_request_cf(request, origin, None),
        response=_response_cf(response),
    )


def viewer_response_event(
    ctx: EventContext, request: EdgeRequest, response: EdgeResponse
) -> dict[str, Any]:
    """The viewer-response event: the viewer's request (no ``origin``) and the response."""
    return _record(
        ctx,
        EventType.VIEWER_RESPONSE,
        request=_request_cf(request, None, None),
        response=_response_cf(response),
    )


# -- applying results ------------------------------------------------------------------------


def _fix_length(headers: Headers, body: bytes) -> None:
    # Content-Length is read-only to functions, so CloudFront keeps it true to a replaced body.
    headers.fit_length(body)


def apply_request(result: ParsedRequest, request: EdgeRequest) -> EdgeRequest:
    """The request a request-trigger function returned, as a new :class:`EdgeRequest`.

    ``uri``, ``querystring`` and headers come from the result (headers the function was never
    shown are kept). The body changes only when the function replaced it; otherwise the
    original full body is kept. Method, client address and the rest cannot change.
    """
    headers = merge_hidden(result.headers, request.headers)
    body = request.body
    if result.body is not None:
        body = result.body
        _fix_length(headers, body)
    querystring = request.querystring
    if result.querystring is not None:
        querystring = kept_or_changed(request.querystring, result.querystring)
    uri = kept_or_changed(request.uri, result.uri)
    return replace(request, uri=uri, querystring=querystring, headers=headers, body=body)


def generated_response(result: ParsedResponse) -> EdgeResponse:
    """The response a request-trigger function generated."""
    return EdgeResponse(
        status=result.status,
        headers=headers_from_lines(result.headers),
        body=b"" if result.body is None else result.body,
        # An empty description is as good as none: CloudFront sends the standard phrase.
        reason=result.description or reason_phrase(result.status),
    )


def apply_response(result: ParsedResponse, response: EdgeResponse) -> EdgeResponse:
    """The response an origin-response or viewer-response function returned.

    Status, description and headers come from the result (headers the function was never shown
    are kept); the body is replaced only when the result has ``body``, else the original bytes
    (or the stream they are still arriving on) pass through untouched.
    """
    description = result.description
    if description is None:
        same = result.status == response.status
        description = response.reason if same else reason_phrase(result.status)
    headers = merge_hidden(result.headers, response.headers)
    body, stream = response.body, response.stream
    if result.body is not None:
        body, stream = result.body, None  # the caller closes the replaced stream
        _fix_length(headers, body)
    return EdgeResponse(
        status=result.status, headers=headers, body=body, reason=description, stream=stream
    )
