"""CloudFront's rules for the values of a distribution file, and the text of each problem.

Two kinds of rule live here. Checks of one value (a name, a handler, a URL, a header, a range)
are pydantic validators that :mod:`edgesim.config.models` attaches to its fields. Checks that tie
sections together (references, quotas per trigger, the default behavior) take a whole
:class:`~edgesim.config.load.Distribution` and are run by its validator. Every problem is
raised with :func:`invalid`, whose text is meant for the user as is.
"""

from __future__ import annotations

import ipaddress
import re
import string
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, StrictStr, ValidationInfo
from pydantic_core import PydanticCustomError

from edgesim.quotas import LAMBDA_EDGE
from edgesim.types import EventType

if TYPE_CHECKING:
    from edgesim.config import Distribution

__all__ = [
    "CACHED_METHOD_SETS",
    "DISTRIBUTION_ID",
    "ERROR_CODES",
    "FAILOVER_STATUS_CODES",
    "FUNCTION_NAME",
    "METHOD_SETS",
    "PATH_PATTERN",
    "POP",
    "RESPONSE_CODES",
    "ROOT_OBJECT",
    "RUNTIME",
    "RUNTIMES",
    "Aliases",
    "Folder",
    "Hostname",
    "Policy",
    "bad_function_name",
    "bucket_domain",
    "check_custom_headers",
    "check_references",
    "checked",
    "handler_problem",
    "in_range",
    "invalid",
    "like",
    "methods",
    "origin_path_problem",
    "url_problem",
]

RUNTIMES = (
    *("nodejs18.x", "nodejs20.x", "nodejs22.x"),
    *("python3.9", "python3.10", "python3.11", "python3.12", "python3.13"),
)
METHOD_SETS = (
    ("GET", "HEAD"),
    ("GET", "HEAD", "OPTIONS"),
    ("GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"),
)
CACHED_METHOD_SETS = METHOD_SETS[:2]
FAILOVER_STATUS_CODES = (400, 403, 404, 416, 500, 502, 503, 504)
ERROR_CODES = (400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504)
RESPONSE_CODES = (200, *ERROR_CODES)
# Quotas CloudFront enforces today (the 2023 ones were lower); see spec/cloudfront-caching.md §5.
MAX_BEHAVIORS, MAX_ORIGINS, MAX_ORIGIN_GROUPS, MAX_ALIASES = 75, 100, 10, 100

FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
POP = re.compile(r"[A-Z]{3}[0-9]{1,3}(?:-[CP][0-9]{1,2})?")
DISTRIBUTION_ID = re.compile(r"[A-Z0-9]{1,64}")
RUNTIME = re.compile("|".join(re.escape(r) for r in RUNTIMES))
_HANDLER = re.compile(r"[\w-]+(?:[./][\w-]+)*\.[A-Za-z_$][\w$]*", re.ASCII)
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.IGNORECASE)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_DENIED_HEADERS = (
    "Cache-Control, Connection, Content-Length, Cookie, Host, If-Match, If-Modified-Since, "
    "If-None-Match, If-Range, If-Unmodified-Since, Max-Forwards, Pragma, Proxy-Authorization, "
    "Proxy-Connection, Range, Request-Range, TE, Trailer, Transfer-Encoding, Upgrade, Via, "
    "X-Real-Ip"
)
_DENIED_HEADER_NAMES = frozenset(n.lower() for n in _DENIED_HEADERS.split(", "))


def invalid(problem: str, *at: str | int) -> PydanticCustomError:
    """An error shown to the user as is; ``at`` is where it is, below the validated value."""
    return PydanticCustomError("edgesim", "{problem}", {"problem": problem, "at": at})


# --- validators of one value ---------------------------------------------------------------


def in_range(name: str, low: int, high: int, unit: str = "") -> AfterValidator:
    """Accept a number from ``low`` to ``high``; ``unit`` follows the numbers in the problem."""
    suffix = f" {unit}" if unit else ""

    def check(value: int) -> int:
        if not low <= value <= high:
            raise invalid(f"{name} must be {low}-{high}{suffix}; got {value}{suffix}")
        return value

    return AfterValidator(check)


def checked(test: Callable[[str], str | None]) -> AfterValidator:
    """Wrap a function returning a problem (or None) as a validator of a string."""

    def check(value: str) -> str:
        problem = test(value)
        if problem:
            raise invalid(problem)
        return value

    return AfterValidator(check)


def like(pattern: re.Pattern[str], problem: str) -> AfterValidator:
    """Accept a string ``pattern`` matches; ``problem`` names the value as ``{value}``."""
    return checked(lambda v: None if pattern.fullmatch(v) else problem.format(value=repr(v)))


def _characters(what: str, allowed: str, rooted: bool = True) -> AfterValidator:
    """1-255 characters, all from CloudFront's list for ``what``; maybe no leading ``/``."""
    chars = frozenset(string.ascii_letters + string.digits + allowed.replace(" ", ""))

    def check(value: str) -> str:
        if not value or len(value) > 255:
            raise invalid(f"{what} must be 1-255 characters; got {len(value)}")
        if not rooted and value.startswith("/"):
            raise invalid(f"{what} must not start with '/'; got {value!r}")
        for char in value:
            if char not in chars:
                raise invalid(
                    f"{what} {value!r} contains {char!r}, which CloudFront does not "
                    f"allow; allowed: letters, digits and {allowed}"
                )
        return value

    return AfterValidator(check)


