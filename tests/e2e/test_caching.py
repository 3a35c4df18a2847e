"""CloudFront's cache through the real proxy, with a real origin that counts its requests.

Time is a fake clock the tests move; nothing sleeps to make an object expire.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from edgesim.cache.store import MemoryCacheStore
from edgesim.cli import main
from edgesim.frontdoors.admin import AdminServer
from tests import http_clients
from tests.e2e.conftest import FakeClock, MakeEdge, Origin, RunningEdge, serve_handler

CACHED = """
distribution: {{id: ECACHETEST0001}}
origins:
  api: {{url: "{origin}"}}
functions:
  tag: {{runtime: python3.12, code: "{{functions}}/tag", handler: index.handler}}
  hello: {{runtime: python3.12, code: "{{functions}}/../../../functions/api-hello",
           handler: app.handler, memory: 256, timeout: 10}}
  redirect: {{runtime: python3.12, code: "{{functions}}/../../../functions/redirect-legacy",
              handler: app.handler}}
custom_error_responses:
  - {{error_code: 404, error_caching_min_ttl: 30}}
behaviors:
  - path_pattern: /nocache/*
    origin: api
    cache_policy: CachingDisabled
  - path_pattern: /api/*
    origin: api
    cache_policy: CachingOptimized
    functions: {{origin-request: hello, viewer-response: tag}}
  - path_pattern: /old-blog/*
    origin: api
    cache_policy: CachingOptimized
    functions: {{viewer-request: redirect}}
  - path_pattern: /tagged/*
    origin: api
    cache_policy: CachingOptimized
    functions: {{origin-response: tag, viewer-response: tag}}
  - path_pattern: /options/*
    origin: api
    allowed_methods: [GET, HEAD, OPTIONS]
    cached_methods: [GET, HEAD, OPTIONS]
    cache_policy: CachingOptimized
  - path_pattern: /query/*
    origin: api
    cache_policy: {{min_ttl: 0, default_ttl: 60, max_ttl: 600, query_strings: all}}
  - path_pattern: "*"
    origin: api
    cache_policy: CachingOptimized
"""


async def _edge(
    make_edge: MakeEdge, origin: Origin, clock: FakeClock, store: MemoryCacheStore | None = None
) -> RunningEdge:
    return await make_edge(CACHED.format(origin=origin.url), clock=clock, store=store)


async def test_miss_then_hit_with_age(make_edge: MakeEdge, origin: Origin) -> None:
    clock = FakeClock()
    edge = await _edge(make_edge, origin, clock)
    first = await edge.client.get("/page.html")
    assert first.headers["x-cache"] == "Miss from cloudfront"
    assert "age" not in first.headers
    clock.advance(7)
    second = await edge.client.get("/page.html?ignored=1")  # query not in CachingOptimized's key
    assert second.headers["x-cache"] == "Hit from cloudfront"
    assert second.headers["age"] == "7"
    assert second.content == first.content
    assert len(origin.seen) == 1
    assert origin.seen[0].target == "/page.html"  # §2.3: the query is not forwarded either


async def test_expiry_and_revalidation_refresh_hit(make_edge: MakeEdge, origin: Origin) -> None:
    clock = FakeClock()
    edge = await _edge(make_edge, origin, clock)
    url = "/etag/v1/cc/max-age%3D10/doc"
    assert (await edge.client.get(url)).headers["x-cache"] == "Miss from cloudfront"
    clock.advance(5)
    assert (await edge.client.get(url)).headers["x-cache"] == "Hit from cloudfront"
    clock.advance(6)  # 11 s: past max-age=10
    refreshed = await edge.client.get(url)
    assert refreshed.status_code == 200
    assert refreshed.headers["x-cache"] == "RefreshHit from cloudfront"
    assert origin.seen[-1].header("If-None-Match") == '"v1"'  # §3.4 revalidation validators
    assert len(origin.seen) == 2
    again = await edge.client.get(url)
    assert again.headers["x-cache"] == "Hit from cloudfront"
    assert len(origin.seen) == 2


async def test_stale_copy_served_when_revalidation_gets_5xx(
    make_edge: MakeEdge, origin: Origin
) -> None:
    clock = FakeClock()
    edge = await _edge(make_edge, origin, clock)
    url = "/cc/max-age%3D10/doc"
    good = await edge.client.get(url)
    clock.advance(11)
    origin.override_status = 503
    stale = await edge.client.get(url)
    assert stale.status_code == 200  # §3.2: 5xx during revalidation serves the expired copy
    assert stale.headers["x-cache"] == "RefreshHit from cloudfront"
    assert stale.content == good.content
    assert len(origin.seen) == 2
    clock.advance(5)  # within ErrorCachingMinTTL (10 s): no new origin request
    assert (await edge.client.get(url)).status_code == 200
    assert len(origin.seen) == 2


async def test_request_collapsing(make_edge: MakeEdge, origin: Origin) -> None:
    edge = await _edge(make_edge, origin, FakeClock())
    responses = await asyncio.gather(*(edge.client.get("/slow/0.3/big") for _ in range(8)))
    assert [r.status_code for r in responses] == [200] * 8
    assert len(origin.seen) == 1  # §3.8: one origin request for eight viewers
    labels = sorted(r.headers["x-cache"] for r in responses)
    assert labels == ["Hit from cloudfront"] * 7 + ["Miss from cloudfront"]
    assert len({r.headers["x-amz-cf-id"] for r in responses}) == 8  # each viewer its own id


async def test_caching_disabled_neither_caches_nor_collapses(
    make_edge: MakeEdge, origin: Origin
) -> None:
    edge = await _edge(make_edge, origin, FakeClock())
    responses = await asyncio.gather(*(edge.client.get("/nocache/slow/0.2/x") for _ in range(3)))
    assert all(r.headers["x-cache"] == "Miss from cloudfront" for r in responses)
    assert len(origin.seen) == 3


async def test_error_caching(make_edge: MakeEdge, origin: Origin) -> None:
    clock = FakeClock()
    edge = await _edge(make_edge, origin, clock)
    missing = await edge.client.get("/status/404/gone")
    assert missing.status_code == 404
    assert missing.headers["x-cache"] == "Error from cloudfront"
    clock.advance(25)
    cached = await edge.client.get("/status/404/gone")
    assert cached.status_code == 404  # error_caching_min_ttl 30 from custom_error_responses
    assert cached.headers["x-cache"] == "Error from cloudfront"
    assert len(origin.seen) == 1
    clock.advance(10)
    await edge.client.get("/status/404/gone")
    assert len(origin.seen) == 2
    # §3.2: 403 is cached only with max-age/s-maxage
    await edge.client.get("/status/403/private")
    await edge.client.get("/status/403/private")
    assert len(origin.seen) == 4


async def test_invalidation_through_the_admin_api_and_cli(
    make_edge: MakeEdge, origin: Origin
) -> None:
    edge = await _edge(make_edge, origin, FakeClock())
    admin = AdminServer([edge.edge], port=0)
    await admin.start()
    try:
        await edge.client.get("/a.html")
        await edge.client.get("/images/1.png")
        await edge.client.get("/images/2.png")
        assert len(origin.seen) == 3
        token = {"Authorization": f"Bearer {admin.token}"}
        async with http_clients.async_client(base_url=admin.url, headers=token) as client:
            answer = await client.post("/invalidations", json={"paths": ["/images/*"]})
            assert answer.status_code == 201
            assert answer.json()["invalidated"] == 2
            bad = await client.post("/invalidations", json={"paths": ["/a*b"]})
            assert bad.status_code == 400
        assert (await edge.client.get("/a.html")).headers["x-cache"] == "Hit from cloudfront"
        assert (await edge.client.get("/images/1.png")).headers["x-cache"] == "Miss from cloudfront"
        code = await asyncio.to_thread(
            main,
            ["invalidate", "/a.html", "--admin", admin.url, f"--admin-token={admin.token}"],
        )
        assert code == 0
        assert (await edge.client.get("/a.html")).headers["x-cache"] == "Miss from cloudfront"
    finally:
        await admin.aclose()


async def test_eviction_under_a_small_size_bound(make_edge: MakeEdge, origin: Origin) -> None:
    store = MemoryCacheStore()
    edge = await _edge(make_edge, origin, FakeClock(), store=store)
    assert (await edge.client.get("/one")).headers["x-cache"] == "Miss from cloudfront"
    one = (await store.stats()).size_bytes
    store.max_bytes = one * 2 + one // 2  # room for two objects of this size, not three
    for name in ("two", "six"):
        assert (await edge.client.get(f"/{name}")).headers["x-cache"] == "Miss from cloudfront"
    stats = await store.stats()
    assert stats.size_bytes <= stats.max_bytes
    assert stats.evictions == 1
    assert (await edge.client.get("/six")).headers["x-cache"] == "Hit from cloudfront"
    assert (await edge.client.get("/two")).headers["x-cache"] == "Hit from cloudfront"
    assert (await edge.client.get("/one")).headers["x-cache"] == "Miss from cloudfront"
    assert len(origin.seen) == 4


async def test_range_and_conditional_requests_served_from_cache(
    make_edge: MakeEdge, origin: Origin
) -> None:
    edge = await _edge(make_edge, origin, FakeClock())
    full = await edge.client.get("/etag/r1/file")
    part = await edge.client.get("/etag/r1/file", headers={"Range": "bytes=2-5"})
    assert part.status_code == 206
    assert part.content == full.content[2:6]
    assert part.headers["content-range"] == f"bytes 2-5/{len(full.content)}"
    unchanged = await edge.client.get("/etag/r1/file", headers={"If-None-Match": '"r1"'})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    changed = await edge.client.get("/etag/r1/file", headers={"If-None-Match": '"zz"'})
    assert changed.status_code == 200
    assert len(origin.seen) == 1
    parts = await edge.client.get("/etag/r1/file", headers={"Range": "bytes=0-1,4-5"})
    assert parts.status_code == 206  # §3.3: ascending, separate ranges
    assert parts.headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert f"Content-Range: bytes 4-5/{len(full.content)}".encode() in parts.content
    descending = await edge.client.get("/etag/r1/file", headers={"Range": "bytes=4-5,0-1"})
    assert (descending.status_code, descending.content) == (200, full.content)
    assert len(origin.seen) == 1


async def test_a_ranged_miss_gets_the_whole_object_when_the_origin_ignores_the_range(
    make_edge: MakeEdge, origin: Origin
) -> None:
    """cloudfront-caching.md §3.3 and §4.1: on a miss CloudFront forwards the viewer's Range; an
    origin that ignores it sends the whole object, which this viewer gets with 200 while
    CloudFront caches it; later ranged requests get 206 cut from the cached object."""
    edge = await _edge(make_edge, origin, FakeClock())
    first = await edge.client.get("/etag/r2/file", headers={"Range": "bytes=0-1"})
    assert first.status_code == 200
    assert first.headers["x-cache"] == "Miss from cloudfront"
    assert "content-range" not in first.headers
    assert origin.seen[-1].header("Range") == "bytes=0-1"
    again = await edge.client.get("/etag/r2/file", headers={"Range": "bytes=0-1"})
    assert again.status_code == 206
    assert again.headers["x-cache"] == "Hit from cloudfront"
    assert again.content == first.content[:2]
    assert len(origin.seen) == 1


async def test_a_ranged_miss_gets_the_whole_object_when_the_origin_answers_chunked(
    make_edge: MakeEdge,
) -> None:
    """cloudfront-caching.md §3.3: when the origin answers a range request with
    `Transfer-Encoding: chunked`, the viewer gets the whole object instead of the range; once
    cached, the range is cut from it."""
    seen: list[str | None] = []

    async def chunked(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers.get("Range"))
        response = web.StreamResponse(headers={"Cache-Control": "max-age=60"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"01234")
        await response.write(b"56789")
        await response.write_eof()
        return response

    runner, port = await serve_handler(chunked)
    try:
        edge = await make_edge(
            f"""
origins: {{api: {{url: "http://127.0.0.1:{port}"}}}}
behaviors: [{{path_pattern: "*", origin: api, cache_policy: CachingOptimized}}]
""",
            clock=FakeClock(),
        )
        first = await edge.client.get("/video", headers={"Range": "bytes=2-3"})
        again = await edge.client.get("/video", headers={"Range": "bytes=2-3"})
    finally:
        await runner.cleanup()
    assert (first.status_code, first.content) == (200, b"0123456789")
    assert first.headers["x-cache"] == "Miss from cloudfront"
    assert (again.status_code, again.content) == (206, b"23")
    assert again.headers["x-cache"] == "Hit from cloudfront"
    assert seen == ["bytes=2-3"]


async def test_a_part_the_origin_cuts_is_passed_on_and_cached_apart(
    make_edge: MakeEdge, tmp_path: Path
) -> None:
    """cloudfront-caching.md §3.3: an origin that supports ranges (S3 does) answers the part;
    CloudFront serves that 206 and caches the part for later requests of the same range. The
    part never answers a request for the whole object, which once cached serves every range."""
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    (bucket / "data.bin").write_bytes(b"0123456789")
    edge = await make_edge(
        f"""
origins: {{files: {{s3: "{bucket}"}}}}
behaviors: [{{path_pattern: "*", origin: files, cache_policy: CachingOptimized}}]
""",
        clock=FakeClock(),
    )
    labels: list[tuple[int, str, bytes]] = []
    for headers in ({"Range": "bytes=2-5"}, {"Range": "bytes=2-5"}, {}, {"Range": "bytes=7-"}):
        answer = await edge.client.get("/data.bin", headers=headers)
        labels.append((answer.status_code, answer.headers["x-cache"], answer.content))
        if answer.status_code == 206:
            assert answer.headers["content-range"] == (
                "bytes 2-5/10" if headers["Range"] == "bytes=2-5" else "bytes 7-9/10"
            )
    assert labels == [
        (206, "Miss from cloudfront", b"2345"),  # the origin's own 206, passed on
        (206, "Hit from cloudfront", b"2345"),  # the cached part
        (200, "Miss from cloudfront", b"0123456789"),
        (206, "Hit from cloudfront", b"789"),  # cut from the whole object
    ]


async def test_function_generated_responses_and_triggers_on_hits(
    make_edge: MakeEdge, origin: Origin
) -> None:
    edge = await _edge(make_edge, origin, FakeClock())
    generated = await edge.client.get("/api/hello")
    assert generated.headers["x-cache"] == "LambdaGeneratedResponse from cloudfront"
    hit = await edge.client.get("/api/hello")
    assert hit.headers["x-cache"] == "Hit from cloudfront"  # §4.3: origin-request output is cached
    assert hit.json()["requestId"] == generated.json()["requestId"]
    assert hit.headers["x-viewer-response"] == "ran"  # viewer-response runs on hits
    names = [function for function, _ in edge.logs]
    assert names.count("hello") == 1  # the hit skipped origin-request
    for _ in range(2):
        redirect = await edge.client.get("/old-blog/x")
        assert redirect.headers["x-cache"] == "LambdaGeneratedResponse from cloudfront"
    assert [f for f, _ in edge.logs].count("redirect") == 2  # viewer-request output never cached
    await edge.client.get("/tagged/a")
    tagged = await edge.client.get("/tagged/a")
    assert tagged.headers["x-cache"] == "Hit from cloudfront"
    assert tagged.headers["x-origin-response"] == "ran"  # cached as origin-response left it
    # tag ran as viewer-response for both /api/hello answers, then at origin-response once and
    # viewer-response twice for /tagged/a
    assert [f for f, _ in edge.logs].count("tag") == 5


async def test_options_cached_apart_and_post_never(make_edge: MakeEdge, origin: Origin) -> None:
    edge = await _edge(make_edge, origin, FakeClock())
    await edge.client.get("/options/x")
    options = await edge.client.options("/options/x")
    assert options.headers["x-cache"] == "Miss from cloudfront"  # §3.1: keyed apart from GET
    assert (await edge.client.options("/options/x")).headers["x-cache"] == "Hit from cloudfront"
    assert len(origin.seen) == 2


async def test_inline_policy_keys_on_query_strings(make_edge: MakeEdge, origin: Origin) -> None:
    edge = await _edge(make_edge, origin, FakeClock())
    await edge.client.get("/query/x?a=1&b=2")
    await edge.client.get("/query/x?b=2&a=1")  # §2.3: order matters
    assert (await edge.client.get("/query/x?a=1&b=2")).headers["x-cache"] == "Hit from cloudfront"
    assert len(origin.seen) == 2
    assert origin.seen[0].target == "/query/x?a=1&b=2"


async def test_custom_error_page(make_edge: MakeEdge, origin: Origin, tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    (pages / "errors").mkdir(parents=True)
    (pages / "errors" / "404.html").write_text("<h1>custom not found</h1>")
    edge = await make_edge(
        f"""
origins:
  api: {{url: "{origin.url}"}}
  pages: {{s3: "{pages}"}}
functions:
  tag: {{runtime: python3.12, code: "{{functions}}/tag", handler: index.handler}}
custom_error_responses:
  - {{error_code: 404, response_page_path: /errors/404.html, response_code: 200}}
  - {{error_code: 503, response_page_path: /errors/missing.html, response_code: 503}}
behaviors:
  - {{path_pattern: /errors/*, origin: pages, cache_policy: CachingOptimized}}
  - {{path_pattern: "*", origin: api, cache_policy: CachingOptimized,
      functions: {{viewer-response: tag}}}}
""",
        clock=FakeClock(),
    )
    page = await edge.client.get("/status/404/nothing")
    assert page.status_code == 200  # §1.5: response_code replaces the origin's 404
    assert page.text == "<h1>custom not found</h1>"
    assert "x-viewer-response" not in page.headers  # §4.2: not run for custom error pages
    failing = await edge.client.get("/status/503/down")
    assert failing.status_code == 404  # §1.5: a page that cannot be fetched gives its status


async def test_cached_objects_survive_other_distributions(
    make_edge: MakeEdge, origin: Origin
) -> None:
    store = MemoryCacheStore()
    clock = FakeClock()
    first = await _edge(make_edge, origin, clock, store=store)
    await first.client.get("/shared.html")
    other = await make_edge(
        CACHED.format(origin=origin.url).replace("ECACHETEST0001", "ECACHETEST0002"),
        clock=clock,
        store=store,
    )
    assert (await other.client.get("/shared.html")).headers["x-cache"] == "Miss from cloudfront"
    assert await other.edge.invalidate(["/*"]) == 1
    assert (await first.client.get("/shared.html")).headers["x-cache"] == "Hit from cloudfront"


async def test_vary_is_filtered_and_no_cache_fields_are_not_stored(
    make_edge: MakeEdge, origin: Origin
) -> None:
    edge = await _edge(make_edge, origin, FakeClock())
    varied = await edge.client.get("/vary/Accept-Encoding%2C%20X-Custom%2C%20%2A/v")
    assert varied.headers["vary"] == "Accept-Encoding"  # §3.7: other names are removed
    url = "/cc/max-age%3D60%2C%20no-cache%3D%22Set-Cookie%22/cookie/s%3D1/c"
    first = await edge.client.get(url)
    assert first.headers["set-cookie"] == "s=1"  # the first viewer gets it
    second = await edge.client.get(url)
    assert second.headers["x-cache"] == "Hit from cloudfront"
    assert "set-cookie" not in second.headers  # §2.2: no-cache="Set-Cookie" is not stored


async def test_vary_star_under_min_ttl_zero_is_never_served_from_cache(
    make_edge: MakeEdge, origin: Origin
) -> None:
    """cloudfront-caching.md §2.2 and §3.4: with MinTTL 0, CloudFront stores a response with
    `Vary: *` but sends every later request to the origin, without conditional headers, so the
    origin always sends the whole body; with MinTTL > 0, `Vary: *` counts like any other Vary."""
    edge = await _edge(make_edge, origin, FakeClock())
    url = "/query/etag/v1/vary/%2A/x"  # the /query/* behavior has MinTTL 0
    first = await edge.client.get(url)
    assert first.headers["x-cache"] == "Miss from cloudfront"
    assert "vary" not in first.headers  # §3.7: `*` never reaches the viewer
    for _ in range(2):
        again = await edge.client.get(url)
        assert again.status_code == 200 and again.content != first.content  # a fresh answer
        assert again.headers["x-cache"] == "Miss from cloudfront"
    assert len(origin.seen) == 3
    assert [seen.header("If-None-Match") for seen in origin.seen] == [None, None, None]
    await edge.client.get("/etag/v2/vary/%2A/y")  # CachingOptimized: MinTTL 1
    kept = await edge.client.get("/etag/v2/vary/%2A/y")
    assert kept.headers["x-cache"] == "Hit from cloudfront"
    assert len(origin.seen) == 4
