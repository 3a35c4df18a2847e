"""The inline policy format: defaults, every form, and CloudFront's checks with their key paths."""

from __future__ import annotations

from typing import Any

import pytest

from edgesim.cache.policies import (
    CachePolicy,
    OriginRequestPolicy,
    parse_cache_policy,
    parse_origin_request_policy,
)
from edgesim.cache.policy_fields import (
    PolicyError,
    cache_policy_fields,
    origin_request_policy_fields,
)

# --- inline cache policies ------------------------------------------------------------------


def test_the_fields_read_are_those_of_the_policy_models() -> None:
    fields = cache_policy_fields({"cookies": ["a"]})
    assert fields == {
        "name": "inline",
        "min_ttl": 0,
        "default_ttl": 86400,
        "max_ttl": 31536000,
        "headers": (),
        "cookie_behavior": "whitelist",
        "cookies": ("a",),
        "query_string_behavior": "none",
        "query_strings": (),
        "gzip": False,
        "brotli": False,
    }
    assert CachePolicy(**fields) == parse_cache_policy({"cookies": ["a"]})
    orp_fields = origin_request_policy_fields({"headers": "all_viewer"})
    assert OriginRequestPolicy(**orp_fields) == OriginRequestPolicy("inline", "allViewer")
    with pytest.raises(PolicyError, match="must be a managed policy name or an inline"):
        cache_policy_fields("CachingOptimized")  # names are the policies module's business


def test_the_design_example_parses() -> None:
    policy = parse_cache_policy(
        {
            "min_ttl": 0,
            "default_ttl": 86400,
            "max_ttl": 31536000,
            "headers": [],
            "cookies": "none",
            "query_strings": "all",
        }
    )
    assert policy == CachePolicy("inline", 0, 86400, 31536000, query_string_behavior="all")
    assert not policy.caching_disabled and not policy.normalizes_accept_encoding


def test_every_setting_is_read() -> None:
    policy = parse_cache_policy(
        {
            "name": "site",
            "min_ttl": 5,
            "default_ttl": 60,
            "max_ttl": 600,
            "headers": ["Origin", "X-Variant"],
            "cookies": ["session", "Theme"],
            "query_strings": {"all_except": ["utm_source", "fbclid"]},
            "gzip": True,
            "brotli": False,
        }
    )
    assert policy == CachePolicy(
        "site",
        5,
        60,
        600,
        headers=("origin", "x-variant"),
        cookie_behavior="whitelist",
        cookies=("session", "Theme"),
        query_string_behavior="allExcept",
        query_strings=("utm_source", "fbclid"),
        gzip=True,
    )
    assert policy.normalizes_accept_encoding


@pytest.mark.parametrize(
    ("given", "ttls"),
    [
        ({}, (0, 86400, 31536000)),  # §2.1 defaults
        ({"min_ttl": 100000}, (100000, 100000, 31536000)),  # DefaultTTL follows a larger MinTTL
        ({"default_ttl": 40000000}, (0, 40000000, 40000000)),  # MaxTTL follows DefaultTTL
        ({"min_ttl": 40000000}, (40000000, 40000000, 40000000)),
        ({"max_ttl": 60}, (0, 60, 60)),  # an implicit DefaultTTL stays within MaxTTL
        ({"min_ttl": 10, "max_ttl": 5000}, (10, 5000, 5000)),
        ({"min_ttl": 0, "default_ttl": 0, "max_ttl": 0}, (0, 0, 0)),
        ({"max_ttl": 3153600000}, (0, 86400, 3153600000)),
    ],
)
def test_ttl_defaults(given: dict[str, Any], ttls: tuple[int, int, int]) -> None:
    policy = parse_cache_policy(given)
    assert (policy.min_ttl, policy.default_ttl, policy.max_ttl) == ttls


