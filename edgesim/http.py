"""edgesim's own HTTP models, free of any server or client library.

Front doors (aiohttp, mitmproxy, the pytest helpers) translate to and from these; the pipeline,
the event builder and the origins only ever see them.

A body is either whole ``bytes`` or a :class:`BodyStream` that yields it chunk by chunk: origin
responses and viewer uploads stream through the edge, so memory per request stays bounded and a
slow origin's first byte reaches the viewer before its last. What a function may read (a body with
``include_body``, a generated response) is buffered, as CloudFront buffers it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Protocol

__all__ = [
    "HOP_BY_HOP",
    "BodyStream",
    "EdgeRequest",
    "EdgeResponse",
    "Headers",
    "has_control_bytes",
    "reason_phrase",
]

# RFC 9110 §7.6.1 connection-specific fields; a proxy never forwards them.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

# Every control byte but TAB: none may stand in a header line (CR and LF would split the head).
_CONTROL_BYTES = bytes([*range(0x09), *range(0x0A, 0x20), 0x7F])


def has_control_bytes(data: bytes) -> bool:
    """Whether ``data`` holds a control byte other than TAB, which no header line may carry.

    UTF-8 never puts such a byte inside another character, so encoded text can be tested too.
    Deleting them and comparing lengths is several times faster than a regular expression or a
    str test, and a response head or a request's header lines are tested whole on every request.
    """
    return len(data.translate(None, _CONTROL_BYTES)) != len(data)


class BodyStream(Protocol):
    """A body arriving in chunks; ``aclose`` gives up on the rest and frees its connection.

    Iteration raises :class:`~edgesim.exceptions.IncompleteBodyError` when the body ends before
    its framing said it would (a short ``Content-Length``, a reset).
    """

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


async def _drain(stream: BodyStream) -> bytes:
    try:
        return b"".join([chunk async for chunk in stream])
    finally:
        await stream.aclose()


class Headers:
    """An ordered, multi-valued, case-preserving header list.

    Lookups ignore case; each line keeps the name as it was written, because CloudFront hands
    functions the original spelling in ``key``.
    """

    # ``_names`` holds each line's name in lowercase, kept in step with ``_items``: lookups then
    # compare against it in C instead of lowercasing every name on every lookup.
    __slots__ = ("_items", "_names")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(str(k), str(v)) for k, v in items]
        self._names: list[str] = [k.lower() for k, _ in self._items]

    @classmethod
    def of_lines(cls, items: list[tuple[str, str]]) -> Headers:
        """Headers over ``items``, which must be ``(str, str)`` pairs (a front door's parsed
        lines); the list becomes the new object's own."""
        return cls._of(items, [k.lower() for k, _ in items])

    @classmethod
    def _of(cls, items: list[tuple[str, str]], names: list[str]) -> Headers:
        headers = cls.__new__(cls)
        headers._items = items
        headers._names = names
        return headers

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._names

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def named_lines(self) -> tuple[list[tuple[str, str]], list[str]]:
        """The lines and, in step with them, their lowercase names: the header's own lists,
        to be read, not changed (a front door rendering them skips lowercasing each)."""
        return self._items, self._names

    def items(self) -> list[tuple[str, str]]:
        """All lines as ``(name, value)`` pairs, in order."""
        return list(self._items)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``, or ``default``."""
        lower = name.lower()
        if lower not in self._names:
            return default
        return self._items[self._names.index(lower)][1]

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, in order."""
        lower = name.lower()
        if lower not in self._names:
            return []
        return [item[1] for item, n in zip(self._items, self._names, strict=True) if n == lower]

    def add(self, name: str, value: str) -> None:
        """Append one line."""
        self._items.append((name, value))
        self._names.append(name.lower())

    def extend(self, lines: list[tuple[str, str]], names: list[str]) -> None:
        """Append ``lines``, whose lowercase names ``names`` are, in the same order (the
        caller's constants, so nothing is lowercased per request)."""
        self._items += lines
        self._names += names

    def set(self, name: str, value: str) -> None:
        """Replace every line of ``name`` with one line, kept at the first one's place."""
        lower = name.lower()
        if lower not in self._names:
            self.add(name, value)
            return
        first = self._names.index(lower)
        self._items[first] = (name, value)
        if self._names.count(lower) > 1:
            keep = [i == first or n != lower for i, n in enumerate(self._names)]
            self._items = [item for item, k in zip(self._items, keep, strict=True) if k]
            self._names = [n for n, k in zip(self._names, keep, strict=True) if k]

    def set_spelled(self, name: str, value: str) -> None:
        """:meth:`set`, keeping the spelling of the line already there (CloudFront keeps the
        sender's spelling of the fields it rewrites)."""
        lower = name.lower()
        spelled = self._items[self._names.index(lower)][0] if lower in self._names else name
        self.set(spelled, value)

    def fit_length(self, body: bytes, *, add: bool = False) -> None:
        """Keep ``Content-Length`` true to ``body``: an existing line is rewritten, and one is
        added when ``add`` says the message must carry it. The one place lengths are fixed."""
        if add or "content-length" in self:
            self.set_spelled("Content-Length", str(len(body)))

    def remove(self, *names: str) -> None:
        """Drop every line of each of ``names``."""
        drop = {name.lower() for name in names}
        if not drop.isdisjoint(self._names):
            pairs = [(i, n) for i, n in zip(self._items, self._names, strict=True) if n not in drop]
            self._items = [i for i, _ in pairs]
            self._names = [n for _, n in pairs]

    def partition(self, picked: Callable[[str], bool]) -> tuple[Headers, Headers]:
        """(the lines whose lowercase name ``picked`` rejects, those it accepts), in order."""
        kept: tuple[list[tuple[str, str]], list[str]] = ([], [])
        taken: tuple[list[tuple[str, str]], list[str]] = ([], [])
        for item, name in zip(self._items, self._names, strict=True):
            items, names = taken if picked(name) else kept
            items.append(item)
            names.append(name)
        return Headers._of(*kept), Headers._of(*taken)

    def copy(self) -> Headers:
        """An independent copy."""
        return Headers._of(list(self._items), list(self._names))

    def without_hop_by_hop(
        self, *, keep: frozenset[str] = frozenset(), also: frozenset[str] = frozenset()
    ) -> Headers:
        """A copy without hop-by-hop lines, including those ``Connection`` names, except the
        lowercase names in ``keep``; nor the lines of the lowercase names in ``also``."""
        if "connection" in self._names:
            named = {
                token.strip().lower()
                for value in self.get_all("connection")
                for token in value.split(",")
                if token.strip()
            }
            drop = (HOP_BY_HOP | named) - keep
        else:
            drop = HOP_BY_HOP - keep if keep else HOP_BY_HOP
        if also:
            drop = drop | also
        if drop.isdisjoint(self._names):
            return self.copy()
        pairs = [(i, n) for i, n in zip(self._items, self._names, strict=True) if n not in drop]
        return Headers._of([i for i, _ in pairs], [n for _, n in pairs])

    def chunked(self) -> bool:
        """Whether the last transfer coding is ``chunked``: the body is framed by chunks, and
        a ``Content-Length`` beside it means nothing (RFC 9112 §6.1, §6.3)."""
        if "transfer-encoding" not in self._names:
            return False
        codings = ",".join(self.get_all("transfer-encoding"))
        return codings.rsplit(",", 1)[-1].strip().lower() == "chunked"


