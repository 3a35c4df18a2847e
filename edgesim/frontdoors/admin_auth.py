"""Who may use the admin API, and the token ``edgesim serve`` shares with ``edgesim invalidate``.

Binding to 127.0.0.1 is not enough: a browser lets any web page POST a "simple" request (a form,
or ``fetch`` with ``text/plain``) to 127.0.0.1 without a CORS preflight, and a page on a DNS
rebinding name (one the attacker re-points at 127.0.0.1) can even read the answers. So every
request must

- name this admin API in ``Host``: a loopback name or the address bound, never a domain that
  could be rebound (:class:`AdminAddress`);
- carry no ``Origin`` but the admin API's own;
- carry ``Authorization: Bearer TOKEN``. A page cannot set that header cross-site without a
  preflight, which the admin API never grants, and does not know the token anyway.

``edgesim serve`` writes the token to a file only its user can read (0600, in a 0700 directory):
``$XDG_RUNTIME_DIR/edgesim/`` or else ``~/.cache/edgesim/``, one file per admin port
(:func:`token_file`). ``edgesim invalidate`` reads it; scripts can set ``EDGESIM_ADMIN_TOKEN``
(:data:`TOKEN_ENV`) for both instead. The honest limit: anything running as the same user can
read the file, and that includes Lambda@Edge function workers. They get a clean environment and
their own working directory, but they are not a sandbox.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from edgesim.exceptions import EdgesimError

__all__ = [
    "TOKEN_ENV",
    "AdminAddress",
    "AdminRefused",
    "check_token",
    "new_token",
    "read_token_file",
    "remove_token_file",
    "token_file",
    "write_token_file",
]

TOKEN_ENV = "EDGESIM_ADMIN_TOKEN"
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_WILDCARDS = frozenset({"", "0.0.0.0", "::"})


class AdminRefused(EdgesimError):
    """The admin API refuses a request; ``status`` is the HTTP status it answers with."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def new_token() -> str:
    """A fresh random token (256 bits, hex): nothing a shell or an option parser reads
    specially, so `--admin-token TOKEN` always works (a URL-safe token may start with ``-``)."""
    return secrets.token_hex(32)


def _state_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_absolute():
        return Path(runtime) / "edgesim"
    return Path.home() / ".cache" / "edgesim"


def token_file(port: int) -> Path:
    """Where ``edgesim serve`` keeps the token of the admin API on ``port``."""
    return _state_dir() / f"admin-{port}.token"


def write_token_file(port: int, token: str) -> Path:
    """Write ``token`` for the admin API on ``port``, readable by this user only; its path."""
    path = token_file(port)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)  # mkdir's mode is masked by umask, and the folder may predate us
    # Created 0600 under a fresh name and moved into place, so the token is never readable by
    # others, not even for an instant, and a reader never sees half of it.
    staging = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(token)
        os.replace(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return path


def read_token_file(port: int) -> str | None:
    """The token ``edgesim serve`` wrote for the admin API on ``port``, if there is one."""
    try:
        token = token_file(port).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return token or None


def remove_token_file(path: Path, token: str) -> None:
    """Remove ``path`` if it still holds ``token`` (a newer server may have replaced it)."""
    try:
        if path.read_text(encoding="ascii").strip() == token:
            path.unlink()
    except (OSError, UnicodeDecodeError):
        pass  # already gone or unreadable: nothing of ours to clean up


def check_token(authorization: str | None, token: str) -> None:
    """Raise :class:`AdminRefused` (403) unless ``authorization`` is ``Bearer <token>``."""
    scheme, _, given = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise AdminRefused(
            403,
            "the admin API needs its token (Authorization: Bearer TOKEN); "
            "`edgesim invalidate` reads it from the file `edgesim serve` writes",
        )
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise AdminRefused(403, "wrong admin token")


@dataclass(frozen=True)
class AdminAddress:
    """The admin API's host and port: which ``Host`` and ``Origin`` values name it."""

    host: str
    port: int

    def names(self, authority: str) -> bool:
        """Whether ``authority`` (a ``Host`` value, ``name[:port]``) is this admin API.

        A loopback name or the bound address is; so is any IP literal when bound to every
        address. A domain name never is (other than ``localhost``): it could be rebound.
        """
        parsed = _split_authority(authority)
        if parsed is None:
            return False
        name, port = parsed
        if port != self.port:
            return False
        bound = self.host.strip("[]").lower()
        if name in _LOOPBACK_NAMES or name == bound:
            return True
        return bound in _WILDCARDS and _is_ip(name)

    def check_host(self, host: str | None) -> None:
        """Raise :class:`AdminRefused` (421) unless ``host`` names this admin API."""
        if not host:
            raise AdminRefused(400, "the request has no Host header")
        if not self.names(host):
            raise AdminRefused(
                421, f"Host {host!r} is not this admin API (use 127.0.0.1:{self.port})"
            )

    def check_origin(self, origin: str | None) -> None:
        """Raise :class:`AdminRefused` (403) if ``origin`` is present and not the admin's own."""
        if origin is None:
            return  # not a browser's cross-origin request: curl, scripts, edgesim invalidate
        scheme, separator, authority = origin.partition("://")
        if scheme.lower() != "http" or not separator or not self.names(authority):
            raise AdminRefused(403, f"requests from origin {origin!r} are not accepted")


def _split_authority(authority: str) -> tuple[str, int] | None:
    """``name[:port]`` as (lowercase name without brackets, port, 80 if absent); None if not one."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        name, bracket, rest = authority[1:].partition("]")
        if not bracket:
            return None
    else:
        name, colon, port = authority.partition(":")
        rest = colon + port
    if not rest:
        return name, 80
    port = rest.removeprefix(":")
    if not rest.startswith(":") or not (port.isascii() and port.isdigit()):
        return None
    return name, int(port)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
