"""How the rules read header names: the map name, the entry's ``key``, and Transfer-Encoding.

CloudFront documents the header map as lowercase names to ``{key, value}`` entries, ``key`` being
the name's case-sensitive spelling (lambda-edge.md §1.3), but documents no refusal for a map name
that is not lowercase or a ``key`` that names another header, and AWS publishes functions that
return both. These tests hold edgesim to what those published functions expect, with a warning
that says the behaviour is not documented by CloudFront; and to the read-only rule for
Transfer-Encoding in a chunked origin response.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from edgesim.exceptions import LambdaValidationError
from edgesim.lambda_edge.rules import ParsedResponse, parse_result
from edgesim.types import EventType
from tests.lambda_edge.rules.test_validate import (
    EVENT_FILES,
    EVENTS,
    ORS,
    REQUEST,
    RESPONSE,
    VR,
    VRS,
    Change,
    both,
    check,
    drop,
    fails,
    header,
    put,
)

FAILED = "The Lambda function result failed validation: "
READ_ONLY_TE = (
    f"{FAILED}The function tried to add, delete, or change a read-only header, "
    "headerName : Transfer-Encoding"
)
UNDOCUMENTED = "not documented by CloudFront"

# An origin that answered with chunked framing: origin-response shows the header (§3.2).
CHUNKED = put("response.headers.transfer-encoding", header("Transfer-Encoding", "chunked"))


def parsed_response(
    trigger: EventType, change: Change, *, event: Change = lambda cf: cf
) -> ParsedResponse:
    sent = json.loads((EVENTS / EVENT_FILES[trigger]).read_text())
    sent["Records"][0]["cf"] = event(sent["Records"][0]["cf"])
    result = change(copy.deepcopy(sent["Records"][0]["cf"]["response"]))
    parsed = parse_result(trigger, sent, result)
    assert isinstance(parsed, ParsedResponse)
    return parsed


# --- Transfer-Encoding at origin-response ------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        drop("headers.transfer-encoding"),
        put("headers.transfer-encoding.0.value", "gzip, chunked"),
        put("headers.transfer-encoding", header("Transfer-Encoding", "chunked", "chunked")),
        # the same header under a map name that is not lowercase is still that header
        both(
            drop("headers.transfer-encoding"),
            put("headers.Transfer-Encoding", header("Transfer-Encoding", "identity")),
        ),
    ],
    ids=["deleted", "changed", "line added", "changed under Transfer-Encoding"],
)
def test_origin_response_may_not_delete_or_change_transfer_encoding(change: Change) -> None:
    """lambda-edge.md §3.2: Transfer-Encoding is read-only at origin-response (Docs-2023 and
    Docs-2025); a real origin-response function that dropped it got "the function tried to
    delete read-only header, headerName : Transfer-Encoding" (CodeGenieApp/serverless-express#369),
    and the viewer CloudFront's 502 "The function tried to add, delete, or change a read-only
    header"."""
    assert fails(ORS, change, event=CHUNKED) == READ_ONLY_TE


@pytest.mark.parametrize(
    "change",
    [
        lambda result: result,
        put("headers.transfer-encoding.0.key", "transfer-encoding"),
        both(
            drop("headers.transfer-encoding"),
            put("headers.Transfer-Encoding", header("Transfer-Encoding", "chunked")),
        ),
    ],
    ids=["kept", "key recased", "kept under Transfer-Encoding"],
)
def test_origin_response_may_keep_transfer_encoding(change: Change) -> None:
    """lambda-edge.md §3.2: read-only means it may be read and returned as received."""
    assert check(ORS, change, event=CHUNKED) is RESPONSE


# --- a key that names another header: AWS's "Override a response header" example ---------------

META = put(
    "response.headers.x-amz-meta-last-modified",
    header("X-Amz-Meta-Last-Modified", "Tue, 04 Mar 2025 09:00:00 GMT"),
)


def _override_last_modified(response: Any) -> Any:
    # AWS's published example, as written: the source entry copied whole, its key included.
    headers = response["headers"]
    headers["last-modified"] = [headers["x-amz-meta-last-modified"][0]]
    return response