def test_all_ttls_zero_disables_caching() -> None:
    assert parse_cache_policy({"max_ttl": 0}).caching_disabled
    assert not parse_cache_policy({"max_ttl": 1}).caching_disabled


def problem(value: Any, *, orp: bool = False) -> tuple[str, str]:
    with pytest.raises(PolicyError) as caught:
        if orp:
            parse_origin_request_policy(value)
        else:
            parse_cache_policy(value)
    return caught.value.key, str(caught.value)


@pytest.mark.parametrize(
    ("given", "key", "message"),
    [
        ({"min_ttl": -1}, "min_ttl", "min_ttl must be 0-3153600000 s; got -1 s"),
        ({"max_ttl": 3153600001}, "max_ttl", "max_ttl must be 0-3153600000 s; got 3153600001 s"),
        ({"default_ttl": 1.5}, "default_ttl", "must be a whole number of seconds; got 1.5"),
        ({"min_ttl": True}, "min_ttl", "must be a whole number of seconds; got True"),
        ({"min_ttl": "60"}, "min_ttl", "must be a whole number of seconds; got '60'"),
        ({"max_ttl": None}, "max_ttl", "must be a whole number of seconds; got nothing (null)"),
        ({"min_ttl": 20, "default_ttl": 10}, "default_ttl",
         "default_ttl (10 s) must not be below min_ttl (20 s)"),
        ({"default_ttl": 100, "max_ttl": 50}, "max_ttl",
         "max_ttl (50 s) must not be below default_ttl (100 s)"),
        ({"min_ttl": 100, "max_ttl": 50}, "max_ttl",
         "max_ttl (50 s) must not be below default_ttl (100 s)"),
        ({"gzip": "yes"}, "gzip", "must be true or false; got 'yes'"),
        ({"brotli": 1}, "brotli", "must be true or false; got 1"),
        ({"name": ""}, "name", "must be a non-empty string; got ''"),
        ({"ttl": 5}, "ttl", "unknown key; allowed keys: name, min_ttl, default_ttl, max_ttl, "
         "headers, cookies, query_strings, gzip, brotli"),
        (["CachingOptimized"], "", "must be a managed policy name or an inline policy mapping"),
    ],
)  # fmt: skip
def test_ttl_and_flag_problems(given: Any, key: str, message: str) -> None:
    assert problem(given) == (key, message)


@pytest.mark.parametrize(
    ("headers", "key", "message"),
    [
        ("all", "headers", "must be a list of header names, or none; got 'all'"),
        ({"all_except": ["a"]}, "headers", "must be a list of header names, or none; got a "
         "mapping"),
        (["X Y"], "headers[0]", "'X Y' is not a valid header name"),
        ([5], "headers[0]", "5 is not a valid header name"),
        (["Origin", "origin"], "headers[1]", "header 'origin' is listed twice (names ignore "
         "case)"),
        ([f"x-h{i}" for i in range(11)], "headers", "at most 10 header names per policy; got 11"),
        (["CloudFront-Viewer-Address"], "headers[0]", "CloudFront-Viewer-Address cannot be in a "
         "cache key (CloudFront allows it only in an origin request policy)"),
    ],
)  # fmt: skip
def test_cache_key_header_problems(headers: Any, key: str, message: str) -> None:
    assert problem({"headers": headers}) == (key, message)


@pytest.mark.parametrize(
    "name",
    [
        "CloudFront-Viewer-Address",
        "cloudfront-viewer-asn",
        "CloudFront-Viewer-TLS",
        "CloudFront-Viewer-JA3-Fingerprint",
    ],
)
def test_the_four_connection_headers_are_refused_in_a_key_but_not_in_an_orp(name: str) -> None:
    key, message = problem({"headers": ["Origin", name]})
    assert key == "headers[1]" and message.startswith(f"{name} cannot be in a cache key")
    orp = parse_origin_request_policy({"headers": [name]})
    assert orp.headers == (name.lower(),)


