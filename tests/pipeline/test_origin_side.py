"""The origin side of a miss, directly: forwarding, origin-request, failover, Vary."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edgesim.config import BehaviorConfig, Distribution, load_distribution
from edgesim.http import EdgeRequest, Headers
from edgesim.lambda_edge.triggers import Triggers
from edgesim.origins.fetcher import OriginFetcher
from edgesim.pipeline import function_specs
from edgesim.pipeline.origin_side import ERROR, GENERATED, MISS, OriginSide
from edgesim.runtime import FunctionRuntime
from edgesim.trace import Trace
from tests.e2e.conftest import FUNCTIONS, Origin, start_origin


@pytest.fixture
async def side(
    tmp_path: Path, origins: tuple[Origin, Origin]
) -> AsyncIterator[tuple[OriginSide, Distribution]]:
    primary, secondary = origins
    path = tmp_path / "d.yaml"
    path.write_text(
        f"""
origins:
  primary: {{url: "{primary.url}"}}
  secondary: {{url: "{secondary.url}"}}
origin_groups:
  both: {{primary: primary, secondary: secondary, status_codes: [503]}}
functions:
  mutate: {{runtime: python3.12, code: "{FUNCTIONS}/mutate", handler: index.handler}}
behaviors:
  - {{path_pattern: /group/*, origin: both}}
  - {{path_pattern: /fn/*, origin: primary, functions: {{origin-request: mutate}}}}
  - {{path_pattern: /cached/*, origin: primary, cache_policy: CachingOptimized}}
  - {{path_pattern: "*", origin: primary}}
"""
    )
    distribution = load_distribution(path)
    runtime = FunctionRuntime(function_specs(distribution))
    fetcher = OriginFetcher()
    targets = {oid: o.target() for oid, o in distribution.origins.items()}
    triggers = Triggers(distribution, runtime, list(targets.values()))
    yield (
        OriginSide(
            distribution, triggers=triggers, fetcher=fetcher, targets=targets, edge_id="0" * 32
        ),
        distribution,
    )
    await runtime.aclose()
    await fetcher.aclose()


def _behavior(distribution: Distribution, pattern: str) -> BehaviorConfig:
    return next(b for b in distribution.behaviors if b.path_pattern == pattern)


async def test_failover_and_labels(
    side: tuple[OriginSide, Distribution], origins: tuple[Origin, Origin]
) -> None:
    origin_side, distribution = side
    primary, secondary = origins
    behavior = _behavior(distribution, "/group/*")
    trace = Trace(request_id="r")
    fetched = await origin_side.fetch(
        EdgeRequest("GET", "/group/status/503/x"), behavior, None, trace
    )
    assert (fetched.response.status, fetched.x_cache) == (503, ERROR)
    assert trace.steps == ["origin:503", "origin:503"]
    assert len(primary.seen) == len(secondary.seen) == 1
    ok = await origin_side.fetch(EdgeRequest("GET", "/group/x"), behavior, None, Trace("r2"))
    assert (ok.response.status, ok.x_cache) == (200, MISS)


async def test_generated_at_origin_request(side: tuple[OriginSide, Distribution]) -> None:
    origin_side, distribution = side
    fetched = await origin_side.fetch(
        EdgeRequest("GET", "/fn/x", "case=oreq-generated-200"),
        _behavior(distribution, "/fn/*"),
        None,
        Trace("r"),
    )
    assert (fetched.response.body, fetched.x_cache) == (b"made at the edge", GENERATED)


async def test_policy_forwarding_validators_and_vary(
    side: tuple[OriginSide, Distribution], origins: tuple[Origin, Origin]
) -> None:
    origin_side, distribution = side
    primary, _ = origins
    behavior = _behavior(distribution, "/cached/*")
    policy = behavior.cache_policy_resolved
    request = EdgeRequest(
        "GET",
        "/cached/vary/Accept-Encoding%2C%20X-Other/x",
        "q=1",
        headers=Headers([("Cookie", "a=1"), ("X-Viewer", "v"), ("Accept-Encoding", "gzip, br")]),
    )
    validators = Headers([("If-None-Match", '"v1"')])
    fetched = await origin_side.fetch(request, behavior, policy, Trace("r"), validators=validators)
    seen = primary.seen[-1]
    assert seen.target == "/cached/vary/Accept-Encoding%2C%20X-Other/x"  # no query in the key
    assert seen.header("Cookie") is None and seen.header("X-Viewer") is None
    assert seen.header("Accept-Encoding") == "br,gzip"  # normalized (cloudfront-caching §2.4)
    assert seen.header("If-None-Match") == '"v1"'
    assert fetched.response.headers.get("Vary") == "Accept-Encoding"


async def test_unreachable_origin_becomes_an_error_page(
    side: tuple[OriginSide, Distribution], origins: tuple[Origin, Origin]
) -> None:
    origin_side, distribution = side
    dead, runner = await start_origin()
    await runner.cleanup()
    target = distribution.origins["primary"].target()
    origin_side._targets["primary"] = type(target)(
        **{**target.__dict__, "port": dead.port, "connection_attempts": 1}
    )
    fetched = await origin_side.fetch(
        EdgeRequest("GET", "/x"), _behavior(distribution, "*"), None, Trace("r")
    )
    assert fetched.x_cache == ERROR
    assert fetched.response.status in (502, 504)
    assert fetched.response.headers.get("Server") == "CloudFront"
