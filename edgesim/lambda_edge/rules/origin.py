"""Rules for the ``origin`` object an origin-request function may rewrite (lambda-edge.md §1.3).

A function switches origins by returning ``request.origin`` with exactly one of ``custom`` or
``s3``. CloudFront checks the new description field by field; the ranges below are the ones the
Developer Guide documents (the Docs-2025 distribution-level timeout range of 1-120 s is not
stated to apply to functions, so the documented 4-60 s / 1-60 s ranges stand).

Local emulation: edgesim's configured origins may legitimately use values no function could set
on CloudFront, most often ``127.0.0.1`` as the domain name. So only the fields a function
actually changed, compared with the event's origin, are checked; a changed field is held to
CloudFront's rules in full (a domain name that is an IP address fails, as on CloudFront). When
the function switches between ``custom`` and ``s3`` every field of the new form is new.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from edgesim.lambda_edge.rules.common import (
    INVALID_ORIGIN,
    as_int,
    first_control_char,
    json_type,
    reject,
    shown,
)
from edgesim.lambda_edge.rules.headers import (
    HeaderLines,
    check_header_map,
    display_name,
    is_custom_header_denied,
    is_disallowed,
)

__all__ = ["SSL_PROTOCOLS", "check_origin"]

SSL_PROTOCOLS = frozenset({"TLSv1.2", "TLSv1.1", "TLSv1", "SSLv3"})
_CUSTOM_FIELDS = (
    "customHeaders",
    "domainName",
    "keepaliveTimeout",
    "path",
    "port",
    "protocol",
    "readTimeout",
    "sslProtocols",
)
# region is required only with an origin access identity, checked separately
_S3_FIELDS = ("authMethod", "customHeaders", "domainName", "path")
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?")
_CUSTOM_HEADERS_PREFIX = (
    f"{INVALID_ORIGIN}One or more HeaderName or HeaderValue values are invalid. "
)
_MISSING = object()


def check_origin(origin: object, event_origin: object, request_headers: HeaderLines) -> None:
    """Validate an origin-request result's ``origin`` against the event's ``origin``.

    ``request_headers`` are the result's (already validated) request headers: a custom header
    may not repeat one of them.
    """
    if not isinstance(origin, dict):
        reject(f"{INVALID_ORIGIN}The origin field must be an object, got {json_type(origin)}")
    kinds = [kind for kind in ("custom", "s3") if kind in origin]
    if len(kinds) != 1:
        reject(
            f"{INVALID_ORIGIN}The origin must contain exactly one of custom or s3, "
            f"got keys : {', '.join(sorted(map(str, origin))) or '(none)'}"
        )
    kind = kinds[0]
    new = origin[kind]
    if not isinstance(new, dict):
        reject(f"{INVALID_ORIGIN}The field origin.{kind} must be an object, got {json_type(new)}")
    old_kind, old = _event_form(event_origin)
    before: Mapping[str, Any] = old if old_kind == kind else {}

    def changed(name: str) -> bool:
        return name not in before or new.get(name, _MISSING) != before[name]

    fields = _CUSTOM_FIELDS if kind == "custom" else _S3_FIELDS
    for name in fields:
        if not changed(name):
            continue
        if name not in new:
            reject(f"{INVALID_ORIGIN}The {kind} origin is missing the field origin.{kind}.{name}")
        _VALIDATORS[name](kind, new[name], request_headers)
    if kind == "s3":
        _check_s3_access(new, changed, switched_from_custom=old_kind == "custom")


def _event_form(event_origin: object) -> tuple[str | None, Mapping[str, Any]]:
    if isinstance(event_origin, Mapping):
        for kind in ("custom", "s3"):
            form = event_origin.get(kind)
            if isinstance(form, Mapping):
                return kind, form
    return None, {}


def _bad(kind: str, name: str, problem: str, value: object) -> NoReturn:
    reject(f"{INVALID_ORIGIN}{problem}, field : origin.{kind}.{name}, value : {shown(value)}")


def _domain_name(kind: str, value: object, _: HeaderLines) -> None:
    if not isinstance(value, str) or not value:
        _bad(kind, "domainName", "The domain name must be a non-empty string", value)
    if ":" in value:
        _bad(kind, "domainName", "The domain name must not contain ':' (no port)", value)
    limit = 253 if kind == "custom" else 128
    if len(value) > limit:
        _bad(kind, "domainName", f"The domain name must be at most {limit} characters", value)
    if kind == "s3" and value != value.lower():
        _bad(kind, "domainName", "The S3 domain name must be all lowercase", value)
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        _bad(kind, "domainName", "The domain name must be a DNS name, not an IP address", value)
    if not all(_LABEL.fullmatch(label) for label in value.split(".")):
        _bad(kind, "domainName", "The domain name is not a valid DNS name", value)


def _port(kind: str, value: object, _: HeaderLines) -> None:
    port = as_int(value)
    if port is None or not (port in (80, 443) or 1024 <= port <= 65535):
        _bad(kind, "port", "The port must be 80, 443, or between 1024 and 65535", value)


def _protocol(kind: str, value: object, _: HeaderLines) -> None:
    if value not in ("http", "https"):
        _bad(kind, "protocol", "The protocol must be http or https", value)


def _path(kind: str, value: object, _: HeaderLines) -> None:
    if not isinstance(value, str):
        _bad(kind, "path", "The origin path must be a string", value)
    if value == "":
        return
    if not value.startswith("/") or value.endswith("/"):
        _bad(kind, "path", "The origin path must start with '/' and must not end with '/'", value)
    if len(value) > 255:
        _bad(kind, "path", "The origin path must be at most 255 characters", value)
    if " " in value or first_control_char(value, allow_tab=False) is not None:
        _bad(kind, "path", "The origin path must be URL-encoded (no spaces or controls)", value)


def _timeout(name: str, low: int, high: int) -> Callable[[str, object, HeaderLines], None]:
    def check(kind: str, value: object, _: HeaderLines) -> None:
        seconds = as_int(value)
        if seconds is None or not low <= seconds <= high:
            _bad(kind, name, f"The {name} must be a whole number of seconds, {low}-{high}", value)

    return check


def _ssl_protocols(kind: str, value: object, _: HeaderLines) -> None:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(item, str) and item in SSL_PROTOCOLS for item in value)
    ):
        _bad(
            kind,
            "sslProtocols",
            "The sslProtocols must be a non-empty array drawn from "
            + ", ".join(sorted(SSL_PROTOCOLS)),
            value,
        )


def _custom_headers(kind: str, value: object, request_headers: HeaderLines) -> None:
    field = f"origin.{kind}.customHeaders"
    lines = check_header_map(value, field=field, prefix=_CUSTOM_HEADERS_PREFIX)
    for name in lines:
        shown_name = display_name(name, lines)
        if is_disallowed(name) or is_custom_header_denied(name):
            reject(
                f"{_CUSTOM_HEADERS_PREFIX}CloudFront cannot add this header as an origin custom "
                f"header, headerName : {shown_name}, field : {field}"
            )
        if request_headers.get(name):
            reject(
                f"{_CUSTOM_HEADERS_PREFIX}An origin custom header must not also be a request "
                f"header, headerName : {shown_name}, field : {field}"
            )


def _auth_method(kind: str, value: object, _: HeaderLines) -> None:
    if value not in ("origin-access-identity", "none"):
        _bad(
            kind,
            "authMethod",
            "The authMethod must be origin-access-identity or none "
            "(origin access control is not supported here)",
            value,
        )


def _check_s3_access(
    new: Mapping[str, Any], changed: Callable[[str], bool], *, switched_from_custom: bool
) -> None:
    if not (changed("authMethod") or changed("region")):
        return
    region = new.get("region")
    if region is not None and not isinstance(region, str):
        _bad("s3", "region", "The region must be a string", region)
    if new.get("authMethod") != "origin-access-identity":
        return
    if switched_from_custom:
        _bad(
            "s3",
            "authMethod",
            "An origin access identity cannot be used when switching from a custom origin to S3",
            new["authMethod"],
        )
    if not region:
        _bad("s3", "region", "The region is required with an origin access identity", region)


_VALIDATORS: Mapping[str, Callable[[str, object, HeaderLines], None]] = {
    "authMethod": _auth_method,
    "customHeaders": _custom_headers,
    "domainName": _domain_name,
    "keepaliveTimeout": _timeout("keepaliveTimeout", 1, 60),
    "path": _path,
    "port": _port,
    "protocol": _protocol,
    "readTimeout": _timeout("readTimeout", 4, 60),
    "sslProtocols": _ssl_protocols,
}
