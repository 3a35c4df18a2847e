"""Bodies streaming through the edge: proxy memory and time to first byte against the origin.

Run by hand from the project root::

    .venv/bin/python bench/bench_streaming.py [--size-mib 1024]
    .venv/bin/python bench/bench_streaming.py --upload [--uploads 4] [--upload-mib 100]

An origin in this process streams the body in 1 MiB chunks with a ``Content-Length`` (or, for
``--upload``, reads and discards what it is sent). ``edgesim serve`` runs as a subprocess on a
distribution with one ``CachingDisabled`` behavior in front of that origin, so its resident
memory can be sampled (psutil, every 50 ms) while the body goes through it. The client is httpx,
streaming and discarding the bytes.

The baseline is the same transfer straight to the origin, measured in the same run: the proxy's
time to first byte and throughput are given against it. Memory growth is the proxy's peak RSS
minus its RSS just before the transfer (after one small warm-up request); streaming keeps it
near the chunk sizes whatever the body size (target: under 64 MiB). Absolute figures depend on
the machine; the ratios and the growth are what to watch.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from aiohttp import web

from edgesim.tasks import spawn

MIB = 1024 * 1024
# One block, sent again and again: the origin's own memory stays flat too.
BLOCK = bytes(range(256)) * (MIB // 256)
GROWTH_TARGET_MIB = 64
SAMPLE_EVERY_S = 0.05


async def blob(request: web.Request) -> web.StreamResponse:
    """``/blob/SIZE``: SIZE bytes, in 1 MiB writes, announced by ``Content-Length``."""
    # In the path, not the query: CachingDisabled forwards no query string.
    size = int(request.match_info["size"])
    sent = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    sent.content_length = size
    await sent.prepare(request)
    left = size
    while left > 0:
        piece = BLOCK if left >= len(BLOCK) else BLOCK[:left]
        await sent.write(piece)
        left -= len(piece)
    await sent.write_eof()
    return sent


async def sink(request: web.Request) -> web.Response:
    """Read the upload as it arrives, keep nothing, answer with the byte count."""
    received = 0
    async for chunk in request.content.iter_any():
        received += len(chunk)
    return web.Response(text=str(received))


async def start_origin() -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_get("/blob/{size}", blob)
    app.router.add_put("/upload", sink)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@dataclass
class Proxy:
    """``edgesim serve`` in a subprocess, with its viewer URL."""

    process: asyncio.subprocess.Process
    url: str
    drain: asyncio.Task[None]

    @property
    def pid(self) -> int:
        return self.process.pid

    async def stop(self) -> None:
        self.process.terminate()
        await self.process.wait()
        self.drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.drain


async def start_proxy(origin: str, folder: Path) -> Proxy:
    config = folder / "bench.yaml"
    config.write_text(
        f'origins: {{origin: {{url: "{origin}"}}}}\n'
        "behaviors:\n"
        '  - {path_pattern: "*", origin: origin, cache_policy: CachingDisabled,\n'
        "     allowed_methods: [GET, HEAD, OPTIONS, PUT, PATCH, POST, DELETE]}\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edgesim", "serve", "--port", "0", "--admin-port", "0", str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    banner = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
    if " on http://" not in banner:
        process.kill()
        raise SystemExit(f"edgesim serve did not start: {banner!r}")
    url = banner.split(" on ")[1].strip().rstrip("/")
    # The access log goes to stdout; reading it keeps the pipe from filling up.
    drain = spawn(_discard(process.stdout), name="bench-proxy-stdout")
    return Proxy(process, url, drain)


async def _discard(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


class RssSampler:
    """The peak resident memory of a process, sampled in the background."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self.peak = self.rss()
        self._task: asyncio.Task[None] | None = None

    def rss(self) -> int:
        return int(self._process.memory_info().rss)

    async def __aenter__(self) -> RssSampler:
        self.peak = self.rss()
        self._task = spawn(self._sample(), name="bench-rss-sampler")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.peak = max(self.peak, self.rss())

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.rss())
            await asyncio.sleep(SAMPLE_EVERY_S)


@dataclass
class Transfer:
    """One download or a batch of uploads: bytes moved, first byte and total time (s)."""

    received: int
    first_byte: float
    total: float

    @property
    def mib_per_s(self) -> float:
        return self.received / MIB / self.total


async def download(client: httpx.AsyncClient, url: str) -> Transfer:
    started = time.perf_counter()
    first_byte = 0.0
    received = 0
    async with client.stream("GET", url) as response:
        response.raise_for_status()
        async for chunk in response.aiter_raw():
            if not received:
                first_byte = time.perf_counter() - started
            received += len(chunk)
    return Transfer(received, first_byte, time.perf_counter() - started)


