"""What a test writes, read into edgesim's models: headers, targets, query strings, cookies, bodies.

A test gives headers as a dict (``{"Accept": "*/*"}``, a list value for a repeated header) or as
a list of ``(name, value)`` pairs, the way HTTP libraries take them; anything else is a
:class:`TypeError` that says what was given, raised before the request reaches the edge, so a
typo in a test never turns into a 502 from the pipeline. A ``?`` in a target splits it into the
URI and the query string, as on a request line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlencode

from edgesim.http import Headers

__all__ = [
    "CookiesInput",
    "HeadersInput",
    "QueryInput",
    "body_bytes",
    "cookie_header",
    "header_lines",
    "query_text",
    "split_target",
]

HeadersInput = Mapping[str, str | Sequence[str]] | Iterable[tuple[str, str]] | Headers | None
"""Headers as a test gives them: a mapping (a list value repeats the header) or (name, value)
pairs; None for none."""

QueryInput = str | Mapping[str, str | Sequence[str]] | Sequence[tuple[str, str]] | None
"""A query string without ``?``, or its parameters (URL-encoded here)."""

CookiesInput = str | Mapping[str, str] | Sequence[tuple[str, str]] | None
"""A ``Cookie`` header value, or its ``name=value`` pairs."""


def _type_name(value: object) -> str:
    return type(value).__name__


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {_type_name(value)} {value!r}")
    return value


def header_lines(headers: HeadersInput, *, argument: str = "headers") -> Headers:
    """``headers`` as :class:`~edgesim.http.Headers`, in the order given.

    Raises :class:`TypeError` naming the argument and the offending entry when ``headers`` is
    not a mapping or pairs of strings.
    """
    # Typed for callers; checked as any object, since a wrong type is what this guards against.
    given: object = headers
    if given is None:
        return Headers()
    if isinstance(given, Headers):
        return given.copy()
    if isinstance(given, str | bytes) or not isinstance(given, Iterable):
        raise TypeError(
            f"{argument} must be a dict or a list of (name, value) pairs, got "
            f"{_type_name(headers)} {headers!r}"
        )
    lines: list[tuple[str, str]] = []
    if isinstance(given, Mapping):
        for name, value in given.items():
            key = _text(name, f"a header name in {argument}")
            if isinstance(value, list | tuple):
                lines += [(key, _text(v, f"{argument}[{key!r}]")) for v in value]
            else:
                lines.append((key, _text(value, f"{argument}[{key!r}]")))
        return Headers(lines)
    for index, pair in enumerate(given):
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise TypeError(
                f"{argument}[{index}] must be a (name, value) pair, got {_type_name(pair)} {pair!r}"
            )
        name, value = pair
        key = _text(name, f"the name of {argument}[{index}]")
        lines.append((key, _text(value, f"the value of {argument}[{index}] ({key})")))
    return Headers(lines)


def split_target(target: str, querystring: QueryInput = None) -> tuple[str, str]:
    """``"/a?b=1"`` -> ``("/a", "b=1")``; a separate ``querystring`` may be given instead.

    The text is kept as written (no decoding, no normalising): it is what a viewer sent.
    """
    _text(target, "the request target")
    uri, mark, query = target.partition("?")
    if querystring is not None:
        if mark:
            raise ValueError(
                f"the query string is given twice: in the target {target!r} and as querystring"
            )
        query = query_text(querystring)
    if not uri.startswith("/"):
        raise ValueError(f"a request target starts with '/', got {target!r}")
    return uri, query


def query_text(querystring: QueryInput) -> str:
    """A query string (without ``?``) from a string or from parameters."""
    if querystring is None:
        return ""
    if isinstance(querystring, str):
        return querystring.removeprefix("?")
    if isinstance(querystring, Mapping | list | tuple):
        return urlencode(querystring, doseq=True)
    raise TypeError(
        f"querystring must be a str, a dict or (name, value) pairs, got "
        f"{_type_name(querystring)} {querystring!r}"
    )


def cookie_header(cookies: CookiesInput) -> str | None:
    """The ``Cookie`` header value for ``cookies``; None when there are none."""
    if cookies is None:
        return None
    if isinstance(cookies, str):
        return cookies or None
    pairs: Iterable[tuple[str, str]]
    if isinstance(cookies, Mapping):
        pairs = cookies.items()
    elif isinstance(cookies, list | tuple):
        pairs = cookies
    else:
        raise TypeError(
            f"cookies must be a str, a dict or (name, value) pairs, got "
            f"{_type_name(cookies)} {cookies!r}"
        )
    text = "; ".join(
        f"{_text(name, 'a cookie name')}={_text(value, f'cookie {name!r}')}"
        for name, value in pairs
    )
    return text or None


def body_bytes(body: bytes | str | None) -> bytes:
    """A body as bytes: text is sent as UTF-8."""
    if body is None:
        return b""
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    raise TypeError(f"body must be bytes or str, got {_type_name(body)}")
