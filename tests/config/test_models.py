"""The models of a distribution file (:mod:`edgesim.config.models`), loaded from files.

What each model keeps and derives (origin targets, resolved policies, error TTLs), and the checks
a model makes across its own fields (unknown keys, one kind of origin, failover codes, trigger
names, include_body, method sets, custom error responses).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pydantic
import pytest

from edgesim.cache.policies import (
    MANAGED_CACHE_POLICIES,
    MANAGED_ORIGIN_REQUEST_POLICIES,
    CachePolicy,
    OriginRequestPolicy,
)
from edgesim.cache.ttl import Freshness, edge_ttl
from edgesim.config import BehaviorConfig, load_distribution
from edgesim.http import Headers
from tests.config_helpers import (
    EXAMPLE,
    behavior_problem,
    example,
    example_folders,
    origin_group_problem,
    origin_problem,
    problem,
    write,
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return example_folders(tmp_path)


# --- every model ------------------------------------------------------------------------------


def test_a_loaded_distribution_is_frozen(folder: Path) -> None:
    dist = load_distribution(write(folder, EXAMPLE))
    with pytest.raises(pydantic.ValidationError):
        dist.behaviors[0].origin = "site"


def test_an_unknown_nested_key_is_named_with_the_allowed_ones(folder: Path) -> None:
    data = example()
    data["behaviors"][1]["orign"] = "site"
    assert problem(folder, data) == (
        "behaviors[1].orign: unknown key; allowed keys: path_pattern, origin, "
        "viewer_protocol_policy, allowed_methods, cached_methods, compress, cache_policy, "
        "origin_request_policy, functions"
    )


def test_an_unknown_settings_key_is_named_with_the_allowed_ones(folder: Path) -> None:
    data = example()
    data["distribution"].update({"pops": "LAX1"})
    assert problem(folder, data) == (
        "distribution.pops: unknown key; allowed keys: id, domain_name, aliases, pop, "
        "default_root_object"
    )


# --- origins and origin groups ----------------------------------------------------------------


def test_origin_targets_describe_the_configured_origins(folder: Path) -> None:
    data = example()
    data["origins"]["secure"] = {"url": "https://api.example.test", "path": "/p"}
    data["origins"]["named"] = {"url": "http://127.0.0.1:9001", "domain_name": "api.example.test"}
    dist = load_distribution(write(folder, data))

    site = dist.origins["site"].target()
    assert (site.kind, site.domain_name, site.local_root, site.origin_id) == (
        "s3", "site.s3.amazonaws.com", (folder / "site").resolve(), "site",
    )  # fmt: skip
    api = dist.origins["api"].target()
    assert (api.kind, api.domain_name, api.port, api.protocol, api.path) == (
        "custom", "127.0.0.1", 9000, "http", "/v1",
    )  # fmt: skip
    assert api.custom_headers == Headers([("X-Origin-Secret", "abc")])
    assert (api.read_timeout, api.keepalive_timeout, api.connect_host) == (30, 5, None)
    secure = dist.origins["secure"].target()
    assert (secure.domain_name, secure.port, secure.protocol) == ("api.example.test", 443, "https")
    named = dist.origins["named"].target()
    assert (named.domain_name, named.connect_host, named.port) == (
        "api.example.test", "127.0.0.1", 9001,
    )  # fmt: skip


def test_connection_settings_reach_the_origin_targets(folder: Path) -> None:
    data = example()
    data["origins"]["api"].update(connection_attempts=1, connection_timeout=4)
    data["origins"]["site"].update(connection_attempts=2, connection_timeout=7)
    data["origins"]["plain"] = {"url": "http://127.0.0.1:9002"}
    dist = load_distribution(write(folder, data))

    api, site = dist.origins["api"].target(), dist.origins["site"].target()
    assert (api.connection_attempts, api.connection_timeout) == (1, 4.0)
    assert (site.connection_attempts, site.connection_timeout) == (2, 7.0)
    plain = dist.origins["plain"].target()
    assert (plain.connection_attempts, plain.connection_timeout) == (3, 10.0)


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ({"s3": "site", "url": "http://127.0.0.1:9000"}, "api: set exactly one of s3 (a local "
         "folder) or url (an HTTP origin); both are set"),
        ({"path": "/v1"}, "api: set exactly one of s3 (a local folder) or url (an HTTP origin); "
         "neither is set"),
    ],
)  # fmt: skip
def test_an_origin_is_a_local_folder_or_a_url(
    folder: Path, origin: dict[str, Any], expected: str
) -> None:
    assert origin_problem(folder, origin) == f"origins.{expected}"


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        ({"primary": "api", "secondary": "api", "status_codes": [500]},
         "origin_groups.g.secondary: primary and secondary are both 'api'"),
        ({"primary": "api", "secondary": "site", "status_codes": [500, 501]},
         "origin_groups.g.status_codes[1]: 501 cannot trigger failover; allowed: 400, 403, 404, "
         "416, 500, 502, 503, 504"),
        ({"primary": "api", "secondary": "site", "status_codes": []},
         "origin_groups.g.status_codes: list at least one failover status code from: 400, 403, "
         "404, 416, 500, 502, 503, 504"),
    ],
)  # fmt: skip
def test_origin_group_members_and_codes_are_checked(
    folder: Path, group: dict[str, Any], expected: str
) -> None:
    assert origin_group_problem(folder, group) == expected


# --- behaviors and their functions ------------------------------------------------------------


def test_an_unknown_trigger_is_named(folder: Path) -> None:
    data = example()
    data["behaviors"][2]["functions"]["viewer_request"] = "rewrite-index"
    assert problem(folder, data) == (
        "behaviors[2].functions.viewer_request: unknown trigger; allowed: viewer-request, "
        "origin-request, origin-response, viewer-response"
    )


@pytest.mark.parametrize("trigger", ["viewer-response", "origin-response"])
def test_include_body_is_only_for_request_triggers(folder: Path, trigger: str) -> None:
    data = example()
    data["behaviors"][0]["functions"] = {
        trigger: {"function": "sign-request", "include_body": True}
    }
    if trigger == "viewer-response":
        data["functions"]["sign-request"].update(memory=128, timeout=5)
    assert problem(folder, data) == (
        f"behaviors[0].functions.{trigger}.include_body: include_body is allowed only on "
        f"viewer-request and origin-request, not on {trigger}"
    )


def test_an_association_must_be_a_name_or_a_mapping(folder: Path) -> None:
    data = example()
    data["behaviors"][2]["functions"]["viewer-request"] = ["rewrite-index"]
    assert problem(folder, data) == (
        "behaviors[2].functions.viewer-request: must be a function name or a mapping "
        "{function: NAME, include_body: BOOL}"
    )


def test_cached_methods_must_be_allowed(folder: Path) -> None:
    assert behavior_problem(folder, 2, cached_methods=["GET", "HEAD", "OPTIONS"]) == (
        "behaviors[2].cached_methods: cached methods GET,HEAD,OPTIONS must be among the allowed "
        "methods GET,HEAD"
    )


# --- policies ---------------------------------------------------------------------------------


def test_policies_are_resolved_and_the_raw_values_kept(folder: Path) -> None:
    api, backup, default = load_distribution(write(folder, EXAMPLE)).behaviors
    assert api.cache_policy == "CachingDisabled"
    assert api.cache_policy_resolved is MANAGED_CACHE_POLICIES["CachingDisabled"]
    assert api.origin_request_policy == "AllViewer"
    assert api.origin_request_policy_resolved is MANAGED_ORIGIN_REQUEST_POLICIES["AllViewer"]
    assert backup.cache_policy_resolved is None and backup.origin_request_policy_resolved is None
    assert default.cache_policy_resolved == CachePolicy(
        "inline", 0, 86400, 31536000, query_string_behavior="all"
    )
    assert default.origin_request_policy_resolved is None


@pytest.mark.parametrize(
    ("cache_policy", "origin_request_policy"),
    [
        ("Managed-CachingOptimized", "Managed-CORS-S3Origin"),
        ("658327ea-f89d-4fab-a63d-7e88639e58f6", "88a5eaf4-2fd4-4709-b370-b4c650ea3fcf"),
    ],
)
def test_managed_policies_load_by_prefixed_name_or_id(
    folder: Path, cache_policy: str, origin_request_policy: str
) -> None:
    data = example()
    data["behaviors"][0].update(
        cache_policy=cache_policy, origin_request_policy=origin_request_policy
    )
    api = load_distribution(write(folder, data)).behaviors[0]
    assert api.cache_policy == cache_policy  # kept as written
    assert api.cache_policy_resolved is MANAGED_CACHE_POLICIES["CachingOptimized"]
    assert api.origin_request_policy_resolved is MANAGED_ORIGIN_REQUEST_POLICIES["CORS-S3Origin"]


def test_an_inline_origin_request_policy_loads(folder: Path) -> None:
    data = example()
    data["behaviors"][0]["origin_request_policy"] = {
        "headers": {"all_except": ["Host"]},
        "cookies": ["session"],
        "query_strings": "all",
    }
    api = load_distribution(write(folder, data)).behaviors[0]
    assert api.origin_request_policy_resolved == OriginRequestPolicy(
        "inline", "allExcept", ("host",), "whitelist", ("session",), "all", ()
    )


@pytest.mark.parametrize(
    ("index", "changes", "expected"),
    [
        (0, {"cache_policy": "CachingOptimised"}, "behaviors[0].cache_policy: unknown managed "
         "cache policy 'CachingOptimised'; managed policies: CachingOptimized, "
         "CachingOptimizedForUncompressedObjects, CachingDisabled, Amplify, "
         "Elemental-MediaPackage, UseOriginCacheControlHeaders, "
         "UseOriginCacheControlHeaders-QueryStrings"),
        (0, {"origin_request_policy": "AllViewers"}, "behaviors[0].origin_request_policy: "
         "unknown managed origin request policy 'AllViewers'; managed policies: AllViewer, "
         "AllViewerAndCloudFrontHeaders-2022-06, AllViewerExceptHostHeader, CORS-CustomOrigin, "
         "CORS-S3Origin, Elemental-MediaTailor-PersonalizedManifests, UserAgentRefererHeaders, "
         "HostHeaderOnly"),
        (2, {"cache_policy": {"min_ttl": -1}}, "behaviors[2].cache_policy.min_ttl: min_ttl must "
         "be 0-3153600000 s; got -1 s"),
        (2, {"cache_policy": {"min_ttl": 100, "default_ttl": 10}}, "behaviors[2].cache_policy."
         "default_ttl: default_ttl (10 s) must not be below min_ttl (100 s)"),
        (2, {"cache_policy": {"cookies": {"all_except": ["a b"]}}}, "behaviors[2].cache_policy."
         "cookies.all_except[0]: 'a b' is not a valid cookie name"),
        (2, {"cache_policy": {"headers": ["Origin", "CloudFront-Viewer-TLS"]}},
         "behaviors[2].cache_policy.headers[1]: CloudFront-Viewer-TLS cannot be in a cache key "
         "(CloudFront allows it only in an origin request policy)"),
        (2, {"cache_policy": {"ttl": 5}}, "behaviors[2].cache_policy.ttl: unknown key; allowed "
         "keys: name, min_ttl, default_ttl, max_ttl, headers, cookies, query_strings, gzip, "
         "brotli"),
        (0, {"cache_policy": {"max_ttl": 0, "query_strings": "all"}}, "behaviors[0].cache_policy."
         "query_strings: must be none when caching is disabled (all TTLs 0), as CloudFront "
         "requires; send values to the origin with an origin_request_policy"),
        (0, {"origin_request_policy": {"headers": ["Authorization"]}}, "behaviors[0]."
         "origin_request_policy.headers[0]: Authorization cannot be named in an origin request "
         "policy (CloudFront refuses it); put it in the cache policy's headers, or use "
         "all_viewer"),
        (1, {"origin_request_policy": "AllViewer"}, "behaviors[1].origin_request_policy: an "
         "origin request policy needs a cache_policy beside it, as in CloudFront (behaviors "
         "without one use legacy forwarding)"),
    ],
)  # fmt: skip
def test_policy_problems_name_the_key_path(
    folder: Path, index: int, changes: dict[str, Any], expected: str
) -> None:
    assert behavior_problem(folder, index, **changes) == expected


def test_policy_problems_in_json_name_the_same_key_path(folder: Path) -> None:
    data = example()
    data["behaviors"][2]["cache_policy"] = {"query_strings": {"all_except": ["a", "a"]}}
    assert problem(folder, json.dumps(data), "dist.json") == (
        "behaviors[2].cache_policy.query_strings.all_except[1]: query string 'a' is listed twice"
    )


def test_behaviors_built_in_code_resolve_their_policies() -> None:
    behavior = BehaviorConfig.model_validate(
        {"path_pattern": "*", "origin": "o", "cache_policy": {"gzip": True}}
    )
    resolved = behavior.cache_policy_resolved
    assert resolved is not None and resolved.gzip and resolved.default_ttl == 86400
    assert behavior == BehaviorConfig.model_validate(
        {"path_pattern": "*", "origin": "o", "cache_policy": {"gzip": True}}
    )
    with pytest.raises(pydantic.ValidationError, match="unknown managed cache policy"):
        BehaviorConfig.model_validate({"path_pattern": "*", "origin": "o", "cache_policy": "x"})


# --- custom error responses -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ({"error_code": 401}, "error_code: 401 cannot have a custom response; allowed: 400, 403, "
         "404, 405, 414, 416, 500, 501, 502, 503, 504"),
        ({"error_code": 404, "response_code": 302, "response_page_path": "/x"}, "response_code: "
         "302 cannot be returned; allowed: 200, 400, 403, 404, 405, 414, 416, 500, 501, 502, 503, "
         "504"),
        ({"error_code": 404, "response_code": 200, "response_page_path": "x.html"},
         "response_page_path: must start with '/'; got 'x.html'"),
        ({"error_code": 404, "response_page_path": "/x.html"},
         "response_code: response_page_path needs a response_code too"),
        ({"error_code": 404, "response_code": 200},
         "response_page_path: response_code needs a response_page_path too"),
        ({"error_code": 404, "error_caching_min_ttl": -1},
         "error_caching_min_ttl: error_caching_min_ttl must be 0-31536000; got -1"),
    ],
)  # fmt: skip
def test_custom_error_responses_are_checked(
    folder: Path, response: dict[str, Any], expected: str
) -> None:
    data = example()
    data["custom_error_responses"].append(response)
    assert problem(folder, data) == f"custom_error_responses[1].{expected}"


def test_custom_error_responses_give_the_cache_its_error_ttls(folder: Path) -> None:
    data = example()
    data["custom_error_responses"] += [
        {"error_code": 503, "error_caching_min_ttl": 0},
        {"error_code": 416, "error_caching_min_ttl": 300},
    ]
    dist = load_distribution(write(folder, data))
    ecmt = {c.error_code: c.error_caching_min_ttl for c in dist.custom_error_responses}
    assert ecmt == {404: 10, 503: 0, 416: 300}
    assert all(type(value) is int for value in ecmt.values())
    policy = dist.behaviors[2].cache_policy_resolved
    assert policy is not None

    def ttl(status: int) -> Freshness | None:
        return edge_ttl(
            policy, "GET", status, Headers(), now=0.0, error_caching_min_ttl=ecmt[status]
        )

    assert ttl(404) == Freshness(10.0)
    assert ttl(503) is None  # 0 s: every request goes to the origin
    assert ttl(416) is None  # §1.5: 416 is never cached, whatever its setting
