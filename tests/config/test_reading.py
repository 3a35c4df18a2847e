"""Hostile distribution files at the file level and in JSON: one ``FILE: KEY: PROBLEM`` line each.

A file too big, a folder, a device, an unreadable or non-UTF-8 file, an empty one, the wrong top
level, and JSON nested 50,000 deep or holding a 5,000-digit number or millions of values: each is
refused with the one line ``edgesim validate`` prints. The timeouts are generous: they catch a
hang or a minutes-long read, they do not measure speed. The last test runs the real command.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgesim.config import load_distribution
from edgesim.config.bounds import MAX_FILE_BYTES
from edgesim.exceptions import ConfigError
from tests.config_helpers import problem

TOO_DEEP = "nested more than 100 levels deep (a distribution file needs fewer than ten)"
ORIGINS = '"origins": {"api": {"url": "http://127.0.0.1:9000"}}'


def _problem_of(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_distribution(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    return message.removeprefix(f"{path}: ")


@pytest.mark.timeout(30)
def test_a_fifty_megabyte_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "dist.yaml"
    with path.open("wb") as stream:  # sparse: its size is known without writing 50 MB
        stream.truncate(50_000_000)
    assert _problem_of(path) == (
        "the file is 50000000 bytes; a distribution file may be at most 10485760 bytes (10 MiB)"
    )


@pytest.mark.timeout(30)
def test_a_device_is_read_no_further_than_the_bound(tmp_path: Path) -> None:
    # /dev/zero reports no size and never ends.
    path = tmp_path / "dist.yaml"
    path.symlink_to("/dev/zero")
    assert _problem_of(path) == (
        "the file is larger than that; a distribution file may be at most 10485760 bytes (10 MiB)"
    )
    assert MAX_FILE_BYTES == 10 * 1024 * 1024


def test_a_folder(tmp_path: Path) -> None:
    (tmp_path / "dist.yaml").mkdir()
    assert _problem_of(tmp_path / "dist.yaml") == "is a folder; a distribution file is needed"


def test_an_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "dist.yaml"
    path.write_text("origins: {}\n")

    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    # chmod would not stop root, who runs these tests in containers
    monkeypatch.setattr(Path, "open", refuse)
    assert _problem_of(path) == "cannot be read: Permission denied"


def test_non_utf8_bytes_name_the_byte_and_line(tmp_path: Path) -> None:
    path = tmp_path / "dist.yaml"
    path.write_bytes(b"origins: {}\nbehaviors: []\n# caf\xe9\n")
    assert _problem_of(path) == "not UTF-8 text: byte 0xe9 at line 3"


def test_binary_garbage(tmp_path: Path) -> None:
    path = tmp_path / "dist.yaml"
    path.write_bytes(bytes(range(256)) * 16)
    assert _problem_of(path) == "not UTF-8 text: byte 0x80 at line 2"


def test_binary_garbage_that_is_utf8(tmp_path: Path) -> None:
    path = tmp_path / "dist.yaml"
    path.write_bytes(bytes(range(128)) * 16)
    assert _problem_of(path).startswith("not valid YAML at line 1, column 1: ")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"], ids=repr)
def test_an_empty_file(tmp_path: Path, text: str) -> None:
    assert problem(tmp_path, text) == "the file is empty; it needs at least origins and behaviors"


@pytest.mark.parametrize(
    ("name", "text", "got"),
    [("dist.yaml", "- a\n- b\n", "a list"), ("dist.json", '"text"', "'text'")],
)
def test_the_top_level_must_be_a_mapping(tmp_path: Path, name: str, text: str, got: str) -> None:
    assert problem(tmp_path, text, name) == (
        "the top level must be a mapping of distribution, origins, origin_groups, functions, "
        f"behaviors, custom_error_responses; got {got}"
    )


@pytest.mark.timeout(30)
def test_json_nested_fifty_thousand_deep(tmp_path: Path) -> None:
    text = "{" + ORIGINS + ', "behaviors": ' + "[" * 50_000 + "]" * 50_000 + "}"
    assert problem(tmp_path, text, "dist.json") == TOO_DEEP


def test_json_nesting_the_parser_survives_is_still_bounded(tmp_path: Path) -> None:
    text = '{"origins": {"a": ' + "[" * 150 + "]" * 150 + "}}"
    assert problem(tmp_path, text, "dist.json") == f"origins.a: {TOO_DEEP}"


def test_json_nesting_at_the_bound_reaches_the_models(tmp_path: Path) -> None:
    # 98 lists in a mapping in the top-level one: 100 levels, so the models see it.
    text = '{"origins": {"a": ' + "[" * 98 + "]" * 98 + "}}"
    assert problem(tmp_path, text, "dist.json").startswith("origins.a: must be a mapping")


@pytest.mark.parametrize("sign", ["", "-"])
def test_json_number_of_five_thousand_digits(tmp_path: Path, sign: str) -> None:
    text = '{"origins": {"api": {"url": "http://h", "read_timeout": ' + sign + "9" * 5000 + "}}}"
    assert problem(tmp_path, text, "dist.json") == (
        f"a number of {len(sign) + 5000} characters; numbers in a distribution file have at most "
        "100 at line 1, column 57"
    )


@pytest.mark.timeout(60)
def test_json_with_a_million_values_is_refused_before_parsing(tmp_path: Path) -> None:
    text = "{" + ORIGINS + ', "behaviors": [' + ",".join(["{}"] * 1_200_000) + "]}"
    assert problem(tmp_path, text, "dist.json") == (
        "more than 100000 values, commas and brackets; a distribution file needs far fewer"
    )


def test_json_behaviors_over_the_quota_are_counted_before_models(tmp_path: Path) -> None:
    text = "{" + ORIGINS + ', "behaviors": [' + ",".join(["{}"] * 30_000) + "]}"
    assert problem(tmp_path, text, "dist.json") == (
        "behaviors: CloudFront allows at most 75 behaviors; got 30000"
    )


def test_json_duplicate_keys_are_still_refused(tmp_path: Path) -> None:
    text = '{"origins": {"a": {"url": "http://h"}, "a": {"url": "http://h"}}}'
    assert (
        problem(tmp_path, text, "dist.json")
        == "origins.a: duplicate key; each may appear only once"
    )


def _edgesim() -> list[str]:
    script = Path(sys.executable).with_name("edgesim")
    return [str(script)] if script.exists() else [sys.executable, "-m", "edgesim"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["deep.yaml", "deep.json"])
def test_edgesim_validate_prints_one_line(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".json"):
        path.write_text("{" + ORIGINS + ', "behaviors": ' + "[" * 50_000 + "]" * 50_000 + "}")
    else:
        path.write_text("origins: " + "[" * 50_000 + "]" * 50_000 + "\n")
    done = subprocess.run(
        [*_edgesim(), "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=50,
        env={**os.environ, "PYTHONFAULTHANDLER": ""},
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"edgesim: {path}: nested more than 100 levels deep")
    assert done.stdout == ""
