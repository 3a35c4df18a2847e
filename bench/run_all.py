"""Every benchmark of edgesim, one markdown table of ratios (what ``make bench`` runs).

Run from the project root::

    .venv/bin/python bench/run_all.py [--quick] [--rounds 5] [--seconds 2]

Each row puts edgesim beside a baseline measured in the same run, in interleaved rounds, with
the target its ratio should meet; see each bench_*.py for what a row measures. ``--quick``
gives a few seconds per row, for trying things out; the full run takes under 10 minutes.
"""

from __future__ import annotations

import time

import _harness as h
import bench_cache
import bench_functions
import bench_instructions
import bench_miss
import bench_runtime
import bench_scale


def main() -> None:
    options = h.options(h.parser(__doc__.splitlines()[0]).parse_args())
    started = time.perf_counter()
    rows: list[h.Row] = []
    rows += bench_cache.rows(options)
    rows += bench_miss.rows(options)
    rows += bench_functions.rows(options)
    rows += bench_runtime.rows(options)
    rows += bench_scale.rows(options)
    rows += bench_instructions.rows(options)
    print(h.report("edgesim benchmarks", rows, started, options))


if __name__ == "__main__":
    main()
