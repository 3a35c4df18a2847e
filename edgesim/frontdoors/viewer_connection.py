"""Viewer connections: aiohttp's HTTP/1.1 handler, held to CloudFront's manners and to limits
that keep slow or silent viewers from starving everyone else.

aiohttp parses and frames requests; this module decides what happens around that:

- **Timeouts.** The request line and headers must arrive within ``header_timeout`` of the
  request's first byte (or of the connection's opening); an idle keep-alive connection is closed
  after ``keepalive_timeout``. The gap allowed between body bytes is applied where the body is
  read (:mod:`edgesim.frontdoors.server`).
- **A connection budget.** Open file descriptors are finite: past ``max_connections`` a new
  viewer connection closes the one that has been idle (no request being served) the longest, so
  a thousand silent sockets cannot make accept() fail for a real viewer.
- **CloudFront's pages for what the parser refuses.** A request aiohttp cannot parse gets
  CloudFront's 400 page, and one beyond the parser's size limits (which sit above CloudFront's
  20,480 bytes) its 413 page, both with ``Server: CloudFront``, then the connection is closed;
  never aiohttp's plain-text answer.
- **Raw non-ASCII bytes in the request line** (``curl 'http://host/café'`` sends them) are
  refused by aiohttp's C parser. CloudFront accepts them (spec lambda-edge.md §3.4), so a
  connection whose next request line carries such bytes is handed to aiohttp's pure-Python
  parser, which keeps them (undecodable bytes as surrogate escapes, as header bytes are kept).
"""

from __future__ import annotations

import asyncio
import resource
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import http_exceptions, web
from aiohttp.http_parser import HttpRequestParserPy
from aiohttp.streams import EMPTY_PAYLOAD
from aiohttp.web_protocol import RequestHandler, RequestPayloadError
from aiohttp.web_request import BaseRequest

__all__ = [
    "ACCEPT_BATCH",
    "ConnectionBudget",
    "DEFAULT_LIMITS",
    "Rejecter",
    "ViewerConnection",
    "ViewerLimits",
    "default_max_connections",
    "parser_limits",
    "raise_open_files_limit",
]

# Builds the bytes of CloudFront's answer to an unparsable request (400, or 413 when too large),
# given the viewer's address.
Rejecter = Callable[[int, str], bytes]


@dataclass(frozen=True)
class ViewerLimits:
    """How long a viewer may take, and how many connections may be open at once.

    These are edgesim's own defences, not CloudFront facts: CloudFront documents no viewer-side
    timeouts. The defaults are short enough that slow-header and silent-connection attacks
    cannot pin the server, and long enough for any real client on a laptop or in CI.
    """

    header_timeout: float = 10.0
    """Seconds from a request's first byte (or the connection's opening) to its last header."""
    body_timeout: float = 30.0
    """Longest silence allowed between two chunks of a request body."""
    keepalive_timeout: float = 15.0
    """Seconds an idle keep-alive connection stays open."""
    max_connections: int = 0
    """Open viewer connections at most; 0 derives it from the open-files limit."""


DEFAULT_LIMITS = ViewerLimits()

# The parser's own limits sit above CloudFront's 20,480-byte request limit, so that the
# pipeline counts the exact bytes and answers 413 (spec cloudfront-caching.md §5); what goes
# beyond these is over CloudFront's limit too, and gets the same 413 here.
_MAX_LINE_BYTES = 65536
# The shortest header line ("a:" and CRLF) is 4 bytes, so 20,480 bytes hold at most 5,120.
_MAX_HEADERS = 20480 // 4 + 1


def parser_limits() -> dict[str, int]:
    """aiohttp's parser settings for viewer connections."""
    return {
        "max_line_size": _MAX_LINE_BYTES,
        "max_field_size": _MAX_LINE_BYTES,
        "max_headers": _MAX_HEADERS,
    }


# asyncio accepts up to a listener's backlog of connections in one go, before the budget sees
# any of them: that many descriptors must be free on top of the budget, per listener.
ACCEPT_BATCH = 128


def default_max_connections(listeners: int = 1) -> int:
    """Viewer connections the open-files limit leaves room for, after what workers (pipes),
    origin connections, files and one accept batch per listener need."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 65536
    reserve = max(64, soft // 4) + listeners * ACCEPT_BATCH
    return max(16, soft - reserve)


def raise_open_files_limit() -> None:
    """Raise the soft open-files limit to the hard one, as servers do at start."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard and (hard == resource.RLIM_INFINITY or soft < hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass  # a container may refuse it; the budget follows whatever limit holds


