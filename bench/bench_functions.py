"""Requests through Lambda@Edge functions in ``edgesim serve``, against baselines of the same run.

Run from the project root::

    .venv/bin/python bench/bench_functions.py [--quick] [--rounds 5] [--seconds 2]

Two rows, each loaded by ``wrk -t2 -c32`` in interleaved rounds after a warm-up that starts the
workers (cold starts are not measured here: see bench_runtime.py):

- JavaScript at viewer-request (a URI rewrite and a header) and viewer-response (two security
  headers) on a cached behavior (S3-style folder origin, CachingOptimized: every request a
  ``Hit`` between the two functions, each in its own worker process). The baseline is
  serverless-offline-edge-lambda 1.3.1 serving the same two files in one Node.js process (no
  isolation; it goes to its file origin on every request), installed from npm into this run's
  temporary folder, never into the project, and driven without the Serverless Framework (its
  ``BehaviorRouter`` with the framework's few fields it reads, its log lines off). If it cannot
  be installed or run, the row says why and compares with the 1,060 req/s recorded on this
  machine. Target: at least 5x its requests/s.
- Python at all four triggers on a miss (CachingDisabled, HTTP origin in its own process),
  against the same miss without functions, in the same ``edgesim serve``. The extra CPU per
  request (the proxy and its workers) divided by four is what one warm invocation costs inside
  the pipeline under load. Its baseline is its bare round trip under the same load: the same
  four functions invoked with the very events the pipeline sent them, through the function
  runtime alone (``_servers.py pools``, on uvloop in a process of its own, driven by the same
  ``wrk -c32`` in the same rounds), less that server's answer without invoking anything. The
  ratio is the median over rounds of the two differences' ratio (target: at most 2x). The wall
  time of one bare round trip at a time, to a warm worker of an echo function, is given beside
  it, as the runtime benchmark measures it.
"""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
import time
from pathlib import Path

import _harness as h
import bench_runtime

FUNCTION_TARGET = 5.0
INVOCATION_TARGET = 2.0
RECORDED_PEER_RPS = 1060.0
PEER = "serverless-offline-edge-lambda@1.3.1"

REQUEST_JS = """\
'use strict';
exports.handler = async (event) => {
  const request = event.Records[0].cf.request;
  if (request.uri.endsWith('/')) {
    request.uri += 'index.html';
  }
  request.headers['x-bench'] = [{ key: 'X-Bench', value: 'viewer-request' }];
  return request;
};
"""
RESPONSE_JS = """\
'use strict';
exports.handler = async (event) => {
  const response = event.Records[0].cf.response;
  response.headers['strict-transport-security'] = [
    { key: 'Strict-Transport-Security', value: 'max-age=63072000; includeSubDomains' },
  ];
  response.headers['x-content-type-options'] = [
    { key: 'X-Content-Type-Options', value: 'nosniff' },
  ];
  return response;
};
"""
JS_CONFIG = """\
origins: {site: {s3: "./site"}}
functions:
  vreq: {runtime: nodejs20.x, code: ./fn, handler: request.handler}
  vres: {runtime: nodejs20.x, code: ./fn, handler: response.handler}
behaviors:
  - path_pattern: "*"
    origin: site
    cache_policy: CachingOptimized
    functions: {viewer-request: vreq, viewer-response: vres}
"""
# serverless-offline-edge-lambda's BehaviorRouter, given what it reads of the Serverless
# Framework: the service's functions, its custom section, its resources and a log function.
PEER_RUNNER = """\
'use strict';
const { BehaviorRouter } = require('serverless-offline-edge-lambda/dist/behavior-router');
const [, , port, fnDir, site, cacheDir] = process.argv;
const edge = (eventType) => ({ pathPattern: '*', eventType });
const serverless = {
  cli: { log() {} },
  service: {
    custom: { offlineEdgeLambda: { path: fnDir, originMap: [{ pathPattern: '*', target: site }] } },
    functions: {
      vreq: { name: 'vreq', handler: 'request.handler', lambdaAtEdge: edge('viewer-request') },
      vres: { name: 'vres', handler: 'response.handler', lambdaAtEdge: edge('viewer-response') },
    },
    resources: {},
  },
};
const router = new BehaviorRouter(serverless, { port, cacheDir, fileDir: site });
router.start(Number(port)).catch((error) => { console.error(error); process.exit(1); });
console.log(`listening on ${port}`);
"""
PY_FUNCTIONS = """\
def viewer_request(event, context):
    return event["Records"][0]["cf"]["request"]


def origin_request(event, context):
    request = event["Records"][0]["cf"]["request"]
    request["headers"]["x-bench"] = [{"key": "X-Bench", "value": "origin-request"}]
    return request


def origin_response(event, context):
    return event["Records"][0]["cf"]["response"]


def viewer_response(event, context):
    response = event["Records"][0]["cf"]["response"]
    response["headers"]["x-content-type-options"] = [
        {"key": "X-Content-Type-Options", "value": "nosniff"}
    ]
    return response
"""


