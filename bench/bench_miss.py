"""Cache misses (CachingDisabled, HTTP origin) against cache hits of the same ``edgesim serve``.

Run from the project root::

    .venv/bin/python bench/bench_miss.py [--quick] [--rounds 5] [--seconds 2]

One ``edgesim serve`` process serves two behaviors in front of one HTTP origin (an aiohttp
server in its own process answering 1 KB): ``/miss/*`` under CachingDisabled, so every request
goes to the origin, and ``*`` under CachingOptimized, so every request after the first is a
``Hit``. The two are loaded in interleaved rounds at 1 and at 32 connections. What a miss costs
is the proxy's CPU per request (the origin's CPU is its own process's); the target is at most
3x a hit's, at both concurrencies, and the origin side must not degrade with concurrency.
"""

from __future__ import annotations

import time

import _harness as h

MISS_TARGET = 3.0


def config(origin: str) -> str:
    return (
        f'origins: {{origin: {{url: "{origin}"}}}}\n'
        "behaviors:\n"
        '  - {path_pattern: "/miss/*", origin: origin, cache_policy: CachingDisabled}\n'
        '  - {path_pattern: "*", origin: origin, cache_policy: CachingOptimized}\n'
    )


def miss_rows(options: h.Options) -> list[h.Row]:
    target = f"miss CPU/req <= {MISS_TARGET:g}x a hit's"
    out: list[h.Row] = []
    with h.Lab() as lab:
        origin = lab.plain("origin")
        edge = lab.edgesim("edgesim miss", config(origin.url))
        miss_url, hit_url = edge.url + "/miss/page.html", edge.url + "/page.html"
        h.fetch(hit_url)
        h.expect(hit_url, x_cache="Hit")
        h.expect(miss_url, x_cache="Miss")
        per_miss: dict[int, float] = {}
        for connections in (1, 32):
            name = f"miss, no functions (c{connections})"
            figures = h.interleave(
                [
                    h.Side("miss", edge, miss_url, connections),
                    h.Side("hit", edge, hit_url, connections),
                ],
                options,
            )
            failed = h.not_a_result(name, target, *figures)
            if failed:
                out.append(failed)
                continue
            miss, hit = figures
            cost = h.cpu_ratio(miss, hit, main_only=True)
            per_miss[connections] = miss.main_us
            note = ""
            if connections == 32 and 1 in per_miss:
                note = f"; CPU/miss at c32 {h.fmt_ratio(per_miss[32] / per_miss[1])} of c1's"
            out.append(
                h.Row(
                    name,
                    miss.text(main_only=True),
                    f"hits of the same process: {hit.text(main_only=True)}",
                    f"CPU/req {h.fmt_ratio(cost)}; req/s "
                    f"{h.fmt_ratio(h.rps_ratio(miss, hit))}{note}",
                    target,
                    h.verdict(cost <= MISS_TARGET),
                )
            )
    return out


def rows(options: h.Options) -> list[h.Row]:
    with h.section("miss"):
        return h.guarded("miss, no functions", f"<= {MISS_TARGET:g}x", lambda: miss_rows(options))


def main() -> None:
    options = h.options(h.parser(__doc__.splitlines()[0]).parse_args())
    started = time.perf_counter()
    print(h.report("edgesim cache misses", rows(options), started, options))


if __name__ == "__main__":
    main()
