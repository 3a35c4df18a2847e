"""What CloudFront adds to every response it sends, and what it takes away.

Every response leaves with ``X-Cache``, ``Via``, ``X-Amz-Cf-Pop`` and ``X-Amz-Cf-Id``, replacing
any lines of those names, and without hop-by-hop lines. A body that came chunked goes out
chunked (spec lambda-edge.md §5.1, cloudfront-caching.md §3.10, §4.2: CloudFront re-chunks it,
and keeps it chunked in the cache), so its ``Transfer-Encoding`` line stays, as ``chunked``, the
only coding CloudFront supports. A function-generated response goes out as CloudFront's own.
"""

from __future__ import annotations

from edgesim.http import EdgeResponse
from edgesim.pages import XCache

__all__ = ["CLOUDFRONTS_OWN", "as_cloudfronts_own", "with_cloudfront_headers"]

CLOUDFRONTS_OWN = ("x-cache", "via", "x-amz-cf-pop", "x-amz-cf-id")
_CLOUDFRONTS_OWN_SET = frozenset(CLOUDFRONTS_OWN)


def with_cloudfront_headers(
    response: EdgeResponse, *, x_cache: XCache, via: str, pop: str, request_id: str
) -> EdgeResponse:
    """A new response: ``response`` with CloudFront's lines, without what CloudFront drops."""
    headers = response.headers.without_hop_by_hop(also=_CLOUDFRONTS_OWN_SET)
    if response.headers.chunked():
        headers.set_spelled("Transfer-Encoding", "chunked")
    headers.extend(
        [
            ("X-Cache", x_cache.value),
            ("Via", via),
            ("X-Amz-Cf-Pop", pop),
            ("X-Amz-Cf-Id", request_id),
        ],
        list(CLOUDFRONTS_OWN),
    )
    return EdgeResponse(
        status=response.status,
        headers=headers,
        body=response.body,
        reason=response.reason,
        stream=response.stream,
    )


def as_cloudfronts_own(generated: EdgeResponse) -> EdgeResponse:
    """A function-generated response goes out as CloudFront's own, ``Server: CloudFront``
    unless the function named a server (observed, spec lambda-edge.md §5.1)."""
    if "Server" not in generated.headers:
        generated.headers.add("Server", "CloudFront")
    return generated
