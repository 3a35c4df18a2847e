"""Viewer-request: 401 without an Authorization header."""

from typing import Any


def handler(event: dict[str, Any], context: Any) -> Any:
    request = event["Records"][0]["cf"]["request"]
    if "authorization" not in request["headers"]:
        print("refused", request["uri"])
        return {"status": "401", "statusDescription": "Unauthorized", "headers": {}}
    return request
