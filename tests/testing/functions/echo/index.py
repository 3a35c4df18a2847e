"""Every trigger: hands back what it was given, and says where it ran."""

from typing import Any


def handler(event: dict[str, Any], context: Any) -> Any:
    cf = event["Records"][0]["cf"]
    print("echo at", cf["config"]["eventType"], cf["request"]["uri"])
    return cf["response"] if "response" in cf else cf["request"]
