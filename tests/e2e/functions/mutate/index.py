"""A Lambda@Edge handler that bends its result as the viewer's `case` query parameter says.

Case names start with the trigger they apply to (vreq-, oreq-, ores-, vres-); at any other trigger
the function hands back what it was given. The e2e suite uses it to prove that each Lambda@Edge
rule refuses a breaking result with a 502 and lets an obeying one through.
"""

import base64
from urllib.parse import parse_qs

PREFIX = {
    "viewer-request": "vreq-",
    "origin-request": "oreq-",
    "origin-response": "ores-",
    "viewer-response": "vres-",
}


def h(key, value):
    return [{"key": key, "value": value}]


def generated(status, **extra):
    response = {"status": status, "statusDescription": "Generated"}
    response.update(extra)
    return response


def request_cases(req):
    headers = req["headers"]
    return {
        # passing
        "add-header": lambda: headers.__setitem__("x-custom", h("X-Custom", "1")) or req,
        "add-header-no-key": lambda: headers.__setitem__("x-custom", [{"value": "1"}]) or req,
        "change-uri": lambda: req.__setitem__("uri", "/echo/changed") or req,
        "change-querystring": lambda: req.__setitem__("querystring", "a=1&b=%20") or req,
        "generated-200": lambda: generated("200", body="made at the edge"),
        "generated-int-status": lambda: generated(200, body="int status"),
        "generated-base64": lambda: generated(
            "200", body=base64.b64encode(b"\x00\x01binary").decode(), bodyEncoding="base64"
        ),
        "generated-30k": lambda: generated("200", body="x" * 30_000),
        "generated-500": lambda: generated("500", body="failure made at the edge"),
        # failing
        "not-object": lambda: None,
        "list": lambda: [req],
        "string": lambda: "hello",
        "change-host": lambda: headers.__setitem__("host", h("Host", "evil.example")) or req,
        "delete-host": lambda: headers.pop("host") and req,
        "add-via": lambda: headers.__setitem__("via", h("Via", "1.1 me")) or req,
        "add-content-length": lambda: (
            headers.__setitem__("content-length", h("Content-Length", "3")) or req
        ),
        "add-transfer-encoding": lambda: (
            headers.__setitem__("transfer-encoding", h("Transfer-Encoding", "chunked")) or req
        ),
        "add-x-cache": lambda: headers.__setitem__("x-cache", h("X-Cache", "Hit")) or req,
        "add-connection": lambda: (
            headers.__setitem__("connection", h("Connection", "close")) or req
        ),
        "add-x-amz-cf-foo": lambda: (
            headers.__setitem__("x-amz-cf-foo", h("X-Amz-Cf-Foo", "1")) or req
        ),
        "add-x-edge-foo": lambda: headers.__setitem__("x-edge-foo", h("X-Edge-Foo", "1")) or req,
        "add-x-forwarded-proto": lambda: (
            headers.__setitem__("x-forwarded-proto", h("X-Forwarded-Proto", "https")) or req
        ),
        "add-x-real-ip": lambda: headers.__setitem__("x-real-ip", h("X-Real-IP", "1.2.3.4")) or req,
        "add-keep-alive": lambda: headers.__setitem__("keep-alive", h("Keep-Alive", "5")) or req,
        "add-upgrade": lambda: headers.__setitem__("upgrade", h("Upgrade", "h2c")) or req,
        "header-crlf": lambda: headers.__setitem__("x-custom", h("X-Custom", "a\r\nb")) or req,
        "header-value-int": lambda: (
            headers.__setitem__("x-custom", [{"key": "X-Custom", "value": 5}]) or req
        ),
        "header-key-mismatch": lambda: headers.__setitem__("x-custom", h("X-Other", "1")) or req,
        "headers-list": lambda: req.__setitem__("headers", []) or req,
        "uri-no-slash": lambda: req.__setitem__("uri", "echo") or req,
        "uri-int": lambda: req.__setitem__("uri", 42) or req,
        "uri-too-long": lambda: req.__setitem__("uri", "/" + "a" * 8200) or req,
        "querystring-space": lambda: req.__setitem__("querystring", "a=b c") or req,
        "querystring-hash": lambda: req.__setitem__("querystring", "a=b#c") or req,
        "change-client-ip": lambda: req.__setitem__("clientIp", "203.0.113.9") or req,
        "change-method": lambda: req.__setitem__("method", "DELETE") or req,
        "generated-status-99": lambda: generated("99"),
        "generated-status-600": lambda: generated("600"),
        "generated-status-text": lambda: generated("OK"),
        "generated-status-bool": lambda: generated(True),
        "generated-no-status-body-int": lambda: generated("200", body=12),
        "generated-bad-base64": lambda: generated("200", body="***", bodyEncoding="base64"),
        "generated-bad-encoding": lambda: generated("200", body="x", bodyEncoding="gzip"),
        "generated-disallowed-header": lambda: generated(
            "200", headers={"x-cache": h("X-Cache", "Hit")}
        ),
        "generated-too-big": lambda: generated("200", body="x" * 41_000),
        "generated-huge": lambda: generated("200", body="x" * 1_100_000),
    }


