"""Every Lambda@Edge result rule, through a real worker and the real proxy.

One function (functions/mutate) bends its result as the `case` query parameter says, at the trigger
the case names. A breaking result must cost the viewer a 502 ``LambdaValidationError`` page with
the reason in the function's log; an obeying one must pass. The function has a Python
(``index.py``) and a Node.js (``index.mjs``) twin, and every case runs on both runtimes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from aiohttp import web

from edgesim.cache.store import NullCacheStore
from edgesim.config import load_distribution
from edgesim.frontdoors.server import EdgeServer
from edgesim.pipeline import Edge
from tests import http_clients
from tests.e2e.conftest import FUNCTIONS, Origin, RunningEdge, serve_handler

# Starting an edge and its workers costs far more than one case, so each module-scoped edge
# (one per runtime) serves every case, on the module's own event loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")

RUNTIMES = ["python3.12", "nodejs20.x"]

DIST = """
origins:
  api: {{url: "{origin}"}}
functions:
  mutate: {{runtime: {runtime}, code: "{{functions}}/mutate", handler: index.handler,
            memory: 128, timeout: 5}}
behaviors:
  - path_pattern: "*"
    origin: api
    functions:
      viewer-request: mutate
      origin-request: mutate
      origin-response: mutate
      viewer-response: mutate
