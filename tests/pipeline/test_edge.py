"""Edge.dispatch in process: ordering, failover, CloudFront's refusals and headers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edgesim.config import BehaviorConfig, Distribution, load_distribution
from edgesim.http import EdgeRequest, Headers
from edgesim.pages import XCache
from edgesim.pipeline import Edge, function_specs
from edgesim.pipeline.cache_stage import Fetched
from edgesim.trace import BehaviorOutcome, CacheOutcome, OriginOutcome, Stage, Trace
from tests.e2e.conftest import FUNCTIONS, Origin, start_origin


async def _edge(tmp_path: Path, text: str) -> Edge:
    path = tmp_path / "d.yaml"
    path.write_text(text.replace("{functions}", str(FUNCTIONS)))
    return Edge(load_distribution(path))


@pytest.fixture
async def plain(tmp_path: Path, origins: tuple[Origin, Origin]) -> AsyncIterator[Edge]:
    """An edge with one behavior in front of the first origin, no functions, no cache."""
    primary, _ = origins
    edge = await _edge(
        tmp_path,
        f"""
distribution: {{pop: NRT20-P1}}
origins: {{api: {{url: "{primary.url}"}}}}
behaviors: [{{path_pattern: "*", origin: api}}]
""",
    )
    yield edge
    await edge.aclose()


async def test_each_path_gets_its_behavior_past_the_paths_an_edge_remembers(
    tmp_path: Path, origins: tuple[Origin, Origin], monkeypatch: pytest.MonkeyPatch
) -> None:
    primary, _ = origins
    monkeypatch.setattr("edgesim.pipeline.edge._MATCHED_PATHS", 2)
    edge = await _edge(
        tmp_path,
        f"""
origins: {{api: {{url: "{primary.url}"}}}}
behaviors:
  - {{path_pattern: "/a/*", origin: api, cache_policy: CachingDisabled}}
  - {{path_pattern: "*", origin: api, cache_policy: CachingDisabled}}
""",
    )
    try:
        for path in ["/a/1", "/b", "/a/2", "/a/1", "/c", "/b", "/a/3"]:
            result = await edge.dispatch(EdgeRequest("GET", path))
            matched = result.trace.find(Stage.BEHAVIOR)
            assert matched is not None
            assert matched.detail == ("/a/*" if path.startswith("/a/") else "*"), path
    finally:
        await edge.aclose()


async def test_origin_group_fails_over_on_listed_status(
    tmp_path: Path, origins: tuple[Origin, Origin]
) -> None:
    primary, secondary = origins
    edge = await _edge(
        tmp_path,
        f"""
origins:
  primary: {{url: "{primary.url}"}}
  secondary: {{url: "{secondary.url}"}}
origin_groups:
  both: {{primary: primary, secondary: secondary, status_codes: [500, 503]}}
behaviors:
  - path_pattern: "*"
    origin: both
    allowed_methods: [GET, HEAD, OPTIONS, PUT, PATCH, POST, DELETE]
""",
    )
    try:
        failed_over = await edge.dispatch(EdgeRequest("GET", "/x", "status=503"))
        assert failed_over.trace.steps == [
            "behavior:matched",
            "cache:miss",
            "origin:503",
            "origin:503",
        ]
        assert len(primary.seen) == 1 and len(secondary.seen) == 1
        unlisted = await edge.dispatch(EdgeRequest("GET", "/x", "status=404"))
        assert unlisted.response.status == 404
        assert len(secondary.seen) == 1  # 404 is not a failover code
        post = await edge.dispatch(EdgeRequest("POST", "/x", "status=500", body=b"b"))
        assert post.response.status == 500
        assert len(secondary.seen) == 1  # only GET, HEAD and OPTIONS fail over
    finally:
        await edge.aclose()


async def test_origin_group_fails_over_when_primary_is_unreachable(
    tmp_path: Path, origins: tuple[Origin, Origin]
) -> None:
    primary, secondary = origins
    dead, runner = await start_origin()
    await runner.cleanup()
    edge = await _edge(
        tmp_path,
        f"""
origins:
  dead: {{url: "{dead.url}", connection_attempts: 1}}
  secondary: {{url: "{secondary.url}"}}
origin_groups:
  both: {{primary: dead, secondary: secondary, status_codes: [502]}}
