"""Lambda@Edge result validation: what CloudFront accepts back from a function, per trigger.

Each rule has a row that must pass and a row that must fail, built from the spec's example events
(tests/conformance/events) by small, named changes. Comments cite lambda-edge.md sections. The
helpers at the top are shared by the other tests/test_rules_*.py files.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from edgesim.exceptions import LambdaValidationError
from edgesim.lambda_edge.rules import DISALLOWED_HEADERS, ResultKind, is_disallowed, validate_result
from edgesim.types import EventType

VR = EventType.VIEWER_REQUEST
OR = EventType.ORIGIN_REQUEST
ORS = EventType.ORIGIN_RESPONSE
VRS = EventType.VIEWER_RESPONSE
REQUEST = ResultKind.REQUEST
RESPONSE = ResultKind.RESPONSE
KB = 1024
MB = 1024 * KB

EVENTS = Path(__file__).parents[2] / "conformance" / "events"
EVENT_FILES = {
    VR: "viewer-request.json",
    OR: "origin-request-custom.json",
    ORS: "origin-response.json",
    VRS: "viewer-response.json",
}

Change = Callable[[Any], Any]


def same(value: Any) -> Any:
    return value


def _walk(root: Any, path: str) -> tuple[Any, str | int]:
    *parents, last = path.split(".")
    node = root
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node, int(last) if isinstance(node, list) else last


def put(path: str, value: Any) -> Change:
    """Set a dotted path (``headers.host.0.value``) in the result, or in the event's ``cf``."""

    def change(root: Any) -> Any:
        node, key = _walk(root, path)
        node[key] = copy.deepcopy(value)
        return root

    return change


def drop(path: str) -> Change:
    def change(root: Any) -> Any:
        node, key = _walk(root, path)
        del node[key]
        return root

    return change


def become(value: Any) -> Change:
    """Replace the whole result."""
    return lambda _: copy.deepcopy(value)


def both(*changes: Change) -> Change:
    def change(root: Any) -> Any:
        for step in changes:
            root = step(root)
        return root

    return change


def header(key: str, *values: str) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for value in values]


@cache
def _load(name: str) -> str:
    return (EVENTS / name).read_text()


def check(
    trigger: EventType,
    change: Change = same,
    *,
    event: Change = same,
    include_body: bool = False,
    event_file: str | None = None,
) -> ResultKind:
    """Validate the trigger's example result after ``change``; ``event`` first edits the event's
    ``cf`` object (the result starts as a copy of the edited request or response)."""
    sent = json.loads(_load(event_file or EVENT_FILES[trigger]))
    sent["Records"][0]["cf"] = event(sent["Records"][0]["cf"])
    cf = sent["Records"][0]["cf"]
    result = change(copy.deepcopy(cf["request"] if trigger.is_request else cf["response"]))
    return validate_result(trigger, sent, result, include_body=include_body)


def fails(trigger: EventType, change: Change = same, **kwargs: Any) -> str:
    with pytest.raises(LambdaValidationError) as caught:
        check(trigger, change, **kwargs)
    assert caught.value.status == 502
    return caught.value.reason


def generated(**fields: Any) -> Change:
    return become({"status": "200", "statusDescription": "OK", **fields})


# --- the result must be an object, and CloudFront's choice of request vs response ------------

NOT_OBJECTS = [None, [], ["a"], "text", 42, 4.5, True]


@pytest.mark.parametrize("trigger", [VR, OR, ORS, VRS])
@pytest.mark.parametrize("value", NOT_OBJECTS, ids=repr)
def test_result_must_be_an_object(trigger: EventType, value: object) -> None:
    # §4.1: "The JSON output must be an object type."
    reason = fails(trigger, become(value))
    assert reason.startswith(
        "The Lambda function returned invalid JSON: The JSON output must be an object type."
    )


@pytest.mark.parametrize(
    ("trigger", "change", "kind"),
    [
        (VR, same, REQUEST),  # §2.1 the request as received
        (OR, same, REQUEST),
        (VR, generated(), RESPONSE),  # §2.1 a result with status is a generated response
        (OR, generated(), RESPONSE),
        (ORS, same, RESPONSE),  # §2.1 response triggers return the response
        (VRS, same, RESPONSE),
    ],
)
def test_result_kind(trigger: EventType, change: Change, kind: ResultKind) -> None:
    assert check(trigger, change) is kind


