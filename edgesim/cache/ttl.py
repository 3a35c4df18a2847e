"""How long the edge keeps a response, whether waiting requests may share it, and its ``Vary``.

:func:`edge_ttl` is CloudFront's table of origin headers against MinTTL, DefaultTTL and MaxTTL
(spec §2.2), its method rules (§3.1), its error and redirect caching (§3.2) and the RFC 5861
stale directives it honours (§3.5). Choices where CloudFront's documents are silent or loose:

- **Statuses.** 200, 203, 204 and 206 follow the TTL table (203 and 204 are cacheable by default
  in HTTP and nothing says CloudFront refuses them; CloudFront caches range parts, so 206 too).
  301 and 302 follow it; 307 and 308 only when the response has ``Cache-Control``, as the
  current guide says. 404, 414, 500, 501, 502, 503 and 504 are always cached; 400, 403, 405, 412
  and 415 only with ``max-age`` or ``s-maxage``; 416 never. Every other status (201, 303, 410,
  451, ...) is not cached, since no source says it is.
- **Error TTLs.** The greater of ErrorCachingMinTTL (10 s unless a custom error response sets
  it) and the header value capped at MaxTTL. ``Expires`` counts only where a custom error
  response is configured for the code, as the custom-error page of the guide says. An error
  TTL of 0 means not cached.
- **TTL 0.** A response whose headers give it 0 s (``max-age=0``, an ``Expires`` in the past or
  invalid) with MinTTL 0 is still stored, already stale, so that the next request revalidates
  it with its validators and a failing origin can be covered by it. A response that only
  DefaultTTL 0 would time (``UseOriginCacheControlHeaders`` with no caching headers) is not
  stored, as AWS states.
- **Cache-Control details.** Several ``Cache-Control`` lines are read as one list; the first
  value of a repeated directive wins. A malformed or negative ``max-age``/``s-maxage`` counts as
  0 (stale), as HTTP asks of caches, and values above 100 years as 100 years. ``private`` beats
  ``s-maxage``. ``no-cache`` or ``private`` naming fields (``no-cache="Set-Cookie"``) does not
  restrict the response, only those fields (:func:`fields_not_stored`).
  ``must-revalidate`` and ``proxy-revalidate`` are not acted on: CloudFront documents no use of
  them.
- **Stale windows** are taken as the origin wrote them, not capped at MaxTTL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

from edgesim.cache.policies import (
    MAX_TTL_LIMIT,
    CachePolicy,
    OriginRequestPolicy,
    is_cached_method,
)
from edgesim.http import Headers

__all__ = [
    "ALWAYS_CACHED_ERRORS",
    "CACHED_WITH_MAX_AGE_ERRORS",
    "DEFAULT_ERROR_CACHING_MIN_TTL",
    "Freshness",
    "cache_control",
    "collapsible",
    "edge_ttl",
    "error_caching_floor",
    "fields_not_stored",
    "varies_on_everything",
    "viewer_vary",
]

DEFAULT_ERROR_CACHING_MIN_TTL = 10.0
ALWAYS_CACHED_ERRORS = frozenset({404, 414, 500, 501, 502, 503, 504})
CACHED_WITH_MAX_AGE_ERRORS = frozenset({400, 403, 405, 412, 415})
_TTL_TABLE_STATUSES = frozenset({200, 203, 204, 206, 301, 302, 307, 308})
_RESTRICTIVE = ("no-store", "no-cache", "private")
_DEVICE_HEADERS = tuple(
    f"cloudfront-is-{kind}-viewer"
    for kind in ("desktop", "mobile", "tablet", "smarttv", "android", "ios")
)
_DIRECTIVE = re.compile(r'([^\s,=";]+)(?:\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*))?')


@dataclass(frozen=True)
class Freshness:
    """How the edge keeps one response.

    ``ttl``: seconds it is fresh; 0 means stored but stale at once, so every request revalidates
    it. ``stale_while_revalidate`` / ``stale_if_error``: the origin's RFC 5861 windows in
    seconds past expiry (0 when it sent none). ``serve_stale_on_error`` is False when the origin
    sent ``stale-if-error=0``, which opts out of CloudFront serving the expired copy when the
    origin fails. ``revalidate_conditionally`` is False for ``Vary: *`` under MinTTL 0, where
    CloudFront refetches the whole object without validators.
    """

    ttl: float
    stale_while_revalidate: float = 0.0
    stale_if_error: float = 0.0
    serve_stale_on_error: bool = True
    revalidate_conditionally: bool = True


def edge_ttl(
    policy: CachePolicy,
    method: str,
    status: int,
    headers: Headers,
    *,
    now: float,
    error_caching_min_ttl: float | None = None,
    cached_methods: Sequence[str] = ("GET", "HEAD"),
    vary_all: bool = False,
) -> Freshness | None:
    """How long the edge keeps this response, or ``None`` when CloudFront does not cache it.

    ``now`` (epoch seconds) dates ``Expires``; ``error_caching_min_ttl`` is the custom error
    response's setting for ``status`` (``None`` when there is none: 10 s applies);
    ``cached_methods`` is the behavior's, which decides ``OPTIONS``; ``vary_all`` says the
    origin sent ``Vary: *`` where ``headers`` no longer show it (the viewer's ``Vary`` is
    filtered before the response is stored).
    """
    if policy.caching_disabled:
        return None
    if not is_cached_method(method, cached_methods):
        return None
    directives = cache_control(headers)
    if status in ALWAYS_CACHED_ERRORS or status in CACHED_WITH_MAX_AGE_ERRORS:
        return _error_freshness(policy, status, headers, directives, now, error_caching_min_ttl)
    if status not in _TTL_TABLE_STATUSES:
        return None
    if status in (307, 308) and "cache-control" not in headers:
        return None
    swr = _seconds(directives.get("stale-while-revalidate", "0"))
    sie = _seconds(directives.get("stale-if-error", "0"))
    # `stale-if-error=0` is how an origin opts out of being covered by an expired copy (§2.2).
    cover = not ("stale-if-error" in directives and sie == 0)
    if _restricted(directives):
        # CloudFront obeys the origin only while MinTTL is 0; otherwise MinTTL wins.
        return Freshness(float(policy.min_ttl), swr, sie, cover) if policy.min_ttl > 0 else None
    if policy.min_ttl == 0 and (vary_all or varies_on_everything(headers)):
        return Freshness(0.0, 0.0, sie, cover, revalidate_conditionally=False)
    header_ttl = _header_ttl(directives, headers, now, use_expires=True)
    if header_ttl is None:
        ttl = float(max(policy.min_ttl, policy.default_ttl))
        if ttl == 0:
            return None
    else:
        ttl = min(max(header_ttl, float(policy.min_ttl)), float(policy.max_ttl))
    return Freshness(ttl, swr, sie, cover)


def error_caching_floor(configured: float | None) -> float:
    """How long an error is kept at least: a custom error response's ``error_caching_min_ttl``
    (0 included: then it is not kept), else CloudFront's default of 10 s."""
    return DEFAULT_ERROR_CACHING_MIN_TTL if configured is None else float(configured)


