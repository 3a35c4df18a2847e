"""Cache keys (§2.3, §2.4): what the key is made of, part by part and for each managed policy."""

from __future__ import annotations

import pytest

from edgesim.cache.key import CacheKey, accept_encoding_for_origin, cache_key, viewer_cookies
from edgesim.cache.policies import MANAGED_CACHE_POLICIES, CachePolicy
from edgesim.http import Headers
from tests.cache.key_helpers import BASIC, DOMAIN, GZIP, NEITHER, key, policy, request

# --- the default key: domain, path, method for OPTIONS -----------------------------------------


def test_the_default_key_is_domain_and_path_only() -> None:
    plain = cache_key(BASIC, request("/a/b.html"), distribution_domain=DOMAIN)
    assert plain == CacheKey(value=f"{DOMAIN}|GET|/a/b.html", path="/a/b.html", query="")
    noisy = request("/a/b.html?x=1", [("Accept-Language", "fr"), ("Cookie", "a=1")])
    assert key(BASIC, noisy) == plain.value  # §2.3: query, headers and cookies are left out
    assert key(BASIC, request("/a/B.html")) != plain.value  # the path is case-sensitive
    assert key(BASIC, request("/a/b.html/")) != plain.value


def test_the_domain_is_keyed_without_case() -> None:
    upper = cache_key(BASIC, request(), distribution_domain=DOMAIN.upper())
    assert upper.value == key(BASIC, request())


def test_head_and_get_share_a_key() -> None:
    assert key(BASIC, request(method="HEAD")) == key(BASIC, request(method="GET"))


def test_head_answers_and_range_parts_are_kept_apart_from_the_object() -> None:
    """cloudfront-caching.md §3.3: a part an origin cut is cached for that range, apart from the
    whole object; spellings of one range share it, other ranges do not."""
    whole = cache_key(BASIC, request(), distribution_domain=DOMAIN)
    part = whole.for_range("bytes=0-99")
    assert len({whole.value, whole.for_head(), part, whole.for_range("bytes=100-")}) == 4
    assert whole.for_range(" Bytes = 0-99 ") == part
    assert whole.for_range("bytes=0-1|x") != whole.for_range("bytes=0-1\\|x")


def test_options_is_keyed_apart_from_get() -> None:
    options = key(BASIC, request(method="OPTIONS"))
    assert options == f"{DOMAIN}|OPTIONS|/a/b.html"
    assert options != key(BASIC, request())


def test_the_path_is_keyed_as_sent() -> None:
    assert cache_key(BASIC, request("/a%20b/c"), distribution_domain=DOMAIN).path == "/a%20b/c"
    assert key(BASIC, request("/a%20b/c")) != key(BASIC, request("/a b/c"))


# --- query strings --------------------------------------------------------------------------


def test_query_none_keys_no_query() -> None:
    assert cache_key(BASIC, request("/p?a=1"), distribution_domain=DOMAIN).query == ""


def test_query_all_keys_the_whole_query_as_sent_and_order_matters() -> None:
    every = policy(query=("all", ()))
    first = cache_key(every, request("/p?a=1&b=2"), distribution_domain=DOMAIN)
    assert first.value == f"{DOMAIN}|GET|/p?a=1&b=2" and first.query == "a=1&b=2"
    assert key(every, request("/p?b=2&a=1")) != first.value  # §2.3: order matters
    assert key(every, request("/p?A=1&b=2")) != first.value  # names are case-sensitive
    assert key(every, request("/p?a=X&b=2")) != key(every, request("/p?a=x&b=2"))  # and values
    assert cache_key(every, request("/p?a=1&a=2&"), distribution_domain=DOMAIN).query == (
        "a=1&a=2&"
    )
    assert cache_key(every, request("/p"), distribution_domain=DOMAIN).value == f"{DOMAIN}|GET|/p"


def test_query_whitelist_keeps_listed_parameters_in_viewer_order() -> None:
    listed = policy(query=("whitelist", ("b", "a")))
    got = cache_key(listed, request("/p?a=1&x=9&b=2&a=3&A=4"), distribution_domain=DOMAIN)
    assert got.query == "a=1&b=2&a=3"  # repeats kept, order kept, `A` is another name
    assert got.value == f"{DOMAIN}|GET|/p?a=1&b=2&a=3"
    assert key(listed, request("/p?b=2&a=1")) != got.value
    assert cache_key(listed, request("/p?x=1"), distribution_domain=DOMAIN).query == ""


