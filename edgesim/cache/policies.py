"""Cache policies and origin request policies: CloudFront's managed ones and inline ones.

A behavior's ``cache_policy`` decides the TTL bounds and what goes into the cache key (and, with
it, to the origin); its ``origin_request_policy`` adds what goes to the origin without entering
the key. A distribution file names a managed policy (with or without CloudFront's ``Managed-``
prefix, or by its id) or describes one inline; :mod:`edgesim.cache.policy_fields` documents and
checks the inline form.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

from edgesim.cache.policy_fields import (
    KEY_RESTRICTED_HEADERS,
    MAX_TTL_LIMIT,
    HeaderBehavior,
    PolicyError,
    QueryBehavior,
    cache_policy_fields,
    origin_request_policy_fields,
)

__all__ = [
    "KEY_RESTRICTED_HEADERS",
    "MANAGED_CACHE_POLICIES",
    "MANAGED_ORIGIN_REQUEST_POLICIES",
    "MAX_TTL_LIMIT",
    "CachePolicy",
    "HeaderBehavior",
    "OriginRequestPolicy",
    "PolicyError",
    "QueryBehavior",
    "is_cached_method",
    "parse_cache_policy",
    "parse_origin_request_policy",
    "selects",
]

DEFAULT_TTL, MAX_TTL = 86_400, 31_536_000
_P = TypeVar("_P")


def is_cached_method(method: str, cached_methods: Iterable[str] = ("GET", "HEAD")) -> bool:
    """Whether CloudFront caches answers to ``method`` under a behavior's ``cached_methods``.

    GET and HEAD always are; OPTIONS only when the behavior lists it; nothing else ever is.
    """
    method = method.upper()
    return method in ("GET", "HEAD") or (
        method == "OPTIONS" and "OPTIONS" in {m.upper() for m in cached_methods}
    )


@dataclass(frozen=True)
class CachePolicy:
    """A cache policy: TTL bounds and the values in the cache key (which also go to the origin)."""

    name: str
    min_ttl: int
    default_ttl: int
    max_ttl: int
    headers: tuple[str, ...] = ()
    cookie_behavior: QueryBehavior = "none"
    cookies: tuple[str, ...] = ()
    query_string_behavior: QueryBehavior = "none"
    query_strings: tuple[str, ...] = ()
    gzip: bool = False
    brotli: bool = False

    @property
    def caching_disabled(self) -> bool:
        """All TTLs are 0 (like CachingDisabled): nothing is stored and nothing collapses."""
        return self.max_ttl == 0  # min <= default <= max, so the other two are 0 as well

    @property
    def normalizes_accept_encoding(self) -> bool:
        """Whether ``Accept-Encoding`` is normalized into the key and the origin request."""
        return self.gzip or self.brotli


@dataclass(frozen=True)
class OriginRequestPolicy:
    """What goes to the origin besides the cache key, without entering it."""

    name: str
    header_behavior: HeaderBehavior = "none"
    headers: tuple[str, ...] = ()
    cookie_behavior: QueryBehavior = "none"
    cookies: tuple[str, ...] = ()
    query_string_behavior: QueryBehavior = "none"
    query_strings: tuple[str, ...] = ()

    def forwards_header(self, name: str) -> bool:
        """Whether a viewer header (lowercase ``name``) goes to the origin under this policy.

        ``allViewerAndWhitelistCloudFront`` forwards every viewer header; its list names the
        headers CloudFront adds itself.
        """
        if self.header_behavior == "whitelist":
            return name in self.headers
        if self.header_behavior == "allExcept":
            return name not in self.headers
        return self.header_behavior != "none"


def selects(behavior: QueryBehavior, names: tuple[str, ...], name: str) -> bool:
    """Whether a cookie or query string ``name`` is taken under ``behavior`` and its ``names``."""
    if behavior == "whitelist":
        return name in names
    if behavior == "allExcept":
        return name not in names
    return behavior == "all"


# --- managed policies (spec §2.5, §2.6) ---------------------------------------------------------

_ORIGIN_CACHE_CONTROL_HEADERS = (
    *("host", "origin", "x-http-method-override", "x-http-method", "x-method-override"),
)
_MANAGED_CACHE = (
    ("658327ea-f89d-4fab-a63d-7e88639e58f6", CachePolicy(
        "CachingOptimized", 1, DEFAULT_TTL, MAX_TTL, gzip=True, brotli=True)),
    ("b2884449-e4de-46a7-ac36-70bc7f1ddd6d", CachePolicy(
        "CachingOptimizedForUncompressedObjects", 1, DEFAULT_TTL, MAX_TTL)),
    ("4135ea2d-6df8-44a3-9df3-4b5a84be39ad", CachePolicy("CachingDisabled", 0, 0, 0)),
    ("2e54312d-136d-493c-8eb9-b001f22f67d2", CachePolicy(
        "Amplify", 2, 2, 600, headers=("authorization", "cloudfront-viewer-country", "host"),
        cookie_behavior="all", query_string_behavior="all", gzip=True, brotli=True)),
    ("08627262-05a9-4f76-9ded-b50ca2e3a84f", CachePolicy(
        "Elemental-MediaPackage", 0, DEFAULT_TTL, MAX_TTL, headers=("origin",),
        query_string_behavior="whitelist",
        query_strings=("aws.manifestfilter", "start", "end", "m"), gzip=True)),
    ("83da9c7e-98b4-4e11-a168-04f0df8e2c65", CachePolicy(
        "UseOriginCacheControlHeaders", 0, 0, MAX_TTL, headers=_ORIGIN_CACHE_CONTROL_HEADERS,
        cookie_behavior="all", gzip=True, brotli=True)),
    ("4cc15a8a-d715-48a4-82b8-cc0b614638fe", CachePolicy(
        "UseOriginCacheControlHeaders-QueryStrings", 0, 0, MAX_TTL,
        headers=_ORIGIN_CACHE_CONTROL_HEADERS, cookie_behavior="all",
        query_string_behavior="all", gzip=True, brotli=True)),
)  # fmt: skip
_CORS = ("origin", "access-control-request-headers", "access-control-request-method")
# The CloudFront-* headers AllViewerAndCloudFrontHeaders-2022-06 adds: device type, location,
# protocol, HTTP version, TLS, address and ASN.
_CLOUDFRONT_2022_06 = tuple(
    "cloudfront-" + name
    for name in (
        *("forwarded-proto", "is-android-viewer", "is-desktop-viewer", "is-ios-viewer"),
        *("is-mobile-viewer", "is-smarttv-viewer", "is-tablet-viewer", "viewer-address"),
        *("viewer-asn", "viewer-city", "viewer-country", "viewer-country-name"),
        *("viewer-country-region", "viewer-country-region-name", "viewer-http-version"),
        *("viewer-latitude", "viewer-longitude", "viewer-metro-code", "viewer-postal-code"),
        *("viewer-time-zone", "viewer-tls"),
    )
)
_ALL: dict[str, Any] = {"cookie_behavior": "all", "query_string_behavior": "all"}
_MANAGED_ORIGIN = (
    ("216adef6-5c7f-47e4-b989-5492eafa07d3", OriginRequestPolicy(
        "AllViewer", "allViewer", **_ALL)),
    ("33f36d7e-f396-46d9-90e0-52428a34d9dc", OriginRequestPolicy(
        "AllViewerAndCloudFrontHeaders-2022-06", "allViewerAndWhitelistCloudFront",
        _CLOUDFRONT_2022_06, **_ALL)),
    ("b689b0a8-53d0-40ab-baf2-68738e2966ac", OriginRequestPolicy(
        "AllViewerExceptHostHeader", "allExcept", ("host",), **_ALL)),
    ("59781a5b-3903-41f3-afcb-af62929ccde1", OriginRequestPolicy(
        "CORS-CustomOrigin", "whitelist", ("origin",))),
    ("88a5eaf4-2fd4-4709-b370-b4c650ea3fcf", OriginRequestPolicy(
        "CORS-S3Origin", "whitelist", _CORS)),
    ("775133bc-15f2-49f9-abea-afb2e0bf67d2", OriginRequestPolicy(
        "Elemental-MediaTailor-PersonalizedManifests", "whitelist",
        (*_CORS, "user-agent", "x-forwarded-for"), query_string_behavior="all")),
    ("acba4595-bd28-49b8-b9fe-13317c0390fa", OriginRequestPolicy(
        "UserAgentRefererHeaders", "whitelist", ("user-agent", "referer"))),
    ("bf0718e1-ba1e-49d1-88b1-f726733018ae", OriginRequestPolicy(
        "HostHeaderOnly", "whitelist", ("host",))),
)  # fmt: skip

MANAGED_CACHE_POLICIES: Mapping[str, CachePolicy] = MappingProxyType(
    {policy.name: policy for _, policy in _MANAGED_CACHE}
)
MANAGED_ORIGIN_REQUEST_POLICIES: Mapping[str, OriginRequestPolicy] = MappingProxyType(
    {policy.name: policy for _, policy in _MANAGED_ORIGIN}
)
_CACHE_IDS = {policy_id: policy for policy_id, policy in _MANAGED_CACHE}
_ORIGIN_IDS = {policy_id: policy for policy_id, policy in _MANAGED_ORIGIN}


# --- parsing ----------------------------------------------------------------------------------


def parse_cache_policy(value: str | Mapping[str, Any]) -> CachePolicy:
    """A managed cache policy by name or id, or an inline one (:mod:`edgesim.cache.policy_fields`).

    Raises :class:`PolicyError` naming the sub-key at fault.
    """
    if isinstance(value, str):
        return _managed(value, MANAGED_CACHE_POLICIES, _CACHE_IDS, "cache policy")
    return CachePolicy(**cache_policy_fields(value))


def parse_origin_request_policy(value: str | Mapping[str, Any]) -> OriginRequestPolicy:
    """A managed origin request policy by name or id, or an inline one.

    Raises :class:`PolicyError` naming the sub-key at fault.
    """
    if isinstance(value, str):
        return _managed(
            value, MANAGED_ORIGIN_REQUEST_POLICIES, _ORIGIN_IDS, "origin request policy"
        )
    return OriginRequestPolicy(**origin_request_policy_fields(value))


def _managed(name: str, by_name: Mapping[str, _P], by_id: Mapping[str, _P], kind: str) -> _P:
    found = by_name.get(name.removeprefix("Managed-")) or by_id.get(name)
    if found is None:
        raise PolicyError(
            f"unknown managed {kind} {name!r}; managed policies: {', '.join(by_name)}"
        )
    return found