# --- request results: required and read-only fields, uri, querystring (§1.3, §3.4) ------------

LONG_URI = "/" + "a" * 8000

VALID_REQUESTS = {
    "uri changed": (VR, put("uri", "/new/index.html")),
    "uri changed at origin-request": (OR, put("uri", "/v2/docs")),
    "querystring changed": (VR, put("querystring", "lang=fr&q=a%20b")),
    "querystring emptied": (OR, put("querystring", "")),
    "querystring left out": (VR, drop("querystring")),
    "clientIp left out": (VR, drop("clientIp")),
    "unknown field ignored": (VR, put("note", "x")),
    "uri + querystring 8191 chars": (VR, both(put("uri", LONG_URI), put("querystring", "b" * 190))),
    "field order irrelevant": (OR, lambda r: dict(reversed(list(r.items())))),
}


@pytest.mark.parametrize(("trigger", "change"), VALID_REQUESTS.values(), ids=VALID_REQUESTS)
def test_valid_request(trigger: EventType, change: Change) -> None:
    assert check(trigger, change) is REQUEST


def test_unchanged_querystring_passes_as_received() -> None:
    # §3.4: the rules apply to query strings a function creates or updates
    assert check(VR, event=put("request.querystring", "a=b c")) is REQUEST
    assert "'%20'" in fails(
        VR, put("querystring", "a=b c d"), event=put("request.querystring", "x")
    )


INVALID_REQUESTS = {
    "uri missing": (VR, drop("uri"), "missing the field uri"),
    "method missing": (VR, drop("method"), "missing the field method"),
    "headers missing": (OR, drop("headers"), "missing the field headers"),
    "whole event returned": (VR, lambda r: {"Records": [{"cf": {"request": r}}]}, "whole event"),
    "method changed": (VR, put("method", "POST"), "read-only field method"),
    "method changed at origin-request": (OR, put("method", "DELETE"), "read-only field method"),
    "clientIp changed": (VR, put("clientIp", "203.0.113.9"), "read-only field clientIp"),
    "uri a number": (VR, put("uri", 42), "The uri must be a string, got number, field : uri"),
    "uri null": (OR, put("uri", None), "The uri must be a string, got null"),
    "uri without slash": (VR, put("uri", "docs/index.html"), "must start with '/'"),
    "uri with CR": (VR, put("uri", "/a\rb"), "invalid character '%0D'"),
    "uri + querystring 8192 chars": (
        VR,
        both(put("uri", LONG_URI), put("querystring", "b" * 191)),
        "8192 characters; they must be shorter than 8192",
    ),
    "uri alone too long": (OR, put("uri", "/" + "a" * 8200), "shorter than 8192"),
    "querystring a number": (VR, put("querystring", 7), "querystring must be a string"),
    "querystring with a space": (VR, put("querystring", "a=b c"), "invalid character : '%20'"),
    "querystring with #": (OR, put("querystring", "a=b#c"), "invalid character : '%23'"),
    "querystring with a control": (VR, put("querystring", "a=\x01"), "invalid character : '%01'"),
    "querystring with a tab": (VR, put("querystring", "a=\tb"), "invalid character : '%09'"),
}


@pytest.mark.parametrize(
    ("trigger", "change", "reason"), INVALID_REQUESTS.values(), ids=INVALID_REQUESTS
)
def test_invalid_request(trigger: EventType, change: Change, reason: str) -> None:
    message = fails(trigger, change)
    assert message.startswith("The Lambda function result failed validation: ")
    assert reason in message


# --- generated responses in request triggers (§2.1, §2.2, §3.5) -------------------------------

VALID_GENERATED = {
    "status as string": (
        VR,
        generated(status="302", headers={"location": header("Location", "/x")}),
    ),
    "status as number": (VR, generated(status=200)),
    "status as whole float": (OR, generated(status=404.0)),
    "status 599": (OR, generated(status="599")),
    "status only": (VR, become({"status": "200"})),
    "text body": (OR, generated(body="<h1>hi</h1>", bodyEncoding="text")),
    "base64 body": (VR, generated(body="AAECAw==", bodyEncoding="base64")),
    "unicode body": (VR, generated(body="héllo ✓")),
    "viewer 40 KB exactly": (VR, generated(body="a" * (40 * KB))),
    "origin 1 MB exactly": (OR, generated(body="a" * MB)),
    "origin 41 KB": (OR, generated(body="a" * (41 * KB))),
    "viewer 204 without body": (VR, generated(status=204)),
    "viewer 204 with empty body": (VR, generated(status="204", body="")),
    "origin 204 with body": (OR, generated(status="204", body="x")),
    # §3.2 lists are per trigger: Host is read-only only at viewer-request
    "Host at origin-request": (OR, generated(headers={"host": header("Host", "x")})),
    "Accept-Encoding at viewer-request": (
        VR,
        generated(headers={"accept-encoding": header("Accept-Encoding", "gzip")}),
    ),
    "statusDescription any text": (VR, generated(statusDescription="Moved, for now")),
}


