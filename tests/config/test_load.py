"""Distribution files: the DESIGN.md format loads, and every mistake gets one clear message.

These tests cover the loader (:mod:`edgesim.config.load`): reading YAML and JSON, the file's own
mistakes, pydantic's errors put in the file's terms, and several files at once. CloudFront's
rules for values and references are tested in ``tests/test_config_rules.py``, the models in
``tests/test_config_models.py``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pydantic
import pytest

from edgesim.config import (
    Distribution,
    FunctionAssociation,
    load_distribution,
    load_distributions,
)
from edgesim.exceptions import ConfigError
from edgesim.types import EventType
from tests.config_helpers import (
    EXAMPLE,
    example,
    example_folders,
    function_problem,
    problem,
    write,
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return example_folders(tmp_path)


# --- what loads -------------------------------------------------------------------------------


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
    assert (fn.name, fn.runtime, fn.handler, fn.memory, fn.timeout) == (
        "rewrite-index", "nodejs20.x", "index.handler", 128, 5,
    )  # fmt: skip
    assert fn.reserved_concurrency is None  # unreserved unless the file reserves some
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


# --- the file itself --------------------------------------------------------------------------


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^nowhere/dist\.yaml: file not found$"):
        load_distribution("nowhere/dist.yaml")


def test_invalid_yaml_names_line_and_column(folder: Path) -> None:
    # libyaml and PyYAML's own parser word the problem differently
    message = problem(folder, "origins:\n  site: {s3: site\nbehaviors: []\n")
    assert message.startswith("not valid YAML at line 3, column 10: while parsing a flow mapping; ")
    assert "expected ',' or '}'" in message


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


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"memory": 256.5}, "memory: must be a whole number; got 256.5"),
        ({"name": "other"}, "name: the function's name is its key 'sign-request'; remove name"),
    ],
)  # fmt: skip
def test_function_settings_are_read_in_the_files_terms(
    folder: Path, changes: dict[str, Any], expected: str
) -> None:
    assert function_problem(folder, **changes) == f"functions.sign-request.{expected}"


# --- several files, and models built in code --------------------------------------------------


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