behaviors: [{{path_pattern: "*", origin: both}}]
""",
    )
    try:
        result = await edge.dispatch(EdgeRequest("GET", "/x"))
        assert result.response.status == 200
        assert result.response.headers.get("X-Cache") == "Miss from cloudfront"
        assert result.trace.steps[-1] == "origin:200"
        assert len(secondary.seen) == 1
    finally:
        await edge.aclose()


async def test_https_policies(tmp_path: Path, origins: tuple[Origin, Origin]) -> None:
    primary, _ = origins
    edge = await _edge(
        tmp_path,
        f"""
origins: {{api: {{url: "{primary.url}"}}}}
behaviors:
  - {{path_pattern: /secure/*, origin: api, viewer_protocol_policy: https-only}}
  - {{path_pattern: /redirect/*, origin: api, viewer_protocol_policy: redirect-to-https,
      allowed_methods: [GET, HEAD, OPTIONS, PUT, PATCH, POST, DELETE]}}
  - {{path_pattern: "*", origin: api}}
""",
    )
    try:
        host = Headers([("Host", "www.example.test:8080")])
        secure = await edge.dispatch(EdgeRequest("GET", "/secure/a", headers=host))
        assert secure.response.status == 403
        # Every refusal leaves a record saying which one it was.
        assert secure.trace.steps == ["behavior:matched", "refusal:https-only"]
        get = await edge.dispatch(EdgeRequest("GET", "/redirect/a", "q=1", headers=host))
        assert get.response.status == 301
        assert get.response.headers.get("Location") == "https://www.example.test/redirect/a?q=1"
        assert get.response.headers.get("X-Cache") == "Redirect from cloudfront"
        assert get.trace.steps == ["behavior:matched", "redirect:to-https"]
        post = await edge.dispatch(EdgeRequest("POST", "/redirect/a", headers=host, body=b"x"))
        assert post.response.status == 307
        over_https = await edge.dispatch(
            EdgeRequest("GET", "/secure/a", headers=host, scheme="https")
        )
        assert over_https.response.status == 200
        assert primary.seen and primary.seen[-1].target == "/secure/a"
    finally:
        await edge.aclose()


async def test_get_with_body_is_refused(plain: Edge, origins: tuple[Origin, Origin]) -> None:
    result = await plain.dispatch(EdgeRequest("GET", "/a", body=b"surprise"))
    assert result.response.status == 403
    assert result.trace.steps == ["behavior:matched", "refusal:get-with-body"]
    assert origins[0].seen == []


async def test_records_carry_what_a_viewer_needs_to_draw_them(plain: Edge) -> None:
    result = await plain.dispatch(EdgeRequest("GET", "/a"))
    behavior, cache, origin = result.trace.records
    assert (behavior.outcome, behavior.detail) == (BehaviorOutcome.MATCHED, "*")
    assert cache.outcome is CacheOutcome.MISS
    assert (origin.outcome, origin.status) == (OriginOutcome.RESPONSE, 200)
    starts = [r.start_ms for r in result.trace.records]
    assert all(s is not None for s in starts)
    assert starts == sorted(starts)  # type: ignore[type-var]


async def test_every_response_gets_cloudfront_headers_once(plain: Edge) -> None:
    result = await plain.dispatch(EdgeRequest("GET", "/a"))
    headers = result.response.headers
    assert headers.get_all("X-Amz-Cf-Pop") == ["NRT20-P1"]
    assert headers.get_all("X-Amz-Cf-Id") == [result.request_id]
    assert len(headers.get_all("Via")) == 1
    assert headers.get("Connection") is None


def test_function_specs_follow_the_config(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    path = tmp_path / "d.yaml"
    path.write_text(
        f"""
origins: {{site: {{s3: "{site}"}}}}
functions:
  tag: {{runtime: python3.12, code: "{FUNCTIONS}/tag", handler: index.handler,
         memory: 512, timeout: 20, reserved_concurrency: 3}}
behaviors: [{{path_pattern: "*", origin: site, functions: {{origin-response: tag}}}}]
"""
    )
    (spec,) = function_specs(load_distribution(path))
    assert (spec.name, spec.memory_mb, spec.timeout_s) == ("tag", 512, 20)
    assert spec.reserved_concurrency == 3
    assert spec.code_dir == FUNCTIONS / "tag"


async def test_cloudfront_request_limits_give_413(
    plain: Edge, origins: tuple[Origin, Origin]
) -> None:
    at_limit = "/" + "a" * 8191
    # at the limit the request reaches the origin (whose own server refuses such a URL)
    assert (await plain.dispatch(EdgeRequest("GET", at_limit))).response.status != 413
    long_url = await plain.dispatch(EdgeRequest("GET", at_limit + "b"))
    assert long_url.response.status == 413
    big = Headers([(f"X-H{i}", "v" * 1000) for i in range(21)])
    assert (await plain.dispatch(EdgeRequest("GET", "/a", headers=big))).response.status == 413
    fits = Headers([(f"X-H{i}", "v" * 1000) for i in range(19)])
    assert (await plain.dispatch(EdgeRequest("GET", "/a", headers=fits))).response.status == 200
    assert len(origins[0].seen) == 1  # only the request within both limits reached the origin


async def test_a_defect_becomes_a_502_page_not_an_exception(
    plain: Edge, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a defect")

    monkeypatch.setattr(plain.cache, "serve", broken)
    result = await plain.dispatch(EdgeRequest("GET", "/a"))
    assert result.response.status == 502
    assert result.response.headers.get("X-Cache") == "Error from cloudfront"
    assert result.trace.steps[-1] == "internal-error:defect"


# -- the origin side the edge hands its cache stage ----------------------------------------


@pytest.fixture
async def side(tmp_path: Path, origins: tuple[Origin, Origin]) -> AsyncIterator[Edge]:
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
    built = Edge(load_distribution(path), edge_id="0" * 32)
    yield built
    await built.aclose()


def _behavior(distribution: Distribution, pattern: str) -> BehaviorConfig:
    return next(b for b in distribution.behaviors if b.path_pattern == pattern)


async def _origin_side(
    edge: Edge, pattern: str, request: EdgeRequest, trace: Trace, validators: Headers | None = None
) -> Fetched:
    """What the origin side the edge hands its cache stage answers for ``request``."""
    side = edge._origin_side(_behavior(edge.distribution, pattern), trace)
    fetched = await side(request, validators or Headers())
    await fetched.response.read()
    return fetched


async def test_origin_side_fails_over_and_labels(
    side: Edge, origins: tuple[Origin, Origin]
) -> None:
    primary, secondary = origins
    trace = Trace(request_id="r")
    fetched = await _origin_side(side, "/group/*", EdgeRequest("GET", "/group/status/503/x"), trace)
    assert (fetched.response.status, fetched.x_cache) == (503, XCache.ERROR)
    assert trace.steps == ["origin:503", "origin:503"]
    assert len(primary.seen) == len(secondary.seen) == 1
    ok = await _origin_side(side, "/group/*", EdgeRequest("GET", "/group/x"), Trace("r2"))
    assert (ok.response.status, ok.x_cache) == (200, XCache.MISS)


async def test_origin_side_generated_at_origin_request(side: Edge) -> None:
    request = EdgeRequest("GET", "/fn/x", "case=oreq-generated-200")
    fetched = await _origin_side(side, "/fn/*", request, Trace("r"))
    assert (fetched.response.body, fetched.x_cache) == (b"made at the edge", XCache.GENERATED)
    assert fetched.generated


async def test_origin_side_policy_forwarding_validators_and_vary(
    side: Edge, origins: tuple[Origin, Origin]
) -> None:
    primary, _ = origins
    request = EdgeRequest(
        "GET",
        "/cached/vary/Accept-Encoding%2C%20X-Other/x",
        "q=1",
        headers=Headers([("Cookie", "a=1"), ("X-Viewer", "v"), ("Accept-Encoding", "gzip, br")]),
    )
    validators = Headers([("If-None-Match", '"v1"')])
    fetched = await _origin_side(side, "/cached/*", request, Trace("r"), validators)
    seen = primary.seen[-1]
    assert seen.target == "/cached/vary/Accept-Encoding%2C%20X-Other/x"  # no query in the key
    assert seen.header("Cookie") is None and seen.header("X-Viewer") is None
    assert seen.header("Accept-Encoding") == "br,gzip"  # normalized (cloudfront-caching §2.4)
    assert seen.header("If-None-Match") == '"v1"'
    assert fetched.response.headers.get("Vary") == "Accept-Encoding"


async def test_origin_side_unreachable_origin_becomes_an_error_page(
    side: Edge, origins: tuple[Origin, Origin]
) -> None:
    dead, runner = await start_origin()
    await runner.cleanup()
    target = side.distribution.origins["primary"].target()
    side._targets["primary"] = type(target)(
        **{**target.__dict__, "port": dead.port, "connection_attempts": 1}
    )
    trace = Trace("r")
    fetched = await _origin_side(side, "*", EdgeRequest("GET", "/x"), trace)
    assert trace.steps == ["origin:error-502"] or trace.steps == ["origin:error-504"]
    assert fetched.x_cache == XCache.ERROR
    assert fetched.response.status in (502, 504)
    assert fetched.response.headers.get("Server") == "CloudFront"
