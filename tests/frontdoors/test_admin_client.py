"""The admin API's client: where its token comes from, and what it accepts as an answer."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from edgesim.frontdoors.admin_auth import write_token_file
from edgesim.frontdoors.admin_client import (
    AdminClientError,
    AdminToken,
    Invalidation,
    find_token,
    invalidate,
)

NO_TOKEN = AdminToken(None, "nowhere")


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("EDGESIM_ADMIN_TOKEN", raising=False)


def test_the_token_comes_from_the_option_then_the_environment_then_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = "http://127.0.0.1:9080"
    assert find_token(admin) == AdminToken(None, str(tmp_path / "edgesim" / "admin-9080.token"))
    path = write_token_file(9080, "from-the-file")
    assert find_token(admin) == AdminToken("from-the-file", str(path))
    assert find_token("http://127.0.0.1:9081").value is None  # keyed by port
    monkeypatch.setenv("EDGESIM_ADMIN_TOKEN", "from-the-environment")
    assert find_token(admin) == AdminToken("from-the-environment", "EDGESIM_ADMIN_TOKEN")
    assert find_token(admin, "from-the-option") == AdminToken("from-the-option", "--admin-token")


@asynccontextmanager
async def _answering(
    status: int, body: Any, headers: dict[str, str] | None = None
) -> AsyncIterator[str]:
    """A server answering every request with ``status``, ``headers`` and the JSON ``body``;
    its URL."""
    seen: list[web.Request] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request)
        return web.json_response(body, status=status, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def _invalidate(admin: str, token: AdminToken = NO_TOKEN, **options: Any) -> Invalidation:
    return await asyncio.to_thread(invalidate, admin, ["/*"], token=token, **options)


async def test_a_well_formed_answer_is_returned() -> None:
    body = {"invalidated": 2, "paths": ["/*"], "distributions": ["E1"]}
    async with _answering(201, body) as admin:
        assert await _invalidate(admin) == Invalidation(2, ["/*"], ["E1"])


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (201, {"invalidated": True, "paths": ["/*"], "distributions": ["E1"]}),
        (201, {"invalidated": 1, "paths": "/*", "distributions": ["E1"]}),
        (201, {"invalidated": 1, "paths": ["/*"]}),
        (201, ["not", "an", "object"]),
        (400, {"message": "not edgesim's error shape"}),
        (500, "oops"),
    ],
)
async def test_an_answer_of_another_shape_is_not_edgesim(status: int, body: Any) -> None:
    async with _answering(status, body) as admin:
        with pytest.raises(AdminClientError, match="is not edgesim's admin API"):
            await _invalidate(admin)


async def test_a_redirect_is_not_followed() -> None:
    # The client speaks plain HTTP only (no TLS context is loaded): a redirect, to https or
    # anywhere else, would carry the token away.
    location = {"Location": "https://127.0.0.1:1/invalidations"}
    async with _answering(307, {"moved": True}, location) as admin:
        with pytest.raises(AdminClientError, match="is not edgesim's admin API"):
            await _invalidate(admin, AdminToken("secret", "EDGESIM_ADMIN_TOKEN"))


async def test_edgesims_own_errors_are_passed_on_in_one_line() -> None:
    async with _answering(404, {"error": "no distribution 'E2'\nhere"}) as admin:
        with pytest.raises(AdminClientError) as error:
            await _invalidate(admin, distribution="E2")
    assert str(error.value).endswith(": no distribution 'E2' here")


async def test_a_refused_token_names_where_it_came_from() -> None:
    async with _answering(403, {"error": "wrong admin token"}) as admin:
        with pytest.raises(AdminClientError, match="refused the token from EDGESIM_ADMIN_TOKEN"):
            await _invalidate(admin, AdminToken("stale", "EDGESIM_ADMIN_TOKEN"))
        with pytest.raises(AdminClientError, match="there is none in /some/file"):
            await _invalidate(admin, AdminToken(None, "/some/file"))


async def test_a_server_that_never_answers_is_a_timeout() -> None:
    with socket.socket() as silent:  # the kernel accepts the connection; nobody reads it
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        admin = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(AdminClientError, match="no answer from .* within 0.2 s"):
            await _invalidate(admin, timeout=0.2)
