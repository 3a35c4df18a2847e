"""One edge process of ``serve --workers``: its options come back from the supervisor's JSON
as they were. (Processes serving together: tests/frontdoors/test_processes.py.)"""

from __future__ import annotations

import json
from dataclasses import asdict

from edgesim.frontdoors.edge_process import options_from_json
from edgesim.frontdoors.serving import ServeOptions
from edgesim.frontdoors.viewer_limits import ViewerLimits


def test_options_survive_the_supervisors_json() -> None:
    options = ServeOptions(
        port=0,
        cache_size=1234,
        limits=ViewerLimits(header_timeout=3.0, max_connections=7),
        dev_errors=True,
        reload=False,
        inspect=(("auth", 9230), ("log", None)),
    )
    assert options_from_json(json.loads(json.dumps(asdict(options)))) == options
