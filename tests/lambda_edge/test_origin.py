"""The ``request.origin`` object of events, and the origin an origin-request result chooses."""

from __future__ import annotations

from typing import Any

import pytest

from edgesim.exceptions import OriginError
from edgesim.http import EdgeRequest
from edgesim.lambda_edge.events import origin_request_event
from edgesim.lambda_edge.origin import apply_origin, origin_to_cf
from edgesim.origins.targets import OriginTarget
from tests.lambda_edge.test_events import API, CTX, SITE, cf


def origin_result(origin: OriginTarget) -> dict[str, Any]:
    request = EdgeRequest("GET", "/")
    result: dict[str, Any] = cf(origin_request_event(CTX, request, origin, include_body=False))[
        "request"
    ]
    return result


def test_apply_origin_unchanged_or_absent_keeps_current() -> None:
    assert apply_origin(origin_result(API)["origin"], API, [API, SITE]) is API
    assert apply_origin(None, API, [API]) is API


def test_apply_origin_to_a_configured_origin_returns_it() -> None:
    assert apply_origin(origin_result(SITE)["origin"], API, [API, SITE]) is SITE


def test_apply_origin_custom_change_borrows_local_address() -> None:
    result = origin_result(API)
    custom = result["origin"]["custom"]
    custom.update(path="/v2", readTimeout=10, sslProtocols=["TLSv1.1", "TLSv1.2"])
    custom["customHeaders"] = {"x-k": [{"value": "v"}]}
    target = apply_origin(result["origin"], API, [API])
    assert (target.domain_name, target.port, target.protocol, target.path) == (
        "api.example.test",
        9000,
        "http",
        "/v2",
    )
    assert (target.read_timeout, target.ssl_protocols) == (10, ("TLSv1.1", "TLSv1.2"))
    assert target.custom_headers.items() == [("X-K", "v")]
    assert (target.connect_host, target.origin_id) == ("127.0.0.1", "api")


def test_apply_origin_unknown_custom_domain_is_dialled_by_name() -> None:
    result = origin_result(API)
    result["origin"]["custom"].update(domainName="other.example.org", port=443, protocol="https")
    target = apply_origin(result["origin"], API, [API, SITE])
    assert (target.kind, target.domain_name, target.connect_host) == (
        "custom",
        "other.example.org",
        None,
    )


def test_apply_origin_s3_maps_to_a_configured_folder() -> None:
    result = origin_result(API)
    result["origin"] = {
        "s3": {
            "authMethod": "origin-access-identity",
            "customHeaders": {},
            "domainName": "SITE.s3.amazonaws.com",
            "path": "/assets",
            "region": "eu-west-1",
        }
    }
    target = apply_origin(result["origin"], API, [API, SITE])
    assert target.local_root == SITE.local_root and target.kind == "s3"
    assert (target.path, target.region, target.auth_method) == (
        "/assets",
        "eu-west-1",
        "origin-access-identity",
    )


def test_apply_origin_unknown_s3_bucket_is_502() -> None:
    result = origin_result(SITE)
    result["origin"]["s3"]["domainName"] = "nope.s3.amazonaws.com"
    with pytest.raises(OriginError) as caught:
        apply_origin(result["origin"], SITE, [SITE])
    assert caught.value.status == 502
    assert "nope.s3.amazonaws.com" in caught.value.reason


def test_origin_to_cf_matches_the_event() -> None:
    assert origin_result(SITE)["origin"] == origin_to_cf(SITE)
