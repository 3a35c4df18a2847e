"""Sending the request CloudFront forwards to an origin, and bringing back what it answered.

Two kinds of origin: a custom origin reached over HTTP/1.1 (httpx), and an S3 origin whose
bucket is a local folder (:mod:`edgesim.origins.s3folder`). An S3 origin without a local folder is
reached over HTTP like a custom one, at its ``protocol://domain_name:port``.

What goes out is the caller's request as is; the fetcher only does what CloudFront does at this
point: it puts the origin path in front of the URI, adds the origin's custom headers (replacing
same-named ones), sends ``Connection: Keep-Alive`` and a ``Content-Length`` that matches the
body, and keeps the request target byte for byte (only bytes HTTP/1.1 forbids in a request line
are percent-encoded). What comes back is the origin's status, reason, headers (every line, names
spelled as received, hop-by-hop lines dropped) and body bytes as they were on the wire: nothing
is decompressed and redirects are not followed.

Failures become :class:`~edgesim.exceptions.OriginError` with CloudFront's status:

- the origin's name does not resolve, its TLS certificate is refused, or it answers with
  something that is not HTTP or drops the connection mid-response: 502;
- it cannot be connected to within the target's ``connection_timeout``, or does not answer
  within its ``read_timeout`` (which bounds the wait for the first byte and every gap between
  bytes): 504.

Attempts: a connection that cannot be opened is tried again, the target's
``connection_attempts`` times in all (CloudFront's ``ConnectionAttempts``, default 3), for every
method, since nothing was sent yet. A timeout or a broken exchange is tried again only for GET
and HEAD; other methods are never retried, as CloudFront does not retry them. Retries follow at
once, without back-off.
"""

from __future__ import annotations

import re
import socket
import ssl

import httpx

from edgesim.exceptions import OriginError
from edgesim.http import EdgeRequest, EdgeResponse, Headers
from edgesim.origins.forwarding import origin_wire_headers
from edgesim.origins.s3folder import S3Folder
from edgesim.origins.targets import OriginTarget

__all__ = ["OriginFetcher"]

