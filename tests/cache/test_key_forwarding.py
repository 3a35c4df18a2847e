"""What a cache policy and an origin request policy send to the origin (§2.6, §3.1, §4.1)."""

from __future__ import annotations

import pytest

from edgesim.cache.key import forwarding
from edgesim.cache.policies import (
    MANAGED_CACHE_POLICIES,
    MANAGED_ORIGIN_REQUEST_POLICIES,
    CachePolicy,
    OriginRequestPolicy,
)
from edgesim.http import EdgeRequest
from edgesim.origins.forwarding import to_origin
from edgesim.origins.targets import OriginTarget
from tests.cache.key_helpers import BASIC, GZIP, NEITHER, key, policy, request

# --- forwarding -------------------------------------------------------------------------------

CUSTOM = OriginTarget(kind="custom", domain_name="api.example.test")
S3 = OriginTarget(kind="s3", domain_name="bucket.s3.amazonaws.com")
ORPS = MANAGED_ORIGIN_REQUEST_POLICIES


def sent(
    cache: CachePolicy,
    orp: OriginRequestPolicy | None,
    req: EdgeRequest,
    *,
    origin: OriginTarget = CUSTOM,
    cached_methods: tuple[str, ...] = ("GET", "HEAD"),
) -> dict[str, str]:
    """The viewer headers the origin receives (lowercase names), CloudFront's own left out."""
    plan = forwarding(cache, orp, req, s3_origin=origin.kind == "s3", cached_methods=cached_methods)
    out = to_origin(req, origin, request_id="rid", edge_id="e", forward=plan.header_allowed)
    headers = {k.lower(): v for k, v in out.headers}
    for own in ("x-forwarded-for", "via", "x-amz-cf-id"):
        headers.pop(own)
    if plan.cookie is not None:
        headers["cookie"] = plan.cookie
    if plan.accept_encoding is not None:
        headers["accept-encoding"] = plan.accept_encoding
    return headers


def test_without_an_orp_only_the_key_goes_to_the_origin() -> None:
    keyed = policy(
        headers=("x-variant",),
        cookies=("whitelist", ("session",)),
        query=("whitelist", ("id",)),
        gzip=True,
    )
    req = request(
        "/p?utm=1&id=7",
        [
            ("X-Variant", "b"),
            ("X-Other", "o"),
            ("Accept-Language", "fr"),
            ("Authorization", "Bearer t"),
            ("Cookie", "theme=dark; session=s"),
            ("Accept-Encoding", "gzip, deflate"),
            ("Host", "www.example.test"),
            ("User-Agent", "curl"),
        ],
    )
    plan = forwarding(keyed, None, req, s3_origin=False)
    assert plan.querystring == "id=7"
    assert plan.cookie == "session=s"
    assert plan.accept_encoding == "gzip"
    assert plan.keep_viewer_host is False
    assert sent(keyed, None, req) == {
        "user-agent": "Amazon CloudFront",
        "host": "api.example.test",
        "x-variant": "b",
        "cookie": "session=s",
        "accept-encoding": "gzip",
    }


def test_caching_disabled_without_an_orp_forwards_nothing_of_the_viewers() -> None:
    req = request("/p?a=1", [("X-Foo", "1"), ("Cookie", "a=1"), ("Content-Type", "text/plain")])
    plan = forwarding(MANAGED_CACHE_POLICIES["CachingDisabled"], None, req, s3_origin=False)
    assert (plan.querystring, plan.cookie, plan.accept_encoding) == ("", None, None)
    got = sent(MANAGED_CACHE_POLICIES["CachingDisabled"], None, req)
    # Content-* headers describe the body and always go (edgesim.origins.forwarding).
    assert got == {
        "user-agent": "Amazon CloudFront",
        "host": "api.example.test",
        "content-type": "text/plain",
    }


def test_all_viewer_forwards_every_viewer_header_host_and_authorization_included() -> None:
    req = request(
        "/p?b=2&a=1",
        [
            ("Host", "www.example.test"),
            ("Authorization", "Bearer t"),
            ("User-Agent", "curl"),
            ("X-Foo", "1"),
            ("Cookie", "b=2; a=1"),
        ],
    )
    disabled = MANAGED_CACHE_POLICIES["CachingDisabled"]
    plan = forwarding(disabled, ORPS["AllViewer"], req, s3_origin=False)
    assert plan.querystring == "b=2&a=1"
    assert plan.cookie == "a=1; b=2"  # §4.1: sorted by name
    assert plan.keep_viewer_host is True
    assert sent(disabled, ORPS["AllViewer"], req) == {
        "user-agent": "curl",
        "host": "www.example.test",
        "authorization": "Bearer t",
        "x-foo": "1",
        "cookie": "a=1; b=2",
    }


def test_the_viewer_host_never_goes_to_an_s3_origin() -> None:
    req = request(headers=[("Host", "www.example.test")])
    plan = forwarding(BASIC, ORPS["AllViewer"], req, s3_origin=True)
    assert plan.keep_viewer_host is False and not plan.header_allowed("host")
    assert sent(BASIC, ORPS["AllViewer"], req, origin=S3)["host"] == "bucket.s3.amazonaws.com"
    keyed_host = policy(headers=("host",))
    assert forwarding(keyed_host, None, req, s3_origin=False).keep_viewer_host
    assert not forwarding(keyed_host, None, req, s3_origin=True).keep_viewer_host


