"""Viewer-request: misbehave as the viewer's `case` query parameter asks."""

import os
import time
from urllib.parse import parse_qs


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    case = parse_qs(request["querystring"]).get("case", [""])[0]
    if case == "raise":
        raise ValueError("the function failed on purpose")
    if case == "crash":
        os._exit(3)
    if case == "hang":
        time.sleep(60)
    if case == "slow":
        time.sleep(0.6)
    if case == "memory":
        hog = []
        while True:
            hog.append(bytearray(8 * 1024 * 1024))
    if case == "print":
        print("hello from the function")
    return request
