"""Message vocabulary and small value checks shared by the Lambda@Edge rule modules.

CloudFront reports a rejected result with one of a few fixed openings (seen on its 502 error
pages and in its validation logs). Every rule module builds its reasons from these openings and
adds the detail CloudFront leaves out (which field, which header, which limit), so a user reading
edgesim's error page can tell what to fix.
"""

from __future__ import annotations

import json
import re
from typing import NoReturn

from edgesim.exceptions import LambdaValidationError

__all__ = [
    "FAILED",
    "INVALID_HEADERS",
    "INVALID_JSON",
    "INVALID_ORIGIN",
    "as_int",
    "first_control_char",
    "json_type",
    "percent_encoded",
    "reject",
    "shown",
]

INVALID_JSON = "The Lambda function returned invalid JSON: "
FAILED = "The Lambda function result failed validation: "
INVALID_HEADERS = "The Lambda function returned an invalid entry in the headers object: "
INVALID_ORIGIN = "The Lambda function returned an invalid origin configuration: "

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_TAB = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def reject(reason: str) -> NoReturn:
    """Raise the validation error the pipeline turns into CloudFront's 502."""
    raise LambdaValidationError(reason)


def json_type(value: object) -> str:
    """The JSON name of a value's type, as a function author would recognise it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def as_int(value: object) -> int | None:
    """A JSON number holding a whole value, else None.

    Booleans are excluded (Python counts them as ints, JSON does not), and ``200.0`` counts,
    because a Python function may produce it where a Node.js one would serialise ``200``.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def first_control_char(text: str, *, allow_tab: bool) -> str | None:
    """The first control character (C0 or DEL) in ``text``, if any."""
    # One search in C: header values are checked once per line of every result.
    match = (_CONTROL_BUT_TAB if allow_tab else _CONTROL).search(text)
    return None if match is None else match.group()


def percent_encoded(char: str) -> str:
    """``'\\r'`` -> ``'%0D'``: how CloudFront names an offending character."""
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))


def shown(value: object, *, limit: int = 80) -> str:
    """A returned value as JSON text for a message, cut short so a huge body cannot flood it."""
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
