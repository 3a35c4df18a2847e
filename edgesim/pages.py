"""CloudFront's own error responses: the HTML page, ``Server: CloudFront`` and the X-Cache label.

When CloudFront itself answers (a refused function result, a failed function, an unreachable
origin, a method the behavior does not allow), the viewer gets a small HTML page titled "ERROR: The
request could not be satisfied" that names the status and the request id. edgesim answers the same
way, so a browser or a test sees what production would show.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from email.utils import formatdate
from enum import StrEnum

from edgesim.exceptions import FunctionError, OriginError
from edgesim.http import EdgeResponse, Headers

__all__ = [
    "EXECUTION_MESSAGE",
    "METHOD_NOT_ALLOWED_MESSAGE",
    "XCache",
    "EarlyResponse",
    "LIMIT_MESSAGE",
    "ErrorPage",
    "error_response",
    "function_error_page",
    "origin_error_page",
]

EXECUTION_MESSAGE = (
    "The Lambda function associated with the CloudFront distribution is invalid or doesn't have "
    "the required permissions."
)
LIMIT_MESSAGE = (
    "The Lambda function associated with the CloudFront distribution was throttled or exceeded "
    "its time limit."
)
_CONNECT_MESSAGE = (
    "We can't connect to the server for this app or website at this time. There might be too "
    "much traffic or a configuration error. Try again later, or contact the app or website owner."
)
_ORIGIN_MESSAGES = {
    502: "CloudFront wasn't able to connect to the origin.",
    504: "CloudFront attempted to establish a connection with the origin, but either the attempt "
    "failed or the origin closed the connection.",
}
METHOD_NOT_ALLOWED_MESSAGE = (
    "This distribution is not configured to allow the HTTP request method that was used for "
    "this request. The distribution supports only cachable requests."
)


class XCache(StrEnum):
    """CloudFront's ``X-Cache`` values: where the viewer's response came from."""

    HIT = "Hit from cloudfront"
    REFRESH_HIT = "RefreshHit from cloudfront"
    MISS = "Miss from cloudfront"
    ERROR = "Error from cloudfront"
    REDIRECT = "Redirect from cloudfront"
    GENERATED = "LambdaGeneratedResponse from cloudfront"
    LAMBDA_VALIDATION_ERROR = "LambdaValidationError from cloudfront"
    LAMBDA_EXECUTION_ERROR = "LambdaExecutionError from cloudfront"
    LAMBDA_LIMIT_EXCEEDED = "LambdaLimitExceeded from cloudfront"

    @classmethod
    def parse(cls, label: str | None) -> XCache | None:
        """The value a response's ``X-Cache`` line names, or None for any other text."""
        return cls._value2member_map_.get(label or "")  # type: ignore[return-value]

    @property
    def short(self) -> str:
        """The value without `` from cloudfront`` (``Hit``), as access logs show it."""
        return self.value.removesuffix(" from cloudfront")


@dataclass(frozen=True)
class ErrorPage:
    """What CloudFront says when it answers a request itself."""

    status: int
    x_cache: XCache
    message: str
    detail: str = _CONNECT_MESSAGE


def function_error_page(error: FunctionError) -> ErrorPage:
    """The page for a failed or refused function invocation."""
    if error.code == "LambdaValidationError":
        message = error.reason
    elif error.code == "LambdaExecutionError":
        message = EXECUTION_MESSAGE
    else:
        message = LIMIT_MESSAGE
    x_cache = XCache(f"{error.code} from cloudfront")
    return ErrorPage(status=error.status, x_cache=x_cache, message=message)


def origin_error_page(error: OriginError) -> ErrorPage:
    """The page for an origin that could not be reached or answered badly."""
    return ErrorPage(
        status=error.status,
        x_cache=XCache.ERROR,
        message=_ORIGIN_MESSAGES.get(error.status, error.reason),
    )


def error_response(page: ErrorPage, request_id: str, *, head: bool = False) -> EdgeResponse:
    """Render ``page`` as CloudFront does; ``head`` leaves the body out for a HEAD request."""
    body = _render(page, request_id).encode("latin-1", "replace")
    headers = Headers(
        [
            ("Server", "CloudFront"),
            ("Date", formatdate(usegmt=True)),
            ("Content-Type", "text/html"),
            ("Content-Length", str(len(body))),
            ("X-Cache", page.x_cache),
        ]
    )
    return EdgeResponse(status=page.status, headers=headers, body=b"" if head else body)


def _render(page: ErrorPage, request_id: str) -> str:
    def esc(text: str) -> str:
        return html.escape(text, quote=False)

    return (
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN" '
        '"http://www.w3.org/TR/html4/loose.dtd">\n'
        '<HTML><HEAD><META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=iso-8859-1">\n'
        "<TITLE>ERROR: The request could not be satisfied</TITLE>\n"
        "</HEAD><BODY>\n"
        f"<H1>{page.status} ERROR</H1>\n"
        "<H2>The request could not be satisfied.</H2>\n"
        '<HR noshade size="1px">\n'
        f"{esc(page.message)}\n"
        f"{esc(page.detail)}\n"
        '<BR clear="all">\n'
        "If you provide content to customers through CloudFront, you can find steps to "
        "troubleshoot and help prevent this error by reviewing the CloudFront documentation.\n"
        '<BR clear="all">\n'
        '<HR noshade size="1px">\n'
        "<PRE>\n"
        "Generated by cloudfront (CloudFront)\n"
        f"Request ID: {esc(request_id)}\n"
        "</PRE>\n"
        "<ADDRESS>\n"
        "</ADDRESS>\n"
        "</BODY></HTML>"
    )


class EarlyResponse(Exception):
    """Ends the pipeline at once with a finished response (generated, refused or failed).

    Raised inside :meth:`Edge.dispatch` only; ``dispatch`` catches it, so it never reaches a
    front door. ``x_cache`` defaults to the page's own ``X-Cache`` line, or
    ``LambdaGeneratedResponse`` for a response a function generated.
    """

    def __init__(self, response: EdgeResponse, x_cache: XCache | None = None) -> None:
        super().__init__(response.status)
        self.response = response
        if x_cache is None:
            x_cache = XCache.parse(response.headers.get("X-Cache")) or XCache.GENERATED
        self.x_cache = x_cache
