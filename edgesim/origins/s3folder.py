"""A local folder served the way S3's REST endpoint serves a bucket to CloudFront.

The point is that an origin-response function, the cache and the viewer see what a real bucket
would send: S3's header set (``ETag`` as the MD5 of a single-part upload, ``Last-Modified``,
``Accept-Ranges``, ``Server: AmazonS3``, the ``x-amz-*`` ids), its conditional and range
answers (304, 412, 206, 416) and its XML error documents.

The folder stands for a bucket that CloudFront reads with an identity allowed to get objects
and list the bucket, but not to write: a missing key is a 404 ``NoSuchKey``, a write is a 403
``AccessDenied``, and so is the bucket root (edgesim emulates no listing). Keys are the
percent-decoded request path; a key that could only be served by leaving the folder (a ``..``
segment, a symlink pointing outside) is refused with 403. Content types are guessed from the
file extension, as ``aws s3 sync`` does when it uploads, and text types carry no charset.
The query string is ignored: S3 answers a plain GET for it.

An object's bytes stream from the file in chunks as the viewer takes them, so a large object
never sits in memory whole; a file that shrinks while it is being sent ends the stream with
:class:`~edgesim.exceptions.IncompleteBodyError`, as a cut connection to S3 would.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import mimetypes
import os
import secrets
import stat
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote
from xml.sax.saxutils import escape

from edgesim.cache.conditional import etag_listed, http_date, parse_range
from edgesim.exceptions import IncompleteBodyError
from edgesim.http import EdgeRequest, EdgeResponse, Headers
from edgesim.origins.targets import OriginTarget
from edgesim.types import Clock, SystemClock

__all__ = ["S3Folder"]

# S3's own default for an object stored without a Content-Type.
DEFAULT_CONTENT_TYPE = "binary/octet-stream"
_CHUNK = 1 << 20
# Each streamed chunk is one hop to a worker thread; this size keeps the hops few and memory low.
_STREAM_CHUNK = 256 * 1024
# A private table built from Python's defaults only, so the answer does not depend on the
# host's /etc/mime.types.
_MIME = mimetypes.MimeTypes()
_NOT_MODIFIED = "304"


@dataclass(frozen=True)
class _Object:
    """A file that stands for an S3 object."""

    key: str
    path: str
    size: int
    mtime: int
    etag: str


@dataclass(frozen=True)
class _Refusal:
    """Why a key cannot be served: S3's error code, status and message."""

    status: int
    code: str
    message: str


_NO_SUCH_KEY = _Refusal(404, "NoSuchKey", "The specified key does not exist.")
_ACCESS_DENIED = _Refusal(403, "AccessDenied", "Access Denied")


class _EtagCache:
    """MD5 ETags by file identity, so a large object is hashed once, not on every request."""

    def __init__(self, entries: int) -> None:
        self._entries = entries
        self._items: OrderedDict[tuple[str, int, int, int], str] = OrderedDict()
        self._lock = threading.Lock()

    def etag(self, path: str, st: os.stat_result) -> str:
        key = (path, st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        digest = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        value = f'"{digest.hexdigest()}"'
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._entries:
                self._items.popitem(last=False)
        return value


class S3Folder:
    """Answers requests for an S3 origin whose ``local_root`` is a folder on this machine."""

    def __init__(self, *, clock: Clock | None = None, etag_cache_entries: int = 4096) -> None:
        self._clock: Clock = clock or SystemClock()
        self._etags = _EtagCache(etag_cache_entries)

    async def fetch(self, request: EdgeRequest, target: OriginTarget) -> EdgeResponse:
        """Serve ``target.local_root`` + ``target.path`` + ``request.uri`` as S3 would."""
        if target.local_root is None:
            raise ValueError("an S3 folder origin needs local_root")
        ids = _request_ids()
        head = request.method == "HEAD"
        if request.method not in ("GET", "HEAD"):
            return self._error(ids, _ACCESS_DENIED, head=False)
        # S3 keys are the decoded path; surrogateescape maps undecodable bytes to the same
        # bytes in file names, which is how the OS spells them.
        key = unquote(target.path + request.uri, errors="surrogateescape")
        key = key[1:] if key.startswith("/") else key
        found = await asyncio.to_thread(self._locate, target.local_root, key)
        if isinstance(found, _Refusal):
            extra = [("Key", key)] if found is _NO_SUCH_KEY else []
            return self._error(ids, found, head=head, extra=extra)
        return await self._serve(request, found, ids, head=head)

    def _locate(self, root: Path, key: str) -> _Object | _Refusal:
        if key == "":
            return _ACCESS_DENIED
        segments = key.split("/")
        if ".." in segments or "\x00" in key:
            return _ACCESS_DENIED
        if any(s in ("", ".") for s in segments):
            # S3 keeps such keys literally; no file in the folder can carry one.
            return _NO_SUCH_KEY
        base = os.path.realpath(root)
        path = os.path.realpath(os.path.join(base, *segments))
        if os.path.commonpath([base, path]) != base:
            return _ACCESS_DENIED
        try:
            st = os.stat(path)
            if not stat.S_ISREG(st.st_mode):
                return _NO_SUCH_KEY
            etag = self._etags.etag(path, st)
            return _Object(key, path, st.st_size, int(st.st_mtime), etag)
        except (FileNotFoundError, NotADirectoryError):
            return _NO_SUCH_KEY
        except OSError:
            return _ACCESS_DENIED

    async def _serve(
        self, request: EdgeRequest, obj: _Object, ids: tuple[str, str], *, head: bool
    ) -> EdgeResponse:
        last_modified = formatdate(obj.mtime, usegmt=True)
        common = [
            ("x-amz-id-2", ids[1]),
            ("x-amz-request-id", ids[0]),
            ("Date", self._date()),
            ("Last-Modified", last_modified),
            ("ETag", obj.etag),
        ]
        failed = _precondition_failure(request.headers, obj)
        if failed == _NOT_MODIFIED:
            return EdgeResponse(304, Headers([*common, ("Server", "AmazonS3")]))
        if failed is not None:
            refusal = _Refusal(
                412,
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
            )
            return self._error(ids, refusal, head=head, extra=[("Condition", failed)])

        start, length, status = 0, obj.size, 200
        range_header = request.headers.get("range")
        if range_header is not None and _if_range_holds(request.headers, obj, last_modified):
            parsed = parse_range(range_header, obj.size)
            if isinstance(parsed, str):
                refusal = _Refusal(416, "InvalidRange", "The requested range is not satisfiable")
                extra = [("RangeRequested", range_header), ("ActualObjectSize", str(obj.size))]
                return self._error(ids, refusal, head=head, extra=extra)
            if parsed is not None:
                start, end = parsed
                length, status = end - start + 1, 206
                common.append(("Content-Range", f"bytes {start}-{end}/{obj.size}"))

        headers = Headers(
            [
                *common,
                ("Accept-Ranges", "bytes"),
                ("Content-Type", _content_type(obj.key)),
                ("Content-Length", str(length)),
                ("Server", "AmazonS3"),
            ]
        )
        if head or length == 0:
            return EdgeResponse(status, headers)
        return EdgeResponse(status, headers, stream=_FileBody(obj.path, start, length))

    def _error(
        self,
        ids: tuple[str, str],
        refusal: _Refusal,
        *,
        head: bool,
        extra: list[tuple[str, str]] | None = None,
    ) -> EdgeResponse:
        fields = [("Code", refusal.code), ("Message", refusal.message), *(extra or [])]
        fields += [("RequestId", ids[0]), ("HostId", ids[1])]
        inner = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in fields)
        # Keys may hold undecodable bytes (kept as surrogates); XML wants text.
        xml = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{inner}</Error>'
        body = xml.encode("utf-8", "replace")
        headers = Headers(
            [
                ("x-amz-request-id", ids[0]),
                ("x-amz-id-2", ids[1]),
                ("Content-Type", "application/xml"),
                ("Content-Length", str(len(body))),
                ("Date", self._date()),
                ("Server", "AmazonS3"),
            ]
        )
        return EdgeResponse(refusal.status, headers, b"" if head else body)

    def _date(self) -> str:
        return formatdate(self._clock(), usegmt=True)


