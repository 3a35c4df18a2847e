"""The small value checks the rule modules share: JSON type names, whole numbers, controls."""

from __future__ import annotations

import pytest

from edgesim.exceptions import LambdaValidationError
from edgesim.lambda_edge.rules.common import (
    as_int,
    first_control_char,
    json_type,
    percent_encoded,
    reject,
    shown,
)


@pytest.mark.parametrize(
    ("value", "name"),
    [(None, "null"), (True, "boolean"), (3, "number"), (2.5, "number"), ("s", "string"),
     ([], "array"), ({}, "object")],
)  # fmt: skip
def test_json_type(value: object, name: str) -> None:
    assert json_type(value) == name


@pytest.mark.parametrize(
    ("value", "number"),
    [(200, 200), (200.0, 200), (200.5, None), (True, None), ("200", None), (float("inf"), None)],
)
def test_as_int(value: object, number: int | None) -> None:
    assert as_int(value) == number


@pytest.mark.parametrize(
    ("text", "allow_tab", "found"),
    [("plain é", False, None), ("a\tb", True, None), ("a\tb", False, "\t"), ("a\rb\n", True, "\r"),
     ("\x7f", True, "\x7f"), ("x\x00", True, "\x00")],
)  # fmt: skip
def test_first_control_char(text: str, allow_tab: bool, found: str | None) -> None:
    assert first_control_char(text, allow_tab=allow_tab) == found


def test_percent_encoded_names_characters_like_cloudfront() -> None:
    assert percent_encoded("\r") == "%0D"
    assert percent_encoded(" ") == "%20"
    assert percent_encoded("é") == "%C3%A9"


def test_shown_cuts_long_values() -> None:
    assert shown("abc") == '"abc"'
    assert shown("x" * 500) == '"' + "x" * 76 + "..."
    assert len(shown(list(range(1000)))) == 80


def test_reject_raises_the_validation_error() -> None:
    with pytest.raises(LambdaValidationError) as caught:
        reject("why")
    assert caught.value.reason == "why"
    assert caught.value.code == "LambdaValidationError"
