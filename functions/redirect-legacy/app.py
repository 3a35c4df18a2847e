"""Viewer-request: old blog URLs get a permanent redirect, generated at the edge."""


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    uri = request["uri"]
    if uri.startswith("/old-blog/"):
        target = "/blog/" + uri[len("/old-blog/"):]
        if request["querystring"]:
            target += "?" + request["querystring"]
        return {
            "status": "301",
            "statusDescription": "Moved Permanently",
            "headers": {
                "location": [{"key": "Location", "value": target}],
                "cache-control": [{"key": "Cache-Control", "value": "max-age=3600"}],
            },
        }
    return request