def test_query_all_except_drops_the_listed_parameters() -> None:
    unlisted = policy(query=("allExcept", ("utm_source",)))
    got = cache_key(unlisted, request("/p?utm_source=x&id=7&&lang=en"), distribution_domain=DOMAIN)
    assert got.query == "id=7&lang=en"
    assert key(unlisted, request("/p?id=7&utm_source=y&lang=en")) == got.value


def test_only_ampersand_separates_query_parameters() -> None:
    listed = policy(query=("whitelist", ("color",)))
    got = cache_key(listed, request("/p?color=red;size=large"), distribution_domain=DOMAIN)
    assert got.query == "color=red;size=large"  # one parameter, whose value holds the `;`
    assert (
        cache_key(listed, request("/p?size=large;color=red"), distribution_domain=DOMAIN).query
        == ""
    )


def test_a_parameter_name_matches_written_or_percent_decoded() -> None:
    listed = policy(query=("whitelist", ("a b", "c%20d")))
    got = cache_key(listed, request("/p?a%20b=1&c%20d=2&e=3"), distribution_domain=DOMAIN)
    assert got.query == "a%20b=1&c%20d=2"


# --- headers --------------------------------------------------------------------------------


def test_header_names_ignore_case_and_values_do_not() -> None:
    keyed = policy(headers=("product",))
    acme = key(keyed, request(headers=[("Product", "Acme")]))
    assert acme == f"{DOMAIN}|GET|/a/b.html|h:product=Acme"
    assert key(keyed, request(headers=[("product", "Acme")])) == acme
    assert key(keyed, request(headers=[("PRODUCT", "Acme")])) == acme
    assert key(keyed, request(headers=[("Product", "acme")])) != acme


def test_an_absent_header_is_keyed_apart_from_an_empty_one() -> None:
    keyed = policy(headers=("x-variant",))
    absent = key(keyed, request())
    empty = key(keyed, request(headers=[("X-Variant", "")]))
    assert absent == f"{DOMAIN}|GET|/a/b.html|h:x-variant"
    assert empty == f"{DOMAIN}|GET|/a/b.html|h:x-variant="
    assert absent != empty


def test_several_lines_of_a_header_are_keyed_together_in_order() -> None:
    keyed = policy(headers=("x-a", "x-b"))
    got = key(keyed, request(headers=[("X-B", "2"), ("X-A", "1"), ("x-a", "3")]))
    assert got == f"{DOMAIN}|GET|/a/b.html|h:x-a=1,3|h:x-b=2"


def test_separators_inside_values_cannot_forge_another_key() -> None:
    keyed = policy(headers=("x-a", "x-b"))
    one = key(keyed, request(headers=[("X-A", "1|h:x-b=2")]))
    two = key(keyed, request(headers=[("X-A", "1"), ("X-B", "2")]))
    assert one != two
    assert "\\|" in one
    assert key(keyed, request(headers=[("X-A", "a\\")])) != key(
        keyed, request(headers=[("X-A", "a\\\\")])
    )


# --- cookies --------------------------------------------------------------------------------


def test_cookies_are_keyed_by_name_and_value_with_case() -> None:
    some = policy(cookies=("whitelist", ("session",)))
    got = key(some, request(headers=[("Cookie", "theme=dark; session=abc")]))
    assert got == f"{DOMAIN}|GET|/a/b.html|c:session=abc"
    assert key(some, request(headers=[("Cookie", "session=ABC")])) != got  # values keep case
    assert key(some, request(headers=[("Cookie", "Session=abc")])) == key(some, request())
    assert key(some, request(headers=[("Cookie", "theme=light; session=abc")])) == got


def test_cookie_order_does_not_split_the_cache() -> None:
    every = policy(cookies=("all", ()))
    one = key(every, request(headers=[("Cookie", "b=2; a=1")]))
    assert one == f"{DOMAIN}|GET|/a/b.html|c:a=1|c:b=2"
    assert key(every, request(headers=[("Cookie", "a=1"), ("Cookie", "b=2")])) == one


def test_cookies_all_except() -> None:
    unlisted = policy(cookies=("allExcept", ("tracking",)))
    got = key(unlisted, request(headers=[("Cookie", "tracking=1; cart=7")]))
    assert got == f"{DOMAIN}|GET|/a/b.html|c:cart=7"


def test_viewer_cookies_reads_every_cookie_line() -> None:
    headers = Headers([("Cookie", "a=1; b"), ("cookie", " c=x=y ;; ")])
    assert viewer_cookies(headers) == [("a", "a=1"), ("b", "b"), ("c", "c=x=y")]


# --- Accept-Encoding (§2.4) -----------------------------------------------------------------

