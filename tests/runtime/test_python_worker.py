"""The Python worker program, driven directly over the raw protocol (no pool).

These tests are the protocol contract from the worker's side: what any worker program must send
for each situation. A Node.js worker can be held to the same expectations.
"""

from __future__ import annotations

import ast
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from edgesim.runtime import launch, protocol
from edgesim.runtime.launch import PYTHON_WORKER
from edgesim.runtime.protocol import (
    InitError,
    Ready,
    Result,
    WorkerError,
    WorkerMessage,
    parse_worker_message,
)
from tests.python_source import run_time_tree
from tests.runtime.helpers import FIXTURES, remaining_ms_window

WAIT_S = 10.0


class RawWorker:
    """A worker process started by hand, with blocking reads bounded by a timeout."""

    def __init__(self, fixture: str, handler: str = "index.handler", **env: str) -> None:
        code_dir = FIXTURES / fixture
        self.request_r, self.request_w = os.pipe()
        self.reply_r, self.reply_w = os.pipe()
        base_env = {
            "LAMBDA_TASK_ROOT": str(code_dir),
            "_HANDLER": handler,
            "AWS_LAMBDA_FUNCTION_NAME": fixture,
            "AWS_LAMBDA_FUNCTION_VERSION": "5",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "PATH": launch.WORKER_PATH,
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-S",
                "-B",
                str(PYTHON_WORKER),
                "--in-fd",
                str(self.request_r),
                "--out-fd",
                str(self.reply_w),
                "--parent-pid",
                str(os.getpid()),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(self.request_r, self.reply_w),
            cwd=code_dir,
            env={**base_env, **env},
            start_new_session=True,
        )
        os.close(self.request_r)
        os.close(self.reply_w)
        self._log = b""

    def send(self, message: dict[str, Any]) -> None:
        os.write(self.request_w, protocol.encode_message(message))

    def invoke(self, event: Any, request_id: str | None = None, timeout_s: float = 5) -> str:
        request_id = request_id or str(uuid.uuid4())
        self.send(
            {
                "type": "invoke",
                "requestId": request_id,
                "deadlineMs": int((time.time() + timeout_s) * 1000),
                "invokedFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:f:5",
                "event": event,
            }
        )
        return request_id

    def receive(self) -> WorkerMessage:
        (length,) = struct.unpack(">I", self._read(self.reply_r, 4))
        assert length <= protocol.MAX_MESSAGE_BYTES
        return parse_worker_message(json.loads(self._read(self.reply_r, length)))

    def log_until_mark(self, mark_id: str) -> bytes:
        """The log bytes before mark ``mark_id``; the mark is consumed."""
        mark = protocol.LOG_MARK_PREFIX + mark_id.encode() + protocol.LOG_MARK_END
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while mark not in self._log:
            self._log += self._read(fd, 1, at_most=65536)
        before, _, self._log = self._log.partition(mark)
        return before

    def close_requests(self) -> int:
        os.close(self.request_w)
        return self.process.wait(timeout=WAIT_S)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for fd in (self.request_w, self.reply_r):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.process.stdout is not None:
            self.process.stdout.close()

    @staticmethod
    def _read(fd: int, size: int, at_most: int | None = None) -> bytes:
        data = b""
        deadline = time.monotonic() + WAIT_S
        while len(data) < size:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, "the worker did not answer in time"
            chunk = os.read(fd, at_most or size - len(data))
            if not chunk:
                raise EOFError("the worker closed the pipe")
            data += chunk
        return data


@pytest.fixture
def workers() -> Iterator[list[RawWorker]]:
    started: list[RawWorker] = []
    yield started
    for worker in started:
        worker.kill()


def start(workers: list[RawWorker], fixture: str, handler: str = "index.handler") -> RawWorker:
    worker = RawWorker(fixture, handler)
    workers.append(worker)
    return worker


def test_ready_then_one_result_per_invoke(workers: list[RawWorker]) -> None:
    worker = start(workers, "echo")
    ready = worker.receive()
    assert isinstance(ready, Ready)
    assert ready.max_rss_bytes is not None and ready.max_rss_bytes > 1024 * 1024
    for n in range(3):
        request_id = worker.invoke({"n": n})
        reply = worker.receive()
        assert isinstance(reply, Result)
        assert reply.request_id == request_id
        assert isinstance(reply.value, dict)
        assert reply.value["event"] == {"n": n}
        assert reply.value["pid"] == worker.process.pid
    assert worker.close_requests() == 0


def test_the_peak_reported_is_the_workers_own(workers: list[RawWorker]) -> None:
    # The worker is forked from this process: getrusage's peak would carry ours over the exec.
    ballast = b"x" * (300 << 20)
    worker = start(workers, "memory")
    ready = worker.receive()
    del ballast
    assert isinstance(ready, Ready) and ready.max_rss_bytes is not None
    assert ready.max_rss_bytes < 100 << 20
    worker.invoke({"mb": 150})
    grown = worker.receive()
    assert isinstance(grown, Result) and grown.max_rss_bytes is not None
    assert ready.max_rss_bytes + (140 << 20) < grown.max_rss_bytes < 300 << 20


def test_each_phase_ends_with_a_log_mark_before_the_reply(workers: list[RawWorker]) -> None:
    worker = start(workers, "logs")
    assert isinstance(worker.receive(), Ready)
    assert worker.log_until_mark("init") == b"loading function\n"
    request_id = worker.invoke({"n": 9})
    assert isinstance(worker.receive(), Result)
    lines = worker.log_until_mark(request_id).decode().split("\n")
    assert lines[:2] == ["one", "two"]
    assert re.fullmatch(
        rf"\[INFO\]\t\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\t{request_id}\tthree 9", lines[2]
    )
    assert lines[3:] == ["four (no newline)"]


