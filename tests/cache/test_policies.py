"""Cache and origin request policies: the managed tables, inline parsing and CloudFront's checks."""

from __future__ import annotations

import pytest

from edgesim.cache.policies import (
    MANAGED_CACHE_POLICIES,
    MANAGED_ORIGIN_REQUEST_POLICIES,
    CachePolicy,
    OriginRequestPolicy,
    PolicyError,
    parse_cache_policy,
    parse_origin_request_policy,
    selects,
)

ORIGIN_CACHE_CONTROL = (
    *("host", "origin", "x-http-method-override", "x-http-method", "x-method-override"),
)


# --- managed policies (§2.5, §2.6) -----------------------------------------------------------


def test_the_seven_managed_cache_policies_match_the_published_table() -> None:
    assert dict(MANAGED_CACHE_POLICIES) == {
        "CachingOptimized": CachePolicy(
            "CachingOptimized", 1, 86400, 31536000, gzip=True, brotli=True
        ),
        "CachingOptimizedForUncompressedObjects": CachePolicy(
            "CachingOptimizedForUncompressedObjects", 1, 86400, 31536000
        ),
        "CachingDisabled": CachePolicy("CachingDisabled", 0, 0, 0),
        "Amplify": CachePolicy(
            "Amplify",
            2,
            2,
            600,
            headers=("authorization", "cloudfront-viewer-country", "host"),
            cookie_behavior="all",
            query_string_behavior="all",
            gzip=True,
            brotli=True,
        ),
        "Elemental-MediaPackage": CachePolicy(
            "Elemental-MediaPackage",
            0,
            86400,
            31536000,
            headers=("origin",),
            query_string_behavior="whitelist",
            query_strings=("aws.manifestfilter", "start", "end", "m"),
            gzip=True,
        ),
        "UseOriginCacheControlHeaders": CachePolicy(
            "UseOriginCacheControlHeaders",
            0,
            0,
            31536000,
            headers=ORIGIN_CACHE_CONTROL,
            cookie_behavior="all",
            gzip=True,
            brotli=True,
        ),
        "UseOriginCacheControlHeaders-QueryStrings": CachePolicy(
            "UseOriginCacheControlHeaders-QueryStrings",
            0,
            0,
            31536000,
            headers=ORIGIN_CACHE_CONTROL,
            cookie_behavior="all",
            query_string_behavior="all",
            gzip=True,
            brotli=True,
        ),
    }


def test_only_caching_disabled_among_managed_policies_disables_caching() -> None:
    disabled = [p.name for p in MANAGED_CACHE_POLICIES.values() if p.caching_disabled]
    assert disabled == ["CachingDisabled"]


def test_the_managed_origin_request_policies_match_the_published_table() -> None:
    orps = MANAGED_ORIGIN_REQUEST_POLICIES
    assert list(orps) == [
        "AllViewer",
        "AllViewerAndCloudFrontHeaders-2022-06",
        "AllViewerExceptHostHeader",
        "CORS-CustomOrigin",
        "CORS-S3Origin",
        "Elemental-MediaTailor-PersonalizedManifests",
        "UserAgentRefererHeaders",
        "HostHeaderOnly",
    ]
    assert orps["AllViewer"] == OriginRequestPolicy(
        "AllViewer", "allViewer", cookie_behavior="all", query_string_behavior="all"
    )
    assert orps["AllViewerExceptHostHeader"] == OriginRequestPolicy(
        "AllViewerExceptHostHeader",
        "allExcept",
        ("host",),
        cookie_behavior="all",
        query_string_behavior="all",
    )
    with_cf = orps["AllViewerAndCloudFrontHeaders-2022-06"]
    assert with_cf.header_behavior == "allViewerAndWhitelistCloudFront"
    assert with_cf.cookie_behavior == with_cf.query_string_behavior == "all"
    for name in (
        "cloudfront-viewer-country",
        "cloudfront-is-mobile-viewer",
        "cloudfront-viewer-tls",
    ):
        assert name in with_cf.headers
    assert "cloudfront-viewer-address" in with_cf.headers
    assert "cloudfront-viewer-asn" in with_cf.headers
    assert "cloudfront-forwarded-proto" in with_cf.headers
    assert "cloudfront-viewer-http-version" in with_cf.headers
    assert all(name.startswith("cloudfront-") for name in with_cf.headers)
    assert orps["CORS-CustomOrigin"] == OriginRequestPolicy(
        "CORS-CustomOrigin", "whitelist", ("origin",)
    )
    assert orps["CORS-S3Origin"] == OriginRequestPolicy(
        "CORS-S3Origin",
        "whitelist",
        ("origin", "access-control-request-headers", "access-control-request-method"),
    )
    assert orps["Elemental-MediaTailor-PersonalizedManifests"] == OriginRequestPolicy(
        "Elemental-MediaTailor-PersonalizedManifests",
        "whitelist",
        (
            "origin",
            "access-control-request-headers",
            "access-control-request-method",
            "user-agent",
            "x-forwarded-for",
        ),
        query_string_behavior="all",
    )
    assert orps["UserAgentRefererHeaders"] == OriginRequestPolicy(
        "UserAgentRefererHeaders", "whitelist", ("user-agent", "referer")
    )
    assert orps["HostHeaderOnly"] == OriginRequestPolicy("HostHeaderOnly", "whitelist", ("host",))


