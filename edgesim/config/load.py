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
the policy, e.g. ``behaviors[1].cache_policy.min_ttl``. The file is read into plain data by
:mod:`edgesim.config.reading`, within the bounds of :mod:`edgesim.config.bounds`, so a file far
beyond any real one is refused before a model is built.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import ErrorDetails

from edgesim.cache.policy_fields import shown
from edgesim.config.bounds import check_section_sizes, key_path
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
from edgesim.config.reading import read_data
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
    "load_distribution_data",
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
    data = read_data(source, file)
    if data is None:
        raise ConfigError(file, "", "the file is empty; it needs at least origins and behaviors")
    resolved = source.resolve()
    return load_distribution_data(data, name=file, source=resolved, base_dir=resolved.parent)


def load_distribution_data(
    data: object, *, name: str, source: Path, base_dir: Path
) -> Distribution:
    """Validate and freeze a distribution given as plain data (what a file holds once read).

    ``name`` is how errors name it; ``source`` becomes :attr:`Distribution.source` (and seeds
    the generated id and domain); relative paths are resolved against ``base_dir``. Raises
    :class:`ConfigError` as :func:`load_distribution` does.
    """
    file = name
    if not isinstance(data, dict):
        raise ConfigError(
            file,
            "",
            f"the top level must be a mapping of {', '.join(TOP_LEVEL_KEYS)}; got {shown(data)}",
        )
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(file, str(key), f"unknown key; allowed: {', '.join(TOP_LEVEL_KEYS)}")
    check_section_sizes(data, file)
    try:
        return Distribution.model_validate(
            {**data, "source": source}, context={"base_dir": base_dir}
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
    return ConfigError(file, key_path(loc), problem)
