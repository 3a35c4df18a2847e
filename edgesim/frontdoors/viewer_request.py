"""One request as it came from a viewer, and what answers it.

A :class:`ViewerRequest` is what :mod:`edgesim.frontdoors.viewer_connection` hands the front
door for each request it parses: the parsed head (aiohttp's ``RawRequestMessage``), the body as
it arrives, and the connection the answer goes to. A :data:`Handler` answers it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import HttpVersion
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader

if TYPE_CHECKING:
    from edgesim.frontdoors.viewer_connection import ViewerConnection

__all__ = ["Handler", "ViewerRequest"]


class ViewerRequest:
    """One request as it came from a viewer: its parsed head, its body as it arrives, and the
    connection it came on (where its answer goes)."""

    __slots__ = ("connection", "message", "payload")

    def __init__(
        self, message: RawRequestMessage, payload: StreamReader, connection: ViewerConnection
    ) -> None:
        self.message = message
        self.payload = payload
        self.connection = connection

    @property
    def method(self) -> str:
        """The request's method, as sent."""
        return self.message.method

    @property
    def version(self) -> HttpVersion:
        """The request's HTTP version."""
        return self.message.version

    @property
    def keep_alive(self) -> bool:
        """Whether the viewer lets the connection stay open after this request."""
        return not self.message.should_close

    @property
    def body_exists(self) -> bool:
        """Whether the request announced a body (a length or chunks)."""
        return self.payload is not EMPTY_PAYLOAD

    @property
    def transport(self) -> asyncio.Transport | None:
        """The viewer's socket, None once it has gone."""
        return self.connection.transport

    async def drain(self) -> None:
        """Wait until the viewer has read enough of what was written; ConnectionError once it
        has gone."""
        await self.connection._drain_helper()


Handler = Callable[[ViewerRequest], Awaitable[bool]]
"""Answers one request; True when the connection may serve another."""
