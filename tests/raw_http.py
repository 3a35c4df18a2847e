"""Reading an HTTP/1.1 response off a raw socket, as the tests that write requests by hand do."""

from __future__ import annotations

import asyncio


async def one_response(reader: asyncio.StreamReader) -> bytes:
    """One whole response with a Content-Length body, read by its framing (a random request id
    in the head may itself contain the body's bytes)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head + await asyncio.wait_for(reader.readexactly(length), 10)
