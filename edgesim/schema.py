"""The JSON Schema of a distribution file, for editors: completion and a check of every key.

It is generated from the pydantic models that load the file (:mod:`edgesim.config`), then
reshaped where the file and the models differ: the file's ``distribution:`` section is the
models' ``settings``, origins and functions are named by their keys (no ``id`` or ``name``
inside), a trigger may name its function as a plain string, and ``id`` and ``domain_name`` may
be left out. The package ships the result as ``distribution.schema.json`` (a test keeps it equal
to what the models generate); ``edgesim schema`` prints it, and a YAML file points an editor at
it with ``# yaml-language-server: $schema=PATH``. The schema checks keys, types and closed sets
of values; the loader still checks everything else (``edgesim validate``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from edgesim.cache.policies import MANAGED_CACHE_POLICIES, MANAGED_ORIGIN_REQUEST_POLICIES
from edgesim.config import RUNTIMES, Distribution
from edgesim.quotas import function_memory_mb, function_timeout_s

__all__ = ["SCHEMA_FILE", "distribution_schema", "schema_comment", "schema_text"]

SCHEMA_FILE = Path(__file__).with_name("distribution.schema.json")
"""The generated schema, shipped in the package."""

_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_NAMED_BY_KEY = {"FunctionConfig": "name", "OriginConfig": "id", "OriginGroupConfig": "id"}
_ROLE = re.compile(r":\w+:`~?([^`]+)`")


def distribution_schema() -> dict[str, Any]:
    """The schema of one distribution file (YAML or JSON), as a JSON-ready dict."""
    schema = Distribution.model_json_schema(mode="validation")
    defs: dict[str, Any] = schema["$defs"]
    properties = schema["properties"]
    properties.pop("source")
    settings = properties.pop("settings")
    properties = {"distribution": settings, **properties}
    schema["properties"] = properties
    schema["required"] = [k for k in schema["required"] if k not in ("settings", "source")]
    defs["DistributionSettings"]["required"] = []  # derived from the file's path when absent
    for model, key in _NAMED_BY_KEY.items():
        defs[model]["properties"].pop(key)
        defs[model]["required"] = [k for k in defs[model]["required"] if k != key]
    function = defs["FunctionConfig"]["properties"]
    function["runtime"]["enum"] = list(RUNTIMES)
    function["memory"].update(zip(("minimum", "maximum"), function_memory_mb(), strict=True))
    function["timeout"].update(zip(("minimum", "maximum"), function_timeout_s(), strict=True))
    behavior = defs["BehaviorConfig"]["properties"]
    behavior["functions"]["additionalProperties"] = {
        "anyOf": [
            {"type": "string", "description": "the function's name"},
            {"$ref": "#/$defs/FunctionAssociation"},
        ]
    }
    for key, managed in (
        ("cache_policy", MANAGED_CACHE_POLICIES),
        ("origin_request_policy", MANAGED_ORIGIN_REQUEST_POLICIES),
    ):
        behavior[key]["anyOf"] = [
            {"enum": sorted(managed), "description": "a managed policy's name"},
            {"type": "string", "description": "a managed policy's id"},
            {"type": "object", "description": "an inline policy"},
            {"type": "null"},
        ]
    _clean_descriptions(schema)
    return {
        "$schema": _DIALECT,
        "title": "edgesim distribution file",
        "description": "One CloudFront distribution and its Lambda@Edge functions, for edgesim "
        "(docs/configuration.md). Relative paths are taken from the file's folder.",
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
    }


def schema_text() -> str:
    """:func:`distribution_schema` as the shipped file holds it."""
    return json.dumps(distribution_schema(), indent=2, ensure_ascii=False) + "\n"


def schema_comment(schema_path: str) -> str:
    """The first line of a distribution file that points YAML editors at the schema."""
    return f"# yaml-language-server: $schema={schema_path}"


def _clean_descriptions(node: object) -> None:
    """Docstrings are reStructuredText; editors show descriptions as plain text or Markdown."""
    if isinstance(node, dict):
        text = node.get("description")
        if isinstance(text, str):
            text = _ROLE.sub(lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", text)
            node["description"] = text.replace("``", "`")
        for value in node.values():
            _clean_descriptions(value)
    elif isinstance(node, list):
        for value in node:
            _clean_descriptions(value)
