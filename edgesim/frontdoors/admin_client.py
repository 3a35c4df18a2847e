"""The client of the admin API, for ``edgesim invalidate``.

Whatever answers at the admin URL (nothing, another web server, something that is not HTTP, an
edgesim that wants another token), :func:`invalidate` either returns a checked
:class:`Invalidation` or raises :class:`AdminClientError` with one line saying what is wrong and
what to do about it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

import httpx

from edgesim.exceptions import EdgesimError
from edgesim.frontdoors.admin_auth import TOKEN_ENV, read_token_file, token_file

__all__ = ["AdminClientError", "AdminToken", "Invalidation", "find_token", "invalidate"]

_FIX_TOKEN = f"pass --admin-token TOKEN or set {TOKEN_ENV}"


class AdminClientError(EdgesimError):
    """The admin API could not be used; ``str(error)`` is one line for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))


@dataclass(frozen=True)
class AdminToken:
    """The token to send, if any, and where it came from (for messages)."""

    value: str | None
    source: str


@dataclass(frozen=True)
class Invalidation:
    """The admin API's answer to an invalidation."""

    invalidated: int
    paths: list[str]
    distributions: list[str]


def find_token(admin: str, explicit: str | None = None) -> AdminToken:
    """The token for the admin API at ``admin``: ``explicit``, else ``$EDGESIM_ADMIN_TOKEN``,
    else the token file ``edgesim serve`` wrote for that port."""
    if explicit:
        return AdminToken(explicit, "--admin-token")
    if os.environ.get(TOKEN_ENV):
        return AdminToken(os.environ[TOKEN_ENV], TOKEN_ENV)
    port = _url(admin).port
    return AdminToken(read_token_file(port), str(token_file(port)))


def invalidate(
    admin: str,
    paths: Sequence[str],
    *,
    token: AdminToken,
    distribution: str | None = None,
    timeout: float = 10.0,
) -> Invalidation:
    """Invalidate ``paths`` through the admin API at ``admin`` (an ``http://host:port`` URL)."""
    url = _url(admin)
    body: dict[str, object] = {"paths": list(paths)}
    if distribution is not None:
        body["distribution_id"] = distribution
    headers = {"Authorization": f"Bearer {token.value}"} if token.value else {}
    # trust_env=False: the token must not travel through a proxy named in the environment.
    # verify=False: the URL is http:// (checked above) and redirects are not followed, so no
    # TLS is ever spoken; it spares loading the system's CA bundle (~50-130 ms a command).
    try:
        with httpx.Client(timeout=timeout, trust_env=False, verify=False) as client:
            response = client.post(url.url + "/invalidations", json=body, headers=headers)
    except httpx.ConnectError as error:
        raise AdminClientError(
            f"nothing answers at {url.url} ({_reason(error)}); is `edgesim serve` running "
            f"with --admin-port {url.port}?"
        ) from None
    except httpx.TimeoutException:
        raise AdminClientError(
            f"no answer from {url.url} within {timeout:g} s; is it edgesim's admin API?"
        ) from None
    except httpx.HTTPError as error:
        raise AdminClientError(
            f"{url.url} is not edgesim's admin API (it does not speak HTTP as expected: "
            f"{_reason(error)})"
        ) from None
    return _answer(response, url, token)


@dataclass(frozen=True)
class _AdminURL:
    url: str  # without a trailing slash
    port: int


def _url(admin: str) -> _AdminURL:
    try:
        parsed = httpx.URL(admin)
    except httpx.InvalidURL as error:
        raise AdminClientError(f"--admin {admin!r} is not a URL: {error}") from None
    if parsed.scheme != "http" or not parsed.host:
        raise AdminClientError(
            f"--admin {admin!r} must be an http:// URL such as http://127.0.0.1:9080"
        )
    return _AdminURL(str(parsed).rstrip("/"), parsed.port or 80)


def _answer(response: httpx.Response, url: _AdminURL, token: AdminToken) -> Invalidation:
    try:
        answer: Any = response.json()
    except ValueError:  # not JSON, or not text
        answer = None
    if response.status_code == 201 and isinstance(answer, dict):
        invalidated = answer.get("invalidated")
        paths = answer.get("paths")
        distributions = answer.get("distributions")
        if (
            isinstance(invalidated, int)
            and _strings(paths)
            and _strings(distributions)
            and not isinstance(invalidated, bool)
        ):
            return Invalidation(invalidated, paths, distributions)
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, str):
        kind = response.headers.get("content-type", "no content type")
        raise AdminClientError(
            f"{url.url} is not edgesim's admin API (it answered {response.status_code} "
            f"with {kind}); check --admin"
        )
    if response.status_code == 403:
        # The client sends no Origin, so a 403 is about the token.
        if token.value is None:
            raise AdminClientError(
                f"the admin API at {url.url} needs its token and there is none in "
                f"{token.source} (is `edgesim serve` running as this user?); {_FIX_TOKEN}"
            )
        raise AdminClientError(
            f"the admin API at {url.url} refused the token from {token.source} (not this "
            f"server's); {_FIX_TOKEN} with the token its `edgesim serve` wrote to "
            f"{token_file(url.port)}"
        )
    raise AdminClientError(f"{url.url}: {error}")


def _strings(value: object) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _reason(error: Exception) -> str:
    return str(error) or type(error).__name__


def _one_line(text: str, limit: int = 400) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
