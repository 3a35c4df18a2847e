"""CloudFront events for each trigger, built from plain arguments by the edge's own builders.

``viewer_request("/docs?lang=en", headers={"Accept": "*/*"})`` returns the very document the
edge would hand a viewer-request function for that request: the request goes through the same
steps as one sent to an edge (the viewer's ``Host`` added as an HTTP client adds it, what CloudFront
forwards to the origin computed by :mod:`edgesim.origins.forwarding`), then through
:mod:`edgesim.lambda_edge.events`. On the origin side that means ``Host`` is the origin's domain,
``User-Agent: Amazon CloudFront``, and ``X-Forwarded-For``, ``Via`` and ``X-Amz-Cf-Id`` are
added, as the spec says CloudFront always does.

Pass ``distribution=`` (a loaded :class:`~edgesim.config.Distribution`) to take its id, domain,
and, for the path given, its behavior's origin, policies and Include Body setting; without one,
the events use the example distribution of AWS's documentation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from edgesim.config import BehaviorConfig, Distribution
from edgesim.http import EdgeRequest, EdgeResponse, Headers, reason_phrase
from edgesim.lambda_edge import events as builders
from edgesim.origins.forwarding import forward_under_policies, new_edge_id, new_request_id
from edgesim.origins.targets import OriginTarget
from edgesim.pipeline.routing import match_behavior
from edgesim.testing.inputs import (
    CookiesInput,
    HeadersInput,
    QueryInput,
    body_bytes,
    cookie_header,
    header_lines,
    split_target,
)
from edgesim.types import EventType

__all__ = [
    "DEFAULT_CLIENT_IP",
    "DEFAULT_DISTRIBUTION_ID",
    "DEFAULT_DOMAIN_NAME",
    "EventFactory",
    "OriginInput",
    "event_for",
    "origin_request",
    "origin_response",
    "origin_target",
    "viewer_request",
    "viewer_request_model",
    "viewer_response",
]

# The example distribution of AWS's Lambda@Edge documentation.
DEFAULT_DISTRIBUTION_ID = "EDFDVBD6EXAMPLE"
DEFAULT_DOMAIN_NAME = "d111111abcdef8.cloudfront.net"
# TEST-NET-3 (RFC 5737): an address that is nobody's.
DEFAULT_CLIENT_IP = "203.0.113.10"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class HasTarget(Protocol):
    """Anything that describes itself as an origin (a :class:`RecordingOrigin`)."""

    def target(self) -> OriginTarget: ...


OriginInput = Literal["custom", "s3"] | OriginTarget | HasTarget | None
"""The origin of an origin-side event: ``"custom"`` (an HTTPS origin, the default), ``"s3"``,
an :class:`OriginTarget`, or a :class:`RecordingOrigin`."""


def origin_target(origin: OriginInput) -> OriginTarget:
    """The :class:`OriginTarget` an origin argument names."""
    if origin is None or origin == "custom":
        return OriginTarget(kind="custom", domain_name="origin.example.com")
    if origin == "s3":
        return OriginTarget(
            kind="s3", domain_name="example-bucket.s3.amazonaws.com", auth_method="none"
        )
    if isinstance(origin, OriginTarget):
        return origin
    if hasattr(origin, "target"):
        return origin.target()
    raise TypeError(
        f"origin must be 'custom', 's3', an OriginTarget or a RecordingOrigin, got {origin!r}"
    )


def viewer_request_model(
    target: str = "/",
    *,
    method: str = "GET",
    querystring: QueryInput = None,
    headers: HeadersInput = None,
    cookies: CookiesInput = None,
    body: bytes | str | None = None,
    client_ip: str = DEFAULT_CLIENT_IP,
    host: str = DEFAULT_DOMAIN_NAME,
    http_version: str = "1.1",
) -> EdgeRequest:
    """The viewer's request as an HTTP client would send it to ``host``.

    ``Host`` comes first unless the headers carry one; ``cookies`` add a ``Cookie`` line; a
    body (or a POST, PUT or PATCH) gets its ``Content-Length``.
    """
    uri, query = split_target(target, querystring)
    lines = header_lines(headers)
    method = method.upper()
    given = Headers()
    if "host" not in lines:
        given.add("Host", host)
    for name, value in lines:
        given.add(name, value)
    cookie = cookie_header(cookies)
    if cookie is not None:
        given.add("Cookie", cookie)
    data = body_bytes(body)
    if "content-length" not in given and (data or method in _BODY_METHODS):
        given.add("Content-Length", str(len(data)))
    return EdgeRequest(
        method=method,
        uri=uri,
        querystring=query,
        headers=given,
        body=data,
        client_ip=client_ip,
        http_version=http_version,
    )


@dataclass(frozen=True)
class _Setting:
    """What the distribution (or the default) says for one request."""

    ctx: builders.EventContext
    behavior: BehaviorConfig | None
    target: OriginTarget
    include_body: bool


def _setting(
    distribution: Distribution | None,
    uri: str,
    trigger: EventType,
    origin: OriginInput,
    include_body: bool | None,
    request_id: str | None,
) -> _Setting:
    rid = request_id or new_request_id()
    if distribution is None:
        ctx = builders.EventContext(DEFAULT_DOMAIN_NAME, DEFAULT_DISTRIBUTION_ID, rid)
        return _Setting(ctx, None, origin_target(origin), bool(include_body))
    settings = distribution.settings
    ctx = builders.EventContext(settings.domain_name, settings.id, rid)
    behavior = match_behavior(distribution, uri)
    if origin is None:
        group = distribution.origin_groups.get(behavior.origin)
        origin_id = group.primary if group else behavior.origin
        target = distribution.origins[origin_id].target()
    else:
        target = origin_target(origin)
    if include_body is None:
        assoc = behavior.association(trigger)
        include_body = assoc is not None and assoc.include_body
    return _Setting(ctx, behavior, target, include_body)


def _forwarded(
    request: EdgeRequest, setting: _Setting, request_id: str, edge_id: str | None
) -> EdgeRequest:
    behavior = setting.behavior
    outbound, _ = forward_under_policies(
        request,
        setting.target,
        policy=behavior.cache_policy_resolved if behavior else None,
        orp=behavior.origin_request_policy_resolved if behavior else None,
        cached_methods=behavior.cached_methods if behavior else ("GET", "HEAD"),
        request_id=request_id,
        edge_id=edge_id or new_edge_id(),
    )
    return outbound


def _host(distribution: Distribution | None, host: str | None) -> str:
    if host is not None:
        return host
    return distribution.settings.domain_name if distribution else DEFAULT_DOMAIN_NAME


def viewer_request(
    target: str = "/",
    *,
    method: str = "GET",
    querystring: QueryInput = None,
    headers: HeadersInput = None,
    cookies: CookiesInput = None,
    body: bytes | str | None = None,
    include_body: bool | None = None,
    client_ip: str = DEFAULT_CLIENT_IP,
    host: str | None = None,
    distribution: Distribution | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The viewer-request event for a viewer's request.

    ``include_body`` adds ``request.body`` (base64, cut at 40 KB with ``inputTruncated``) as the
    association's Include Body setting does; ``host`` defaults to the distribution's domain.
    """
    request = viewer_request_model(
        target,
        method=method,
        querystring=querystring,
        headers=headers,
        cookies=cookies,
        body=body,
        client_ip=client_ip,
        host=_host(distribution, host),
    )
    s = _setting(
        distribution, request.uri, EventType.VIEWER_REQUEST, None, include_body, request_id
    )
    return builders.viewer_request_event(s.ctx, request, include_body=s.include_body)


