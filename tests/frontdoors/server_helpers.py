"""Shared by the aiohttp adapter's tests: a distribution serving one small S3-style folder."""

from __future__ import annotations

from pathlib import Path

from edgesim.config import load_distribution
from edgesim.pipeline import Edge


def site_edge(tmp_path: Path) -> Edge:
    """An edge whose only origin is a folder holding ``a.txt`` (``hello``)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "a.txt").write_bytes(b"hello")
    path = tmp_path / "d.yaml"
    path.write_text(
        f'origins: {{site: {{s3: "{site}"}}}}\nbehaviors: [{{path_pattern: "*", origin: site}}]\n'
    )
    return Edge(load_distribution(path))
