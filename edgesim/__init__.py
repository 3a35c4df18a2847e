"""edgesim: a local Amazon CloudFront edge location running Lambda@Edge functions.

The public API is small: load a distribution file, build an :class:`Edge` and dispatch
:class:`EdgeRequest` objects through it (the HTTP server and the test helpers do exactly that).
"""

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