def test_all_viewer_except_host_sends_the_origin_domain_as_host() -> None:
    req = request(headers=[("Host", "www.example.test"), ("Authorization", "t"), ("X-A", "1")])
    got = sent(BASIC, ORPS["AllViewerExceptHostHeader"], req)
    assert got["host"] == "api.example.test"
    assert got["authorization"] == "t" and got["x-a"] == "1"


def test_an_orp_whitelist_adds_headers_without_keying_them() -> None:
    req = request(headers=[("Origin", "https://a.test"), ("Referer", "r"), ("X-B", "b")])
    got = sent(BASIC, ORPS["CORS-CustomOrigin"], req)
    assert got["origin"] == "https://a.test"
    assert "referer" not in got and "x-b" not in got
    assert key(BASIC, req) == key(BASIC, request())


@pytest.mark.parametrize(
    ("method", "cached_methods", "forwarded"),
    [
        ("GET", ("GET", "HEAD"), False),  # §3.1: removed unless keyed or all-viewer
        ("HEAD", ("GET", "HEAD"), False),
        ("OPTIONS", ("GET", "HEAD"), True),  # OPTIONS not cached: forwarded
        ("OPTIONS", ("GET", "HEAD", "OPTIONS"), False),  # OPTIONS cached: removed
        ("POST", ("GET", "HEAD"), True),  # writing methods always carry it
        ("PUT", ("GET", "HEAD"), True),
        ("PATCH", ("GET", "HEAD"), True),
        ("DELETE", ("GET", "HEAD"), True),
    ],
)
def test_authorization_by_method(
    method: str, cached_methods: tuple[str, ...], forwarded: bool
) -> None:
    req = request(headers=[("Authorization", "t")], method=method)
    plan = forwarding(BASIC, None, req, s3_origin=False, cached_methods=cached_methods)
    assert plan.header_allowed("authorization") is forwarded
    keyed = policy(headers=("authorization",))
    assert forwarding(keyed, None, req, s3_origin=False).header_allowed("Authorization")


def test_query_strings_from_both_policies_keep_the_viewer_order() -> None:
    keyed = policy(query=("whitelist", ("b",)))
    orp = OriginRequestPolicy("o", query_string_behavior="whitelist", query_strings=("a",))
    req = request("/p?a=1&c=3&b=2&a=4")
    assert forwarding(keyed, orp, req, s3_origin=False).querystring == "a=1&b=2&a=4"
    every = OriginRequestPolicy("o", query_string_behavior="all")
    assert forwarding(keyed, every, req, s3_origin=False).querystring == "a=1&c=3&b=2&a=4"
    unlisted = OriginRequestPolicy("o", query_string_behavior="allExcept", query_strings=("c",))
    assert forwarding(BASIC, unlisted, req, s3_origin=False).querystring == "a=1&b=2&a=4"


def test_cookies_from_both_policies_are_sorted_by_name() -> None:
    keyed = policy(cookies=("whitelist", ("z",)))
    orp = OriginRequestPolicy("o", cookie_behavior="whitelist", cookies=("b", "a"))
    req = request(headers=[("Cookie", "z=26; q=0; b=2; a=1; a=0")])
    plan = forwarding(keyed, orp, req, s3_origin=False)
    assert plan.cookie == "a=1; a=0; b=2; z=26"
    assert not plan.header_allowed("cookie")  # the caller sends `cookie` instead
    assert forwarding(keyed, None, request(), s3_origin=False).cookie is None


def test_accept_encoding_is_normalized_even_when_an_orp_lists_it() -> None:
    orp = OriginRequestPolicy("o", "whitelist", ("accept-encoding",))
    req = request(headers=[("Accept-Encoding", "gzip, deflate")])
    plan = forwarding(GZIP, orp, req, s3_origin=False)
    assert plan.accept_encoding == "gzip" and not plan.header_allowed("accept-encoding")
    # With both formats off it is an ordinary header the ORP may forward as sent.
    plain = forwarding(NEITHER, orp, req, s3_origin=False)
    assert plain.accept_encoding is None and plain.header_allowed("accept-encoding")
    assert sent(NEITHER, orp, req)["accept-encoding"] == "gzip, deflate"


def test_managed_all_viewer_policies_hold_back_s3_response_overrides() -> None:
    req = request("/f.pdf?response-content-type=text/html&v=2&response-content-disposition=x")
    for name in ("AllViewer", "AllViewerExceptHostHeader", "AllViewerAndCloudFrontHeaders-2022-06"):
        to_s3 = forwarding(BASIC, ORPS[name], req, s3_origin=True)
        assert to_s3.querystring == "v=2"
        to_custom = forwarding(BASIC, ORPS[name], req, s3_origin=False)
        assert to_custom.querystring == req.querystring
    inline = OriginRequestPolicy("mine", "allViewer", query_string_behavior="all")
    assert forwarding(BASIC, inline, req, s3_origin=True).querystring == req.querystring
    # What the cache key holds is always sent.
    keyed = policy(query=("all", ()))
    assert forwarding(keyed, ORPS["AllViewer"], req, s3_origin=True).querystring == (
        req.querystring
    )
