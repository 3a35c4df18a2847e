"""Header rules of Lambda@Edge results: shape, characters, disallowed, read-only, viewer headers.

Comments cite lambda-edge.md. The read-only lists are written out here from §3.2 (Docs-2025
column) rather than read from the module, so a wrong list in the code fails these tests.
"""

from __future__ import annotations

from typing import Any

import pytest

from edgesim.exceptions import LambdaValidationError
from edgesim.lambda_edge.rules.headers import check_header_map
from edgesim.types import EventType
from tests.lambda_edge.rules.test_validate import (
    OR,
    ORS,
    REQUEST,
    RESPONSE,
    VR,
    VRS,
    Change,
    check,
    drop,
    fails,
    generated,
    header,
    put,
    same,
)

FAILED = "The Lambda function result failed validation: "
INVALID_ENTRY = "The Lambda function returned an invalid entry in the headers object: "

VALID = {
    "added with key": (OR, put("headers.x-new", header("X-New", "1"))),
    "added without key": (VR, put("headers.x-new", [{"value": "1"}])),  # §1.3 key is filled in
    "several lines": (VR, put("headers.x-multi", header("X-Multi", "a", "b"))),
    "empty array": (VR, put("headers.x-none", [])),
    "value with a tab": (VR, put("headers.x-tab", header("X-Tab", "a\tb"))),
    "non-ASCII value": (VR, put("headers.x-name", header("X-Name", "Zoë ✓"))),
    "empty value": (ORS, put("headers.x-empty", header("X-Empty", ""))),
    "ordinary header removed": (VR, drop("headers.user-agent")),
    "three Set-Cookie lines": (ORS, put("headers.set-cookie", header("Set-Cookie", "a", "b", "c"))),
    # §3.2: a changed key casing alone is not a change of a read-only header
    "read-only key recased": (VR, put("headers.host.0.key", "HOST")),
    "read-only key left out": (OR, drop("headers.via.0.key")),
    # §3.2: each list applies only to its own trigger
    "Host changed at origin-request": (OR, put("headers.host.0.value", "other.example")),
    "Accept-Encoding added at viewer-request": (
        VR,
        put("headers.accept-encoding", header("Accept-Encoding", "br")),
    ),
    "Content-Length changed at origin-response": (ORS, put("headers.content-length.0.value", "1")),
    "Warning added at origin-response": (ORS, put("headers.warning", header("Warning", "199 x"))),
    "CDN-Loop added at viewer-response": (VRS, put("headers.cdn-loop", header("CDN-Loop", "x"))),
    # §3.3: only viewer-request may not add CloudFront's viewer headers
    "CloudFront-Viewer-Country added at origin-request": (
        OR,
        put("headers.cloudfront-viewer-country", header("CloudFront-Viewer-Country", "FR")),
    ),
}


@pytest.mark.parametrize(("trigger", "change"), VALID.values(), ids=VALID)
def test_valid_headers(trigger: EventType, change: Change) -> None:
    assert check(trigger, change) in (REQUEST, RESPONSE)


VIEWER_SENT = put(
    "request.headers.cloudfront-viewer-country", header("CloudFront-Viewer-Country", "FR")
)


@pytest.mark.parametrize(
    "change",
    [
        same,
        put("headers.cloudfront-viewer-country.0.value", "DE"),
        drop("headers.cloudfront-viewer-country"),
    ],
    ids=["kept", "edited", "removed"],
)
def test_viewer_sent_cloudfront_header_is_the_functions_to_keep(change: Change) -> None:
    # §3.3: viewer-side functions see the viewer's own value and may edit or drop it
    assert check(VR, change, event=VIEWER_SENT) is REQUEST