class ConnectionBudget:
    """The viewer connections open across every port, oldest idle first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open = 0
        # Connections serving no request, in the order they became idle.
        self._idle: OrderedDict[ViewerConnection, None] = OrderedDict()

    @property
    def open(self) -> int:
        """Connections currently open."""
        return self._open

    def opened(self, connection: ViewerConnection) -> bool:
        """Count a new connection; make room by closing the longest-idle one when full.

        False when every open connection is busy serving a request: the new one must go.
        """
        if self._open >= self.limit:
            if not self._idle:
                return False
            victim, _ = self._idle.popitem(last=False)
            victim.evict()
        self._open += 1
        self._idle[connection] = None
        return True

    def closed(self, connection: ViewerConnection) -> None:
        """Forget a connection that has gone."""
        self._open -= 1
        self._idle.pop(connection, None)

    def busy(self, connection: ViewerConnection) -> None:
        """A request is being served on ``connection``: it is not to be evicted."""
        self._idle.pop(connection, None)

    def idle(self, connection: ViewerConnection) -> None:
        """``connection`` serves no request any more."""
        self._idle[connection] = None
        self._idle.move_to_end(connection)


def _too_large(exc: BaseException | None) -> bool:
    """Whether aiohttp refused the request for one of its size limits."""
    if isinstance(exc, http_exceptions.LineTooLong):
        return True
    return isinstance(exc, http_exceptions.BadHttpMessage) and "Too many headers" in str(exc)


class ViewerConnection(RequestHandler):
    """aiohttp's request handler with header timeouts, a connection budget, CloudFront's error
    pages for unparsable requests and a parser that keeps raw non-ASCII request lines."""

    def __init__(
        self,
        manager: web.Server,
        *,
        loop: asyncio.AbstractEventLoop,
        limits: ViewerLimits,
        budget: ConnectionBudget,
        rejecter: Rejecter,
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, loop=loop, keepalive_timeout=limits.keepalive_timeout, **kwargs)
        self._limits = limits
        self._budget = budget
        self._rejecter = rejecter
        self._parser_kwargs = kwargs
        self._head_timer: asyncio.TimerHandle | None = None
        self._serving = 0
        self._counted = False
        # True when the next byte to arrive starts a request line (see data_received).
        self._at_request_start = True
        self._lenient = False
        # Read once per connection rather than once per request.
        self.client_ip = "127.0.0.1"
        """The viewer's address."""
        self.local_port = 0
        """The port the viewer connected to."""
        self.scheme = "http"
        """``https`` on a TLS connection."""

    # -- life of the connection -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, (list, tuple)):
            self.client_ip = str(peer[0])
        local = transport.get_extra_info("sockname")
        if isinstance(local, (list, tuple)):
            self.local_port = int(local[1])
        if transport.get_extra_info("sslcontext") is not None:
            self.scheme = "https"
        if not self._budget.opened(self):
            transport.close()
            return
        self._counted = True
        self._arm_head_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm_head_timer()
        if self._counted:
            self._counted = False
            self._budget.closed(self)
        super().connection_lost(exc)

    def evict(self) -> None:
        """Close this idle connection to make room for a new one."""
        self.force_close()

    def data_received(self, data: bytes) -> None:
        if self._at_request_start and not self._lenient and not _request_line(data).isascii():
            self._use_lenient_parser()
        before = self._request_count
        super().data_received(data)
        # Exact only in the common case: a chunk that ended with a whole bodiless request. After
        # a body or a partial head the boundary is unknown, and the strict parser stays.
        self._at_request_start = (
            self._request_count > before
            and data.endswith(b"\r\n\r\n")
            and not self._messages_have_body()
        )
        if not self._serving and self._head_timer is None and not self._at_request_start:
            # A head still arriving is timed from this chunk; one that came whole needs no
            # timer (arming one per keep-alive request would cost every request a timer).
            self._arm_head_timer()

    def _messages_have_body(self) -> bool:
        return any(payload is not EMPTY_PAYLOAD for _, payload in self._messages)

    def _use_lenient_parser(self) -> None:
        keys = ("max_line_size", "max_field_size", "max_headers", "auto_decompress")
        self._parser = HttpRequestParserPy(
            self,
            self._loop,
            self._read_bufsize,
            payload_exception=RequestPayloadError,
            **{k: v for k, v in self._parser_kwargs.items() if k in keys},
        )
        self._lenient = True

    # -- requests ---------------------------------------------------------------------------

    def request_started(self) -> None:
        """The edge began serving a request on this connection (its headers are in)."""
        self._serving += 1
        self._disarm_head_timer()
        self._budget.busy(self)

    def request_finished(self) -> None:
        """The edge is done with that request; the connection may idle again."""
        self._serving -= 1
        if not self._serving and self._counted:
            self._budget.idle(self)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """CloudFront's page for a request the parser refused, written as CloudFront writes it
        (HTTP/1.1, then the connection is closed); other errors are aiohttp's to answer."""
        if not isinstance(exc, http_exceptions.HttpProcessingError) or status != 400:
            return super().handle_error(request, status, exc, message)
        code = 413 if _too_large(exc) else 400
        if request.writer.output_size == 0:
            self.reject(code)
        else:
            self.force_close()
        return web.Response(status=code)

    def reject(self, status: int) -> None:
        """Answer CloudFront's ``status`` page for an unreadable request and close."""
        peer = self.transport.get_extra_info("peername") if self.transport else None
        self.send_and_close(self._rejecter(status, str(peer[0]) if peer else "127.0.0.1"))

    def send_and_close(self, data: bytes) -> None:
        """Write ``data`` as the last bytes of this connection, reading nothing more.

        Closing flushes what was written; whatever aiohttp then tries to send meets a closed
        transport and is dropped.
        """
        if self.transport is not None:
            self.transport.write(data)
        self.force_close()

    # -- the header timer -------------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        self._head_timer = self._loop.call_later(self._limits.header_timeout, self._head_expired)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if not self._serving:
            # Too slow to send its headers: dropped without an answer, as busy servers do.
            self.force_close()


def _request_line(data: bytes) -> bytes:
    """The first line of ``data`` (all of it when no line ends there)."""
    end = data.find(b"\n")
    return data if end < 0 else data[:end]
