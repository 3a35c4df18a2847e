"""``edgesim serve`` without its pipeline, for reference: what the front door alone costs.

``python bench/_frontdoor.py serve ...`` takes ``edgesim serve``'s arguments. Each edge runs its
pipeline until it has served one cache ``Hit``, then answers every request with that same
result, unchanged: what remains per request is aiohttp's connection loop and parser, the viewer
connection's bookkeeping, the conversion of the request, the response's write and the access
line. ``bench_cache.py`` sets it beside the full hit, so the table shows how a hit's CPU splits
between the front door and the pipeline. A benchmark instrument only: the answers carry the
first hit's request id and ``Age``.
"""

from __future__ import annotations

import sys

from edgesim.cli import main
from edgesim.http import EdgeRequest
from edgesim.pipeline.edge import Edge, EdgeResult

_dispatch = Edge.dispatch
_held: dict[int, EdgeResult] = {}


async def _answer_held(self: Edge, request: EdgeRequest, *, stream: bool = False) -> EdgeResult:
    held = _held.get(id(self))
    if held is not None:
        return held
    result = await _dispatch(self, request, stream=stream)
    if (result.response.headers.get("X-Cache") or "").startswith("Hit"):
        _held[id(self)] = result
    return result


Edge.dispatch = _answer_held  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
