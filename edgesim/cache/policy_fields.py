"""The inline form of cache and origin request policies in a distribution file.

A behavior's ``cache_policy`` or ``origin_request_policy`` is either the name (or id) of a
managed policy, which :mod:`edgesim.cache.policies` looks up, or a mapping read here::

    cache_policy:
      min_ttl: 0              # seconds; default 0
      default_ttl: 86400      # default 86400, or min_ttl when that is larger
      max_ttl: 31536000       # default 31536000, or default_ttl when that is larger
      headers: [Origin]       # header names in the key: a list, or none (the default)
      cookies: none           # none | all | [names] | {all_except: [names]}
      query_strings: all      # none | all | [names] | {all_except: [names]}
      gzip: true              # normalized Accept-Encoding in the key; default false
      brotli: true            # default false

    origin_request_policy:
      headers: all_viewer     # none | all_viewer | [names] | {all_except: [names]}
                              #   | {all_viewer_and_cloudfront: [CloudFront-* names]}
      cookies: all            # as in a cache policy
      query_strings: all

A ``default_ttl`` left out also stays within an explicit ``max_ttl``. Each mapping may carry a
``name``, shown in traces. The values are held to CloudFront's own validation: TTLs in
0-3,153,600,000 s with min <= default <= max, at most 10 names of each kind and 1,024 characters
of names in all, no ``CloudFront-Viewer-Address``/``-ASN``/``-TLS``/``-JA3-Fingerprint`` in a
cache key, no ``Authorization`` named in an origin request policy, no key settings (nor
gzip/brotli) when all TTLs are 0, and no ``Accept-Encoding`` header in a key that gzip or brotli
already normalizes. A problem is a :class:`PolicyError` naming the sub-key at fault, which the
config loader turns into a ``ConfigError`` naming the file and the whole key path.

Header names are case-insensitive and kept lowercase; cookie and query string names are
case-sensitive, as in CloudFront.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, TypedDict

__all__ = [
    "KEY_RESTRICTED_HEADERS",
    "MAX_TTL_LIMIT",
    "CacheFields",
    "HeaderBehavior",
    "OriginRequestFields",
    "PolicyError",
    "QueryBehavior",
    "cache_policy_fields",
    "origin_request_policy_fields",
    "shown",
]

QueryBehavior = Literal["none", "whitelist", "allExcept", "all"]
HeaderBehavior = Literal[
    "none", "whitelist", "allViewer", "allViewerAndWhitelistCloudFront", "allExcept"
]

MAX_TTL_LIMIT = 3_153_600_000  # 100 years, CloudFront's bound on every TTL
DEFAULT_TTL, MAX_TTL = 86_400, 31_536_000
MAX_NAMES, MAX_NAME_CHARS = 10, 1_024
# CloudFront computes these per connection; it lets an origin request policy forward them but
# refuses them in a cache key.
KEY_RESTRICTED_HEADERS = (
    "cloudfront-viewer-address",
    "cloudfront-viewer-asn",
    "cloudfront-viewer-tls",
    "cloudfront-viewer-ja3-fingerprint",
)
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")
_COOKIE_NAME = _HEADER_NAME  # RFC 6265: a cookie name is a token
_QUERY_NAME = re.compile(r"[^&=#\s]{1,256}")
_CACHE_KEYS: tuple[str, ...] = (
    *("name", "min_ttl", "default_ttl", "max_ttl", "headers", "cookies"),
    *("query_strings", "gzip", "brotli"),
)
_ORIGIN_KEYS = ("name", "headers", "cookies", "query_strings")


class PolicyError(ValueError):
    """A policy value CloudFront would refuse.

    ``str(error)`` is the problem; :attr:`key` is the sub-key at fault (``""`` for the whole
    value), e.g. ``min_ttl`` or ``cookies.all_except[1]``, and :attr:`at` the same as parts.
    """

    def __init__(self, problem: str, *at: str | int) -> None:
        super().__init__(problem)
        self.problem = problem
        self.at: tuple[str | int, ...] = at
        self.key = "".join(
            f"[{part}]" if isinstance(part, int) else (f".{part}" if i else part)
            for i, part in enumerate(at)
        )


class CacheFields(TypedDict):
    """The fields of a :class:`~edgesim.cache.policies.CachePolicy`, read from an inline mapping."""

    name: str
    min_ttl: int
    default_ttl: int
    max_ttl: int
    headers: tuple[str, ...]
    cookie_behavior: QueryBehavior
    cookies: tuple[str, ...]
    query_string_behavior: QueryBehavior
    query_strings: tuple[str, ...]
    gzip: bool
    brotli: bool


class OriginRequestFields(TypedDict):
    """The fields of an :class:`~edgesim.cache.policies.OriginRequestPolicy`, read inline."""

    name: str
    header_behavior: HeaderBehavior
    headers: tuple[str, ...]
    cookie_behavior: QueryBehavior
    cookies: tuple[str, ...]
    query_string_behavior: QueryBehavior
    query_strings: tuple[str, ...]


def cache_policy_fields(value: object) -> CacheFields:
    """Read an inline cache policy (see the module notes); raises :class:`PolicyError`."""
    data = _mapping(value, _CACHE_KEYS)
    min_ttl = _ttl(data, "min_ttl", 0)
    explicit_max = _ttl(data, "max_ttl", MAX_TTL_LIMIT)
    default_ttl = _ttl(data, "default_ttl", max(min_ttl, min(DEFAULT_TTL, explicit_max)))
    max_ttl = _ttl(data, "max_ttl", max(MAX_TTL, default_ttl))
    if default_ttl < min_ttl:
        raise PolicyError(
            f"default_ttl ({default_ttl} s) must not be below min_ttl ({min_ttl} s)", "default_ttl"
        )
    if max_ttl < default_ttl:
        raise PolicyError(
            f"max_ttl ({max_ttl} s) must not be below default_ttl ({default_ttl} s)", "max_ttl"
        )
    raw_headers = data.get("headers", "none")
    if raw_headers == "none":
        raw_headers = []
    if not isinstance(raw_headers, list):
        raise PolicyError(
            f"must be a list of header names, or none; got {shown(raw_headers)}", "headers"
        )
    headers = _header_names(raw_headers, "headers")
    for index, header in enumerate(headers):
        if header in KEY_RESTRICTED_HEADERS:
            raise PolicyError(
                f"{raw_headers[index]} cannot be in a cache key (CloudFront allows it only in an "
                "origin request policy)",
                "headers",
                index,
            )
    cookie_behavior, cookies = _names(data, "cookies", _COOKIE_NAME)
    query_behavior, query_strings = _names(data, "query_strings", _QUERY_NAME)
    gzip, brotli = _flag(data, "gzip"), _flag(data, "brotli")
    _total_length(headers, cookies, query_strings)
    if max_ttl == 0:
        for key, is_set in (
            ("headers", bool(headers)),
            ("cookies", cookie_behavior != "none"),
            ("query_strings", query_behavior != "none"),
            ("gzip", gzip),
            ("brotli", brotli),
        ):
            if is_set:
                off = "false" if key in ("gzip", "brotli") else "none"
                raise PolicyError(
                    f"must be {off} when caching is disabled (all TTLs 0), as CloudFront "
                    "requires; send values to the origin with an origin_request_policy",
                    key,
                )
    if (gzip or brotli) and "accept-encoding" in headers:
        raise PolicyError(
            "Accept-Encoding cannot be listed while gzip or brotli is on: CloudFront then "
            "normalizes it into the key itself",
            "headers",
            headers.index("accept-encoding"),
        )
    return CacheFields(
        name=_policy_name(data),
        min_ttl=min_ttl,
        default_ttl=default_ttl,
        max_ttl=max_ttl,
        headers=headers,
        cookie_behavior=cookie_behavior,
        cookies=cookies,
        query_string_behavior=query_behavior,
        query_strings=query_strings,
        gzip=gzip,
        brotli=brotli,
    )


def origin_request_policy_fields(value: object) -> OriginRequestFields:
    """Read an inline origin request policy (see the module notes); raises :class:`PolicyError`."""
    data = _mapping(value, _ORIGIN_KEYS)
    header_behavior, headers = _origin_headers(data.get("headers", "none"))
    cookie_behavior, cookies = _names(data, "cookies", _COOKIE_NAME)
    query_behavior, query_strings = _names(data, "query_strings", _QUERY_NAME)
    _total_length(headers, cookies, query_strings)
    return OriginRequestFields(
        name=_policy_name(data),
        header_behavior=header_behavior,
        headers=headers,
        cookie_behavior=cookie_behavior,
        cookies=cookies,
        query_string_behavior=query_behavior,
        query_strings=query_strings,
    )


def _mapping(value: object, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PolicyError("must be a managed policy name or an inline policy mapping")
    for key in value:
        if key not in allowed:
            raise PolicyError(f"unknown key; allowed keys: {', '.join(allowed)}", str(key))
    return value


def _policy_name(data: Mapping[str, Any]) -> str:
    name = data.get("name", "inline")
    if not isinstance(name, str) or not name:
        raise PolicyError(f"must be a non-empty string; got {shown(name)}", "name")
    return name


def _ttl(data: Mapping[str, Any], key: str, default: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyError(f"must be a whole number of seconds; got {shown(value)}", key)
    if not 0 <= value <= MAX_TTL_LIMIT:
        raise PolicyError(f"{key} must be 0-{MAX_TTL_LIMIT} s; got {value} s", key)
    return value


def _flag(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise PolicyError(f"must be true or false; got {shown(value)}", key)
    return value


def _names(
    data: Mapping[str, Any], key: str, pattern: re.Pattern[str]
) -> tuple[QueryBehavior, tuple[str, ...]]:
    """A cookie or query string setting: ``none``, ``all``, a list, or ``{all_except: [...]}``."""
    raw = data.get(key, "none")
    if raw == "none" or raw == "all":
        return ("none" if raw == "none" else "all"), ()
    if isinstance(raw, list):
        names = _exact_names(raw, pattern, key)
        return ("whitelist" if names else "none"), names
    if isinstance(raw, Mapping) and list(raw) == ["all_except"]:
        listed = raw["all_except"]
        if not isinstance(listed, list) or not listed:
            raise PolicyError(
                f"must be a non-empty list of names; got {shown(listed)}", key, "all_except"
            )
        return "allExcept", _exact_names(listed, pattern, key, "all_except")
    raise PolicyError(
        f"must be none, all, a list of names or {{all_except: [names]}}; got {shown(raw)}", key
    )


def _exact_names(raw: list[Any], pattern: re.Pattern[str], *at: str) -> tuple[str, ...]:
    """Case-sensitive names (cookies, query strings): valid, at most 10, none twice."""
    kind = "cookie" if at[0] == "cookies" else "query string"
    _count(raw, kind, *at)
    seen: list[str] = []
    for index, name in enumerate(raw):
        if not isinstance(name, str) or not pattern.fullmatch(name):
            raise PolicyError(f"{shown(name)} is not a valid {kind} name", *at, index)
        if name in seen:
            raise PolicyError(f"{kind} {name!r} is listed twice", *at, index)
        seen.append(name)
    return tuple(seen)


def _header_names(raw: list[Any], *at: str) -> tuple[str, ...]:
    """Header names: valid tokens, at most 10, none twice ignoring case; kept lowercase."""
    _count(raw, "header", *at)
    seen: list[str] = []
    for index, name in enumerate(raw):
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise PolicyError(f"{shown(name)} is not a valid header name", *at, index)
        if name.lower() in seen:
            raise PolicyError(f"header {name!r} is listed twice (names ignore case)", *at, index)
        seen.append(name.lower())
    return tuple(seen)


def _origin_headers(raw: Any) -> tuple[HeaderBehavior, tuple[str, ...]]:
    if raw == "none":
        return "none", ()
    if raw == "all_viewer":
        return "allViewer", ()
    if isinstance(raw, list):
        headers = _header_names(raw, "headers")
        _no_authorization(headers, "headers")
        return ("whitelist" if headers else "none"), headers
    if isinstance(raw, Mapping) and list(raw) in (["all_except"], ["all_viewer_and_cloudfront"]):
        (form,) = raw
        listed = raw[form]
        if not isinstance(listed, list) or not listed:
            raise PolicyError(
                f"must be a non-empty list of header names; got {shown(listed)}", "headers", form
            )
        headers = _header_names(listed, "headers", form)
        if form == "all_except":
            return "allExcept", headers
        _no_authorization(headers, "headers", form)
        for index, name in enumerate(headers):
            if not name.startswith("cloudfront-"):
                raise PolicyError(
                    f"{listed[index]} is not a CloudFront header; all_viewer_and_cloudfront "
                    "lists the CloudFront-* headers to add to all viewer headers",
                    "headers",
                    form,
                    index,
                )
        return "allViewerAndWhitelistCloudFront", headers
    raise PolicyError(
        "must be none, all_viewer, a list of names, {all_except: [names]} or "
        f"{{all_viewer_and_cloudfront: [names]}}; got {shown(raw)}",
        "headers",
    )


def _no_authorization(headers: tuple[str, ...], *at: str) -> None:
    if "authorization" in headers:
        raise PolicyError(
            "Authorization cannot be named in an origin request policy (CloudFront refuses "
            "it); put it in the cache policy's headers, or use all_viewer",
            *at,
            headers.index("authorization"),
        )


def _count(raw: list[Any], kind: str, *at: str) -> None:
    if len(raw) > MAX_NAMES:
        raise PolicyError(f"at most {MAX_NAMES} {kind} names per policy; got {len(raw)}", *at)


def _total_length(*groups: tuple[str, ...]) -> None:
    total = sum(len(name) for group in groups for name in group)
    if total > MAX_NAME_CHARS:
        raise PolicyError(
            f"header, cookie and query string names must total at most {MAX_NAME_CHARS} "
            f"characters; got {total}"
        )


def shown(value: object) -> str:
    """A short description of a wrong value for an error message."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if value is None:
        return "nothing (null)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
