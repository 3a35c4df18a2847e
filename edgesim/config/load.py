"""Distribution files: the whole :class:`Distribution` and loading it from YAML or JSON.

A distribution file is read once, validated completely and frozen. Every problem becomes one
:class:`~edgesim.exceptions.ConfigError` whose text names the file as the user gave it, the key
path in the file's own terms (``behaviors[1].path_pattern``) and what is allowed; pydantic's own
error text never reaches the user. The parts of a distribution (origins, functions, behaviors,
settings) are modelled in :mod:`edgesim.config.models`; CloudFront's rules for single values and
for how sections refer to each other (references, quotas per trigger, the default behavior) are
in :mod:`edgesim.config.values`, and :class:`Distribution` runs the latter once it is complete.
A behavior's cache and origin request policies are read and checked by :mod:`edgesim.cache.policies`
(the inline form by :mod:`edgesim.cache.policy_fields`); a problem there names its key path inside
the policy, e.g. ``behaviors[1].cache_policy.min_ttl``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import ErrorDetails

from edgesim.cache.policy_fields import shown
from edgesim.config.models import (
    BehaviorConfig,
    ConfigModel,
    CustomErrorResponse,
    DistributionSettings,
    FunctionAssociation,
    FunctionConfig,
    OriginConfig,
    OriginGroupConfig,
)
from edgesim.config.values import (
    FUNCTION_NAME,
    RUNTIMES,
    bad_function_name,
    check_references,
    invalid,
)
from edgesim.exceptions import ConfigError

__all__ = [
    "RUNTIMES",
    "BehaviorConfig",
    "CustomErrorResponse",
    "Distribution",
    "DistributionSettings",
    "FunctionAssociation",
    "FunctionConfig",
    "OriginConfig",
    "OriginGroupConfig",
    "load_distribution",
    "load_distributions",
]

TOP_LEVEL_KEYS = (
    *("distribution", "origins", "origin_groups"),
    *("functions", "behaviors", "custom_error_responses"),
)


class Distribution(ConfigModel):
    """One distribution file, validated and frozen.

    The file's ``distribution:`` section becomes :attr:`settings`; :attr:`source` is the file's
    resolved path. ``behaviors`` are in the file's order and the last one is the default (``*``).
    """

    settings: DistributionSettings
    origins: dict[str, OriginConfig]
    origin_groups: dict[str, OriginGroupConfig] = {}
    functions: dict[str, FunctionConfig] = {}
    behaviors: tuple[BehaviorConfig, ...]
    custom_error_responses: tuple[CustomErrorResponse, ...] = ()
    source: Path

    @model_validator(mode="before")
    @classmethod
    def _settings(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        if "distribution" in data:
            data["settings"] = data.pop("distribution")
        settings = data.get("settings")
        if settings is None:
            settings = {}
        if isinstance(settings, Mapping) and isinstance(data.get("source"), str | Path):
            generated_id, generated_domain = generated_ids(Path(data["source"]))
            settings = {"id": generated_id, "domain_name": generated_domain, **settings}
        data["settings"] = settings
        return data

    @field_validator("origins", "origin_groups", "functions", mode="before")
    @classmethod
    def _named_by_key(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name == "functions":
            return _keyed(value, "name", "function")
        return _keyed(value, "id", "origin" if info.field_name == "origins" else "origin group")

    @model_validator(mode="after")
    def _references(self) -> Distribution:
        check_references(self)
        return self


def generated_ids(source: Path) -> tuple[str, str]:
    """A distribution id and domain derived from the file's path, so a restart keeps them."""
    digest = hashlib.sha256(str(source.resolve()).encode()).digest()
    letters = base64.b32encode(digest).decode("ascii")  # A-Z and 2-7 only
    return "E" + letters[:13], "d" + letters[13:26].lower() + ".cloudfront.net"


def _keyed(value: Any, field: str, kind: str) -> Any:
    """Fill ``field`` of each entry from its key, which is where a file names it."""
    if not isinstance(value, Mapping):
        return value
    out: dict[Any, Any] = {}
    for key, entry in value.items():
        if kind == "function" and not FUNCTION_NAME.fullmatch(str(key)):
            raise invalid(bad_function_name(repr(str(key))), str(key))
        if isinstance(entry, Mapping):
            if field in entry and entry[field] != key:
                raise invalid(
                    f"the {kind}'s {field} is its key {str(key)!r}; remove {field}", str(key), field
                )
            entry = {**entry, field: key}
        elif isinstance(entry, ConfigModel) and getattr(entry, field) != key:
            raise invalid(f"{field} {getattr(entry, field)!r} differs from its key", str(key))
        out[key] = entry
    return out


# --- loading -------------------------------------------------------------------------------


def load_distribution(path: str | Path) -> Distribution:
    """Read, validate and freeze one distribution file (``.yaml``, ``.yml`` or ``.json``).

    Relative paths inside the file (``code``, ``s3``) are resolved against the file's folder.
    Raises :class:`ConfigError` naming the file, the key and the problem.
    """
    file = str(path)
    source = Path(path).expanduser()
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(file, "", "file not found") from None
    except IsADirectoryError:
        raise ConfigError(file, "", "is a folder; a distribution file is needed") from None
    except UnicodeDecodeError:
        raise ConfigError(file, "", "not UTF-8 text") from None
    except OSError as error:
        raise ConfigError(file, "", f"cannot be read: {error.strerror}") from None
    suffix = source.suffix.lower()
    if suffix == ".json":
        data = _read_json(text, file)
    elif suffix in (".yaml", ".yml"):
        data = _read_yaml(text, file)
    else:
        raise ConfigError(file, "", f"unknown file type {suffix!r}; use .yaml, .yml or .json")
    if data is None:
        raise ConfigError(file, "", "the file is empty; it needs at least origins and behaviors")
    if not isinstance(data, dict):
        raise ConfigError(
            file,
            "",
            f"the top level must be a mapping of {', '.join(TOP_LEVEL_KEYS)}; got {shown(data)}",
        )
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(file, str(key), f"unknown key; allowed: {', '.join(TOP_LEVEL_KEYS)}")
    resolved = source.resolve()
    try:
        return Distribution.model_validate(
            {**data, "source": resolved}, context={"base_dir": resolved.parent}
        )
    except ValidationError as error:
        raise _config_error(file, error.errors()[0]) from None


