"""The request CloudFront forwards to an origin, and the ids it stamps on it.

:func:`to_origin` turns the viewer's request (after viewer-request) into what CloudFront sends the
origin when no cache policy or origin request policy says otherwise: the legacy table of
CloudFront's "request and response behavior for custom origins". That request is both what the
origin-request function sees and, after it, what reaches the origin, so the choices below are
visible to users' code:

- ``Host`` becomes the origin's domain name (never with a port, even on a non-default one).
- ``User-Agent`` becomes ``Amazon CloudFront``.
- ``X-Forwarded-For``: the viewer's address is appended to what the viewer sent (several lines
  are joined into one), or the header is created.
- ``Via``: a ``Via`` the viewer sent is kept and CloudFront's own hop is appended to it as the
  next list member (``1.1 proxy.example, 2.0 <id>.cloudfront.net (CloudFront)``), which is how
  every HTTP intermediary records itself. AWS only says a viewer's Via is forwarded; the one-line
  append keeps both facts and the order of hops.
- ``X-Amz-Cf-Id`` is the request id (functions do not see it; it still reaches the origin).
- ``Transfer-Encoding`` of a chunked upload is forwarded (the legacy table's "forwarded" row), so
  the origin-request function sees it, read-only; the origin fetcher frames the body it sends.
- Removed: other hop-by-hop lines (and those ``Connection`` names), ``Expect``, ``Accept``,
  ``Accept-Charset``, ``Accept-Language``, ``Referer``, ``X-Real-IP``, ``X-Forwarded-Proto``,
  ``X-HTTP-Method-Override`` and every ``X-Edge-*``. ``Accept-Encoding`` is removed for HTTP/1.0
  viewers only; normalising it is the cache policy's business.
- ``Cookie`` is removed: with no policy, CloudFront forwards no cookies.
- ``Authorization`` is removed from ``GET`` and ``HEAD`` (cacheable methods) and forwarded with
  every other method, ``OPTIONS`` included because it is not cached by default.
- ``Connection: Keep-Alive`` is left to the HTTP client that sends the request.

A cache or origin request policy passes ``forward``, a predicate over lowercase header names.
With it, a viewer header goes on only if the predicate accepts it (which may also keep the
viewer's ``Host`` for a custom origin, its ``User-Agent``, ``Cookie`` or ``Authorization``, and
``X-HTTP-Method-Override`` when a policy keys on it); the predicate alone decides
``Authorization``, since only the policy knows whether ``OPTIONS`` is cached;
the body-describing and conditional headers (``Content-*``, ``If-*``, ``Range``) always go, as
does everything CloudFront sets itself.

Origin custom headers and the origin path are not applied here: the origin-request event shows
them in ``request.origin``, and :func:`origin_wire_headers` / the origin fetcher add them when the
request is sent.
"""

from __future__ import annotations

import binascii
import secrets
from collections.abc import Callable, Sequence
from dataclasses import replace

from edgesim.cache.key import forwarding as policy_forwarding
from edgesim.cache.policies import CachePolicy, OriginRequestPolicy, is_cached_method
from edgesim.http import HOP_BY_HOP, EdgeRequest, Headers
from edgesim.ids import random_bits
from edgesim.origins.targets import OriginTarget

__all__ = [
    "forward_under_policies",
    "new_edge_id",
    "new_request_id",
    "origin_wire_headers",
    "to_origin",
    "via_value",
]

USER_AGENT = "Amazon CloudFront"

# The legacy table's "removed" rows; hop-by-hop names are dropped separately.
_REMOVED = frozenset(
    {
        "accept",
        "accept-charset",
        "accept-language",
        "referer",
        "expect",
        "cookie",
        "x-real-ip",
        "x-forwarded-proto",
        "x-http-method-override",
    }
)
# What CloudFront writes itself, whatever the viewer sent.
_SET_BY_CLOUDFRONT = frozenset({"host", "user-agent", "x-forwarded-for", "via", "x-amz-cf-id"})
# Headers that describe the body or make the request conditional: never a policy decision.
_ALWAYS_FORWARDED = frozenset(
    {
        "content-length",
        "content-type",
        "content-encoding",
        "content-md5",
        "if-match",
        "if-none-match",
        "if-modified-since",
        "if-unmodified-since",
        "if-range",
        "range",
        "request-range",
        "transfer-encoding",
    }
)
# The one hop-by-hop line the legacy table lists as forwarded.
_FORWARDED_HOP_BY_HOP = frozenset({"transfer-encoding"})
# Removed whatever a policy says: no policy can forward these.
_REMOVED_ALWAYS = frozenset({"expect", "x-real-ip", "x-forwarded-proto", "x-http-method-override"})


_URL_SAFE = bytes.maketrans(b"+/", b"-_")


def new_request_id() -> str:
    """A fresh CloudFront request id: 56 characters of URL-safe base64 ending in ``==``."""
    # base64.urlsafe_b64encode(randbytes(40)), without its two Python-level calls on each side.
    drawn = random_bits(320).to_bytes(40)
    return binascii.b2a_base64(drawn, newline=False).translate(_URL_SAFE).decode("ascii")


def new_edge_id() -> str:
    """A fresh edge host id (32 lowercase hex characters); an edge makes one and keeps it."""
    return secrets.token_hex(16)


