"""OriginFetcher against real loopback origins: answer framing, refused headers, https."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from edgesim.exceptions import OriginError
from edgesim.http import EdgeRequest
from edgesim.origins.fetcher import OriginFetcher
from edgesim.origins.targets import OriginTarget
from edgesim.tasks import spawn
from tests.origins.fetcher_origins import OK, Origin, loopback_target, request

# -- framing: nothing beyond an answer is ever taken for the next one -------------------------

EVIL = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!"


@dataclass
class KeepAliveOrigin:
    """A raw HTTP/1.1 origin serving many requests per connection, some with crafted bytes.

    ``scripted`` maps a path to the exact bytes written for it; any other path gets its own
    true answer. ``seen`` records (connection number, method, path) of every request read.
    """

    scripted: dict[str, bytes] = field(default_factory=dict)
    seen: list[tuple[int, str, str]] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    # Once set, the first connection is sent an answer nobody asked for.
    unasked: asyncio.Event = field(default_factory=asyncio.Event)
    unasked_sent: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        if number == 1:
            sender = spawn(self._send_unasked(writer), name="unasked answer")
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, path, _ = head.split(b"\r\n", 1)[0].decode().split(" ")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                self.seen.append((number, method, path))
                reply = self.scripted.get(path)
                if reply is None:
                    body = f"true {path}".encode()
                    reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
                    reply += b"" if method == "HEAD" else body
                # One write: the surplus arrives with the answer, as from a real broken origin.
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if number == 1:
                sender.cancel()
            writer.close()

    async def _send_unasked(self, writer: asyncio.StreamWriter) -> None:
        await self.unasked.wait()
        writer.write(EVIL)
        await writer.drain()
        self.unasked_sent.set()

    def target(self) -> OriginTarget:
        return loopback_target(self.port)


@pytest.fixture
async def keep_alive() -> AsyncIterator[KeepAliveOrigin]:
    origin = KeepAliveOrigin()
    server = await asyncio.start_server(origin.handle, "127.0.0.1", 0)
    origin.port = server.sockets[0].getsockname()[1]
    yield origin
    server.close()
    await server.wait_closed()


async def _answer(fetcher: OriginFetcher, origin: KeepAliveOrigin, method: str, path: str) -> Any:
    body = b"form" if method == "POST" else b""
    result = await fetcher.fetch(request(method, uri=path, body=body), origin.target())
    return result.status, await result.read()


async def test_clean_answers_share_one_raw_connection(keep_alive, fetcher) -> None:
    assert await _answer(fetcher, keep_alive, "GET", "/a") == (200, b"true /a")
    assert await _answer(fetcher, keep_alive, "GET", "/b") == (200, b"true /b")
    assert keep_alive.seen == [(1, "GET", "/a"), (1, "GET", "/b")]


LEFTOVERS = {
    "longer-than-content-length": (
        "GET",
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlong" + EVIL,
        b"long",
    ),
    "stray-crlf-after-the-body": ("GET", OK + b"\r\n", b"ok"),
    "body-on-a-head-answer": ("HEAD", EVIL, b""),
    "second-answer-unasked": ("GET", OK + EVIL, b"ok"),
}


@pytest.mark.parametrize("then", ["GET", "POST"])
@pytest.mark.parametrize("case", list(LEFTOVERS))
async def test_bytes_beyond_an_answer_close_its_connection(
    keep_alive, fetcher, case: str, then: str
) -> None:
    method, reply, first_body = LEFTOVERS[case]
    keep_alive.scripted["/c/first"] = reply
    assert await _answer(fetcher, keep_alive, method, "/c/first") == (200, first_body)
    # The next request, for another path, gets the origin's own answer on a fresh connection:
    # never the surplus, never a 502, and it reaches the origin exactly once.
    assert await _answer(fetcher, keep_alive, then, "/c/victim") == (200, b"true /c/victim")
    assert keep_alive.seen == [(1, method, "/c/first"), (2, then, "/c/victim")]


async def test_surplus_answer_is_never_cached_as_another_urls(keep_alive, fetcher) -> None:
    keep_alive.scripted["/c/long"] = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlong" + EVIL
    assert await _answer(fetcher, keep_alive, "GET", "/c/long") == (200, b"long")
    for _ in range(3):
        assert await _answer(fetcher, keep_alive, "GET", "/c/victim") == (200, b"true /c/victim")
    # After the poisoned connection, the clean one is kept for every later request.
    assert [s[0] for s in keep_alive.seen] == [1, 2, 2, 2]


async def test_an_answer_arriving_while_idle_closes_the_connection(keep_alive, fetcher) -> None:
    # The unasked answer comes only once the first one was read whole and its connection pooled.
    assert await _answer(fetcher, keep_alive, "GET", "/c/first") == (200, b"true /c/first")
    keep_alive.unasked.set()
    await keep_alive.unasked_sent.wait()
    for _ in range(10):
        # Loopback bytes are in the socket once sent; a few loop turns deliver them.
        await asyncio.sleep(0)
    assert await _answer(fetcher, keep_alive, "GET", "/c/victim") == (200, b"true /c/victim")
    assert keep_alive.seen == [(1, "GET", "/c/first"), (2, "GET", "/c/victim")]


def _answer_with(headers: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\n" + headers + b"Content-Length: 2\r\n\r\nok"


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (_answer_with(b"X-Bad: a\x01b\r\n"), "control byte"),
        (_answer_with(b"X-Bad: a\x7fb\r\n"), "control byte"),
        (
            _answer_with(b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(21))),
            "over CloudFront's 20480",
        ),
    ],
    ids=["x01", "x7f", "over-the-limit"],
)
async def test_origin_headers_cloudfront_refuses_are_a_502(answer: bytes, problem: str) -> None:
    async def origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(origin, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    target = OriginTarget(
        kind="custom", domain_name="127.0.0.1", port=port, protocol="http", connection_attempts=1
    )
    fetcher = OriginFetcher()
    try:
        with pytest.raises(OriginError) as refused:
            await fetcher.fetch(EdgeRequest("GET", "/x"), target)
    finally:
        await fetcher.aclose()
        server.close()
        await server.wait_closed()
    assert refused.value.status == 502 and problem in refused.value.reason


async def test_headers_within_the_limit_and_tabs_pass() -> None:
    lines = b"X-Tab: a\tb\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(19))

    async def origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(_answer_with(lines))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(origin, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    target = OriginTarget(kind="custom", domain_name="127.0.0.1", port=port, protocol="http")
    fetcher = OriginFetcher()
    try:
        response = await fetcher.fetch(EdgeRequest("GET", "/x"), target)
        assert await response.read() == b"ok"
    finally:
        await fetcher.aclose()
        server.close()
        await server.wait_closed()
    assert response.headers.get("X-Tab") == "a\tb"


# -- https origins ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    ca: Path
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A test CA, and a certificate it signed for origin.example (openssl's command line)."""
    folder = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=edgesim test CA", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    openssl("req", *ec, "-keyout", "origin.key", "-out", "origin.csr", "-subj", "/CN=origin")
    (folder / "origin.ext").write_text(
        "subjectAltName=DNS:origin.example\nbasicConstraints=CA:FALSE\n"
        "authorityKeyIdentifier=keyid\nextendedKeyUsage=serverAuth\n"
    )
    openssl(
        "x509", "-req", "-in", "origin.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "origin.pem", "-days", "2", "-extfile", "origin.ext",
    )  # fmt: skip
    return Certificates(folder / "ca.pem", folder / "origin.pem", folder / "origin.key")