INVALID_SHAPE = {
    "headers null": (VR, put("headers", None), "The headers field must be an object", "got null"),
    "headers a list": (ORS, put("headers", []), "The headers field must be an object", "got array"),
    "entry an object": (
        VR,
        put("headers.x-a", {"key": "X-A", "value": "1"}),
        "Each header entry in the headers object must be an array",
        "headerName : x-a",
    ),
    "entry a string": (OR, put("headers.x-a", "1"), "must be an array", "headerName : x-a"),
    "element a string": (VR, put("headers.x-a", ["1"]), "must be an object with a value", "string"),
    "value missing": (VR, put("headers.x-a", [{"key": "X-A"}]), "has no value", "headerName : X-A"),
    "value a number": (
        VR,
        put("headers.x-a", [{"key": "X-A", "value": 5}]),
        "The value of each header entry must be a string",
        "headerName : X-A, got number",
    ),
    "value null": (VRS, put("headers.x-a", [{"value": None}]), "must be a string", "got null"),
    "value an array": (
        ORS,
        put("headers.x-a", [{"value": ["a"]}]),
        "must be a string",
        "got array",
    ),
    "key a number": (VR, put("headers.x-a", [{"key": 1, "value": "1"}]), "key of a", "got number"),
    # a lone surrogate survives JSON decoding but has no UTF-8 form to send
    "value a lone surrogate": (
        ORS,
        put("headers.x-a", header("X-A", "a\ud800")),
        "not valid Unicode text",
        "headerName : X-A",
    ),
    "name with a space": (OR, put("headers.x a", header("x a", "1")), "valid HTTP tokens", "'x a'"),
    "name with a colon": (VR, put("headers.x:a", header("x:a", "1")), "valid HTTP tokens", "x:a"),
    "name empty": (VRS, put("headers.", [{"value": "1"}]), "valid HTTP tokens", "''"),
}


@pytest.mark.parametrize(
    ("trigger", "change", "problem", "detail"), INVALID_SHAPE.values(), ids=INVALID_SHAPE
)
def test_invalid_header_shape(
    trigger: EventType, change: Change, problem: str, detail: str
) -> None:
    # §1.3 header map shape; §3.4 values must be strings
    message = fails(trigger, change)
    assert message.startswith(INVALID_ENTRY)
    assert problem in message
    assert detail in message


@pytest.mark.parametrize(
    ("trigger", "change", "detail"),
    [
        (
            VR,
            generated(status="302", headers={"location": header("Location", "/?a\r\nb")}),
            "invalid character : '%0D' in header value, headerName : Location",
        ),
        (
            VR,
            put("headers.x-a", header("X-A", "a\nb")),
            "invalid character : '%0A' in header value, headerName : X-A",
        ),
        (
            OR,
            put("headers.x-a", [{"value": "a\x00"}]),
            "invalid character : '%00' in header value, headerName : x-a",
        ),
        (
            ORS,
            put("headers.x-a", header("X-A", "\x7f")),
            "invalid character : '%7F' in header value, headerName : X-A",
        ),
        (
            VRS,
            put("headers.x-a", header("X-A", "a\x0bb")),
            "invalid character : '%0B' in header value, headerName : X-A",
        ),
    ],
    ids=["CR", "LF", "NUL", "DEL", "VT"],
)
def test_control_characters_in_values(trigger: EventType, change: Change, detail: str) -> None:
    # §3.4: "invalid character : '%0D' in header value, headerName : Location"
    message = fails(trigger, change)
    assert message == f"{FAILED}The function returned an invalid header, {detail}"


# §3.1, Docs-2023 = Docs-2025; X-Amz-Cf-* and X-Edge-* are prefixes
DISALLOWED = [
    "Connection", "Expect", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
    "Proxy-Connection", "Trailer", "Upgrade", "X-Accel-Buffering", "X-Accel-Charset",
    "X-Accel-Limit-Rate", "X-Accel-Redirect", "X-Amz-Cf-Id", "X-Amz-Cf-Pop", "X-Amz-Cf-Anything",
    "X-Amzn-Auth", "X-Amzn-Cf-Billing", "X-Amzn-Cf-Id", "X-Amzn-Cf-Xff", "X-Amzn-ErrorType",
    "X-Amzn-Fle-Profile", "X-Amzn-Header-Count", "X-Amzn-Header-Order",
    "X-Amzn-Lambda-Integration-Tag", "X-Amzn-RequestId", "X-Cache", "X-Edge-Location",
    "X-Edge-Anything", "X-Forwarded-Proto", "X-Real-IP",
]  # fmt: skip


