"""Reading a distribution file into plain data, within :mod:`edgesim.config.bounds`.

The file's size is checked before it is read, and no more than the limit is ever read (a device
or a pipe reports no size). YAML is read by :mod:`edgesim.config.yaml_file`. JSON is read here:
before the parser runs, its commas and opening brackets are counted (each value but the first
follows one), a count made at C speed that keeps a file of millions of tiny values from being
built at all; Python's parser recurses once per level, so a file nested thousands deep ends in
its recursion error, reported as the depth bound; duplicate keys, which ``json`` would quietly
resolve to the last, are refused.
"""

from __future__ import annotations

import json
import re
import stat
from collections import deque
from pathlib import Path
from typing import Any

from edgesim.config.bounds import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NUMBER_CHARS,
    MAX_VALUES,
    key_path,
    long_number,
    too_big,
    too_deep,
    too_many_values,
)
from edgesim.config.yaml_file import read_yaml
from edgesim.exceptions import ConfigError

__all__ = ["read_data"]

_LONG_NUMBER = re.compile(rf"-?[0-9]{{{MAX_NUMBER_CHARS + 1},}}")


def read_data(source: Path, file: str) -> Any:
    """The parsed content of a ``.yaml``, ``.yml`` or ``.json`` distribution file.

    ``file`` is the path as the user gave it, for messages. Raises :class:`ConfigError` for a
    file that cannot be read, is not UTF-8 text, does not parse, or passes a bound.
    """
    suffix = source.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise ConfigError(file, "", f"unknown file type {suffix!r}; use .yaml, .yml or .json")
    text = _read_text(source, file)
    if suffix == ".json":
        return _read_json(text, file)
    return read_yaml(text, file)


def _read_text(source: Path, file: str) -> str:
    try:
        info = source.stat()
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError(file, "", "is a folder; a distribution file is needed")
        if info.st_size > MAX_FILE_BYTES:
            raise ConfigError(file, "", too_big(info.st_size))
        with source.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(file, "", "file not found") from None
    except IsADirectoryError:
        raise ConfigError(file, "", "is a folder; a distribution file is needed") from None
    except OSError as error:
        raise ConfigError(file, "", f"cannot be read: {error.strerror or error}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(file, "", too_big(None))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ConfigError(
            file, "", f"not UTF-8 text: byte 0x{data[error.start]:02x} at line {line}"
        ) from None


class _JsonObject(dict[str, Any]):
    duplicate: str | None = None


def _json_object(pairs: list[tuple[str, Any]]) -> _JsonObject:
    obj = _JsonObject()
    for key, value in pairs:
        if key in obj and obj.duplicate is None:
            obj.duplicate = key
        obj[key] = value
    return obj


class _LongNumber(Exception):
    """A number too long to convert; raised from inside ``json``'s parser."""


def _json_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _LongNumber(long_number(len(text)))
    return int(text)


def _read_json(text: str, file: str) -> Any:
    # Commas and brackets inside strings count too: an upper bound, far above a real file.
    if text.count(",") + text.count("[") + text.count("{") > MAX_VALUES:
        raise ConfigError(file, "", too_many_values("values, commas and brackets"))
    try:
        data = json.loads(text, object_pairs_hook=_json_object, parse_int=_json_int)
    except json.JSONDecodeError as error:
        raise ConfigError(
            file, "", f"not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    except RecursionError:
        raise ConfigError(file, "", too_deep()) from None
    except _LongNumber as refused:
        found = _LONG_NUMBER.search(text)
        where = "" if found is None else _at(text, found.start())
        raise ConfigError(file, "", f"{refused}{where}") from None
    _check_tree(data, file)
    return data


def _at(text: str, position: int) -> str:
    line = text.count("\n", 0, position) + 1
    column = position - text.rfind("\n", 0, position)
    return f" at line {line}, column {column}"


def _check_tree(data: Any, file: str) -> None:
    """Duplicate keys and depth, breadth first, so the first problem found is the shallowest."""
    pending: deque[tuple[tuple[str | int, ...], Any]] = deque([((), data)])
    while pending:
        at, value = pending.popleft()
        if len(at) >= MAX_DEPTH and isinstance(value, dict | list):
            # The section it starts in is enough to find it; the whole path would be very long.
            raise ConfigError(file, key_path(at[:2]), too_deep())
        if isinstance(value, _JsonObject):
            if value.duplicate is not None:
                raise ConfigError(
                    file,
                    key_path((*at, value.duplicate)),
                    "duplicate key; each may appear only once",
                )
            pending.extend(((*at, k), v) for k, v in value.items())
        elif isinstance(value, list):
            pending.extend(((*at, i), v) for i, v in enumerate(value))
