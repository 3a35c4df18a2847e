"""What one viewer may take: how long it may be silent, how large its request head may be, and
how many connections may be open at once.

These are edgesim's own defences, not CloudFront facts (CloudFront documents no viewer-side
timeouts): slow-header and silent-connection attacks must not pin the server, and a thousand
idle sockets must not make accept() fail for a real viewer.
"""

from __future__ import annotations

import resource
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "ACCEPT_BATCH",
    "ConnectionBudget",
    "DEFAULT_LIMITS",
    "Evictable",
    "Rejecter",
    "ViewerLimits",
    "default_max_connections",
    "parser_limits",
    "raise_open_files_limit",
]


class Evictable(Protocol):
    """A connection the budget can close to make room."""

    def evict(self) -> None:
        """Close this idle connection."""


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
        self._idle: OrderedDict[Evictable, None] = OrderedDict()

    @property
    def open(self) -> int:
        """Connections currently open."""
        return self._open

    def opened(self, connection: Evictable) -> bool:
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

    def closed(self, connection: Evictable) -> None:
        """Forget a connection that has gone."""
        self._open -= 1
        self._idle.pop(connection, None)

    def busy(self, connection: Evictable) -> None:
        """A request is being served on ``connection``: it is not to be evicted."""
        self._idle.pop(connection, None)

    def idle(self, connection: Evictable) -> None:
        """``connection`` serves no request any more."""
        idle = self._idle
        if connection in idle:
            idle.move_to_end(connection)
        else:
            idle[connection] = None
