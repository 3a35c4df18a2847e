"""One worker process seen from the pool: starting it, exchanging messages, memory, ending it.

Most tests run small stand-in worker programs (``python -c``) that misbehave on purpose; one
runs the real Python worker.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import psutil
import pytest

from edgesim.exceptions import LambdaExecutionError
from edgesim.runtime.launch import PYTHON_WORKER, WORKER_PATH
from edgesim.runtime.protocol import Ready, Result, encode_invoke
from edgesim.runtime.worker import (
    Broken,
    Exited,
    OutOfMemory,
    Reply,
    TimedOut,
    WorkerProcess,
)
from tests.runtime.helpers import (
    FIXTURES,
    MIB,
    NAMESPACES,
    LogRecorder,
    PoolFactory,
    descendants,
    exits,
    living,
)

# Reads the protocol arguments and defines send(message) and send_raw(bytes).
PRELUDE = """\
import json, os, struct, sys, time
ARGS = dict(zip(sys.argv[1::2], sys.argv[2::2]))
OUT = int(ARGS["--out-fd"])
def send_raw(data):
    os.write(OUT, data)
def send(message):
    body = json.dumps(message).encode()
    send_raw(struct.pack(">I", len(body)) + body)
"""

StartWorker = Callable[..., Awaitable[WorkerProcess]]


def stand_in(body: str) -> list[str]:
    """The command of a stand-in worker running ``body`` after the prelude."""
    return [sys.executable, "-I", "-S", "-c", PRELUDE + body]


@pytest.fixture
async def start_worker() -> AsyncIterator[StartWorker]:
    """Start workers; discard them all afterwards and check each one is gone."""
    started: list[WorkerProcess] = []

    async def start(
        command: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path = FIXTURES,
        memory_limit_bytes: int = 128 * MIB,
    ) -> WorkerProcess:
        worker = await WorkerProcess.start(
            command,
            env={"PATH": WORKER_PATH} if env is None else env,
            cwd=cwd,
            memory_limit_bytes=memory_limit_bytes,
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        async with asyncio.timeout(10):
            await worker.discard()
        assert not worker.alive
        assert not psutil.pid_exists(worker.pid)


async def test_the_python_worker_starts_answers_and_is_discarded(
    start_worker: StartWorker,
) -> None:
    env = {
        "PATH": WORKER_PATH,
        "LAMBDA_TASK_ROOT": str(FIXTURES / "echo"),
        "_HANDLER": "index.handler",
    }
    worker = await start_worker(
        [sys.executable, "-I", "-S", "-B", str(PYTHON_WORKER)], env=env, cwd=FIXTURES / "echo"
    )
    ready = await worker.exchange(None, 10)
    assert isinstance(ready, Reply) and isinstance(ready.message, Ready)
    # Read once the worker answered: just after the start it may be between fork and exec.
    assert worker.alive and str(PYTHON_WORKER) in psutil.Process(worker.pid).cmdline()
    assert await worker.log.phase("init") == []
    deadline_ms = int((time.time() + 5) * 1000)
    outcome = await worker.exchange(encode_invoke("rid-1", deadline_ms, "arn:x", {"a": 1}), 5)
    assert isinstance(outcome, Reply) and isinstance(outcome.message, Result)
    assert outcome.message.request_id == "rid-1"
    assert outcome.message.value == {"event": {"a": 1}, "pid": 1 if NAMESPACES else worker.pid}
    reported = outcome.message.max_rss_bytes
    assert reported is not None and worker.peak_rss_bytes >= reported > MIB
    assert worker.alive, "a worker that answered stays alive"
    await worker.discard()
    assert (worker.alive, worker.process.returncode is None) == (False, False)
    assert not living([worker.pid])


async def test_a_worker_gets_its_own_session_the_protocol_arguments_and_only_its_env(
    start_worker: StartWorker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGESIM_HOST_MARKER", "must not leak")
    body = """\