_RETRIED_ON_TIMEOUT = frozenset({"GET", "HEAD"})
# Methods that carry a body by definition get a Content-Length even when it is 0.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Bytes a request line may not hold (RFC 9112 §3.2: VCHAR only).
_NOT_VCHAR = re.compile(rb"[^\x21-\x7e]")


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
        self._pools: dict[int, httpx.AsyncHTTPTransport] = {}
        self._s3 = S3Folder()

    async def fetch(self, request: EdgeRequest, target: OriginTarget) -> EdgeResponse:
        """Send ``request`` to ``target``; raise :class:`OriginError` when the origin fails."""
        if target.kind == "s3" and target.local_root is not None:
            return await self._s3.fetch(request, target)
        return await self._fetch_http(request, target)

    async def aclose(self) -> None:
        """Close every pooled origin connection."""
        pools = list(self._pools.values())
        self._pools.clear()
        for pool in pools:
            await pool.aclose()

    async def _fetch_http(self, request: EdgeRequest, target: OriginTarget) -> EdgeResponse:
        host = target.connect_host or target.domain_name
        where = f"{target.protocol}://{host}:{target.port}"
        try:
            outgoing = self._outgoing(request, target, host)
        except (httpx.InvalidURL, UnicodeError) as exc:
            raise OriginError(502, f"invalid origin address {where}: {exc}") from exc
        pool = self._pool(target.keepalive_timeout)
        may_retry = request.method in _RETRIED_ON_TIMEOUT
        attempts = target.connection_attempts if self._attempts is None else self._attempts
        failure = OriginError(504, f"{where}: no attempt made")
        for _ in range(attempts):
            try:
                return await _exchange(pool, outgoing)
            except httpx.ConnectError as exc:
                if _caused_by(exc, socket.gaierror):
                    raise OriginError(502, f"cannot resolve {host}: {exc}") from exc
                if _caused_by(exc, ssl.SSLError):
                    raise OriginError(502, f"TLS failure with {where}: {exc}") from exc
                failure = _chained(OriginError(504, f"cannot connect to {where}: {exc}"), exc)
            except httpx.ConnectTimeout as exc:
                failure = _chained(OriginError(504, f"connecting to {where} timed out"), exc)
            except httpx.TimeoutException as exc:
                failure = _chained(
                    OriginError(504, f"{where} did not answer within {target.read_timeout} s"), exc
                )
                if not may_retry:
                    raise failure from exc
            except httpx.LocalProtocolError as exc:
                # The request itself cannot be written (a header HTTP/1.1 forbids): no retry helps.
                raise OriginError(502, f"cannot send the request to {where}: {exc}") from exc
            except httpx.TransportError as exc:
                failure = _chained(
                    OriginError(502, f"invalid or broken response from {where}: {exc}"), exc
                )
                if not may_retry:
                    raise failure from exc
        raise failure

    def _outgoing(self, request: EdgeRequest, target: OriginTarget, host: str) -> httpx.Request:
        headers = _origin_headers(request, target)
        connect = self._connect_timeout
        timeout = {
            "connect": float(target.connection_timeout) if connect is None else connect,
            "read": float(target.read_timeout),
            "write": float(target.read_timeout),
            "pool": None,
        }
        extensions: dict[str, object] = {
            "timeout": timeout,
            # Sent verbatim instead of httpx's normalised form of the URL.
            "target": _request_target(target.path + request.uri, request.querystring),
        }
        if target.protocol == "https" and host != target.domain_name:
            # The certificate must name the origin's domain, wherever we actually connect.
            extensions["sni_hostname"] = target.domain_name
        url = httpx.URL(scheme=target.protocol, host=host, port=target.port, path="/")
        return httpx.Request(
            request.method,
            url,
            headers=[(_encode(k), _encode(v)) for k, v in headers],
            content=request.body,
            extensions=extensions,
        )

    def _pool(self, keepalive: int) -> httpx.AsyncHTTPTransport:
        pool = self._pools.get(keepalive)
        if pool is None:
            # A bare transport, not an AsyncClient: a client would add its default headers
            # and keep a cookie jar across origins, neither of which CloudFront has.
            pool = httpx.AsyncHTTPTransport(
                verify=ssl.create_default_context(),
                trust_env=False,
                http1=True,
                http2=False,
                limits=httpx.Limits(
                    max_connections=None,
                    max_keepalive_connections=None,
                    keepalive_expiry=float(keepalive),
                ),
            )
            self._pools[keepalive] = pool
        return pool


async def _exchange(pool: httpx.AsyncHTTPTransport, outgoing: httpx.Request) -> EdgeResponse:
    response = await pool.handle_async_request(outgoing)
    try:
        # Raw bytes: chunked framing removed, content codings (gzip, br) left alone.
        body = b"".join([chunk async for chunk in response.aiter_raw()])
    finally:
        await response.aclose()
    reason = response.extensions.get("reason_phrase", b"")
    headers = Headers((_decode(k), _decode(v)) for k, v in response.headers.raw)
    return EdgeResponse(
        status=response.status_code,
        headers=headers.without_hop_by_hop(),
        body=body,
        reason=reason.decode("latin-1") if isinstance(reason, bytes) else "",
    )


def _origin_headers(request: EdgeRequest, target: OriginTarget) -> Headers:
    """The request's headers as they leave for the origin (see the module docstring)."""
    headers = origin_wire_headers(request, target)
    if "host" not in headers:
        headers.add("Host", target.domain_name)
    body = request.body
    if body or request.method in _BODY_METHODS or "content-length" in headers:
        _set_keeping_spelling(headers, "Content-Length", str(len(body)))
    headers.set("Connection", "Keep-Alive")
    return headers


def _set_keeping_spelling(headers: Headers, name: str, value: str) -> None:
    spelled = next((k for k, _ in headers if k.lower() == name.lower()), name)
    headers.set(spelled, value)


def _request_target(path: str, querystring: str) -> bytes:
    raw = _encode(f"{path}?{querystring}" if querystring else path)
    return _NOT_VCHAR.sub(lambda m: b"%%%02X" % m.group()[0], raw)


def _encode(text: str) -> bytes:
    # The inverse of how aiohttp decodes what a viewer sent, so bytes survive the round trip.
    return text.encode("utf-8", "surrogateescape")


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


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