def _error_freshness(
    policy: CachePolicy,
    status: int,
    headers: Headers,
    directives: dict[str, str | None],
    now: float,
    configured: float | None,
) -> Freshness | None:
    if status in CACHED_WITH_MAX_AGE_ERRORS and not (
        "max-age" in directives or "s-maxage" in directives
    ):
        return None
    floor = error_caching_floor(configured)
    header_ttl = _header_ttl(directives, headers, now, use_expires=configured is not None)
    ttl = floor if header_ttl is None else max(min(header_ttl, float(policy.max_ttl)), floor)
    return Freshness(ttl) if ttl > 0 else None


def _header_ttl(
    directives: dict[str, str | None], headers: Headers, now: float, *, use_expires: bool
) -> float | None:
    """The origin's own TTL: s-maxage, else max-age, else Expires; ``None`` if it gave none."""
    for name in ("s-maxage", "max-age"):
        if name in directives:
            return _seconds(directives[name])
    expires = headers.get("expires")
    if expires is None or not use_expires:
        return None
    try:
        when = parsedate_to_datetime(expires)
    except (TypeError, ValueError, IndexError):
        return 0.0  # an invalid date, "0" included, means already expired
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def collapsible(
    policy: CachePolicy,
    headers: Headers,
    *,
    orp: OriginRequestPolicy | None = None,
    vary_all: bool = False,
) -> bool:
    """Whether requests waiting on the same key may share this response (spec §3.8).

    Not under a policy with all TTLs 0, nor when cookies are forwarded (in the key or by
    ``orp``), nor with MinTTL 0 for a response marked ``private``, ``no-store``, ``no-cache``,
    ``max-age=0`` or ``s-maxage=0``, or one with ``Vary: *`` (``vary_all`` when ``headers`` no
    longer show it), which CloudFront fetches anew for every request (§2.2).
    """
    if policy.caching_disabled or policy.cookie_behavior != "none":
        return False
    if orp is not None and orp.cookie_behavior != "none":
        return False
    if policy.min_ttl > 0:
        return True
    if vary_all or varies_on_everything(headers):
        return False
    directives = cache_control(headers)
    # Field-qualified forms count too: `no-cache="Set-Cookie"` marks a per-viewer response.
    if any(name in directives for name in _RESTRICTIVE):
        return False
    return all(_seconds(directives[n]) > 0 for n in ("max-age", "s-maxage") if n in directives)


