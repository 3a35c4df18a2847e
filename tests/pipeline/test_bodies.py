"""Body helpers: the cache's copy of a streamed body, draining, discarding, reading as sent."""

from __future__ import annotations

from collections.abc import AsyncIterator

from edgesim.exceptions import IncompleteBodyError
from edgesim.http import EdgeResponse
from edgesim.pipeline.bodies import StoringBody, discard, drain, read_as_sent
from edgesim.trace import Trace


class _Chunks:
    """A finished stream of ``chunks``, optionally cut short after them."""

    def __init__(self, *chunks: bytes, cut: bool = False) -> None:
        self._chunks = chunks
        self._cut = cut
        self.closed = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._run()

    async def _run(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk
        if self._cut:
            raise IncompleteBodyError("cut")

    async def aclose(self) -> None:
        self.closed = True


class _Kept:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, body: bytes) -> None:
        self.bodies.append(body)


async def test_a_whole_body_within_the_bound_is_kept_and_settles() -> None:
    kept, settled = _Kept(), []
    body = StoringBody(_Chunks(b"ab", b"cd"), 10, kept)
    body.when_settled(lambda: settled.append(1))
    assert [c async for c in body] == [b"ab", b"cd"]
    assert kept.bodies == [b"abcd"] and settled == [1]
    body.when_settled(lambda: settled.append(2))  # after the end: called at once
    assert settled == [1, 2]


async def test_a_body_over_the_bound_passes_through_unkept() -> None:
    kept = _Kept()
    body = StoringBody(_Chunks(b"12345", b"67890", b"x"), 8, kept)
    assert b"".join([c async for c in body]) == b"1234567890x"
    assert kept.bodies == []


async def test_a_cut_or_abandoned_body_is_never_kept() -> None:
    kept, settled = _Kept(), []
    cut = StoringBody(_Chunks(b"ab", cut=True), 10, kept)
    cut.when_settled(lambda: settled.append("cut"))
    got = []
    try:
        async for chunk in cut:
            got.append(chunk)
    except IncompleteBodyError:
        pass
    source = _Chunks(b"ab")
    abandoned = StoringBody(source, 10, kept)
    abandoned.when_settled(lambda: settled.append("abandoned"))
    await abandoned.aclose()
    assert got == [b"ab"] and kept.bodies == []
    assert settled == ["cut", "abandoned"] and source.closed


async def test_drain_finishes_what_a_stream_feeds_and_discard_only_closes() -> None:
    kept = _Kept()
    drained = EdgeResponse(404, stream=StoringBody(_Chunks(b"gone"), 10, kept))
    await drain(drained)
    assert kept.bodies == [b"gone"] and drained.stream is None
    source = _Chunks(b"never read")
    await discard(EdgeResponse(200, stream=source))
    assert source.closed
    await drain(EdgeResponse(200, stream=_Chunks(b"x", cut=True)))  # a cut body simply ends


async def test_read_as_sent_keeps_the_bytes_of_a_cut_body() -> None:
    trace = Trace(request_id="r")
    response = EdgeResponse(200, stream=_Chunks(b"par", b"t", cut=True))
    await read_as_sent(response, trace)
    assert (response.body, response.stream) == (b"part", None)
    assert trace.steps == ["origin:body-cut"]