@pytest.mark.parametrize("trigger", [ORS, VRS])
def test_an_entry_copied_under_another_name_is_sent_under_the_map_name(trigger: EventType) -> None:
    """AWS's Lambda@Edge example "Override a response header" (Developer Guide,
    lambda-examples) sets ``headers['last-modified'] = [headers['x-amz-meta-last-modified'][0]]``,
    whose key is X-Amz-Meta-Last-Modified, and logs that Last-Modified was set: published as
    working, and no source documents a refusal. The map name is the header it sets; the key,
    naming another header, cannot be its spelling, so it is spelt as CloudFront spells an entry
    without a key (§1.3)."""
    parsed = parsed_response(trigger, _override_last_modified, event=META)
    assert parsed.headers["last-modified"] == [(None, "Tue, 04 Mar 2025 09:00:00 GMT")]
    assert parsed.headers["x-amz-meta-last-modified"] == [
        ("X-Amz-Meta-Last-Modified", "Tue, 04 Mar 2025 09:00:00 GMT")
    ]
    (note,) = parsed.notes
    assert UNDOCUMENTED in note
    assert "X-Amz-Meta-Last-Modified" in note and "Last-Modified" in note


def test_a_key_naming_another_header_is_accepted_in_a_request() -> None:
    # the same reading at request triggers: the header is x-a, spelt X-A
    assert check(VR, put("headers.x-a", header("X-B", "1"))) is REQUEST
    # a non-ASCII key is no spelling of an ASCII name (the Kelvin sign lowercases to "k")
    assert check(VRS, put("headers.k", header("\u212a", "1"))) is RESPONSE


def test_a_key_cannot_smuggle_a_disallowed_or_read_only_header() -> None:
    # The key is only a spelling: the lists hold for the header the map name sends.
    assert check(VR, put("headers.x-a", header("X-Cache", "1"))) is REQUEST
    assert check(VR, put("headers.x-a", header("Host", "evil.example"))) is REQUEST
    assert fails(VR, put("headers.x-cache", header("X-A", "1"))).endswith("headerName : X-Cache")


# --- a map name that is not lowercase: awslabs' modify-response-header ------------------------


def _modify_response_header(response: Any) -> Any:
    # awslabs/aws-cloudfront-extensions edge/nodejs/modify-response-header/app.js, as written
    response["headers"]["headerToModify"] = [{"key": "headerToModify", "value": "modified header"}]
    return response


@pytest.mark.parametrize("trigger", [ORS, VRS])
def test_a_map_name_that_is_not_lowercase_is_read_as_its_lowercase(trigger: EventType) -> None:
    """awslabs/aws-cloudfront-extensions ships modify-response-header, which sets
    ``headers['headerToModify'] = [{key: 'headerToModify', value: 'modified header'}]``:
    published as working, and no source documents a refusal. HTTP names are case-insensitive,
    so the header is headertomodify, spelt as its key says."""
    parsed = parsed_response(trigger, _modify_response_header)
    assert parsed.headers["headertomodify"] == [("headerToModify", "modified header")]
    assert "headerToModify" not in parsed.headers
    (note,) = parsed.notes
    assert UNDOCUMENTED in note
    assert "headerToModify" in note


def test_map_names_differing_in_case_are_one_header() -> None:
    parsed = parsed_response(
        ORS,
        both(put("headers.x-a", header("X-A", "1")), put("headers.X-A", header("X-A", "2"))),
    )
    assert parsed.headers["x-a"] == [("X-A", "1"), ("X-A", "2")]


def test_the_lists_hold_for_a_map_name_that_is_not_lowercase() -> None:
    assert fails(VR, put("headers.X-Cache", header("X-Cache", "1"))).endswith(
        "blacklisted header, headerName : X-Cache"
    )
    assert fails(VR, put("headers.Via", header("Via", "1.1 me"))).endswith("headerName : Via")


def test_a_result_without_such_entries_has_no_notes() -> None:
    assert parsed_response(ORS, put("headers.x-a", header("X-A", "1"))).notes == ()


def test_a_map_name_must_still_be_a_header_name() -> None:
    # lambda-edge.md §4.1: an invalid entry in the headers object is refused
    with pytest.raises(LambdaValidationError):
        check(VR, put("headers.X A", header("X A", "1")))
