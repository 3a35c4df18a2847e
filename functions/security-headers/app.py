"""Origin-response: add the security headers every page should carry."""

HEADERS = {
    "strict-transport-security": (
        "Strict-Transport-Security",
        "max-age=63072000; includeSubDomains",
    ),
    "x-content-type-options": ("X-Content-Type-Options", "nosniff"),
    "x-frame-options": ("X-Frame-Options", "DENY"),
    "referrer-policy": ("Referrer-Policy", "same-origin"),
}


def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    headers = response["headers"]
    for name, (key, value) in HEADERS.items():
        headers[name] = [{"key": key, "value": value}]
    print(f"added {len(HEADERS)} security headers to a {response['status']} response")
    return response
