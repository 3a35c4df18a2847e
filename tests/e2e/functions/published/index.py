"""Two published Lambda@Edge response functions, in the shapes their authors published them.

- origin-response: AWS's Developer Guide example "Override a response header", which copies the
  first entry of ``x-amz-meta-last-modified`` (its key ``X-Amz-Meta-Last-Modified`` included)
  into ``headers['last-modified']``;
- viewer-response: awslabs/aws-cloudfront-extensions' modify-response-header, which sets
  ``headers['headerToModify']``, a map name that is not lowercase.

Neither shape is the documented one, and both are published as working.
"""


def handler(event, context):
    cf = event["Records"][0]["cf"]
    response = cf["response"]
    headers = response["headers"]
    if cf["config"]["eventType"] == "origin-response":
        source, target = "X-Amz-Meta-Last-Modified", "Last-Modified"
        if headers.get(source.lower()):
            headers[target.lower()] = [headers[source.lower()][0]]
            print(f'Response header "{target}" was set to "{headers[target.lower()][0]["value"]}"')
    else:
        headers["headerToModify"] = [{"key": "headerToModify", "value": "modified header"}]
    return response