@pytest.mark.parametrize(("trigger", "change"), VALID_GENERATED.values(), ids=VALID_GENERATED)
def test_valid_generated_response(trigger: EventType, change: Change) -> None:
    assert check(trigger, change) is RESPONSE


INVALID_GENERATED = {
    "status bool": (VR, generated(status=True), "number or a numeric string, got boolean"),
    "status null": (OR, generated(status=None), "got null"),
    "status text": (VR, generated(status="OK"), 'got string, status : "OK"'),
    "status with space": (VR, generated(status=" 200"), "numeric string"),
    "status fraction": (VR, generated(status=200.5), "numeric string"),
    "status object": (OR, generated(status={"code": 200}), "got object"),
    "status 199": (VR, generated(status=199), "between 200 and 599, status : 199"),
    "status 600": (OR, generated(status="600"), 'between 200 and 599, status : "600"'),
    "status 99": (VR, generated(status="99"), "between 200 and 599"),
    "status huge": (VR, generated(status="9" * 5000), "between 200 and 599"),
    "statusDescription a number": (VR, generated(statusDescription=5), "statusDescription must"),
    "statusDescription with LF": (VR, generated(statusDescription="a\nb"), "'%0A'"),
    "headers a list": (VR, generated(headers=[]), "headers object: The headers field must be"),
    "body an object": (VR, generated(body={"a": 1}), "The body is not a string, is not an object"),
    "body a number": (OR, generated(body=12), "must be a string, got number"),
    "bodyEncoding unknown": (VR, generated(body="x", bodyEncoding="gzip"), "text or base64"),
    "bodyEncoding a number": (VR, generated(bodyEncoding=1), "field : bodyEncoding"),
    "base64 body invalid": (OR, generated(body="***", bodyEncoding="base64"), "not valid base64"),
    "base64 body bad padding": (VR, generated(body="AAE", bodyEncoding="base64"), "base64"),
    "viewer 40 KB + 1": (VR, generated(body="a" * (40 * KB + 1)), "over the 40960 byte limit"),
    "viewer headers count": (
        VR,
        generated(body="a" * (40 * KB - 10), headers={"x-a": header("X-A", "1234567")}),
        "40964 bytes with its headers",
    ),
    "origin 1 MB + 1": (OR, generated(body="a" * (MB + 1)), "over the 1048576 byte limit"),
    "viewer 204 with body": (VR, generated(status=204, body="x"), "204 with a body"),
    # §3.2: a generated response may not add the trigger's read-only headers; real reports show
    # origin-request responses with Content-Length refused this way
    "origin Content-Length": (
        OR,
        generated(body="ok", headers={"content-length": header("Content-Length", "2")}),
        "read-only header, headerName : Content-Length",
    ),
    "viewer Via": (VR, generated(headers={"via": header("Via", "1.1 x")}), "headerName : Via"),
    "origin Transfer-Encoding": (
        OR,
        generated(headers={"transfer-encoding": [{"value": "chunked"}]}),
        "headerName : Transfer-Encoding",
    ),
}


@pytest.mark.parametrize(
    ("trigger", "change", "reason"), INVALID_GENERATED.values(), ids=INVALID_GENERATED
)
def test_invalid_generated_response(trigger: EventType, change: Change, reason: str) -> None:
    message = fails(trigger, change)
    assert message.startswith("The Lambda function re")
    assert reason in message


# --- response triggers (§2.1, §3.4, DESIGN fidelity decisions) ---------------------------------

