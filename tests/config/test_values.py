"""CloudFront's rules for the values of a distribution file (:mod:`edgesim.config.values`).

Checks of one value (names, handlers, URLs, headers, ranges, path patterns, host names) and the
checks that tie sections together (references, quotas per trigger, the default behavior). Each
rule is asserted through the one-line problem a user reads when loading a file.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from edgesim.config import load_distribution
from edgesim.quotas import LAMBDA_EDGE
from edgesim.types import EventType
from tests.config_helpers import (
    behavior_problem,
    example,
    example_folders,
    function_problem,
    origin_group_problem,
    origin_problem,
    problem,
    write,
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return example_folders(tmp_path)


# --- references between sections --------------------------------------------------------------


def test_an_unknown_origin_in_a_behavior_lists_the_known_ones(folder: Path) -> None:
    data = example()
    data["behaviors"][0]["origin"] = "apii"
    assert problem(folder, data) == (
        "behaviors[0].origin: unknown origin 'apii'; known origins and origin groups: "
        "site, api, site-with-backup"
    )


def test_an_unknown_function_in_an_association_lists_the_known_ones(folder: Path) -> None:
    data = example()
    data["behaviors"][2]["functions"]["viewer-response"] = "security-header"
    assert problem(folder, data) == (
        "behaviors[2].functions.viewer-response: unknown function 'security-header'; "
        "known functions: rewrite-index, sign-request, security-headers"
    )


def test_an_association_without_any_functions_section_says_so(folder: Path) -> None:
    data = example()
    del data["functions"]
    assert problem(folder, data) == (
        "behaviors[0].functions.origin-request: unknown function 'sign-request'; "
        "known functions: none (there is no functions section)"
    )


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        ({"primary": "apx", "secondary": "site", "status_codes": [500]},
         "origin_groups.g.primary: unknown origin 'apx'; known origins: site, api"),
        ({"primary": "api", "secondary": "g2", "status_codes": [500]},
         "origin_groups.g.secondary: 'g2' is an origin group; a group's members must be origins"),
    ],
)  # fmt: skip
def test_origin_group_members_must_be_origins(
    folder: Path, group: dict[str, Any], expected: str
) -> None:
    assert origin_group_problem(folder, group) == expected


def test_an_origin_group_cannot_reuse_an_origin_id(folder: Path) -> None:
    data = example()
    data["origin_groups"] = {"site": {"primary": "api", "secondary": "site", "status_codes": [500]}}
    assert problem(folder, data) == (
        "origin_groups.site: 'site' is also an origin id; ids must be unique"
    )


# --- functions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"runtime": "nodejs16.x"}, "runtime: unsupported runtime 'nodejs16.x'; supported: "
         "nodejs18.x, nodejs20.x, nodejs22.x, python3.9, python3.10, python3.11, python3.12, "
         "python3.13"),
        ({"handler": "index"}, "handler: handler 'index' must look like 'path/module.function', "
         "e.g. 'index.handler'"),
        ({"handler": "/abs/app.handler"}, "handler: handler '/abs/app.handler' must look like "
         "'path/module.function', e.g. 'index.handler'"),
        ({"memory": 64}, "memory: memory must be 128-10240 MB; got 64 MB"),
        ({"memory": 10241}, "memory: memory must be 128-10240 MB; got 10241 MB"),
        ({"timeout": 0}, "timeout: timeout must be 1-30 s; got 0 s"),
        ({"timeout": 31}, "timeout: timeout must be 1-30 s; got 31 s"),
        (
            {"reserved_concurrency": -1},
            "reserved_concurrency: reserved_concurrency must be 0-1000; got -1",
        ),
    ],
)  # fmt: skip
def test_function_settings_are_checked(
    folder: Path, changes: dict[str, Any], expected: str
) -> None:
    assert function_problem(folder, **changes) == f"functions.sign-request.{expected}"


def test_a_function_name_must_be_lambda_shaped(folder: Path) -> None:
    data = example()
    data["functions"]["bad name!"] = data["functions"].pop("sign-request")
    assert problem(folder, data) == (
        "functions.bad name!: function name 'bad name!' is invalid: use 1-64 letters, digits, "
        "'-' or '_'"
    )
    data["functions"]["x" * 65] = data["functions"].pop("bad name!")
    assert "is invalid: use 1-64 letters" in problem(folder, data)


def test_the_code_folder_must_exist_and_be_a_folder(folder: Path) -> None:
    missing = (folder / "functions/nope").resolve()
    assert function_problem(folder, code="functions/nope") == (
        f"functions.sign-request.code: code folder '{missing}' does not exist"
    )
    (folder / "file.js").write_text("")
    assert function_problem(folder, code="file.js") == (
        f"functions.sign-request.code: code '{(folder / 'file.js').resolve()}' is not a folder"
    )


def test_a_viewer_trigger_holds_its_function_to_5_seconds(folder: Path) -> None:
    data = example()
    data["functions"]["rewrite-index"]["timeout"] = 10
    assert problem(folder, data) == (
        "functions.rewrite-index.timeout: function 'rewrite-index' is associated with "
        "viewer-request in behaviors[2], where the timeout quota is 5 s; it has 10 s"
    )


def test_a_viewer_trigger_holds_its_function_to_128_mb(folder: Path) -> None:
    data = example()
    data["functions"]["security-headers"]["memory"] = 256
    assert problem(folder, data) == (
        "functions.security-headers.memory: function 'security-headers' is associated with "
        "viewer-response in behaviors[2], where the memory quota is 128 MB; it has 256 MB"
    )


def test_origin_triggers_allow_30_seconds_and_10240_mb(folder: Path) -> None:
    data = example()
    data["functions"]["sign-request"].update(memory=10240, timeout=30)
    data["behaviors"][0]["functions"]["origin-response"] = "sign-request"
    dist = load_distribution(write(folder, data))
    assert dist.functions["sign-request"].timeout == 30


def test_each_association_is_held_to_its_triggers_row_of_the_quota_table(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tighter = dict(LAMBDA_EDGE)
    tighter[EventType.ORIGIN_RESPONSE] = replace(
        LAMBDA_EDGE[EventType.ORIGIN_RESPONSE], timeout_max_s=10, memory_min_mb=256
    )
    monkeypatch.setattr("edgesim.config.values.LAMBDA_EDGE", tighter)
    data = example()
    data["functions"]["sign-request"].update(memory=10240, timeout=30)
    data["behaviors"][0]["functions"]["origin-response"] = "sign-request"
    assert problem(folder, data).endswith("where the timeout quota is 10 s; it has 30 s")
    data["functions"]["sign-request"].update(memory=128, timeout=10)
    assert problem(folder, data).endswith("where the memory quota is 256-10240 MB; it has 128 MB")


# --- behaviors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("/api/ *", "path pattern '/api/ *' contains ' ', which CloudFront does not allow; "
         "allowed: letters, digits and _ - . * ? $ / ~ \" ' @ : + &"),
        ("/api/%20", "path pattern '/api/%20' contains '%', which CloudFront does not allow; "
         "allowed: letters, digits and _ - . * ? $ / ~ \" ' @ : + &"),
        ("/" + "a" * 255, "path pattern must be 1-255 characters; got 256"),
        ("", "path pattern must be 1-255 characters; got 0"),
    ],
)  # fmt: skip
def test_path_patterns_use_cloudfronts_characters(
    folder: Path, pattern: str, expected: str
) -> None:
    assert (
        behavior_problem(folder, path_pattern=pattern) == f"behaviors[0].path_pattern: {expected}"
    )


def test_every_documented_pattern_character_is_accepted(folder: Path) -> None:
    data = example()
    data["behaviors"][0]["path_pattern"] = "/Az09_-.*?$/~\"'@:+&"
    assert (
        load_distribution(write(folder, data)).behaviors[0].path_pattern == "/Az09_-.*?$/~\"'@:+&"
    )


@pytest.mark.parametrize("last", ["/*", "/static/*"])
def test_the_last_behavior_must_be_the_default_star(folder: Path, last: str) -> None:
    assert behavior_problem(folder, 2, path_pattern=last) == (
        "behaviors[2].path_pattern: the last behavior is the default one, whose path_pattern "
        f"is exactly '*'; got {last!r}"
    )


def test_at_least_one_behavior_is_needed(folder: Path) -> None:
    data = example()
    data["behaviors"] = []
    assert problem(folder, data) == (
        "behaviors: at least one behavior is needed; the last one has path_pattern '*'"
    )


def test_a_repeated_pattern_is_refused_even_without_its_leading_slash(folder: Path) -> None:
    assert behavior_problem(folder, 1, path_pattern="api/*") == (
        "behaviors[1].path_pattern: behaviors[0] has the same path pattern, so this behavior "
        "would never match"
    )


def test_allowed_methods_are_one_of_cloudfronts_sets_in_any_order(folder: Path) -> None:
    data = example()
    data["behaviors"][0]["allowed_methods"] = ["options", "HEAD", "GET"]
    data["behaviors"][0]["cached_methods"] = ["HEAD", "OPTIONS", "GET"]
    behavior = load_distribution(write(folder, data)).behaviors[0]
    assert behavior.allowed_methods == ("GET", "HEAD", "OPTIONS")
    assert behavior.cached_methods == ("GET", "HEAD", "OPTIONS")
    assert behavior_problem(folder, allowed_methods=["GET", "POST"]) == (
        "behaviors[0].allowed_methods: must be one of GET,HEAD | GET,HEAD,OPTIONS | "
        "GET,HEAD,OPTIONS,PUT,PATCH,POST,DELETE; got GET,POST"
    )
    assert behavior_problem(folder, cached_methods=["GET"]) == (
        "behaviors[0].cached_methods: must be one of GET,HEAD | GET,HEAD,OPTIONS; got GET"
    )


def test_a_policy_is_a_name_or_a_mapping(folder: Path) -> None:
    assert behavior_problem(folder, cache_policy=["CachingDisabled"]) == (
        "behaviors[0].cache_policy: must be a managed policy name or an inline policy mapping"
    )


# --- origins ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ({"url": "ftp://example.test"}, "api.url: url must look like http://HOST[:PORT] or "
         "https://HOST[:PORT]; got 'ftp://example.test'"),
        ({"url": "http://"}, "api.url: url must look like http://HOST[:PORT] or "
         "https://HOST[:PORT]; got 'http://'"),
        ({"url": "http://127.0.0.1:99999"}, "api.url: url 'http://127.0.0.1:99999' has an "
         "invalid port"),
        ({"url": "http://127.0.0.1:888"}, "api.url: port 888 is not allowed; CloudFront reaches "
         "origins on 80, 443 or 1024-65535"),
        ({"url": "http://127.0.0.1:9000/v1"}, "api.url: url 'http://127.0.0.1:9000/v1' must "
         "hold only scheme, host and port; put a path prefix in 'path'"),
        ({"url": "http://h.test", "path": "v1"}, "api.path: path must start with '/' and not end "
         "with '/' (or be empty); got 'v1'"),
        ({"url": "http://h.test", "path": "/v1/"}, "api.path: path must start with '/' and not "
         "end with '/' (or be empty); got '/v1/'"),
        ({"url": "http://h.test", "read_timeout": 121}, "api.read_timeout: read_timeout must be "
         "1-120 s; got 121 s"),
        ({"url": "http://h.test", "keepalive_timeout": 0}, "api.keepalive_timeout: "
         "keepalive_timeout must be 1-120 s; got 0 s"),
        ({"url": "http://h.test", "connection_attempts": 4}, "api.connection_attempts: "
         "connection_attempts must be 1-3; got 4"),
        ({"url": "http://h.test", "connection_timeout": 11}, "api.connection_timeout: "
         "connection_timeout must be 1-10 s; got 11 s"),
        ({"url": "http://h.test", "domain_name": "API.test"}, "api.domain_name: 'API.test' must "
         "be lowercase"),
        ({"url": "http://h.test", "domain_name": "10.0.0.1"}, "api.domain_name: '10.0.0.1' is "
         "an IP address; a host name is needed"),
    ],
)  # fmt: skip
def test_origin_settings_are_checked(folder: Path, origin: dict[str, Any], expected: str) -> None:
    assert origin_problem(folder, origin) == f"origins.{expected}"


def test_an_s3_origin_folder_must_exist(folder: Path) -> None:
    assert origin_problem(folder, {"s3": "bucket"}) == (
        f"origins.api.s3: s3 folder '{(folder / 'bucket').resolve()}' does not exist"
    )


@pytest.mark.parametrize("name", ["Host", "x-amz-date", "X-Edge-Location", "Cache-Control", "TE"])
def test_reserved_custom_header_names_are_refused(folder: Path, name: str) -> None:
    message = origin_problem(folder, {"url": "http://h.test", "custom_headers": {name: "v"}})
    assert message == (
        f"origins.api.custom_headers.{name}: CloudFront does not allow {name!r} as an origin "
        "custom header; not allowed: Cache-Control, Connection, Content-Length, Cookie, Host, "
        "If-Match, If-Modified-Since, If-None-Match, If-Range, If-Unmodified-Since, "
        "Max-Forwards, Pragma, Proxy-Authorization, Proxy-Connection, Range, Request-Range, TE, "
        "Trailer, Transfer-Encoding, Upgrade, Via, X-Real-Ip, X-Amz-*, X-Edge-*"
    )


def test_custom_headers_are_limited_to_ten_valid_ones(folder: Path) -> None:
    headers = {f"X-H{i}": "v" for i in range(11)}
    assert origin_problem(folder, {"url": "http://h.test", "custom_headers": headers}) == (
        "origins.api.custom_headers: at most 10 custom headers per origin; got 11"
    )
    assert origin_problem(folder, {"url": "http://h.test", "custom_headers": {"X H": "v"}}) == (
        "origins.api.custom_headers.X H: 'X H' is not a valid header name"
    )
    assert origin_problem(folder, {"url": "http://h.test", "custom_headers": {"X-N": 5}}) == (
        "origins.api.custom_headers.X-N: must be a string; got 5"
    )


def test_an_s3_bucket_domain_defaults_to_a_valid_lowercase_name(folder: Path) -> None:
    data = example()
    data["origins"]["My_Site"] = {"s3": "site"}
    data["origins"]["named"] = {"s3": "site", "domain_name": "assets.s3.eu-west-1.amazonaws.com"}
    dist = load_distribution(write(folder, data))
    assert dist.origins["My_Site"].target().domain_name == "my-site.s3.amazonaws.com"
    assert dist.origins["named"].target().domain_name == "assets.s3.eu-west-1.amazonaws.com"


def test_at_least_one_origin_is_needed(folder: Path) -> None:
    data = example()
    data["origins"] = {}
    del data["origin_groups"]
    assert problem(folder, data) == "origins: at least one origin is needed"


# --- custom error responses, distribution settings --------------------------------------------


def test_an_error_code_has_one_custom_response(folder: Path) -> None:
    data = example()
    data["custom_error_responses"].append({"error_code": 404, "error_caching_min_ttl": 0})
    assert problem(folder, data) == (
        "custom_error_responses[1].error_code: error_code 404 already has a custom response in "
        "custom_error_responses[0]"
    )


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"default_root_object": "/index.html"}, "default_root_object: default_root_object must "
         "not start with '/'; got '/index.html'"),
        ({"default_root_object": "index.html?x"}, "default_root_object: default_root_object "
         "'index.html?x' contains '?', which CloudFront does not allow; allowed: letters, digits "
         "and _ - . * $ / ~ \" ' &"),
        ({"default_root_object": "a" * 256}, "default_root_object: default_root_object must be "
         "1-255 characters; got 256"),
        ({"pop": "lax1"}, "pop: pop must look like a CloudFront POP code, like LAX1 or IAD89-C1; "
         "got 'lax1'"),
        ({"aliases": ["www.example.test", "bad_host!"]}, "aliases[1]: 'bad_host!' is not a valid "
         "host name"),
        ({"aliases": ["a.test", "A.test"]}, "aliases[1]: alias 'A.test' is listed twice"),
        ({"id": "edfdvbd6example"}, "id: id must be uppercase letters and digits, like "
         "EDFDVBD6EXAMPLE; got 'edfdvbd6example'"),
        ({"domain_name": "d111.cloudfront.net:443"}, "domain_name: 'd111.cloudfront.net:443' is "
         "not a valid host name"),
    ],
)  # fmt: skip
def test_distribution_settings_are_checked(
    folder: Path, settings: dict[str, Any], expected: str
) -> None:
    data = example()
    data["distribution"].update(settings)
    assert problem(folder, data) == f"distribution.{expected}"


def test_pop_codes_and_aliases_in_cloudfronts_shapes_are_accepted(folder: Path) -> None:
    data = example()
    data["distribution"].update(pop="IAD89-C1", aliases=["WWW.Example.test", "*.example.test"])
    settings = load_distribution(write(folder, data)).settings
    assert settings.pop == "IAD89-C1"
    assert settings.aliases == ("www.example.test", "*.example.test")
