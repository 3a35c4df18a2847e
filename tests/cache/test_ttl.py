"""Edge TTLs (§2.2, §3.1, §3.2, §3.5), request collapsing (§3.8) and the viewer's Vary (§3.7)."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from edgesim.cache.policies import MANAGED_CACHE_POLICIES, CachePolicy, OriginRequestPolicy
from edgesim.cache.ttl import (
    Freshness,
    cache_control,
    collapsible,
    edge_ttl,
    fields_not_stored,
    varies_on_everything,
    viewer_vary,
)
from edgesim.http import Headers

NOW = 1_700_000_000.0
MIN0 = CachePolicy("min0", 0, 86400, 3600 * 24 * 365)  # MinTTL = 0 column
MIN60 = CachePolicy("min60", 60, 3600, 7200)  # MinTTL > 0 column
MAX300 = CachePolicy("max300", 0, 120, 300)
DEFAULT0 = MANAGED_CACHE_POLICIES["UseOriginCacheControlHeaders"]
DISABLED = MANAGED_CACHE_POLICIES["CachingDisabled"]
ODD = CachePolicy("odd", 100, 50, 7200)  # DefaultTTL below MinTTL (only built in code)


def expires(offset: float) -> str:
    return formatdate(NOW + offset, usegmt=True)


def F(ttl: float, swr: float = 0.0, sie: float = 0.0, cover: bool = True) -> Freshness:
    return Freshness(ttl, swr, sie, cover)


CC = "Cache-Control"
TABLE: list[tuple[CachePolicy, str, int, list[tuple[str, str]], float | None, Freshness | None]] = [
    # policy, method, status, origin headers, ErrorCachingMinTTL, expected
    # --- §2.2 Cache-Control: max-age=N (no s-maxage) -------------------------------------------
    (MIN0, "GET", 200, [(CC, "max-age=600")], None, F(600)),  # §2.2 MinTTL 0: min(N, MaxTTL)
    (MAX300, "GET", 200, [(CC, "max-age=600")], None, F(300)),  # §2.2 max-age > MaxTTL -> MaxTTL
    (MIN60, "GET", 200, [(CC, "max-age=5")], None, F(60)),  # §2.2 N < MinTTL -> MinTTL
    (MIN60, "GET", 200, [(CC, "max-age=600")], None, F(600)),  # §2.2 MinTTL <= N <= MaxTTL -> N
    (MIN60, "GET", 200, [(CC, "max-age=9000")], None, F(7200)),  # §2.2 N > MaxTTL -> MaxTTL
    (MIN0, "GET", 200, [(CC, "max-age=0")], None, F(0)),  # §2.2 max-age=0: stored, stale at once
    (MIN60, "GET", 200, [(CC, "max-age=0")], None, F(60)),  # §2.2 clamped up to MinTTL
    (MIN0, "GET", 200, [(CC, "public, max-age=600")], None, F(600)),  # other directives ignored
    (MIN0, "GET", 200, [(CC, "MAX-AGE=600")], None, F(600)),  # directive names ignore case
    (MIN0, "GET", 200, [(CC, 'max-age="600"')], None, F(600)),  # quoted value
    (MIN0, "GET", 200, [(CC, "max-age=99999999999")], None, F(MIN0.max_ttl)),  # huge -> MaxTTL
    (MIN0, "GET", 200, [(CC, "max-age=abc")], None, F(0)),  # §7 q10: malformed counts as 0
    (MIN0, "GET", 200, [(CC, "max-age=-5")], None, F(0)),  # §7 q10: negative counts as 0
    (MIN60, "GET", 200, [(CC, "max-age=-5")], None, F(60)),  # ... and is clamped to MinTTL
    (MIN0, "GET", 200, [(CC, "max-age")], None, F(0)),  # no value: malformed
    # --- §2.2 s-maxage=S (with or without max-age) ----------------------------------------------
    (MIN0, "GET", 200, [(CC, "s-maxage=100")], None, F(100)),  # §2.2 min(S, MaxTTL)
    (MIN0, "GET", 200, [(CC, "max-age=600, s-maxage=100")], None, F(100)),  # s-maxage wins
    (MIN0, "GET", 200, [(CC, "s-maxage=100, max-age=600")], None, F(100)),  # whatever the order
    (MAX300, "GET", 200, [(CC, "s-maxage=5000, max-age=1")], None, F(300)),  # S > MaxTTL -> MaxTTL
    (MIN60, "GET", 200, [(CC, "s-maxage=5, max-age=600")], None, F(60)),  # S < MinTTL -> MinTTL
    (MIN60, "GET", 200, [(CC, "s-maxage=9000")], None, F(7200)),  # S > MaxTTL -> MaxTTL
    (MIN0, "GET", 200, [(CC, "max-age=600"), (CC, "s-maxage=60")], None, F(60)),  # two lines
    (MIN0, "GET", 200, [(CC, "max-age=600, max-age=60")], None, F(600)),  # repeated: first wins
    # --- §2.2 Expires only ----------------------------------------------------------------------
    (MIN0, "GET", 200, [("Expires", expires(1000))], None, F(1000)),  # §2.2 until D
    (MIN0, "GET", 200, [("Expires", expires(10**9))], None, F(MIN0.max_ttl)),  # or MaxTTL
    (MIN60, "GET", 200, [("Expires", expires(10))], None, F(60)),  # §2.2 clamped to MinTTL
    (MIN60, "GET", 200, [("Expires", expires(10**6))], None, F(7200)),  # clamped to MaxTTL
    (MIN0, "GET", 200, [("Expires", expires(-1000))], None, F(0)),  # past: stale at once
    (MIN60, "GET", 200, [("Expires", expires(-1000))], None, F(60)),  # past, MinTTL > 0
    (MIN0, "GET", 200, [("Expires", "0")], None, F(0)),  # §7 q10: invalid = already expired
    (MIN0, "GET", 200, [("Expires", "tomorrow")], None, F(0)),  # invalid
    (MIN60, "GET", 200, [("Expires", "0")], None, F(60)),  # invalid, MinTTL > 0
    (MIN0, "GET", 200, [(CC, "max-age=600"), ("Expires", expires(10))], None, F(600)),  # ignored
    (MIN0, "GET", 200, [(CC, "public"), ("Expires", expires(500))], None, F(500)),  # CC w/o age
    # --- §2.2 none of max-age, s-maxage, Expires --------------------------------------------------
    (MIN0, "GET", 200, [], None, F(86400)),  # §2.2 MinTTL 0: DefaultTTL
    (MIN60, "GET", 200, [], None, F(3600)),  # §2.2 MinTTL > 0: max(MinTTL, DefaultTTL)
    (ODD, "GET", 200, [], None, F(100)),  # §2.2 max(MinTTL, DefaultTTL) when MinTTL is larger
    (MIN0, "GET", 200, [(CC, "public")], None, F(86400)),  # no TTL directive
    (DEFAULT0, "GET", 200, [], None, None),  # §2.5 DefaultTTL 0: not cached without headers
    (DEFAULT0, "GET", 200, [(CC, "max-age=60")], None, F(60)),  # §2.5 ... but cached with them
    # --- §2.2 no-cache / no-store / private -----------------------------------------------------
    (MIN0, "GET", 200, [(CC, "no-cache")], None, None),  # §2.2 MinTTL 0: respected
    (MIN0, "GET", 200, [(CC, "no-store")], None, None),  # §2.2 MinTTL 0: respected
    (MIN0, "GET", 200, [(CC, "private")], None, None),  # §2.2 MinTTL 0: respected
    (MIN0, "GET", 200, [(CC, "no-cache, max-age=600")], None, None),  # beats max-age
    (MIN0, "GET", 200, [(CC, "private, s-maxage=600")], None, None),  # §7 q10: private > s-maxage
    (MIN0, "GET", 200, [(CC, "max-age=600"), (CC, "no-store")], None, None),  # any line
    (MIN60, "GET", 200, [(CC, "no-cache")], None, F(60)),  # §2.2 MinTTL > 0: cached for MinTTL
    (MIN60, "GET", 200, [(CC, "no-store")], None, F(60)),  # §2.2 MinTTL > 0: cached for MinTTL
    (MIN60, "GET", 200, [(CC, "private")], None, F(60)),  # §2.2 MinTTL > 0: cached for MinTTL
    (MIN60, "GET", 200, [(CC, "no-store, max-age=600")], None, F(60)),  # MinTTL, not max-age
    (MIN0, "GET", 200, [(CC, 'no-cache="Set-Cookie", max-age=600')], None, F(600)),  # §2.2 field
    (MIN0, "GET", 200, [(CC, 'private="X-Token", max-age=600')], None, F(600)),  # field only
    # --- §2.2 Vary: * -------------------------------------------------------------------------
    (MIN0, "GET", 200, [("Vary", "*"), (CC, "max-age=600")], None,
     Freshness(0.0, revalidate_conditionally=False)),  # §2.2 MinTTL 0: every request refetches
    (MIN0, "GET", 200, [("Vary", "Accept, *")], None,
     Freshness(0.0, revalidate_conditionally=False)),  # `*` among other names
    (MIN60, "GET", 200, [("Vary", "*"), (CC, "max-age=600")], None, F(600)),  # §2.2 MinTTL > 0
    (MIN0, "GET", 200, [("Vary", "Accept-Language"), (CC, "max-age=600")], None, F(600)),
    # --- §3.5 stale-while-revalidate / stale-if-error -------------------------------------------
    (MIN0, "GET", 200, [(CC, "max-age=3600, stale-while-revalidate=600, stale-if-error=86400")],
     None, F(3600, 600, 86400)),  # §3.5 the worked example
    (MIN0, "GET", 200, [(CC, "max-age=60, stale-while-revalidate=30")], None, F(60, 30)),
    (MIN0, "GET", 200, [(CC, "max-age=0, stale-while-revalidate=30")], None, F(0, 30)),
    (MIN0, "GET", 200, [(CC, "max-age=60, stale-if-error=0")], None,
     F(60, 0, 0, cover=False)),  # §2.2 stale-if-error=0 opts out of stale-on-error
    (MIN60, "GET", 200, [(CC, "no-cache, stale-if-error=0")], None,
     F(60, 0, 0, cover=False)),  # §2.2 the documented opt-out for MinTTL + no-cache
    (MIN0, "GET", 200, [(CC, "max-age=60, stale-if-error=bad")], None,
     F(60, 0, 0, cover=False)),  # malformed counts as 0
    (MIN0, "GET", 200, [(CC, "max-age=60, stale-while-revalidate=99999999999")], None,
     F(60, 3153600000)),  # §7 q8: not capped at MaxTTL
    # --- §3.1 methods ---------------------------------------------------------------------------
    (MIN0, "HEAD", 200, [(CC, "max-age=600")], None, F(600)),  # §3.1 GET and HEAD: cached
    (MIN0, "get", 200, [(CC, "max-age=600")], None, F(600)),  # method case ignored
    (MIN0, "OPTIONS", 200, [(CC, "max-age=600")], None, None),  # §3.1 OPTIONS not in cached
    (MIN0, "POST", 200, [(CC, "max-age=600")], None, None),  # §3.1 never cached
    (MIN0, "PUT", 200, [(CC, "max-age=600")], None, None),  # §3.1 never cached
    (MIN0, "PATCH", 200, [(CC, "max-age=600")], None, None),  # §3.1 never cached
    (MIN0, "DELETE", 200, [(CC, "max-age=600")], None, None),  # §3.1 never cached
    (MIN0, "POST", 500, [], None, None),  # §7 q16: a POST's error is not cached either
    # --- §3.2 always-cached errors --------------------------------------------------------------
    (MIN0, "GET", 404, [], None, F(10)),  # §3.2 ErrorCachingMinTTL, default 10 s
    (MIN0, "GET", 404, [], 30, F(30)),  # §3.2 the configured ErrorCachingMinTTL
    (MIN0, "GET", 404, [(CC, "max-age=60")], None, F(60)),  # §3.2 max(header, ECMT)
    (MIN0, "GET", 404, [(CC, "max-age=5")], None, F(10)),  # §3.2 max(header, ECMT)
    (MIN0, "GET", 404, [(CC, "s-maxage=60, max-age=5")], 20, F(60)),  # s-maxage counts too
    (MAX300, "GET", 404, [(CC, "max-age=9000")], None, F(300)),  # §3.2 header capped by MaxTTL
    (MAX300, "GET", 404, [(CC, "max-age=9000")], 400, F(400)),  # ... but not the ECMT
    (MIN0, "GET", 404, [(CC, "no-store")], None, F(10)),  # §3.2 other directives: ECMT
    (MIN60, "GET", 404, [], None, F(10)),  # MinTTL does not apply to errors
    (MIN0, "GET", 404, [], 0, None),  # ECMT 0 and no header: not cached
    (MIN0, "GET", 404, [(CC, "max-age=60")], 0, F(60)),  # ECMT 0, header 60
    (MIN0, "GET", 404, [("Expires", expires(100))], None, F(10)),  # §3.2 Expires: not counted
    (MIN0, "GET", 404, [("Expires", expires(100))], 5, F(100)),  # §3.2 custom error: counted
    (MIN0, "GET", 404, [(CC, "max-age=60, stale-if-error=600")], None, F(60)),  # no windows
    (MIN0, "HEAD", 404, [], None, F(10)),  # HEAD as GET
    # --- §3.2 errors cached only with max-age / s-maxage ------------------------------------------
    (MIN0, "GET", 400, [], None, None),  # §3.2 no max-age: not cached
    (MIN0, "GET", 400, [], 30, None),  # §3.2 ... whatever ECMT says
    (MIN0, "GET", 403, [(CC, "max-age=60")], None, F(60)),  # §3.2 with max-age
    (MIN0, "GET", 403, [(CC, "s-maxage=60")], None, F(60)),  # §3.2 with s-maxage
    (MIN0, "GET", 403, [(CC, "max-age=1")], None, F(10)),  # §3.2 max(header, ECMT)
    (MIN0, "GET", 403, [(CC, "no-cache")], None, None),  # §3.2 other directives: not cached
    (MIN0, "GET", 403, [("Expires", expires(100))], 5, None),  # §3.2 Expires does not qualify
    (MAX300, "GET", 405, [(CC, "max-age=9000")], None, F(300)),  # §3.2 capped by MaxTTL
    # --- §3.2 never cached, and statuses the sources do not list --------------------------------
    (MIN0, "GET", 416, [], None, None),  # §3.2 416 never
    (MIN0, "GET", 416, [(CC, "max-age=600")], 30, None),  # §1.5 416's ECMT is ignored
    (MIN0, "GET", 401, [(CC, "max-age=600")], None, None),  # not listed: not cached
    (MIN0, "GET", 410, [(CC, "max-age=600")], None, None),  # §7 q9: not cached
    (MIN0, "GET", 451, [(CC, "max-age=600")], None, None),  # §7 q9: not cached
    (MIN0, "GET", 505, [(CC, "max-age=600")], None, None),  # not listed: not cached
    # --- §3.2 3xx -------------------------------------------------------------------------------
    (MIN0, "GET", 301, [], None, F(86400)),  # §3.2 normal rules: DefaultTTL
    (MIN0, "GET", 301, [(CC, "max-age=60")], None, F(60)),  # §3.2 normal rules
    (MIN0, "GET", 302, [], None, F(86400)),  # §3.2 normal rules
    (MIN0, "GET", 302, [(CC, "no-store")], None, None),  # §3.2 normal rules
    (MIN0, "GET", 307, [], None, None),  # §3.2 307 only with Cache-Control
    (MIN0, "GET", 307, [("Expires", expires(100))], None, None),  # Expires is not enough
    (MIN0, "GET", 307, [(CC, "max-age=60")], None, F(60)),  # §3.2 with Cache-Control
    (MIN0, "GET", 307, [(CC, "public")], None, F(86400)),  # Cache-Control without max-age
    (MIN0, "GET", 308, [], None, None),  # §3.2 308 only with Cache-Control
    (MIN0, "GET", 308, [(CC, "max-age=60")], None, F(60)),  # §3.2 with Cache-Control
    (MIN0, "GET", 303, [(CC, "max-age=60")], None, None),  # not listed
    (MIN0, "GET", 304, [(CC, "max-age=60")], None, None),  # a 304 refreshes, it is not stored
    # --- §7 q9: other 2xx ---------------------------------------------------------------------
    (MIN0, "GET", 203, [], None, F(86400)),  # decided: cacheable like 200
    (MIN0, "GET", 204, [(CC, "max-age=60")], None, F(60)),  # decided: cacheable like 200
    (MIN0, "GET", 206, [(CC, "max-age=60")], None, F(60)),  # §3.3 range parts are cached
    (MIN0, "GET", 201, [(CC, "max-age=60")], None, None),  # not cached
    (MIN0, "GET", 202, [], None, None),  # not cached
    (MIN0, "GET", 100, [], None, None),  # not cached
    # --- §2.5 CachingDisabled -------------------------------------------------------------------
    (DISABLED, "GET", 200, [(CC, "max-age=600")], None, None),  # nothing stored
    (DISABLED, "GET", 404, [], 30, None),  # not even errors
    (DISABLED, "GET", 503, [(CC, "max-age=600")], None, None),
]  # fmt: skip


@pytest.mark.parametrize(("policy", "method", "status", "headers", "ecmt", "expected"), TABLE)
def test_edge_ttl_table(
    policy: CachePolicy,
    method: str,
    status: int,
    headers: list[tuple[str, str]],
    ecmt: float | None,
    expected: Freshness | None,
) -> None:
    got = edge_ttl(policy, method, status, Headers(headers), now=NOW, error_caching_min_ttl=ecmt)
    assert got == expected


@pytest.mark.parametrize("status", [404, 414, 500, 501, 502, 503, 504])
def test_every_always_cached_error_is_kept_for_the_error_caching_min_ttl(status: int) -> None:
    # §3.2 the always-cached group, each code
    assert edge_ttl(MIN0, "GET", status, Headers(), now=NOW) == F(10)
    assert edge_ttl(MIN0, "GET", status, Headers(), now=NOW, error_caching_min_ttl=3) == F(3)


@pytest.mark.parametrize("status", [400, 403, 405, 412, 415])
def test_every_max_age_error_needs_max_age(status: int) -> None:
    # §3.2 the cached-with-max-age group, each code
    assert edge_ttl(MIN0, "GET", status, Headers(), now=NOW) is None
    headers = Headers([(CC, "max-age=120")])
    assert edge_ttl(MIN0, "GET", status, headers, now=NOW) == F(120)


def test_options_is_cached_when_the_behavior_caches_it() -> None:
    # §3.1 OPTIONS only if CachedMethods includes it
    headers = Headers([(CC, "max-age=600")])
    cached = ("GET", "HEAD", "OPTIONS")
    assert edge_ttl(MIN0, "OPTIONS", 200, headers, now=NOW, cached_methods=cached) == F(600)
    assert edge_ttl(MIN0, "options", 200, headers, now=NOW, cached_methods=cached) == F(600)
    assert edge_ttl(MIN0, "OPTIONS", 200, headers, now=NOW) is None
    assert edge_ttl(MIN0, "POST", 200, headers, now=NOW, cached_methods=cached) is None


def test_expires_is_read_against_now() -> None:
    headers = Headers([("Expires", expires(1000))])
    later = edge_ttl(MIN0, "GET", 200, headers, now=NOW + 400)
    assert later == F(600)
    naive = Headers([("Expires", formatdate(NOW + 50, usegmt=True).replace(" GMT", ""))])
    assert edge_ttl(MIN0, "GET", 200, naive, now=NOW) == F(50)  # a date without zone is UTC


# --- collapsing (§3.8) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "cache_control_value", "expected"),
    [
        (MIN0, None, True),
        (MIN0, "max-age=600", True),
        (MIN0, "private", False),  # §3.8 MinTTL 0 and private
        (MIN0, "no-store", False),  # §3.8 MinTTL 0 and no-store
        (MIN0, "no-cache", False),  # §3.8 MinTTL 0 and no-cache
        (MIN0, 'no-cache="Set-Cookie"', False),
        (MIN0, "max-age=0", False),  # §3.8 MinTTL 0 and max-age=0
        (MIN0, "s-maxage=0, max-age=60", False),  # §3.8 MinTTL 0 and s-maxage=0
        (MIN60, "no-store", True),  # MinTTL > 0: the response cannot turn collapsing off
        (MIN60, "max-age=0", True),
        (DISABLED, "max-age=600", False),  # §3.8 CachingDisabled
    ],
)
def test_collapsible(policy: CachePolicy, cache_control_value: str | None, expected: bool) -> None:
    headers = Headers([(CC, cache_control_value)] if cache_control_value is not None else [])
    assert collapsible(policy, headers) is expected


def test_vary_star_told_apart_from_the_headers_decides_like_one_in_them() -> None:
    """cloudfront-caching.md §2.2: with MinTTL 0 a `Vary: *` response is refetched in full for
    every request, so it is stored stale at once, without validators, and never shared with
    waiting requests; the pipeline filters Vary for the viewer first and passes the fact on."""
    shown = Headers([(CC, "max-age=600")])
    fresh = edge_ttl(MIN0, "GET", 200, shown, now=NOW, vary_all=True)
    assert fresh == Freshness(0.0, revalidate_conditionally=False)
    assert edge_ttl(MIN60, "GET", 200, shown, now=NOW, vary_all=True) == F(600)
    assert collapsible(MIN0, shown, vary_all=True) is False
    assert collapsible(MIN0, Headers([("Vary", "*")])) is False
    assert collapsible(MIN60, shown, vary_all=True) is True
    assert varies_on_everything(Headers([("Vary", "Accept"), ("Vary", "Origin, *")]))
    assert not varies_on_everything(Headers([("Vary", "Accept")]))


def test_forwarding_cookies_turns_collapsing_off() -> None:
    # §3.8 cookies in the cache key or in the origin request policy
    keyed = CachePolicy("c", 0, 60, 60, cookie_behavior="whitelist", cookies=("a",))
    assert collapsible(keyed, Headers()) is False
    orp = OriginRequestPolicy("o", cookie_behavior="all")
    assert collapsible(MIN0, Headers(), orp=orp) is False
    assert collapsible(MIN0, Headers(), orp=OriginRequestPolicy("o", "allViewer")) is True


# --- the viewer's Vary (§3.7) -----------------------------------------------------------------


def vary(value: str | list[str], forwarded: set[str] | None = None) -> str | None:
    values = [value] if isinstance(value, str) else value
    headers = Headers([("Vary", v) for v in values])
    return viewer_vary(headers, lambda name: name in (forwarded or set()))


def test_viewer_vary_keeps_accept_encoding_cookie_and_forwarded_names() -> None:
    assert vary("Accept-Encoding") == "Accept-Encoding"
    assert vary("Cookie, X-Other") == "Cookie"
    assert vary("Accept-Language, Origin", {"accept-language"}) == "Accept-Language"
    assert vary(["accept-encoding", "Origin"], {"origin"}) == "accept-encoding, Origin"
    assert vary("Accept-Encoding, accept-encoding") == "Accept-Encoding"


def test_viewer_vary_drops_everything_else() -> None:
    assert vary("X-Other, Accept") is None
    assert vary("*") is None
    assert viewer_vary(Headers(), lambda name: True) is None


def test_user_agent_stays_only_with_device_headers_or_when_forwarded() -> None:
    assert vary("User-Agent") is None
    assert vary("User-Agent", {"cloudfront-is-mobile-viewer"}) == "User-Agent"
    assert vary("User-Agent", {"user-agent"}) == "User-Agent"


# --- Cache-Control reading --------------------------------------------------------------------


def test_cache_control_reads_quoted_lists_and_several_lines() -> None:
    headers = Headers(
        [(CC, 'no-cache="Set-Cookie, Set-Cookie2", max-age=60'), ("cache-control", "PUBLIC")]
    )
    assert cache_control(headers) == {
        "no-cache": "Set-Cookie, Set-Cookie2",
        "max-age": "60",
        "public": None,
    }
    assert fields_not_stored(headers) == frozenset({"set-cookie", "set-cookie2"})
    assert fields_not_stored(Headers([(CC, 'private="X-Token", no-cache')])) == {"x-token"}
    assert fields_not_stored(Headers([(CC, "no-cache")])) == frozenset()
