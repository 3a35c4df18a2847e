"""The bounds on a distribution file, and the section quotas counted before models are built.

Quotas: behaviors 75, origins 100, origin groups 10 (cloudfront-caching.md §5 and its quota
tables); 100 Lambda@Edge functions per distribution (lambda-edge.md §3.6); one custom error
response per error code CloudFront lets a distribution customise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edgesim.config.bounds import SECTION_QUOTAS, check_section_sizes, key_path
from edgesim.exceptions import ConfigError
from tests.config_helpers import problem

QUOTAS = {
    "behaviors": 75,
    "origins": 100,
    "origin_groups": 10,
    "functions": 100,
    "custom_error_responses": 11,
}


def test_the_quotas_are_cloudfronts() -> None:
    assert dict(SECTION_QUOTAS) == QUOTAS


def _entries(section: str, count: int) -> Any:
    if section in ("behaviors", "custom_error_responses"):
        return [{}] * count
    return {f"n{i}": {} for i in range(count)}


@pytest.mark.parametrize(("section", "quota"), QUOTAS.items())
def test_a_section_at_its_quota_passes(section: str, quota: int) -> None:
    check_section_sizes({section: _entries(section, quota)}, "d.yaml")


@pytest.mark.parametrize(("section", "quota"), QUOTAS.items())
def test_a_section_over_its_quota_is_refused(section: str, quota: int) -> None:
    with pytest.raises(ConfigError) as caught:
        check_section_sizes({section: _entries(section, quota + 1)}, "d.yaml")
    name = section.replace("_", " ")
    assert str(caught.value) == (
        f"d.yaml: {section}: CloudFront allows at most {quota} {name}; got {quota + 1}"
    )


def test_sections_of_the_wrong_type_are_left_to_the_models() -> None:
    check_section_sizes({"behaviors": "x" * 1000, "origins": None}, "d.yaml")


def test_an_alias_cannot_carry_behaviors_past_the_count(tmp_path: Path) -> None:
    # The list is counted where it is written (under distribution, no quota there), and the
    # behaviors section that names it is counted once the file is read.
    items = ", ".join(["{path_pattern: '*', origin: api}"] * 80)
    text = (
        f"distribution: {{x: &b [{items}]}}\n"
        "origins: {api: {url: 'http://127.0.0.1:9000'}}\n"
        "behaviors: *b\n"
    )
    assert problem(tmp_path, text) == "behaviors: CloudFront allows at most 75 behaviors; got 80"


def test_key_path() -> None:
    assert key_path(("behaviors", 1, "path_pattern")) == "behaviors[1].path_pattern"
    assert key_path(()) == ""
