"""The function runtime: unmodified Lambda@Edge handlers run in isolated worker processes.

:class:`FunctionRuntime` holds one :class:`FunctionPool` per function; a pool starts, reuses and
replaces worker processes the way Lambda manages execution environments (cold starts, warm
reuse, throttling, timeouts, memory quota, crashes) and reports each invocation with Lambda's
``START``/``END``/``REPORT`` log frame. The pool talks to workers over the language-neutral
protocol of :mod:`edgesim.runtime.protocol`.
"""

from edgesim.runtime.functions import FunctionRuntime
from edgesim.runtime.pool import FunctionPool
from edgesim.runtime.spec import FunctionSpec, InvocationReport, InvocationResult, LogSink

__all__ = [
    "FunctionPool",
    "FunctionRuntime",
    "FunctionSpec",
    "InvocationReport",
    "InvocationResult",
    "LogSink",
]
