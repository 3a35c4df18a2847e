"""Distribution files: loading, the frozen models, and the rules their values obey.

A distribution file becomes a :class:`Distribution` through :func:`load_distribution`; every
mistake is one :class:`~edgesim.exceptions.ConfigError` naming the file, the key and the problem.
"""

from edgesim.config.load import (
    RUNTIMES,
    BehaviorConfig,
    CustomErrorResponse,
    Distribution,
    DistributionSettings,
    FunctionAssociation,
    FunctionConfig,
    OriginConfig,
    OriginGroupConfig,
    load_distribution,
    load_distribution_data,
    load_distributions,
)

__all__ = [
    "RUNTIMES",
    "BehaviorConfig",
    "CustomErrorResponse",
    "Distribution",
    "DistributionSettings",
    "FunctionAssociation",
    "FunctionConfig",
    "OriginConfig",
    "OriginGroupConfig",
    "load_distribution",
    "load_distribution_data",
    "load_distributions",
]
