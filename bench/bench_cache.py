"""Cache hits through ``edgesim serve`` against servers returning the same bytes, same run.

Run from the project root::

    .venv/bin/python bench/bench_cache.py [--quick] [--rounds 5] [--seconds 2]

``edgesim serve`` runs in its own process on a distribution with an S3-style folder origin under
CachingOptimized, so after the first request every request is a ``Hit`` (no functions). The
baselines, each in its own process and loaded by the same ``wrk -t2 -c32``, in interleaved
rounds:

- a plain aiohttp server answering every request with the same 1 KB body (the target: edgesim's
  hits at 0.6x its requests/s or better), on asyncio's loop; for reference, the same server on
  uvloop, which ``edgesim serve`` runs on by default, ``edgesim serve --loop asyncio``, and
  edgesim's front door without its pipeline (``_frontdoor.py``), which splits a hit's CPU between
  the two;
- nginx with ``proxy_cache`` in front of that aiohttp server, when nginx is installed
  (``apt-get install nginx-light``): what a C cache does with the same request, for reference;
- ``edgesim serve --workers auto`` against one process, when ``serve`` has ``--workers``.

CPU per request is the server's process tree, read from /proc before and after each round.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import _harness as h

HIT_TARGET = 0.6
CACHED = """\
origins: {site: {s3: "."}}
behaviors: [{path_pattern: "*", origin: site, cache_policy: CachingOptimized}]
"""
NGINX = """\
daemon off;
master_process on;
worker_processes 1;
{user}
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  proxy_cache_path {dir}/cache levels=1:2 keys_zone=bench:10m max_size=100m inactive=1d
                   use_temp_path=off;
  upstream origin {{ server {origin}; keepalive 16; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache bench;
      proxy_cache_valid 200 1d;
      add_header X-Cache $upstream_cache_status;
    }}
  }}
}}
"""


def edgesim_hits(
    lab: h.Lab,
    name: str = "edgesim hits",
    args: tuple[str, ...] = (),
    entry: tuple[str, ...] = ("-m", "edgesim"),
) -> h.Server:
    """``edgesim serve`` with ``/page.html`` cached (its URL is ``server.url + "/page.html"``)."""
    server = lab.edgesim(name, CACHED, args=args, files={"page.html": h.BODY}, entry=entry)
    h.warm(server.url + "/page.html")  # each process's Miss that stores it, then Hits only
    h.expect(server.url + "/page.html", x_cache="Hit")
    return server


def start_nginx(lab: h.Lab, origin: h.Server) -> h.Server:
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    if nginx is None:
        raise RuntimeError("nginx is not installed (apt-get install nginx-light)")
    folder = lab.dir / "nginx"
    folder.mkdir()
    port = h.free_port()
    user = "user root;" if os.geteuid() == 0 else ""
    config = NGINX.format(
        dir=folder, port=port, origin=origin.url.removeprefix("http://"), user=user
    )
    (folder / "nginx.conf").write_text(config)
    argv = [nginx, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", "stderr"]
    server = lab.start(h.Server("nginx proxy_cache", argv, workdir=lab.dir))
    server.url = f"http://127.0.0.1:{port}"
    server.wait_for_http(server.url + "/page.html")
    h.expect(server.url + "/page.html", x_cache="HIT")
    return server


def has_workers_option() -> bool:
    out = subprocess.run(
        [h.PYTHON, "-m", "edgesim", "serve", "--help"], capture_output=True, text=True, timeout=60
    )
    return "--workers" in out.stdout


def hit_rows(options: h.Options) -> list[h.Row]:
    name = "cache hit, no functions (c32)"
    target = f">= {HIT_TARGET}x plain aiohttp req/s"
    with h.Lab() as lab:
        edge = edgesim_hits(lab)
        on_asyncio = edgesim_hits(lab, "edgesim on asyncio", ("--loop", "asyncio"))
        front_door = edgesim_hits(lab, "front door alone", entry=(str(h.BENCH / "_frontdoor.py"),))
        plain = lab.plain()
        plain_uv = lab.plain("plain aiohttp on uvloop", uvloop=True)
        for server in (plain, plain_uv):
            h.expect(server.url + "/page.html")
        sides = [
            h.Side("edgesim", edge, edge.url + "/page.html"),
            h.Side("plain aiohttp", plain, plain.url + "/page.html"),
            h.Side("plain aiohttp on uvloop", plain_uv, plain_uv.url + "/page.html"),
            h.Side("edgesim --loop asyncio", on_asyncio, on_asyncio.url + "/page.html"),
            h.Side("front door alone", front_door, front_door.url + "/page.html"),
        ]
        nginx_note = ""
        try:
            nginx = start_nginx(lab, plain)
            sides.append(h.Side("nginx proxy_cache", nginx, nginx.url + "/page.html"))
        except Exception as error:  # nginx is an optional reference
            nginx_note = f"; nginx not measured: {str(error).splitlines()[0]}"
        figures = h.interleave(sides, options)
    failed = h.not_a_result(name, target, *figures)
    if failed:
        return [failed]
    ours, base, base_uv, ours_asyncio, door = figures[:5]
    ratio = h.rps_ratio(ours, base)
    baseline = (
        f"plain aiohttp: {base.text()}; for reference, on uvloop: {base_uv.text()} (edgesim at "
        f"{h.fmt_ratio(h.rps_ratio(ours, base_uv))} of it); edgesim `--loop asyncio`: "
        f"{ours_asyncio.text()} ({h.fmt_ratio(h.rps_ratio(ours_asyncio, base))} of plain); "
        f"edgesim's front door alone (`bench/_frontdoor.py`: the pipeline answered by a stored "
        f"result): {door.text()}"
    )
    if len(figures) > 5:
        fast = figures[5]
        baseline += (
            f"; nginx proxy_cache: {fast.text()} (edgesim at "
            f"{h.fmt_ratio(h.rps_ratio(ours, fast))} of it)"
        )
    return [
        h.Row(
            name,
            ours.text(),
            baseline + nginx_note,
            f"{h.fmt_ratio(ratio)} req/s; CPU/req {h.fmt_ratio(h.cpu_ratio(ours, base))}",
            target,
            h.verdict(ratio >= HIT_TARGET),
        )
    ]


def workers_rows(options: h.Options) -> list[h.Row]:
    name = "cache hit, `serve --workers auto` (c32)"
    target = f"reported against one process ({os.cpu_count()} cores)"
    if not has_workers_option():
        return [h.unmeasured(name, "`edgesim serve` has no --workers option yet", target)]
    with h.Lab() as lab:
        many = edgesim_hits(lab, "edgesim workers auto", ("--workers", "auto"))
        one = edgesim_hits(lab, "edgesim one process")
        figures = h.interleave(
            [
                h.Side("--workers auto", many, many.url + "/page.html"),
                h.Side("one process", one, one.url + "/page.html"),
            ],
            options,
        )
    failed = h.not_a_result(name, target, *figures)
    if failed:
        return [failed]
    ours, base = figures
    return [
        h.Row(
            name,
            ours.text(),
            f"one process: {base.text()}",
            f"{h.fmt_ratio(h.rps_ratio(ours, base))} req/s",
            target,
            h.NO_TARGET,
        )
    ]


def rows(options: h.Options) -> list[h.Row]:
    out: list[h.Row] = []
    with h.section("cache hit"):
        out += h.guarded("cache hit, no functions", f">= {HIT_TARGET}x", lambda: hit_rows(options))
    with h.section("--workers auto"):
        out += h.guarded("cache hit, --workers auto", h.NO_TARGET, lambda: workers_rows(options))
    return out


def main() -> None:
    options = h.options(h.parser(__doc__.splitlines()[0]).parse_args())
    started = time.perf_counter()
    print(h.report("edgesim cache hits", rows(options), started, options))


if __name__ == "__main__":
    main()
