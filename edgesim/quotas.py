"""CloudFront's quotas on edge functions, one row per trigger.

Every limit that depends on the trigger a function is associated with lives here, so the config
checks (timeout, memory), the event builders (how much of the request body a function sees) and
the result rules (how big a body or response it may return) read one table. Numbers are from
lambda-edge.md §2.2, §2.4, §3.5 and §3.6, with KB = 1,024 bytes as everywhere in edgesim.

Where the sources disagree, the table follows the per-trigger figures that every copy of the
quotas page before 2025 gives, deploy-time errors confirm ("Max allowed: 5") and users still
report: 5 s and 128 MB on viewer triggers. Docs-2025 lists 30 s and Lambda's memory as general.

:data:`LAMBDA_EDGE` is the Lambda@Edge table. CloudFront Functions have quotas of another shape
(compute utilisation rather than seconds, 2 MB of memory, viewer triggers only), so they will get
a table of their own beside it rather than a column in this one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from edgesim.types import EventType

__all__ = [
    "FUNCTION_RESULT_MAX_BYTES",
    "HEADERS_MAX_BYTES",
    "KB",
    "LAMBDA_EDGE",
    "MB",
    "TriggerQuotas",
    "function_memory_mb",
    "function_timeout_s",
]

KB = 1024
MB = 1024 * KB
# CloudFront's own quota (spec cloudfront-caching.md §5): a viewer request's line and headers,
# and an origin response's headers, may total at most this many bytes.
HEADERS_MAX_BYTES = 20480
# No result CloudFront accepts from a function is larger, as the JSON a runtime sends: the largest
# are origin-side bodies of 1 MB (base64: 1.33 MB) with their headers (20,480 bytes of lines, a
# few times that as JSON). A result bigger than this is refused as too large before it is decoded.
FUNCTION_RESULT_MAX_BYTES = 2 * MB


@dataclass(frozen=True)
class TriggerQuotas:
    """What a function associated with one trigger may use, see, and return.

    Sizes are bytes unless the name says otherwise. ``None`` means the trigger has no such thing
    (response triggers never carry a request body, so they have no body to see or replace).
    """

    timeout_max_s: int
    """Longest timeout the function may be configured with."""
    memory_min_mb: int
    """Smallest memory setting allowed."""
    memory_max_mb: int
    """Largest memory setting allowed; equal to :attr:`memory_min_mb` when memory is fixed."""
    package_max_bytes: int
    """Compressed deployment package, libraries included (not checked: code is a folder here)."""
    response_max_bytes: int
    """A generated response, or a body a response trigger sets, with its header lines."""
    include_body_bytes: int | None
    """How much of the request body an Include Body function sees before it is truncated."""
    replace_text_max_bytes: int | None
    """A replacement request body with ``encoding: text``, as UTF-8 bytes."""
    replace_base64_max_chars: int | None
    """A replacement request body with ``encoding: base64``, as characters of the base64 text."""

    @property
    def memory_fixed_mb(self) -> int | None:
        """The only memory setting allowed, when there is just one."""
        return self.memory_min_mb if self.memory_min_mb == self.memory_max_mb else None


_VIEWER_REQUEST = TriggerQuotas(
    timeout_max_s=5,
    memory_min_mb=128,
    memory_max_mb=128,
    package_max_bytes=1 * MB,
    response_max_bytes=40 * KB,
    include_body_bytes=40 * KB,
    replace_text_max_bytes=40 * KB,
    # The docs give 53.2 KB / 1.33 MB: the text limits scaled by about 4/3 for base64.
    replace_base64_max_chars=int(53.2 * KB),  # 54,476
)
_ORIGIN_REQUEST = TriggerQuotas(
    timeout_max_s=30,
    memory_min_mb=128,
    memory_max_mb=10_240,  # "same as Lambda", whose maximum is 10,240 MB
    package_max_bytes=50 * MB,
    response_max_bytes=1 * MB,
    include_body_bytes=1 * MB,
    replace_text_max_bytes=1 * MB,
    replace_base64_max_chars=int(1.33 * MB),  # 1,394,606
)


def _without_request_body(quotas: TriggerQuotas) -> TriggerQuotas:
    return replace(
        quotas, include_body_bytes=None, replace_text_max_bytes=None, replace_base64_max_chars=None
    )


LAMBDA_EDGE: Mapping[EventType, TriggerQuotas] = MappingProxyType(
    {
        EventType.VIEWER_REQUEST: _VIEWER_REQUEST,
        EventType.ORIGIN_REQUEST: _ORIGIN_REQUEST,
        # Response triggers share their side's limits but never carry a request body.
        EventType.ORIGIN_RESPONSE: _without_request_body(_ORIGIN_REQUEST),
        EventType.VIEWER_RESPONSE: _without_request_body(_VIEWER_REQUEST),
    }
)

# Lambda's own floor, the same whatever the trigger.
_LAMBDA_MIN_TIMEOUT_S = 1


def function_timeout_s(table: Mapping[EventType, TriggerQuotas] = LAMBDA_EDGE) -> tuple[int, int]:
    """The timeouts a function may have before its associations are known: (min, max) seconds.

    The widest any trigger allows; each association then holds the function to its own row.
    """
    return _LAMBDA_MIN_TIMEOUT_S, max(q.timeout_max_s for q in table.values())


def function_memory_mb(table: Mapping[EventType, TriggerQuotas] = LAMBDA_EDGE) -> tuple[int, int]:
    """The memory settings a function may have before its associations are known: (min, max) MB."""
    return (
        min(q.memory_min_mb for q in table.values()),
        max(q.memory_max_mb for q in table.values()),
    )
