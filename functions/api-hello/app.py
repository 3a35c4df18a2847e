"""Origin-request: answer /api/* from the edge with JSON; the origin is never asked."""

import base64
import json


def handler(event, context):
    cf = event["Records"][0]["cf"]
    request = cf["request"]
    body = request.get("body") or {}
    received = base64.b64decode(body.get("data", "")).decode("utf-8", "replace")
    payload = {
        "message": "Hello from an origin-request function",
        "method": request["method"],
        "uri": request["uri"],
        "querystring": request["querystring"],
        "requestBody": received,
        "requestId": cf["config"]["requestId"],
        "function": context.function_name,
        "memoryLimitInMB": context.memory_limit_in_mb,
    }
    return {
        "status": "200",
        "statusDescription": "OK",
        "headers": {
            "content-type": [{"key": "Content-Type", "value": "application/json"}],
            "cache-control": [{"key": "Cache-Control", "value": "no-store"}],
        },
        "body": json.dumps(payload, indent=2) + "\n",
    }
