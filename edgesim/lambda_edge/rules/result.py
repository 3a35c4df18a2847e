"""A function's result as CloudFront understood it: the typed value the rules hand on to apply.

:func:`~edgesim.lambda_edge.rules.parse_result` reads the raw JSON a function returned exactly
once, checking each field as it goes, and produces one of these values. The code that applies a
result (:mod:`edgesim.lambda_edge.events`) reads only them, so a field can never be accepted by
the rules and then read differently when it is applied: ``"200"``, ``200`` and ``200.0`` are all
the status 200 by the time a response is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from edgesim.lambda_edge.rules.headers import HeaderLines

__all__ = ["ParsedRequest", "ParsedResponse", "ParsedResult", "ResultKind"]


class ResultKind(StrEnum):
    """What a valid result is: a request to continue with, or a response."""

    REQUEST = "request"
    RESPONSE = "response"


@dataclass(frozen=True)
class ParsedRequest:
    """A request-trigger result that is the request to carry on with."""

    kind: ClassVar[ResultKind] = ResultKind.REQUEST

    uri: str
    querystring: str | None
    """None when the function left the field out, which keeps the request's query string."""
    headers: HeaderLines
    """Every header line the function returned, in its order; ``key`` None when it gave none."""
    body: bytes | None
    """The replacement body (``action: "replace"``), or None to send the original body."""
    origin: Mapping[str, Any] | None
    """The checked ``origin`` object of an origin-request result; None keeps the event's origin."""
    notes: tuple[str, ...] = ()
    """How the rules read parts of the result CloudFront does not document (see ``headers``)."""


@dataclass(frozen=True)
class ParsedResponse:
    """A generated response, or the response a response trigger returned."""

    kind: ClassVar[ResultKind] = ResultKind.RESPONSE

    status: int
    description: str | None
    """``statusDescription``, or None when the function left it out."""
    headers: HeaderLines
    body: bytes | None
    """The decoded body, or None when the result sets none."""
    notes: tuple[str, ...] = ()
    """How the rules read parts of the result CloudFront does not document (see ``headers``)."""


ParsedResult = ParsedRequest | ParsedResponse