def py_config(origin: str, runtime: str) -> str:
    functions = "".join(
        f"  {name}: {{runtime: {runtime}, code: ./fn, handler: fns.{name}}}\n"
        for name in ("viewer_request", "origin_request", "origin_response", "viewer_response")
    )
    return (
        f'origins: {{origin: {{url: "{origin}"}}}}\n'
        f"functions:\n{functions}"
        "behaviors:\n"
        '  - path_pattern: "/fn/*"\n'
        "    origin: origin\n"
        "    cache_policy: CachingDisabled\n"
        "    functions: {viewer-request: viewer_request, origin-request: origin_request,\n"
        "                origin-response: origin_response, viewer-response: viewer_response}\n"
        '  - {path_pattern: "*", origin: origin, cache_policy: CachingDisabled}\n'
    )


def start_peer(lab: h.Lab, fn_dir: Path, site: Path) -> h.Server:
    """serverless-offline-edge-lambda, installed from npm into the lab's folder."""
    folder = lab.dir / "peer"
    folder.mkdir()
    (folder / "package.json").write_text('{"private": true}\n')
    # --legacy-peer-deps: its peer, the whole Serverless Framework, is not needed to drive it.
    npm = ["npm", "install", "--no-audit", "--no-fund", "--legacy-peer-deps", "--loglevel=error"]
    install = subprocess.run([*npm, PEER], cwd=folder, capture_output=True, text=True, timeout=300)
    if install.returncode != 0:
        lines = (install.stderr or install.stdout).strip().splitlines() or ["?"]
        raise RuntimeError(f"npm install {PEER} failed: {lines[-1]}")
    (folder / "run.js").write_text(PEER_RUNNER)
    port = h.free_port()
    argv = ["node", "run.js", str(port), str(fn_dir), str(site), str(folder / "cache")]
    server = lab.start(h.Server(PEER, argv, workdir=lab.dir, cwd=folder))
    server.url = f"http://127.0.0.1:{port}"
    server.wait_for_http(server.url + "/page.html")
    h.expect(server.url + "/page.html")
    return server


def javascript_rows(options: h.Options) -> list[h.Row]:
    name = "viewer-request + viewer-response JavaScript, cached (c32)"
    target = f">= {FUNCTION_TARGET:g}x serverless-offline-edge-lambda req/s"
    with h.Lab() as lab:
        files = {
            "fn/request.js": REQUEST_JS.encode(),
            "fn/response.js": RESPONSE_JS.encode(),
            "site/page.html": h.BODY,
        }
        edge = lab.edgesim("edgesim js", JS_CONFIG, files=files)
        url = edge.url + "/page.html"
        h.fetch(url)
        h.expect(url, x_cache="Hit")
        assert edge.config is not None
        folder = edge.config.parent
        sides = [h.Side("edgesim", edge, url)]
        why_not = ""
        try:
            peer = start_peer(lab, folder / "fn", folder / "site")
            sides.append(h.Side("serverless-offline-edge-lambda", peer, peer.url + "/page.html"))
        except Exception as error:  # the recorded figure stands in
            why_not = str(error).strip().splitlines()[0]
        figures = h.interleave(sides, options, warmup=3.0)
    failed = h.not_a_result(name, target, *figures)
    if failed:
        return [failed]
    ours = figures[0]
    if why_not:
        ratio = ours.rps / RECORDED_PEER_RPS
        baseline = (
            f"serverless-offline-edge-lambda could not run ({why_not}): "
            f"the recorded {RECORDED_PEER_RPS:,.0f} req/s"
        )
    else:
        peer_figures = figures[1]
        ratio = h.rps_ratio(ours, peer_figures)
        baseline = f"serverless-offline-edge-lambda 1.3.1: {peer_figures.text()}"
    return [
        h.Row(
            name,
            f"{ours.text()} (proxy {h.fmt_us(ours.main_us)})",
            baseline,
            f"{h.fmt_ratio(ratio)} req/s",
            target,
            h.verdict(ratio >= FUNCTION_TARGET),
        )
    ]


