"""Lambda@Edge's rules for a function's result, per trigger, with CloudFront's refusal texts."""

from edgesim.lambda_edge.rules.validate import (
    DISALLOWED_HEADERS,
    MAX_URL_LENGTH,
    READ_ONLY_HEADERS,
    ParsedRequest,
    ParsedResponse,
    ParsedResult,
    ResultKind,
    is_disallowed,
    parse_result,
    validate_result,
)

__all__ = [
    "DISALLOWED_HEADERS",
    "MAX_URL_LENGTH",
    "READ_ONLY_HEADERS",
    "ParsedRequest",
    "ParsedResponse",
    "ParsedResult",
    "ResultKind",
    "is_disallowed",
    "parse_result",
    "validate_result",
]