def _request_ids() -> tuple[str, str]:
    """A fresh ``x-amz-request-id`` and ``x-amz-id-2`` in S3's shapes."""
    return secrets.token_hex(8).upper(), base64.b64encode(secrets.token_bytes(57)).decode()


def _content_type(key: str) -> str:
    # By the key's name, not a symlink target's. A leading "/" keeps guess_type from reading
    # "name:rest" as a URL scheme.
    guessed, _ = _MIME.guess_type("/" + key.rsplit("/", 1)[-1])
    return guessed or DEFAULT_CONTENT_TYPE


class _FileBody:
    """``length`` bytes of a file from ``start``, read chunk by chunk as they are asked for.

    The file is opened on the first read, so a stream that is never iterated holds nothing open.
    """

    def __init__(self, path: str, start: int, length: int) -> None:
        self._path = path
        self._start = start
        self._length = length
        self._file: BinaryIO | None = None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._relay()

    async def _relay(self) -> AsyncIterator[bytes]:
        left = self._length
        try:
            self._file = await asyncio.to_thread(_open_at, self._path, self._start)
            while left > 0:
                chunk = await asyncio.to_thread(self._file.read, min(left, _STREAM_CHUNK))
                if not chunk:
                    raise IncompleteBodyError(
                        f"{self._path} ended {left} bytes before its Content-Length"
                    )
                left -= len(chunk)
                yield chunk
        except OSError as exc:
            raise IncompleteBodyError(f"reading {self._path} failed: {exc}") from exc
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()


def _open_at(path: str, start: int) -> BinaryIO:
    # Kept open past this call on purpose: _FileBody.aclose closes it.
    file = open(path, "rb")
    file.seek(start)
    return file


def _precondition_failure(headers: Headers, obj: _Object) -> str | None:
    """``_NOT_MODIFIED`` (304), the failed 412 condition's name, or None; RFC 9110 §13.2.2 order.

    S3 documents the same precedence: a true ``If-Match`` outranks a false
    ``If-Unmodified-Since``, and a matching ``If-None-Match`` gives 304 whatever
    ``If-Modified-Since`` says.
    """
    if_match = headers.get("if-match")
    if if_match is not None:
        if not etag_listed(if_match, obj.etag, weak=False):
            return "If-Match"
    else:
        unmodified_since = http_date(headers.get("if-unmodified-since"))
        if unmodified_since is not None and obj.mtime > unmodified_since:
            return "If-Unmodified-Since"
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        return _NOT_MODIFIED if etag_listed(if_none_match, obj.etag, weak=True) else None
    modified_since = http_date(headers.get("if-modified-since"))
    if modified_since is not None and obj.mtime <= modified_since:
        return _NOT_MODIFIED
    return None


def _if_range_holds(headers: Headers, obj: _Object, last_modified: str) -> bool:
    """False when an ``If-Range`` validator is stale, which turns the range into a full GET."""
    if_range = headers.get("if-range")
    if if_range is None:
        return True
    value = if_range.strip()
    return value == obj.etag or value == last_modified
