"""Viewer-request: old blog URLs get a permanent redirect, generated at the edge.

The old blog had extensionless post URLs (/old-blog/first-post); the new one keeps each post as
an .html object in the bucket (/blog/first-post.html), so a post's name gets its extension back.
Folder URLs (/old-blog/) keep their slash; the site's index rewrite serves them.
"""


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    uri = request["uri"]
    if uri.startswith("/old-blog/"):
        name = uri[len("/old-blog/") :]
        last = name.rsplit("/", 1)[-1]
        if last and "." not in last:
            name += ".html"
        target = "/blog/" + name
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
