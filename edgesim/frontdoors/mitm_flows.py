"""Between mitmproxy's flows and the pipeline: a flow's request in, the edge's result out.

The mitmproxy addon (:mod:`edgesim.frontdoors.mitm`) translates the way the HTTP front door
does (:mod:`edgesim.frontdoors.messages`): the request target and header lines as the viewer sent
them, the body byte for byte, and the edge's response as is, CloudFront's headers included. It
also writes what happened on the flow itself, so mitmproxy's UI shows it:

- ``flow.comment``: the ``X-Cache`` outcome and the stages that ran;
- ``flow.marked``: a coloured marker by where the answer came from (cache, function, origin,
  or CloudFront's own error page);
- ``flow.metadata["edgesim"]``: the request id, the trace's steps, each function's event in and
  result out, and the function log lines of this request (see :func:`annotate`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from email.utils import formatdate

from mitmproxy import http

from edgesim.http import EdgeRequest, Headers, reason_phrase
from edgesim.pages import XCache
from edgesim.pipeline import EdgeResult
from edgesim.trace import FunctionOutcome, OriginOutcome, Stage, Trace, TraceRecord

__all__ = [
    "METADATA_KEY",
    "Upstream",
    "annotate",
    "answered_by",
    "problem_response",
    "to_edge_request",
    "to_flow_response",
    "upstream_of",
]

METADATA_KEY = "edgesim"
_FUNCTION_STAGES = frozenset(
    {Stage.VIEWER_REQUEST, Stage.ORIGIN_REQUEST, Stage.ORIGIN_RESPONSE, Stage.VIEWER_RESPONSE}
)
# Statuses whose response never has a body (RFC 9110 §6.4.1).
_NO_BODY_STATUSES = frozenset({204, 304})
_FUNCTION_FAILURES = frozenset(
    {XCache.LAMBDA_VALIDATION_ERROR, XCache.LAMBDA_EXECUTION_ERROR, XCache.LAMBDA_LIMIT_EXCEEDED}
)
# mitmproxy draws these shortcodes in its flow lists.
_MARKERS = {
    "cache": ":green_circle:",
    "function": ":zap:",
    "origin": ":large_blue_circle:",
    "edge": ":red_circle:",
}


@dataclass(frozen=True)
class Upstream:
    """The server a flow was headed for: the origin when the addon runs in upstream mode."""

    scheme: str
    host: str
    port: int

    @property
    def url(self) -> str:
        """``scheme://host:port``, an IPv6 address in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def upstream_of(flow: http.HTTPFlow) -> Upstream:
    """Where mitmproxy would have sent ``flow``: the host the viewer asked for (regular mode)
    or the reverse proxy's target."""
    request = flow.request
    return Upstream(scheme=request.scheme, host=request.host, port=request.port)


def _text(raw: bytes) -> str:
    # As the HTTP front door decodes header lines, so the same bytes go back out.
    return raw.decode("utf-8", "surrogateescape")


def to_edge_request(flow: http.HTTPFlow) -> EdgeRequest:
    """A flow's request as the edge sees it: target and header lines as sent, body whole.

    An HTTP/2 or HTTP/3 viewer names the host in ``:authority``; the edge gets it as the
    ``Host`` line an HTTP/1.1 viewer would have sent. The viewer's scheme is its connection's
    (TLS or not), not the upstream's, which reverse mode may make differ.
    """
    request = flow.request
    lines = [(_text(name), _text(value)) for name, value in request.headers.fields]
    if not any(name.lower() == "host" for name, _ in lines) and request.authority:
        lines.insert(0, ("Host", request.authority))
    uri, _, query = _text(request.data.path).partition("?")
    client = flow.client_conn
    version = request.http_version.removeprefix("HTTP/")
    return EdgeRequest(
        method=request.method,
        uri=uri or "/",
        querystring=query,
        headers=Headers(lines),
        body=request.raw_content or b"",
        client_ip=str(client.peername[0]) if client.peername else "127.0.0.1",
        http_version=version if "." in version else f"{version}.0",
        scheme="https" if client.tls_established else "http",
        local_port=int(client.sockname[1]) if client.sockname else 0,
    )


def _body_cut(trace: Trace) -> bool:
    record = trace.find(Stage.ORIGIN)
    return record is not None and record.outcome is OriginOutcome.BODY_CUT


