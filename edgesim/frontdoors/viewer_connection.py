"""Viewer connections: HTTP/1.1 toward viewers, held to CloudFront's manners and to the limits of
:mod:`edgesim.frontdoors.viewer_limits`.

aiohttp's HTTP parser reads the requests; this module does everything around it, on the event
loop's protocol callbacks, with no web framework in between (a cache hit would pay for a
request object, a task switch and response bookkeeping on every request):

- **One request at a time, in order.** Pipelined requests wait in a short queue (reading pauses
  past it); each is answered before the next one starts. A body the edge left unread is read
  and discarded before the next request, so the connection stays usable.
- **Timeouts.** The request line and headers must arrive within ``header_timeout`` of the
  request's first byte (or of the connection's opening); an idle keep-alive connection is closed
  after ``keepalive_timeout``. The gap allowed between body bytes is applied where the body is
  read (:mod:`edgesim.frontdoors.messages`).
- **A connection budget** shared by every port (:class:`ConnectionBudget`).
- **CloudFront's pages for what the parser refuses.** A request that cannot be parsed gets
  CloudFront's 400 page, and one beyond the parser's size limits (which sit above CloudFront's
  20,480 bytes) its 413 page, both with ``Server: CloudFront``, then the connection is closed.
- **Raw non-ASCII bytes in the request line** (``curl 'http://host/café'`` sends them) are
  refused by aiohttp's C parser. CloudFront accepts them (spec lambda-edge.md §3.4), so a
  connection whose next request line carries such bytes is handed to aiohttp's pure-Python
  parser, which keeps them (undecodable bytes as surrogate escapes, as header bytes are kept).
- **Bodies as sent.** A request body reaches the pipeline as the viewer's bytes: a
  ``Content-Encoding: gzip`` upload is not inflated on the way.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import sys
from collections import deque
from collections.abc import Coroutine
from typing import Any

from aiohttp import http_exceptions
from aiohttp.base_protocol import BaseProtocol
from aiohttp.http_parser import HttpRequestParser, HttpRequestParserPy, RawRequestMessage
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from aiohttp.web_protocol import RequestPayloadError

from edgesim.frontdoors.viewer_limits import ConnectionBudget, Rejecter, ViewerLimits, parser_limits
from edgesim.frontdoors.viewer_request import Handler, ViewerRequest
from edgesim.pipeline.routing import MAX_REQUEST_BODY

__all__ = ["ViewerConnection", "ViewerConnections"]

logger = logging.getLogger("edgesim.frontdoors")

# Pipelined requests parsed ahead of the one being answered; reading pauses past this many and
# resumes once half have been answered.
_QUEUE = 16
_READ_BUFFER = 2**16


class _Unreadable:
    """Stands in the queue where the parser gave up: CloudFront's page goes out in its turn."""

    __slots__ = ("error",)

    def __init__(self, error: http_exceptions.HttpProcessingError) -> None:
        self.error = error


def _too_large(exc: http_exceptions.HttpProcessingError) -> bool:
    """Whether the parser refused the request for one of its size limits."""
    if isinstance(exc, http_exceptions.LineTooLong):
        return True
    return isinstance(exc, http_exceptions.BadHttpMessage) and "Too many headers" in str(exc)


def _request_line(data: bytes) -> bytes:
    """The first line of ``data`` (all of it when no line ends there)."""
    end = data.find(b"\n")
    return data if end < 0 else data[:end]


def _eager(coro: Coroutine[Any, Any, None], loop: asyncio.AbstractEventLoop) -> asyncio.Task[None]:
    # Started at once, within data_received: a cache hit is answered before the callback
    # returns, without waiting a turn of the loop.
    if sys.version_info >= (3, 12):
        return asyncio.Task(coro, loop=loop, eager_start=True)
    return loop.create_task(coro)  # pragma: no cover - Python 3.11