@pytest.fixture
async def tls_origin(certificates: Certificates) -> AsyncIterator[Origin]:
    origin = Origin()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", origin.handle)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates.cert, certificates.key)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    origin.port = runner.addresses[0][1]
    yield origin
    origin.release.set()
    await runner.cleanup()


@pytest.fixture
def trusting_the_test_ca(certificates: Certificates, monkeypatch: pytest.MonkeyPatch) -> None:
    """The system's CAs, read at the first https origin, are the test CA."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca))


@pytest.mark.usefixtures("trusting_the_test_ca")
async def test_an_https_origin_is_dialled_with_tls_and_its_name(
    tls_origin: Origin, fetcher: OriginFetcher
) -> None:
    response = await fetcher.fetch(request(), tls_origin.target(protocol="https"))
    assert response.status == 200
    [seen] = tls_origin.seen
    assert ("Host", "origin.example") in seen.headers


async def test_a_certificate_the_system_does_not_trust_is_502(
    tls_origin: Origin, fetcher: OriginFetcher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "none.pem").write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "none.pem"))
    with pytest.raises(OriginError) as caught:
        await fetcher.fetch(request(), tls_origin.target(protocol="https"))
    assert caught.value.status == 502 and "TLS failure" in caught.value.reason
    assert tls_origin.seen == []


@pytest.mark.usefixtures("trusting_the_test_ca")
async def test_a_certificate_for_another_name_is_502(
    tls_origin: Origin, fetcher: OriginFetcher
) -> None:
    target = tls_origin.target(protocol="https", domain_name="elsewhere.example")
    with pytest.raises(OriginError) as caught:
        await fetcher.fetch(request(headers=[("Host", "elsewhere.example")]), target)
    assert caught.value.status == 502 and "TLS failure" in caught.value.reason
    assert tls_origin.seen == []


@pytest.mark.parametrize("split", [False, True], ids=["with-its-head", "after-its-head"])
async def test_a_body_that_came_with_its_head_is_handed_over_whole(split: bool) -> None:
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while await reader.readuntil(b"\r\n\r\n"):
                head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
                if split:
                    writer.write(head)
                    await writer.drain()
                    await asyncio.sleep(0.05)
                    writer.write(b"hello")
                else:
                    writer.write(head + b"hello")
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    target = loopback_target(server.sockets[0].getsockname()[1])
    fetcher = OriginFetcher()
    try:
        for _ in range(2):
            result = await fetcher.fetch(request(), target)
            assert (result.stream is not None) is split
            assert await result.read() == b"hello"
            assert result.headers.get("Content-Length") == "5"
    finally:
        await fetcher.aclose()
        server.close()
        await server.wait_closed()
    assert len(connections) == 1  # handed over whole or read to its end, it is reused
