"""Distribution files: the DESIGN.md format loads, and every mistake gets one clear message."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from edgesim.config import (
    BehaviorConfig,
    Distribution,
    FunctionAssociation,
    load_distribution,
    load_distributions,
)
from edgesim.exceptions import ConfigError
from edgesim.http import Headers
from edgesim.policies import (
    MANAGED_CACHE_POLICIES,
    MANAGED_ORIGIN_REQUEST_POLICIES,
    CachePolicy,
    OriginRequestPolicy,
)
from edgesim.ttl import Freshness, edge_ttl
from edgesim.types import EventType

EXAMPLE = """\
distribution:
  id: EDFDVBD6EXAMPLE
  domain_name: d111111abcdef8.cloudfront.net
  aliases: [www.example.test]
  pop: LAX1
  default_root_object: index.html
origins:
  site:
    s3: site
  api:
    url: http://127.0.0.1:9000
    path: /v1
    custom_headers: {X-Origin-Secret: abc}
    read_timeout: 30
    keepalive_timeout: 5
origin_groups:
  site-with-backup: {primary: api, secondary: site, status_codes: [500, 502, 503, 504]}
functions:
  rewrite-index:
    runtime: nodejs20.x
    code: functions/rewrite-index
    handler: index.handler
    memory: 128
    timeout: 5
  sign-request: {runtime: python3.12, code: functions/sign, handler: app.handler,
                 memory: 1024, timeout: 30}
  security-headers: {runtime: nodejs22.x, code: functions/rewrite-index, handler: headers.handler}
