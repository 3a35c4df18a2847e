"""What a failed invocation becomes: CloudFront's error class, and the lines Lambda logs after
``REPORT`` for it.

A worker that timed out, went over its memory, died or broke the protocol fails its
invocation; each outcome has its own error (see ``edgesim.exceptions``) and its own wording in
the function's log, as Lambda writes it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from edgesim.exceptions import FunctionError, LambdaExecutionError, LambdaLimitExceeded
from edgesim.runtime import logs
from edgesim.runtime.worker import Broken, Exited, Outcome, OutOfMemory, TimedOut

__all__ = ["Failure", "failure"]


@dataclass(frozen=True)
class Failure:
    """A failed invocation: its error, the lines logged after its ``REPORT``, and whether the
    report shows the whole memory quota used (Lambda's kernel stops a sandbox at the quota)."""

    error: FunctionError
    after: list[str]
    quota_used: bool = False


def failure(outcome: Outcome, request_id: str, *, limit_s: float, memory_mb: int) -> Failure:
    """The failure ``outcome`` means for invocation ``request_id``; ``limit_s`` is the time
    limit that was running (the timeout, or the init phase's) and ``memory_mb`` the quota."""
    match outcome:
        case TimedOut():
            return Failure(
                LambdaLimitExceeded(f"Task timed out after {limit_s:.2f} seconds"),
                [logs.timeout_line(request_id, limit_s, time.time())],
            )
        case OutOfMemory():
            detail = "Runtime exited with error: signal: killed"
            return Failure(
                LambdaExecutionError(
                    f"{detail} (Runtime.ExitError); memory quota {memory_mb} MB exceeded"
                ),
                logs.exit_error_lines(request_id, detail),
                quota_used=True,
            )
        case Exited(returncode=code):
            detail = logs.exit_detail(code)
            return Failure(
                LambdaExecutionError(f"{detail} (Runtime.ExitError)"),
                logs.exit_error_lines(request_id, detail),
            )
        case Broken(reason=reason):
            detail = f"Runtime.InvalidResponse: the worker broke the protocol: {reason}"
            return Failure(
                LambdaExecutionError(detail), [f"RequestId: {request_id} Error: {detail}"]
            )
        case _:
            raise AssertionError(f"not a failure: {outcome!r}")
