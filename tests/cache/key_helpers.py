"""Requests, policies and the key they give, shared by the cache key tests (test_key*.py)."""

from __future__ import annotations

from edgesim.cache.key import cache_key
from edgesim.cache.policies import CachePolicy, QueryBehavior
from edgesim.http import EdgeRequest, Headers

DOMAIN = "d111111abcdef8.cloudfront.net"
BASIC = CachePolicy("basic", 0, 86400, 31536000)


def request(
    target: str = "/a/b.html",
    headers: list[tuple[str, str]] | None = None,
    *,
    method: str = "GET",
    http_version: str = "1.1",
) -> EdgeRequest:
    uri, _, query = target.partition("?")
    return EdgeRequest(
        method=method,
        uri=uri,
        querystring=query,
        headers=Headers(headers or []),
        http_version=http_version,
    )


def key(policy: CachePolicy, req: EdgeRequest) -> str:
    return cache_key(policy, req, distribution_domain=DOMAIN).value


def policy(
    *,
    headers: tuple[str, ...] = (),
    cookies: tuple[QueryBehavior, tuple[str, ...]] = ("none", ()),
    query: tuple[QueryBehavior, tuple[str, ...]] = ("none", ()),
    gzip: bool = False,
    brotli: bool = False,
) -> CachePolicy:
    return CachePolicy(
        "test",
        0,
        86400,
        31536000,
        headers=headers,
        cookie_behavior=cookies[0],
        cookies=cookies[1],
        query_string_behavior=query[0],
        query_strings=query[1],
        gzip=gzip,
        brotli=brotli,
    )


GZIP = policy(gzip=True)
NEITHER = policy()
