"""The command line: validate and serve."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from edgesim.cli import main
from tests import http_clients

ROOT = Path(__file__).resolve().parent.parent


def test_validate_the_bundled_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(ROOT / "distributions" / "example.yaml")]) == 0
    out = capsys.readouterr().out
    assert "example.yaml: ok (3 behaviors, 1 origins, 4 functions)" in out


def test_validate_names_file_key_and_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    code = tmp_path / "fn"
    code.mkdir()
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f"""
origins: {{site: {{s3: "{site}"}}}}
functions:
  auth: {{runtime: python3.12, code: "{code}", handler: app.handler, timeout: 10}}
behaviors:
  - {{path_pattern: "*", origin: site, functions: {{viewer-request: auth}}}}
"""
    )
    assert main(["validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"edgesim: {bad}: functions.auth.timeout: ")
    assert "5 s" in err and "10 s" in err


def test_missing_file_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "/nonexistent/d.yaml"]) == 1
    assert "/nonexistent/d.yaml" in capsys.readouterr().err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "serve" in capsys.readouterr().out


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Admin token files go to this test's folder, and no token comes from the environment."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("EDGESIM_ADMIN_TOKEN", raising=False)


async def test_serve_runs_the_example_until_sigterm() -> None:
    process = await _serve_example("0")
    assert process.stdout is not None
    try:
        banner = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        assert "example.yaml" in banner and "EDFDVBD6EXAMPLE" in banner
        url = banner.split(" on ")[1].strip()
        async with http_clients.async_client(timeout=20) as client:
            home = await client.get(url)
            redirect = await client.get(url + "old-blog/first-post")
        assert home.status_code == 200 and "edgesim example site" in home.text
        assert home.headers["x-content-type-options"] == "nosniff"
        assert redirect.status_code == 301
    finally:
        process.send_signal(signal.SIGTERM)
        rest = (await asyncio.wait_for(process.stdout.read(), 20)).decode()
        assert await process.wait() == 0
    assert "shutting down" in rest
    assert "REPORT RequestId:" in rest


@pytest.mark.parametrize("bad", ["0", "-1", "soon", "inf", "nan"])
def test_viewer_timeouts_must_be_positive_seconds(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--header-timeout", bad])
    assert exit_.value.code == 2
    assert "--header-timeout" in capsys.readouterr().err


async def test_serve_closes_a_silent_viewer_after_its_header_timeout(tmp_path: Path) -> None:
    site = str(_site_only(tmp_path))
    process = await _serve_example("0", "--header-timeout", "0.1", "--no-reload", site)
    assert process.stdout is not None
    try:
        banner = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        port = int(banner.split(" on ")[1].strip().rstrip("/").rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HT")
        assert await asyncio.wait_for(reader.read(), 20) == b""
        writer.close()
    finally:
        await _stop(process)


async def test_serve_keeps_serving_when_the_admin_port_is_taken(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]
    process = await _serve_example(str(busy), "--no-reload", str(_site_only(tmp_path)))
    assert process.stdout is not None
    try:
        banner = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        warning = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        assert f"admin API not started on 127.0.0.1:{busy}" in warning
        url = banner.split(" on ")[1].strip()
        async with http_clients.async_client(timeout=20) as client:
            assert (await client.get(url + "style.css")).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.stdout.read(), 20)
        assert await process.wait() == 0
        taken.close()


async def _serve_example(admin_port: str, *options: str) -> asyncio.subprocess.Process:
    """`edgesim serve` on the bundled example, any free viewer port, output on stdout."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "edgesim",
        "serve",
        "--port",
        "0",
        "--admin-port",
        admin_port,
        *options,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def _invalidate(*args: str) -> tuple[int, str, str]:
    """`edgesim invalidate ARGS` in a process of its own: exit status, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edgesim", "invalidate", *args,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _assert_one_line_error(code: int, err: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    assert err.startswith("edgesim: ") and err.endswith("\n") and err.count("\n") == 1, err


async def test_invalidate_against_a_closed_port_says_nothing_answers() -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    code, _, err = await _invalidate("/*", "--admin", f"http://127.0.0.1:{port}")
    _assert_one_line_error(code, err)
    assert "nothing answers" in err and "edgesim serve" in err


@pytest.mark.parametrize("status", [200, 404])
async def test_invalidate_against_a_plain_web_server_says_it_is_not_edgesim(status: int) -> None:
    async def html(request: web.Request) -> web.Response:
        return web.Response(
            status=status, text="<html><body>hi</body></html>", content_type="text/html"
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", html)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        code, _, err = await _invalidate("/*", "--admin", f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()
    _assert_one_line_error(code, err)
    assert "not edgesim's admin API" in err and str(status) in err


async def test_invalidate_against_a_port_speaking_garbage_says_it_is_not_edgesim() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.write(b"\x00\xff\x13garbage\r\n\r\nmore garbage\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        code, _, err = await _invalidate("/*", "--admin", f"http://127.0.0.1:{port}")
    finally:
        server.close()
        await server.wait_closed()
    _assert_one_line_error(code, err)
    assert "not edgesim's admin API" in err


@pytest.mark.parametrize("admin", ["127.0.0.1:9080", "ftp://127.0.0.1:9080", "http://[::1"])
async def test_invalidate_with_an_admin_that_is_not_an_http_url(admin: str) -> None:
    code, _, err = await _invalidate("/*", "--admin", admin)
    _assert_one_line_error(code, err)
    assert "--admin" in err


def _site_only(tmp_path: Path) -> Path:
    """The example's site and id without its functions: the admin tests need no function, and
    starting without any skips serve's code check of each one."""
    path = tmp_path / "site-only.yaml"
    path.write_text(
        "distribution: {id: EDFDVBD6EXAMPLE}\n"
        f'origins: {{site: {{s3: "{ROOT / "origins" / "site"}"}}}}\n'
        "behaviors: [{path_pattern: '*', origin: site, cache_policy: CachingOptimized}]\n"
    )
    return path