class ViewerConnection(BaseProtocol):
    """One viewer's connection: requests parsed, answered in order by ``handler``, within
    ``limits``, counted against ``budget``; ``rejecter`` builds CloudFront's page for bytes
    that are not a request."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        handler: Handler,
        *,
        limits: ViewerLimits,
        budget: ConnectionBudget,
        rejecter: Rejecter,
        connections: ViewerConnections,
    ) -> None:
        super().__init__(loop)
        self._handler = handler
        self._limits = limits
        self._budget = budget
        self._rejecter = rejecter
        self._connections = connections
        self._parser: Any = None
        self._queue: deque[tuple[RawRequestMessage | _Unreadable, StreamReader]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._serving = False  # a request is being answered (or the queue worked through)
        self._current: ViewerRequest | None = None
        self._closing = False  # answer what is under way, then close
        self._counted = False
        self._done: asyncio.Future[None] | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_since = 0.0
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
        self.ssl_context: ssl.SSLContext | None = None
        """The TLS context of an https connection (aiohttp's response writer reads it)."""
        self.peername: Any = None
        self.sockname: Any = None

    # -- life of the connection -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.peername = transport.get_extra_info("peername")
        if isinstance(self.peername, (list, tuple)):
            self.client_ip = str(self.peername[0])
        self.sockname = transport.get_extra_info("sockname")
        if isinstance(self.sockname, (list, tuple)):
            self.local_port = int(self.sockname[1])
        self.ssl_context = transport.get_extra_info("sslcontext")
        if self.ssl_context is not None:
            self.scheme = "https"
        self._parser = self._new_parser(HttpRequestParser)
        self._connections.add(self)
        if not self._budget.opened(self):
            self._close_now()
            return
        self._counted = True
        self._arm_head_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        self._disarm_head_timer()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._counted:
            self._counted = False
            self._budget.closed(self)
        self._connections.discard(self)
        current = self._current
        if current is not None and not current.payload.is_eof():
            # A body still being read ends with the connection.
            current.payload.set_exception(ConnectionResetError("the viewer closed the connection"))
        self._parser = None
        self._queue.clear()
        self._resolve_done()

    def evict(self) -> None:
        """Close this idle connection to make room for a new one."""
        self._close_now()

    @property
    def busy(self) -> bool:
        """Whether a request is being answered."""
        return self._serving

    def close_when_done(self) -> None:
        """Answer the request under way (if any), read no more, then close."""
        self._closing = True
        if not self._serving:
            self._close_now()

    async def finished(self) -> None:
        """Wait until the request under way has been answered (at once when there is none)."""
        if not self._serving:
            return
        if self._done is None:
            self._done = self._loop.create_future()
        await asyncio.shield(self._done)

    def abort(self) -> asyncio.Task[None] | None:
        """Cut the request under way and close; the cut request's task, to be awaited."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
        self._close_now()
        return task

    def _close_now(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.close()

    def _resolve_done(self) -> None:
        done, self._done = self._done, None
        if done is not None and not done.done():
            done.set_result(None)

    # -- reading ----------------------------------------------------------------------------------

    def _new_parser(self, kind: Any) -> Any:
        return kind(
            self,
            self._loop,
            _READ_BUFFER,
            payload_exception=RequestPayloadError,
            auto_decompress=False,
            max_msg_queue_size=_QUEUE,
            **parser_limits(),
        )

    def data_received(self, data: bytes) -> None:
        if self._closing or self._parser is None:
            return
        if self._idle_timer is not None and data:
            self._idle_since = 0.0  # a request is arriving: the idle clock stops
        if (
            self._at_request_start
            and not self._lenient
            and not data.isascii()
            and not _request_line(data).isascii()
        ):
            self._parser = self._new_parser(HttpRequestParserPy)
            self._lenient = True
        queue = self._queue
        try:
            messages, upgraded, _ = self._parser.feed_data(data)
        except http_exceptions.HttpProcessingError as exc:
            messages, upgraded = [(_Unreadable(exc), EMPTY_PAYLOAD)], False
            self._parser = None  # nothing after the unreadable bytes is read
        queue.extend(messages)
        if upgraded:
            # An upgrade (WebSocket) is not carried: the request is answered, then the
            # connection closes, and what followed it is never read.
            self._parser = None
        if data:
            # Exact only in the common case: a chunk that ended with a whole bodiless request.
            # After a body or a partial head the boundary is unknown, and the strict parser
            # stays.
            self._at_request_start = (
                bool(messages) and data.endswith(b"\r\n\r\n") and messages[-1][1] is EMPTY_PAYLOAD
            )
            if not self._serving and self._head_timer is None and not self._at_request_start:
                # A head still arriving is timed from this chunk; one that came whole needs no
                # timer (arming one per keep-alive request would cost every request a timer).
                self._arm_head_timer()
        if len(queue) >= _QUEUE:
            self._pause_reading_for_buffer()
        if queue and not self._serving:
            self._serving = True  # before the task runs: one answerer per connection
            task = _eager(self._answer_queue(), self._loop)
            if not task.done():
                self._task = task

    def _next(self) -> tuple[RawRequestMessage | _Unreadable, StreamReader]:
        item = self._queue.popleft()
        if self._parser is not None:
            self._parser.message_consumed()
            if self._buffer_paused and len(self._queue) <= _QUEUE // 2:
                # Parse what waited in the parser's buffer, then read the socket again.
                self.data_received(b"")
                if len(self._queue) < _QUEUE:
                    self._resume_reading_for_buffer()
        return item

    # -- answering --------------------------------------------------------------------------------

    async def _answer_queue(self) -> None:
        try:
            # The connection's loss empties the queue: the loop ends with it.
            while self._queue:
                message, payload = self._next()
                if isinstance(message, _Unreadable):
                    self.reject(413 if _too_large(message.error) else 400)
                    return
                if message.version.major < 1:
                    # HTTP/0.9 has no status line or headers; CloudFront answers it as a bad
                    # HTTP/1.1 request rather than in kind.
                    self.reject(400)
                    return
                # The request is answered: no head timer, and no eviction meanwhile.
                self._disarm_head_timer()
                counted = self._counted
                if counted:
                    self._budget.busy(self)
                request = self._current = ViewerRequest(message, payload, self)
                try:
                    keep_alive = await self._handler(request)
                except Exception:
                    logger.exception("edgesim failed to answer %s %s", message.method, message.path)
                    keep_alive = False
                finally:
                    self._current = None
                    if counted and self._counted:
                        self._budget.idle(self)
                if keep_alive and not payload.is_eof():
                    keep_alive = await self._discard_rest(payload)
                if not keep_alive:
                    self._closing = True
                if self._closing or self._parser is None:
                    return  # closed below
        finally:
            self._serving = False
            self._task = None
            if self._closing or self._parser is None:
                self._close_now()
            elif not self._queue:
                self._arm_idle_timer()
            self._resolve_done()

    async def _discard_rest(self, payload: StreamReader) -> bool:
        """Read and drop the body the edge did not read, within the body gap and CloudFront's
        maximum; False when the viewer would not finish it (the connection then closes)."""
        received = 0
        try:
            while not payload.is_eof():
                async with asyncio.timeout(self._limits.body_timeout):
                    chunk = await payload.readany()
                received += len(chunk)
                if not chunk or received > MAX_REQUEST_BODY:
                    break
        except (TimeoutError, ConnectionError, http_exceptions.HttpProcessingError):
            return False
        return payload.is_eof()

    def reject(self, status: int) -> None:
        """Answer CloudFront's ``status`` page for an unreadable request and close."""
        self.send_and_close(self._rejecter(status, self.client_ip))

    def send_and_close(self, data: bytes) -> None:
        """Write ``data`` as the last bytes of this connection, reading nothing more; closing
        flushes what was written."""
        self._parser = None
        if self.transport is not None:
            self.transport.write(data)
        self._close_now()

    # -- timers -----------------------------------------------------------------------------------

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
            self._close_now()

    def _arm_idle_timer(self) -> None:
        # One timer per connection, moved forward lazily when it fires: re-arming it after every
        # keep-alive request would cost each request a timer.
        self._idle_since = self._loop.time()
        if self._idle_timer is None:
            self._idle_timer = self._loop.call_at(
                self._idle_since + self._limits.keepalive_timeout, self._idle_expired
            )

    def _idle_expired(self) -> None:
        self._idle_timer = None
        if self._serving or self._queue or self._head_timer is not None or not self._idle_since:
            return  # busy, or a request is arriving: the head timer or the next answer decides
        due = self._idle_since + self._limits.keepalive_timeout
        if self._loop.time() >= due:
            self._close_now()
        else:
            self._idle_timer = self._loop.call_at(due, self._idle_expired)


class ViewerConnections:
    """The open viewer connections of a server, for its shutdown."""

    def __init__(self) -> None:
        self._open: set[ViewerConnection] = set()

    def __len__(self) -> int:
        return len(self._open)

    def add(self, connection: ViewerConnection) -> None:
        """Note a new connection."""
        self._open.add(connection)

    def discard(self, connection: ViewerConnection) -> None:
        """Forget a connection that has closed."""
        self._open.discard(connection)

    async def shutdown(self, grace: float) -> None:
        """Close idle connections now; give requests under way ``grace`` seconds to be
        answered, then cut them."""
        for connection in list(self._open):
            connection.close_when_done()
        waits = [asyncio.ensure_future(c.finished()) for c in self._open if c.busy]
        if waits:
            await asyncio.wait(waits, timeout=grace)
            for wait in waits:
                wait.cancel()
        cut = [t for c in list(self._open) if (t := c.abort()) is not None]
        if cut:
            # Cancelled requests release their origin connections and workers before the edges
            # close underneath them.
            await asyncio.wait(cut, timeout=5.0)