behaviors:
  - path_pattern: /api/*
    origin: api
    allowed_methods: [GET, HEAD, OPTIONS, PUT, PATCH, POST, DELETE]
    cache_policy: CachingDisabled
    origin_request_policy: AllViewer
    functions:
      origin-request: {function: sign-request, include_body: true}
  - path_pattern: /backup/*
    origin: site-with-backup
  - path_pattern: "*"
    origin: site
    cache_policy: {min_ttl: 0, default_ttl: 86400, max_ttl: 31536000,
                   headers: [], cookies: none, query_strings: all}
    functions:
      viewer-request: rewrite-index
      viewer-response: security-headers
custom_error_responses:
  - {error_code: 404, response_page_path: /404.html, response_code: 404, error_caching_min_ttl: 10}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in ("site", "functions/rewrite-index", "functions/sign"):
        (tmp_path / name).mkdir(parents=True)
    return tmp_path


def example() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(EXAMPLE))


def write(folder: Path, data: Any, name: str = "dist.yaml") -> Path:
    path = folder / name
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def problem(folder: Path, data: Any, name: str = "dist.yaml") -> str:
    """The one-line message, without the file name in front (checked separately)."""
    path = write(folder, data, name)
    with pytest.raises(ConfigError) as caught:
        load_distribution(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    rest = message.removeprefix(f"{path}: ")
    for leak in ("pydantic", "Input should", "validation error", "For further information"):
        assert leak not in rest
    return rest


# --- what loads ---------------------------------------------------------------------------


def test_the_design_example_loads_with_every_value_in_place(folder: Path) -> None:
    dist = load_distribution(write(folder, EXAMPLE))

    assert dist.source == (folder / "dist.yaml").resolve()
    assert dist.settings.id == "EDFDVBD6EXAMPLE"
    assert dist.settings.domain_name == "d111111abcdef8.cloudfront.net"
    assert dist.settings.aliases == ("www.example.test",)
    assert dist.settings.default_root_object == "index.html"
    assert list(dist.origins) == ["site", "api"]
    assert dist.origins["site"].s3 == (folder / "site").resolve()
    assert dist.origins["site"].domain_name == "site.s3.amazonaws.com"
    assert dist.origins["api"].custom_headers == {"X-Origin-Secret": "abc"}
    assert dist.origin_groups["site-with-backup"].status_codes == (500, 502, 503, 504)
    fn = dist.functions["rewrite-index"]
    assert (fn.name, fn.runtime, fn.handler, fn.memory, fn.timeout, fn.concurrency) == (
        "rewrite-index", "nodejs20.x", "index.handler", 128, 5, 10,
    )  # fmt: skip
    assert fn.code == (folder / "functions/rewrite-index").resolve()
    assert dist.functions["security-headers"].timeout == 3  # Lambda's default
    api, backup, default = dist.behaviors
    assert api.allowed_methods == ("GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE")
    assert api.cached_methods == ("GET", "HEAD")
    assert api.cache_policy == "CachingDisabled"
    assert api.association(EventType.ORIGIN_REQUEST) == FunctionAssociation(
        function="sign-request", include_body=True
    )
    assert api.association(EventType.VIEWER_REQUEST) is None
    assert backup.origin == "site-with-backup"
    assert default.association(EventType.VIEWER_REQUEST) == FunctionAssociation(
        function="rewrite-index"
    )
    assert isinstance(default.cache_policy, dict) and default.cache_policy["max_ttl"] == 31536000
    assert default.viewer_protocol_policy == "allow-all" and default.compress is False
    (page,) = dist.custom_error_responses
    assert (page.error_code, page.response_page_path, page.response_code) == (404, "/404.html", 404)


def test_json_loads_the_same_distribution_as_yaml(folder: Path) -> None:
    from_yaml = load_distribution(write(folder, EXAMPLE))
    from_json = load_distribution(write(folder, json.dumps(example()), "dist.json"))
    assert from_json.model_dump(exclude={"source"}) == from_yaml.model_dump(exclude={"source"})


def test_relative_paths_are_resolved_against_the_file_not_the_working_directory(
    folder: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    dist = load_distribution(write(folder, EXAMPLE))
    assert dist.functions["sign-request"].code == (folder / "functions/sign").resolve()


def test_missing_id_and_domain_are_generated_from_the_path_and_stable(folder: Path) -> None:
    data = example()
    del data["distribution"]
    first = load_distribution(write(folder, data))
    again = load_distribution(folder / "dist.yaml")
    other = load_distribution(write(folder, data, "other.yaml"))

    assert re.fullmatch(r"E[A-Z0-9]{13}", first.settings.id)
    assert re.fullmatch(r"d[a-z0-9]{13}\.cloudfront\.net", first.settings.domain_name)
    assert (again.settings.id, again.settings.domain_name) == (
        first.settings.id, first.settings.domain_name,
    )  # fmt: skip
    assert other.settings.id != first.settings.id
    assert first.settings.pop == "LAX1" and first.settings.aliases == ()


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


def test_a_loaded_distribution_is_frozen(folder: Path) -> None:
    dist = load_distribution(write(folder, EXAMPLE))
    with pytest.raises(pydantic.ValidationError):
        dist.behaviors[0].origin = "site"


def test_yaml_anchors_and_merge_keys_are_not_duplicates(folder: Path) -> None:
    text = EXAMPLE.replace(
        "  security-headers: {runtime: nodejs22.x, code: functions/rewrite-index, handler: "
        "headers.handler}",
        "  security-headers: &small {runtime: nodejs22.x, code: functions/rewrite-index, handler:"
        " headers.handler}\n  other: {<<: *small, handler: other.handler}",
    )
    dist = load_distribution(write(folder, text))
    assert dist.functions["other"].handler == "other.handler"
    assert dist.functions["other"].runtime == "nodejs22.x"


# --- the file itself ----------------------------------------------------------------------


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^nowhere/dist\.yaml: file not found$"):
        load_distribution("nowhere/dist.yaml")


def test_invalid_yaml_names_line_and_column(folder: Path) -> None:
    assert problem(folder, "origins:\n  site: {s3: site\nbehaviors: []\n") == (
        "not valid YAML at line 3, column 10: while parsing a flow mapping; expected ',' or '}', "
        "but got ':'"
    )


def test_control_characters_are_invalid_yaml(folder: Path) -> None:
    assert problem(folder, "origins:\n  site: {s3: \x07}\n") == (
        "not valid YAML at line 2, column 14: character #x0007 is not allowed"
    )


def test_several_yaml_documents_are_refused(folder: Path) -> None:
    assert problem(folder, EXAMPLE + "---\n" + EXAMPLE) == (
        "not valid YAML at line 47, column 1: expected a single document in the stream; "
        "but found another document"
    )


def test_invalid_json_names_line_and_column(folder: Path) -> None:
    assert problem(folder, '{"origins":\n  {"site": }}', "dist.json") == (
        "not valid JSON at line 2, column 12: Expecting value"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file is empty; it needs at least origins and behaviors"),
        ("- a\n- b\n", "the top level must be a mapping of distribution, origins, "
         "origin_groups, functions, behaviors, custom_error_responses; got a list"),
        ("orgins: {}\n", "orgins: unknown key; allowed: distribution, origins, origin_groups, "
         "functions, behaviors, custom_error_responses"),
    ],
)  # fmt: skip
def test_the_top_level_must_be_a_mapping_of_known_sections(
    folder: Path, text: str, expected: str
) -> None:
    assert problem(folder, text) == expected


def test_an_unknown_file_type_is_refused(folder: Path) -> None:
    assert problem(folder, EXAMPLE, "dist.txt") == (
        "unknown file type '.txt'; use .yaml, .yml or .json"
    )


def test_an_unknown_nested_key_is_named_with_the_allowed_ones(folder: Path) -> None:
    data = example()
    data["behaviors"][1]["orign"] = "site"
    assert problem(folder, data) == (
        "behaviors[1].orign: unknown key; allowed keys: path_pattern, origin, "
        "viewer_protocol_policy, allowed_methods, cached_methods, compress, cache_policy, "
        "origin_request_policy, functions"
    )


def test_duplicate_function_names_are_refused_with_both_lines(folder: Path) -> None:
    text = EXAMPLE.replace(
        "  security-headers:", "  rewrite-index: {runtime: nodejs20.x}\n  security-headers:"
    )
    assert problem(folder, text) == (
        "functions.rewrite-index: duplicate function name 'rewrite-index' at line 27 "
        "(first at line 19); each may appear only once"
    )


def test_duplicate_origin_ids_are_refused(folder: Path) -> None:
    text = EXAMPLE.replace("  api:\n", "  site: {s3: site}\n  api:\n", 1)
    assert problem(folder, text) == (
        "origins.site: duplicate origin id 'site' at line 10 (first at line 8); "
        "each may appear only once"
    )


def test_duplicate_keys_are_refused_anywhere_in_yaml(folder: Path) -> None:
    text = EXAMPLE.replace("    path: /v1\n", "    path: /v1\n    path: /v2\n")
    assert problem(folder, text) == (
        "origins.api.path: duplicate key 'path' at line 13 (first at line 12); "
        "each may appear only once"
    )


def test_duplicate_keys_are_refused_in_json(folder: Path) -> None:
    text = json.dumps(example()).replace('"memory": 1024', '"memory": 1024, "memory": 128')
    assert problem(folder, text, "dist.json") == (
        "functions.sign-request.memory: duplicate key; each may appear only once"
    )


def test_type_errors_are_translated_into_the_files_terms(folder: Path) -> None:
    text = EXAMPLE.replace("  site:\n    s3: site\n", "  site:\n    s3: site\n  1: {s3: site}\n")
    assert problem(folder, text) == "origins.1: this key must be a string"
    data = example()
    data["functions"]["sign-request"]["memory"] = "big"
    assert (
        problem(folder, data) == "functions.sign-request.memory: must be a whole number; got 'big'"
    )
    data = example()
    data["behaviors"][0]["compress"] = "yes please"
    assert problem(folder, data) == "behaviors[0].compress: must be true or false; got 'yes please'"
    data = example()
    data["behaviors"][0]["viewer_protocol_policy"] = "https"
    assert problem(folder, data) == (
        "behaviors[0].viewer_protocol_policy: must be 'allow-all', 'redirect-to-https' or "
        "'https-only'; got 'https'"
    )
    data = example()
    del data["behaviors"][0]["origin"]
    assert problem(folder, data) == "behaviors[0].origin: required key is missing"


# --- references between sections -----------------------------------------------------------


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


def test_an_unknown_trigger_is_named(folder: Path) -> None:
    data = example()
    data["behaviors"][2]["functions"]["viewer_request"] = "rewrite-index"
    assert problem(folder, data) == (
        "behaviors[2].functions.viewer_request: unknown trigger; allowed: viewer-request, "
        "origin-request, origin-response, viewer-response"
    )


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        ({"primary": "apx", "secondary": "site", "status_codes": [500]},
         "origin_groups.g.primary: unknown origin 'apx'; known origins: site, api"),
        ({"primary": "api", "secondary": "g2", "status_codes": [500]},
         "origin_groups.g.secondary: 'g2' is an origin group; a group's members must be origins"),
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
    data = example()
    data["origin_groups"] = {
        "g": group, "g2": {"primary": "api", "secondary": "site", "status_codes": [404]}
    }  # fmt: skip
    assert problem(folder, data) == expected


def test_an_origin_group_cannot_reuse_an_origin_id(folder: Path) -> None:
    data = example()
    data["origin_groups"] = {"site": {"primary": "api", "secondary": "site", "status_codes": [500]}}
    assert problem(folder, data) == (
        "origin_groups.site: 'site' is also an origin id; ids must be unique"
    )


# --- functions ------------------------------------------------------------------------------


def function_problem(folder: Path, **changes: Any) -> str:
    data = example()
    data["functions"]["sign-request"].update(changes)
    return problem(folder, data)


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
        ({"memory": 256.5}, "memory: must be a whole number; got 256.5"),
        ({"timeout": 0}, "timeout: timeout must be 1-30 s; got 0 s"),
        ({"timeout": 31}, "timeout: timeout must be 1-30 s; got 31 s"),
        ({"concurrency": 0}, "concurrency: concurrency must be 1-1000; got 0"),
        ({"name": "other"}, "name: the function's name is its key 'sign-request'; remove name"),
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


# --- behaviors ------------------------------------------------------------------------------


def behavior_problem(folder: Path, index: int = 0, **changes: Any) -> str:
    data = example()
    data["behaviors"][index].update(changes)
    return problem(folder, data)


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


def test_cached_methods_must_be_allowed(folder: Path) -> None:
    assert behavior_problem(folder, 2, cached_methods=["GET", "HEAD", "OPTIONS"]) == (
        "behaviors[2].cached_methods: cached methods GET,HEAD,OPTIONS must be among the allowed "
        "methods GET,HEAD"
    )


def test_a_policy_is_a_name_or_a_mapping(folder: Path) -> None:
    assert behavior_problem(folder, cache_policy=["CachingDisabled"]) == (
        "behaviors[0].cache_policy: must be a managed policy name or an inline policy mapping"
    )


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


# --- origins --------------------------------------------------------------------------------


def origin_problem(folder: Path, origin: dict[str, Any]) -> str:
    data = example()
    data["origins"]["api"] = origin
    return problem(folder, data)


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ({"s3": "site", "url": "http://127.0.0.1:9000"}, "api: set exactly one of s3 (a local "
         "folder) or url (an HTTP origin); both are set"),
        ({"path": "/v1"}, "api: set exactly one of s3 (a local folder) or url (an HTTP origin); "
         "neither is set"),
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


# --- custom error responses, distribution settings -------------------------------------------


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
        ({"pops": "LAX1"}, "pops: unknown key; allowed keys: id, domain_name, aliases, pop, "
         "default_root_object"),
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


# --- several files, and models built in code -------------------------------------------------


def test_several_distributions_load_in_order(folder: Path) -> None:
    data = example()
    del data["distribution"]
    paths = [write(folder, data, "a.yaml"), write(folder, data, "b.yaml")]
    first, second = load_distributions(paths)
    assert (first.source.name, second.source.name) == ("a.yaml", "b.yaml")
    assert first.settings.id != second.settings.id


def test_several_distributions_cannot_share_an_id_or_a_host_name(folder: Path) -> None:
    a = write(folder, example(), "a.yaml")
    data = example()
    data["distribution"]["id"] = "EOTHER"
    data["distribution"]["domain_name"] = "dother.cloudfront.net"
    b = write(folder, data, "b.yaml")
    with pytest.raises(ConfigError) as caught:
        load_distributions([a, b])
    assert str(caught.value) == (
        f"{b}: distribution.aliases[0]: 'www.example.test' is also used by {a}; each "
        "distribution needs its own"
    )
    with pytest.raises(ConfigError, match=r"distribution\.id: 'EDFDVBD6EXAMPLE' is also used"):
        load_distributions([a, a])


def test_models_built_in_code_are_held_to_the_same_rules(folder: Path) -> None:
    data = example()
    data["behaviors"][0]["origin"] = "nowhere"
    with pytest.raises(pydantic.ValidationError, match="unknown origin 'nowhere'"):
        Distribution.model_validate(
            {**data, "source": folder / "code.yaml"}, context={"base_dir": folder}
        )
