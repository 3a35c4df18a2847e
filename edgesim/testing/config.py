"""The distribution a test hands the ``edge`` factory: a file, plain data, or a loaded model,
with some origins swapped for test origins.

In-memory distributions get exactly a file's checks and errors
(:func:`edgesim.config.load_distribution_data`); their relative paths (``code``, ``s3``) are
resolved against ``base_dir`` (the test file's folder under the pytest plugin). Left without a
``distribution`` section, they take the id and domain of AWS's example distribution, the ones
:mod:`edgesim.testing.events` uses, so an event built there matches the edge's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edgesim.config import Distribution, OriginConfig, load_distribution, load_distribution_data
from edgesim.testing.events import DEFAULT_DISTRIBUTION_ID, DEFAULT_DOMAIN_NAME
from edgesim.testing.origin import RecordingOrigin

__all__ = ["ConfigInput", "OriginsInput", "resolve_distribution"]

ConfigInput = str | Path | Mapping[str, Any] | Distribution
"""A distribution file's path, its content as plain data, or a loaded :class:`Distribution`."""

OriginsInput = Mapping[str, RecordingOrigin | str] | Sequence[RecordingOrigin] | None
"""Origins to replace, by origin id: a mapping to a test origin or a URL, or test origins that
replace the origin of their own ``name``."""

IN_MEMORY = "in-memory distribution"
# What an origin keeps when a test origin stands in for it: how CloudFront talks to it.
_KEPT = (
    "path",
    "custom_headers",
    "read_timeout",
    "keepalive_timeout",
    "connection_attempts",
    "connection_timeout",
)


def resolve_distribution(
    config: ConfigInput, *, origins: OriginsInput = None, base_dir: Path | None = None
) -> Distribution:
    """The :class:`Distribution` for ``config``, with ``origins`` swapped in.

    Raises :class:`~edgesim.exceptions.ConfigError` for a distribution CloudFront would refuse
    and :class:`TypeError` for a ``config`` of another type.
    """
    base = (base_dir or Path.cwd()).resolve()
    if isinstance(config, Distribution):
        distribution = config
    elif isinstance(config, str | Path):
        path = Path(config).expanduser()
        distribution = load_distribution(path if path.is_absolute() else base / path)
    elif isinstance(config, Mapping):
        distribution = load_distribution_data(
            _plain(config), name=IN_MEMORY, source=base / IN_MEMORY, base_dir=base
        )
    else:
        raise TypeError(
            "config must be a distribution file path, a dict or a Distribution, got "
            f"{type(config).__name__}"
        )
    return _with_origins(distribution, _replacements(origins))


def _plain(config: Mapping[str, Any]) -> dict[str, Any]:
    """Plain data: test origins become their ``{url: ...}`` entries; the example ids fill in."""
    data = dict(config)
    section = data.get("origins")
    if isinstance(section, Mapping):
        data["origins"] = {
            key: value.config() if isinstance(value, RecordingOrigin) else value
            for key, value in section.items()
        }
    settings = data.get("distribution")
    if settings is None:
        settings = {}
    if isinstance(settings, Mapping) and "id" not in settings and "domain_name" not in settings:
        data["distribution"] = {
            "id": DEFAULT_DISTRIBUTION_ID,
            "domain_name": DEFAULT_DOMAIN_NAME,
            **settings,
        }
    return data


def _replacements(origins: OriginsInput) -> dict[str, str]:
    if origins is None:
        return {}
    if isinstance(origins, Mapping):
        out: dict[str, str] = {}
        for key, value in origins.items():
            if isinstance(value, RecordingOrigin):
                out[key] = value.url
            elif isinstance(value, str):
                out[key] = value
            else:
                raise TypeError(
                    f"origins[{key!r}] must be a RecordingOrigin or a URL, got "
                    f"{type(value).__name__}"
                )
        return out
    out = {}
    for value in origins:
        if not isinstance(value, RecordingOrigin):
            raise TypeError(
                f"origins must list RecordingOrigin objects, got {type(value).__name__}"
            )
        out[value.name] = value.url
    return out


def _with_origins(distribution: Distribution, urls: dict[str, str]) -> Distribution:
    if not urls:
        return distribution
    origins = dict(distribution.origins)
    for origin_id, url in urls.items():
        data: dict[str, Any] = {"id": origin_id, "url": url}
        old = origins.get(origin_id)
        if old is not None:
            data.update({key: getattr(old, key) for key in _KEPT})
            if old.url is not None and old.domain_name is not None:
                data["domain_name"] = old.domain_name
        origins[origin_id] = OriginConfig.model_validate(data)
    return distribution.model_copy(update={"origins": origins})