def to_flow_response(
    result: EdgeResult, *, http10_viewer: bool = False, head: bool = False
) -> http.Response:
    """The edge's (buffered) response as mitmproxy sends it to the viewer.

    Header lines keep their order and spelling; mitmproxy frames the body by the
    ``Content-Length`` or ``Transfer-Encoding: chunked`` the edge left on it, and turns the lines
    into HTTP/2 fields for an HTTP/2 viewer. What the HTTP front door's server adds, this adds
    too, so both give the same answer: a ``Date`` when the edge left none, and a length for a
    body that has neither (a generated response). An HTTP/1.0 viewer has no chunks, so its body
    goes with a length instead. A body the origin cut short reaches the viewer short, with a
    length that says so, since mitmproxy cannot leave a response unfinished.
    """
    response = result.response
    headers = response.headers.copy()
    if http10_viewer:
        headers.remove("Transfer-Encoding")
    if _body_cut(result.trace) and not headers.chunked():
        headers.fit_length(response.body)
    framed = headers.chunked() or "content-length" in headers
    if not (framed or head or response.status in _NO_BODY_STATUSES or response.status < 200):
        headers.add("Content-Length", str(len(response.body)))
    if "date" not in headers:
        headers.add("Date", formatdate(usegmt=True))
    now = time.time()
    return http.Response(
        http_version=b"HTTP/1.1",
        status_code=response.status,
        reason=(response.reason or reason_phrase(response.status)).encode("latin-1", "replace"),
        headers=tuple(
            (name.encode("utf-8", "surrogateescape"), value.encode("utf-8", "surrogateescape"))
            for name, value in headers
        ),
        content=response.body,
        trailers=None,
        timestamp_start=now,
        timestamp_end=now,
    )


def problem_response(message: str) -> http.Response:
    """edgesim's own answer when it has no distribution to serve a flow with (its file could not
    be loaded): a 502 saying why, so the viewer never mistakes it for the edge's."""
    return http.Response.make(
        502,
        f"edgesim could not serve this request: {message}\n".encode(),
        {"Content-Type": "text/plain; charset=utf-8", "X-Edgesim-Error": "no distribution"},
    )


def answered_by(trace: Trace, x_cache: XCache | None) -> str:
    """Where the viewer's answer came from: ``function`` (a generated response), ``cache``,
    ``origin``, or ``edge`` (CloudFront's own page: a refusal, a failed function, an unreachable
    origin)."""
    if x_cache in _FUNCTION_FAILURES:
        return "edge"
    if any(
        r.stage in (Stage.VIEWER_REQUEST, Stage.ORIGIN_REQUEST)
        and r.outcome is FunctionOutcome.RESPONSE
        for r in trace.records
    ):
        return "function"
    if x_cache in (XCache.HIT, XCache.REFRESH_HIT):
        return "cache"
    if any(r.stage is Stage.ORIGIN and r.outcome is OriginOutcome.RESPONSE for r in trace.records):
        return "origin"
    return "edge"


def _plain(value: object) -> object:
    """``value`` as JSON data only, so mitmproxy can save and show the flow's metadata."""
    return json.loads(json.dumps(value, default=str))


def _function_record(record: TraceRecord) -> dict[str, object]:
    return {
        "trigger": record.stage.value,
        "outcome": record.outcome.value,
        "duration_ms": round(record.duration_ms, 3),
        "detail": record.detail,
        "event": _plain(record.event),
        "result": _plain(record.result),
    }


def annotate(flow: http.HTTPFlow, result: EdgeResult, logs: list[str]) -> None:
    """Write what the edge did on ``flow``: comment, marker and ``metadata["edgesim"]``.

    The metadata holds ``request_id``, ``x_cache``, ``answered_by`` (see :func:`answered_by`),
    ``steps`` (the trace's labels), ``functions`` (per invocation: ``trigger``, ``outcome``,
    ``duration_ms``, ``detail``, the ``event`` in and the ``result`` out) and ``logs`` (the
    function log lines this request produced). ``answered_by`` also tells other addons that the
    response was set by edgesim, not received from the upstream.
    """
    trace = result.trace
    label = result.response.headers.get("X-Cache")
    x_cache = XCache.parse(label)
    source = answered_by(trace, x_cache)
    shown = x_cache.short if x_cache is not None else (label or "no X-Cache")
    flow.comment = f"{shown}: {' → '.join(trace.steps)}"
    flow.marked = _MARKERS[source]
    flow.metadata[METADATA_KEY] = {
        "request_id": result.request_id,
        "x_cache": label,
        "answered_by": source,
        "steps": list(trace.steps),
        "functions": [_function_record(r) for r in trace.records if r.stage in _FUNCTION_STAGES],
        "logs": list(logs),
    }