async def _serve_with_admin(tmp_path: Path) -> tuple[asyncio.subprocess.Process, str, str]:
    """`edgesim serve` on the example's site, admin on a free port: the process, viewer and
    admin URL."""
    process = await _serve_example("0", "--no-reload", str(_site_only(tmp_path)))
    assert process.stdout is not None
    banner = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
    admin_line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
    assert "admin API (invalidations) on " in admin_line, admin_line
    admin = admin_line.split(" on ")[1].split("/,")[0]
    return process, banner.split(" on ")[1].strip(), admin


async def _stop(process: asyncio.subprocess.Process) -> None:
    assert process.stdout is not None
    process.send_signal(signal.SIGTERM)
    await asyncio.wait_for(process.stdout.read(), 20)
    assert await process.wait() == 0


async def test_a_signal_as_soon_as_the_ports_are_announced_shuts_down_gracefully(
    tmp_path: Path,
) -> None:
    # Whoever read the banner may stop the server at once, before the admin API is up.
    process = await _serve_example("0", "--no-reload", str(_site_only(tmp_path)))
    assert process.stdout is not None
    banner = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
    assert " on http://" in banner, banner
    process.send_signal(signal.SIGINT)
    rest = (await asyncio.wait_for(process.stdout.read(), 20)).decode()
    assert await process.wait() == 0
    assert "shutting down" in rest


async def test_serve_and_invalidate_share_the_token_file(tmp_path: Path) -> None:
    process, url, admin = await _serve_with_admin(tmp_path)
    port = admin.rsplit(":", 1)[1]
    token_file = tmp_path / "edgesim" / f"admin-{port}.token"
    try:
        assert token_file.stat().st_mode & 0o777 == 0o600
        async with http_clients.async_client(timeout=20) as client:
            await client.get(url + "style.css")
            assert (await client.get(url + "style.css")).headers["x-cache"].startswith("Hit")
            code, out, err = await _invalidate("/style.css", "--admin", admin)
            assert (code, err) == (0, "")
            assert out == "invalidated 1 objects for /style.css in EDFDVBD6EXAMPLE\n"
            assert (await client.get(url + "style.css")).headers["x-cache"].startswith("Miss")
            # Without the token a request is refused, even one that names the admin API right.
            refused = await client.post(admin + "/invalidations", json={"paths": ["/*"]})
            assert refused.status_code == 403
    finally:
        await _stop(process)
    assert not token_file.exists()