@pytest.mark.parametrize(
    "given",
    ["CachingOptimized", "Managed-CachingOptimized", "658327ea-f89d-4fab-a63d-7e88639e58f6"],
)
def test_a_managed_cache_policy_is_found_by_name_prefixed_name_or_id(given: str) -> None:
    assert parse_cache_policy(given) is MANAGED_CACHE_POLICIES["CachingOptimized"]


@pytest.mark.parametrize(
    "given", ["AllViewer", "Managed-AllViewer", "216adef6-5c7f-47e4-b989-5492eafa07d3"]
)
def test_a_managed_origin_request_policy_is_found_by_name_prefixed_name_or_id(given: str) -> None:
    assert parse_origin_request_policy(given) is MANAGED_ORIGIN_REQUEST_POLICIES["AllViewer"]


def test_every_managed_id_resolves_to_its_policy() -> None:
    ids = {
        "4135ea2d-6df8-44a3-9df3-4b5a84be39ad": "CachingDisabled",
        "b2884449-e4de-46a7-ac36-70bc7f1ddd6d": "CachingOptimizedForUncompressedObjects",
        "2e54312d-136d-493c-8eb9-b001f22f67d2": "Amplify",
        "08627262-05a9-4f76-9ded-b50ca2e3a84f": "Elemental-MediaPackage",
        "83da9c7e-98b4-4e11-a168-04f0df8e2c65": "UseOriginCacheControlHeaders",
        "4cc15a8a-d715-48a4-82b8-cc0b614638fe": "UseOriginCacheControlHeaders-QueryStrings",
    }
    for policy_id, name in ids.items():
        assert parse_cache_policy(policy_id).name == name
    orp_ids = {
        "33f36d7e-f396-46d9-90e0-52428a34d9dc": "AllViewerAndCloudFrontHeaders-2022-06",
        "b689b0a8-53d0-40ab-baf2-68738e2966ac": "AllViewerExceptHostHeader",
        "59781a5b-3903-41f3-afcb-af62929ccde1": "CORS-CustomOrigin",
        "88a5eaf4-2fd4-4709-b370-b4c650ea3fcf": "CORS-S3Origin",
        "775133bc-15f2-49f9-abea-afb2e0bf67d2": "Elemental-MediaTailor-PersonalizedManifests",
        "acba4595-bd28-49b8-b9fe-13317c0390fa": "UserAgentRefererHeaders",
        "bf0718e1-ba1e-49d1-88b1-f726733018ae": "HostHeaderOnly",
    }
    for policy_id, name in orp_ids.items():
        assert parse_origin_request_policy(policy_id).name == name


def test_an_unknown_managed_name_lists_the_managed_ones() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_cache_policy("CachingOptimised")
    assert str(caught.value) == (
        "unknown managed cache policy 'CachingOptimised'; managed policies: CachingOptimized, "
        "CachingOptimizedForUncompressedObjects, CachingDisabled, Amplify, "
        "Elemental-MediaPackage, UseOriginCacheControlHeaders, "
        "UseOriginCacheControlHeaders-QueryStrings"
    )
    assert caught.value.key == "" and caught.value.at == ()
    with pytest.raises(PolicyError, match=r"^unknown managed origin request policy 'AllViewers'; "):
        parse_origin_request_policy("AllViewers")
    with pytest.raises(PolicyError, match="unknown managed cache policy 'cachingoptimized'"):
        parse_cache_policy("cachingoptimized")  # names are case-sensitive, as in CloudFront


def test_which_viewer_headers_an_origin_request_policy_forwards() -> None:
    def forwards(orp: OriginRequestPolicy) -> list[str]:
        names = ["host", "authorization", "origin", "x-foo"]
        return [name for name in names if orp.forwards_header(name)]

    orps = MANAGED_ORIGIN_REQUEST_POLICIES
    assert forwards(orps["AllViewer"]) == ["host", "authorization", "origin", "x-foo"]
    assert forwards(orps["AllViewerAndCloudFrontHeaders-2022-06"]) == forwards(orps["AllViewer"])
    assert forwards(orps["AllViewerExceptHostHeader"]) == ["authorization", "origin", "x-foo"]
    assert forwards(orps["CORS-CustomOrigin"]) == ["origin"]
    assert forwards(OriginRequestPolicy("none")) == []


def test_selects_follows_each_behavior() -> None:
    names = ("a", "B")
    assert [selects("none", names, n) for n in ("a", "c")] == [False, False]
    assert [selects("all", names, n) for n in ("a", "c")] == [True, True]
    assert [selects("whitelist", names, n) for n in ("a", "b", "B", "c")] == [
        True,
        False,  # names are case-sensitive
        True,
        False,
    ]
    assert [selects("allExcept", names, n) for n in ("a", "b", "c")] == [False, True, True]
