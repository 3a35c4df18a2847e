"""The admin API: invalidations and cache figures, on a port of its own.

It listens on 127.0.0.1 by default, apart from the viewer ports, so nothing a viewer can reach
may purge the cache. ``edgesim invalidate`` is its client. Every request, ``GET /cache``
included (one rule is easier to trust than a list of exceptions), must pass the checks of
:mod:`edgesim.frontdoors.admin_auth`: a ``Host`` naming this API (421 otherwise), no foreign
``Origin`` (403) and ``Authorization: Bearer TOKEN`` (403).

- ``POST /invalidations`` with ``Content-Type: application/json`` (415 otherwise) and
  ``{"paths": ["/a.html", "/img/*"], "distribution_id": "E..."}`` (``distribution_id`` optional
  or null: every distribution served) answers 201 ``{"invalidated": N, "paths": [...],
  "distributions": [...]}``. A malformed body is a 400, a body over :data:`MAX_BODY_BYTES` a
  413, an unknown distribution a 404 (CloudFront's NoSuchDistribution).
- ``GET /cache`` answers the store's size and the distributions served.

Every error is JSON: ``{"error": "..."}``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import hdrs, web

from edgesim.cache.store import check_invalidation_path
from edgesim.frontdoors.admin_auth import (
    AdminAddress,
    AdminRefused,
    check_token,
    new_token,
    remove_token_file,
    write_token_file,
)
from edgesim.pipeline import Edge

__all__ = ["MAX_BODY_BYTES", "MAX_PATHS", "AdminServer"]

# Far above any real invalidation (MAX_PATHS paths of a few hundred bytes), far below memory
# trouble.
MAX_BODY_BYTES = 1024 * 1024
# CloudFront's quota of paths in invalidations in progress; here one request is one invalidation.
MAX_PATHS = 3000
_FIELDS = ("paths", "distribution_id")

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AdminServer:
    """Serves the admin API for ``edges`` until :meth:`aclose`.

    ``token`` is the one requests must carry (a random one if not given). With
    ``publish_token``, :meth:`start` writes it to the per-user token file of the port bound,
    where ``edgesim invalidate`` finds it, and :meth:`aclose` removes it.
    """

    def __init__(
        self,
        edges: Sequence[Edge],
        *,
        host: str = "127.0.0.1",
        port: int = 9080,
        token: str | None = None,
        publish_token: bool = False,
    ) -> None:
        # Read at each request, not copied: a live list (EdgeServer.edges) shows hot reloads.
        self._edges = edges
        self.host = host
        self.port = port
        self.token = token or new_token()
        self.token_file: Path | None = None
        self._publish = publish_token
        self._address = AdminAddress(host, port)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Bind the admin port (0 picks a free one), then publish the token if asked to.

        Raises ``OSError`` if the port cannot be bound or the token file cannot be written.
        """
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_BODY_BYTES)
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
        self._address = AdminAddress(self.host, self.port)
        if self._publish:
            try:
                self.token_file = write_token_file(self.port, self.token)
            except OSError as error:
                await self.aclose()
                raise OSError(
                    error.errno, f"cannot write the admin token file: {error.strerror or error}"
                ) from error

    @property
    def url(self) -> str:
        """The admin API's base URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def aclose(self) -> None:
        """Stop listening and remove the token file this server wrote."""
        if self.token_file is not None:
            remove_token_file(self.token_file, self.token)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _guard(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        try:
            self._address.check_host(request.headers.get(hdrs.HOST))
            self._address.check_origin(request.headers.get(hdrs.ORIGIN))
            check_token(request.headers.get(hdrs.AUTHORIZATION), self.token)
            return await handler(request)
        except AdminRefused as refusal:
            return _error(str(refusal), status=refusal.status)
        except web.HTTPException as error:  # the router's 404 and 405, as JSON like the rest
            answer = _error(error.reason, status=error.status)
            if hdrs.ALLOW in error.headers:
                answer.headers[hdrs.ALLOW] = error.headers[hdrs.ALLOW]
            return answer

    async def _invalidate(self, request: web.Request) -> web.Response:
        payload = await _json_object(request)
        paths, wanted = _invalidation(payload)
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


async def _json_object(request: web.Request) -> dict[str, Any]:
    """The request's body as a JSON object, or :class:`AdminRefused` (415, 413 or 400)."""
    media_type = request.headers.get(hdrs.CONTENT_TYPE, "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        # A page may send form or text/plain bodies cross-site without a preflight; JSON needs one.
        raise AdminRefused(415, "the body must be JSON sent as Content-Type: application/json")
    too_large = AdminRefused(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise too_large
    body = bytearray()
    while len(body) <= MAX_BODY_BYTES:  # a chunked body announces no length: count it
        chunk = await request.content.read(MAX_BODY_BYTES + 1 - len(body))
        if not chunk:
            break
        body += chunk
    if len(body) > MAX_BODY_BYTES:
        raise too_large
    try:
        payload: Any = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as problem:
        raise AdminRefused(400, f"the body is not UTF-8: {problem.reason}") from None
    except json.JSONDecodeError as problem:
        raise AdminRefused(400, f"the body is not JSON: {problem}") from None
    except RecursionError:
        raise AdminRefused(400, "the body is JSON nested too deeply") from None
    if not isinstance(payload, dict):
        raise AdminRefused(400, 'the body must be a JSON object: {"paths": [...]}')
    return payload


def _invalidation(payload: dict[str, Any]) -> tuple[list[str], str | None]:
    """The paths and distribution id of an invalidation, or :class:`AdminRefused` (400)."""
    unknown = sorted(set(payload) - set(_FIELDS))
    if unknown:
        # A misspelt "distribution_id" must not quietly widen the purge to every distribution.
        raise AdminRefused(400, f"unknown fields {unknown}; the fields are {list(_FIELDS)}")
    paths = payload.get("paths")
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
        raise AdminRefused(400, '"paths" must be a non-empty list of strings')
    if len(paths) > MAX_PATHS:
        raise AdminRefused(400, f"at most {MAX_PATHS} paths per invalidation")
    for path in paths:
        try:
            check_invalidation_path(path)
        except ValueError as problem:
            raise AdminRefused(400, str(problem)) from None
    wanted = payload.get("distribution_id")
    if wanted is not None and not isinstance(wanted, str):
        raise AdminRefused(400, '"distribution_id" must be a string')
    return paths, wanted


def _error(message: str, *, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)