def _add(name: str) -> Change:
    return put(f"headers.{name.lower()}", header(name, "1"))


@pytest.mark.parametrize("name", DISALLOWED)
@pytest.mark.parametrize("trigger", [VR, OR, ORS, VRS])
def test_disallowed_header_added(trigger: EventType, name: str) -> None:
    message = fails(trigger, _add(name))
    assert message == f"{FAILED}The function tried to add a blacklisted header, headerName : {name}"


@pytest.mark.parametrize("trigger", [VR, OR])
def test_disallowed_header_in_generated_response(trigger: EventType) -> None:
    # §3.1 applies to generated responses too
    message = fails(trigger, generated(headers={"x-cache": header("X-Cache", "Hit")}))
    assert message.endswith("blacklisted header, headerName : X-Cache")
    assert check(trigger, generated(headers={"x-cached": header("X-Cached", "y")})) is RESPONSE


# §3.2, Docs-2025 column
READ_ONLY = {
    VR: ["CDN-Loop", "Content-Length", "Host", "Transfer-Encoding", "Via"],
    OR: [
        "Accept-Encoding", "CDN-Loop", "Content-Length", "If-Modified-Since", "If-None-Match",
        "If-Range", "If-Unmodified-Since", "Transfer-Encoding", "Via",
    ],
    ORS: ["Transfer-Encoding", "Via"],
    VRS: ["Content-Encoding", "Content-Length", "Transfer-Encoding", "Via", "Warning"],
}  # fmt: skip
READ_ONLY_CASES = [
    pytest.param(trigger, name, id=f"{trigger}-{name}")
    for trigger, names in READ_ONLY.items()
    for name in names
]


def _in_event(trigger: EventType, name: str, *values: str) -> Change:
    section = "request" if trigger.is_request else "response"
    return put(f"{section}.headers.{name.lower()}", header(name, *values))


def _absent_from_event(trigger: EventType, name: str) -> Change:
    section = "request" if trigger.is_request else "response"

    def change(cf: Any) -> Any:
        cf[section]["headers"].pop(name.lower(), None)
        return cf

    return change


def _read_only_message(name: str) -> str:
    return (
        f"{FAILED}The function tried to add, delete, or change a read-only header, "
        f"headerName : {name}"
    )


@pytest.mark.parametrize(("trigger", "name"), READ_ONLY_CASES)
def test_read_only_header_added(trigger: EventType, name: str) -> None:
    message = fails(trigger, _add(name), event=_absent_from_event(trigger, name))
    assert message == _read_only_message(name)


@pytest.mark.parametrize(("trigger", "name"), READ_ONLY_CASES)
def test_read_only_header_changed(trigger: EventType, name: str) -> None:
    path = f"headers.{name.lower()}.0.value"
    message = fails(trigger, put(path, "changed"), event=_in_event(trigger, name, "orig"))
    assert message == _read_only_message(name)


@pytest.mark.parametrize(("trigger", "name"), READ_ONLY_CASES)
def test_read_only_header_deleted(trigger: EventType, name: str) -> None:
    # a real log: "the function tried to delete read-only header, headerName : Transfer-Encoding"
    message = fails(trigger, drop(f"headers.{name.lower()}"), event=_in_event(trigger, name, "1"))
    assert message == _read_only_message(name)


@pytest.mark.parametrize(("trigger", "name"), READ_ONLY_CASES)
def test_read_only_header_line_added(trigger: EventType, name: str) -> None:
    change = put(f"headers.{name.lower()}", header(name, "1", "2"))
    message = fails(trigger, change, event=_in_event(trigger, name, "1"))
    assert message == _read_only_message(name)