async def test_invalidate_without_the_token_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    process, _, admin = await _serve_with_admin(tmp_path)
    try:
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "elsewhere"))  # no token file there
        code, _, err = await _invalidate("/*", "--admin", admin)
        _assert_one_line_error(code, err)
        assert "needs its token" in err and "--admin-token" in err
        assert "EDGESIM_ADMIN_TOKEN" in err
        code, _, err = await _invalidate("/*", "--admin", admin, "--admin-token", "wrong")
        _assert_one_line_error(code, err)
        assert "refused the token from --admin-token" in err
        monkeypatch.setenv("EDGESIM_ADMIN_TOKEN", "wrong")
        code, _, err = await _invalidate("/*", "--admin", admin)
        _assert_one_line_error(code, err)
        assert "refused the token from EDGESIM_ADMIN_TOKEN" in err
    finally:
        await _stop(process)


async def test_serve_takes_the_token_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGESIM_ADMIN_TOKEN", "a-token-for-ci-0123456789")
    process, _, admin = await _serve_with_admin(tmp_path)
    try:
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "elsewhere"))
        code, out, err = await _invalidate("/*", "--admin", admin)
        assert (code, err) == (0, "")
        monkeypatch.delenv("EDGESIM_ADMIN_TOKEN")
        explicit = ("--admin-token", "a-token-for-ci-0123456789")
        code, out, err = await _invalidate("/*", "--admin", admin, *explicit)
        assert (code, err) == (0, "")
    finally:
        await _stop(process)


async def _serve_with_a_stuck_origin(
    tmp_path: Path, grace: str, reached: asyncio.Event
) -> tuple[asyncio.subprocess.Process, str, asyncio.Server]:
    """`edgesim serve` in front of an origin that never answers; returns its viewer URL."""

    async def stuck(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        reached.set()
        try:
            await reader.read()  # holds the request until edgesim lets go of it
        finally:
            writer.close()

    origin = await asyncio.start_server(stuck, "127.0.0.1", 0)
    port = origin.sockets[0].getsockname()[1]
    path = tmp_path / "d.yaml"
    path.write_text(
        f'origins: {{api: {{url: "http://127.0.0.1:{port}", read_timeout: 60}}}}\n'
        'behaviors: [{path_pattern: "*", origin: api}]\n'
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edgesim", "serve", str(path), "--port", "0",
        "--admin-port", "0", "--shutdown-grace", grace,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    banner = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
    return process, banner.split(" on ")[1].strip(), origin


@pytest.mark.parametrize(("grace", "signals"), [("0.1", 1), ("600", 2)])
async def test_a_stuck_request_does_not_keep_the_server_up(
    tmp_path: Path, grace: str, signals: int
) -> None:
    # One signal: the stuck request gets the grace period, then is cut. With a grace longer than
    # anyone waits, a second signal stops the server at once.
    reached = asyncio.Event()
    process, url, origin = await _serve_with_a_stuck_origin(tmp_path, grace, reached)
    assert process.stdout is not None
    async with http_clients.async_client(timeout=60) as client:
        request = asyncio.ensure_future(client.get(url + "stuck"))
        await asyncio.wait_for(reached.wait(), 20)  # the request is in flight at the origin
        process.send_signal(signal.SIGINT)
        if signals == 2:
            assert process.stdout is not None
            line = b""
            while b"shutting down" not in line:  # the first signal is taken; now the second
                line = await asyncio.wait_for(process.stdout.readline(), 20)
                assert line, "edgesim serve ended before it took the first signal"
            process.send_signal(signal.SIGINT)
        try:
            code = await asyncio.wait_for(process.wait(), 60)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        with contextlib.suppress(httpx.HTTPError):
            await request
    origin.close()
    await origin.wait_closed()
    rest = (await process.stdout.read()).decode()
    if signals == 2:
        assert code == 130 and "stopping now" in rest
    else:
        assert code == 0 and "shutting down" in rest


def test_validate_checks_the_functions_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "index.js").write_text("exports.handler = async (e) => {\n  e +;\n};\n")
    path = tmp_path / "d.yaml"
    path.write_text(
        "origins: {site: {s3: site}}\n"
        "functions: {auth: {runtime: nodejs20.x, code: fn, handler: index.handler}}\n"
        'behaviors: [{path_pattern: "*", origin: site, functions: {viewer-request: auth}}]\n'
    )
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"edgesim: {path}: functions.auth.handler: Runtime.UserCodeSyntaxError")
    assert f"({tmp_path / 'fn' / 'index.js'}, line 2)" in err