def test_accept_encoding_is_refused_in_a_key_that_normalizes_it() -> None:
    assert problem({"headers": ["Origin", "Accept-Encoding"], "brotli": True}) == (
        "headers[1]",
        "Accept-Encoding cannot be listed while gzip or brotli is on: CloudFront then normalizes "
        "it into the key itself",
    )
    # With both formats off it is an ordinary header (§2.4).
    assert parse_cache_policy({"headers": ["Accept-Encoding"]}).headers == ("accept-encoding",)


@pytest.mark.parametrize(
    ("given", "key"),
    [
        ({"headers": ["Authorization"]}, "headers"),
        ({"cookies": "all"}, "cookies"),
        ({"query_strings": ["a"]}, "query_strings"),
        ({"gzip": True}, "gzip"),
        ({"brotli": True}, "brotli"),
    ],
)
def test_a_policy_with_caching_disabled_keys_nothing(given: dict[str, Any], key: str) -> None:
    off = "false" if key in ("gzip", "brotli") else "none"
    assert problem({"min_ttl": 0, "default_ttl": 0, "max_ttl": 0, **given}) == (
        key,
        f"must be {off} when caching is disabled (all TTLs 0), as CloudFront requires; send "
        "values to the origin with an origin_request_policy",
    )


@pytest.mark.parametrize("kind", ["cookies", "query_strings"])
def test_cookie_and_query_string_forms(kind: str) -> None:
    def read(raw: Any) -> tuple[str, tuple[str, ...]]:
        policy = parse_cache_policy({kind: raw})
        if kind == "cookies":
            return policy.cookie_behavior, policy.cookies
        return policy.query_string_behavior, policy.query_strings

    assert read("none") == ("none", ())
    assert read("all") == ("all", ())
    assert read([]) == ("none", ())
    assert read(["b", "a", "A"]) == ("whitelist", ("b", "a", "A"))  # case-sensitive, order kept
    assert read({"all_except": ["x"]}) == ("allExcept", ("x",))
    assert parse_cache_policy({}).cookie_behavior == "none"
    assert parse_cache_policy({}).query_string_behavior == "none"


