"""Debugger attach: ports that answer, breakpoint() that stops, a timeout that waits for it."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path
from typing import Any

from edgesim.runtime import FunctionPool, FunctionSpec
from edgesim.runtime.debug import (
    debugger_attached,
    debugpy_dir,
    expire_unless_attached,
    inspect_option,
    python_debug_options,
)
from edgesim.runtime.launch import worker_command
from tests import http_clients
from tests.runtime.helpers import RUNTIME, LogRecorder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _spec(tmp_path: Path, runtime: str, files: dict[str, str], **overrides: Any) -> FunctionSpec:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    handler = "index.handler" if runtime.startswith("node") else "app.handler"
    values: dict[str, Any] = {"memory_mb": 128, "timeout_s": 2.0, **overrides}
    return FunctionSpec(name="fn", runtime=runtime, code_dir=tmp_path, handler=handler, **values)


BREAKS = {"app.py": "def handler(event, context):\n    breakpoint()\n    return {'after': 1}\n"}


async def test_breakpoint_without_a_debugger_is_a_log_line_not_an_error(tmp_path: Path) -> None:
    log = LogRecorder()
    pool = FunctionPool(_spec(tmp_path, RUNTIME, BREAKS), log_sink=log)
    try:
        result = await pool.invoke({})
    finally:
        await pool.aclose()
    assert result.value == {"after": 1}
    assert f"breakpoint() at {tmp_path / 'app.py'}:2 ignored: no debugger is attached" in log.last


async def test_the_node_inspector_answers_on_its_port(tmp_path: Path) -> None:
    port = free_port()
    code = {"index.js": "exports.handler = async () => { debugger; return 'ran'; };\n"}
    log = LogRecorder()
    pool = FunctionPool(_spec(tmp_path, "nodejs20.x", code, debug_port=port), log_sink=log)
    try:
        await pool.prewarm()
        async with http_clients.async_client() as client:
            version = (await client.get(f"http://127.0.0.1:{port}/json/version")).json()
        assert version["Browser"].startswith("node.js/")
        assert any(f"ws://127.0.0.1:{port}/" in line for line in log.frames[0][1])
        # Without a debugger attached the `debugger` statement does nothing.
        assert (await pool.invoke({})).value == "ran"
    finally:
        await pool.aclose()


async def _send(writer: asyncio.StreamWriter, seq: int, command: str, **arguments: Any) -> None:
    body = json.dumps(
        {"seq": seq, "type": "request", "command": command, "arguments": arguments}
    ).encode()
    writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    await writer.drain()


async def _until(reader: asyncio.StreamReader, kind: str, name: str) -> dict[str, Any]:
    """The next Debug Adapter Protocol message of this kind and command or event name."""
    while True:
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        message: dict[str, Any] = json.loads(await reader.readexactly(length))
        if message.get("type") == kind and name in (message.get("command"), message.get("event")):
            return message


async def test_breakpoint_stops_in_the_attached_debugger_and_the_timeout_waits(
    tmp_path: Path,
) -> None:
    port = free_port()
    # A timeout shorter than the time the debugger keeps the function stopped.
    pool = FunctionPool(_spec(tmp_path, RUNTIME, BREAKS, debug_port=port, timeout_s=0.5))
    try:
        await pool.prewarm()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await _send(writer, 1, "initialize", adapterID="debugpy", pathFormat="path")
        await _until(reader, "response", "initialize")
        await _send(writer, 2, "attach", justMyCode=False)
        await _until(reader, "response", "attach")
        await _send(writer, 3, "configurationDone")
        await _until(reader, "response", "configurationDone")
        invocation = asyncio.ensure_future(pool.invoke({}))
        stopped = await _until(reader, "event", "stopped")
        thread = stopped["body"]["threadId"]
        await _send(writer, 4, "stackTrace", threadId=thread)
        frames = (await _until(reader, "response", "stackTrace"))["body"]["stackFrames"]
        # In the handler's frame, at the line after breakpoint(), as pdb stops.
        assert (frames[0]["source"]["path"], frames[0]["line"]) == (str(tmp_path / "app.py"), 3)
        # Stopped past the timeout: the pool sees the debugger and waits.
        while pool.worker_pids and not invocation.done():
            await asyncio.sleep(0.1)
            if debugger_attached(pool.worker_pids[0], port):
                break
        await asyncio.sleep(0.6)
        assert not invocation.done()
        await _send(writer, 5, "continue", threadId=thread)
        assert (await invocation).value == {"after": 1}
        writer.close()
        await writer.wait_closed()
    finally:
        await pool.aclose()


async def test_debugger_attached_sees_an_established_connection_on_the_port() -> None:
    accepted: list[asyncio.StreamWriter] = []
    server = await asyncio.start_server(lambda r, w: accepted.append(w), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert not debugger_attached(os.getpid(), port)
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.sleep(0)
        assert debugger_attached(os.getpid(), port)
        writer.close()
        await writer.wait_closed()
    finally:
        for peer in accepted:
            peer.close()
        server.close()
        await server.wait_closed()
    assert not debugger_attached(2**22 + 1, port)  # no such process


async def test_time_attached_does_not_count_toward_the_timeout() -> None:
    answers = iter([True] * 5 + [False] * 100)
    polls: list[bool] = []
    expired: list[int] = []

    def attached() -> bool:
        polls.append(next(answers))
        return polls[-1]

    await expire_unless_attached(0.2, attached, lambda: expired.append(len(polls)))
    # Five polls attached, then 0.2 s of polls unattached (0.1 s each).
    assert expired == [7]


async def test_worker_commands_carry_the_debugger_options(tmp_path: Path) -> None:
    python = await worker_command(_spec(tmp_path, RUNTIME, {}, debug_port=5679))
    assert python[-4:] == python_debug_options(5679)
    assert python_debug_options(5679) == ["--debug-port", "5679", "--debugpy", str(debugpy_dir())]
    assert (debugpy_dir() / "__init__.py").is_file()
    node = await worker_command(_spec(tmp_path, "nodejs20.x", {}, debug_port=9230))
    assert inspect_option(9230) == "--inspect=127.0.0.1:9230" and inspect_option(9230) in node
    assert not any("inspect" in part for part in await worker_command(_spec(tmp_path, RUNTIME, {})))
