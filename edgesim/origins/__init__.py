"""Origins: where a request goes (targets), what CloudFront sends (forwarding), and the clients
that fetch from HTTP servers and from local folders served as S3 buckets."""
