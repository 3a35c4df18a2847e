"""Hypothesis strategies for CloudFront events, valid by construction.

Every event is built by the edge's own builders (:mod:`edgesim.testing.events`) from parts a
viewer could send and CloudFront would deliver: header names that are HTTP tokens CloudFront
passes to functions (no hop-by-hop or disallowed names), printable values, URIs of unreserved
and percent-encoded characters, URL-encoded query strings, cookies, bodies within the trigger's
Include Body quota, IPv4 and IPv6 client addresses, and for the response triggers a status the
trigger really sees (viewer-response never sees 400 and above: it is skipped then).

Requires Hypothesis (``pip install 'edgesim[testing]'``)::

    from hypothesis import given
    from edgesim.testing import strategies

    @given(strategies.events("viewer-request"))
    def test_shape(event): ...
"""

from __future__ import annotations

import base64
from functools import cache
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

from edgesim.config import Distribution
from edgesim.lambda_edge.rules import DISALLOWED_HEADERS
from edgesim.quotas import LAMBDA_EDGE
from edgesim.testing.events import OriginInput, event_for
from edgesim.types import EventType

__all__ = [
    "bodies",
    "client_ips",
    "cookies",
    "events",
    "header_names",
    "header_values",
    "headers",
    "methods",
    "querystrings",
    "statuses",
    "uris",
]

# Names CloudFront consumes, rewrites or never shows a function, and those a test client adds
# itself (Host, Content-Length, Cookie): generating them would only make events CloudFront
# cannot deliver.
_EXCLUDED = frozenset(
    {
        *DISALLOWED_HEADERS,
        *("host", "content-length", "cookie", "transfer-encoding", "te", "via"),
        *("x-forwarded-for", "x-http-method-override", "cdn-loop"),
    }
)
_COMMON = (
    "Accept",
    "Accept-Language",
    "Authorization",
    "Cache-Control",
    "Content-Type",
    "If-None-Match",
    "Origin",
    "Referer",
    "User-Agent",
    "X-Api-Key",
)
_TOKEN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"
_UNRESERVED = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"
_COOKIE_OCTETS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '",;\\')
# Printable ASCII and a few characters of each UTF-8 length, percent-encoded where they go. An
# explicit alphabet also spares Hypothesis building its Unicode tables in every new folder.
_TEXT = "".join(chr(c) for c in range(0x20, 0x7F)) + "\u00e9\u00fc\u0416\u4e2d\u20ac\U0001f600"
_METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE")
_BODY_METHODS = ("PUT", "PATCH", "POST", "DELETE")
_STATUSES = (200, 201, 204, 206, 301, 302, 304, 307, 400, 401, 403, 404, 429, 500, 502, 503, 504)


def _allowed(name: str) -> bool:
    lower = name.lower()
    return lower not in _EXCLUDED and not lower.startswith(("x-amz-cf-", "x-edge-", "proxy-"))


@cache
def header_names() -> st.SearchStrategy[str]:
    """Header names a viewer may send and a function is shown: common ones and ``X-`` tokens."""
    made = st.text(_TOKEN, min_size=1, max_size=16).map(lambda t: "X-" + t.strip("-") + "a")
    return st.one_of(st.sampled_from(_COMMON), made).filter(_allowed)


@cache
def header_values(max_size: int = 64) -> st.SearchStrategy[str]:
    """Printable ASCII values without leading or trailing blanks (HTTP trims those)."""
    printable = "".join(chr(c) for c in range(0x20, 0x7F))
    return st.text(printable, max_size=max_size).map(str.strip)


