"""The ``request.origin`` object of Lambda@Edge events, and the origin a function's result chooses.

:func:`origin_to_cf` describes an :class:`OriginTarget` in its ``custom`` or ``s3`` form, for the
origin-request and origin-response events. :func:`apply_origin` takes the ``origin`` an
origin-request function returned and finds the :class:`OriginTarget` the request then goes to:
a configured origin when the result describes one, otherwise a new target that keeps what edgesim
needs to reach it (a local address, a local folder).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

from edgesim.exceptions import OriginError
from edgesim.lambda_edge.headers import headers_from_cf, headers_to_cf
from edgesim.origins.targets import OriginTarget

__all__ = ["apply_origin", "origin_to_cf"]


def origin_to_cf(origin: OriginTarget) -> dict[str, Any]:
    """The ``request.origin`` object for ``origin``, in its ``custom`` or ``s3`` form."""
    custom_headers = headers_to_cf(origin.custom_headers)
    if origin.kind == "s3":
        return {
            "s3": {
                "authMethod": origin.auth_method,
                "customHeaders": custom_headers,
                "domainName": origin.domain_name,
                "path": origin.path,
                "region": origin.region,
            }
        }
    return {
        "custom": {
            "customHeaders": custom_headers,
            "domainName": origin.domain_name,
            "keepaliveTimeout": origin.keepalive_timeout,
            "path": origin.path,
            "port": origin.port,
            "protocol": origin.protocol,
            "readTimeout": origin.read_timeout,
            "sslProtocols": list(origin.ssl_protocols),
        }
    }


def apply_origin(
    cf_origin: Mapping[str, Any] | None, current: OriginTarget, known: Sequence[OriginTarget]
) -> OriginTarget:
    """The origin an origin-request result sends the request to.

    ``cf_origin`` is the result's ``origin`` object as the rules checked it
    (:attr:`~edgesim.lambda_edge.rules.ParsedRequest.origin`), None when the result has none.

    An unchanged ``origin`` gives back ``current`` itself, and an ``origin`` identical to a
    configured one gives that one, so local addresses and folders stay attached. A new custom
    origin borrows the local address of a configured origin with the same domain name. An ``s3``
    origin must name the domain of a configured S3-style folder origin: edgesim has no bucket to
    read otherwise, which is an :class:`OriginError` (502).
    """
    if cf_origin is None or cf_origin == origin_to_cf(current):
        return current
    for target in known:
        if cf_origin == origin_to_cf(target):
            return target
    if isinstance(cf_origin.get("s3"), Mapping):
        return _s3_target(cf_origin["s3"], current, known)
    custom = cf_origin.get("custom")
    if not isinstance(custom, Mapping):
        return current
    domain = str(custom.get("domainName", ""))
    port = int(custom.get("port", 443))
    same_host = [t for t in (current, *known) if t.kind == "custom" and _same(t, domain)]
    same_host.sort(key=lambda t: t.port != port)  # an exact port match wins
    borrowed = same_host[0] if same_host else None
    protocol: Literal["http", "https"] = "http" if custom.get("protocol") == "http" else "https"
    return OriginTarget(
        kind="custom",
        domain_name=domain,
        path=str(custom.get("path", "")),
        custom_headers=headers_from_cf(custom.get("customHeaders") or {}),
        port=port,
        protocol=protocol,
        read_timeout=int(custom.get("readTimeout", 30)),
        keepalive_timeout=int(custom.get("keepaliveTimeout", 5)),
        ssl_protocols=tuple(str(p) for p in custom.get("sslProtocols") or ("TLSv1.2",)),
        connect_host=borrowed.connect_host if borrowed else None,
        origin_id=borrowed.origin_id if borrowed else None,
    )


def _same(target: OriginTarget, domain: str) -> bool:
    return target.domain_name.lower() == domain.lower()


def _s3_target(
    s3: Mapping[str, Any], current: OriginTarget, known: Sequence[OriginTarget]
) -> OriginTarget:
    domain = str(s3.get("domainName", ""))
    folder = next(
        (
            t
            for t in (current, *known)
            if t.kind == "s3" and t.local_root is not None and _same(t, domain)
        ),
        None,
    )
    if folder is None:
        raise OriginError(
            502,
            f"the origin-request function chose S3 origin {domain!r}, which is not a "
            "configured S3 folder origin",
        )
    auth: Literal["origin-access-identity", "none"] = (
        "origin-access-identity" if s3.get("authMethod") == "origin-access-identity" else "none"
    )
    return replace(
        folder,
        path=str(s3.get("path", "")),
        custom_headers=headers_from_cf(s3.get("customHeaders") or {}),
        auth_method=auth,
        region=str(s3.get("region") or folder.region),
    )