@pytest.mark.parametrize(("trigger", "name"), READ_ONLY_CASES)
def test_read_only_header_returned_unchanged(trigger: EventType, name: str) -> None:
    recased = put(f"headers.{name.lower()}.0.key", name.upper())
    assert check(trigger, recased, event=_in_event(trigger, name, "1")) in (REQUEST, RESPONSE)


# §3.3 (Docs-2023 names): the CloudFront viewer headers a function may add, edit or remove
CLOUDFRONT_VIEWER_HEADERS = [
    "CloudFront-Is-Desktop-Viewer",
    "CloudFront-Is-Mobile-Viewer",
    "CloudFront-Is-SmartTV-Viewer",
    "CloudFront-Is-Tablet-Viewer",
    "CloudFront-Forwarded-Proto",
]


@pytest.mark.parametrize("name", CLOUDFRONT_VIEWER_HEADERS)
def test_viewer_request_may_add_cloudfront_viewer_headers(name: str) -> None:
    """lambda-edge.md §3.3 (AWS "Restrictions on Lambda@Edge", CloudFront headers): a function
    may read, edit, remove or add these headers, at viewer-request too; the one addition the
    documentation refuses there is CloudFront-Viewer-Country."""
    assert check(VR, _add(name)) is REQUEST
    assert check(VR, put(f"headers.{name.lower()}", [{"value": "true"}])) is REQUEST


@pytest.mark.parametrize(
    ("entry", "shown"),
    [
        (header("CloudFront-Viewer-Country", "FR"), "CloudFront-Viewer-Country"),
        ([{"value": "FR"}], "Cloudfront-Viewer-Country"),  # no key: the title-cased name
    ],
    ids=["with key", "without key"],
)
def test_viewer_request_cannot_add_cloudfront_viewer_country(
    entry: list[dict[str, str]], shown: str
) -> None:
    """lambda-edge.md §3.3: "A viewer-request function that adds CloudFront-Viewer-Country →
    502"; CloudFront adds it only after the viewer-request event."""
    message = fails(VR, put("headers.cloudfront-viewer-country", entry))
    assert message.startswith(f"{FAILED}The function tried to add a CloudFront viewer header")
    assert message.endswith(f"headerName : {shown}")


# An array returned exactly as the event carried it is edgesim's own and is taken as it is;
# everything else in the same object is still checked line by line.
SENT = {
    "host": [{"key": "Host", "value": "d111111abcdef8.cloudfront.net"}],
    "x-amz-meta-last-modified": [{"key": "X-Amz-Meta-Last-Modified", "value": "Mon, 1 Jan 2024"}],
    "accept": [{"key": "Accept", "value": "text/html"}, {"value": "*/*"}],
}


def test_arrays_returned_as_sent_read_as_a_full_check_reads_them() -> None:
    returned = {name: [dict(entry) for entry in entries] for name, entries in SENT.items()}
    assert check_header_map(returned, field="headers", notes=[], sent=SENT) == check_header_map(
        returned, field="headers", notes=[]
    )


def test_a_changed_array_beside_unchanged_ones_is_checked() -> None:
    returned = {**SENT, "x-bad": [{"key": "X-Bad", "value": "a\x01b"}]}
    with pytest.raises(LambdaValidationError, match="'%01' in header value, headerName : X-Bad"):
        check_header_map(returned, field="headers", notes=[], sent=SENT)


def test_an_array_sent_under_another_name_is_checked_as_that_name() -> None:
    # AWS's "override a response header" example: the entry keeps its key, the map name wins.
    returned = {**SENT, "last-modified": SENT["x-amz-meta-last-modified"]}
    notes: list[str] = []
    lines = check_header_map(returned, field="headers", notes=notes, sent=SENT)
    assert lines["last-modified"] == [(None, "Mon, 1 Jan 2024")]
    assert len(notes) == 1 and "'X-Amz-Meta-Last-Modified'" in notes[0]
