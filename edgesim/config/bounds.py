"""How big a distribution file may be before reading it stops: the bounds and their messages.

A distribution file is small: CloudFront allows 75 behaviors, 100 origins and 10 origin groups,
so even a file that uses every quota is a few hundred kilobytes and some thousands of values. A
file far beyond that is a mistake (the wrong file, a generator gone wrong) or an attack, and
reading it in full would cost minutes and gigabytes before the first quota said no. So reading
stops, with one ``FILE: KEY: PROBLEM`` line, at the first of:

- :data:`MAX_FILE_BYTES` of file, checked before the file is read;
- :data:`MAX_DEPTH` levels of nesting (Python's parsers recurse, and fail with a traceback, or
  crash, at some depth);
- :data:`MAX_VALUES` values, counting an alias as the values it stands for, so a YAML
  "billion laughs" is refused while it is being read;
- a section over its CloudFront quota (:data:`SECTION_QUOTAS`), counted while YAML is read and
  again before any model is built;
- a number of more than :data:`MAX_NUMBER_CHARS` characters (Python will not convert an integer
  of more than 4,300 digits, nor print one in a message).

The bounds are far above any real file, so only a broken or hostile one ever meets them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgesim.config.values import ERROR_CODES, MAX_BEHAVIORS, MAX_ORIGIN_GROUPS, MAX_ORIGINS
from edgesim.exceptions import ConfigError

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_FUNCTIONS",
    "MAX_NUMBER_CHARS",
    "MAX_VALUES",
    "SECTION_QUOTAS",
    "check_section_sizes",
    "key_path",
    "long_number",
    "over_quota",
    "too_big",
    "too_deep",
    "too_many_values",
]

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 100
MAX_VALUES = 100_000
MAX_NUMBER_CHARS = 100
# lambda-edge.md §3.6: 100 Lambda@Edge functions per distribution
MAX_FUNCTIONS = 100
# Each section of a distribution file and the most entries CloudFront allows in it; an error
# code may have one custom response, and only one.
SECTION_QUOTAS: Mapping[str, int] = {
    "behaviors": MAX_BEHAVIORS,
    "origins": MAX_ORIGINS,
    "origin_groups": MAX_ORIGIN_GROUPS,
    "functions": MAX_FUNCTIONS,
    "custom_error_responses": len(ERROR_CODES),
}


def check_section_sizes(data: Mapping[Any, Any], file: str) -> None:
    """Refuse a section with more entries than CloudFront allows, before models are built."""
    for section, quota in SECTION_QUOTAS.items():
        value = data.get(section)
        if isinstance(value, list | dict) and len(value) > quota:
            raise ConfigError(file, section, over_quota(section, quota, str(len(value))))


def over_quota(section: str, quota: int, got: str) -> str:
    """The problem of a section with ``got`` entries, over its ``quota``."""
    return f"CloudFront allows at most {quota} {section.replace('_', ' ')}; got {got}"


def too_big(size: int | None) -> str:
    """The problem of a file over :data:`MAX_FILE_BYTES` (``size`` None: not known in advance)."""
    what = f"{size} bytes" if size is not None else "larger than that"
    return (
        f"the file is {what}; a distribution file may be at most {MAX_FILE_BYTES} bytes "
        f"({MAX_FILE_BYTES // (1024 * 1024)} MiB)"
    )


def too_deep() -> str:
    """The problem of a file nested deeper than :data:`MAX_DEPTH`."""
    return f"nested more than {MAX_DEPTH} levels deep (a distribution file needs fewer than ten)"


def too_many_values(what: str = "values") -> str:
    """The problem of a file with more than :data:`MAX_VALUES` values (or ``what`` it counts)."""
    return f"more than {MAX_VALUES} {what}; a distribution file needs far fewer"


def long_number(length: int) -> str:
    """The problem of a number written with ``length`` characters."""
    return (
        f"a number of {length} characters; numbers in a distribution file have at most "
        f"{MAX_NUMBER_CHARS}"
    )


def key_path(parts: Sequence[str | int]) -> str:
    """``("behaviors", 1, "path_pattern")`` -> ``behaviors[1].path_pattern``."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