print("args", *sys.argv[1:], flush=True)
print("cwd", os.getcwd(), flush=True)
print("env", os.environ.get("EDGESIM_HOST_MARKER"), os.environ.get("FUNCTION_VAR"), flush=True)
print("on stderr", file=sys.stderr, flush=True)
send({"type": "ready"})
time.sleep(60)
"""
    env = {"PATH": WORKER_PATH, "FUNCTION_VAR": "given"}
    worker = await start_worker(stand_in(body), env=env, cwd=tmp_path)
    started = worker.process.pid
    assert os.getsid(worker.pid) == started and os.getpgid(worker.pid) == started
    outcome = await worker.exchange(None, 10)
    assert outcome == Reply(Ready(None))
    await worker.discard()
    lines = worker.log.rest()
    args = lines[0].split()
    assert args[0] == "args" and args[1::2] == ["--in-fd", "--out-fd", "--parent-pid"]
    assert args[6] == ("0" if NAMESPACES else str(os.getpid()))
    assert lines[1:] == [f"cwd {tmp_path}", "env None given", "on stderr"]


@pytest.mark.parametrize(
    "body",
    [
        "time.sleep(60)\n",
        # The pipe's end comes at once; waiting for the process to exit is held to the limit too.
        "os.close(OUT)\ntime.sleep(60)\n",
    ],
    ids=["silent", "reply-pipe-closed"],
)
async def test_silence_past_the_timeout_kills_the_worker(
    start_worker: StartWorker, body: str
) -> None:
    worker = await start_worker(stand_in(body))
    started = time.monotonic()
    assert await worker.exchange(None, 0.3) == TimedOut()
    # Not before the limit, and back before the stand-in's sleep would have ended.
    assert 0.3 <= time.monotonic() - started < 60
    assert not worker.alive
    await worker.discard()
    assert worker.process.returncode is not None and not living([worker.pid])
    assert worker.log.rest() == [], "nothing but the worker's output is its log"


@pytest.mark.parametrize(
    ("body", "returncode"),
    [
        ("os._exit(7)", 7),
        ("sys.exit(0)", 0),
        ("import ctypes; ctypes.string_at(0)", -signal.SIGSEGV),
    ],
    ids=["status", "clean", "signal"],
)
async def test_a_worker_that_ends_on_its_own_has_exited(
    start_worker: StartWorker, body: str, returncode: int
) -> None:
    worker = await start_worker(stand_in(body))
    assert await worker.exchange(None, 10) == Exited(returncode)
    assert not worker.alive


async def test_a_worker_that_dies_mid_invocation_has_exited(start_worker: StartWorker) -> None:
    body = """\
send({"type": "ready"})
os.read(int(ARGS["--in-fd"]), 4)
os._exit(3)
"""
    worker = await start_worker(stand_in(body))
    assert await worker.exchange(None, 10) == Reply(Ready(None))
    request = encode_invoke("rid-1", 0, "arn:x", {})
    assert await worker.exchange(request, 10) == Exited(3)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ('struct.pack(">I", 3) + b"[1]"', "not an object"),
        ('struct.pack(">I", 16) + b\'{"type":"hello"}\'', "unknown message type 'hello'"),
        ('struct.pack(">I", 1 << 30)', "exceeds"),
    ],
    ids=["array", "unknown-type", "oversized"],
)
async def test_a_reply_that_breaks_the_protocol_kills_the_worker(
    start_worker: StartWorker, data: str, problem: str
) -> None:
    worker = await start_worker(stand_in(f"send_raw({data})\ntime.sleep(60)\n"))
    outcome = await worker.exchange(None, 10)
    assert isinstance(outcome, Broken) and problem in outcome.reason
    assert not worker.alive
    await worker.discard()
    assert worker.process.returncode is not None and not living([worker.pid])


async def test_memory_is_sampled_while_the_worker_is_busy(start_worker: StartWorker) -> None:
    body = """\
blob = b"x" * (24 * 1024 * 1024)
time.sleep(0.2)
send({"type": "ready"})
time.sleep(60)
"""
    worker = await start_worker(stand_in(body))
    assert await worker.exchange(None, 10) == Reply(Ready(None))
    assert worker.peak_rss_bytes > 24 * MIB
    assert worker.alive


async def test_resident_memory_past_the_quota_is_out_of_memory(start_worker: StartWorker) -> None:
    body = """\