@pytest.mark.parametrize(
    ("raw", "at", "message"),
    [
        ("some", "", "must be none, all, a list of names or {all_except: [names]}; got 'some'"),
        (None, "", "must be none, all, a list of names or {all_except: [names]}; got nothing "
         "(null)"),
        ({"whitelist": ["a"]}, "", "must be none, all, a list of names or {all_except: "
         "[names]}; got a mapping"),
        ({"all_except": []}, ".all_except", "must be a non-empty list of names; got a list"),
        ({"all_except": "a"}, ".all_except", "must be a non-empty list of names; got 'a'"),
        (["a", "a"], "[1]", "{kind} 'a' is listed twice"),
        ({"all_except": ["a", "a"]}, ".all_except[1]", "{kind} 'a' is listed twice"),
        ([f"n{i}" for i in range(11)], "", "at most 10 {kind} names per policy; got 11"),
        (["a b"], "[0]", "'a b' is not a valid {kind} name"),
        ([""], "[0]", "'' is not a valid {kind} name"),
        (["a=b"], "[0]", "'a=b' is not a valid {kind} name"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("kind", ["cookies", "query_strings"])
def test_cookie_and_query_string_problems(kind: str, raw: Any, at: str, message: str) -> None:
    name = "cookie" if kind == "cookies" else "query string"
    assert problem({kind: raw}) == (kind + at, message.replace("{kind}", name))


def test_query_string_names_may_hold_what_cookie_names_may_not() -> None:
    policy = parse_cache_policy({"query_strings": ["a.b[0]", "x;y", "é"]})
    assert policy.query_strings == ("a.b[0]", "x;y", "é")
    assert problem({"cookies": ["x;y"]}) == ("cookies[0]", "'x;y' is not a valid cookie name")


def test_all_names_together_are_limited_to_1024_characters() -> None:
    long = ["h" * 200 + str(i) for i in range(3)]
    parse_cache_policy({"headers": long, "cookies": long[:2]})  # 1005 characters: fine
    assert problem({"headers": long, "cookies": long, "query_strings": ["q"]}) == (
        "",
        "header, cookie and query string names must total at most 1024 characters; got 1207",
    )


# --- inline origin request policies -----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "behavior", "headers"),
    [
        ("none", "none", ()),
        ([], "none", ()),
        ("all_viewer", "allViewer", ()),
        (["Origin", "User-Agent"], "whitelist", ("origin", "user-agent")),
        ({"all_except": ["Host"]}, "allExcept", ("host",)),
        ({"all_except": ["Authorization"]}, "allExcept", ("authorization",)),
        (
            {"all_viewer_and_cloudfront": ["CloudFront-Viewer-Country"]},
            "allViewerAndWhitelistCloudFront",
            ("cloudfront-viewer-country",),
        ),
    ],
)
def test_origin_request_policy_header_forms(
    raw: Any, behavior: str, headers: tuple[str, ...]
) -> None:
    orp = parse_origin_request_policy({"headers": raw})
    assert (orp.header_behavior, orp.headers) == (behavior, headers)


def test_an_origin_request_policy_reads_cookies_and_query_strings() -> None:
    orp = parse_origin_request_policy(
        {"name": "api", "headers": "all_viewer", "cookies": ["sid"], "query_strings": "all"}
    )
    assert orp == OriginRequestPolicy("api", "allViewer", (), "whitelist", ("sid",), "all", ())
    assert parse_origin_request_policy({}) == OriginRequestPolicy("inline")


@pytest.mark.parametrize(
    ("given", "key", "message"),
    [
        ({"headers": ["Authorization"]}, "headers[0]", "Authorization cannot be named in an "
         "origin request policy (CloudFront refuses it); put it in the cache policy's headers, "
         "or use all_viewer"),
        ({"headers": {"all_viewer_and_cloudfront": ["CloudFront-Viewer-City", "authorization"]}},
         "headers.all_viewer_and_cloudfront[1]", "Authorization cannot be named in an origin "
         "request policy (CloudFront refuses it); put it in the cache policy's headers, or use "
         "all_viewer"),
        ({"headers": {"all_viewer_and_cloudfront": ["X-Foo"]}},
         "headers.all_viewer_and_cloudfront[0]", "X-Foo is not a CloudFront header; "
         "all_viewer_and_cloudfront lists the CloudFront-* headers to add to all viewer "
         "headers"),
        ({"headers": {"all_except": []}}, "headers.all_except",
         "must be a non-empty list of header names; got a list"),
        ({"headers": "all"}, "headers", "must be none, all_viewer, a list of names, "
         "{all_except: [names]} or {all_viewer_and_cloudfront: [names]}; got 'all'"),
        ({"headers": [f"x-{i}" for i in range(11)]}, "headers",
         "at most 10 header names per policy; got 11"),
        ({"cookies": {"all_except": ["a"], "x": 1}}, "cookies",
         "must be none, all, a list of names or {all_except: [names]}; got a mapping"),
        ({"min_ttl": 1}, "min_ttl", "unknown key; allowed keys: name, headers, cookies, "
         "query_strings"),
        (5, "", "must be a managed policy name or an inline policy mapping"),
    ],
)  # fmt: skip
def test_origin_request_policy_problems(given: Any, key: str, message: str) -> None:
    assert problem(given, orp=True) == (key, message)


def test_policy_error_renders_its_key_path() -> None:
    error = PolicyError("bad", "cookies", "all_except", 2)
    assert (error.key, error.at, str(error), error.problem) == (
        "cookies.all_except[2]",
        ("cookies", "all_except", 2),
        "bad",
        "bad",
    )
    assert isinstance(error, ValueError)