def origin_request(
    target: str = "/",
    *,
    method: str = "GET",
    querystring: QueryInput = None,
    headers: HeadersInput = None,
    cookies: CookiesInput = None,
    body: bytes | str | None = None,
    include_body: bool | None = None,
    client_ip: str = DEFAULT_CLIENT_IP,
    host: str | None = None,
    origin: OriginInput = None,
    distribution: Distribution | None = None,
    request_id: str | None = None,
    edge_id: str | None = None,
) -> dict[str, Any]:
    """The origin-request event: the viewer's request as CloudFront forwards it to ``origin``.

    Without a distribution the legacy forwarding rules apply (no cache policy); ``edge_id`` is
    the edge's id shown in ``Via`` (random by default, as each edge's is).
    """
    request = viewer_request_model(
        target,
        method=method,
        querystring=querystring,
        headers=headers,
        cookies=cookies,
        body=body,
        client_ip=client_ip,
        host=_host(distribution, host),
    )
    s = _setting(
        distribution, request.uri, EventType.ORIGIN_REQUEST, origin, include_body, request_id
    )
    outbound = _forwarded(request, s, s.ctx.request_id, edge_id)
    return builders.origin_request_event(s.ctx, outbound, s.target, include_body=s.include_body)


def _response(status: int, headers: HeadersInput, description: str | None) -> EdgeResponse:
    return EdgeResponse(
        status=status,
        headers=header_lines(headers, argument="response_headers"),
        reason=description or reason_phrase(status),
    )


