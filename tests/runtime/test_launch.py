"""How a worker is started: which command (flags, ``node``'s memory limits, the bytecode cache),
which environment, and the names (ARN, log group, log stream) a function sees.

A fake ``python`` on a temporary ``PATH`` stands in for the runtime's interpreter. Which runtimes
can run, and which interpreter or ``node`` runs them, are in test_launch_runtimes.py.
"""

from __future__ import annotations

import re
import stat
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import edgesim.runtime
from edgesim.runtime import FunctionSpec, debug
from edgesim.runtime.launch import (
    NODE_WORKER,
    PYTHON_BOOT,
    PYTHON_RUNTIMES,
    PYTHON_WORKER,
    RUNTIME_DIR,
    WORKER_PATH,
    bytecode_cache_dir,
    invoked_function_arn,
    log_group_name,
    new_log_stream_name,
    node_options,
    worker_command,
    worker_environment,
)
from tests.runtime.helpers import (
    CURRENT,
    FIXTURES,
    RESERVED_VARIABLES,
    RUNTIME,
    PoolFactory,
    remaining_ms_window,
    spec_for,
)
from tests.runtime.launch_helpers import fake_python
from tests.runtime.node_worker_helpers import NODE_FIXTURES


async def test_the_worker_sees_only_lambda_variables_and_no_host_packages(
    make_pool: PoolFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGESIM_HOST_MARKER", "must not leak")
    pool = make_pool("env", memory_mb=256, region="eu-west-3", version="7")
    result = await pool.invoke({})
    assert isinstance(result.value, dict)
    env = result.value["environ"]
    code_dir = str(FIXTURES / "env")
    assert set(env) == RESERVED_VARIABLES
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-3"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "env"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "7"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/us-east-1.env"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[7\][0-9a-f]{32}", env["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert env["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{RUNTIME}"
    assert env["LAMBDA_TASK_ROOT"] == code_dir
    assert env["_HANDLER"] == "index.handler"
    assert env["TZ"] == ":UTC"
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert result.value["sys_path_0"] == code_dir
    assert result.value["cwd"] == code_dir
    assert result.value["aiohttp_importable"] is False
    assert result.value["executable_flags"] == {"isolated": 1, "no_site": 1}


async def test_context_object_has_lambda_fields(make_pool: PoolFactory) -> None:
    pool = make_pool("context", timeout_s=3.0, version="12")
    started = time.time()
    result = await pool.invoke({})
    ended = time.time()
    value = result.value
    assert isinstance(value, dict)
    assert value["function_name"] == "context"
    assert value["function_version"] == "12"
    assert value["invoked_function_arn"] == (
        "arn:aws:lambda:us-east-1:123456789012:function:context:12"
    )
    assert value["memory_limit_in_mb"] == "128"
    assert value["aws_request_id"] == result.report.request_id
    assert value["log_group_name"] == "/aws/lambda/us-east-1.context"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[12\][0-9a-f]{32}", value["log_stream_name"])
    low, high = remaining_ms_window(3.0, started, ended)
    assert low <= value["remaining_ms"] <= high
    assert value["identity"] is None and value["client_context"] is None


async def test_node_runs_with_lambdas_v8_limits_for_the_memory_size() -> None:
    assert node_options(128) == [
        "--expose-gc",
        "--max-http-header-size=81920",
        "--max-semi-space-size=6",
        "--max-old-space-size=116",
    ]
    spec = FunctionSpec("f", "nodejs18.x", NODE_FIXTURES / "echo", "index.handler", 1024, 5)
    command = await worker_command(spec)
    assert command[1:] == [*node_options(1024), str(NODE_WORKER)]
    assert "--max-old-space-size=922" in command


@pytest.fixture
def only_this_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The running interpreter, as its runtime's name, is the only Python a worker can find."""
    if CURRENT not in PYTHON_RUNTIMES:
        pytest.skip(f"edgesim knows no runtime for {CURRENT}")
    fake_python(tmp_path, CURRENT)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))