blob = b"x" * (200 * 1024 * 1024)
time.sleep(60)
"""
    worker = await start_worker(stand_in(body), memory_limit_bytes=64 * MIB)
    started = time.monotonic()
    outcome = await worker.exchange(None, 30)
    # Back before the exchange's own limit: the memory watch ended it, not the timer.
    assert time.monotonic() - started < 30
    assert isinstance(outcome, OutOfMemory) and outcome.peak_bytes > 64 * MIB
    assert outcome.peak_bytes == worker.peak_rss_bytes
    assert not worker.alive


@pytest.mark.parametrize(
    ("message", "peak"),
    [
        ('{"type": "ready", "maxRssBytes": 1 << 40}', 1 << 40),
        (
            '{"type": "error", "requestId": "r", "errorType": "MemoryError", '
            '"errorMessage": "", "stackTrace": []}',
            None,
        ),
    ],
    ids=["reported-peak", "memory-error"],
)
async def test_a_reply_that_shows_the_quota_was_passed_is_out_of_memory(
    start_worker: StartWorker, message: str, peak: int | None
) -> None:
    worker = await start_worker(stand_in(f"send({message})\ntime.sleep(60)\n"))
    outcome = await worker.exchange(None, 10)
    assert isinstance(outcome, OutOfMemory)
    assert outcome.peak_bytes == (peak if peak is not None else worker.peak_rss_bytes)
    assert not worker.alive


async def test_a_reported_peak_within_the_quota_is_kept(start_worker: StartWorker) -> None:
    worker = await start_worker(
        stand_in('send({"type": "ready", "maxRssBytes": 100 << 20})\ntime.sleep(60)\n')
    )
    assert await worker.exchange(None, 10) == Reply(Ready(100 * MIB))
    assert worker.peak_rss_bytes >= 100 * MIB
    assert worker.alive


@pytest.mark.skipif(not hasattr(psutil, "RLIMIT_DATA"), reason="no data-segment limit here")
@pytest.mark.parametrize(("quota_mb", "limit_mb"), [(128, 128 + 1024), (2048, 4096)])
async def test_the_data_segment_is_capped_far_above_the_quota(
    start_worker: StartWorker, quota_mb: int, limit_mb: int
) -> None:
    worker = await start_worker(stand_in("time.sleep(60)"), memory_limit_bytes=quota_mb * MIB)
    limit = psutil.Process(worker.pid).rlimit(psutil.RLIMIT_DATA)
    assert tuple(limit) == (limit_mb * MIB, limit_mb * MIB)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
async def test_a_program_that_cannot_start_raises_and_leaks_no_descriptor(
    tmp_path: Path,
) -> None:
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(OSError):
        await WorkerProcess.start(
            [str(tmp_path / "no-such-program")], env={}, cwd=tmp_path, memory_limit_bytes=MIB
        )
    assert len(os.listdir("/proc/self/fd")) == before


async def test_discard_kills_the_whole_group_and_may_be_repeated(
    start_worker: StartWorker,
) -> None:
    body = """\
import subprocess
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
send({"type": "ready"})
time.sleep(60)
"""
    worker = await start_worker(stand_in(body))
    assert await worker.exchange(None, 10) == Reply(Ready(None))
    [child_pid] = descendants([worker.pid])
    await asyncio.gather(worker.discard(), worker.discard())
    await worker.discard()
    assert await exits(child_pid)
    assert not worker.alive and worker.process.returncode is not None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs the parent-death signal")
async def test_a_worker_dies_with_the_process_that_started_it() -> None:
    # The worker reports ready before its parent dies: between unshare's fork and the child's
    # own parent-death signal there is a moment no signal covers, and this test is about a
    # worker that is running (stuck in a call), not one being born.
    command = stand_in('send({"type": "ready"})\ntime.sleep(60)\n')
    parent_script = textwrap.dedent(
        f"""
        import asyncio, time
        from edgesim.runtime.worker import WorkerProcess
        async def main():
            worker = await WorkerProcess.start(
                {command!r}, env={{"PATH": {WORKER_PATH!r}}}, cwd={str(FIXTURES)!r},
                memory_limit_bytes={128 * MIB})
            await worker.exchange(None, 30)
            print(worker.pid, flush=True)
            time.sleep(60)
        asyncio.run(main())
        """
    )
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", parent_script, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert parent.stdout is not None
        worker_pid = int(await asyncio.wait_for(parent.stdout.readline(), 40))
        assert psutil.Process(worker_pid).status() != psutil.STATUS_ZOMBIE
    finally:
        parent.kill()
        await parent.wait()
    exited = await exits(worker_pid)
    if not exited:
        os.kill(worker_pid, signal.SIGKILL)
    assert exited, "the orphaned worker kept running"


@pytest.mark.parametrize(
    ("mb", "hold"),
    [(200, 1.0), (200, 0.0), (4000, 0.0)],
    ids=["held-past-a-sample", "brief-spike", "past-the-kernel-backstop"],
)
async def test_memory_past_the_quota_kills_and_replaces_the_worker(
    make_pool: PoolFactory, mb: int, hold: float
) -> None:
    logs = LogRecorder()
    # Only the memory quota should end the big invocation, however long the allocation takes.
    pool = make_pool("memory", memory_mb=128, timeout_s=30.0, log_sink=logs)
    small = await pool.invoke({"mb": 1})
    assert isinstance(small.value, dict)
    first_workers = pool.worker_pids
    with pytest.raises(LambdaExecutionError) as caught:
        await pool.invoke({"mb": mb, "hold": hold})
    assert caught.value.reason == (
        "Runtime exited with error: signal: killed (Runtime.ExitError); "
        "memory quota 128 MB exceeded"
    )
    frame = logs.last
    assert "\tMax Memory Used: 128 MB" in frame[-3]
    assert frame[-1] == "Runtime.ExitError"
    assert not living(first_workers)
    again = await pool.invoke({"mb": 1})
    assert isinstance(again.value, dict) and again.report.init_duration_ms is not None
