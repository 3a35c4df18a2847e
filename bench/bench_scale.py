"""Cache hits among many cached objects, and what an object costs in memory, same run.

Run from the project root::

    .venv/bin/python bench/bench_scale.py [--quick] [--rounds 5] [--seconds 2]

Two ``edgesim serve`` processes with the same distribution (an S3-style folder origin, every
query string in the cache key, so ``/obj.html?n=K`` are distinct 1 KB objects) and a cache bound
large enough never to evict: the baseline holds 1,000 objects, the other is filled to 10,000,
then 100,000 (through the proxy, by ``wrk``: misses until the admin API counts them all). At
each size the two are loaded in interleaved rounds, each request a ``Hit`` on a random object
of its process. Targets: the CPU per hit stays flat (at most 1.2x the 1,000-object process's),
and the cache's byte bound counts what an object costs: the bytes it counts per object (admin
API ``/cache``) within 25% of what an object adds to the proxy's resident memory.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from pathlib import Path

import _harness as h

FLAT_TARGET = 1.2
BOUND_LOW, BOUND_HIGH = 0.8, 1.25
CONFIG = """\
origins: {site: {s3: "."}}
behaviors:
  - path_pattern: "*"
    origin: site
    cache_policy: {min_ttl: 0, default_ttl: 86400, max_ttl: 31536000, query_strings: all}
"""
FILL = """\
local n = 0
request = function()
  local i = {first} + (n % {count})
  n = n + 1
  return wrk.format(nil, "/obj.html?n=" .. i)
end
"""
RANDOM = """\
request = function()
  return wrk.format(nil, "/obj.html?n=" .. math.random(1, {count}))
end
"""


def objects(server: h.Server) -> tuple[int, int]:
    """Objects in the cache and the bytes its bound counts for them."""
    stats = h.admin_cache(server)
    count, size = stats["objects"], stats["size_bytes"]
    assert isinstance(count, int) and isinstance(size, int)
    return count, size


def fill(lab: h.Lab, server: h.Server, first: int, count: int) -> None:
    """Request ``/obj.html?n=first`` ... ``n=first+count-1`` until all are cached."""
    script = lab.dir / f"fill-{server.pid}-{first}.lua"
    script.write_text(FILL.format(first=first, count=count))
    goal = objects(server)[0] + count
    argv = h.wrk_argv(server.url + "/", 3600, 16, script)
    argv[1] = "-t1"  # one thread walks the keys once; two would both walk them
    wrk = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + max(60.0, count / 50)
        while objects(server)[0] < goal:
            if wrk.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"filling the cache stopped at {objects(server)[0]} of {goal}")
            time.sleep(0.25)
    finally:
        wrk.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            out, _ = wrk.communicate(timeout=10)
        if wrk.poll() is None:
            wrk.kill()
            out, _ = wrk.communicate()
    load = h.parse_wrk(out)
    if load.non_2xx or load.socket_errors:
        raise RuntimeError(f"filling: {load.non_2xx} non-2xx, {load.socket_errors} socket errors")


def random_hits(lab: h.Lab, count: int) -> Path:
    script = lab.dir / f"random-{count}.lua"
    script.write_text(RANDOM.format(count=count))
    return script


def scale_rows(options: h.Options) -> list[h.Row]:
    base_count = 1000
    sizes = [2000, 5000] if options.quick else [10_000, 100_000]
    args = ("--cache-size", "8GiB")
    files = {"obj.html": h.BODY}
    out: list[h.Row] = []
    with h.Lab() as lab:
        base = lab.edgesim("edgesim 1k objects", CONFIG, args=args, files=files)
        grown = lab.edgesim("edgesim many objects", CONFIG, args=args, files=files)
        for server in (base, grown):
            h.fetch(server.url + "/obj.html?n=0")
            h.expect(server.url + "/obj.html?n=0", x_cache="Hit")
        fill(lab, base, 1, base_count)
        base_side = h.Side(f"{base_count:,} objects", base, base.url, 32, random_hits(lab, 1000))
        before_rss, (before_objects, _) = grown.rss(), objects(grown)
        filled = 0
        for size in sizes:
            with h.section(f"filling the cache to {size:,} objects"):
                fill(lab, grown, filled + 1, size - filled)
            filled = size
            name = f"cache hit among {size:,} cached objects (c32)"
            target = f"CPU/hit <= {FLAT_TARGET:g}x at 1,000 (flat)"
            side = h.Side(f"{size:,} objects", grown, grown.url, 32, random_hits(lab, size))
            figures = h.interleave([side, base_side], options)
            failed = h.not_a_result(name, target, *figures)
            if failed:
                out.append(failed)
                continue
            ours, theirs = figures
            cost = h.cpu_ratio(ours, theirs)
            out.append(
                h.Row(
                    name,
                    ours.text(),
                    f"1,000 cached objects (another process): {theirs.text()}",
                    f"CPU/hit {h.fmt_ratio(cost)}; req/s {h.fmt_ratio(h.rps_ratio(ours, theirs))}",
                    target,
                    h.verdict(cost <= FLAT_TARGET),
                )
            )
        count, counted = objects(grown)
        added = count - before_objects
        per_object = (grown.rss() - before_rss) / added
        bound = counted / count
        share = bound / per_object
        out.append(
            h.Row(
                f"proxy RSS per cached 1 KB object ({count:,} objects)",
                f"{per_object / 1024:.2f} KiB/object "
                f"(RSS +{(grown.rss() - before_rss) / 2**20:.0f} MiB for {added:,} objects)",
                f"the byte bound counts {bound / 1024:.2f} KiB/object",
                f"counted/real {h.fmt_ratio(share)}",
                f"counted within {BOUND_LOW:g}-{BOUND_HIGH:g}x of real",
                h.verdict(BOUND_LOW <= share <= BOUND_HIGH),
            )
        )
    return out


def rows(options: h.Options) -> list[h.Row]:
    with h.section("scale"):
        return h.guarded("scale", f"<= {FLAT_TARGET:g}x", lambda: scale_rows(options))


def main() -> None:
    options = h.options(h.parser(__doc__.splitlines()[0]).parse_args())
    started = time.perf_counter()
    print(h.report("edgesim at scale", rows(options), started, options))


if __name__ == "__main__":
    main()
