"""Viewer-request with include_body: report what body the function saw; replace it on request."""

import base64
from urllib.parse import parse_qs


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    body = request.get("body")
    headers = request["headers"]
    if body is None:
        headers["x-body-seen"] = [{"key": "X-Body-Seen", "value": "none"}]
        return request
    seen = base64.b64decode(body["data"])
    headers["x-body-seen"] = [{"key": "X-Body-Seen", "value": str(len(seen))}]
    headers["x-body-truncated"] = [
        {"key": "X-Body-Truncated", "value": str(body["inputTruncated"]).lower()}
    ]
    case = parse_qs(request["querystring"]).get("case", [""])[0]
    if case == "replace-text":
        body.update(action="replace", encoding="text", data="replaced body")
    elif case == "replace-base64":
        body.update(
            action="replace", encoding="base64", data=base64.b64encode(b"\x00\xffbin").decode()
        )
    elif case == "ignored":
        body.update(data=base64.b64encode(b"ignored").decode())
    return request
