"""Hostile YAML distribution files: each gets one ``FILE: KEY: PROBLEM`` line, and fails fast.

Each case is a file a user could produce by mistake or on purpose; each must end in the one line
``edgesim validate`` prints, never a traceback, and without reading more than it must (the
timeouts are generous: they catch a hang, they do not measure speed).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesim.config.bounds import MAX_DEPTH
from edgesim.config.yaml_file import read_yaml
from edgesim.exceptions import ConfigError
from tests.config_helpers import problem

BASE = (
    "origins: {api: {url: 'http://127.0.0.1:9000'}}\n"
    "behaviors: [{path_pattern: '*', origin: api}]\n"
)
TOO_DEEP = "nested more than 100 levels deep (a distribution file needs fewer than ten)"


def _yaml_problem(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        read_yaml(text, "d.yaml")
    assert str(caught.value).startswith("d.yaml: ")
    return str(caught.value).removeprefix("d.yaml: ")


@pytest.mark.timeout(30)
def test_flow_nesting_fifty_thousand_deep(tmp_path: Path) -> None:
    deep = "origins: " + "[" * 50_000 + "]" * 50_000 + "\n"
    assert problem(tmp_path, deep).startswith(f"{TOO_DEEP} at line 1, column ")


@pytest.mark.timeout(30)
def test_block_nesting_two_thousand_deep(tmp_path: Path) -> None:
    # 2,000 levels: indentation grows with depth, so deeper would be a huge file
    deep = "origins:\n" + "".join("  " * (i + 1) + "-\n" for i in range(2_000))
    assert problem(tmp_path, deep) == f"{TOO_DEEP} at line 101, column 201"


def test_nesting_at_the_bound_is_read() -> None:
    # The root mapping is the first level, so 99 lists inside it make 100 levels.
    inner = MAX_DEPTH - 1
    assert read_yaml("a: " + "[" * inner + "]" * inner, "d.yaml") is not None
    assert _yaml_problem("a: " + "[" * (inner + 1) + "]" * (inner + 1)).startswith(TOO_DEEP)


@pytest.mark.parametrize(
    ("number", "column"),
    [("9" * 5000, 21), ("-" + "9" * 5000, 21), ("0x" + "f" * 5000, 21), ("1:" * 3000 + "1", 21)],
    ids=["decimal", "negative", "hex", "sexagesimal"],
)
def test_a_number_too_long_to_convert(tmp_path: Path, number: str, column: int) -> None:
    # Python refuses int() of more than 4,300 digits; a huge hex one cannot be printed either.
    text = BASE + f"distribution: {{pop: {number}}}\n"
    assert problem(tmp_path, text) == (
        f"a number of {len(number)} characters; numbers in a distribution file have at most 100 "
        f"at line 3, column {column}"
    )


def test_a_long_string_of_digits_is_not_a_number() -> None:
    assert read_yaml(f"a: '{'9' * 5000}'", "d.yaml") == {"a": "9" * 5000}


@pytest.mark.timeout(30)
def test_billion_laughs(tmp_path: Path) -> None:
    laughs = ["  a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    laughs += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    text = "distribution:\n" + "\n".join(laughs) + "\n" + BASE
    assert problem(tmp_path, text) == (
        "more than 100000 values (an alias counts as the values it names); a distribution file "
        "needs far fewer at line 6, column 47"
    )


def test_an_alias_inside_its_own_anchor(tmp_path: Path) -> None:
    text = BASE + "distribution: &d {aliases: [*d]}\n"
    assert problem(tmp_path, text) == (
        "an alias inside the value it names (a cycle) at line 3, column 29"
    )


def test_aliases_within_the_bound_still_work() -> None:
    text = (
        "origins: {api: &o {url: 'http://127.0.0.1:9000'}, api2: *o}\n"
        "behaviors: [{path_pattern: '*', origin: api}]\n"
    )
    assert read_yaml(text, "d.yaml")["origins"]["api2"] == {"url": "http://127.0.0.1:9000"}


@pytest.mark.timeout(60)
def test_one_point_two_million_behaviors(tmp_path: Path) -> None:
    # 4.8 MB, under the size bound: the count stops at the 76th behavior.
    text = (
        "origins: {api: {url: 'http://127.0.0.1:9000'}}\nbehaviors: [" + "{}, " * 1_200_000 + "]\n"
    )
    assert problem(tmp_path, text) == (
        "behaviors: CloudFront allows at most 75 behaviors; got more than 75 at line 2, column 313"
    )


@pytest.mark.parametrize(
    ("section", "entry", "quota"),
    [
        ("origins", "o{i}: {{url: 'http://h'}}", 100),
        ("functions", "f{i}: {{}}", 100),
        ("origin_groups", "g{i}: {{}}", 10),
    ],
)
def test_sections_are_counted_while_read(section: str, entry: str, quota: int) -> None:
    entries = ", ".join(entry.format(i=i) for i in range(quota + 1))
    with pytest.raises(ConfigError) as caught:
        read_yaml(f"{section}: {{{entries}}}\n", "d.yaml")
    assert caught.value.key == section
    name = section.replace("_", " ")
    assert caught.value.problem.startswith(
        f"CloudFront allows at most {quota} {name}; got more than {quota} at line 1"
    )


def test_a_section_at_its_quota_is_read() -> None:
    entries = ", ".join(f"o{i}: {{url: 'http://h'}}" for i in range(100))
    assert len(read_yaml(f"origins: {{{entries}}}\n", "d.yaml")["origins"]) == 100


def test_control_character_from_libyaml_or_pyyaml(tmp_path: Path) -> None:
    assert problem(tmp_path, BASE + "# \x01\n") == (
        "not valid YAML at line 3, column 3: character #x0001 is not allowed"
    )