BOTH = policy(gzip=True, brotli=True)
BROTLI = policy(brotli=True)


@pytest.mark.parametrize(
    ("compression", "viewer", "in_key", "to_origin"),
    [
        # Both formats on: the first table of §2.4.
        (BOTH, "gzip, deflate, br", "br,gzip", "br,gzip"),
        (BOTH, "br;q=1.0, gzip;q=0.8, *;q=0.1", "br,gzip", "br,gzip"),
        (BOTH, "gzip", "gzip", "gzip"),
        (BOTH, "GZIP, deflate", "gzip", "gzip"),
        (BOTH, "br", "br", "br"),
        (BOTH, "deflate, compress", None, "identity"),
        (BOTH, "", None, "identity"),
        (BOTH, None, None, None),  # no Accept-Encoding: nothing added anywhere
        # Only gzip on: the second table.
        (GZIP, "gzip, br", "gzip", "gzip"),
        (GZIP, "gzip", "gzip", "gzip"),
        (GZIP, "br", None, "identity"),
        (GZIP, "deflate", None, "identity"),
        (GZIP, None, None, None),
        # Only brotli on: the same table for br.
        (BROTLI, "gzip, br", "br", "br"),
        (BROTLI, "gzip", None, "identity"),
        (BROTLI, None, None, None),
        # Both off: an ordinary header, neither keyed nor normalized.
        (NEITHER, "gzip, br", None, None),
    ],
)
def test_accept_encoding_normalization(
    compression: CachePolicy, viewer: str | None, in_key: str | None, to_origin: str | None
) -> None:
    req = request(headers=[("Accept-Encoding", viewer)] if viewer is not None else [])
    expected = f"{DOMAIN}|GET|/a/b.html"
    if in_key is not None:
        expected += f"|accept-encoding={in_key}"
    assert key(compression, req) == expected
    assert accept_encoding_for_origin(compression, req) == to_origin


def test_accept_encoding_lines_are_read_together() -> None:
    req = request(headers=[("Accept-Encoding", "gzip"), ("accept-encoding", "br")])
    assert accept_encoding_for_origin(BOTH, req) == "br,gzip"


@pytest.mark.parametrize("version", ["1.0", "HTTP/1.0"])
def test_http_10_viewers_lose_accept_encoding(version: str) -> None:
    req = request(headers=[("Accept-Encoding", "gzip, br")], http_version=version)
    assert accept_encoding_for_origin(BOTH, req) is None
    assert key(BOTH, req) == f"{DOMAIN}|GET|/a/b.html"


# --- each managed policy's key ----------------------------------------------------------------

VIEWER = [
    ("Host", "www.example.test"),
    ("Authorization", "Bearer t"),
    ("CloudFront-Viewer-Country", "FR"),
    ("Origin", "https://app.example.test"),
    ("X-HTTP-Method-Override", "PUT"),
    ("Accept-Encoding", "gzip, br"),
    ("Cookie", "b=2; a=1"),
    ("User-Agent", "curl"),
]
MANAGED_KEYS = {
    "CachingOptimized": "|accept-encoding=br,gzip",
    "CachingOptimizedForUncompressedObjects": "",
    "CachingDisabled": "",
    "Amplify": "?m=1&start=2&z=3|h:authorization=Bearer t|h:cloudfront-viewer-country=FR"
    "|h:host=www.example.test|c:a=1|c:b=2|accept-encoding=br,gzip",
    "Elemental-MediaPackage": "?m=1&start=2|h:origin=https://app.example.test|accept-encoding=gzip",
    "UseOriginCacheControlHeaders": "|h:host=www.example.test|h:origin=https://app.example.test"
    "|h:x-http-method-override=PUT|h:x-http-method|h:x-method-override|c:a=1|c:b=2"
    "|accept-encoding=br,gzip",
    "UseOriginCacheControlHeaders-QueryStrings": "?m=1&start=2&z=3|h:host=www.example.test"
    "|h:origin=https://app.example.test|h:x-http-method-override=PUT|h:x-http-method"
    "|h:x-method-override|c:a=1|c:b=2|accept-encoding=br,gzip",
}


@pytest.mark.parametrize("name", list(MANAGED_CACHE_POLICIES))
def test_each_managed_policy_keys_its_published_parts(name: str) -> None:
    got = key(MANAGED_CACHE_POLICIES[name], request("/v/i.m3u8?m=1&start=2&z=3", VIEWER))
    assert got == f"{DOMAIN}|GET|/v/i.m3u8" + MANAGED_KEYS[name]
