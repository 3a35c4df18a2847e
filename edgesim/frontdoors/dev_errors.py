"""``edgesim serve --dev-errors``: why a function failed, on the error page in the browser.

CloudFront's 502/503 pages say only that a Lambda function failed. With ``--dev-errors`` the
page keeps CloudFront's text and adds, below it, what a developer needs: the function and its
trigger, CloudFront's reason, the stack trace (from the function's log: Python's traceback after
``[ERROR]``, Node.js's ``Invoke Error`` JSON), the value a refused function returned, the event
it received and its log lines. It is off by default, so what a browser sees stays what
CloudFront would show.

The calls (:class:`~edgesim.runtime.calls.FunctionCall`) come from
:class:`~edgesim.frontdoors.console.CorrelatedRuntime`, which files each one under its request
id; :class:`DevErrors` keeps them while their request runs. Everything shown is HTML-escaped: a
function's output and values are the user's data.
"""

from __future__ import annotations

import html
import json
import re
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from edgesim.config import Distribution
from edgesim.http import EdgeRequest
from edgesim.pages import XCache
from edgesim.pipeline import Edge, EdgeResult
from edgesim.runtime.calls import FunctionCall
from edgesim.trace import FunctionOutcome, Stage, TraceRecord

__all__ = ["DevErrors", "DevErrorsEdge", "stack_trace"]

_FAILURES = frozenset(
    {
        FunctionOutcome.VALIDATION_ERROR,
        FunctionOutcome.EXECUTION_ERROR,
        FunctionOutcome.LIMIT_EXCEEDED,
    }
)
_TRIGGERS = frozenset(
    {Stage.VIEWER_REQUEST, Stage.ORIGIN_REQUEST, Stage.ORIGIN_RESPONSE, Stage.VIEWER_RESPONSE}
)
_LAMBDA_PAGES = frozenset(
    {
        XCache.LAMBDA_VALIDATION_ERROR,
        XCache.LAMBDA_EXECUTION_ERROR,
        XCache.LAMBDA_LIMIT_EXCEEDED,
    }
)
_PYTHON_ERROR = re.compile(r"\[ERROR\] ")
_END_OF_PAGE = b"</BODY></HTML>"


class DevErrors:
    """The function calls of requests in flight, and the page that shows a failed one.

    At most ``max_requests`` requests are kept: a request whose page is never built (a client
    gone mid-way) is forgotten once newer ones push it out.
    """

    def __init__(self, max_requests: int = 1024) -> None:
        self._calls: OrderedDict[str, list[FunctionCall]] = OrderedDict()
        self._max = max_requests

    def keep(self, call: FunctionCall) -> None:
        """Note a call as it starts (the ``on_call`` of a correlated runtime)."""
        calls = self._calls.setdefault(call.request_id, [])
        calls.append(call)
        self._calls.move_to_end(call.request_id)
        while len(self._calls) > self._max:
            self._calls.popitem(last=False)

    def show(self, result: EdgeResult) -> EdgeResult:
        """``result``, with the failed function's details below CloudFront's page text when a
        function failed or was refused; the request's calls are forgotten either way."""
        calls = self._calls.pop(result.request_id, [])
        response = result.response
        record = _failed_function(result)
        if (
            record is None
            or XCache.parse(response.headers.get("X-Cache")) not in _LAMBDA_PAGES
            or response.stream is not None
            or not response.body.endswith(_END_OF_PAGE)
        ):
            return result  # not a function's failure, or a HEAD request (no body to add to)
        call = next((c for c in reversed(calls) if c.trigger == record.stage.value), None)
        section = _render(record, call).encode("latin-1", "xmlcharrefreplace")
        body = response.body[: -len(_END_OF_PAGE)] + section + _END_OF_PAGE
        headers = response.headers.copy()
        headers.set("Content-Length", str(len(body)))
        return replace(result, response=replace(response, headers=headers, body=body))


class DevErrorsEdge(Edge):
    """An :class:`Edge` whose function failures show :class:`DevErrors`' details.

    Its runtime must be a correlated runtime whose ``on_call`` is ``dev_errors.keep``.
    """

    def __init__(self, distribution: Distribution, dev_errors: DevErrors, **options: Any) -> None:
        super().__init__(distribution, **options)
        self.dev_errors = dev_errors

    async def dispatch(self, request: EdgeRequest, *, stream: bool = False) -> EdgeResult:
        """:meth:`Edge.dispatch`, with the details on a function's error page."""
        return self.dev_errors.show(await super().dispatch(request, stream=stream))


def _failed_function(result: EdgeResult) -> TraceRecord | None:
    for record in reversed(result.trace.records):
        if record.stage in _TRIGGERS and record.outcome in _FAILURES:
            return record
    return None


def stack_trace(lines: list[str]) -> str:
    """The stack trace in a failed invocation's log lines, or ``""`` when there is none.

    Node.js logs the error as JSON after ``Invoke Error`` (its ``stack`` a list of lines);
    Python logs ``[ERROR] Type: message`` followed by the traceback.
    """
    for index, line in enumerate(lines):
        start = line.find('{"errorType"')
        if start >= 0:
            try:
                error = json.loads(line[start:])
            except ValueError:
                continue
            stack = error.get("stack") or error.get("stackTrace") or []
            if isinstance(stack, list) and stack:
                return "\n".join(str(frame) for frame in stack)
        if _PYTHON_ERROR.match(line):
            block = [line.removeprefix("[ERROR] ")]
            for following in lines[index + 1 :]:
                if not (following.startswith("Traceback (") or following[:1].isspace()):
                    break
                block.append(following)
            if len(block) > 1:
                return "\n".join(block)
    return ""


def _pretty(value: object) -> str:
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)
    except ValueError:  # a circular structure cannot come from JSON, but stay safe
        return repr(value)


def _render(record: TraceRecord, call: FunctionCall | None) -> str:
    def esc(text: str) -> str:
        return html.escape(text, quote=True)

    name = call.function if call is not None else "?"
    parts = [
        '<HR noshade size="1px">\n<DIV id="edgesim-dev-error">\n',
        "<H2>edgesim: details for developers</H2>\n",
        "<P>Shown because <CODE>edgesim serve</CODE> runs with <CODE>--dev-errors</CODE>; "
        "CloudFront shows only the text above.</P>\n",
        f"<P>Function <B>{esc(name)}</B> at <B>{esc(record.stage.value)}</B>: "
        f"<B>{esc(record.outcome.value)}</B></P>\n",
        f"<PRE>{esc(record.detail)}</PRE>\n",
    ]
    if call is not None and call.error is not None and call.error.reason != record.detail:
        parts.append(f"<PRE>{esc(call.error.reason)}</PRE>\n")
    stack = stack_trace(call.logs) if call is not None else ""
    if stack:
        parts.append(f"<H3>Stack trace</H3>\n<PRE>{esc(stack)}</PRE>\n")
    if call is not None and record.outcome is FunctionOutcome.VALIDATION_ERROR:
        parts.append(f"<H3>The value it returned</H3>\n<PRE>{esc(_pretty(call.value))}</PRE>\n")
    event = call.event if call is not None else record.event
    if event is not None:
        parts.append(
            "<DETAILS><SUMMARY>The event it received</SUMMARY>\n"
            f"<PRE>{esc(_pretty(event))}</PRE></DETAILS>\n"
        )
    if call is not None and call.logs:
        parts.append(
            "<DETAILS open><SUMMARY>Its log</SUMMARY>\n"
            f"<PRE>{esc(chr(10).join(call.logs))}</PRE></DETAILS>\n"
        )
    parts.append("</DIV>\n")
    return "".join(parts)
