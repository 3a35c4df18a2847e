"""An origin-response function that rebuilds the response's headers without Transfer-Encoding,
as serverless-express did in CodeGenieApp/serverless-express#369 (CloudFront refused it)."""


def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    response["headers"].pop("transfer-encoding", None)
    return response
