"""The ``origin`` object of origin-request results (lambda-edge.md §1.3 ``origin`` tables, §3.4).

The custom-origin example event is the start; S3 rows swap in the spec's S3 origin fragment.
Only fields a function changed are checked, so the local origins edgesim configures (e.g.
``127.0.0.1``) pass through untouched, while a function that sets an IP address still fails.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.lambda_edge.rules.test_validate import (
    EVENTS,
    OR,
    REQUEST,
    VR,
    Change,
    both,
    check,
    drop,
    fails,
    header,
    put,
    same,
)

INVALID_ORIGIN = "The Lambda function returned an invalid origin configuration: "
S3_ORIGIN = json.loads((EVENTS / "origin-request-s3-origin-fragment.json").read_text())["origin"]
S3_EVENT = put("request.origin", S3_ORIGIN)
LOCAL_EVENT = put("request.origin.custom.domainName", "127.0.0.1")

NEW_CUSTOM = {
    "customHeaders": {},
    "domainName": "api.example.com",
    "keepaliveTimeout": 5,
    "path": "",
    "port": 443,
    "protocol": "https",
    "readTimeout": 30,
    "sslProtocols": ["TLSv1.2"],
}
NEW_S3 = {
    "authMethod": "none",
    "customHeaders": {},
    "domainName": "other-bucket.s3.amazonaws.com",
    "path": "",
    "region": "",
}


def custom(**fields: Any) -> Change:
    """Change fields of the event's custom origin."""
    return both(*(put(f"origin.custom.{name}", value) for name, value in fields.items()))


def switch_to(kind: str, form: dict[str, Any], **fields: Any) -> Change:
    return put("origin", {kind: {**form, **fields}})


def s3(**fields: Any) -> Change:
    return both(*(put(f"origin.s3.{name}", value) for name, value in fields.items()))


def custom_header(name: str, value: str = "v") -> Change:
    return put(f"origin.custom.customHeaders.{name.lower()}", header(name, value))


DOMAIN_253 = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])

VALID = {
    "unchanged": (same, same),
    "left out": (drop("origin"), same),
    "switched to a new custom origin": (switch_to("custom", NEW_CUSTOM), same),
    "lowest values": (
        custom(port=80, readTimeout=4, keepaliveTimeout=1, protocol="http", path="/v1"),
        same,
    ),
    "highest values": (custom(port=65535, readTimeout=60, keepaliveTimeout=60), same),
    "port 1024": (custom(port=1024), same),
    "every TLS protocol": (custom(sslProtocols=["TLSv1.2", "TLSv1.1", "TLSv1", "SSLv3"]), same),
    "domain of 253 chars": (custom(domainName=DOMAIN_253), same),
    "domain with hyphen and underscore": (custom(domainName="my-api_1.example.com"), same),
    "encoded path of 255 chars": (custom(path="/a%20" + "b" * 250), same),
    "new custom header": (custom_header("X-Origin-Token"), same),
    "custom header removed": (
        put("origin.custom.customHeaders", {}),
        put("request.origin.custom.customHeaders.x-origin-secret", header("X-Origin-Secret", "s")),
    ),
    # local emulation: an unchanged IP-address origin is the distribution's, not the function's
    "local origin unchanged": (same, LOCAL_EVENT),
    "local origin, new port": (custom(port=8443), LOCAL_EVENT),
    "local origin, new custom header": (custom_header("X-Token"), LOCAL_EVENT),
    "switched to S3 without OAI": (switch_to("s3", NEW_S3), same),
    "switched to S3, region left out": (put("origin", {"s3": {**NEW_S3, "region": None}}), same),
    "S3 with OAI, new bucket": (s3(domainName="b2.s3.eu-west-1.amazonaws.com"), S3_EVENT),
    "S3 bucket name of 128 chars": (s3(domainName="b" * 111 + ".s3.amazonaws.com"), S3_EVENT),
    "S3 switched to custom": (switch_to("custom", NEW_CUSTOM), S3_EVENT),
}


@pytest.mark.parametrize(("change", "event"), VALID.values(), ids=VALID)
def test_valid_origin(change: Change, event: Change) -> None:
    assert check(OR, change, event=event) is REQUEST


def test_origin_in_viewer_request_is_not_an_origin_switch() -> None:
    # §1.3: origin exists only in origin events; a viewer-request result's origin is ignored
    assert check(VR, put("origin", "anything")) is REQUEST


