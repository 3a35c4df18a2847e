"""A worker's log: splitting the log pipe into phases at the log marks, and Lambda's framing
lines (START, END, REPORT, timeout and exit errors)."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import pytest

from edgesim.runtime import logs
from edgesim.runtime.logs import (
    LogCapture,
    end_line,
    exit_error_lines,
    report_line,
    start_line,
    timeout_line,
)
from edgesim.runtime.protocol import LOG_MARK_END, LOG_MARK_PREFIX
from edgesim.runtime.spec import InvocationReport
from edgesim.tasks import spawn
from tests.runtime.helpers import LogRecorder, PoolFactory


def mark(mark_id: str) -> bytes:
    return LOG_MARK_PREFIX + mark_id.encode() + LOG_MARK_END


def fed(*chunks: bytes, close: bool = False) -> LogCapture:
    capture = LogCapture()
    for chunk in chunks:
        capture.data_received(chunk)
    if close:
        capture.connection_lost(None)
    return capture


async def test_log_marks_split_output_into_phases() -> None:
    capture = fed(b"loading\n" + mark("init") + b"one\ntwo\r\nthree" + mark("r1") + b"four\n")
    assert await capture.phase("init") == ["loading"]
    assert await capture.phase("r1") == ["one", "two", "three"]
    capture.connection_lost(None)
    assert capture.rest() == ["four"]


async def test_a_mark_split_across_reads_is_still_found() -> None:
    whole = b"alpha\n" + mark("request-42") + b"omega\n"
    for cut in range(1, len(whole)):
        capture = fed(whole[:cut], whole[cut:], close=True)
        assert await capture.phase("request-42") == ["alpha"], cut
        assert capture.rest() == ["omega"]


async def test_a_fake_mark_merges_into_the_real_phase() -> None:
    capture = fed(b"a\n" + mark("spoof") + b"b\n" + mark("real"))
    assert await capture.phase("real") == ["a", "b"]


async def test_a_mark_prefix_without_an_end_is_plain_output() -> None:
    text = LOG_MARK_PREFIX + b"x" * 100 + b"\nafter\n"
    capture = fed(text + mark("r"))
    lines = await capture.phase("r")
    assert lines[-1] == "after"
    assert "x" * 100 in lines[0]


async def test_phase_gives_up_waiting_and_returns_what_arrived() -> None:
    capture = fed(b"partial output\n")
    assert await capture.phase("never", timeout_s=0.05) == ["partial output"]


async def test_output_past_the_cap_is_dropped_with_a_note() -> None:
    capture = LogCapture(cap_bytes=10)
    capture.data_received(b"0123456789abcdef\n" + mark("r"))
    assert await capture.phase("r") == [
        "0123456789",
        "[edgesim] 7 more bytes of output were dropped",
    ]


async def test_data_arriving_while_waiting_completes_the_phase() -> None:
    capture = LogCapture()

    async def feed() -> None:
        await asyncio.sleep(0)
        capture.data_received(b"late line\n")
        await asyncio.sleep(0)
        capture.data_received(mark("r"))

    lines, _ = await asyncio.gather(capture.phase("r"), feed())
    assert lines == ["late line"]


async def test_wait_for_output_returns_once_that_much_has_arrived() -> None:
    capture = LogCapture()
    waiting = spawn(capture.wait_for_output(len(b"half" + mark("r"))), name="wait-for-output")
    await asyncio.sleep(0)
    capture.data_received(b"half")
    await asyncio.sleep(0)
    assert not waiting.done() and capture.received_bytes == 4
    capture.data_received(mark("r"))
    await waiting
    assert capture.received_bytes == len(b"half" + mark("r"))
    # A closed pipe brings no more output, so waiting for it ends too.
    capture.connection_lost(None)
    await capture.wait_for_output(1 << 20)


async def test_wait_closed_reports_whether_the_pipe_ended() -> None:
    capture = LogCapture()
    assert await capture.wait_closed(0.01) is False
    capture.connection_lost(None)
    assert await capture.wait_closed(0.01) is True


async def test_a_mark_id_is_at_most_64_characters_long() -> None:
    too_long = LOG_MARK_PREFIX + b"y" * 65 + LOG_MARK_END
    capture = fed(b"a\n" + mark("z" * 64) + b"b\n" + too_long + b"\n" + mark("r"))
    assert await capture.phase("z" * 64) == ["a"]
    lines = await capture.phase("r")
    assert lines[0] == "b"
    assert len(lines) == 2 and "y" * 65 in lines[1]


async def test_the_cap_applies_per_phase() -> None:
    capture = LogCapture(cap_bytes=10)
    capture.data_received(b"0123456789ab\n" + mark("r1") + b"short\n" + mark("r2"))
    assert await capture.phase("r1") == [
        "0123456789",
        "[edgesim] 3 more bytes of output were dropped",
    ]
    assert await capture.phase("r2") == ["short"]


async def test_output_that_is_not_utf8_is_replaced_not_refused() -> None:
    capture = fed(b"caf\xe9\n" + mark("r"))
    assert await capture.phase("r") == ["caf\ufffd"]


def test_rest_hands_out_a_held_back_partial_mark_as_output() -> None:
    # The tail could have been the start of a mark; once nothing more is awaited it is output.
    capture = fed(b"first\n" + mark("r") + b"tail \x00edgesim")
    assert capture.rest() == ["first", "tail \x00edgesim"]
    assert capture.rest() == []


async def capture_pipe_of(*command: str) -> tuple[LogCapture, asyncio.subprocess.Process]:
    """Run ``command`` with stdout and stderr on one pipe read by a :class:`LogCapture`."""
    read_end, write_end = os.pipe()
    try:
        process = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.DEVNULL, stdout=write_end, stderr=write_end
        )
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    capture = LogCapture()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: capture, open(read_end, "rb", 0))
    return capture, process


async def test_a_real_process_log_is_split_into_phases_and_the_rest() -> None:
    script = (
        "import os, sys\n"
        f"PREFIX, END = {LOG_MARK_PREFIX!r}, {LOG_MARK_END!r}\n"
        "def mark(mark_id): os.write(1, PREFIX + mark_id.encode() + END)\n"
        "print('loading', flush=True)\n"
        "mark('init')\n"
        "print('one', flush=True)\n"
        "print('two', file=sys.stderr, flush=True)\n"
        "mark('r1')\n"
        "sys.stdout.write('killed before its mark')\n"
    )
    capture, process = await capture_pipe_of(sys.executable, "-I", "-S", "-c", script)
    assert await capture.phase("init", timeout_s=10) == ["loading"]
    assert await capture.phase("r1", timeout_s=10) == ["one", "two"]
    assert await process.wait() == 0
    assert await capture.wait_closed(10) is True
    assert capture.rest() == ["killed before its mark"]


async def test_close_stops_reading_a_pipe_a_stray_process_holds_open() -> None:
    capture, process = await capture_pipe_of(
        sys.executable, "-I", "-S", "-c", "import time; time.sleep(60)"
    )
    try:
        assert await capture.wait_closed(0.1) is False
        capture.close()
        assert await capture.wait_closed(5) is True
        started = time.monotonic()
        assert await capture.phase("never", timeout_s=5) == []
        # Back before its own timeout: the closed pipe ended the wait, not the timer.
        assert time.monotonic() - started < 5
        assert process.returncode is None
    finally:
        process.kill()
        await process.wait()


async def test_output_larger_than_a_pipe_buffer_is_captured_whole(
    make_pool: PoolFactory,
) -> None:
    logs = LogRecorder()
    result = await make_pool("chatty", log_sink=logs).invoke({"lines": 3000})
    assert result.value == 3000
    printed = [line for line in logs.last if line.startswith("line ")]
    assert len(printed) == 3000
    assert printed[0].startswith("line 000000 ") and printed[-1].startswith("line 002999 ")


def test_start_and_end_lines_name_the_request() -> None:
    assert start_line("rid-1", "7") == "START RequestId: rid-1 Version: 7"
    assert end_line("rid-1") == "END RequestId: rid-1"


@pytest.mark.parametrize(
    ("init_duration_ms", "tail"),
    [(None, ""), (250.004, "\tInit Duration: 250.00 ms")],
    ids=["warm", "cold"],
)
def test_report_line_is_tab_separated_and_has_init_duration_only_after_a_cold_start(
    init_duration_ms: float | None, tail: str
) -> None:
    report = InvocationReport(
        request_id="rid-2",
        duration_ms=12.3456,
        billed_ms=13,
        memory_size_mb=128,
        max_memory_used_mb=41,
        init_duration_ms=init_duration_ms,
    )
    assert report_line(report) == (
        "REPORT RequestId: rid-2\tDuration: 12.35 ms\tBilled Duration: 13 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 41 MB" + tail
    )


def test_timeout_line_has_a_utc_millisecond_timestamp() -> None:
    # 1_700_000_000 is 2023-11-14T22:13:20Z.
    assert timeout_line("rid-3", 0.5, 1_700_000_000.9876) == (
        "2023-11-14T22:13:20.987Z rid-3 Task timed out after 0.50 seconds"
    )
    assert timeout_line("rid-3", 30, 1_700_000_000.0).endswith(
        ".000Z rid-3 Task timed out after 30.00 seconds"
    )


def test_exit_error_lines_name_the_request_and_the_runtime_error() -> None:
    assert exit_error_lines("rid-4", "Runtime exited with error: exit status 3") == [
        "RequestId: rid-4 Error: Runtime exited with error: exit status 3",
        "Runtime.ExitError",
    ]


def test_exit_details_use_lambdas_wording() -> None:
    assert logs.exit_detail(0) == "Runtime exited without providing a reason"
    assert logs.exit_detail(3) == "Runtime exited with error: exit status 3"
    assert logs.exit_detail(-9) == "Runtime exited with error: signal: killed"
    assert logs.exit_detail(-64) == "Runtime exited with error: signal: signal 64"
