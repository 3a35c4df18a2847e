"""The exception tree of edgesim.

Everything edgesim raises on purpose derives from :class:`EdgesimError`:

- :class:`ConfigError`: a distribution file is wrong; names the file, the key path and the problem.
- :class:`FunctionError`: a Lambda@Edge function invocation failed, in one of CloudFront's three
  classes, each carrying the ``code`` that becomes the viewer's ``X-Cache`` label:

  - :class:`LambdaValidationError` (502): the result broke Lambda@Edge's rules;
  - :class:`LambdaExecutionError` (503): the function raised, crashed or ran out of memory;
  - :class:`LambdaLimitExceeded` (503): the function timed out or was throttled.

- :class:`OriginError`: the origin could not be reached or answered badly (502/504).

The pipeline turns every :class:`FunctionError` and :class:`OriginError` into CloudFront's error
response, so they never reach a front door as exceptions.
"""

from __future__ import annotations

from typing import ClassVar, Literal

__all__ = [
    "ConfigError",
    "EdgesimError",
    "FunctionError",
    "FunctionErrorCode",
    "LambdaExecutionError",
    "LambdaLimitExceeded",
    "LambdaValidationError",
    "IncompleteBodyError",
    "OriginError",
    "RuntimeUnavailableError",
]

FunctionErrorCode = Literal["LambdaValidationError", "LambdaExecutionError", "LambdaLimitExceeded"]


class EdgesimError(Exception):
    """Base class of every error edgesim raises on purpose."""


class ConfigError(EdgesimError):
    """A distribution file is invalid.

    ``str(error)`` is the one line a user sees: ``FILE: KEY: PROBLEM``.
    """

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {problem}")


class FunctionError(EdgesimError):
    """A function invocation failed the way CloudFront reports to the viewer."""

    code: ClassVar[FunctionErrorCode]
    status: ClassVar[int]

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class LambdaValidationError(FunctionError):
    """The function's result is not something CloudFront accepts (502)."""

    code = "LambdaValidationError"
    status = 502


class LambdaExecutionError(FunctionError):
    """The function raised, rejected, crashed or exceeded its memory (503)."""

    code = "LambdaExecutionError"
    status = 503


class LambdaLimitExceeded(FunctionError):
    """The function exceeded its timeout or its concurrency (503)."""

    code = "LambdaLimitExceeded"
    status = 503


class RuntimeUnavailableError(EdgesimError):
    """A function's runtime cannot start on this machine (e.g. no suitable interpreter)."""


class OriginError(EdgesimError):
    """The origin failed: unreachable (504), timed out (504) or answered badly (502)."""

    def __init__(self, status: Literal[502, 504], reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(reason)


class IncompleteBodyError(EdgesimError):
    """A streamed body ended before its framing said it would (short, or cut by a reset).

    CloudFront forwards the bytes it got and caches nothing; the viewer's connection is closed.
    """
