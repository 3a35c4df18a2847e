"""Streamed bodies through the pipeline: stored only when whole, bounded, collapsed correctly.

The origin here is an in-process :class:`~edgesim.types.OriginClient` whose bodies arrive as the
test releases them, so each test decides exactly when bytes reach the edge.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from edgesim.config import load_distribution
from edgesim.exceptions import IncompleteBodyError
from edgesim.http import EdgeRequest, EdgeResponse, Headers
from edgesim.origins.targets import OriginTarget
from edgesim.pipeline import Edge
from tests.e2e.conftest import FUNCTIONS


class _Body:
    """A body stream fed by the test: ``feed`` chunks, then ``end`` or ``cut``."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        self.closed = False

    def feed(self, chunk: bytes) -> None:
        self._queue.put_nowait(chunk)

    def end(self) -> None:
        self._queue.put_nowait(None)

    def cut(self) -> None:
        self._queue.put_nowait(IncompleteBodyError("the origin closed the connection"))

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while (item := await self._queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class _StreamingOrigin:
    """Answers every request 200 with a streamed body and records what it was sent."""

    length: int | None = None
    bodies: list[_Body] = field(default_factory=list)
    requests: list[EdgeRequest] = field(default_factory=list)
    uploads: list[bytes] = field(default_factory=list)
    streamed: list[bool] = field(default_factory=list)
    # paths answered at once with (status, whole body), still as a stream
    ready: dict[str, tuple[int, bytes]] = field(default_factory=dict)

    async def fetch(self, request: EdgeRequest, target: OriginTarget) -> EdgeResponse:
        self.requests.append(request)
        self.streamed.append(request.stream is not None)
        self.uploads.append(await request.read())
        body = _Body()
        self.bodies.append(body)
        headers = Headers([("Content-Type", "text/plain"), ("Cache-Control", "max-age=60")])
        if self.length is not None:
            headers.add("Content-Length", str(self.length))
        status, whole = self.ready.get(request.uri, (200, None))
        if whole is not None:
            body.feed(whole)
            body.end()
        return EdgeResponse(status, headers, stream=body)

    async def aclose(self) -> None:
        pass


@pytest.fixture
def origin() -> _StreamingOrigin:
    return _StreamingOrigin()


@pytest.fixture
async def edge(tmp_path: Path, origin: _StreamingOrigin) -> AsyncIterator[Edge]:
    path = tmp_path / "d.yaml"
    path.write_text(
        f"""
origins: {{api: {{url: "http://127.0.0.1:1029"}}}}
functions:
  body: {{runtime: python3.12, code: "{FUNCTIONS}/body", handler: index.handler}}
behaviors:
  - path_pattern: /upload/*
    origin: api
    allowed_methods: [GET, HEAD, OPTIONS, PUT, PATCH, POST, DELETE]
  - path_pattern: /seen/*
    origin: api
    allowed_methods: [GET, HEAD, OPTIONS, PUT, PATCH, POST, DELETE]
    functions: {{viewer-request: {{function: body, include_body: true}}}}
  - {{path_pattern: "*", origin: api, cache_policy: CachingOptimized}}
custom_error_responses: [{{error_code: 404, response_page_path: /404.html, response_code: 404}}]
"""
    )
    built = Edge(load_distribution(path), origins=origin, max_object_bytes=1000)
    yield built
    await built.aclose()


async def _next_body(origin: _StreamingOrigin, count: int) -> _Body:
    while len(origin.bodies) < count:
        await asyncio.sleep(0)
    return origin.bodies[count - 1]


async def test_a_streamed_body_is_stored_once_it_ended_whole(
    edge: Edge, origin: _StreamingOrigin
) -> None:
    first = asyncio.ensure_future(edge.dispatch(EdgeRequest("GET", "/a")))
    body = await _next_body(origin, 1)
    body.feed(b"hello ")
    body.feed(b"world")
    body.end()
    miss = await first
    assert miss.response.body == b"hello world"
    assert miss.trace.steps == ["behavior:matched", "cache:miss", "origin:200", "cache:store"]
    hit = await edge.dispatch(EdgeRequest("GET", "/a"))
    assert (hit.trace.steps[-1], hit.response.body) == ("cache:hit", b"hello world")
    assert len(origin.requests) == 1


async def test_the_viewer_gets_the_first_bytes_before_the_last(
    edge: Edge, origin: _StreamingOrigin
) -> None:
    dispatch = asyncio.ensure_future(edge.dispatch(EdgeRequest("GET", "/a"), stream=True))
    body = await _next_body(origin, 1)
    result = await dispatch  # the headers are here; the body has not begun
    assert result.response.stream is not None
    chunks = aiter(result.response.stream)
    body.feed(b"first")
    assert await anext(chunks) == b"first"
    assert "cache:store" not in result.trace.steps  # not whole yet, so not stored
    body.feed(b"last")
    body.end()
    assert [chunk async for chunk in chunks] == [b"last"]
    assert result.trace.steps[-1] == "cache:store"


async def test_a_body_cut_short_is_passed_on_and_not_stored(
    edge: Edge, origin: _StreamingOrigin
) -> None:
    first = asyncio.ensure_future(edge.dispatch(EdgeRequest("GET", "/a")))
    body = await _next_body(origin, 1)
    body.feed(b"part")
    body.cut()
    cut = await first
    assert cut.response.body == b"part"
    assert cut.trace.steps[-1] == "origin:body-cut"
    assert "cache:store" not in cut.trace.steps
    again = asyncio.ensure_future(edge.dispatch(EdgeRequest("GET", "/a")))
    body = await _next_body(origin, 2)
    body.feed(b"whole")
    body.end()
    assert (await again).trace.steps[1:] == ["cache:miss", "origin:200", "cache:store"]


@pytest.mark.parametrize("declared", [True, False])
async def test_an_object_over_the_bound_passes_through_unkept(
    edge: Edge, origin: _StreamingOrigin, declared: bool
) -> None:
    origin.length = 1500 if declared else None
    first = asyncio.ensure_future(edge.dispatch(EdgeRequest("GET", "/big")))
    body = await _next_body(origin, 1)
    for _ in range(3):
        body.feed(b"x" * 500)
    body.end()
    big = await first
    assert big.response.body == b"x" * 1500
    assert "cache:store" not in big.trace.steps
    again = asyncio.ensure_future(edge.dispatch(EdgeRequest("GET", "/big")))
    (await _next_body(origin, 2)).end()
    assert (await again).trace.steps[1] == "cache:miss"


async def test_waiters_wake_when_the_leaders_body_settles(
    edge: Edge, origin: _StreamingOrigin
) -> None:
    leader = await asyncio.ensure_future(edge.dispatch(EdgeRequest("GET", "/c"), stream=True))
    waiter = asyncio.ensure_future(edge.dispatch(EdgeRequest("GET", "/c")))
    await asyncio.sleep(0.01)
    assert not waiter.done()  # it waits for the body, not only for the headers
    body = origin.bodies[0]
    body.feed(b"shared")
    body.end()
    assert leader.response.stream is not None
    assert [chunk async for chunk in leader.response.stream] == [b"shared"]
    answered = await waiter
    assert answered.trace.steps == ["behavior:matched", "cache:miss", "cache:collapsed"]
    assert answered.response.headers.get("X-Cache") == "Hit from cloudfront"
    assert answered.response.body == b"shared"
    assert len(origin.requests) == 1


async def test_an_abandoned_body_frees_its_waiters_and_keeps_nothing(
    edge: Edge, origin: _StreamingOrigin
) -> None:
    leader = await edge.dispatch(EdgeRequest("GET", "/d"), stream=True)
    waiter = asyncio.ensure_future(edge.dispatch(EdgeRequest("GET", "/d")))
    await asyncio.sleep(0.01)
    assert leader.response.stream is not None
    await leader.response.stream.aclose()  # the viewer went away
    assert origin.bodies[0].closed
    body = await _next_body(origin, 2)  # the waiter goes to the origin itself
    body.feed(b"own")
    body.end()
    answered = await waiter
    assert answered.response.body == b"own"
    assert answered.trace.steps[-3:] == ["cache:collapsed", "origin:200", "cache:store"]


async def test_uploads_stream_unless_a_function_reads_the_body(
    edge: Edge, origin: _StreamingOrigin
) -> None:
    upload = _Body()
    upload.feed(b"a" * 10)
    upload.end()
    request = EdgeRequest(
        "POST", "/upload/x", headers=Headers([("Content-Length", "10")]), stream=upload
    )
    first = asyncio.ensure_future(edge.dispatch(request))
    (await _next_body(origin, 1)).end()
    await first
    assert origin.streamed[0]  # no function reads it: it streams on to the origin
    assert origin.uploads[0] == b"a" * 10

    seen = _Body()
    seen.feed(b"hi there")
    seen.end()
    request = EdgeRequest(
        "POST", "/seen/x", headers=Headers([("Content-Length", "8")]), stream=seen
    )
    second = asyncio.ensure_future(edge.dispatch(request))
    (await _next_body(origin, 2)).end()
    result = await second
    viewer_request = result.trace.records[1]
    assert viewer_request.event is not None
    cf = viewer_request.event["Records"][0]["cf"]  # type: ignore[index]
    assert cf["request"]["body"]["inputTruncated"] is False
    assert not origin.streamed[1]  # buffered for the function, as CloudFront does
    assert origin.uploads[1] == b"hi there"


async def test_an_error_behind_a_custom_page_is_still_cached(
    edge: Edge, origin: _StreamingOrigin
) -> None:
    origin.ready = {"/missing": (404, b"no such key"), "/404.html": (200, b"our page")}
    first = await edge.dispatch(EdgeRequest("GET", "/missing"))
    assert (first.response.status, first.response.body) == (404, b"our page")
    assert first.trace.steps == [
        "behavior:matched",
        "cache:miss",
        "origin:404",
        "cache:store",
        "error-page:fetched",
        "cache:miss",
        "origin:200",
        "cache:store",
    ]
    again = await edge.dispatch(EdgeRequest("GET", "/missing"))
    assert (again.response.status, again.response.body) == (404, b"our page")
    assert [r.uri for r in origin.requests] == ["/missing", "/404.html"]
