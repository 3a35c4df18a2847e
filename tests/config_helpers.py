"""Shared helpers of the distribution-file tests: the DESIGN.md example and one-line problems.

``tests/test_config.py``, ``tests/test_config_models.py`` and ``tests/test_config_rules.py`` all
load files through :func:`edgesim.config.load.load_distribution`, as a user's file is loaded, and
check each problem by the one line the user reads.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from edgesim.config import load_distribution
from edgesim.exceptions import ConfigError

EXAMPLE = """\
distribution:
  id: EDFDVBD6EXAMPLE
  domain_name: d111111abcdef8.cloudfront.net
  aliases: [www.example.test]
  pop: LAX1
  default_root_object: index.html
origins:
  site:
    s3: site
  api:
    url: http://127.0.0.1:9000
    path: /v1
    custom_headers: {X-Origin-Secret: abc}
    read_timeout: 30
    keepalive_timeout: 5
origin_groups:
  site-with-backup: {primary: api, secondary: site, status_codes: [500, 502, 503, 504]}
functions:
  rewrite-index:
    runtime: nodejs20.x
    code: functions/rewrite-index
    handler: index.handler
    memory: 128
    timeout: 5
  sign-request: {runtime: python3.12, code: functions/sign, handler: app.handler,
                 memory: 1024, timeout: 30}
  security-headers: {runtime: nodejs22.x, code: functions/rewrite-index, handler: headers.handler}
behaviors:
  - path_pattern: /api/*
    origin: api
    allowed_methods: [GET, HEAD, OPTIONS, PUT, PATCH, POST, DELETE]
    cache_policy: CachingDisabled
    origin_request_policy: AllViewer
    functions:
      origin-request: {function: sign-request, include_body: true}
  - path_pattern: /backup/*
    origin: site-with-backup
  - path_pattern: "*"
    origin: site
    cache_policy: {min_ttl: 0, default_ttl: 86400, max_ttl: 31536000,
                   headers: [], cookies: none, query_strings: all}
    functions:
      viewer-request: rewrite-index
      viewer-response: security-headers
custom_error_responses:
  - {error_code: 404, response_page_path: /404.html, response_code: 404, error_caching_min_ttl: 10}
"""


def example_folders(tmp_path: Path) -> Path:
    """``tmp_path`` with the folders EXAMPLE names (its S3 origin and function code)."""
    for name in ("site", "functions/rewrite-index", "functions/sign"):
        (tmp_path / name).mkdir(parents=True)
    return tmp_path


def example() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(EXAMPLE))


def write(folder: Path, data: Any, name: str = "dist.yaml") -> Path:
    path = folder / name
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def problem(folder: Path, data: Any, name: str = "dist.yaml") -> str:
    """The one-line message, without the file name in front (checked separately)."""
    path = write(folder, data, name)
    with pytest.raises(ConfigError) as caught:
        load_distribution(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    rest = message.removeprefix(f"{path}: ")
    for leak in ("pydantic", "Input should", "validation error", "For further information"):
        assert leak not in rest, rest
    return rest


def function_problem(folder: Path, **changes: Any) -> str:
    data = example()
    data["functions"]["sign-request"].update(changes)
    return problem(folder, data)


def origin_problem(folder: Path, origin: dict[str, Any]) -> str:
    data = example()
    data["origins"]["api"] = origin
    return problem(folder, data)


def behavior_problem(folder: Path, index: int = 0, **changes: Any) -> str:
    data = example()
    data["behaviors"][index].update(changes)
    return problem(folder, data)


def origin_group_problem(folder: Path, group: dict[str, Any]) -> str:
    """The problem with origin group ``g`` (beside a valid group ``g2``)."""
    data = example()
    data["origin_groups"] = {
        "g": group,
        "g2": {"primary": "api", "secondary": "site", "status_codes": [404]},
    }
    return problem(folder, data)
