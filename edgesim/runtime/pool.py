"""Function pools: Lambda's execution environments, played by worker processes.

A :class:`FunctionPool` runs one function. Each invocation takes the most recently used idle
worker, or starts one (a cold start, reported as ``Init Duration``). A worker serves one
invocation at a time. Scaling follows Lambda: an invocation past the function's reserved
concurrency (or, unreserved, past the account's 1,000) is throttled at once, with a log line
naming the function and the setting; below that, an invocation past this machine's worker cap
waits for a worker, and the wait counts toward neither its timeout nor its Duration. Idle
workers retire after the idle timeout. A worker whose function raised stays
warm; one that timed out, went over its memory or died is gone, and the next invocation gets a
fresh one.

Errors follow CloudFront's classes (see ``edgesim.exceptions``): the function's own failures
are :class:`LambdaExecutionError`, timeouts and throttling :class:`LambdaLimitExceeded`, and a
value that is not JSON :class:`LambdaValidationError`. Each invocation that reached a worker
sends its log lines, framed by ``START``/``END``/``REPORT``, to the pool's log sink.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial

from edgesim.exceptions import (
    FunctionError,
    LambdaExecutionError,
    LambdaLimitExceeded,
    LambdaValidationError,
    RuntimeUnavailableError,
)
from edgesim.ids import random_uuid
from edgesim.quotas import FUNCTION_RESULT_MAX_BYTES
from edgesim.runtime import debug, failures, launch, logs
from edgesim.runtime.idle import IdleWorkers
from edgesim.runtime.protocol import (
    INIT_MARK_ID,
    InitError,
    ProtocolError,
    Ready,
    Result,
    WorkerError,
    encode_invoke,
)
from edgesim.runtime.spec import (
    ACCOUNT_CONCURRENCY,
    FunctionSpec,
    InvocationReport,
    InvocationResult,
    LogSink,
    billed_duration_ms,
)
from edgesim.runtime.worker import (
    Broken,
    Exited,
    Outcome,
    Reply,
    TimedOut,
    TooLarge,
    WorkerProcess,
)
from edgesim.tasks import spawn

__all__ = ["INIT_TIMEOUT_S", "INVALID_JSON", "FunctionPool"]

logger = logging.getLogger(__name__)

# Lambda gives the init phase (interpreter start and module import) 10 seconds of its own; an
# init that does not finish in them is run again inside the first invocation, bounded by the
# function's timeout (and its time then counts toward that invocation's timeout).
INIT_TIMEOUT_S = 10.0
INVALID_JSON = "The Lambda function returned invalid JSON: The JSON output is not parsable."
# Worker errors that mean CloudFront never got JSON it could parse.
_INVALID_RESULT_ERRORS = frozenset({"Runtime.MarshalError", "Function.ResponseSizeTooLarge"})
TOO_LARGE = (
    "The Lambda function returned a response that exceeded the size limit: {size} bytes of JSON, "
    f"and no result CloudFront accepts is over {FUNCTION_RESULT_MAX_BYTES} bytes."
)
_MIB = 1024 * 1024


@dataclass
class _Invocation:
    """What one invocation has gathered for its log frame so far."""

    request_id: str
    # echoed by the worker's reply; the function is told its request id, never this
    # (os.urandom is what secrets.token_hex reads, without its two Python-level calls)
    invocation_id: str = field(default_factory=lambda: os.urandom(16).hex())
    init_lines: list[str] = field(default_factory=list)
    init_duration_ms: float | None = None
    # a second try of the init, run inside the invocation, uses up part of its timeout
    counted_init_ms: float = 0.0


class FunctionPool:
    """The workers of one function. Use from one event loop; close with :meth:`aclose`."""

    def __init__(self, spec: FunctionSpec, *, log_sink: LogSink | None = None) -> None:
        """Raises :class:`RuntimeUnavailableError` if ``spec.runtime`` cannot run here."""
        launch.check_runtime(spec)
        self.spec = spec
        self._log_sink = log_sink
        self._arn = launch.invoked_function_arn(spec)
        self._idle = IdleWorkers(
            spec.idle_timeout_s, on_retire=self._discard_later, on_lost=self._lost
        )
        self._workers: set[WorkerProcess] = set()
        # the last request each worker served, to which a death between invocations is logged
        self._last_request: dict[WorkerProcess, str] = {}
        self._in_flight = 0
        self._drained = asyncio.Event()
        self._drained.set()
        self._closed = False
        # Lambda would start another execution environment; here an invocation waits for one.
        # A debugger's port can be bound by one worker only.
        self._workers_free = asyncio.Semaphore(1 if spec.debug_port else spec.max_workers)

    @property
    def worker_pids(self) -> list[int]:
        """Pids of the workers this pool has started and not yet reaped."""
        return sorted(worker.pid for worker in self._workers)

    @property
    def in_flight(self) -> int:
        """Invocations running now."""
        return self._in_flight

    async def invoke(self, event: dict[str, object]) -> InvocationResult:
        """Run the function on ``event`` and return its JSON value unchanged.

        Raises :class:`LambdaExecutionError` (the handler raised; the worker crashed, exited or
        went over its memory; the handler could not be loaded), :class:`LambdaLimitExceeded`
        (timeout, or the function's reserved concurrency, or the account's, already in use),
        :class:`LambdaValidationError` (the value is not JSON, or over 6 MB) and
        :class:`RuntimeUnavailableError` (no interpreter can start, or the pool is closed).
        """
        if self._closed:
            raise RuntimeUnavailableError(f"function {self.spec.name!r}: the pool is closed")
        limit, setting = self._concurrency_limit()
        if self._in_flight >= limit:
            self._emit_lines(
                [
                    f"Throttled: function {self.spec.name!r} has {self._in_flight} invocations "
                    f"running and {setting} is {limit} (503 LambdaLimitExceeded)"
                ]
            )
            raise LambdaLimitExceeded("Rate Exceeded.")
        self._in_flight += 1
        self._drained.clear()
        try:
            async with self._workers_free:
                return await self._invoke(event)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._drained.set()

    async def drained(self) -> None:
        """Return once no invocation is running (at once if none is)."""
        await self._drained.wait()

    async def prewarm(self) -> None:
        """Start one worker ahead of the first invocation (so a debugger can attach before it);
        its init lines are logged at once. Raises as a cold start does."""
        async with self._workers_free:
            invocation = _Invocation(request_id=INIT_MARK_ID)
            worker = await self._cold_start(invocation)
            self._emit_lines(invocation.init_lines)
            self._release(worker)

    def _concurrency_limit(self) -> tuple[int, str]:
        reserved = self.spec.reserved_concurrency
        if reserved is not None:
            return reserved, "reserved_concurrency"
        return ACCOUNT_CONCURRENCY, "the account's unreserved concurrency"

    async def aclose(self) -> None:
        """Kill every worker, busy or idle, and wait until each one is reaped."""
        self._closed = True
        self._idle.clear()
        workers = list(self._workers)
        for worker in workers:
            worker.kill()
        for worker in workers:
            await self._discard(worker)

    async def _invoke(self, event: dict[str, object]) -> InvocationResult:
        invocation = _Invocation(request_id=random_uuid())
        worker = self._idle.take() or await self._cold_start(invocation)
        self._last_request[worker] = invocation.request_id
        left_s = max(0.0, self.spec.timeout_s - invocation.counted_init_ms / 1000)
        try:
            deadline_ms = int((time.time() + left_s) * 1000)
            request = encode_invoke(
                invocation.request_id,
                deadline_ms,
                self._arn,
                event,
                invocation_id=invocation.invocation_id,
            )
            started = time.perf_counter()
            port = self.spec.debug_port
            attached = None if port is None else partial(debug.debugger_attached, worker.pid, port)
            outcome = await worker.exchange(request, left_s, attached=attached)
            duration_ms = (time.perf_counter() - started) * 1000
        except ProtocolError as exc:
            self._release(worker)
            raise LambdaExecutionError(
                f"The event could not be sent to the function: {exc}"
            ) from exc
        except BaseException:
            # Cancelled mid-invocation: the worker's state is unknown, so it cannot be reused.
            self._discard_later(worker)
            raise
        report = self._report(invocation, worker, duration_ms)
        if isinstance(outcome, TooLarge):
            lines = await worker.log.phase(invocation.request_id)
            self._release(worker)
            self._emit(invocation, report, lines)
            raise LambdaValidationError(TOO_LARGE.format(size=outcome.size))
        if isinstance(outcome, Reply):
            message = outcome.message
            if isinstance(message, Result | WorkerError):
                if message.request_id != invocation.request_id:
                    outcome = Broken(f"reply for request {message.request_id!r}")
                elif message.invocation_id != invocation.invocation_id:
                    outcome = Broken("a reply that is not the worker's own")
                else:
                    lines = await worker.log.phase(invocation.request_id)
                    self._release(worker)
                    self._emit(invocation, report, lines)
                    if isinstance(message, Result):
                        return InvocationResult(value=message.value, report=report)
                    if message.error_type in _INVALID_RESULT_ERRORS:
                        raise LambdaValidationError(INVALID_JSON)
                    raise LambdaExecutionError(f"{message.error_type}: {message.error_message}")
            else:
                outcome = Broken(f"unexpected {type(message).__name__} message")
        error = await self._failure(worker, invocation, report, outcome)
        raise error

    async def _cold_start(
        self, invocation: _Invocation, *, suppressed: bool = False
    ) -> WorkerProcess:
        """A new worker past its init phase; ``suppressed`` is Lambda's second try of an init
        that outlived the init phase, bounded by the function's timeout."""
        spec = self.spec
        init_limit = spec.timeout_s if suppressed else INIT_TIMEOUT_S
        command = await launch.worker_command(spec)
        env = launch.worker_environment(spec, launch.new_log_stream_name(spec))
        try:
            worker = await WorkerProcess.start(
                command,
                env=env,
                cwd=spec.code_dir.absolute(),
                memory_limit_bytes=spec.memory_mb * _MIB,
            )
        except OSError as exc:
            raise RuntimeUnavailableError(
                f"function {spec.name!r}: cannot start {command[0]}: {exc}"
            ) from exc
        self._workers.add(worker)
        try:
            outcome = await worker.exchange(None, init_limit)
        except BaseException:
            self._discard_later(worker)
            raise
        init_ms = (time.perf_counter() - worker.started) * 1000
        if isinstance(outcome, Reply) and isinstance(outcome.message, Ready):
            invocation.init_lines = [*invocation.init_lines, *await worker.log.phase(INIT_MARK_ID)]
            invocation.init_duration_ms = init_ms
            if suppressed:
                invocation.counted_init_ms = init_ms
            if self._closed:
                await self._discard(worker)
                raise RuntimeUnavailableError(f"function {spec.name!r}: the pool is closed")
            return worker
        # Lambda re-runs a failed init inside the invocation and bills it as the Duration.
        report = self._report(invocation, worker, init_ms)
        if isinstance(outcome, Reply) and isinstance(outcome.message, InitError):
            invocation.init_lines = await worker.log.phase(INIT_MARK_ID)
            await self._discard(worker)
            self._emit(invocation, report, [])
            failure = outcome.message
            raise LambdaExecutionError(f"{failure.error_type}: {failure.error_message}")
        if isinstance(outcome, Reply):
            outcome = Broken(f"unexpected {type(outcome.message).__name__} message at start")
        if isinstance(outcome, TimedOut) and not suppressed:
            await self._discard(worker)
            invocation.init_lines = worker.log.rest()
            return await self._cold_start(invocation, suppressed=True)
        raise await self._failure(
            worker, invocation, report, outcome, during_init=True, limit=init_limit
        )

    async def _failure(
        self,
        worker: WorkerProcess,
        invocation: _Invocation,
        report: InvocationReport,
        outcome: Outcome,
        *,
        during_init: bool = False,
        limit: float | None = None,
    ) -> FunctionError:
        """Discard a worker that failed, log the invocation and build its error."""
        await self._discard(worker)
        lines = worker.log.rest()
        if during_init:
            # Output of a failed start belongs to the init phase, before START.
            invocation.init_lines, lines = [*invocation.init_lines, *lines], []
        failed = failures.failure(
            outcome,
            invocation.request_id,
            limit_s=self.spec.timeout_s if limit is None else limit,
            memory_mb=self.spec.memory_mb,
        )
        if failed.quota_used:
            report = dataclasses.replace(report, max_memory_used_mb=self.spec.memory_mb)
        self._emit(invocation, report, lines, failed.after)
        return failed.error

    def _report(
        self, invocation: _Invocation, worker: WorkerProcess, duration_ms: float
    ) -> InvocationReport:
        used_mb = math.ceil(worker.peak_rss_bytes / _MIB)
        return InvocationReport(
            request_id=invocation.request_id,
            duration_ms=duration_ms,
            billed_ms=billed_duration_ms(duration_ms),
            memory_size_mb=self.spec.memory_mb,
            # Lambda's cgroup never lets usage pass the quota, so neither does the report.
            max_memory_used_mb=min(used_mb, self.spec.memory_mb),
            init_duration_ms=invocation.init_duration_ms,
        )

    def _emit(
        self,
        invocation: _Invocation,
        report: InvocationReport,
        lines: list[str],
        after: Iterable[str] = (),
    ) -> None:
        if self._log_sink is None:
            return
        frame = [
            *invocation.init_lines,
            logs.start_line(invocation.request_id, self.spec.version),
            *lines,
            logs.end_line(invocation.request_id),
            logs.report_line(report),
            *after,
        ]
        self._emit_lines(frame)

    def _emit_lines(self, lines: list[str]) -> None:
        if self._log_sink is None:
            return
        try:
            self._log_sink(self.spec.name, lines)
        except Exception:
            logger.exception("log sink failed for function %r", self.spec.name)

    def _release(self, worker: WorkerProcess) -> None:
        if self._closed or not worker.alive:
            self._discard_later(worker)
        else:
            self._idle.put(worker)

    async def _lost(self, worker: WorkerProcess, what: Exited | Broken) -> None:
        """A worker died or broke between invocations: its last output and its end are logged."""
        request_id = self._last_request.get(worker, "")
        await self._discard(worker)
        match what:
            case Exited(returncode=code):
                after = logs.exit_error_lines(request_id, logs.exit_detail(code))
            case Broken(reason=reason):
                detail = f"Runtime.InvalidResponse: the worker broke the protocol: {reason}"
                after = [f"RequestId: {request_id} Error: {detail}"]
        self._emit_lines([*worker.log.rest(), *after])

    def _discard_later(self, worker: WorkerProcess) -> None:
        """Kill now and reap in the background (``aclose`` still waits for it)."""
        worker.kill()
        _ = spawn(self._discard(worker), name=f"edgesim-discard-{worker.pid}")

    async def _discard(self, worker: WorkerProcess) -> None:
        try:
            await worker.discard()
        finally:
            self._workers.discard(worker)
            self._last_request.pop(worker, None)
            self._idle.remove(worker)
