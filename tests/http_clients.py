"""httpx clients for the suite's servers, sharing one TLS context.

httpx builds a TLS context for each client it makes, loading the system's CA bundle (about
50 ms), even for a client that only ever speaks plain HTTP to 127.0.0.1; the suite makes hundreds
of them. They take one context made once per process instead: verification stays what httpx
does by default, should a test ever speak HTTPS.
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

import httpx


@functools.cache
def tls() -> ssl.SSLContext:
    """The context httpx builds for each client by default."""
    return httpx.create_ssl_context()


def async_client(**kwargs: Any) -> httpx.AsyncClient:
    """``httpx.AsyncClient(**kwargs)`` with the shared TLS context."""
    return httpx.AsyncClient(verify=tls(), **kwargs)


def client(**kwargs: Any) -> httpx.Client:
    """``httpx.Client(**kwargs)`` with the shared TLS context."""
    return httpx.Client(verify=tls(), **kwargs)


def get(url: str, **kwargs: Any) -> httpx.Response:
    """``httpx.get(url, **kwargs)`` with the shared TLS context."""
    return httpx.get(url, verify=tls(), **kwargs)
