"""Fuzzing a function against CloudFront's rules: :func:`check_function`.

Hypothesis generates events for the trigger (:mod:`edgesim.testing.strategies`), the function
runs on each in a real worker, and CloudFront's rules judge each result. The first event whose
result CloudFront would refuse (502), or that makes the function raise, crash or time out (503),
is shrunk to the smallest such event, and :class:`FunctionCheckFailed` reports it with the rule
in CloudFront's words.

Hypothesis drives a plain function, while the workers live on the test's event loop; so the
search runs in a thread and hands each invocation back to the loop, which waits on that thread
and is free to run it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from edgesim.testing.assertions import shown_json
from edgesim.testing.invoke import FunctionInput, Invoked, Invoker
from edgesim.testing.strategies import events as event_strategy
from edgesim.types import EventType

__all__ = ["CheckReport", "FunctionCheckFailed", "check_function"]


@dataclass(frozen=True)
class CheckReport:
    """A passed check: how many events the function handled within CloudFront's rules."""

    function: str
    trigger: EventType
    examples: int


class FunctionCheckFailed(AssertionError):
    """A generated event on which the function's result is refused, or the function fails."""

    def __init__(self, invoked: Invoked, tried: int) -> None:
        self.invoked = invoked
        self.tried = tried
        verdict = invoked.verdict
        if verdict.accepted:
            what = (
                "failed on this event during the search, but not when run again (is it "
                "deterministic?)"
            )
        else:
            what = f"gets {verdict.status} {verdict.outcome.value} on this event"
        lines = [
            f"{verdict.trigger.value} function {invoked.function!r} {what} "
            f"(the smallest of {tried} tried):",
            f"  {verdict.reason}" if verdict.reason else "",
            f"event: {shown_json(invoked.event)}",
            f"result: {shown_json(invoked.value)}",
        ]
        if invoked.logs:
            lines.append("logs:\n  " + "\n  ".join(invoked.logs))
        super().__init__("\n".join(line for line in lines if line))


async def check_function(
    function: FunctionInput,
    trigger: EventType | str,
    *,
    events: st.SearchStrategy[dict[str, Any]] | None = None,
    include_body: bool = False,
    max_examples: int = 100,
    invoker: Invoker | None = None,
    base_dir: Path | None = None,
    hypothesis_settings: settings | None = None,
) -> CheckReport:
    """Run ``function`` on generated ``trigger`` events; fail with the smallest bad one.

    ``events`` replaces the default strategy (:func:`edgesim.testing.strategies.events`);
    ``include_body`` is the association's Include Body setting. ``invoker`` (the ``edge_invoke``
    fixture) keeps the function's workers warm across checks; without one a runtime is started
    and stopped here. Raises :class:`FunctionCheckFailed` (an ``AssertionError``).
    """
    kind = EventType(trigger)
    strategy = events if events is not None else event_strategy(kind, include_body=include_body)
    owned = invoker is None
    runner = invoker or Invoker(base_dir=base_dir)
    runner.spec_for(function)  # a wrong folder or handler fails here, before any search
    loop = asyncio.get_running_loop()
    tried = 0

    def fails(event: dict[str, Any]) -> bool:
        nonlocal tried
        tried += 1
        pending = asyncio.run_coroutine_threadsafe(
            runner(function, event, trigger=kind, include_body=include_body), loop
        )
        return not pending.result().accepted

    config = settings(
        hypothesis_settings or settings(),
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink],
    )
    try:
        try:
            smallest = await asyncio.to_thread(find, strategy, fails, settings=config)
        except NoSuchExample:
            return CheckReport(runner.spec_for(function).name, kind, tried)
        invoked = await runner(function, smallest, trigger=kind, include_body=include_body)
        raise FunctionCheckFailed(invoked, tried)
    finally:
        if owned:
            await runner.aclose()
