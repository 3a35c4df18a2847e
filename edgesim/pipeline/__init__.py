"""The pipeline: when each of CloudFront's stages runs, for one distribution.

:class:`Edge` and its :meth:`Edge.dispatch` (in :mod:`edgesim.pipeline.edge`) name every stage in
CloudFront's order; the cache stage and the origin side of a miss are its two helpers.
"""

from edgesim.pipeline.edge import MAX_REQUEST_SIZE, MAX_URL_LENGTH, Edge, EdgeResult
from edgesim.pipeline.functions import function_specs

__all__ = ["MAX_REQUEST_SIZE", "MAX_URL_LENGTH", "Edge", "EdgeResult", "function_specs"]