def load_distributions(paths: Sequence[str | Path]) -> list[Distribution]:
    """Load several distribution files, which must not share an id, a domain or an alias."""
    loaded: list[Distribution] = []
    owners: dict[tuple[str, str], str] = {}
    for path in paths:
        distribution = load_distribution(path)
        settings = distribution.settings
        names = [("id", settings.id), ("domain_name", settings.domain_name)]
        names += [(f"aliases[{i}]", alias) for i, alias in enumerate(settings.aliases)]
        for key, value in names:
            kind = "id" if key == "id" else "host"
            owner = owners.get((kind, value))
            if owner is not None:
                raise ConfigError(
                    str(path),
                    f"distribution.{key}",
                    f"{value!r} is also used by {owner}; each distribution needs its own",
                )
            owners[(kind, value)] = str(path)
        loaded.append(distribution)
    return loaded


def _read_yaml(text: str, file: str) -> Any:
    try:
        loader = yaml.SafeLoader(text)  # refuses non-printable characters right away
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _reject_duplicate_keys(node, (), file, set())
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = "; ".join(part for part in (error.context, error.problem) if part)
        raise ConfigError(file, "", f"not valid YAML{where}: {what}") from None
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        column = error.position - text.rfind("\n", 0, error.position)
        raise ConfigError(
            file,
            "",
            f"not valid YAML at line {line}, column {column}: character "
            f"#x{error.character:04x} is not allowed",
        ) from None
    except yaml.YAMLError as error:
        raise ConfigError(file, "", f"not valid YAML: {error}") from None


_NAMED_BY_KEY = {"functions": "function name", "origins": "origin id", "origin_groups": "group id"}


def _reject_duplicate_keys(
    node: yaml.Node, at: tuple[str | int, ...], file: str, visited: set[int]
) -> None:
    """YAML keeps the last of two equal keys silently; a distribution file must not."""
    if id(node) in visited:  # anchors can make the node graph cyclic
        return
    visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            if key_node.tag != "tag:yaml.org,2002:merge" and key != "?":
                line = key_node.start_mark.line + 1
                if key in first_line:
                    what = _NAMED_BY_KEY.get(str(at[0])) if len(at) == 1 else None
                    raise ConfigError(
                        file,
                        _key_path((*at, key)),
                        f"duplicate "
                        f"{what or 'key'} {key!r} at line {line} (first at line "
                        f"{first_line[key]}); each may appear only once",
                    )
                first_line[key] = line
            _reject_duplicate_keys(value_node, (*at, key), file, visited)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _reject_duplicate_keys(item, (*at, index), file, visited)


class _JsonObject(dict[str, Any]):
    duplicate: str | None = None


def _json_object(pairs: list[tuple[str, Any]]) -> _JsonObject:
    obj = _JsonObject()
    for key, value in pairs:
        if key in obj and obj.duplicate is None:
            obj.duplicate = key
        obj[key] = value
    return obj


def _read_json(text: str, file: str) -> Any:
    try:
        data = json.loads(text, object_pairs_hook=_json_object)
    except json.JSONDecodeError as error:
        raise ConfigError(
            file, "", f"not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    pending: list[tuple[tuple[str | int, ...], Any]] = [((), data)]
    while pending:
        at, value = pending.pop(0)
        if isinstance(value, _JsonObject):
            if value.duplicate is not None:
                raise ConfigError(
                    file,
                    _key_path((*at, value.duplicate)),
                    "duplicate key; each may appear only once",
                )
            pending += [((*at, k), v) for k, v in value.items()]
        elif isinstance(value, list):
            pending += [((*at, i), v) for i, v in enumerate(value)]
    return data


# --- pydantic errors in the file's terms ------------------------------------------------------

_TYPE_PROBLEMS = {
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "path_type": "must be a folder path",
}


def _config_error(file: str, error: ErrorDetails) -> ConfigError:
    raw = error["loc"]
    # A part followed by "[key]" is a mapping key, even when YAML read it as a number.
    loc: list[str | int] = [
        str(part) if raw[i + 1 : i + 2] == ("[key]",) else part
        for i, part in enumerate(raw)
        if part != "[key]"
    ]
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind == "edgesim":
        loc += ctx["at"]
        problem = str(ctx["problem"])
    elif kind == "missing":
        problem = "required key is missing"
    elif kind == "extra_forbidden":
        problem = "unknown key"
    else:
        if raw and raw[-1] == "[key]":
            problem = "this key must be a string"
        else:
            text = _TYPE_PROBLEMS.get(kind) or error["msg"].replace("Input should be", "must be")
            problem = f"{text}; got {shown(error['input'])}"
    if loc and loc[0] == "settings":
        loc[0] = "distribution"
    return ConfigError(file, _key_path(loc), problem)


def _key_path(parts: Sequence[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
