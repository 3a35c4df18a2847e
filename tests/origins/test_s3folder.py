"""A local folder served as an S3 bucket, through OriginFetcher and S3Folder."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import AsyncIterator
from email.utils import formatdate
from pathlib import Path

import pytest
import pytest_asyncio

from edgesim.exceptions import IncompleteBodyError
from edgesim.http import EdgeRequest, EdgeResponse, Headers
from edgesim.origins.fetcher import OriginFetcher
from edgesim.origins.s3folder import S3Folder
from edgesim.origins.targets import OriginTarget

pytestmark = pytest.mark.asyncio(loop_scope="module")

PAYLOAD = os.urandom(256 * 1024)
MTIME = 1_700_000_000


@pytest.fixture
def bucket(tmp_path: Path) -> Path:
    root = tmp_path / "bucket"
    (root / "dir").mkdir(parents=True)
    (root / "site").mkdir()
    files = {
        "index.html": b"<h1>hi</h1>",
        "style.css": b"body{}",
        "data.json": b"{}",
        "edge.png": PAYLOAD,
        "README": b"no extension",
        "a b.txt": b"spaced",
        "caf\u00e9.txt": b"accent",
        "digits.txt": b"0123456789",
        "empty.txt": b"",
        "dir/nested.txt": b"nested",
        "site/page.html": b"under the origin path",
    }
    for name, content in files.items():
        path = root / name
        path.write_bytes(content)
        os.utime(path, (MTIME, MTIME))
    (tmp_path / "secret.txt").write_bytes(b"outside the bucket")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "x.txt").write_bytes(b"outside too")
    (root / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (root / "leakdir").symlink_to(tmp_path / "outside")
    (root / "alias.json").symlink_to(root / "digits.txt")
    return root


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fetcher() -> AsyncIterator[OriginFetcher]:
    # One for the module: each test's bucket is a folder of its own, and building a fetcher
    # builds its TLS context (~50 ms), which no S3 folder uses.
    fetcher = OriginFetcher()
    yield fetcher
    await fetcher.aclose()


async def get(
    fetcher: OriginFetcher,
    root: Path,
    uri: str,
    headers: list[tuple[str, str]] | None = None,
    *,
    method: str = "GET",
    path: str = "",
) -> EdgeResponse:
    target = OriginTarget(
        kind="s3", domain_name="bucket.s3.amazonaws.com", path=path, local_root=root
    )
    lines = [("Host", "bucket.s3.amazonaws.com"), *(headers or [])]
    response = await fetcher.fetch(EdgeRequest(method, uri, "", Headers(lines)), target)
    await response.read()
    return response


def xml_field(response: EdgeResponse, name: str) -> str | None:
    found = re.search(rf"<{name}>(.*?)</{name}>", response.body.decode())
    return found.group(1) if found else None


@pytest.mark.parametrize(
    ("uri", "content_type"),
    [
        ("/index.html", "text/html"),
        ("/style.css", "text/css"),
        ("/data.json", "application/json"),
        ("/edge.png", "image/png"),
        ("/README", "binary/octet-stream"),
    ],
)
async def test_content_type_from_extension(fetcher, bucket, uri, content_type) -> None:
    response = await get(fetcher, bucket, uri)
    assert response.headers.get("Content-Type") == content_type


async def test_object_headers(fetcher, bucket) -> None:
    response = await get(fetcher, bucket, "/edge.png")
    assert response.status == 200
    assert response.body == PAYLOAD
    names = [k for k, _ in response.headers]
    assert names == [
        "x-amz-id-2", "x-amz-request-id", "Date", "Last-Modified", "ETag",
        "Accept-Ranges", "Content-Type", "Content-Length", "Server",
    ]  # fmt: skip
    assert response.headers.get("ETag") == f'"{hashlib.md5(PAYLOAD).hexdigest()}"'
    assert response.headers.get("Last-Modified") == formatdate(MTIME, usegmt=True)
    assert response.headers.get("Content-Length") == str(len(PAYLOAD))
    assert response.headers.get("Accept-Ranges") == "bytes"
    assert response.headers.get("Server") == "AmazonS3"
    request_id = response.headers.get("x-amz-request-id") or ""
    assert re.fullmatch(r"[0-9A-F]{16}", request_id)


async def test_request_ids_differ(fetcher, bucket) -> None:
    first = await get(fetcher, bucket, "/index.html")
    second = await get(fetcher, bucket, "/index.html")
    assert first.headers.get("x-amz-request-id") != second.headers.get("x-amz-request-id")


async def test_big_binary_file(fetcher, bucket) -> None:
    big = os.urandom(5 * 1024 * 1024)
    (bucket / "big.bin").write_bytes(big)
    response = await get(fetcher, bucket, "/big.bin")
    assert response.body == big
    assert response.headers.get("ETag") == f'"{hashlib.md5(big).hexdigest()}"'


async def _fetch_unread(bucket: Path, uri: str, headers: list[tuple[str, str]]) -> EdgeResponse:
    target = OriginTarget(kind="s3", domain_name="b", local_root=bucket)
    return await S3Folder().fetch(EdgeRequest("GET", uri, "", Headers(headers)), target)


async def test_an_object_streams_in_chunks(bucket) -> None:
    big = os.urandom(3 * 1024 * 1024 + 5)
    (bucket / "big.bin").write_bytes(big)
    response = await _fetch_unread(bucket, "/big.bin", [])
    assert response.stream is not None and response.body == b""
    chunks = [chunk async for chunk in response.stream]
    assert len(chunks) > 1
    assert max(map(len, chunks)) < len(big)
    assert b"".join(chunks) == big


async def test_a_range_streams_only_its_bytes(bucket) -> None:
    response = await _fetch_unread(bucket, "/edge.png", [("Range", "bytes=100-199999")])
    assert response.status == 206
    assert response.stream is not None
    assert b"".join([chunk async for chunk in response.stream]) == PAYLOAD[100:200000]


async def test_a_file_that_shrinks_while_streaming_ends_the_stream_short(bucket) -> None:
    big = os.urandom(2 * 1024 * 1024)
    (bucket / "big.bin").write_bytes(big)
    response = await _fetch_unread(bucket, "/big.bin", [])
    assert response.stream is not None
    (bucket / "big.bin").write_bytes(big[:1000])
    with pytest.raises(IncompleteBodyError):
        async for _ in response.stream:
            pass


async def test_a_stream_never_read_can_be_closed(bucket) -> None:
    response = await _fetch_unread(bucket, "/edge.png", [])
    assert response.stream is not None
    await response.stream.aclose()


async def test_head_same_headers_no_body(fetcher, bucket) -> None:
    full = await get(fetcher, bucket, "/edge.png")
    head = await get(fetcher, bucket, "/edge.png", method="HEAD")
    assert head.status == 200
    assert head.body == b""
    volatile = {"date", "x-amz-request-id", "x-amz-id-2"}
    assert [(k, v) for k, v in head.headers if k.lower() not in volatile] == [
        (k, v) for k, v in full.headers if k.lower() not in volatile
    ]


async def test_keys_are_percent_decoded(fetcher, bucket) -> None:
    assert (await get(fetcher, bucket, "/a%20b.txt")).body == b"spaced"
    assert (await get(fetcher, bucket, "/caf%C3%A9.txt")).body == b"accent"
    assert (await get(fetcher, bucket, "/dir%2Fnested.txt")).body == b"nested"


async def test_origin_path_is_part_of_the_key(fetcher, bucket) -> None:
    response = await get(fetcher, bucket, "/page.html", path="/site")
    assert response.body == b"under the origin path"


async def test_symlink_inside_the_bucket_is_served_under_its_own_name(fetcher, bucket) -> None:
    response = await get(fetcher, bucket, "/alias.json")
    assert response.body == b"0123456789"
    assert response.headers.get("Content-Type") == "application/json"


@pytest.mark.parametrize(
    "uri", ["/missing.txt", "/dir", "/dir/", "/index.html/", "/dir//nested.txt"]
)
async def test_missing_key_is_404_no_such_key(fetcher, bucket, uri) -> None:
    response = await get(fetcher, bucket, uri)
    assert response.status == 404
    assert response.headers.get("Content-Type") == "application/xml"
    assert response.headers.get("Server") == "AmazonS3"
    assert response.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Error>')
    assert xml_field(response, "Code") == "NoSuchKey"
    assert xml_field(response, "Message") == "The specified key does not exist."
    assert xml_field(response, "Key") == uri[1:]
    assert xml_field(response, "RequestId") == response.headers.get("x-amz-request-id")


async def test_missing_key_xml_escapes_the_key(fetcher, bucket) -> None:
    response = await get(fetcher, bucket, "/%3Cb%3E&.txt")
    assert xml_field(response, "Key") == "&lt;b&gt;&amp;.txt"


async def test_head_of_missing_key_has_no_body(fetcher, bucket) -> None:
    response = await get(fetcher, bucket, "/missing.txt", method="HEAD")
    assert (response.status, response.body) == (404, b"")


@pytest.mark.parametrize(
    "uri",
    [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/dir/%2E%2E/%2e%2e/secret.txt",
        "/dir/..%2F..%2Fsecret.txt",
        "/leak.txt",
        "/leakdir/x.txt",
        "/",
        "/with%00nul.txt",
    ],
)
async def test_escapes_and_the_bucket_root_are_403(fetcher, bucket, uri) -> None:
    response = await get(fetcher, bucket, uri)
    assert response.status == 403
    assert xml_field(response, "Code") == "AccessDenied"
    assert xml_field(response, "Message") == "Access Denied"
    assert b"outside" not in response.body


@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE", "PATCH", "OPTIONS"])
async def test_writes_and_other_methods_are_403(fetcher, bucket, method) -> None:
    response = await get(fetcher, bucket, "/index.html", method=method)
    assert response.status == 403
    assert xml_field(response, "Code") == "AccessDenied"


# -- conditional requests --------------------------------------------------------------------


async def etag_of(fetcher: OriginFetcher, bucket: Path, uri: str) -> str:
    return (await get(fetcher, bucket, uri, method="HEAD")).headers.get("ETag") or ""


@pytest.mark.parametrize("form", ["{}", "W/{}", '"other", {}', "*"])
async def test_if_none_match_hit_is_304(fetcher, bucket, form) -> None:
    etag = await etag_of(fetcher, bucket, "/index.html")
    response = await get(fetcher, bucket, "/index.html", [("If-None-Match", form.format(etag))])
    assert response.status == 304
    assert response.body == b""
    assert response.headers.get("ETag") == etag
    assert "Content-Length" not in response.headers


async def test_if_none_match_miss_is_200(fetcher, bucket) -> None:
    response = await get(fetcher, bucket, "/index.html", [("If-None-Match", '"nope"')])
    assert response.status == 200


async def test_if_modified_since(fetcher, bucket) -> None:
    same = formatdate(MTIME, usegmt=True)
    earlier = formatdate(MTIME - 60, usegmt=True)
    assert (await get(fetcher, bucket, "/index.html", [("If-Modified-Since", same)])).status == 304
    response = await get(fetcher, bucket, "/index.html", [("If-Modified-Since", earlier)])
    assert response.status == 200
    invalid = await get(fetcher, bucket, "/index.html", [("If-Modified-Since", "yesterday")])
    assert invalid.status == 200


async def test_if_none_match_outranks_if_modified_since(fetcher, bucket) -> None:
    lines = [("If-None-Match", '"nope"'), ("If-Modified-Since", formatdate(MTIME, usegmt=True))]
    assert (await get(fetcher, bucket, "/index.html", lines)).status == 200


async def test_if_match_mismatch_is_412(fetcher, bucket) -> None:
    response = await get(fetcher, bucket, "/index.html", [("If-Match", '"nope"')])
    assert response.status == 412
    assert xml_field(response, "Code") == "PreconditionFailed"
    assert xml_field(response, "Condition") == "If-Match"
    etag = await etag_of(fetcher, bucket, "/index.html")
    assert (await get(fetcher, bucket, "/index.html", [("If-Match", etag)])).status == 200
    weak = await get(fetcher, bucket, "/index.html", [("If-Match", f"W/{etag}")])
    assert weak.status == 412


async def test_if_unmodified_since(fetcher, bucket) -> None:
    earlier = formatdate(MTIME - 60, usegmt=True)
    response = await get(fetcher, bucket, "/index.html", [("If-Unmodified-Since", earlier)])
    assert (response.status, xml_field(response, "Condition")) == (412, "If-Unmodified-Since")
    same = formatdate(MTIME, usegmt=True)
    assert (
        await get(fetcher, bucket, "/index.html", [("If-Unmodified-Since", same)])
    ).status == 200


async def test_true_if_match_outranks_false_if_unmodified_since(fetcher, bucket) -> None:
    etag = await etag_of(fetcher, bucket, "/index.html")
    lines = [("If-Match", etag), ("If-Unmodified-Since", formatdate(MTIME - 60, usegmt=True))]
    assert (await get(fetcher, bucket, "/index.html", lines)).status == 200


# -- ranges ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "body", "content_range"),
    [
        ("bytes=0-3", b"0123", "bytes 0-3/10"),
        ("bytes=7-", b"789", "bytes 7-9/10"),
        ("bytes=-3", b"789", "bytes 7-9/10"),
        ("bytes=8-100", b"89", "bytes 8-9/10"),
        ("bytes=-100", b"0123456789", "bytes 0-9/10"),
    ],
)
async def test_range_is_206(fetcher, bucket, spec, body, content_range) -> None:
    response = await get(fetcher, bucket, "/digits.txt", [("Range", spec)])
    assert response.status == 206
    assert response.body == body
    assert response.headers.get("Content-Range") == content_range
    assert response.headers.get("Content-Length") == str(len(body))


@pytest.mark.parametrize("spec", ["bytes=10-", "bytes=10-20", "bytes=-0"])
async def test_unsatisfiable_range_is_416(fetcher, bucket, spec) -> None:
    response = await get(fetcher, bucket, "/digits.txt", [("Range", spec)])
    assert response.status == 416
    assert xml_field(response, "Code") == "InvalidRange"
    assert xml_field(response, "ActualObjectSize") == "10"
    assert xml_field(response, "RangeRequested") == spec


async def test_range_of_an_empty_object_is_416(fetcher, bucket) -> None:
    response = await get(fetcher, bucket, "/empty.txt", [("Range", "bytes=0-")])
    assert response.status == 416


@pytest.mark.parametrize("spec", ["bytes=0-1,4-5", "bytes=5-2", "bytes=-", "lines=0-1", "bytes=x-"])
async def test_ignored_range_gives_the_whole_object(fetcher, bucket, spec) -> None:
    response = await get(fetcher, bucket, "/digits.txt", [("Range", spec)])
    assert (response.status, response.body) == (200, b"0123456789")
    assert "Content-Range" not in response.headers


async def test_if_range(fetcher, bucket) -> None:
    etag = await etag_of(fetcher, bucket, "/digits.txt")
    fresh = await get(fetcher, bucket, "/digits.txt", [("Range", "bytes=0-0"), ("If-Range", etag)])
    stale = await get(
        fetcher, bucket, "/digits.txt", [("Range", "bytes=0-0"), ("If-Range", '"old"')]
    )
    assert (fresh.status, fresh.body) == (206, b"0")
    assert (stale.status, stale.body) == (200, b"0123456789")


async def test_range_on_binary_file(fetcher, bucket) -> None:
    response = await get(fetcher, bucket, "/edge.png", [("Range", "bytes=1000-1999")])
    assert response.body == PAYLOAD[1000:2000]


# -- the ETag cache --------------------------------------------------------------------------


async def test_etag_is_cached_by_path_mtime_and_size(bucket) -> None:
    folder = S3Folder()
    target = OriginTarget(kind="s3", domain_name="b", local_root=bucket)
    path = bucket / "digits.txt"

    async def etag() -> str | None:
        response = await folder.fetch(EdgeRequest("HEAD", "/digits.txt"), target)
        return response.headers.get("ETag")

    first = await etag()
    # Same size and mtime: the stored hash answers, proving the file was not hashed again.
    path.write_bytes(b"abcdefghij")
    os.utime(path, (MTIME, MTIME))
    assert await etag() == first
    os.utime(path, (MTIME + 1, MTIME + 1))
    assert await etag() == f'"{hashlib.md5(b"abcdefghij").hexdigest()}"'


async def test_folder_needs_a_local_root() -> None:
    with pytest.raises(ValueError):
        await S3Folder().fetch(EdgeRequest("GET", "/x"), OriginTarget(kind="s3", domain_name="b"))
