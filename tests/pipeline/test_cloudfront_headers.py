"""CloudFront's own lines on every response, and generated responses as CloudFront's own."""

from __future__ import annotations

from edgesim.http import EdgeResponse, Headers
from edgesim.pages import XCache
from edgesim.pipeline.cloudfront_headers import as_cloudfronts_own, with_cloudfront_headers


def _sent(headers: list[tuple[str, str]]) -> EdgeResponse:
    original = EdgeResponse(200, Headers(headers), b"x")
    return with_cloudfront_headers(
        original, x_cache=XCache.MISS, via="1.1 abc.cloudfront.net (CloudFront)", pop="LAX1",
        request_id="id-1",
    )  # fmt: skip


def test_cloudfronts_lines_replace_any_of_the_same_name_and_hop_by_hop_lines_go() -> None:
    sent = _sent([("X-Cache", "forged"), ("Connection", "close"), ("ETag", '"e"')])
    assert sent.headers.items() == [
        ("ETag", '"e"'),
        ("X-Cache", "Miss from cloudfront"),
        ("Via", "1.1 abc.cloudfront.net (CloudFront)"),
        ("X-Amz-Cf-Pop", "LAX1"),
        ("X-Amz-Cf-Id", "id-1"),
    ]


def test_a_chunked_body_keeps_its_framing_line_as_chunked() -> None:
    """lambda-edge.md §5.1, cloudfront-caching.md §3.10: CloudFront sends it on chunked."""
    sent = _sent([("transfer-encoding", "gzip, chunked")])
    assert sent.headers.get_all("Transfer-Encoding") == ["chunked"]


def test_the_given_response_is_left_as_it_was() -> None:
    original = EdgeResponse(200, Headers([("A", "1")]), b"x")
    with_cloudfront_headers(original, x_cache=XCache.HIT, via="v", pop="p", request_id="r")
    assert original.headers.items() == [("A", "1")]


def test_generated_responses_say_cloudfront_unless_the_function_named_a_server() -> None:
    assert as_cloudfronts_own(EdgeResponse(200)).headers.get("Server") == "CloudFront"
    named = EdgeResponse(200, Headers([("Server", "mine")]))
    assert as_cloudfronts_own(named).headers.get_all("Server") == ["mine"]