def origin_response(
    target: str = "/",
    *,
    status: int = 200,
    response_headers: HeadersInput = None,
    status_description: str | None = None,
    method: str = "GET",
    querystring: QueryInput = None,
    headers: HeadersInput = None,
    cookies: CookiesInput = None,
    client_ip: str = DEFAULT_CLIENT_IP,
    host: str | None = None,
    origin: OriginInput = None,
    distribution: Distribution | None = None,
    request_id: str | None = None,
    edge_id: str | None = None,
) -> dict[str, Any]:
    """The origin-response event: the request as sent to the origin, and the origin's answer
    (``status``, ``response_headers``). Neither body is part of the event."""
    request = viewer_request_model(
        target,
        method=method,
        querystring=querystring,
        headers=headers,
        cookies=cookies,
        client_ip=client_ip,
        host=_host(distribution, host),
    )
    s = _setting(distribution, request.uri, EventType.ORIGIN_RESPONSE, origin, False, request_id)
    outbound = _forwarded(request, s, s.ctx.request_id, edge_id)
    response = _response(status, response_headers, status_description)
    return builders.origin_response_event(s.ctx, outbound, s.target, response)


def viewer_response(
    target: str = "/",
    *,
    status: int = 200,
    response_headers: HeadersInput = None,
    status_description: str | None = None,
    method: str = "GET",
    querystring: QueryInput = None,
    headers: HeadersInput = None,
    cookies: CookiesInput = None,
    client_ip: str = DEFAULT_CLIENT_IP,
    host: str | None = None,
    distribution: Distribution | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The viewer-response event: the viewer's request (no ``origin``) and the response about
    to go to the viewer (``status``, ``response_headers``; ``Age`` is there on cache hits)."""
    request = viewer_request_model(
        target,
        method=method,
        querystring=querystring,
        headers=headers,
        cookies=cookies,
        client_ip=client_ip,
        host=_host(distribution, host),
    )
    s = _setting(distribution, request.uri, EventType.VIEWER_RESPONSE, None, False, request_id)
    response = _response(status, response_headers, status_description)
    return builders.viewer_response_event(s.ctx, request, response)


def event_for(trigger: EventType | str, target: str = "/", **options: Any) -> dict[str, Any]:
    """The event for ``trigger`` (``"viewer-request"`` ...); ``options`` as that trigger's builder
    takes them. Raises :class:`ValueError` for an unknown trigger."""
    kind = _trigger(trigger)
    if kind is EventType.VIEWER_REQUEST:
        return viewer_request(target, **options)
    if kind is EventType.ORIGIN_REQUEST:
        return origin_request(target, **options)
    if kind is EventType.ORIGIN_RESPONSE:
        return origin_response(target, **options)
    return viewer_response(target, **options)


def _trigger(trigger: EventType | str) -> EventType:
    try:
        return EventType(trigger)
    except ValueError:
        known = ", ".join(e.value for e in EventType)
        raise ValueError(f"unknown trigger {trigger!r}; known: {known}") from None


class EventFactory:
    """The builders of this module as one object (the ``edge_event`` fixture).

    ``edge_event.viewer_request("/a?b=1")``, ``edge_event.origin_response(status=404)``, or
    ``edge_event("origin-request", "/a")``; ``distribution`` given here is the default for every
    event built.
    """

    def __init__(self, distribution: Distribution | None = None) -> None:
        self.distribution = distribution

    def __call__(
        self, trigger: EventType | str, target: str = "/", **options: Any
    ) -> dict[str, Any]:
        """The event for ``trigger``; see :func:`event_for`."""
        options.setdefault("distribution", self.distribution)
        return event_for(trigger, target, **options)

    def viewer_request(self, target: str = "/", **options: Any) -> dict[str, Any]:
        """See :func:`edgesim.testing.events.viewer_request`."""
        return self(EventType.VIEWER_REQUEST, target, **options)

    def origin_request(self, target: str = "/", **options: Any) -> dict[str, Any]:
        """See :func:`edgesim.testing.events.origin_request`."""
        return self(EventType.ORIGIN_REQUEST, target, **options)

    def origin_response(self, target: str = "/", **options: Any) -> dict[str, Any]:
        """See :func:`edgesim.testing.events.origin_response`."""
        return self(EventType.ORIGIN_RESPONSE, target, **options)

    def viewer_response(self, target: str = "/", **options: Any) -> dict[str, Any]:
        """See :func:`edgesim.testing.events.viewer_response`."""
        return self(EventType.VIEWER_RESPONSE, target, **options)

    def for_distribution(self, distribution: Distribution) -> EventFactory:
        """A factory whose events are this distribution's."""
        return EventFactory(distribution)
