"""The admin API: invalidations and cache figures, on a port of its own.

It listens on 127.0.0.1 by default, apart from the viewer ports, so nothing a viewer can reach
may purge the cache. ``edgesim invalidate`` is its client.

- ``POST /invalidations`` with ``{"paths": ["/a.html", "/img/*"], "distribution_id": "E..."}``
  (``distribution_id`` optional: every distribution served) answers
  ``{"invalidated": N, "distributions": [...]}``. A bad path is a 400 with ``{"error": ...}``.
- ``GET /cache`` answers the store's size and the distributions served.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from edgesim.cache.store import check_invalidation_path
from edgesim.pipeline import Edge

__all__ = ["AdminServer"]


class AdminServer:
    """Serves the admin API for ``edges`` until :meth:`aclose`."""

    def __init__(self, edges: Sequence[Edge], *, host: str = "127.0.0.1", port: int = 9080) -> None:
        self._edges = list(edges)
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Bind the admin port (0 picks a free one)."""
        app = web.Application()
        app.router.add_post("/invalidations", self._invalidate)
        app.router.add_get("/cache", self._cache)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    @property
    def url(self) -> str:
        """The admin API's base URL."""
        return f"http://{self.host}:{self.port}"

    async def aclose(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _invalidate(self, request: web.Request) -> web.Response:
        try:
            payload: Any = await request.json()
        except json.JSONDecodeError:
            return _error("the body must be JSON")
        if not isinstance(payload, dict):
            return _error('the body must be an object: {"paths": [...]}')
        paths = payload.get("paths")
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
            return _error('"paths" must be a non-empty list of strings')
        for path in paths:
            try:
                check_invalidation_path(path)
            except ValueError as problem:
                return _error(str(problem))
        wanted = payload.get("distribution_id")
        edges = [e for e in self._edges if wanted in (None, e.distribution.settings.id)]
        if not edges:
            known = ", ".join(e.distribution.settings.id for e in self._edges)
            return _error(f"no distribution {wanted!r} here; served: {known}", status=404)
        removed = sum([await edge.invalidate(paths) for edge in edges])
        body = {
            "invalidated": removed,
            "paths": paths,
            "distributions": [e.distribution.settings.id for e in edges],
        }
        return web.json_response(body, status=201)

    async def _cache(self, request: web.Request) -> web.Response:
        stores = {id(e.store): e.store for e in self._edges}
        stats = [await store.stats() for store in stores.values()]
        return web.json_response(
            {
                "objects": sum(s.objects for s in stats),
                "size_bytes": sum(s.size_bytes for s in stats),
                "distributions": [e.distribution.settings.id for e in self._edges],
            }
        )


def _error(message: str, *, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)