def python_rows(options: h.Options) -> list[h.Row]:
    name = "miss, a Python function at each of the four triggers (c32)"
    target = f"per invocation <= {INVOCATION_TARGET:g}x its bare round trip, same load"
    runtime = bench_runtime.runtime_name()
    with tempfile.TemporaryDirectory(prefix="edgesim-bench-") as tmp:
        one_at_a_time = asyncio.run(
            bench_runtime.bare_trip_us(bench_runtime.write_echo(Path(tmp)), runtime, 300)
        )
    with h.Lab() as lab:
        origin = lab.plain("origin")
        config = py_config(origin.url, runtime)
        edge = lab.edgesim("edgesim python", config, files={"fn/fns.py": PY_FUNCTIONS.encode()})
        with_fn, without = edge.url + "/fn/page.html", edge.url + "/page.html"
        h.expect(with_fn, x_cache="Miss")
        h.expect(without, x_cache="Miss")
        assert edge.config is not None
        bare = lab.pools("bare round trips", edge.config, "/fn/page.html")
        figures = h.interleave(
            [
                h.Side("four functions", edge, with_fn),
                h.Side("no functions", edge, without),
                h.Side("four bare round trips", bare, bare.url + "/invoke"),
                h.Side("no round trip", bare, bare.url + "/none"),
            ],
            options,
            warmup=3.0,
        )
    failed = h.not_a_result(name, target, *figures)
    if failed:
        return [failed]
    ours, base, trips, idle = figures
    invocation = (ours.us - base.us) / 4
    proxy = (ours.main_us - base.main_us) / 4
    trip = (trips.us - idle.us) / 4
    ratio = h.difference_ratio(ours, base, trips, idle)
    return [
        h.Row(
            name,
            f"{ours.text()}; per invocation {h.fmt_us(invocation)} CPU "
            f"(proxy {h.fmt_us(proxy)}, worker {h.fmt_us(invocation - proxy)})",
            f"the no-function miss: {base.text()}; the same four events' bare round trips "
            f"under the same load: {h.fmt_us(trip)} CPU each; one bare round trip at a time: "
            f"{h.fmt_us(one_at_a_time)}",
            f"{h.fmt_ratio(h.rps_ratio(ours, base))} req/s; per invocation "
            f"{h.fmt_ratio(ratio)} its bare trip under load "
            f"({h.fmt_ratio(invocation / one_at_a_time)} one bare trip at a time)",
            target,
            h.verdict(ratio <= INVOCATION_TARGET),
        )
    ]


def rows(options: h.Options) -> list[h.Row]:
    out: list[h.Row] = []
    with h.section("JavaScript functions"):
        out += h.guarded(
            "JavaScript functions", f">= {FUNCTION_TARGET:g}x", lambda: javascript_rows(options)
        )
    with h.section("Python functions"):
        out += h.guarded(
            "Python functions", f"<= {INVOCATION_TARGET:g}x", lambda: python_rows(options)
        )
    return out


def main() -> None:
    options = h.options(h.parser(__doc__.splitlines()[0]).parse_args())
    started = time.perf_counter()
    print(h.report("edgesim functions", rows(options), started, options))


if __name__ == "__main__":
    main()
