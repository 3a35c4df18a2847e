"""The typed value a result is read into: each field interpreted once, by the rules.

Starting from the spec's example events, as the other rule tests do, each row checks what the
apply step will be handed, so it never has to read the raw JSON again.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from edgesim.lambda_edge.rules import (
    ParsedRequest,
    ParsedResponse,
    ParsedResult,
    ResultKind,
    parse_result,
)
from edgesim.types import EventType
from tests.lambda_edge.rules.test_validate import (
    EVENT_FILES,
    EVENTS,
    OR,
    ORS,
    VR,
    VRS,
    Change,
    both,
    drop,
    fails,
    generated,
    put,
    same,
)


def parse(trigger: EventType, change: Change = same, **kwargs: Any) -> ParsedResult:
    sent = json.loads((EVENTS / kwargs.pop("event_file", EVENT_FILES[trigger])).read_text())
    cf = sent["Records"][0]["cf"]
    result = change(copy.deepcopy(cf["request"] if trigger.is_request else cf["response"]))
    return parse_result(trigger, sent, result, **kwargs)


def request(trigger: EventType, change: Change = same, **kwargs: Any) -> ParsedRequest:
    parsed = parse(trigger, change, **kwargs)
    assert isinstance(parsed, ParsedRequest) and parsed.kind is ResultKind.REQUEST
    return parsed


def response(trigger: EventType, change: Change = same) -> ParsedResponse:
    parsed = parse(trigger, change)
    assert isinstance(parsed, ParsedResponse) and parsed.kind is ResultKind.RESPONSE
    return parsed


@pytest.mark.parametrize(
    ("trigger", "change", "status"),
    [
        (VR, generated(status="302"), 302),
        (VR, generated(status=302), 302),
        # A Python function's 200.0 is the number 200 to CloudFront's JavaScript side.
        (VR, generated(status=200.0), 200),
        (OR, generated(status=404.0), 404),
        (ORS, put("status", 503.0), 503),
        (ORS, put("status", "201"), 201),
        (VRS, put("status", 200.0), 200),
    ],
)
def test_status_is_read_as_an_integer(trigger: EventType, change: Change, status: int) -> None:
    parsed = response(trigger, change)
    assert type(parsed.status) is int and parsed.status == status


@pytest.mark.parametrize("trigger", [VR, OR])
def test_a_fractional_status_is_refused(trigger: EventType) -> None:
    assert "numeric string" in fails(trigger, generated(status=200.5))
    assert "numeric string" in fails(ORS, put("status", 200.5))


def test_a_request_result_keeps_what_the_function_returned() -> None:
    parsed = request(
        VR,
        both(
            put("uri", "/new"),
            put("querystring", "a=1"),
            put("headers.x-new", [{"value": "1"}]),
        ),
    )
    assert (parsed.uri, parsed.querystring, parsed.body, parsed.origin) == (
        "/new",
        "a=1",
        None,
        None,
    )
    assert parsed.headers["x-new"] == [(None, "1")]
    assert parsed.headers["host"] == [("Host", "www.example.net")]


def test_a_left_out_querystring_is_none_so_the_request_keeps_its_own() -> None:
    assert request(VR, drop("querystring")).querystring is None


def test_the_origin_is_kept_only_from_origin_request() -> None:
    assert request(OR).origin is not None
    assert request(OR, drop("origin")).origin is None
    # A viewer-request function cannot choose an origin, so its origin field is ignored.
    assert request(VR, put("origin", {"custom": {}})).origin is None


@pytest.mark.parametrize(
    ("encoding", "data", "expected"),
    [("text", "héllo", "héllo".encode()), ("base64", "AAEC", b"\x00\x01\x02")],
)
def test_a_replaced_request_body_is_decoded(encoding: str, data: str, expected: bytes) -> None:
    body = {"action": "replace", "encoding": encoding, "data": data}
    parsed = request(
        VR, put("body", body), event_file="viewer-request-include-body.json", include_body=True
    )
    assert parsed.body == expected


def test_a_read_only_request_body_is_none() -> None:
    parsed = request(
        VR,
        put("body.data", base64.b64encode(b"ignored").decode()),
        event_file="viewer-request-include-body.json",
        include_body=True,
    )
    assert parsed.body is None


@pytest.mark.parametrize(
    ("change", "body"),
    [
        (generated(body="plain"), b"plain"),
        (generated(body="AAEC", bodyEncoding="base64"), b"\x00\x01\x02"),
        (generated(), None),
    ],
)
def test_a_generated_body_is_decoded(change: Change, body: bytes | None) -> None:
    assert response(OR, change).body == body


def test_a_response_triggers_body_is_none_unless_it_sets_one() -> None:
    assert response(ORS).body is None
    assert response(ORS, put("body", "")).body == b""


def test_the_description_is_none_only_when_left_out() -> None:
    assert response(ORS, drop("statusDescription")).description is None
    assert response(ORS, put("statusDescription", "")).description == ""
    assert response(VRS).description == "OK"


def test_a_body_that_is_not_unicode_is_refused() -> None:
    # A lone surrogate survives JSON decoding but cannot be sent as UTF-8.
    assert "not valid Unicode" in fails(VR, generated(body="a\ud800b"))
