"""edgesim's test kit: test your Lambda@Edge functions against a real edge, from any test runner.

Nothing here imports pytest; the pytest plugin (:mod:`edgesim.testing.plugin`, loaded
automatically once edgesim is installed) is a thin layer of fixtures over these pieces:

- :class:`EdgeHarness` (fixture ``edge``): a distribution's edge, in-process or on a port, with
  an async client whose :class:`Response` carries the trace, each function's
  :class:`FunctionCall` (event in, value out, verdict) and log lines;
- :class:`RecordingOrigin` (``edge_origin``): a programmable origin that records what it gets;
- :class:`FakeClock` (``edge_clock``): cache time that moves when the test says;
- :class:`EventFactory` (``edge_event``): CloudFront's events, built by the edge's own code;
- :class:`Invoker` (``edge_invoke``): one function on one event, with CloudFront's
  :class:`Verdict`;
- :func:`assert_valid`: fails with CloudFront's own reason (:class:`ResultRefused`);
- :func:`check_function` and :mod:`edgesim.testing.strategies`: fuzzing with Hypothesis
  (installed with ``edgesim[testing]``; loaded on first use).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgesim.testing.assertions import ResultRefused, Verdict, assert_valid, judge
    from edgesim.testing.calls import FunctionCall
    from edgesim.testing.clock import FakeClock
    from edgesim.testing.config import ConfigInput, OriginsInput, resolve_distribution
    from edgesim.testing.events import EventFactory
    from edgesim.testing.fuzz import CheckReport, FunctionCheckFailed, check_function
    from edgesim.testing.harness import EdgeHarness
    from edgesim.testing.invoke import Function, Invoked, Invoker
    from edgesim.testing.origin import OriginReply, OriginRequest, RecordingOrigin
    from edgesim.testing.response import Response

__all__ = [
    "CheckReport",
    "ConfigInput",
    "EdgeHarness",
    "EventFactory",
    "FakeClock",
    "Function",
    "FunctionCall",
    "FunctionCheckFailed",
    "Invoked",
    "Invoker",
    "OriginReply",
    "OriginRequest",
    "OriginsInput",
    "RecordingOrigin",
    "Response",
    "ResultRefused",
    "Verdict",
    "assert_valid",
    "check_function",
    "judge",
    "resolve_distribution",
]

# Each name is imported from its module on first use: the pytest plugin lives in this package and
# is loaded by every pytest run where edgesim is installed, which should not pay for the whole
# kit (about half a second: the pipeline, aiohttp, pydantic models), and fuzzing needs the
# optional Hypothesis.
_HOMES = {
    "ResultRefused": "assertions",
    "Verdict": "assertions",
    "assert_valid": "assertions",
    "judge": "assertions",
    "FunctionCall": "calls",
    "FakeClock": "clock",
    "ConfigInput": "config",
    "OriginsInput": "config",
    "resolve_distribution": "config",
    "EventFactory": "events",
    "CheckReport": "fuzz",
    "FunctionCheckFailed": "fuzz",
    "check_function": "fuzz",
    "EdgeHarness": "harness",
    "Function": "invoke",
    "Invoked": "invoke",
    "Invoker": "invoke",
    "OriginReply": "origin",
    "OriginRequest": "origin",
    "RecordingOrigin": "origin",
    "Response": "response",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'edgesim.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"edgesim.testing.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