INVALID = {
    "null": (put("origin", None), same, "The origin field must be an object, got null"),
    "a string": (put("origin", "api.example.com"), same, "got string"),
    "both kinds": (
        put("origin.s3", NEW_S3),
        same,
        "exactly one of custom or s3, got keys : custom, s3",
    ),
    "no kind": (put("origin", {}), same, "got keys : (none)"),
    "custom a list": (
        put("origin", {"custom": []}),
        same,
        "origin.custom must be an object, got array",
    ),
    "new origin missing a field": (
        put("origin", {"custom": {k: v for k, v in NEW_CUSTOM.items() if k != "readTimeout"}}),
        same,
        "missing the field origin.custom.readTimeout",
    ),
    "field deleted": (drop("origin.custom.port"), same, "missing the field origin.custom.port"),
    "domain empty": (custom(domainName=""), same, "non-empty string"),
    "domain a number": (custom(domainName=5), same, "non-empty string"),
    "domain with port": (
        custom(domainName="origin.example.org:8080"),
        same,
        "must not contain ':'",
    ),
    "domain an IPv4 address": (custom(domainName="192.0.2.10"), same, "not an IP address"),
    "domain an IPv6 address": (custom(domainName="2001:db8::1"), same, "must not contain ':'"),
    "local origin switched to an IP": (custom(domainName="10.0.0.1"), LOCAL_EVENT, "IP address"),
    "domain of 254 chars": (custom(domainName=DOMAIN_253 + "d"), same, "at most 253"),
    "domain with a space": (custom(domainName="bad host.com"), same, "not a valid DNS name"),
    "domain with empty label": (custom(domainName="a..com"), same, "not a valid DNS name"),
    "port 22": (custom(port=22), same, "field : origin.custom.port, value : 22"),
    "port 1023": (custom(port=1023), same, "80, 443, or between 1024 and 65535"),
    "port 65536": (custom(port=65536), same, "value : 65536"),
    "port a string": (custom(port="443"), same, 'value : "443"'),
    "port a bool": (custom(port=True), same, "value : true"),
    "protocol ftp": (custom(protocol="ftp"), same, "http or https"),
    "protocol uppercase": (custom(protocol="HTTPS"), same, "http or https"),
    "path without slash": (custom(path="v1"), same, "must start with '/'"),
    "path with trailing slash": (custom(path="/v1/"), same, "must not end with '/'"),
    "path a lone slash": (custom(path="/"), same, "must not end with '/'"),
    "path of 256 chars": (custom(path="/" + "a" * 255), same, "at most 255"),
    "path with a space": (custom(path="/a b"), same, "URL-encoded"),
    "path a number": (custom(path=1), same, "must be a string"),
    "readTimeout 3": (
        custom(readTimeout=3),
        same,
        "readTimeout must be a whole number of seconds, 4-60",
    ),
    "readTimeout 61": (custom(readTimeout=61), same, "4-60"),
    "readTimeout a string": (custom(readTimeout="30"), same, "field : origin.custom.readTimeout"),
    "keepaliveTimeout 0": (
        custom(keepaliveTimeout=0),
        same,
        "keepaliveTimeout must be a whole number of seconds, 1-60",
    ),
    "keepaliveTimeout 61": (custom(keepaliveTimeout=61), same, "1-60"),
    "sslProtocols empty": (custom(sslProtocols=[]), same, "non-empty array"),
    "sslProtocols TLSv1.3": (custom(sslProtocols=["TLSv1.3"]), same, "sslProtocols"),
    "sslProtocols a string": (custom(sslProtocols="TLSv1.2"), same, "sslProtocols"),
    "S3 authMethod OAC": (
        s3(authMethod="origin-access-control"),
        S3_EVENT,
        "origin-access-identity or none",
    ),
    "S3 OAI without region": (drop("origin.s3.region"), S3_EVENT, "region is required"),
    "S3 OAI from custom": (
        switch_to("s3", NEW_S3, authMethod="origin-access-identity", region="us-east-1"),
        same,
        "cannot be used when switching from a custom origin",
    ),
    "S3 region a number": (s3(region=1), S3_EVENT, "region must be a string"),
    "S3 domain uppercase": (s3(domainName="My-Bucket.s3.amazonaws.com"), S3_EVENT, "lowercase"),
    "S3 domain of 129 chars": (
        s3(domainName="b" * 112 + ".s3.amazonaws.com"),
        S3_EVENT,
        "at most 128",
    ),
    "S3 path with trailing slash": (s3(path="/x/"), S3_EVENT, "field : origin.s3.path"),
}


@pytest.mark.parametrize(("change", "event", "reason"), INVALID.values(), ids=INVALID)
def test_invalid_origin(change: Change, event: Change, reason: str) -> None:
    message = fails(OR, change, event=event)
    assert message.startswith(INVALID_ORIGIN)
    assert reason in message


CUSTOM_HEADERS_INVALID = "One or more HeaderName or HeaderValue values are invalid. "


@pytest.mark.parametrize(
    "name",
    # §3.4 headers CloudFront can't add as origin custom headers, and §3.1 disallowed ones
    [
        "Cache-Control", "Connection", "Content-Length", "Cookie", "Host", "If-Match",
        "If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since", "Max-Forwards",
        "Pragma", "Proxy-Authorization", "Proxy-Connection", "Range", "Request-Range", "TE",
        "Trailer", "Transfer-Encoding", "Upgrade", "Via", "X-Amz-Date", "X-Amz-Cf-Id",
        "X-Edge-Origin", "X-Real-Ip", "X-Cache", "X-Forwarded-Proto",
    ],
)  # fmt: skip
def test_custom_header_cloudfront_cannot_add(name: str) -> None:
    message = fails(OR, custom_header(name))
    assert message.startswith(INVALID_ORIGIN + CUSTOM_HEADERS_INVALID)
    assert f"cannot add this header as an origin custom header, headerName : {name}" in message


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (put("origin.custom.customHeaders", []), "customHeaders field must be an object"),
        (custom_header("X-Token", "a\r\nb"), "invalid character : '%0D' in header value"),
        (put("origin.custom.customHeaders.X-Token", header("X-Token", "1")), "must be lowercase"),
        (put("origin.custom.customHeaders.x-token", "1"), "must be an array"),
        # §1.3: a custom header name may not also appear in request.headers
        (custom_header("User-Agent"), "must not also be a request header, headerName : User-Agent"),
    ],
    ids=["list", "CR", "uppercase", "not an array", "also a request header"],
)
def test_invalid_custom_headers(change: Change, reason: str) -> None:
    message = fails(OR, change)
    assert message.startswith(INVALID_ORIGIN + CUSTOM_HEADERS_INVALID)
    assert reason in message
    assert "origin.custom.customHeaders" in message
