"""What each function did for each request: the event in, the value out, its log lines.

:class:`CallRecorder` sits between an edge and its function runtime as a
:class:`~edgesim.types.FunctionInvoker` and is also the edge's :data:`~edgesim.types.LogSink`.
It is a :class:`~edgesim.runtime.calls.RecordingInvoker` (which makes each
:class:`FunctionCall` and notes it as the running one, see there) that keeps the calls by
CloudFront request id (``cf.config.requestId``, the trace's id and the response's
``X-Amz-Cf-Id``), with what the function returned even when CloudFront's rules then refuse it,
which the trace alone does not keep, and files each log line on the call that wrote it.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from edgesim.exceptions import FunctionError
from edgesim.runtime import FunctionRuntime, FunctionSpec
from edgesim.runtime.calls import FunctionCall, RecordingInvoker, current_call
from edgesim.types import FunctionInvoker, Invocation

__all__ = ["CallRecorder", "FunctionCall"]


class CallRecorder(RecordingInvoker):
    """Records every invocation through ``runtime`` and every log line, by request id.

    With ``echo`` each log line is also written to ``sys.stderr`` (looked up at each write, so
    pytest's capture shows the lines in a failing test's report).
    """

    def __init__(self, runtime: FunctionInvoker, *, echo: bool = False) -> None:
        super().__init__(runtime, on_call=self._keep)
        self.echo = echo
        self.lines: list[str] = []
        """Every log line, in order, whatever request it belongs to."""
        self._calls: defaultdict[str, list[FunctionCall]] = defaultdict(list)

    @classmethod
    def over(cls, specs: Iterable[FunctionSpec], *, echo: bool = False) -> CallRecorder:
        """A recorder over a new :class:`FunctionRuntime` for ``specs`` that logs to it."""
        recorder = cls(_NoRuntime(), echo=echo)
        recorder.runtime = FunctionRuntime(specs, log_sink=recorder.sink)
        return recorder

    def _keep(self, call: FunctionCall) -> None:
        self._calls[call.request_id].append(call)

    async def call(self, name: str, event: dict[str, Any]) -> FunctionCall:
        """Invoke and return the call record; a function's failure is in ``call.error``."""
        try:
            await self.invoke(name, event)
        except FunctionError:
            pass  # recorded on the call
        call = current_call()
        assert call is not None and call.event is event
        kept = self._calls.get(call.request_id, [])
        kept[:] = [c for c in kept if c is not call]
        if not kept:
            self._calls.pop(call.request_id, None)
        return call

    def sink(self, function: str, lines: list[str]) -> None:
        """The :data:`~edgesim.types.LogSink` to give the edge."""
        self.lines.extend(lines)
        call = current_call()
        if call is not None and call.function == function:
            call.logs.extend(lines)
        if self.echo:
            stream = sys.stderr
            for line in lines:
                print(f"[{function}] {line}", file=stream)

    def calls_for(self, request_id: str) -> list[FunctionCall]:
        """The calls made for request ``request_id``, in order."""
        return list(self._calls.get(request_id, ()))

    def forget(self, request_id: str) -> list[FunctionCall]:
        """The calls for ``request_id``, no longer kept here."""
        return self._calls.pop(request_id, [])


class _NoRuntime:
    """Stands in until :meth:`CallRecorder.over` has built the runtime that logs to it."""

    async def invoke(self, name: str, event: dict[str, object]) -> Invocation:
        raise AssertionError("the recorder has no runtime yet")

    async def aclose(self) -> None:
        return None
