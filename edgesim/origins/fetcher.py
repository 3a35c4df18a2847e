"""Sending the request CloudFront forwards to an origin, and bringing back what it answered.

Two kinds of origin: a custom origin reached over HTTP/1.1
(:mod:`edgesim.origins.http_client`), and an S3 origin whose
bucket is a local folder (:mod:`edgesim.origins.s3folder`). An S3 origin without a local folder is
reached over HTTP like a custom one, at its ``protocol://domain_name:port``.

What goes out is the caller's request as is; the fetcher only does what CloudFront does at this
point: it puts the origin path in front of the URI, adds the origin's custom headers (replacing
same-named ones), sends ``Connection: Keep-Alive`` and a ``Content-Length`` that matches the
body, and keeps the request target byte for byte (only bytes HTTP/1.1 forbids in a request line
are percent-encoded). A viewer's upload that is still streaming in goes out as it arrives, with
the viewer's ``Content-Length`` when it sent one and chunked otherwise.

What comes back is the origin's status, reason, headers (every line, names spelled as received,
hop-by-hop lines dropped but for a ``Transfer-Encoding`` that ends in ``chunked``, which replaces
any ``Content-Length``) and, as soon as the headers are in, a
:class:`~edgesim.http.BodyStream` of the body bytes as they were on the wire (chunked framing
removed, nothing decompressed); redirects are not followed. The pooled connection is released
when the stream ends, and closed when it is given up (``aclose``) before the end. HEAD answers,
204 and 304 carry no stream. A connection is reused only when the answer ended exactly where its
framing said and the origin sent nothing more: surplus bytes (a body longer than its
``Content-Length``, a body on a HEAD answer, an answer nobody asked for) are never taken as the
answer to the next request (RFC 9112 §6.3); the connection is closed instead.

Failures up to and including the response headers become
:class:`~edgesim.exceptions.OriginError` with CloudFront's status:

- the origin's name does not resolve, its TLS certificate is refused, or it answers with
  something that is not HTTP or drops the connection before its headers: 502;
- it cannot be connected to within the target's ``connection_timeout``, or does not answer
  within its ``read_timeout`` (which bounds the wait for the first byte and every gap between
  bytes): 504.

A body that stops short once the headers are in (fewer bytes than ``Content-Length``, a
connection reset, a gap longer than ``read_timeout``) raises
:class:`~edgesim.exceptions.IncompleteBodyError` from the stream: the status is already on its
way to the viewer by then.

Attempts: a connection that cannot be opened is tried again, the target's
``connection_attempts`` times in all (CloudFront's ``ConnectionAttempts``, default 3), for every
method, since nothing was sent yet. A timeout or a broken exchange is tried again only for GET
and HEAD; other methods are never retried, as CloudFront does not retry them. A streamed upload
whose first bytes have left is never retried either: they cannot be sent again. Retries follow at
once, without back-off.
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import AsyncIterator, Sequence

from edgesim.exceptions import IncompleteBodyError, OriginError
from edgesim.http import BodyStream, EdgeRequest, EdgeResponse, Headers, has_control_bytes
from edgesim.origins.forwarding import origin_wire_headers
from edgesim.origins.http_client import (
    BrokenExchange,
    ConnectFailed,
    ConnectTimedOut,
    OriginBody,
    OriginPool,
    OriginResponse,
    ReadTimedOut,
    RequestNotSendable,
    TransportError,
)
from edgesim.origins.s3folder import S3Folder
from edgesim.origins.targets import OriginTarget
from edgesim.quotas import HEADERS_MAX_BYTES

__all__ = ["OriginFetcher"]

_RETRIED_ON_TIMEOUT = frozenset({"GET", "HEAD"})
_CHUNKED_FRAMING = frozenset({"transfer-encoding"})
# Methods that carry a body by definition get a Content-Length even when it is 0.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Bytes a request line may not hold (RFC 9112 §3.2: VCHAR only).
_NOT_VCHAR = re.compile(rb"[^\x21-\x7e]")
# RFC 9110 §5.5: a field value holds no control byte but HTAB.


class OriginFetcher:
    """Sends a request to an :class:`~edgesim.origins.targets.OriginTarget`, returns its answer.

    One connection pool is shared by every custom origin with the same keep-alive timeout, so
    consecutive requests to an origin reuse its connection for ``keepalive_timeout`` seconds.

    Each target says how it is dialled (``connection_attempts``, ``connection_timeout``). The
    keywords, when given, replace those values for every target; they serve callers that build
    targets by hand and want one setting for all of them. The edge leaves them out, so each
    configured origin gets its own.
    """

    def __init__(
        self, *, connect_timeout: float | None = None, connection_attempts: int | None = None
    ) -> None:
        if connection_attempts is not None and connection_attempts < 1:
            raise ValueError("connection_attempts must be at least 1")
        self._connect_timeout = connect_timeout
        self._attempts = connection_attempts
        self._pools: dict[int, OriginPool] = {}
        # Made at the first https origin: loading the system's CA bundle takes 50 ms or more,
        # and most edges (every test edge of a suite) never dial one.
        self._tls: ssl.SSLContext | None = None
        self._s3 = S3Folder()

    async def fetch(self, request: EdgeRequest, target: OriginTarget) -> EdgeResponse:
        """Send ``request`` to ``target``; raise :class:`OriginError` when the origin fails.

        The answer's body is its ``stream`` (``None`` when it has none): read it or ``aclose``
        it, since until then it holds the origin connection.
        """
        if target.kind == "s3" and target.local_root is not None:
            return await self._s3.fetch(request, target)
        return await self._fetch_http(request, target)

    async def aclose(self) -> None:
        """Close every pooled origin connection."""
        pools = list(self._pools.values())
        self._pools.clear()
        for pool in pools:
            await pool.aclose()

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    async def _fetch_http(self, request: EdgeRequest, target: OriginTarget) -> EdgeResponse:
        host = target.connect_host or target.domain_name
        where = f"{target.protocol}://{host}:{target.port}"
        upload = None if request.stream is None else _Upload(request.stream)
        try:
            return await self._attempts_at(request, target, host, where, upload)
        except BaseException:
            if upload is not None:
                await upload.aclose()
            raise

    async def _attempts_at(
        self,
        request: EdgeRequest,
        target: OriginTarget,
        host: str,
        where: str,
        upload: _Upload | None,
    ) -> EdgeResponse:
        pool = self._pool(target.keepalive_timeout)
        may_retry = request.method in _RETRIED_ON_TIMEOUT
        attempts = target.connection_attempts if self._attempts is None else self._attempts
        failure: OriginError | None = None  # made only when an attempt fails
        for _ in range(attempts):
            if upload is not None and upload.started:
                # Part of the body is gone and cannot be sent again.
                break
            try:
                answer = await self._send(pool, request, target, host, upload)
            except IncompleteBodyError as exc:
                # The viewer's upload stopped short: nothing whole can reach the origin.
                raise OriginError(502, f"the request body for {where} ended early: {exc}") from exc
            except ConnectFailed as exc:
                if _caused_by(exc, socket.gaierror):
                    raise OriginError(502, f"cannot resolve {host}: {exc}") from exc
                if _caused_by(exc, ssl.SSLError):
                    raise OriginError(502, f"TLS failure with {where}: {exc}") from exc
                if _caused_by(exc, UnicodeError):
                    raise OriginError(502, f"invalid origin address {where}: {exc}") from exc
                failure = _chained(OriginError(504, f"cannot connect to {where}: {exc}"), exc)
            except ConnectTimedOut as exc:
                failure = _chained(OriginError(504, f"connecting to {where} timed out"), exc)
            except ReadTimedOut as exc:
                failure = _chained(
                    OriginError(504, f"{where} did not answer within {target.read_timeout} s"), exc
                )
                if not may_retry:
                    raise failure from exc
            except RequestNotSendable as exc:
                # The request itself cannot be written (a header HTTP/1.1 forbids): no retry helps.
                raise OriginError(502, f"cannot send the request to {where}: {exc}") from exc
            except BrokenExchange as exc:
                failure = _chained(
                    OriginError(502, f"invalid or broken response from {where}: {exc}"), exc
                )
                if not may_retry:
                    raise failure from exc
            else:
                return await _edge_response(answer, where)
        raise failure or OriginError(504, f"{where}: no attempt made")

    async def _send(
        self,
        pool: OriginPool,
        request: EdgeRequest,
        target: OriginTarget,
        host: str,
        upload: _Upload | None,
    ) -> OriginResponse:
        headers = _origin_headers(request, target)
        connect = self._connect_timeout
        tls = target.protocol == "https"
        length = headers.get("content-length")
        return await pool.send(
            scheme=target.protocol,
            host=host,
            port=target.port,
            # The certificate must name the origin's domain, wherever we actually connect.
            sni_hostname=target.domain_name if tls else None,
            tls=self._tls_context() if tls else None,
            method=_encode(request.method),
            # Sent verbatim, not a normalised form of the URL.
            target=_request_target(target.path + request.uri, request.querystring),
            headers=[(_encode(k), _encode(v)) for k, v in headers],
            body=request.body if upload is None else upload,
            chunked=upload is not None and length is None,
            length=int(length) if length is not None and length.strip().isdigit() else None,
            connect_timeout=float(target.connection_timeout) if connect is None else connect,
            read_timeout=float(target.read_timeout),
        )

    def _pool(self, keepalive: int) -> OriginPool:
        pool = self._pools.get(keepalive)
        if pool is None:
            pool = self._pools[keepalive] = OriginPool(float(keepalive))
        return pool


async def _edge_response(answer: OriginResponse, where: str) -> EdgeResponse:
    problem = _header_problem(answer.headers)
    if problem is not None:
        # CloudFront answers 502 for headers it will not pass on; the connection is not reused.
        if answer.body is not None:
            await answer.body.aclose()
        raise OriginError(502, f"invalid response headers from {where}: {problem}")
    received = Headers.of_lines(
        [
            (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
            for name, value in answer.headers
        ]
    )
    if received.chunked():
        # The origin-response function sees the line, read-only (spec lambda-edge.md §3.2), and
        # the viewer gets the body re-chunked; the chunks, not a length, frame it (RFC 9112 §6.3).
        headers = received.without_hop_by_hop(keep=_CHUNKED_FRAMING)
        headers.remove("Content-Length")
    else:
        headers = received.without_hop_by_hop()
    # A body that came whole with its head is handed over whole: the viewer then gets one
    # write, and nothing waits on a stream that has nothing more to give.
    whole = answer.body.take_whole() if answer.body is not None else None
    return EdgeResponse(
        status=answer.status,
        headers=headers,
        body=whole or b"",
        reason=answer.reason.decode("latin-1"),
        stream=None
        if answer.body is None or whole is not None
        else _OriginBody(answer.body, where),
    )


def _header_problem(lines: Sequence[tuple[bytes, bytes]]) -> str | None:
    """Why CloudFront would refuse these origin header lines, or None."""
    flat = b"".join([name + value for name, value in lines])
    size = len(flat) + 4 * len(lines)
    if size > HEADERS_MAX_BYTES:
        return f"{size} bytes of headers, over CloudFront's {HEADERS_MAX_BYTES}"
    if not has_control_bytes(flat):
        return None  # the usual case, found in one pass over all the lines
    for name, value in lines:
        if has_control_bytes(name + value):
            return f"a control byte in the {name.decode('latin-1')!r} header"
    return None


class _OriginBody:
    """An origin's response body, as it arrives; owns the pooled connection until it ends.

    The connection goes back to the pool only at the body's clean end, so closing this early
    closes the connection instead of leaving a half-read one for the next request.
    """

    def __init__(self, body: OriginBody, where: str) -> None:
        self._body = body
        self._where = where

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._relay()

    async def _relay(self) -> AsyncIterator[bytes]:
        try:
            # Chunked framing removed, content codings (gzip, br) left alone.
            async for chunk in self._body:
                yield chunk
        except TransportError as exc:
            raise IncompleteBodyError(f"the body from {self._where} ended early: {exc}") from exc
        finally:
            await self._body.aclose()

    async def aclose(self) -> None:
        await self._body.aclose()


class _Upload:
    """A viewer's streamed body, sent on to the origin chunk by chunk.

    ``started`` tells the retry loop whether any of it has been taken, since those bytes cannot
    be sent a second time.
    """

    def __init__(self, source: BodyStream) -> None:
        self._source = source
        self.started = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        self.started = True
        async for chunk in self._source:
            if chunk:
                yield chunk

    async def aclose(self) -> None:
        await self._source.aclose()


def _origin_headers(request: EdgeRequest, target: OriginTarget) -> Headers:
    """The request's headers as they leave for the origin (see the module docstring)."""
    headers = origin_wire_headers(request, target)
    if "host" not in headers:
        headers.add("Host", target.domain_name)
    if request.stream is not None:
        # The body has not arrived yet: the viewer's own length (if any) is the one to keep.
        length = request.headers.get("content-length")
        if length is not None:
            headers.set_spelled("Content-Length", length.strip())
        else:
            headers.remove("content-length")
            headers.add("Transfer-Encoding", "chunked")
    else:
        body = request.body
        headers.fit_length(body, add=bool(body) or request.method in _BODY_METHODS)
    headers.set("Connection", "Keep-Alive")
    return headers


def _request_target(path: str, querystring: str) -> bytes:
    raw = _encode(f"{path}?{querystring}" if querystring else path)
    return _NOT_VCHAR.sub(lambda m: b"%%%02X" % m.group()[0], raw)


def _encode(text: str) -> bytes:
    # The inverse of how aiohttp decodes what a viewer sent, so bytes survive the round trip.
    return text.encode("utf-8", "surrogateescape")


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``kind`` is anywhere in the chain of causes behind ``exc``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _chained(error: OriginError, cause: BaseException) -> OriginError:
    error.__cause__ = cause
    return error
