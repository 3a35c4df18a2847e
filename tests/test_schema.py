"""The distribution file's JSON Schema: up to date with the models, true to the examples."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from edgesim.cli import main
from edgesim.schema import SCHEMA_FILE, distribution_schema, schema_comment, schema_text
from tests.config_helpers import EXAMPLE

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "distributions").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = distribution_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_shipped_schema_is_what_the_models_generate() -> None:
    # After changing edgesim/config/models.py: edgesim schema > edgesim/distribution.schema.json
    assert SCHEMA_FILE.read_text() == schema_text()


def test_edgesim_schema_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == distribution_schema()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_examples_point_at_the_schema_and_pass_it(
    path: Path, validator: jsonschema.protocols.Validator
) -> None:
    text = path.read_text()
    first = text.splitlines()[0]
    assert first == schema_comment("../edgesim/distribution.schema.json")
    assert (path.parent / first.split("=", 1)[1]).resolve() == SCHEMA_FILE
    validator.validate(yaml.safe_load(text))


def test_the_reference_example_passes(validator: jsonschema.protocols.Validator) -> None:
    validator.validate(yaml.safe_load(EXAMPLE))


def _errors(validator: jsonschema.protocols.Validator, data: dict[str, Any]) -> list[str]:
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)
    ]


@pytest.mark.parametrize(
    ("where", "key"),
    [
        ((), "behaviour"),
        (("distribution",), "domain"),
        (("functions", "rewrite-index"), "timeuot"),
        (("behaviors", 2), "cache_polcy"),
        (("origins", "api"), "custom_header"),
    ],
)
def test_a_typod_key_is_refused(
    validator: jsonschema.protocols.Validator, where: tuple[str | int, ...], key: str
) -> None:
    data = yaml.safe_load(EXAMPLE)
    node = data
    for step in where:
        node = node[step]
    node[key] = 1
    problems = _errors(validator, data)
    assert problems and all(key in p for p in problems), problems


def test_values_from_closed_sets_are_checked(validator: jsonschema.protocols.Validator) -> None:
    base = yaml.safe_load(EXAMPLE)
    for change in (
        lambda d: d["functions"]["rewrite-index"].update(runtime="nodejs8.10"),
        lambda d: d["functions"]["rewrite-index"].update(memory=20000),
        lambda d: d["behaviors"][0]["functions"].update({"viewer-reqest": "x"}),
        lambda d: d["behaviors"][0].update(viewer_protocol_policy="sometimes"),
    ):
        data = copy.deepcopy(base)
        change(data)
        assert _errors(validator, data)


def test_short_forms_and_left_out_keys_pass(validator: jsonschema.protocols.Validator) -> None:
    minimal = {
        "origins": {"site": {"s3": "site"}},
        "functions": {"f": {"runtime": "python3.12", "code": "f", "handler": "app.handler"}},
        "behaviors": [
            {
                "path_pattern": "*",
                "origin": "site",
                "cache_policy": "CachingOptimized",
                "functions": {"viewer-request": "f", "origin-request": {"function": "f"}},
            }
        ],
    }
    assert _errors(validator, minimal) == []
    assert _errors(validator, {"origins": {}}) == [": 'behaviors' is a required property"]
