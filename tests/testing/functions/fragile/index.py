"""Viewer-request with two bugs: it overwrites Host when there is a query string (a read-only
header: 502), and it raises on cookies (503)."""

from typing import Any


def handler(event: dict[str, Any], context: Any) -> Any:
    request = event["Records"][0]["cf"]["request"]
    if request["querystring"]:
        request["headers"]["host"] = [{"key": "Host", "value": "elsewhere.example"}]
    if "cookie" in request["headers"]:
        raise ValueError("cookies are not handled")
    return request