def viewer_request_only(req):
    headers = req["headers"]
    return {
        "add-cloudfront-viewer-country": lambda: (
            headers.__setitem__("cloudfront-viewer-country", h("CloudFront-Viewer-Country", "FR"))
            or req
        ),
        "generated-204-with-body": lambda: generated("204", body="not allowed"),
    }


def origin_request_only(req):
    headers = req["headers"]
    origin = req["origin"]

    def set_custom(**fields):
        custom = origin.get("custom")
        if custom is None:
            custom = {
                "customHeaders": {},
                "domainName": "localhost",
                "keepaliveTimeout": 5,
                "path": "",
                "port": 443,
                "protocol": "https",
                "readTimeout": 30,
                "sslProtocols": ["TLSv1.2"],
            }
            req["origin"] = {"custom": custom}
        custom.update(fields)
        return req

    return {
        "change-accept-encoding": lambda: (
            headers.__setitem__("accept-encoding", h("Accept-Encoding", "br")) or req
        ),
        "add-if-none-match": lambda: (
            headers.__setitem__("if-none-match", h("If-None-Match", '"x"')) or req
        ),
        "origin-port-22": lambda: set_custom(port=22),
        "origin-protocol-ftp": lambda: set_custom(protocol="ftp"),
        "origin-domain-colon": lambda: set_custom(domainName="localhost:9000"),
        "origin-domain-ip": lambda: set_custom(domainName="10.0.0.1"),
        "origin-path-trailing-slash": lambda: set_custom(path="/v1/"),
        "origin-read-timeout-0": lambda: set_custom(readTimeout=0),
        "origin-custom-header-denied": lambda: set_custom(
            customHeaders={"cookie": h("Cookie", "a=1")}
        ),
        "origin-two-kinds": lambda: (
            origin.__setitem__("s3", {"domainName": "b.s3.amazonaws.com"}) or req
        ),
        "origin-custom-header-ok": lambda: set_custom(
            customHeaders={"x-origin-token": h("X-Origin-Token", "t")}
        ),
    }


def response_cases(resp, trigger):
    headers = resp["headers"]
    cases = {
        "add-header": lambda: headers.__setitem__("x-custom", h("X-Custom", "1")) or resp,
        "not-object": lambda: None,
        "add-via": lambda: headers.__setitem__("via", h("Via", "1.1 me")) or resp,
        "add-transfer-encoding": lambda: (
            headers.__setitem__("transfer-encoding", h("Transfer-Encoding", "chunked")) or resp
        ),
        "add-x-cache": lambda: headers.__setitem__("x-cache", h("X-Cache", "Hit")) or resp,
        "header-crlf": lambda: headers.__setitem__("x-custom", h("X-Custom", "a\rb")) or resp,
    }
    if trigger == "origin-response":
        cases.update(
            {
                "set-status-404": lambda: (
                    resp.update(status="404", statusDescription="Not Found") or resp
                ),
                "set-status-int": lambda: resp.update(status=201) or resp,
                "set-status-700": lambda: resp.update(status="700") or resp,
                "set-body": lambda: resp.update(body="replaced by origin-response") or resp,
            }
        )
    else:
        cases.update(
            {
                "set-status-201": lambda: resp.update(status="201") or resp,
                "add-warning": lambda: (
                    headers.__setitem__("warning", h("Warning", "199 - x")) or resp
                ),
                "change-content-length": lambda: (
                    headers.__setitem__("content-length", h("Content-Length", "1")) or resp
                ),
            }
        )
    return cases


def handler(event, context):
    cf = event["Records"][0]["cf"]
    trigger = cf["config"]["eventType"]
    request = cf["request"]
    case = parse_qs(request["querystring"]).get("case", [""])[0]
    prefix = PREFIX[trigger]
    if not case.startswith(prefix):
        return cf["response"] if "response" in cf else request
    name = case[len(prefix) :]
    if trigger in ("viewer-request", "origin-request"):
        cases = request_cases(request)
        if trigger == "viewer-request":
            cases.update(viewer_request_only(request))
        else:
            cases.update(origin_request_only(request))
    else:
        cases = response_cases(cf["response"], trigger)
    return cases[name]()