def viewer_vary(headers: Headers, forwarded: Callable[[str], bool]) -> str | None:
    """The ``Vary`` the viewer sees (spec §3.7), or ``None`` for no ``Vary`` header.

    ``Accept-Encoding`` and ``Cookie`` stay, and so do the names ``forwarded`` accepts (lowercase
    header names sent to the origin); ``User-Agent`` also stays when device-type headers are
    forwarded. Every other name, ``*`` included, is dropped. Names keep the origin's spelling.
    """
    device_types = any(forwarded(name) for name in _DEVICE_HEADERS)
    kept: dict[str, str] = {}
    for name in _vary_names(headers):
        lower = name.lower()
        if lower in kept or lower == "*":
            continue
        if (
            lower in ("accept-encoding", "cookie")
            or (lower == "user-agent" and device_types)
            or forwarded(lower)
        ):
            kept[lower] = name
    return ", ".join(kept.values()) or None


def varies_on_everything(headers: Headers) -> bool:
    """Whether the response's ``Vary`` holds ``*`` (spec §2.2)."""
    return "*" in _vary_names(headers)


def fields_not_stored(headers: Headers) -> frozenset[str]:
    """Lowercase header names the edge must not keep with the object.

    ``no-cache="Set-Cookie"`` keeps the response but not its ``Set-Cookie`` (spec §2.2); any
    field named by ``no-cache`` or ``private`` is treated alike.
    """
    names: set[str] = set()
    for directive in ("no-cache", "private"):
        value = cache_control(headers).get(directive)
        if value:
            names.update(n.strip().lower() for n in value.split(",") if n.strip())
    return frozenset(names)


def cache_control(headers: Headers) -> dict[str, str | None]:
    """The ``Cache-Control`` directives: lowercase name -> value (unquoted) or ``None``."""
    directives: dict[str, str | None] = {}
    for line in headers.get_all("cache-control"):
        for match in _DIRECTIVE.finditer(line):
            name, value = match.group(1).lower(), match.group(2)
            if value is not None and len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            directives.setdefault(name, value)
    return directives


def _restricted(directives: dict[str, str | None]) -> bool:
    """``no-store``, or ``no-cache`` / ``private`` without field names."""
    return "no-store" in directives or any(
        name in directives and not directives[name] for name in ("no-cache", "private")
    )


def _seconds(value: str | None) -> float:
    """A delta-seconds value; malformed or negative ones count as 0."""
    if value is None or not value.isdigit() or not value.isascii():
        return 0.0
    return float(min(int(value), MAX_TTL_LIMIT))


def _vary_names(headers: Headers) -> list[str]:
    return [n.strip() for line in headers.get_all("vary") for n in line.split(",") if n.strip()]
