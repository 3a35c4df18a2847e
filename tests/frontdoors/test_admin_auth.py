"""The admin API's token file and its Host, Origin and token rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesim.frontdoors.admin_auth import (
    AdminAddress,
    AdminRefused,
    check_token,
    new_token,
    read_token_file,
    remove_token_file,
    token_file,
    write_token_file,
)


def test_the_token_file_is_per_port_under_the_runtime_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert token_file(9080) == tmp_path / "edgesim" / "admin-9080.token"
    assert token_file(9080) != token_file(9081)


@pytest.mark.parametrize("runtime", [None, "", "relative/dir"])
def test_without_a_usable_runtime_dir_the_token_file_is_under_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime: str | None
) -> None:
    if runtime is None:
        monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    else:
        monkeypatch.setenv("XDG_RUNTIME_DIR", runtime)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert token_file(9080) == tmp_path / ".cache" / "edgesim" / "admin-9080.token"


def test_tokens_are_long_random_and_never_read_as_an_option() -> None:
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    assert all(len(token) == 64 and not token.startswith("-") for token in tokens)


def test_the_token_file_is_readable_by_its_user_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    (tmp_path / "edgesim").mkdir(mode=0o755)  # a folder others can list is tightened
    token = new_token()
    path = write_token_file(9080, token)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert read_token_file(9080) == token
    assert read_token_file(9081) is None
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no staging file left


def test_a_token_file_is_removed_only_by_the_server_that_wrote_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    old, new = new_token(), new_token()
    assert old != new and len(old) >= 40
    path = write_token_file(9080, old)
    write_token_file(9080, new)  # a newer server on the same port
    remove_token_file(path, old)
    assert read_token_file(9080) == new
    remove_token_file(path, new)
    assert not path.exists()
    remove_token_file(path, new)  # already gone: nothing to do


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Bearer nope", "Basic s3cret", "s3cret", "Bearer s3cre"]
)
def test_a_request_without_the_token_is_refused(authorization: str | None) -> None:
    with pytest.raises(AdminRefused) as refused:
        check_token(authorization, "s3cret")
    assert refused.value.status == 403


def test_the_bearer_scheme_is_case_insensitive() -> None:
    check_token("bearer s3cret", "s3cret")
    check_token("Bearer  s3cret", "s3cret")


@pytest.mark.parametrize(
    ("bound", "authority", "names"),
    [
        ("127.0.0.1", "127.0.0.1:9080", True),
        ("127.0.0.1", "localhost:9080", True),
        ("127.0.0.1", "[::1]:9080", True),
        ("127.0.0.1", "127.0.0.1:9081", False),
        ("127.0.0.1", "127.0.0.1", False),  # port 80, not 9080
        ("127.0.0.1", "rebound.example:9080", False),
        ("127.0.0.1", "10.0.0.5:9080", False),
        ("127.0.0.1", "[::1:9080", False),
        ("127.0.0.1", "::1:9080", False),
        ("127.0.0.1", "localhost:", False),
        ("127.0.0.1", "localhost:９０８０", False),
        ("10.0.0.5", "10.0.0.5:9080", True),
        ("0.0.0.0", "10.0.0.5:9080", True),  # bound everywhere: an IP literal cannot be rebound
        ("0.0.0.0", "[fe80::1]:9080", True),
        ("0.0.0.0", "rebound.example:9080", False),
    ],
)
def test_which_hosts_name_the_admin_api(bound: str, authority: str, names: bool) -> None:
    assert AdminAddress(bound, 9080).names(authority) is names


def test_host_refusals_are_421_or_400_when_missing() -> None:
    address = AdminAddress("127.0.0.1", 9080)
    address.check_host("localhost:9080")
    for host, status in (("rebound.example:9080", 421), (None, 400), ("", 400)):
        with pytest.raises(AdminRefused) as refused:
            address.check_host(host)
        assert refused.value.status == status


def test_only_the_admins_own_origin_or_none_is_accepted() -> None:
    address = AdminAddress("127.0.0.1", 9080)
    address.check_origin(None)
    address.check_origin("http://127.0.0.1:9080")
    address.check_origin("HTTP://localhost:9080")
    for origin in ("null", "", "http://evil.example", "https://127.0.0.1:9080", "127.0.0.1:9080"):
        with pytest.raises(AdminRefused) as refused:
            address.check_origin(origin)
        assert refused.value.status == 403
