"""The soak's function, at every trigger: misbehave as the URI says, otherwise mark the message.

The URI is ``/<runtime>/<case>/<n>``; a case ``<trigger>-<fault>`` (``vreq-raise``,
``ores-timeout``...) misbehaves at that trigger only. Everywhere else the function passes the
message on with a mark the soak checks: the request triggers add to ``x-soak`` (which the origin
echoes as ``X-Soak-Seen``) and the response triggers set ``x-soak-ores`` / ``x-soak-vres``.
"""

import os
import time

TRIGGERS = {
    "viewer-request": "vreq",
    "origin-request": "oreq",
    "origin-response": "ores",
    "viewer-response": "vres",
}


def handler(event, context):
    cf = event["Records"][0]["cf"]
    trigger = TRIGGERS[cf["config"]["eventType"]]
    request = cf["request"]
    message = cf.get("response", request)
    parts = request["uri"].split("/")
    case = parts[2] if len(parts) > 2 else ""
    if case.startswith(trigger + "-"):
        fault = case[len(trigger) + 1 :]
        if fault == "raise":
            raise RuntimeError("the soak's function failed on purpose")
        if fault == "crash":
            os._exit(7)
        if fault == "timeout":
            time.sleep(3)
        if fault == "invalid":
            if int(parts[3]) % 2:
                return "not an object"
            message["headers"]["x-cache"] = [{"key": "X-Cache", "value": "Hit"}]
            return message
    headers = message["headers"]
    if trigger in ("vreq", "oreq"):
        seen = headers.get("x-soak", [{"value": ""}])[0]["value"]
        value = f"{seen},{trigger}" if seen else trigger
        headers["x-soak"] = [{"key": "X-Soak", "value": value}]
    else:
        headers[f"x-soak-{trigger}"] = [{"key": f"X-Soak-{trigger.title()}", "value": "py"}]
    return message
