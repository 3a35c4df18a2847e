"""Headers and the request/response models."""

from collections.abc import AsyncIterator

import pytest

from edgesim.exceptions import IncompleteBodyError
from edgesim.http import EdgeRequest, EdgeResponse, Headers, reason_phrase


def test_headers_keep_case_order_and_repeats() -> None:
    headers = Headers(
        [("Set-Cookie", "a=1"), ("content-type", "text/plain"), ("set-cookie", "b=2")]
    )
    assert headers.get("SET-COOKIE") == "a=1"
    assert headers.get_all("set-cookie") == ["a=1", "b=2"]
    assert headers.items()[1] == ("content-type", "text/plain")
    assert "Content-Type" in headers
    assert 3 not in headers


def test_set_replaces_in_place_and_remove_drops_all() -> None:
    headers = Headers([("A", "1"), ("B", "2"), ("a", "3")])
    headers.set("a", "9")
    assert headers.items() == [("a", "9"), ("B", "2")]
    headers.set("C", "3")
    assert headers.items()[-1] == ("C", "3")
    headers.remove("b")
    assert headers.items() == [("a", "9"), ("C", "3")]


def test_without_hop_by_hop_drops_connection_named_headers() -> None:
    headers = Headers(
        [
            ("Connection", "keep-alive, X-Private"),
            ("X-Private", "1"),
            ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"),
            ("X-Kept", "yes"),
        ]
    )
    assert headers.without_hop_by_hop().items() == [("X-Kept", "yes")]


def test_copy_is_independent() -> None:
    headers = Headers([("A", "1")])
    copy = headers.copy()
    copy.add("B", "2")
    assert len(headers) == 1 and len(copy) == 2
    assert headers != copy


def test_partition_splits_by_lowercase_name_keeping_order_and_lookups() -> None:
    headers = Headers([("X-A", "1"), ("Host", "h"), ("x-a", "2"), ("X-B", "3")])
    kept, taken = headers.partition(lambda name: name == "x-a")
    assert kept.items() == [("Host", "h"), ("X-B", "3")]
    assert taken.items() == [("X-A", "1"), ("x-a", "2")]
    assert taken.get_all("X-A") == ["1", "2"] and "HOST" in kept
    kept.add("C", "4")
    assert len(headers) == 4


def test_request_target_and_response_reason() -> None:
    assert EdgeRequest("GET", "/a", "x=1").target == "/a?x=1"
    assert EdgeRequest("GET", "/a").target == "/a"
    assert EdgeResponse(404).reason == "Not Found"
    assert EdgeResponse(299).reason == ""
    assert reason_phrase(503) == "Service Unavailable"


class Chunks:
    """A body stream over fixed chunks; ``cut`` raises IncompleteBodyError after them."""

    def __init__(self, *chunks: bytes, cut: bool = False) -> None:
        self.chunks = chunks
        self.cut = cut
        self.closed = 0

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._relay()

    async def _relay(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.cut:
            raise IncompleteBodyError("short")

    async def aclose(self) -> None:
        self.closed += 1


async def test_read_buffers_a_stream_once_and_closes_it() -> None:
    stream = Chunks(b"ab", b"", b"cd")
    response = EdgeResponse(200, stream=stream)
    assert await response.read() == b"abcd"
    assert await response.read() == b"abcd"
    assert (response.stream, response.body, stream.closed) == (None, b"abcd", 1)
    upload = Chunks(b"x" * 10, b"y")
    request = EdgeRequest("POST", "/", stream=upload)
    assert await request.read() == b"x" * 10 + b"y"
    assert (request.stream, upload.closed) == (None, 1)


async def test_read_without_a_stream_is_the_body() -> None:
    assert await EdgeResponse(200, body=b"whole").read() == b"whole"
    assert await EdgeRequest("GET", "/").read() == b""


async def test_a_cut_stream_raises_on_read_and_is_still_closed() -> None:
    stream = Chunks(b"ab", cut=True)
    response = EdgeResponse(200, stream=stream)
    with pytest.raises(IncompleteBodyError):
        await response.read()
    assert stream.closed == 1
    assert response.stream is None


def test_fit_length_keeps_content_length_true_in_the_senders_spelling() -> None:
    headers = Headers([("content-LENGTH", "99"), ("X-A", "1")])
    headers.fit_length(b"abc")
    assert headers.items() == [("content-LENGTH", "3"), ("X-A", "1")]
    bare = Headers([("X-A", "1")])
    bare.fit_length(b"abc")
    assert "content-length" not in bare  # not added unless the message must carry one
    bare.fit_length(b"", add=True)
    assert bare.get("Content-Length") == "0"


def test_lookups_stay_right_through_every_change() -> None:
    headers = Headers([("A", "1"), ("b", "2"), ("a", "3")])
    headers.set("A", "x")  # the first A keeps its place, the second goes
    assert headers.items() == [("A", "x"), ("b", "2")]
    headers.add("C", "4")
    headers.remove("B")
    assert headers.get("c") == "4" and headers.get("b") is None and "b" not in headers
    headers.set_spelled("c", "5")
    assert headers.items() == [("A", "x"), ("C", "5")]
    copy = headers.copy()
    copy.add("D", "6")
    assert "d" in copy and "d" not in headers
    assert headers.without_hop_by_hop().get_all("a") == ["x"]


def test_control_bytes_are_every_one_but_tab() -> None:
    from edgesim.http import has_control_bytes

    assert not has_control_bytes(b"a\tb ~" + "caf\u00e9 \u00a0\u2028".encode())
    for byte in [*range(0x09), *range(0x0A, 0x20), 0x7F]:
        assert has_control_bytes(b"value" + bytes([byte]) + b"more"), byte
