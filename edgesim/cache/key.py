"""The cache key of a request, and what a cache policy and an origin request policy send on.

CloudFront keys an object on the distribution's domain, the URI path and, for ``OPTIONS``, the
method; a cache policy adds the headers, cookies and query strings it names and, with gzip or
brotli on, a normalized ``Accept-Encoding``. ``HEAD`` and ``GET`` share a key. Everything in the
key also goes to the origin; an origin request policy adds more without entering the key.

Choices where CloudFront's documents leave room:

- **Query strings keep the viewer's order and repeats**, in the key and toward the origin, under
  every behavior: ``?a=1&b=2`` and ``?b=2&a=1`` are two objects. CloudFront documents this for
  legacy settings; nothing says cache policies sort. ``whitelist`` and ``allExcept`` drop the
  parameters they exclude and keep the others where they were; ``all`` keeps the query string
  byte for byte. Only ``&`` separates parameters (``a=1;b=2`` is one parameter ``a``). A
  parameter's name matches a policy name as written or percent-decoded, case-sensitively.
- **Cookies are keyed sorted by name** (as CloudFront sorts them toward the origin), so the order
  a browser sends them in does not split the cache. Names and values are case-sensitive.
- **Header values are keyed as sent**, several lines of one header joined with ``,``; a header
  that is absent is keyed apart from one that is present but empty.
- The key's text is ``|``-separated parts, a ``|`` or ``\\`` inside a part escaped with ``\\``,
  so distinct requests never share a key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import unquote

from edgesim.cache.policies import (
    MANAGED_ORIGIN_REQUEST_POLICIES,
    CachePolicy,
    OriginRequestPolicy,
    QueryBehavior,
    is_cached_method,
    selects,
)
from edgesim.http import EdgeRequest, Headers

__all__ = [
    "CacheKey",
    "Forwarding",
    "accept_encoding_for_origin",
    "cache_key",
    "forwarding",
    "viewer_cookies",
]

# Managed policies that forward all query strings hold these back from S3 origins, where they
# would rewrite S3's response headers (an AWS note on the managed origin request policies).
_S3_RESPONSE_OVERRIDES = frozenset(
    {"response-content-type", "response-content-disposition", "response-content-encoding"}
)
_S3_FILTERING_POLICIES = tuple(
    MANAGED_ORIGIN_REQUEST_POLICIES[name]
    for name in (
        "AllViewer",
        "AllViewerAndCloudFrontHeaders-2022-06",
        "AllViewerExceptHostHeader",
        "Elemental-MediaTailor-PersonalizedManifests",
    )
)


class CacheKey(NamedTuple):
    """A request's cache key.

    ``value`` is the whole key; ``path`` (the URI path as sent) and ``query`` (the part of the
    query string in the key, ``""`` if none) are what invalidation paths match against. A named
    tuple: immutable, and made in C, which a frozen dataclass is not (every request makes one).
    """

    value: str
    path: str
    query: str

    def for_head(self) -> str:
        """Where the answer to a ``HEAD`` is kept: headers only, apart from the object."""
        return self.value + "|HEAD"

    def for_range(self, range_header: str) -> str:
        """Where the part an origin cut for this ``Range`` is kept (spec §3.3); spellings that
        differ only in spaces or letter case share it."""
        spec = "".join(range_header.split()).lower()
        return f"{self.value}|range={_escaped(spec)}"


def cache_key(policy: CachePolicy, request: EdgeRequest, *, distribution_domain: str) -> CacheKey:
    """The cache key of ``request`` under ``policy`` (spec §2.3, §2.4; choices in module notes)."""
    method = request.method.upper()
    querystring = request.querystring
    if not querystring or policy.query_string_behavior == "all":
        query = querystring
    elif policy.query_string_behavior == "none":
        query = ""
    else:
        query = _kept_query(querystring, lambda name: _selects_query(policy, name))
    parts = [
        distribution_domain.lower(),
        "GET" if method == "HEAD" else method,
        f"{request.uri}?{query}" if query else request.uri,
    ]
    for name in policy.headers:
        values = request.headers.get_all(name)
        parts.append(f"h:{name}={','.join(values)}" if values else f"h:{name}")
    if policy.cookie_behavior != "none":
        cookies = [
            (name, raw)
            for name, raw in viewer_cookies(request.headers)
            if selects(policy.cookie_behavior, policy.cookies, name)
        ]
        cookies.sort(key=lambda cookie: cookie[0])  # stable: repeats of a name keep their order
        parts += [f"c:{raw}" for _, raw in cookies]
    encoding = accept_encoding_for_origin(policy, request)
    if encoding is not None and encoding != "identity":
        parts.append(f"accept-encoding={encoding}")
    value = "|".join(parts)
    if value.count("|") != len(parts) - 1 or "\\" in value:
        # A part holds the separator or the escape: each part is escaped (the rare case).
        value = "|".join([_escaped(part) for part in parts])
    return CacheKey(value=value, path=request.uri, query=query)


def accept_encoding_for_origin(policy: CachePolicy, request: EdgeRequest) -> str | None:
    """The normalized ``Accept-Encoding`` CloudFront sends to the origin (spec §2.4).

    ``br,gzip``, ``gzip``, ``br`` or ``identity``; ``None`` when gzip and brotli are both off
    (the header is then an ordinary one), when the viewer sent none, or for an HTTP/1.0 viewer,
    whose ``Accept-Encoding`` CloudFront strips. Only the presence of a coding counts; q-values
    and other codings are dropped, as CloudFront describes its normalization.
    """
    if not policy.normalizes_accept_encoding or _is_http10(request):
        return None
    values = request.headers.get_all("accept-encoding")
    if not values:
        return None
    codings = {
        token.split(";", 1)[0].strip().lower() for value in values for token in value.split(",")
    }
    gzip = policy.gzip and "gzip" in codings
    brotli = policy.brotli and "br" in codings
    if gzip and brotli:
        return "br,gzip"
    return "gzip" if gzip else "br" if brotli else "identity"


@dataclass(frozen=True)
class Forwarding:
    """What goes to the origin besides CloudFront's own headers, under a policy pair.

    ``header_allowed`` answers for lowercase viewer header names and is meant as
    :func:`edgesim.origins.forwarding.to_origin`'s ``forward``. It refuses ``cookie`` (send
    :attr:`cookie` instead, which is filtered and sorted) and, when the cache policy normalizes
    it, ``accept-encoding`` (send :attr:`accept_encoding`); it accepts ``host`` exactly when
    :attr:`keep_viewer_host` holds.
    """

    header_allowed: Callable[[str], bool]
    querystring: str
    cookie: str | None
    accept_encoding: str | None
    keep_viewer_host: bool


def forwarding(
    policy: CachePolicy,
    orp: OriginRequestPolicy | None,
    request: EdgeRequest,
    *,
    s3_origin: bool,
    cached_methods: Sequence[str] = ("GET", "HEAD"),
) -> Forwarding:
    """What CloudFront sends the origin for ``request`` under ``policy`` and ``orp``.

    Everything in the cache key goes; the origin request policy adds to it. Without an origin
    request policy nothing else from the viewer goes (besides the headers CloudFront always
    passes on, which :func:`edgesim.origins.forwarding.to_origin` handles).
    ``Authorization`` follows spec §3.1: it goes when keyed or under an all-viewer policy, and
    otherwise only with methods CloudFront does not cache (``OPTIONS`` unless ``cached_methods``
    has it, and the writing methods). The viewer's ``Host`` never goes to an S3 origin.
    """
    method = request.method.upper()

    def named(name: str) -> bool:
        return name in policy.headers or (orp is not None and orp.forwards_header(name))

    keep_host = not s3_origin and named("host")

    def header_allowed(name: str) -> bool:
        name = name.lower()
        if name == "cookie":
            return False
        if name == "host":
            return keep_host
        if name == "accept-encoding" and policy.normalizes_accept_encoding:
            return False
        if name == "authorization" and not is_cached_method(method, cached_methods):
            return True
        return named(name)

    def query_sent(name: str) -> bool:
        if _selects_query(policy, name):
            return True
        if orp is None or not _selects(orp.query_string_behavior, orp.query_strings, name):
            return False
        held_back = s3_origin and any(orp is p for p in _S3_FILTERING_POLICIES)
        return not (held_back and name in _S3_RESPONSE_OVERRIDES)

    def cookie_sent(name: str) -> bool:
        if selects(policy.cookie_behavior, policy.cookies, name):
            return True
        return orp is not None and selects(orp.cookie_behavior, orp.cookies, name)

    kept = [(name, raw) for name, raw in viewer_cookies(request.headers) if cookie_sent(name)]
    kept.sort(key=lambda cookie: cookie[0])  # stable: repeats of a name keep their order
    return Forwarding(
        header_allowed=header_allowed,
        querystring=_kept_query(request.querystring, query_sent),
        cookie="; ".join(raw for _, raw in kept) or None,
        accept_encoding=accept_encoding_for_origin(policy, request),
        keep_viewer_host=keep_host,
    )


def viewer_cookies(headers: Headers) -> list[tuple[str, str]]:
    """The viewer's cookies as ``(name, name=value as sent)``, in order, from every ``Cookie``."""
    cookies: list[tuple[str, str]] = []
    for line in headers.get_all("cookie"):
        for piece in line.split(";"):
            piece = piece.strip()
            if piece:
                cookies.append((piece.partition("=")[0].strip(), piece))
    return cookies


def _selects_query(policy: CachePolicy, name: str) -> bool:
    return _selects(policy.query_string_behavior, policy.query_strings, name)


def _selects(behavior: QueryBehavior, names: tuple[str, ...], raw_name: str) -> bool:
    """Like :func:`selects`, with the parameter's name taken as written or percent-decoded."""
    if behavior in ("none", "all"):
        return behavior == "all"
    decoded = unquote(raw_name)
    listed = raw_name in names or decoded in names
    return listed if behavior == "whitelist" else not listed


def _kept_query(querystring: str, keep: Callable[[str], bool]) -> str:
    """The parameters ``keep`` accepts by name, in the viewer's order; all of them unchanged."""
    if not querystring:
        return querystring
    parameters = querystring.split("&")
    names = [parameter.partition("=")[0] for parameter in parameters]
    if all(keep(name) for name in names):
        return querystring
    return "&".join(p for p, name in zip(parameters, names, strict=True) if p and keep(name))


def _escaped(part: str) -> str:
    if "|" not in part and "\\" not in part:
        return part
    return part.replace("\\", "\\\\").replace("|", "\\|")


def _is_http10(request: EdgeRequest) -> bool:
    return request.http_version.upper().removeprefix("HTTP/") == "1.0"
