"""Where a request is sent: the origin as CloudFront describes it in ``request.origin``.

An :class:`OriginTarget` starts as the behavior's configured origin and may be replaced by an
origin-request function (``request.origin`` in its result). It is the one description the event
builder, the rules and the origin fetchers share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from edgesim.http import Headers

__all__ = ["OriginTarget"]


@dataclass(frozen=True)
class OriginTarget:
    """One origin, in the terms of a Lambda@Edge ``request.origin`` object.

    ``kind`` picks the ``custom`` or ``s3`` form of the event. ``local_root`` is set for an
    S3-style origin that edgesim serves from a local folder; a custom origin is reached over
    HTTP at ``protocol://domain_name:port`` (``connect_host`` overrides the address actually
    dialled, so a configured ``url: http://127.0.0.1:9000`` can still present a host name to
    functions).

    ``connection_attempts`` (1-3) and ``connection_timeout`` (1-10 s) are CloudFront's
    per-origin ``ConnectionAttempts`` and ``ConnectionTimeout``. A Lambda@Edge event does not
    show them, but they govern how the origin is dialled.
    """

    kind: Literal["custom", "s3"]
    domain_name: str
    path: str = ""
    custom_headers: Headers = field(default_factory=Headers)
    # custom origins
    port: int = 443
    protocol: Literal["http", "https"] = "https"
    read_timeout: int = 30
    keepalive_timeout: int = 5
    ssl_protocols: tuple[str, ...] = ("TLSv1.2",)
    connect_host: str | None = None
    # s3 origins
    local_root: Path | None = None
    auth_method: Literal["origin-access-identity", "none"] = "none"
    region: str = "us-east-1"
    # the distribution's name for this origin, when it is one of the configured ones
    origin_id: str | None = None
    # how the origin is dialled (not part of the event)
    connection_attempts: int = 3
    connection_timeout: float = 10.0