"""

# (case, expected status). lambda-edge.md §2-§3; the comment names the rule.
PASSING = [
    ("vreq-add-header", 200),  # §3: other headers are writable
    ("vreq-add-header-no-key", 200),  # §1.3: a missing key is filled in
    ("vreq-change-uri", 200),  # §1.3: uri is writable in request triggers
    ("vreq-change-querystring", 200),
    ("vreq-generated-200", 200),  # §2.2: generated response
    ("vreq-generated-int-status", 200),  # DESIGN: a numeric status is accepted
    ("vreq-generated-base64", 200),
    ("vreq-generated-30k", 200),  # §2.2: under the 40 KB viewer limit
    ("vreq-generated-500", 500),  # §2.1: any status 200-599
    ("oreq-add-header", 200),
    ("oreq-change-host", 200),  # §3.2: Host is read-only only at viewer-request
    ("oreq-change-uri", 200),
    ("oreq-generated-200", 200),
    ("oreq-generated-too-big", 200),  # §2.2: 41 KB is under the 1 MB origin limit
    ("oreq-origin-custom-header-ok", 200),  # §1.3: origin custom headers may change
    ("ores-add-header", 200),
    ("ores-set-status-404", 404),  # §2.1: origin-response may change the status
    ("ores-set-status-int", 201),
    ("ores-set-body", 200),  # §2.1: origin-response may set a body
    ("vres-add-header", 200),
    # No source documents a refusal of a key that names another header; AWS's own "Override a
    # response header" example returns one (see test_published_header_shapes_work).
    ("vreq-header-key-mismatch", 200),
]
FAILING = [
    "vreq-not-object",  # §4.1: the JSON output must be an object
    "vreq-list",
    "vreq-string",
    "vreq-change-host",  # §3.2 read-only at viewer-request
    "vreq-delete-host",
    "vreq-add-via",
    "vreq-add-content-length",
    "vreq-add-transfer-encoding",
    "vreq-add-x-cache",  # §3.1 disallowed
    "vreq-add-connection",
    "vreq-add-x-amz-cf-foo",
    "vreq-add-x-edge-foo",
    "vreq-add-x-forwarded-proto",
    "vreq-add-x-real-ip",
    "vreq-add-keep-alive",
    "vreq-add-upgrade",
    "vreq-add-cloudfront-viewer-country",  # §3.3
    "vreq-header-crlf",  # §3.4 invalid characters
    "vreq-header-value-int",  # §3.4 values must be strings
    "vreq-headers-list",
    "vreq-uri-no-slash",  # §3.4 uri rules
    "vreq-uri-int",
    "vreq-uri-too-long",
    "vreq-querystring-space",
    "vreq-querystring-hash",
    "vreq-change-client-ip",  # §3.4 read-only fields
    "vreq-change-method",
    "vreq-generated-status-99",  # §2.1 status range
    "vreq-generated-status-600",
    "vreq-generated-status-text",
    "vreq-generated-status-bool",
    "vreq-generated-no-status-body-int",
    "vreq-generated-bad-base64",  # §2.2
    "vreq-generated-bad-encoding",
    "vreq-generated-disallowed-header",
    "vreq-generated-too-big",  # §2.2: 40 KB at viewer-request
    "vreq-generated-204-with-body",
    "oreq-not-object",
    "oreq-add-via",  # §3.2 read-only at origin-request
    "oreq-add-content-length",
    "oreq-add-transfer-encoding",
    "oreq-change-accept-encoding",
    "oreq-add-if-none-match",
    "oreq-add-x-cache",
    "oreq-uri-no-slash",
    "oreq-querystring-hash",
    "oreq-change-method",
    "oreq-generated-status-600",
    "oreq-generated-huge",  # §2.2: 1 MB at origin-request
    "oreq-origin-port-22",  # §1.3 origin object rules
    "oreq-origin-protocol-ftp",
    "oreq-origin-domain-colon",
    "oreq-origin-domain-ip",
    "oreq-origin-path-trailing-slash",
    "oreq-origin-read-timeout-0",
    "oreq-origin-custom-header-denied",
    "oreq-origin-two-kinds",
    "ores-not-object",
    "ores-add-via",  # §3.2 read-only at origin-response
    "ores-add-transfer-encoding",
    "ores-add-x-cache",
    "ores-header-crlf",
    "ores-set-status-700",
    "vres-not-object",
    "vres-set-status-201",  # DESIGN: viewer-response may not change the status
    "vres-add-warning",  # §3.2 read-only at viewer-response
    "vres-change-content-length",
    "vres-add-via",
    "vres-add-x-cache",
    "vres-header-crlf",
]


async def _start(text: str, folder: Path) -> tuple[EdgeServer, Edge, list[tuple[str, list[str]]]]:
    """A started edge for the distribution ``text`` (its ``{functions}`` filled in) that keeps
    nothing in cache, and the function log it writes to."""
    path = folder / "dist.yaml"
    path.write_text(text.replace("{functions}", str(FUNCTIONS)))
    logs: list[tuple[str, list[str]]] = []
    edge = Edge(
        load_distribution(path),
        log_sink=lambda function, lines: logs.append((function, lines)),
        store=NullCacheStore(),
    )
    server = EdgeServer([edge], port=0)
    await server.start()
    return server, edge, logs


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=RUNTIMES)
async def edge(
    module_origin: Origin,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> AsyncIterator[RunningEdge]:
    """One edge per runtime for every case, its workers warm after the first.

    On a fresh edge a case's request is a cache miss that runs all four triggers. A store that
    keeps nothing gives every case that miss, whatever the caching rules make of the origin's
    answers, so no case can be served an earlier case's object and skip the origin triggers.
    """
    runtime = str(request.param)
    text = DIST.format(origin=module_origin.url, runtime=runtime)
    server, edge, logs = await _start(text, tmp_path_factory.mktemp(f"validation-{runtime}"))
    client = http_clients.async_client(base_url=server.url(), timeout=30)
    try:
        yield RunningEdge(server=server, edge=edge, logs=logs, client=client)
    finally:
        await client.aclose()
        await server.aclose()


async def _get_case(edge: RunningEdge, case: str) -> tuple[httpx.Response, str]:
    """The response to ``case`` and the log text of that request alone (the edge is shared)."""
    logged_before = len(edge.logs)
    response = await edge.client.get("/echo", params={"case": case})
    text = "\n".join(line for _, lines in edge.logs[logged_before:] for line in lines)
    return response, text


@pytest.mark.parametrize(("case", "status"), PASSING)
async def test_obeying_result_passes(edge: RunningEdge, case: str, status: int) -> None:
    response, log_text = await _get_case(edge, case)
    assert response.status_code == status, response.text
    assert "ERROR" not in response.text
    assert "Validation error" not in log_text


@pytest.mark.parametrize("case", FAILING)
async def test_breaking_result_gets_502(edge: RunningEdge, case: str) -> None:
    response, log_text = await _get_case(edge, case)
    assert response.status_code == 502, response.text
    assert response.headers["x-cache"] == "LambdaValidationError from cloudfront"
    assert response.headers["server"] == "CloudFront"
    assert "The request could not be satisfied" in response.text
    assert f"Request ID: {response.headers['x-amz-cf-id']}" in response.text
    assert "Validation error" in log_text


PUBLISHED_DIST = """
origins:
  meta: {{url: "{origin}"}}
functions:
  published: {{runtime: {runtime}, code: "{{functions}}/published", handler: index.handler}}
behaviors:
  - path_pattern: "*"
    origin: meta
    functions: {{origin-response: published, viewer-response: published}}
