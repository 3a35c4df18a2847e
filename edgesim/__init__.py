"""edgesim: a local Amazon CloudFront edge location running Lambda@Edge functions.

The public API is small: load a distribution file, build an :class:`Edge` and dispatch
:class:`EdgeRequest` objects through it (the HTTP server and the test helpers do exactly that).

Names are loaded on first use, so ``import edgesim.cache`` (a leaf library) does not pull in the
pipeline, the runtime or the front doors.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgesim.config import Distribution, load_distribution, load_distributions
    from edgesim.exceptions import (
        ConfigError,
        EdgesimError,
        FunctionError,
        LambdaExecutionError,
        LambdaLimitExceeded,
        LambdaValidationError,
        OriginError,
    )
    from edgesim.http import EdgeRequest, EdgeResponse, Headers
    from edgesim.pipeline import Edge, EdgeResult
    from edgesim.trace import Stage, Trace, TraceRecord
    from edgesim.types import EventType

_HOMES = {
    "Distribution": "edgesim.config",
    "load_distribution": "edgesim.config",
    "load_distributions": "edgesim.config",
    "ConfigError": "edgesim.exceptions",
    "EdgesimError": "edgesim.exceptions",
    "FunctionError": "edgesim.exceptions",
    "LambdaExecutionError": "edgesim.exceptions",
    "LambdaLimitExceeded": "edgesim.exceptions",
    "LambdaValidationError": "edgesim.exceptions",
    "OriginError": "edgesim.exceptions",
    "EdgeRequest": "edgesim.http",
    "EdgeResponse": "edgesim.http",
    "Headers": "edgesim.http",
    "Edge": "edgesim.pipeline",
    "EdgeResult": "edgesim.pipeline",
    "Stage": "edgesim.trace",
    "Trace": "edgesim.trace",
    "TraceRecord": "edgesim.trace",
    "EventType": "edgesim.types",
}

__all__ = [
    "ConfigError",
    "Distribution",
    "Edge",
    "EdgeRequest",
    "EdgeResponse",
    "EdgeResult",
    "EdgesimError",
    "EventType",
    "FunctionError",
    "Headers",
    "LambdaExecutionError",
    "LambdaLimitExceeded",
    "LambdaValidationError",
    "OriginError",
    "Stage",
    "Trace",
    "TraceRecord",
    "load_distribution",
    "load_distributions",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'edgesim' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