def methods(choices: tuple[tuple[str, ...], ...]) -> BeforeValidator:
    """Accept one of ``choices`` in any order and case, and give it in CloudFront's order."""

    def check(value: Any) -> Any:
        if not isinstance(value, list | tuple) or not all(isinstance(m, str) for m in value):
            return value  # the type check reports it
        given = [m.upper() for m in value]
        for choice in choices:
            if len(given) == len(choice) and set(given) == set(choice):
                return choice
        allowed = " | ".join(",".join(c) for c in choices)
        raise invalid(f"must be one of {allowed}; got {','.join(given) or 'nothing'}")

    return BeforeValidator(check)


def _folder(value: Any, info: ValidationInfo) -> Any:
    """Resolve a folder relative to the distribution file and insist that it exists."""
    if not isinstance(value, str | Path):
        return value
    if str(value) == "":
        raise invalid(f"{info.field_name} must name a folder")
    path = Path(value).expanduser()
    base = (info.context or {}).get("base_dir")
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    path = path.resolve()
    if not path.exists():
        raise invalid(f"{info.field_name} folder {str(path)!r} does not exist")
    if not path.is_dir():
        raise invalid(f"{info.field_name} {str(path)!r} is not a folder")
    return path


def bad_function_name(name: str) -> str:
    """The problem with a function name (``name`` is shown as given)."""
    return f"function name {name} is invalid: use 1-64 letters, digits, '-' or '_'"


def handler_problem(value: str) -> str | None:
    """The problem with a handler, which must look like ``path/module.function``."""
    if len(value) <= 128 and _HANDLER.fullmatch(value):
        return None
    return f"handler {value!r} must look like 'path/module.function', e.g. 'index.handler'"


def _hostname(value: str, *, wildcard: bool = False, lowercase: bool = False) -> str | None:
    name = value[2:] if wildcard and value.startswith("*.") else value
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return f"{value!r} is an IP address; a host name is needed"
    if len(value) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        return f"{value!r} is not a valid host name"
    if lowercase and value != value.lower():
        return f"{value!r} must be lowercase"
    return None


