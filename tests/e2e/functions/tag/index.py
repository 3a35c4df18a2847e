"""Viewer-response (or any response trigger): tag the response so tests can see the trigger ran."""


def handler(event, context):
    cf = event["Records"][0]["cf"]
    response = cf["response"]
    name = "x-" + cf["config"]["eventType"]
    response["headers"][name] = [{"key": name.title(), "value": "ran"}]
    return response
