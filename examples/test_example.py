"""The bundled example's functions, tested through the edgesim pytest plugin."""

from __future__ import annotations

from pathlib import Path

from edgesim.testing import EventFactory, Function, Invoker, assert_valid, check_function
from edgesim.testing.plugin import EdgeFactory

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "distributions" / "example.yaml"
FUNCTIONS = ROOT / "functions"


async def test_folders_get_their_index_page_then_a_hit(edge: EdgeFactory) -> None:
    e = await edge(EXAMPLE)
    first = await e.get("/about/")
    assert first.status == 200
    assert first.result("viewer-request")["uri"] == "/about/index.html"  # type: ignore[index]
    assert first.headers.get("X-Frame-Options") == "DENY"  # security-headers, origin-response
    assert "added 4 security headers to a 200 response" in first.logs
    again = await e.get("/about/")
    assert again.headers.get("X-Cache") == "Hit from cloudfront"
    assert again.steps[-1] == "cache:hit"


async def test_old_blog_urls_are_redirected_at_the_edge(edge: EdgeFactory) -> None:
    e = await edge(EXAMPLE)
    response = await e.get("/old-blog/2019/hello?ref=rss")
    assert response.status == 301
    assert response.headers.get("Location") == "/blog/2019/hello.html?ref=rss"
    assert response.steps == ["behavior:matched", "viewer-request:response"]


async def test_the_api_answers_from_origin_request_with_the_body(edge: EdgeFactory) -> None:
    e = await edge(EXAMPLE)
    response = await e.post("/api/hello?name=edge", body='{"a": 1}')
    assert response.status == 200
    payload = response.json()
    assert (payload["querystring"], payload["requestBody"]) == ("name=edge", '{"a": 1}')
    assert payload["requestId"] == response.request_id


async def test_each_function_returns_what_cloudfront_accepts(
    edge_invoke: Invoker, edge_event: EventFactory
) -> None:
    rewrite = await edge_invoke(FUNCTIONS / "rewrite-index", edge_event.viewer_request("/a/"))
    assert_valid(rewrite)
    headers = await edge_invoke(
        Function(FUNCTIONS / "security-headers", timeout=30),
        edge_event.origin_response("/a", status=404),
    )
    assert_valid(headers)


async def test_the_viewer_functions_hold_for_any_request(edge_invoke: Invoker) -> None:
    for folder in ("rewrite-index", "redirect-legacy"):
        await check_function(
            FUNCTIONS / folder, "viewer-request", invoker=edge_invoke, max_examples=25
        )