def url_problem(value: str) -> str | None:
    """The problem with a custom origin's URL, which holds only scheme, host and port."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"url must look like http://HOST[:PORT] or https://HOST[:PORT]; got {value!r}"
    try:
        port = parts.port
    except ValueError:
        return f"url {value!r} has an invalid port"
    if port is not None and port not in (80, 443) and not 1024 <= port <= 65535:
        return f"port {port} is not allowed; CloudFront reaches origins on 80, 443 or 1024-65535"
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return f"url {value!r} must hold only scheme, host and port; put a path prefix in 'path'"
    return None


def origin_path_problem(value: str) -> str | None:
    """The problem with an origin path: empty, or rooted without a trailing ``/``."""
    if value and (not value.startswith("/") or value.endswith("/") or len(value) > 255):
        return f"path must start with '/' and not end with '/' (or be empty); got {value!r}"
    return None


def check_custom_headers(value: dict[str, str]) -> dict[str, str]:
    """Check an origin's custom headers against CloudFront's names, counts and sizes."""
    if len(value) > 10:
        raise invalid(f"at most 10 custom headers per origin; got {len(value)}")
    seen: set[str] = set()
    for name, header_value in value.items():
        lower = name.lower()
        if not _TOKEN.fullmatch(name) or len(name) > 256:
            raise invalid(f"{name!r} is not a valid header name", name)
        if lower in _DENIED_HEADER_NAMES or lower.startswith(("x-amz-", "x-edge-")):
            raise invalid(
                f"CloudFront does not allow {name!r} as an origin custom header; not allowed: "
                f"{_DENIED_HEADERS}, X-Amz-*, X-Edge-*",
                name,
            )
        if lower in seen:
            raise invalid(f"header {name!r} is listed twice (names ignore case)", name)
        seen.add(lower)
        if len(header_value) > 1783 or "\r" in header_value or "\n" in header_value:
            raise invalid("value must be one line of at most 1783 characters", name)
    if sum(len(k) + len(v) for k, v in value.items()) > 10240:
        raise invalid("custom header names and values must total at most 10240 characters")
    return value


def _aliases(value: Any) -> Any:
    if not isinstance(value, list | tuple) or not all(isinstance(a, str) for a in value):
        return value
    if len(value) > MAX_ALIASES:
        raise invalid(f"at most {MAX_ALIASES} aliases; got {len(value)}")
    lowered: list[str] = []
    for index, alias in enumerate(value):
        problem = _hostname(alias, wildcard=True)
        if problem:
            raise invalid(problem, index)
        if alias.lower() in lowered:
            raise invalid(f"alias {alias!r} is listed twice", index)
        lowered.append(alias.lower())
    return tuple(lowered)


def _policy(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return dict(value)
    raise invalid("must be a managed policy name or an inline policy mapping")


def bucket_domain(origin_id: str) -> str:
    """A valid, lowercase bucket domain made from an origin id."""
    bucket = re.sub(r"[^a-z0-9.-]+", "-", origin_id.lower()).strip("-.")[:63] or "origin"
    return f"{bucket}.s3.amazonaws.com"


Folder = Annotated[Path, BeforeValidator(_folder)]
Hostname = Annotated[StrictStr, checked(lambda v: _hostname(v, lowercase=True))]
Aliases = Annotated[tuple[StrictStr, ...], BeforeValidator(_aliases)]
Policy = Annotated[StrictStr | dict[str, Any] | None, BeforeValidator(_policy)]
# `?` is missing from CloudFront's list of pattern characters, but it is the one-character
# wildcard, so patterns may use it.
PATH_PATTERN = _characters("path pattern", "_ - . * ? $ / ~ \" ' @ : + &")
ROOT_OBJECT = _characters("default_root_object", "_ - . * $ / ~ \" ' &", rooted=False)


# --- rules that tie a distribution's sections together -------------------------------------


def check_references(d: Distribution) -> None:
    """Quotas, origin groups, behaviors and custom error responses of a whole distribution."""
    _check_counts(d)
    _check_origin_groups(d)
    _check_behaviors(d)
    codes = [response.error_code for response in d.custom_error_responses]
    for index, code in enumerate(codes):
        if code in codes[:index]:
            raise invalid(
                f"error_code {code} already has a custom response in "
                f"custom_error_responses[{codes.index(code)}]",
                *("custom_error_responses", index, "error_code"),
            )


def _check_counts(d: Distribution) -> None:
    if not d.origins:
        raise invalid("at least one origin is needed", "origins")
    for section, count, quota in (
        ("origins", len(d.origins), MAX_ORIGINS),
        ("origin_groups", len(d.origin_groups), MAX_ORIGIN_GROUPS),
        ("behaviors", len(d.behaviors), MAX_BEHAVIORS),
    ):
        if count > quota:
            raise invalid(f"CloudFront allows at most {quota} {section}; got {count}", section)


def _check_origin_groups(d: Distribution) -> None:
    for group_id, group in d.origin_groups.items():
        if group_id in d.origins:
            raise invalid(
                f"{group_id!r} is also an origin id; ids must be unique", "origin_groups", group_id
            )
        for role in ("primary", "secondary"):
            member = getattr(group, role)
            if member in d.origin_groups:
                problem = f"{member!r} is an origin group; a group's members must be origins"
            elif member not in d.origins:
                problem = f"unknown origin {member!r}; known origins: {', '.join(d.origins)}"
            else:
                continue
            raise invalid(problem, "origin_groups", group_id, role)


def _check_behaviors(d: Distribution) -> None:
    if not d.behaviors:
        raise invalid(
            "at least one behavior is needed; the last one has path_pattern '*'", "behaviors"
        )
    last = len(d.behaviors) - 1
    if d.behaviors[last].path_pattern != "*":
        raise invalid(
            "the last behavior is the default one, whose path_pattern is exactly '*'; "
            f"got {d.behaviors[last].path_pattern!r}",
            *("behaviors", last, "path_pattern"),
        )
    seen: dict[str, int] = {}
    targets = [*d.origins, *d.origin_groups]
    for index, behavior in enumerate(d.behaviors):
        # A leading '/' is optional in a pattern, so '/a/*' and 'a/*' are the same pattern.
        pattern = behavior.path_pattern.removeprefix("/")
        if pattern in seen:
            raise invalid(
                f"behaviors[{seen[pattern]}] has the same path pattern, so this behavior "
                "would never match",
                *("behaviors", index, "path_pattern"),
            )
        seen[pattern] = index
        if behavior.origin not in targets:
            raise invalid(
                f"unknown origin {behavior.origin!r}; known origins and origin groups:"
                f" {', '.join(targets)}",
                *("behaviors", index, "origin"),
            )
        for event_type, association in behavior.functions.items():
            _check_association(d, index, event_type, association.function)


def _check_association(d: Distribution, index: int, event_type: EventType, name: str) -> None:
    function = d.functions.get(name)
    if function is None:
        known = ", ".join(d.functions) or "none (there is no functions section)"
        raise invalid(
            f"unknown function {name!r}; known functions: {known}",
            *("behaviors", index, "functions", str(event_type)),
        )
    quotas = LAMBDA_EDGE[event_type]
    where = f"function {name!r} is associated with {event_type} in behaviors[{index}], where"
    if function.timeout > quotas.timeout_max_s:
        raise invalid(
            f"{where} the timeout quota is {quotas.timeout_max_s} s; it has {function.timeout} s",
            *("functions", name, "timeout"),
        )
    low, high = quotas.memory_min_mb, quotas.memory_max_mb
    if not low <= function.memory <= high:
        allowed = quotas.memory_fixed_mb or f"{low}-{high}"
        raise invalid(
            f"{where} the memory quota is {allowed} MB; it has {function.memory} MB",
            *("functions", name, "memory"),
        )
