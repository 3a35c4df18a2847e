"""The request body of Include Body associations in request-trigger results (lambda-edge.md §1.3,
§2.4, §3.5). The viewer-request example with a body is the starting event; origin-request rows
give the origin-request example the same body."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edgesim.types import EventType
from tests.lambda_edge.rules.test_validate import (
    EVENTS,
    KB,
    MB,
    OR,
    REQUEST,
    VR,
    Change,
    both,
    check,
    drop,
    fails,
    put,
    same,
)

WITH_BODY = "viewer-request-include-body.json"
BODY = json.loads((EVENTS / WITH_BODY).read_text())["Records"][0]["cf"]["request"]["body"]


def replace(data: str, encoding: str = "text") -> Change:
    return put("body", {"action": "replace", "encoding": encoding, "data": data})


def run(trigger: EventType, change: Change, **kwargs: Any) -> Any:
    """The trigger's example event carrying the example body, include_body on."""
    if trigger is VR:
        return check(VR, change, event_file=WITH_BODY, include_body=True, **kwargs)
    return check(OR, change, event=put("request.body", BODY), include_body=True, **kwargs)


def run_fails(trigger: EventType, change: Change) -> str:
    if trigger is VR:
        return fails(VR, change, event_file=WITH_BODY, include_body=True)
    return fails(OR, change, event=put("request.body", BODY), include_body=True)


VALID = {
    "unchanged": (VR, same),
    "unchanged at origin-request": (OR, same),
    "left out": (VR, drop("body")),
    "action left out": (OR, drop("body.action")),
    "inputTruncated left out": (VR, drop("body.inputTruncated")),
    # §1.3: with read-only, changes to data/encoding are ignored, so they cannot fail
    "read-only with new data": (VR, put("body.data", "bmV3")),
    "read-only with undecodable data": (OR, put("body.data", "***")),
    "replace with text": (VR, replace("name=new")),
    "replace with base64": (OR, replace("bmFtZT1uZXc=", "base64")),
    "replace with empty text": (VR, replace("")),
    # §2.4 limits: text 40 KB / 1 MB, base64 53.2 KB / 1.33 MB
    "viewer text 40 KB": (VR, replace("a" * (40 * KB))),
    "viewer text 40 KB of 2-byte chars": (VR, replace("é" * (20 * KB))),
    "viewer base64 54,476 chars": (VR, replace("A" * 54_476, "base64")),
    "origin text 1 MB": (OR, replace("a" * MB)),
    "origin base64 1,394,604 chars": (OR, replace("A" * 1_394_604, "base64")),
}


@pytest.mark.parametrize(("trigger", "change"), VALID.values(), ids=VALID)
def test_valid_body(trigger: EventType, change: Change) -> None:
    assert run(trigger, change) is REQUEST


def test_replace_on_a_request_sent_without_body() -> None:
    # include_body on but the event carried no body (a GET): a replacement is still a body
    assert check(VR, replace("x"), include_body=True) is REQUEST


def test_body_with_include_body_off() -> None:
    # decision: with include_body off a returned body is refused, not silently ignored
    assert check(VR, same) is REQUEST
    message = fails(VR, replace("x"))
    assert "does not include the body (turn on include_body" in message
    assert "include_body" in fails(VR, same, event_file=WITH_BODY)


INVALID = {
    "a string": (VR, put("body", "name=x"), "request body must be an object, got string"),
    "null": (OR, put("body", None), "got null"),
    "unknown action": (VR, put("body.action", "append"), 'body.action, value : "append"'),
    "unknown encoding": (VR, put("body.encoding", "utf8"), 'body.encoding, value : "utf8"'),
    "data a number": (OR, put("body.data", 5), "body data must be a string, got number"),
    # §3.4: inputTruncated is read-only
    "inputTruncated flipped": (VR, put("body.inputTruncated", True), "body.inputTruncated"),
    "inputTruncated as 0": (OR, put("body.inputTruncated", 0), "body.inputTruncated, value : 0"),
    "replace without data": (VR, both(put("body.action", "replace"), drop("body.data")), "data"),
    "replace without encoding": (OR, put("body", {"action": "replace", "data": "x"}), "encoding"),
    # §1.3: invalid base64 with encoding base64 is an error
    "replace with bad base64": (VR, replace("@@@@", "base64"), "body.data is not valid base64"),
    "replace with unpadded base64": (OR, replace("QQ", "base64"), "not valid base64"),
    "viewer text 40 KB + 1": (
        VR,
        replace("a" * (40 * KB + 1)),
        "40961 bytes, over the 40960 bytes limit of viewer-request",
    ),
    "viewer text of 2-byte chars": (VR, replace("é" * (20 * KB + 1)), "40962 bytes"),
    "viewer base64 54,480 chars": (
        VR,
        replace("A" * 54_480, "base64"),
        "54480 base64 characters, over the 54476 base64 characters limit",
    ),
    "origin text 1 MB + 1": (OR, replace("a" * (MB + 1)), "over the 1048576 bytes limit"),
    "origin base64 1,394,608 chars": (OR, replace("A" * 1_394_608, "base64"), "over the 1394606"),
}


@pytest.mark.parametrize(("trigger", "change", "reason"), INVALID.values(), ids=INVALID)
def test_invalid_body(trigger: EventType, change: Change, reason: str) -> None:
    message = run_fails(trigger, change)
    assert message.startswith("The Lambda function result failed validation: ")
    assert reason in message
