"""``edgesim init [DIR]``: a starter project that serves, passes its tests and teaches the loop.

It holds a distribution file (pointing editors at the schema, a copy of which sits beside it so
completion works offline and matches the installed edgesim), a small site served as an S3
bucket, a Python function at viewer-request, a Node.js function at viewer-response, and a
pytest file that tests both through edgesim's pytest plugin. Nothing is overwritten: if any of
these files exists, nothing is written.
"""

from __future__ import annotations

from pathlib import Path

from edgesim.schema import SCHEMA_FILE, schema_comment

__all__ = ["STARTER_FILES", "write_starter"]

_DISTRIBUTION = f"""\
{schema_comment("distribution.schema.json")}
# A starter distribution: the site in site/ served as an S3 bucket, a Python function at
# viewer-request and a Node.js function at viewer-response.
#   edgesim serve distribution.yaml   serves it on http://127.0.0.1:8080/
#   pytest                            runs test_functions.py against it
distribution:
  default_root_object: index.html

origins:
  site:
    s3: site

functions:
  add-index:                  # viewer-request (Python): /docs/ -> /docs/index.html
    runtime: python3.12
    code: functions/add-index
    handler: app.handler
    timeout: 5
  security-headers:           # viewer-response (Node.js): headers on every answer
    runtime: nodejs20.x
    code: functions/security-headers
    handler: index.handler
    timeout: 5

behaviors:
  - path_pattern: "*"
    origin: site
    cache_policy: CachingOptimized   # Miss, then Hit: watch X-Cache
    functions:
      viewer-request: add-index
      viewer-response: security-headers
"""

_PYTHON_FUNCTION = '''\
"""Viewer-request: a URI that names a folder gets the folder's index.html, as S3 sites do."""


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    if request["uri"].endswith("/"):
        request["uri"] += "index.html"
        print(f"rewrote the URI to {request['uri']}")
    return request
'''

_NODE_FUNCTION = """\
// Viewer-response: security headers on every answer the viewer gets.
export const handler = async (event) => {
  const response = event.Records[0].cf.response;
  response.headers['strict-transport-security'] = [
    { key: 'Strict-Transport-Security', value: 'max-age=63072000; includeSubDomains' },
  ];
  response.headers['x-content-type-options'] = [
    { key: 'X-Content-Type-Options', value: 'nosniff' },
  ];
  return response;
};
"""

_TEST = '''\
"""Tests of the functions, run by edgesim's pytest plugin: real workers, no port, no deploy."""


async def test_a_folder_gets_its_index_page(edge):
    e = await edge("distribution.yaml")
    response = await e.get("/docs/")
    assert response.status == 200
    assert response.result("viewer-request")["uri"] == "/docs/index.html"
    assert "The docs" in response.text


async def test_answers_get_security_headers_and_are_cached(edge):
    e = await edge("distribution.yaml")
    response = await e.get("/")
    assert response.status == 200
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert "max-age" in response.headers.get("Strict-Transport-Security")
    assert (await e.get("/")).headers.get("X-Cache") == "Hit from cloudfront"
'''

_PYTEST_INI = """\
[pytest]
# edgesim's fixtures are async: let pytest-asyncio run the tests without a marker each.
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
"""


def _page(title: str, text: str) -> str:
    return (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{title}</title></head>\n"
        f"<body><h1>{title}</h1><p>{text}</p></body></html>\n"
    )


STARTER_FILES: dict[str, str] = {
    "distribution.yaml": _DISTRIBUTION,
    "functions/add-index/app.py": _PYTHON_FUNCTION,
    "functions/security-headers/index.mjs": _NODE_FUNCTION,
    "site/index.html": _page("Hello from edgesim", "Served from site/ as an S3 bucket."),
    "site/docs/index.html": _page("The docs", "Reached at /docs/ by the add-index function."),
    "test_functions.py": _TEST,
    "pytest.ini": _PYTEST_INI,
}
"""The starter's files by path, except the schema copy (``distribution.schema.json``)."""


def write_starter(directory: Path) -> list[Path]:
    """Write the starter project into ``directory`` (created if missing); returns the paths.

    Raises :class:`FileExistsError` naming the files already there, having written nothing.
    """
    files = {directory / name: text for name, text in STARTER_FILES.items()}
    files[directory / SCHEMA_FILE.name] = SCHEMA_FILE.read_text()
    taken = [str(path) for path in files if path.exists()]
    if taken:
        raise FileExistsError(f"not overwriting {', '.join(taken)}")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return list(files)
