"""CloudFront's cache as a leaf library: stores, cache keys, TTLs, policies, conditional requests.

Imports nothing of functions, the runtime, the pipeline or the front doors.
"""
