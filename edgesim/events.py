"""HTTP models to CloudFront's Lambda@Edge event JSON and back.

The builders turn an :class:`EdgeRequest` / :class:`EdgeResponse` (and, on the origin side, the
:class:`OriginTarget`) into the ``{"Records": [{"cf": ...}]}`` document CloudFront hands a
function; the ``apply_*`` functions turn a function's (already validated) result back into
models. JSON objects are built in the key order of AWS's own examples so that an event printed by
edgesim reads like one printed at a real edge.

Headers a function never sees. Hop-by-hop lines (and those a ``Connection`` line names) and the
headers Lambda@Edge lists as disallowed (``X-Amz-Cf-*``, ``X-Cache``, ``X-Edge-*``,
``X-Forwarded-Proto``, ``X-Real-IP`` ...) are left out of every event. Because the function could
neither see nor touch them, applying its result keeps them on the request or response as they
were; this is how ``X-Amz-Cf-Id`` survives an origin-request function on its way to the origin.
``Transfer-Encoding`` is among the hidden lines: edgesim always holds whole bodies, so framing is
chosen when the message is sent, not by functions.

Bodies. With *include body*, request events carry ``request.body`` for methods that carry one:
``POST``, ``PUT``, ``PATCH`` and ``DELETE`` always (an empty body gives ``data: ""``), any other
method only when its body is not empty; a plain ``GET`` therefore has no ``body`` key. The data is
base64 of at most 40 KB (viewer-request) or 1 MB (origin-request), with ``inputTruncated`` telling
whether more was cut. Unless the function sets ``action: "replace"``, the original full body goes
on, even when the function saw a truncated copy.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from edgesim.exceptions import LambdaValidationError, OriginError
from edgesim.http import HOP_BY_HOP, EdgeRequest, EdgeResponse, Headers, reason_phrase
from edgesim.rules import is_disallowed
from edgesim.targets import OriginTarget
from edgesim.types import EventType

__all__ = [
    "ORIGIN_BODY_LIMIT",
    "VIEWER_BODY_LIMIT",
    "EventContext",
    "apply_origin",
    "apply_request",
    "apply_response",
    "generated_response",
    "headers_from_cf",
    "headers_to_cf",
    "origin_request_event",
    "origin_response_event",
    "origin_to_cf",
    "viewer_request_event",
    "viewer_response_event",
]

VIEWER_BODY_LIMIT = 40 * 1024
ORIGIN_BODY_LIMIT = 1024 * 1024

# Methods whose requests carry a body by definition, so the body object is offered even if empty.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class EventContext:
    """The read-only ``cf.config`` part of every event."""

    distribution_domain_name: str
    distribution_id: str
    request_id: str


# -- headers ---------------------------------------------------------------------------------


def headers_to_cf(headers: Headers) -> dict[str, list[dict[str, str]]]:
    """CloudFront's header map: lowercase name -> one ``{key, value}`` per line, in order.

    Converts every line it is given; the event builders filter hidden headers first.
    """
    cf: dict[str, list[dict[str, str]]] = {}
    for name, value in headers:
        cf.setdefault(name.lower(), []).append({"key": name, "value": value})
    return cf


def headers_from_cf(cf: Mapping[str, Any]) -> Headers:
    """A header map from a function back to lines; a missing ``key`` is the name title-cased."""
    headers = Headers()
    for name, entries in cf.items():
        for entry in entries or ():
            key = entry.get("key") or _title_case(name)
            headers.add(str(key), str(entry["value"]))
    return headers


def _title_case(name: str) -> str:
    return "-".join(word[:1].upper() + word[1:] for word in name.split("-"))


def _split_hidden(headers: Headers) -> tuple[Headers, Headers]:
    """(what a function sees, what it does not), each in the original order."""
    named = {
        token.strip().lower()
        for value in headers.get_all("connection")
        for token in value.split(",")
    }
    hop = HOP_BY_HOP | named
    shown, hidden = Headers(), Headers()
    for name, value in headers:
        hides = name.lower() in hop or is_disallowed(name)
        (hidden if hides else shown).add(name, value)
    return shown, hidden


def _visible_cf(headers: Headers) -> dict[str, list[dict[str, str]]]:
    return headers_to_cf(_split_hidden(headers)[0])


def _merge(result_headers: Mapping[str, Any], original: Headers) -> Headers:
    """The function's headers plus the original lines it was never shown."""
    merged = headers_from_cf(result_headers)
    for name, value in _split_hidden(original)[1]:
        merged.add(name, value)
    return merged


