"""Origin targets."""

import dataclasses

import pytest

from edgesim.origins.targets import OriginTarget


def test_target_is_frozen_with_cloudfront_defaults() -> None:
    target = OriginTarget(kind="custom", domain_name="origin.example.org")
    assert (target.port, target.protocol, target.read_timeout, target.keepalive_timeout) == (
        443,
        "https",
        30,
        5,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        target.port = 80  # type: ignore[misc]