async def _upload_body(size: int) -> AsyncIterator[bytes]:
    left = size
    while left > 0:
        piece = BLOCK if left >= len(BLOCK) else BLOCK[:left]
        yield piece
        left -= len(piece)


async def uploads(client: httpx.AsyncClient, url: str, count: int, size: int) -> Transfer:
    """``count`` concurrent uploads of ``size`` bytes each; ``received`` is what the origin
    counted, summed."""

    async def one() -> int:
        response = await client.put(
            url, content=_upload_body(size), headers={"Content-Length": str(size)}
        )
        response.raise_for_status()
        return int(response.text)

    started = time.perf_counter()
    counted = await asyncio.gather(*(one() for _ in range(count)))
    return Transfer(sum(counted), 0.0, time.perf_counter() - started)


def _mib(size: float) -> str:
    return f"{size / MIB:8.1f} MiB"


def report_memory(before: int, peak: int) -> bool:
    growth = peak - before
    within = growth < GROWTH_TARGET_MIB * MIB
    print(f"proxy RSS before:           {_mib(before)}")
    print(f"proxy RSS peak:             {_mib(peak)}")
    verdict = "within" if within else "OVER"
    target = f"{GROWTH_TARGET_MIB} MiB target"
    print(f"proxy RSS growth:           {_mib(growth)}  ({verdict} the {target})")
    return within


async def bench_download(client: httpx.AsyncClient, origin: str, proxy: Proxy, size: int) -> bool:
    path = f"/blob/{size}"
    # Warm-ups, so neither side pays for its first connection (or the proxy for lazy imports).
    await download(client, origin + f"/blob/{MIB}")
    direct = await download(client, origin + path)
    await download(client, proxy.url + f"/blob/{MIB}")
    sampler = RssSampler(proxy.pid)
    before = sampler.rss()
    async with sampler:
        proxied = await download(client, proxy.url + path)
    print(f"download of {size / MIB:.0f} MiB, origin streaming 1 MiB writes with Content-Length")
    within = report_memory(before, sampler.peak)
    same = direct.received == size and proxied.received == size
    print(f"bytes received == sent:     {same} ({proxied.received} of {size} via the proxy)")
    print(
        f"time to first byte:         direct {direct.first_byte * 1000:8.2f} ms, "
        f"via proxy {proxied.first_byte * 1000:8.2f} ms, "
        f"ratio {proxied.first_byte / direct.first_byte:6.2f}"
    )
    print(
        f"first byte / whole body:    via proxy {proxied.first_byte / proxied.total:8.4f} "
        "(near 0: the viewer is served while the origin is still sending)"
    )
    print(
        f"throughput:                 direct {direct.mib_per_s:8.1f} MiB/s, "
        f"via proxy {proxied.mib_per_s:8.1f} MiB/s, "
        f"ratio {proxied.mib_per_s / direct.mib_per_s:6.2f}"
    )
    return same and within


async def bench_upload(
    client: httpx.AsyncClient, origin: str, proxy: Proxy, count: int, size: int
) -> bool:
    await uploads(client, origin + "/upload", 1, MIB)  # warm-ups, as for downloads
    direct = await uploads(client, origin + "/upload", count, size)
    await uploads(client, proxy.url + "/upload", 1, MIB)
    sampler = RssSampler(proxy.pid)
    before = sampler.rss()
    async with sampler:
        proxied = await uploads(client, proxy.url + "/upload", count, size)
    print(f"{count} concurrent uploads of {size / MIB:.0f} MiB each, with Content-Length")
    within = report_memory(before, sampler.peak)
    total = count * size
    same = direct.received == total and proxied.received == total
    print(f"bytes received == sent:     {same} ({proxied.received} of {total} via the proxy)")
    print(
        f"throughput:                 direct {direct.mib_per_s:8.1f} MiB/s, "
        f"via proxy {proxied.mib_per_s:8.1f} MiB/s, "
        f"ratio {proxied.mib_per_s / direct.mib_per_s:6.2f}"
    )
    return same and within


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="download size in MiB")
    parser.add_argument("--upload", action="store_true", help="measure concurrent uploads")
    parser.add_argument("--uploads", type=int, default=4, help="concurrent uploads")
    parser.add_argument("--upload-mib", type=int, default=100, help="size of each upload")
    args = parser.parse_args()

    origin_runner, origin = await start_origin()
    with tempfile.TemporaryDirectory() as tmp:
        proxy = await start_proxy(origin, Path(tmp))
        try:
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
            async with httpx.AsyncClient(timeout=300, limits=limits) as client:
                if args.upload:
                    ok = await bench_upload(
                        client, origin, proxy, args.uploads, args.upload_mib * MIB
                    )
                else:
                    ok = await bench_download(client, origin, proxy, args.size_mib * MIB)
        finally:
            await proxy.stop()
    await origin_runner.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