# -- building events -------------------------------------------------------------------------


def _record(ctx: EventContext, event_type: EventType, **parts: Any) -> dict[str, Any]:
    config = {
        "distributionDomainName": ctx.distribution_domain_name,
        "distributionId": ctx.distribution_id,
        "eventType": event_type.value,
        "requestId": ctx.request_id,
    }
    return {"Records": [{"cf": {"config": config, **parts}}]}


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
    cf["headers"] = _visible_cf(request.headers)
    cf["method"] = request.method
    if origin is not None:
        cf["origin"] = origin_to_cf(origin)
    cf["querystring"] = request.querystring
    cf["uri"] = request.uri
    return cf


def _response_cf(response: EdgeResponse) -> dict[str, Any]:
    return {
        "headers": _visible_cf(response.headers),
        "status": str(response.status),
        "statusDescription": response.reason,
    }


def origin_to_cf(origin: OriginTarget) -> dict[str, Any]:
    """The ``request.origin`` object for ``origin``, in its ``custom`` or ``s3`` form."""
    custom_headers = headers_to_cf(origin.custom_headers)
    if origin.kind == "s3":
        return {
            "s3": {
                "authMethod": origin.auth_method,
                "customHeaders": custom_headers,
                "domainName": origin.domain_name,
                "path": origin.path,
                "region": origin.region,
            }
        }
    return {
        "custom": {
            "customHeaders": custom_headers,
            "domainName": origin.domain_name,
            "keepaliveTimeout": origin.keepalive_timeout,
            "path": origin.path,
            "port": origin.port,
            "protocol": origin.protocol,
            "readTimeout": origin.read_timeout,
            "sslProtocols": list(origin.ssl_protocols),
        }
    }


def viewer_request_event(
    ctx: EventContext, request: EdgeRequest, *, include_body: bool
) -> dict[str, Any]:
    """The viewer-request event for the viewer's request."""
    limit = VIEWER_BODY_LIMIT if include_body else None
    return _record(ctx, EventType.VIEWER_REQUEST, request=_request_cf(request, None, limit))


def origin_request_event(
    ctx: EventContext, request: EdgeRequest, origin: OriginTarget, *, include_body: bool
) -> dict[str, Any]:
    """The origin-request event: ``request`` is the request as CloudFront would forward it."""
    limit = ORIGIN_BODY_LIMIT if include_body else None
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


_REFUSED = "The Lambda function result failed validation: "


def _decode(data: Any, encoding: Any) -> bytes:
    text = "" if data is None else str(data)
    if encoding != "base64":
        return text.encode("utf-8")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise LambdaValidationError(_REFUSED + "The body is not valid base64.") from error


def _status(value: Any) -> int:
    # Validation accepted an int or a numeric string; a bool is an int to Python, not to us.
    text = str(value).strip()
    if (
        isinstance(value, bool)
        or not isinstance(value, int | str)
        or not (text.isascii() and text.isdecimal())
    ):
        raise LambdaValidationError(_REFUSED + "The status code is invalid.")
    return int(text)


def _fix_length(headers: Headers, body: bytes) -> None:
    # Content-Length is read-only to functions, so CloudFront keeps it true to a replaced body.
    if "content-length" in headers:
        headers.set(_spelling(headers, "content-length"), str(len(body)))


def _spelling(headers: Headers, name: str) -> str:
    lower = name.lower()
    return next((k for k, _ in headers if k.lower() == lower), name)


def apply_request(result: Mapping[str, Any], request: EdgeRequest) -> EdgeRequest:
    """The request a request-trigger function returned, as a new :class:`EdgeRequest`.

    ``uri``, ``querystring`` and headers come from the result (headers the function was never
    shown are kept). The body changes only with ``body.action == "replace"``; otherwise the
    original full body is kept. Method, client address and the rest cannot change.
    """
    if "headers" in result:
        headers = _merge(result["headers"], request.headers)
    else:
        headers = request.headers.copy()
    body = request.body
    cf_body = result.get("body")
    if isinstance(cf_body, Mapping) and cf_body.get("action") == "replace":
        body = _decode(cf_body.get("data"), cf_body.get("encoding", "base64"))
        _fix_length(headers, body)
    return replace(
        request,
        uri=str(result.get("uri", request.uri)),
        querystring=str(result.get("querystring", request.querystring) or ""),
        headers=headers,
        body=body,
    )