def via_value(http_version: str, edge_id: str) -> str:
    """CloudFront's ``Via`` hop, e.g. ``1.1 <edge_id>.cloudfront.net (CloudFront)``.

    CloudFront writes two-part versions, so an HTTP/2 viewer shows as ``2.0``.
    """
    version = http_version.upper().removeprefix("HTTP/")
    if "." not in version:
        version += ".0"
    return f"{version} {edge_id}.cloudfront.net (CloudFront)"


def to_origin(
    request: EdgeRequest,
    origin: OriginTarget,
    *,
    request_id: str,
    edge_id: str,
    forward: Callable[[str], bool] | None = None,
) -> EdgeRequest:
    """The request as CloudFront forwards it to ``origin`` (see the module notes for each header).

    ``forward`` is a cache/origin request policy's say over viewer headers; ``None`` means the
    legacy defaults. URI, query string and body are unchanged; the origin gets HTTP/1.1.
    """
    headers = _forwarded_headers(request, origin, request_id, edge_id, forward)
    return replace(request, headers=headers, http_version="1.1")


def _forwarded_headers(
    request: EdgeRequest,
    origin: OriginTarget,
    request_id: str,
    edge_id: str,
    forward: Callable[[str], bool] | None,
) -> Headers:
    """:func:`to_origin`'s header lines."""
    viewer = request.headers.without_hop_by_hop(keep=_FORWARDED_HOP_BY_HOP)
    forwarded = Headers()
    for name, value in viewer:
        if _forwards(name.lower(), request, forward):
            forwarded.add(name, value)

    hops = [v for v in viewer.get_all("via") if v.strip()]
    hops.append(via_value(request.http_version, edge_id))
    addresses = [v for v in viewer.get_all("x-forwarded-for") if v.strip()]
    addresses.append(request.client_ip)

    host = origin.domain_name
    if forward is not None and forward("host") and origin.kind == "custom":
        host = viewer.get("host", host) or host
    agent = USER_AGENT
    if forward is not None and forward("user-agent"):
        agent = viewer.get("user-agent", agent) or agent

    # CloudFront's own lines first, as they appear in AWS's example events.
    return Headers(
        [
            ("X-Forwarded-For", ", ".join(addresses)),
            ("User-Agent", agent),
            ("Via", ", ".join(hops)),
            ("Host", host),
            *forwarded,
            ("X-Amz-Cf-Id", request_id),
        ]
    )


def forward_under_policies(
    request: EdgeRequest,
    target: OriginTarget,
    *,
    policy: CachePolicy | None,
    orp: OriginRequestPolicy | None,
    cached_methods: Sequence[str],
    request_id: str,
    edge_id: str,
    validators: Headers | None = None,
) -> tuple[EdgeRequest, Callable[[str], bool]]:
    """The request CloudFront sends ``target`` under a behavior's policies, and which viewer
    headers (lowercase names) it forwarded.

    Without a cache policy the legacy table of :func:`to_origin` applies. ``validators`` are the
    edge's own conditional headers when it revalidates a stale object.
    """
    if policy is None:
        legacy = to_origin(request, target, request_id=request_id, edge_id=edge_id)
        return legacy, lambda name: name in legacy.headers
    plan = policy_forwarding(
        policy, orp, request, s3_origin=target.kind == "s3", cached_methods=cached_methods
    )
    headers = _forwarded_headers(request, target, request_id, edge_id, plan.header_allowed)
    headers.remove("Cookie")
    if plan.cookie:
        headers.add("Cookie", plan.cookie)
    if plan.accept_encoding is not None:
        headers.set("Accept-Encoding", plan.accept_encoding)
    for name, value in validators or ():
        headers.set(name, value)
    outbound = replace(request, headers=headers, http_version="1.1", querystring=plan.querystring)
    return outbound, plan.header_allowed


def _forwards(name: str, request: EdgeRequest, forward: Callable[[str], bool] | None) -> bool:
    """Whether the viewer's ``name`` line goes on to the origin as the viewer sent it."""
    if name in _SET_BY_CLOUDFRONT or name.startswith("x-edge-"):
        return False
    if name in HOP_BY_HOP:
        return name in _FORWARDED_HOP_BY_HOP
    if name == "accept-encoding" and request.http_version in ("1.0", "HTTP/1.0"):
        return False
    if name in _ALWAYS_FORWARDED:
        return True
    if forward is not None:
        # A policy decides Authorization too (it knows whether OPTIONS is cached) and may put
        # X-HTTP-Method-Override in the key (UseOriginCacheControlHeaders does).
        if name == "x-http-method-override":
            return forward(name)
        return name not in _REMOVED_ALWAYS and forward(name)
    if name == "authorization":
        return not is_cached_method(request.method)
    return name not in _REMOVED


def origin_wire_headers(request: EdgeRequest, origin: OriginTarget) -> Headers:
    """The header lines actually sent to ``origin`` for ``request``.

    The origin's custom headers are added, replacing any line of the same name (a viewer cannot
    override them), and ``Content-Length`` is kept true to the body.
    """
    headers = request.headers.without_hop_by_hop()
    custom = origin.custom_headers
    for name in dict.fromkeys(k.lower() for k, _ in custom):
        lines = [(k, v) for k, v in custom if k.lower() == name]
        if len(lines) == 1:
            headers.set(*lines[0])  # keeps the replaced line's position
        else:
            headers.remove(name)
            for k, v in lines:
                headers.add(k, v)
    headers.fit_length(request.body)
    return headers