VALID_RESPONSES = {
    "origin-response new status": (ORS, put("status", "404")),
    "origin-response numeric status": (ORS, put("status", 201)),
    "origin-response new description": (ORS, put("statusDescription", "Fine")),
    "origin-response text body": (ORS, put("body", "replaced")),
    "origin-response empty body": (ORS, put("body", "")),
    "origin-response base64 body": (ORS, both(put("body", "aGk="), put("bodyEncoding", "base64"))),
    "origin-response 1 MB body": (ORS, both(put("headers", {}), put("body", "a" * MB))),
    "viewer-response same status as number": (VRS, put("status", 200)),
    "viewer-response small body": (VRS, put("body", "<p>short</p>")),
    "viewer-response new header": (
        VRS,
        put("headers.strict-transport-security", header("Strict-Transport-Security", "max-age=1")),
    ),
}


@pytest.mark.parametrize(("trigger", "change"), VALID_RESPONSES.values(), ids=VALID_RESPONSES)
def test_valid_response(trigger: EventType, change: Change) -> None:
    assert check(trigger, change) is RESPONSE


INVALID_RESPONSES = {
    "origin-response status 700": (ORS, put("status", "700"), "between 200 and 599"),
    "origin-response status text": (ORS, put("status", "two hundred"), "numeric string"),
    "origin-response status bool": (ORS, put("status", False), "got boolean"),
    "origin-response status missing": (ORS, drop("status"), "missing the field status"),
    "origin-response headers missing": (ORS, drop("headers"), "missing the field headers"),
    "origin-response request returned": (
        ORS,
        lambda _: json.loads(_load(EVENT_FILES[ORS]))["Records"][0]["cf"]["request"],
        "missing the field status",
    ),
    "origin-response whole event": (ORS, lambda r: {"Records": [r]}, "whole event"),
    "origin-response body a list": (ORS, put("body", ["x"]), "must be a string, got array"),
    "origin-response bad bodyEncoding": (ORS, put("bodyEncoding", "binary"), "text or base64"),
    "origin-response body over 1 MB": (
        ORS,
        both(put("headers", {}), put("body", "a" * (MB + 1))),
        "1048577 bytes",
    ),
    "viewer-response status changed": (VRS, put("status", "404"), 'status : "200" -> "404"'),
    "viewer-response status changed as number": (VRS, put("status", 201), "cannot change"),
    "viewer-response status text": (VRS, put("status", "OK"), "numeric string"),
    "viewer-response body over 40 KB": (VRS, put("body", "a" * (40 * KB)), "byte limit of"),
    "viewer-response description a list": (VRS, put("statusDescription", []), "got array"),
}


@pytest.mark.parametrize(
    ("trigger", "change", "reason"), INVALID_RESPONSES.values(), ids=INVALID_RESPONSES
)
def test_invalid_response(trigger: EventType, change: Change, reason: str) -> None:
    message = fails(trigger, change)
    assert message.startswith("The Lambda function result failed validation: ")
    assert reason in message


# --- the shared disallowed-header list (§3.1), also used by the event builder ------------------


@pytest.mark.parametrize(
    ("name", "disallowed"),
    [
        ("Connection", True),
        ("X-Amz-Cf-Pop", True),  # X-Amz-Cf-* prefix
        ("x-edge-location", True),  # X-Edge-* prefix
        ("X-Amzn-RequestId", True),
        ("X-Forwarded-Proto", True),
        ("Via", False),  # read-only, not disallowed
        ("X-Amzn-Trace-Id", False),  # Docs-2025 enumerates X-Amzn-* names, no wildcard
        ("X-Amz-Date", False),  # X-Amz-* is only denied for origin custom headers
        ("Content-Type", False),
    ],
)
def test_is_disallowed(name: str, disallowed: bool) -> None:
    assert is_disallowed(name) is disallowed


def test_disallowed_list_is_the_documented_one() -> None:
    assert {
        "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization",
        "proxy-connection", "trailer", "upgrade", "x-accel-buffering", "x-accel-charset",
        "x-accel-limit-rate", "x-accel-redirect", "x-amzn-auth", "x-amzn-cf-billing",
        "x-amzn-cf-id", "x-amzn-cf-xff", "x-amzn-errortype", "x-amzn-fle-profile",
        "x-amzn-header-count", "x-amzn-header-order", "x-amzn-lambda-integration-tag",
        "x-amzn-requestid", "x-cache", "x-forwarded-proto", "x-real-ip",
    } == DISALLOWED_HEADERS  # fmt: skip
