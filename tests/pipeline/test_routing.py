"""Path patterns and behavior matching, against every example of spec/cloudfront-caching.md §1.3."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesim.config import BehaviorConfig, Distribution
from edgesim.http import EdgeRequest, Headers
from edgesim.pipeline import routing
from edgesim.pipeline.routing import match_behavior, normalize_path, pattern_matches, refusal


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        # `*.jpg`: every .jpg, anywhere
        ("*.jpg", "/logo.jpg", True),
        ("*.jpg", "/a/b/c/logo.jpg", True),
        ("*.jpg", "/logo.jpeg", False),
        # `images/*.jpg`: .jpg files in images/ and every folder below it
        ("images/*.jpg", "/images/a.jpg", True),
        ("images/*.jpg", "/images/2024/05/a.jpg", True),
        ("images/*.jpg", "/a.jpg", False),
        ("images/*.jpg", "/static/images/a.jpg", False),
        # `a*.jpg`: names starting with a
        ("a*.jpg", "/ant.jpg", True),
        ("a*.jpg", "/a.jpg", True),
        ("a*.jpg", "/bat.jpg", False),
        # `a??.jpg`: a + exactly two characters
        ("a??.jpg", "/ant.jpg", True),
        ("a??.jpg", "/abe.jpg", True),
        ("a??.jpg", "/an.jpg", False),
        ("a??.jpg", "/antz.jpg", False),
        # `*.doc*` takes .doc, .docx and .docm; `*.doc?` misses plain .doc
        ("*.doc*", "/r.doc", True),
        ("*.doc*", "/r.docx", True),
        ("*.doc*", "/r.docm", True),
        ("*.doc?", "/r.doc", False),
        ("*.doc?", "/r.docx", True),
        # case-sensitive
        ("*.jpg", "/LOGO.JPG", False),
        ("/Images/*", "/images/a", False),
    ],
)
def test_the_guides_pattern_examples(pattern: str, path: str, matches: bool) -> None:
    assert pattern_matches(pattern, path) is matches


@pytest.mark.parametrize("pattern", ["images/*.jpg", "/images/*.jpg"])
@pytest.mark.parametrize("path", ["/images/a.jpg", "images/a.jpg"])
def test_the_leading_slash_is_optional_on_both_sides(pattern: str, path: str) -> None:
    assert pattern_matches(pattern, path)


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*", "/", True),
        ("*", "/any/thing", True),
        ("/api/*", "/api/", True),  # `*` matches zero characters
        ("/api/*", "/api", False),
        ("/?", "//", True),  # `?` is any one character, even `/`
        ("/a.b", "/axb", False),  # `.` is literal
        ("/a$", "/a$", True),
        ("/a$", "/a", False),
        ("/a+b", "/a+b", True),
        ("/a+b", "/aab", False),
        ("/q&a/*", "/q&a/1", True),
        ("/q&a/*", "/q&amp;a/1", False),
        ("/~user/'x'\"@:", "/~user/'x'\"@:", True),
    ],
)
def test_wildcards_and_literal_characters(pattern: str, path: str, matches: bool) -> None:
    assert pattern_matches(pattern, path) is matches


def distribution(tmp_path: Path, *patterns: str) -> Distribution:
    (tmp_path / "site").mkdir(exist_ok=True)
    return Distribution.model_validate(
        {
            "origins": {"site": {"s3": tmp_path / "site"}},
            "behaviors": [{"path_pattern": p, "origin": "site"} for p in patterns],
            "source": tmp_path / "dist.yaml",
        }
    )


def matched(dist: Distribution, uri: str) -> str:
    return match_behavior(dist, uri).path_pattern


def test_the_guides_worked_example_takes_the_second_behavior(tmp_path: Path) -> None:
    dist = distribution(tmp_path, "images/*.jpg", "images/*", "*.gif", "*")
    assert matched(dist, "images/sample.gif") == "images/*"
    assert matched(dist, "/images/sample.gif") == "images/*"
    assert matched(dist, "/images/sample.jpg") == "images/*.jpg"
    assert matched(dist, "/sample.gif") == "*.gif"
    assert matched(dist, "/sample.png") == "*"


def test_the_query_string_plays_no_part(tmp_path: Path) -> None:
    dist = distribution(tmp_path, "*.jpg", "*")
    assert matched(dist, "/a.png?file=b.jpg") == "*"
    assert matched(dist, "/a.jpg?size=2") == "*.jpg"
    assert matched(dist, "/a.png#b.jpg") == "*"


@pytest.mark.parametrize(
    ("uri", "normalized"),
    [
        ("/", "/"),
        ("", "/"),
        ("/a/b", "/a/b"),
        ("//api//x", "/api/x"),
        ("/a/./b/", "/a/b/"),
        ("/static/../api/x", "/api/x"),
        ("/a/b/..", "/a/"),
        ("/../../x", "/x"),
        ("/%61pi/%7Euser", "/api/~user"),  # unreserved characters are decoded
        ("/a%2fb%20c", "/a%2Fb%20c"),  # others stay encoded, hex upper-cased
        ("/%2e%2e/x", "/x"),  # an encoded dot segment is still a dot segment
        ("/a?x=/../b", "/a"),
    ],
)
def test_paths_are_matched_in_rfc_3986_normal_form(uri: str, normalized: str) -> None:
    assert normalize_path(uri) == normalized


def test_behaviors_match_the_normalized_path(tmp_path: Path) -> None:
    dist = distribution(tmp_path, "/api/*", "*")
    for uri in ("//api/x", "/%61pi/x", "/static/../api/x"):
        assert matched(dist, uri) == "/api/*", uri
    assert matched(dist, "/API/x") == "*"


def test_patterns_are_compiled_once(tmp_path: Path) -> None:
    dist = distribution(tmp_path, "/compiled-once/*", "*")
    before = routing._compile.cache_info()
    for _ in range(5):
        match_behavior(dist, "/compiled-once/x")
    after = routing._compile.cache_info()
    assert after.misses - before.misses <= 1
    assert after.hits - before.hits >= 4


def _sized(total: int) -> EdgeRequest:
    """A request whose request line plus header lines are exactly ``total`` bytes on the wire."""
    line = len("GET /a HTTP/1.1\r\n")
    filler = total - line - len("X-Pad: \r\n")
    return EdgeRequest("GET", "/a", headers=Headers([("X-Pad", "p" * filler)]))


@pytest.mark.parametrize(("total", "refused"), [(20480, False), (20481, True)])
def test_the_request_size_limit_counts_every_byte(total: int, refused: bool) -> None:
    # cloudfront-caching.md §5: request line + headers over 20,480 bytes is a 413.
    behavior = BehaviorConfig.model_validate({"path_pattern": "*", "origin": "o"})
    outcome = refusal(_sized(total), behavior, "d.cloudfront.net")
    assert (outcome is not None) is refused
    if refused:
        assert outcome is not None and outcome.status == 413


@pytest.mark.parametrize(("total", "refused"), [(20480, False), (20481, True)])
def test_the_request_size_limit_counts_bytes_not_characters(total: int, refused: bool) -> None:
    # "é" is two bytes in UTF-8; a Latin-1 byte kept as a surrogate escape is one.
    behavior = BehaviorConfig.model_validate({"path_pattern": "*", "origin": "o"})
    latin1 = b"\xe9".decode("utf-8", "surrogateescape")
    line = len("GET /a HTTP/1.1\r\n")
    filler = total - line - len("X-Pad: \r\n") - 2 - 1
    request = EdgeRequest("GET", "/a", headers=Headers([("X-Pad", "é" + latin1 + "p" * filler)]))
    assert (refusal(request, behavior, "d.cloudfront.net") is not None) is refused


REDIRECTING = BehaviorConfig.model_validate(
    {
        "path_pattern": "*",
        "origin": "o",
        "viewer_protocol_policy": "redirect-to-https",
        "allowed_methods": ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"],
    }
)


@pytest.mark.parametrize(
    ("method", "version", "status"),
    [
        ("GET", "1.1", 301),
        ("HEAD", "1.0", 301),
        ("GET", "1.0", 301),
        ("POST", "1.1", 307),
        ("PUT", "2", 307),
        ("DELETE", "3", 307),
        ("POST", "1.0", 403),
        ("PUT", "HTTP/1.0", 403),
        ("OPTIONS", "1.0", 403),
    ],
)
def test_redirect_to_https_answers_by_method_and_http_version(
    method: str, version: str, status: int
) -> None:
    """cloudfront-caching.md §1.3, "Viewer protocol policy results": redirect-to-https answers an
    HTTP GET/HEAD with 301; other methods with 307 over HTTP/1.1 or later, so the method and
    body are kept, and with 403 below HTTP/1.1, which has no 307 to keep them with."""
    headers = Headers([("Host", "example.com")])
    request = EdgeRequest(method, "/a?b=1", headers=headers, http_version=version)
    outcome = refusal(request, REDIRECTING, "d.cloudfront.net")
    assert outcome is not None and outcome.status == status
    if status == 403:
        assert isinstance(outcome, routing.Refusal)
    else:
        assert isinstance(outcome, routing.Redirect)
        assert outcome.location == "https://example.com/a?b=1"
