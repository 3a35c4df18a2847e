"""Origin-request: send the request to another origin named by the viewer's query string."""

from urllib.parse import parse_qs


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    query = parse_qs(request["querystring"])
    if "port" not in query:
        return request
    request["origin"] = {
        "custom": {
            "customHeaders": {"x-switched": [{"key": "X-Switched", "value": "yes"}]},
            "domainName": "localhost",
            "keepaliveTimeout": 5,
            "path": query.get("path", [""])[0],
            "port": int(query["port"][0]),
            "protocol": "http",
            "readTimeout": 30,
            "sslProtocols": ["TLSv1.2"],
        }
    }
    request["headers"]["host"] = [{"key": "Host", "value": "localhost"}]
    return request