def apply_origin(
    result: Mapping[str, Any], current: OriginTarget, known: Sequence[OriginTarget]
) -> OriginTarget:
    """The origin an origin-request result sends the request to.

    An unchanged ``origin`` gives back ``current`` itself, and an ``origin`` identical to a
    configured one gives that one, so local addresses and folders stay attached. A new custom
    origin borrows the local address of a configured origin with the same domain name. An ``s3``
    origin must name the domain of a configured S3-style folder origin: edgesim has no bucket to
    read otherwise, which is an :class:`OriginError` (502).
    """
    cf_origin = result.get("origin")
    if not isinstance(cf_origin, Mapping) or cf_origin == origin_to_cf(current):
        return current
    for target in known:
        if cf_origin == origin_to_cf(target):
            return target
    if isinstance(cf_origin.get("s3"), Mapping):
        return _s3_target(cf_origin["s3"], current, known)
    custom = cf_origin.get("custom")
    if not isinstance(custom, Mapping):
        return current
    domain = str(custom.get("domainName", ""))
    port = int(custom.get("port", 443))
    same_host = [t for t in (current, *known) if t.kind == "custom" and _same(t, domain)]
    same_host.sort(key=lambda t: t.port != port)  # an exact port match wins
    borrowed = same_host[0] if same_host else None
    protocol: Literal["http", "https"] = "http" if custom.get("protocol") == "http" else "https"
    return OriginTarget(
        kind="custom",
        domain_name=domain,
        path=str(custom.get("path", "")),
        custom_headers=headers_from_cf(custom.get("customHeaders") or {}),
        port=port,
        protocol=protocol,
        read_timeout=int(custom.get("readTimeout", 30)),
        keepalive_timeout=int(custom.get("keepaliveTimeout", 5)),
        ssl_protocols=tuple(str(p) for p in custom.get("sslProtocols") or ("TLSv1.2",)),
        connect_host=borrowed.connect_host if borrowed else None,
        origin_id=borrowed.origin_id if borrowed else None,
    )


def _same(target: OriginTarget, domain: str) -> bool:
    return target.domain_name.lower() == domain.lower()


def _s3_target(
    s3: Mapping[str, Any], current: OriginTarget, known: Sequence[OriginTarget]
) -> OriginTarget:
    domain = str(s3.get("domainName", ""))
    folder = next(
        (
            t
            for t in (current, *known)
            if t.kind == "s3" and t.local_root is not None and _same(t, domain)
        ),
        None,
    )
    if folder is None:
        raise OriginError(
            502,
            f"the origin-request function chose S3 origin {domain!r}, which is not a "
            "configured S3 folder origin",
        )
    auth: Literal["origin-access-identity", "none"] = (
        "origin-access-identity" if s3.get("authMethod") == "origin-access-identity" else "none"
    )
    return replace(
        folder,
        path=str(s3.get("path", "")),
        custom_headers=headers_from_cf(s3.get("customHeaders") or {}),
        auth_method=auth,
        region=str(s3.get("region") or folder.region),
    )


def _body_of(result: Mapping[str, Any]) -> bytes:
    return _decode(result.get("body"), result.get("bodyEncoding", "text"))


def generated_response(result: Mapping[str, Any]) -> EdgeResponse:
    """The response a request-trigger function generated."""
    status = _status(result["status"])
    return EdgeResponse(
        status=status,
        headers=headers_from_cf(result.get("headers") or {}),
        body=_body_of(result) if "body" in result else b"",
        reason=str(result.get("statusDescription") or reason_phrase(status)),
    )


def apply_response(result: Mapping[str, Any], response: EdgeResponse) -> EdgeResponse:
    """The response an origin-response or viewer-response function returned.

    Status, description and headers come from the result (headers the function was never shown
    are kept); the body is replaced only when the result has ``body``, else the original bytes
    pass through untouched.
    """
    status = _status(result["status"]) if "status" in result else response.status
    description = result.get("statusDescription")
    if description is None:
        description = response.reason if status == response.status else reason_phrase(status)
    if "headers" in result:
        headers = _merge(result["headers"], response.headers)
    else:
        headers = response.headers.copy()
    body = response.body
    if "body" in result:
        body = _body_of(result)
        _fix_length(headers, body)
    return EdgeResponse(status=status, headers=headers, body=body, reason=str(description))
