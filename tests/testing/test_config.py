from __future__ import annotations

from pathlib import Path

import pytest

from edgesim.config import load_distribution
from edgesim.exceptions import ConfigError
from edgesim.testing import RecordingOrigin, resolve_distribution
from edgesim.testing.events import DEFAULT_DISTRIBUTION_ID, DEFAULT_DOMAIN_NAME

EXAMPLE = Path(__file__).resolve().parents[2] / "distributions" / "example.yaml"
FUNCTION = {"runtime": "python3.12", "code": "functions/echo", "handler": "index.handler"}


def test_in_memory_distributions_resolve_paths_from_base_dir_and_take_the_example_ids() -> None:
    distribution = resolve_distribution(
        {
            "origins": {"site": {"url": "http://127.0.0.1:9000"}},
            "functions": {"echo": FUNCTION},
            "behaviors": [{"path_pattern": "*", "origin": "site"}],
        },
        base_dir=Path(__file__).parent,
    )
    assert distribution.settings.id == DEFAULT_DISTRIBUTION_ID
    assert distribution.settings.domain_name == DEFAULT_DOMAIN_NAME
    assert distribution.functions["echo"].code == Path(__file__).parent / "functions" / "echo"


async def test_a_recording_origin_stands_in_by_name_keeping_how_cloudfront_talks_to_it() -> None:
    async with RecordingOrigin("site") as origin:
        distribution = resolve_distribution(EXAMPLE, origins=[origin])
        behaviors = [{"path_pattern": "*", "origin": "site"}]
        inline = resolve_distribution({"origins": {"site": origin}, "behaviors": behaviors})
        url = origin.url
    site = distribution.origins["site"]
    assert (site.url, site.s3) == (url, None)
    assert inline.origins["site"].url == url
    assert distribution.settings.id == load_distribution(EXAMPLE).settings.id
    again = resolve_distribution(distribution, origins={"site": "http://127.0.0.1:9005"})
    assert again.origins["site"].url == "http://127.0.0.1:9005"


def test_mistakes_are_config_or_type_errors() -> None:
    with pytest.raises(ConfigError, match="in-memory distribution.*behaviors"):
        resolve_distribution({"origins": {"a": {"url": "http://127.0.0.1:9001"}}})
    with pytest.raises(TypeError, match="config must be"):
        resolve_distribution(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"origins\['site'\] must be"):
        resolve_distribution(EXAMPLE, origins={"site": 3})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="must list RecordingOrigin"):
        resolve_distribution(EXAMPLE, origins=["http://x"])  # type: ignore[list-item]
