"""edgesim: a local Amazon CloudFront edge location running Lambda@Edge functions."""