@dataclass
class EdgeRequest:
    """A viewer's request as it reaches the edge, or a request on its way to an origin.

    ``uri`` is the path without the query; ``querystring`` has no leading ``?``. Both are kept as
    received (percent-encoding intact), as CloudFront hands them to functions.
    """

    method: str
    uri: str
    querystring: str = ""
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    client_ip: str = "127.0.0.1"
    http_version: str = "1.1"
    scheme: str = "http"
    local_port: int = 0
    stream: BodyStream | None = None

    async def read(self) -> bytes:
        """The whole body, buffering the stream (once) when there is one."""
        if self.stream is not None:
            stream, self.stream = self.stream, None
            self.body = await _drain(stream)
        return self.body

    @property
    def target(self) -> str:
        """The request target: ``uri`` plus ``?querystring`` when there is one."""
        return f"{self.uri}?{self.querystring}" if self.querystring else self.uri


@dataclass
class EdgeResponse:
    """A response on its way to the viewer (or from an origin)."""

    status: int
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    reason: str = ""
    stream: BodyStream | None = None

    def __post_init__(self) -> None:
        if not self.reason:
            self.reason = reason_phrase(self.status)

    async def read(self) -> bytes:
        """The whole body, buffering the stream (once) when there is one."""
        if self.stream is not None:
            stream, self.stream = self.stream, None
            self.body = await _drain(stream)
        return self.body


def reason_phrase(status: int) -> str:
    """The standard reason phrase for ``status``, or an empty string when it has none."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
