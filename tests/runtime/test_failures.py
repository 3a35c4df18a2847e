"""Each way a worker fails an invocation: CloudFront's error class and Lambda's log lines."""

from __future__ import annotations

import re

import pytest

from edgesim.exceptions import LambdaExecutionError, LambdaLimitExceeded
from edgesim.runtime.failures import failure
from edgesim.runtime.protocol import Ready
from edgesim.runtime.worker import Broken, Exited, OutOfMemory, Reply, TimedOut

RID = "3b8b4c5e-0c2a-4c8e-9d1e-0123456789ab"


def test_a_timeout_is_a_limit_exceeded_with_lambdas_line() -> None:
    failed = failure(TimedOut(), RID, limit_s=3, memory_mb=128)
    assert isinstance(failed.error, LambdaLimitExceeded)
    assert failed.error.reason == "Task timed out after 3.00 seconds"
    [line] = failed.after
    assert re.fullmatch(
        rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z {RID} Task timed out after 3.00 seconds", line
    )
    assert not failed.quota_used


def test_memory_past_the_quota_is_a_kill_that_used_the_whole_quota() -> None:
    failed = failure(OutOfMemory(300 << 20), RID, limit_s=3, memory_mb=128)
    assert isinstance(failed.error, LambdaExecutionError)
    assert failed.error.reason == (
        "Runtime exited with error: signal: killed (Runtime.ExitError); "
        "memory quota 128 MB exceeded"
    )
    assert failed.after == [
        f"RequestId: {RID} Error: Runtime exited with error: signal: killed",
        "Runtime.ExitError",
    ]
    assert failed.quota_used


@pytest.mark.parametrize(
    ("returncode", "detail"),
    [
        (1, "Runtime exited with error: exit status 1"),
        (129, "Runtime exited with error: exit status 129"),
        (-6, "Runtime exited with error: signal: aborted"),
        (0, "Runtime exited without providing a reason"),
    ],
)
def test_an_exit_is_an_execution_error_in_lambdas_words(returncode: int, detail: str) -> None:
    failed = failure(Exited(returncode), RID, limit_s=3, memory_mb=128)
    assert isinstance(failed.error, LambdaExecutionError)
    assert failed.error.reason == f"{detail} (Runtime.ExitError)"
    assert failed.after == [f"RequestId: {RID} Error: {detail}", "Runtime.ExitError"]


def test_a_broken_protocol_is_an_invalid_response() -> None:
    failed = failure(Broken("a reply that is not the worker's own"), RID, limit_s=3, memory_mb=128)
    detail = (
        "Runtime.InvalidResponse: the worker broke the protocol: "
        "a reply that is not the worker's own"
    )
    assert failed.error.reason == detail
    assert failed.after == [f"RequestId: {RID} Error: {detail}"]


def test_a_reply_is_no_failure() -> None:
    with pytest.raises(AssertionError):
        failure(Reply(Ready(None)), RID, limit_s=3, memory_mb=128)