"""
META_VALUE = "Tue, 04 Mar 2025 09:00:00 GMT"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def meta_origin() -> AsyncIterator[str]:
    """An origin answering like S3 with user metadata: an x-amz-meta-* header, no Last-Modified."""

    async def handle(_: web.Request) -> web.Response:
        return web.Response(text="object", headers={"X-Amz-Meta-Last-Modified": META_VALUE})

    runner, port = await serve_handler(handle)
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def _get_once(
    text: str, tmp_path_factory: pytest.TempPathFactory, name: str
) -> tuple[httpx.Response, str]:
    """Serve the distribution ``text`` on a fresh edge for one GET; the answer and the log."""
    server, _, logs = await _start(text, tmp_path_factory.mktemp(name))
    try:
        async with http_clients.async_client(base_url=server.url(), timeout=30) as client:
            response = await client.get("/object")
    finally:
        await server.aclose()
    return response, "\n".join(line for _, lines in logs for line in lines)


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_published_header_shapes_work(
    meta_origin: str, tmp_path_factory: pytest.TempPathFactory, runtime: str
) -> None:
    """Two published functions CloudFront documents no refusal for (functions/published):
    AWS's Developer Guide example "Override a response header" copies the entry of
    x-amz-meta-last-modified, key X-Amz-Meta-Last-Modified included, into
    headers['last-modified'] and expects Last-Modified to be set; awslabs/aws-cloudfront-extensions'
    modify-response-header sets headers['headerToModify']. Both work: the header is the map name
    (lowercased), and the function's log warns that the behaviour is not documented by
    CloudFront."""
    text = PUBLISHED_DIST.format(origin=meta_origin, runtime=runtime)
    response, log_text = await _get_once(text, tmp_path_factory, f"published-{runtime}")
    assert response.status_code == 200, response.text
    assert response.text == "object"
    assert response.headers.get_list("last-modified") == [META_VALUE]
    assert response.headers.get_list("x-amz-meta-last-modified") == [META_VALUE]
    assert response.headers.get_list("headertomodify") == ["modified header"]
    assert "Validation error" not in log_text
    warnings = [line for line in log_text.splitlines() if " WARNING " in line]
    assert len(warnings) == 2, log_text
    assert all("not documented by CloudFront" in line for line in warnings)
    assert "X-Amz-Meta-Last-Modified" in warnings[0]
    assert "headerToModify" in warnings[1]


# --- what CloudFront answers itself before any function runs ---------------------------------

REDIRECT_DIST = """
origins:
  api: {{url: "{origin}"}}
behaviors:
  - path_pattern: "*"
    origin: api
    viewer_protocol_policy: redirect-to-https
    allowed_methods: [GET, HEAD, OPTIONS, PUT, PATCH, POST, DELETE]
"""


async def _raw_status(url: str, request: bytes) -> tuple[int, bytes]:
    """Send ``request`` as written on the wire; the status and the whole answer."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        answer = b""
        while b"\r\n" not in answer:
            chunk = await asyncio.wait_for(reader.read(65536), 30)
            if not chunk:
                break
            answer += chunk
    finally:
        writer.close()
    return int(answer.split(b" ", 2)[1]), answer


@pytest.mark.parametrize(
    ("method", "version", "status"),
    [("POST", "1.0", 403), ("PUT", "1.0", 403), ("GET", "1.0", 301), ("POST", "1.1", 307)],
)
async def test_redirect_to_https_refuses_what_http_1_0_cannot_redirect(
    module_origin: Origin,
    tmp_path_factory: pytest.TempPathFactory,
    method: str,
    version: str,
    status: int,
) -> None:
    """cloudfront-caching.md §1.3, "Viewer protocol policy results": with redirect-to-https an
    HTTP viewer's GET/HEAD gets 301, other methods 307 over HTTP/1.1 or later and 403 below
    HTTP/1.1, which has no 307 to keep the method and body with. Sent as raw bytes, so the
    request really is HTTP/1.0 on the wire; the origin is never asked."""
    path = tmp_path_factory.mktemp("redirect") / "dist.yaml"
    path.write_text(REDIRECT_DIST.format(origin=module_origin.url))
    server = EdgeServer([Edge(load_distribution(path), store=NullCacheStore())], port=0)
    await server.start()
    seen = len(module_origin.seen)
    try:
        body = b"" if method == "GET" else b"x"
        request = (
            f"{method} /form HTTP/{version}\r\nHost: www.example.test\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body
        got, answer = await _raw_status(server.url(), request)
    finally:
        await server.aclose()
    assert got == status, answer
    assert len(module_origin.seen) == seen


DROP_TE_DIST = """
origins:
  chunked: {{url: "{origin}"}}
functions:
  drop: {{runtime: {runtime}, code: "{{functions}}/drop_transfer_encoding", handler: index.handler}}
behaviors:
  - path_pattern: "*"
    origin: chunked
    functions: {{origin-response: drop}}
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chunked_origin() -> AsyncIterator[str]:
    """An origin that frames its answer with Transfer-Encoding: chunked."""

    async def handle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"chunked body")
        await response.write_eof()
        return response

    runner, port = await serve_handler(handle)
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_dropping_transfer_encoding_at_origin_response_gets_502(
    chunked_origin: str, tmp_path_factory: pytest.TempPathFactory, runtime: str
) -> None:
    """lambda-edge.md §3.2: Transfer-Encoding is read-only at origin-response. A real
    origin-response function that dropped it from a chunked response got CloudFront's 502 and
    "the function tried to delete read-only header, headerName : Transfer-Encoding"
    (CodeGenieApp/serverless-express#369)."""
    text = DROP_TE_DIST.format(origin=chunked_origin, runtime=runtime)
    response, log_text = await _get_once(text, tmp_path_factory, f"drop-te-{runtime}")
    assert response.status_code == 502, response.text
    assert response.headers["x-cache"] == "LambdaValidationError from cloudfront"
    assert (
        "The function tried to add, delete, or change a read-only header, "
        "headerName : Transfer-Encoding" in log_text
    )