@pytest.mark.usefixtures("only_this_python")
async def test_a_python_worker_runs_isolated_without_site_or_bytecode() -> None:
    command = await worker_command(spec_for("echo", runtime=CURRENT))
    # The worker program itself comes compiled from edgesim's private bytecode folder.
    boot = [str(PYTHON_BOOT), str(PYTHON_WORKER), bytecode_cache_dir()]
    assert command[1:] == ["-I", "-S", "-B", *boot]
    assert Path(command[0]).resolve() == Path(sys.executable).resolve()
    assert PYTHON_WORKER.is_file() and PYTHON_WORKER.parent == RUNTIME_DIR
    assert PYTHON_BOOT.is_file() and PYTHON_BOOT.parent == RUNTIME_DIR


@pytest.mark.usefixtures("only_this_python")
async def test_a_python_worker_under_a_debugger_also_comes_from_the_bytecode_cache() -> None:
    command = await worker_command(spec_for("echo", runtime=CURRENT, debug_port=5678))
    boot = [str(PYTHON_BOOT), str(PYTHON_WORKER), bytecode_cache_dir()]
    flags = ["-I", "-S", "-B", "-Xfrozen_modules=off"]
    assert command[1:] == [*flags, *boot, *debug.python_debug_options(5678)]


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    bytecode_cache_dir.cache_clear()
    yield tmp_path
    bytecode_cache_dir.cache_clear()


def test_the_bytecode_folder_is_the_users_own(cache_home: Path) -> None:
    folder = Path(bytecode_cache_dir())
    assert folder == cache_home / "edgesim" / "bytecode"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_a_bytecode_folder_others_may_write_is_not_used(cache_home: Path) -> None:
    folder = cache_home / "edgesim" / "bytecode"
    folder.mkdir(parents=True)
    folder.chmod(0o777)
    assert bytecode_cache_dir() == ""


def test_no_bytecode_folder_where_none_can_be_made(cache_home: Path) -> None:
    (cache_home / "edgesim").write_text("a file where the folder would be")
    assert bytecode_cache_dir() == ""


def test_worker_environment_is_lambdas_reserved_variables_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EDGESIM_HOST_MARKER", "must not leak")
    spec = FunctionSpec(
        name="fn",
        runtime="python3.12",
        code_dir=Path("relative") / "code",
        handler="app/main.handler",
        memory_mb=512,
        timeout_s=3.0,
        region="ap-south-1",
        version="4",
    )
    assert worker_environment(spec, "2024/01/02/[4]stream") == {
        "AWS_REGION": "ap-south-1",
        "AWS_DEFAULT_REGION": "ap-south-1",
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
        "AWS_LAMBDA_FUNCTION_VERSION": "4",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/us-east-1.fn",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2024/01/02/[4]stream",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "LAMBDA_TASK_ROOT": str(Path.cwd() / "relative" / "code"),
        "LAMBDA_RUNTIME_DIR": str(Path(edgesim.runtime.__file__).resolve().parent),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PATH": WORKER_PATH,
        "_HANDLER": "app/main.handler",
    }


def test_the_arn_and_log_group_are_those_of_the_us_east_1_function() -> None:
    spec = spec_for("echo", name="fn", region="eu-west-3", version="4")
    assert invoked_function_arn(spec) == "arn:aws:lambda:us-east-1:123456789012:function:fn:4"
    assert log_group_name(spec) == "/aws/lambda/us-east-1.fn"


def test_each_log_stream_name_is_new_and_carries_the_date_and_version() -> None:
    spec = spec_for("echo", version="9")
    before = datetime.now(UTC).strftime("%Y/%m/%d")
    names = [new_log_stream_name(spec) for _ in range(3)]
    after = datetime.now(UTC).strftime("%Y/%m/%d")
    assert len(set(names)) == 3
    for name in names:
        match = re.fullmatch(r"(\d{4}/\d\d/\d\d)/\[9\][0-9a-f]{32}", name)
        assert match is not None and match.group(1) in (before, after)