@cache
def headers(max_size: int = 8) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Header lines, as ``(name, value)`` pairs; a name may repeat."""
    return st.lists(st.tuples(header_names(), header_values()), max_size=max_size)


@cache
def uris(max_segments: int = 4) -> st.SearchStrategy[str]:
    """Paths of unreserved characters and percent-encoded UTF-8, starting with ``/``."""
    segment = st.text(_TEXT, max_size=12).map(lambda s: quote(s, safe=_UNRESERVED))
    return st.lists(segment, max_size=max_segments).map(lambda parts: "/" + "/".join(parts))


@cache
def querystrings(max_params: int = 4) -> st.SearchStrategy[str]:
    """Query strings (no ``?``): URL-encoded ``name=value`` pairs, or empty."""
    text = st.text(_TEXT, max_size=10).map(lambda s: quote(s, safe=_UNRESERVED))
    pair = st.tuples(text.filter(bool), text).map(lambda kv: f"{kv[0]}={kv[1]}")
    return st.lists(pair, max_size=max_params).map("&".join)


@cache
def cookies(max_size: int = 4) -> st.SearchStrategy[dict[str, str]]:
    """Cookies as name -> value (RFC 6265 names and values)."""
    name = st.text(_TOKEN, min_size=1, max_size=10)
    value = st.text(_COOKIE_OCTETS, max_size=16)
    return st.dictionaries(name, value, max_size=max_size)


@cache
def client_ips() -> st.SearchStrategy[str]:
    """Viewer addresses, IPv4 and IPv6."""
    return st.ip_addresses().map(str)


@cache
def methods() -> st.SearchStrategy[str]:
    """The methods a behavior allowing all of them passes on."""
    return st.sampled_from(_METHODS)


@cache
def statuses(trigger: EventType | str) -> st.SearchStrategy[int]:
    """Statuses a response trigger sees: any for origin-response, below 400 for
    viewer-response (CloudFront skips it for errors)."""
    kind = EventType(trigger)
    if kind is EventType.VIEWER_RESPONSE:
        return st.sampled_from([s for s in _STATUSES if s < 400])
    return st.one_of(st.sampled_from(_STATUSES), st.integers(200, 599))


@cache
def bodies(trigger: EventType | str, *, max_size: int = 2048) -> st.SearchStrategy[bytes]:
    """Request bodies up to ``max_size`` bytes, never past the trigger's Include Body quota."""
    limit = LAMBDA_EDGE[EventType(trigger)].include_body_bytes or 0
    return st.binary(max_size=min(max_size, limit))


# The strategies above are cached: building one (its alphabet's interval sets) costs far more
# than drawing from it, and _event asks for them on every draw.


@st.composite
def _event(
    draw: st.DrawFn,
    trigger: EventType,
    distribution: Distribution | None,
    include_body: bool,
    origin: OriginInput,
    max_headers: int,
    max_body: int,
) -> dict[str, Any]:
    method = draw(methods())
    options: dict[str, Any] = {
        "method": method,
        "headers": draw(headers(max_headers)),
        "cookies": draw(cookies()),
        "querystring": draw(querystrings()),
        "client_ip": draw(client_ips()),
        "distribution": distribution,
        # Drawn rather than random, so an event shrinks and replays like any other value.
        "request_id": base64.urlsafe_b64encode(draw(st.binary(min_size=40, max_size=40))).decode(),
    }
    if trigger.is_request:
        options["include_body"] = include_body
        if include_body and method in _BODY_METHODS:
            options["body"] = draw(bodies(trigger, max_size=max_body))
    else:
        options["status"] = draw(statuses(trigger))
        options["response_headers"] = draw(headers(max_headers))
    if trigger in (EventType.ORIGIN_REQUEST, EventType.ORIGIN_RESPONSE):
        options["origin"] = origin
        options["edge_id"] = draw(st.binary(min_size=16, max_size=16)).hex()
    return event_for(trigger, draw(uris()), **options)


def events(
    trigger: EventType | str,
    *,
    distribution: Distribution | None = None,
    include_body: bool = False,
    origin: OriginInput = None,
    max_headers: int = 8,
    max_body: int = 2048,
) -> st.SearchStrategy[dict[str, Any]]:
    """CloudFront events for ``trigger``, as the edge would build them.

    ``distribution`` gives the events its ids (and behaviors' policies); ``include_body`` adds a
    body to PUT, PATCH, POST and DELETE requests at the request triggers; ``origin`` is the
    origin of the origin-side events (``"custom"`` or ``"s3"``, see
    :func:`edgesim.testing.events.origin_target`).
    """
    kind = EventType(trigger)
    return _event(kind, distribution, include_body, origin, max_headers, max_body)