def test_handler_exception_is_an_error_message_with_the_user_stack(
    workers: list[RawWorker],
) -> None:
    worker = start(workers, "raises")
    assert isinstance(worker.receive(), Ready)
    request_id = worker.invoke({"detail": "x"})
    reply = worker.receive()
    assert isinstance(reply, WorkerError)
    assert (reply.request_id, reply.error_type, reply.error_message) == (
        request_id,
        "ValueError",
        "boom: x",
    )
    fixture_file = str(FIXTURES / "raises" / "index.py")
    assert [entry.split(", ")[0] for entry in reply.stack_trace] == [
        f'  File "{fixture_file}"',
        f'  File "{fixture_file}"',
    ]
    assert "in handler" in reply.stack_trace[0] and "in fail" in reply.stack_trace[1]
    # The worker stays usable after an error.
    worker.invoke({"ok": True})
    assert isinstance(worker.receive(), Result)


@pytest.mark.parametrize(
    ("kind", "error_type"),
    [
        ("set", "Runtime.MarshalError"),
        ("nan", "Runtime.MarshalError"),
        ("huge", "Function.ResponseSizeTooLarge"),
    ],
)
def test_values_that_cannot_be_returned_are_runtime_errors(
    workers: list[RawWorker], kind: str, error_type: str
) -> None:
    worker = start(workers, "values")
    assert isinstance(worker.receive(), Ready)
    worker.invoke({"kind": kind})
    reply = worker.receive()
    assert isinstance(reply, WorkerError)
    assert reply.error_type == error_type


@pytest.mark.parametrize(
    ("fixture", "handler", "error_type", "has_stack"),
    [
        ("echo", "nowhere.handler", "Runtime.ImportModuleError", False),
        ("echo", "index.missing", "Runtime.HandlerNotFound", False),
        ("echo", "handler", "Runtime.MalformedHandlerName", False),
        ("echo", "sys.handler", "Runtime.BuiltInModuleConflict", False),
        ("initraise", "index.handler", "RuntimeError", True),
    ],
)
def test_init_failures_send_init_error_and_exit(
    workers: list[RawWorker], fixture: str, handler: str, error_type: str, has_stack: bool
) -> None:
    worker = start(workers, fixture, handler)
    reply = worker.receive()
    assert isinstance(reply, InitError)
    assert reply.error_type == error_type
    assert bool(reply.stack_trace) == has_stack
    assert all("importlib" not in entry for entry in reply.stack_trace)
    assert worker.process.wait(timeout=WAIT_S) == 1


def test_context_reads_lambda_variables_and_the_deadline(workers: list[RawWorker]) -> None:
    worker = start(workers, "context")
    assert isinstance(worker.receive(), Ready)
    started = time.time()
    request_id = worker.invoke({}, timeout_s=60)
    reply = worker.receive()
    ended = time.time()
    assert isinstance(reply, Result) and isinstance(reply.value, dict)
    assert reply.value["aws_request_id"] == request_id
    assert reply.value["function_name"] == "context"
    assert reply.value["function_version"] == "5"
    assert reply.value["memory_limit_in_mb"] == "256"
    assert reply.value["invoked_function_arn"].endswith(":function:f:5")
    low, high = remaining_ms_window(60.0, started, ended)
    assert low <= reply.value["remaining_ms"] <= high


def test_the_worker_dies_with_its_parent_even_mid_invocation(tmp_path: Path) -> None:
    """A pool process that is SIGKILLed leaves no worker behind (Linux parent-death signal)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux-only")
    parent_script = textwrap.dedent(
        f"""
        import os, subprocess, sys, time
        sys.path.insert(0, {str(Path(__file__).parents[2])!r})
        from edgesim.runtime import protocol
        r, w = os.pipe()
        rr, rw = os.pipe()
        env = {{"LAMBDA_TASK_ROOT": {str(FIXTURES / "slow")!r}, "_HANDLER": "index.handler"}}
        child = subprocess.Popen(
            [sys.executable, "-I", "-S", "-B", {str(PYTHON_WORKER)!r},
             "--in-fd", str(r), "--out-fd", str(rw), "--parent-pid", str(os.getpid())],
            pass_fds=(r, rw), env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.read(rr, 4096)  # ready
        os.write(w, protocol.encode_message({{"type": "invoke", "requestId": "r",
            "deadlineMs": 0, "invokedFunctionArn": "", "event": {{"sleep": 60}}}}))
        print(child.pid, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_script], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        worker_pid = int(parent.stdout.readline())
        # Readable once the worker has exited (even if nobody reaps it).
        worker_exit = os.pidfd_open(worker_pid)
        assert psutil.Process(worker_pid).status() != psutil.STATUS_ZOMBIE
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
    try:
        exited, _, _ = select.select([worker_exit], [], [], WAIT_S)
        if not exited:
            os.kill(worker_pid, signal.SIGKILL)
        assert exited, "the orphaned worker kept running"
    finally:
        os.close(worker_exit)


def _run_time_imports(program: Path) -> set[str]:
    """The modules ``program`` imports when it runs (``if TYPE_CHECKING:`` is the type
    checker's alone)."""
    tree = run_time_tree(program)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
    return found


@pytest.mark.parametrize("name", ["python_worker.py", "python_protocol.py", "python_debug.py"])
def test_the_worker_program_imports_nothing_from_edgesim(name: str) -> None:
    # Neither what it loads beside it: edgesim is not importable where the worker runs.
    imported = _run_time_imports(PYTHON_WORKER.parent / name)
    assert imported and not [m for m in imported if m.startswith((".", "edgesim"))]
