"""The functions' code, checked before a distribution serves: ``edgesim validate`` and
``edgesim serve`` (at start and on every reload) run the same check.

Each function is loaded in a worker of its own runtime, as a cold start does (see
:mod:`edgesim.runtime.check`), all at once. A problem is reported as a :class:`ConfigError`
naming the distribution file, the function's ``handler`` key and the runtime's own error, with
the file and line the error points at.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from edgesim.config import Distribution
from edgesim.exceptions import ConfigError, RuntimeUnavailableError
from edgesim.pipeline.functions import function_specs
from edgesim.runtime import FunctionSpec
from edgesim.runtime.check import FunctionCodeError, check_code

__all__ = ["check_distribution_code", "check_functions"]


async def check_functions(file: str, specs: Iterable[FunctionSpec]) -> list[ConfigError]:
    """The problems of these functions of distribution ``file``, one per broken function."""
    chosen = list(specs)
    outcomes = await asyncio.gather(*(check_code(spec) for spec in chosen), return_exceptions=True)
    problems: list[ConfigError] = []
    for spec, outcome in zip(chosen, outcomes, strict=True):
        if isinstance(outcome, FunctionCodeError):
            problems.append(ConfigError(file, f"functions.{spec.name}.handler", str(outcome)))
        elif isinstance(outcome, RuntimeUnavailableError | OSError):
            problems.append(ConfigError(file, f"functions.{spec.name}.runtime", str(outcome)))
        elif isinstance(outcome, BaseException):
            raise outcome
    return problems


async def check_distribution_code(
    files: Iterable[str], distributions: Iterable[Distribution]
) -> list[ConfigError]:
    """The code problems of every function of these distributions (``files`` name them)."""
    checks = [
        check_functions(file, function_specs(distribution))
        for file, distribution in zip(files, distributions, strict=True)
    ]
    return [problem for problems in await asyncio.gather(*checks) for problem in problems]
