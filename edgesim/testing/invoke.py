"""Run one function on one event, with no distribution: the ``edge_invoke`` fixture.

The function runs in the same worker runtime an edge uses (:class:`FunctionRuntime`: a real
worker process, Lambda's environment, timeout and memory quota), so what comes back is what the
edge would get. Each :class:`Invoked` has the value returned, the log lines, the duration and
CloudFront's verdict for the trigger (:func:`edgesim.testing.assertions.judge`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgesim.config import RUNTIMES
from edgesim.exceptions import FunctionError
from edgesim.lambda_edge.events import event_trigger
from edgesim.quotas import LAMBDA_EDGE
from edgesim.runtime import FunctionSpec
from edgesim.testing.assertions import ResultRefused, Verdict, judge
from edgesim.testing.calls import CallRecorder
from edgesim.testing.events import event_for
from edgesim.types import EventType

__all__ = ["Function", "FunctionInput", "Invoked", "Invoker"]

# Lambda's defaults, in the order a folder is searched for a handler.
_DEFAULT_HANDLERS = (
    ("index.mjs", "index.handler"),
    ("index.js", "index.handler"),
    ("index.cjs", "index.handler"),
    ("index.py", "index.handler"),
    ("lambda_function.py", "lambda_function.lambda_handler"),
    ("app.py", "app.handler"),
)
_RUNNING_PYTHON = f"python{sys.version_info.major}.{sys.version_info.minor}"


@dataclass(frozen=True)
class Function:
    """A Lambda@Edge function: its code folder, handler and runtime.

    ``handler`` defaults to ``index.handler`` when the folder has an ``index.mjs``/``.js``/
    ``.cjs`` or ``index.py``, else ``lambda_function.lambda_handler`` or ``app.handler`` when
    that file is there. ``runtime`` defaults from the handler's file: Python files run on this
    interpreter's version (``python3.12``...), JavaScript on ``nodejs20.x``. ``timeout`` and
    ``memory`` default to the viewer triggers' quotas (5 s, 128 MB). A relative ``code`` is resolved
    against the ``base_dir`` of whoever runs it (the test file's folder under pytest).
    """

    code: str | Path
    handler: str | None = None
    runtime: str | None = None
    memory: int = 128
    timeout: float = 5.0
    name: str | None = None

    def spec(self, base_dir: Path | None = None) -> FunctionSpec:
        """The runtime's view of this function; :class:`ValueError` if it cannot be found."""
        folder = Path(self.code).expanduser()
        if not folder.is_absolute():
            folder = (base_dir or Path.cwd()) / folder
        folder = folder.resolve()
        if not folder.is_dir():
            raise ValueError(f"function code folder {str(folder)!r} does not exist")
        handler = self.handler or _default_handler(folder)
        runtime = self.runtime or _runtime_for(folder, handler)
        if runtime not in RUNTIMES:
            raise ValueError(f"unsupported runtime {runtime!r}; supported: {', '.join(RUNTIMES)}")
        return FunctionSpec(
            name=self.name or folder.name,
            runtime=runtime,
            code_dir=folder,
            handler=handler,
            memory_mb=self.memory,
            timeout_s=float(self.timeout),
        )


FunctionInput = Function | str | Path
"""A :class:`Function`, or just its code folder (handler and runtime found as it says)."""


def _default_handler(folder: Path) -> str:
    for filename, handler in _DEFAULT_HANDLERS:
        if (folder / filename).is_file():
            return handler
    raise ValueError(
        f"no handler given and {str(folder)!r} has none of "
        f"{', '.join(f for f, _ in _DEFAULT_HANDLERS)}; pass handler='module.function'"
    )


def _runtime_for(folder: Path, handler: str) -> str:
    module = handler.rsplit(".", 1)[0]
    if (folder / f"{module}.py").is_file():
        return _RUNNING_PYTHON if _RUNNING_PYTHON in RUNTIMES else "python3.12"
    if any((folder / f"{module}{ext}").is_file() for ext in (".mjs", ".js", ".cjs")):
        return "nodejs20.x"
    raise ValueError(
        f"cannot tell the runtime of handler {handler!r} in {str(folder)!r}; pass runtime="
    )


@dataclass(frozen=True)
class Invoked:
    """One invocation: what the function returned and what CloudFront makes of it."""

    function: str
    event: dict[str, Any]
    value: object
    """What the handler returned (None when it failed: see :attr:`error`)."""
    verdict: Verdict
    logs: list[str] = field(default_factory=list)
    duration_ms: float = 0.0
    error: FunctionError | None = None

    @property
    def accepted(self) -> bool:
        """Whether CloudFront would carry on with the result."""
        return self.verdict.accepted

    def assert_valid(self) -> Invoked:
        """Fail with :class:`ResultRefused` (CloudFront's reason) unless accepted."""
        if not self.verdict.accepted:
            raise ResultRefused(self.verdict, self.value, self.event)
        return self


class Invoker:
    """Runs functions on events, keeping one warm pool per function until :meth:`aclose`.

    ``await invoker(Function("fn"), event)``; a folder alone will do. ``echo`` copies the
    functions' log lines to stderr.
    """

    def __init__(self, *, base_dir: Path | None = None, echo: bool = False) -> None:
        self.base_dir = base_dir
        self.echo = echo
        self._recorders: dict[FunctionSpec, CallRecorder] = {}

    async def __call__(
        self,
        function: FunctionInput,
        event: dict[str, Any] | None = None,
        *,
        trigger: EventType | str | None = None,
        include_body: bool | None = None,
    ) -> Invoked:
        """Invoke ``function`` on ``event`` (default: the trigger's default event).

        The trigger is the event's ``eventType`` unless given. The function is held to that
        trigger's timeout and memory quotas. Raises
        :class:`~edgesim.exceptions.RuntimeUnavailableError` when its runtime cannot run here.
        """
        spec = self.spec_for(function)
        if event is None:
            if trigger is None:
                raise TypeError("give an event, or the trigger whose default event to use")
            event = event_for(trigger)
        kind = EventType(trigger) if trigger is not None else None
        _check_quotas(spec, kind or event_trigger(event))
        recorder = self._recorder(spec)
        call = await recorder.call(spec.name, event)
        verdict = judge(call.value, kind, event=event, include_body=include_body, error=call.error)
        return Invoked(
            function=spec.name,
            event=event,
            value=call.value,
            verdict=verdict,
            logs=call.logs,
            duration_ms=call.duration_ms,
            error=call.error,
        )

    def spec_for(self, function: FunctionInput) -> FunctionSpec:
        """The runtime spec of ``function`` (relative folders against ``base_dir``)."""
        if not isinstance(function, Function):
            function = Function(function)
        return function.spec(self.base_dir)

    def _recorder(self, spec: FunctionSpec) -> CallRecorder:
        recorder = self._recorders.get(spec)
        if recorder is None:
            recorder = CallRecorder.over([spec], echo=self.echo)
            self._recorders[spec] = recorder
        return recorder

    async def aclose(self) -> None:
        """Stop every worker started."""
        recorders = list(self._recorders.values())
        self._recorders.clear()
        for recorder in recorders:
            await recorder.aclose()


def _check_quotas(spec: FunctionSpec, trigger: EventType | None) -> None:
    """A function configured past its trigger's quotas would not deploy; say so now."""
    if trigger is None:
        return
    quota = LAMBDA_EDGE[trigger]
    if spec.timeout_s > quota.timeout_max_s or not (
        quota.memory_min_mb <= spec.memory_mb <= quota.memory_max_mb
    ):
        raise ValueError(
            f"function {spec.name!r} has timeout {spec.timeout_s:g} s and memory "
            f"{spec.memory_mb} MB; {trigger.value} allows at most {quota.timeout_max_s} s and "
            f"{quota.memory_min_mb}-{quota.memory_max_mb} MB"
        )
