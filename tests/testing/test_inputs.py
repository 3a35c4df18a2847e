from __future__ import annotations

import pytest

from edgesim.http import Headers
from edgesim.testing.inputs import (
    body_bytes,
    cookie_header,
    header_lines,
    query_text,
    split_target,
)


def test_headers_from_a_dict_a_list_of_pairs_or_headers() -> None:
    assert header_lines({"A": "1", "B": ["2", "3"]}).items() == [("A", "1"), ("B", "2"), ("B", "3")]
    assert header_lines([("A", "1"), ("A", "2")]).items() == [("A", "1"), ("A", "2")]
    assert header_lines(Headers([("A", "1")])).items() == [("A", "1")]
    assert header_lines(None).items() == []


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("Accept: */*", "must be a dict or a list of \\(name, value\\) pairs, got str"),
        (42, "got int 42"),
        ({"X-N": 5}, r"headers\['X-N'\] must be a str, got int 5"),
        ([("A", "1", "2")], r"headers\[0\] must be a \(name, value\) pair"),
        ([("A", None)], r"the value of headers\[0\] \(A\) must be a str, got NoneType"),
    ],
)
def test_a_wrong_type_is_a_type_error_naming_it(given: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        header_lines(given)  # type: ignore[arg-type]


def test_a_question_mark_splits_the_target() -> None:
    assert split_target("/a/b?x=1&y") == ("/a/b", "x=1&y")
    assert split_target("/a?") == ("/a", "")
    assert split_target("/a", {"q": "a b"}) == ("/a", "q=a+b")
    assert split_target("/%7Ea?x=%20") == ("/%7Ea", "x=%20")  # as written
    with pytest.raises(ValueError, match="given twice"):
        split_target("/a?x=1", "y=2")
    with pytest.raises(ValueError, match="starts with '/'"):
        split_target("a")


def test_query_cookies_and_bodies() -> None:
    assert query_text("?a=1") == "a=1"
    assert query_text([("a", "1"), ("a", "2")]) == "a=1&a=2"
    assert cookie_header({"a": "1", "b": "2"}) == "a=1; b=2"
    assert cookie_header("") is None
    assert cookie_header(None) is None
    assert body_bytes("é") == "é".encode()
    with pytest.raises(TypeError, match="body must be bytes or str"):
        body_bytes(3)  # type: ignore[arg-type]
