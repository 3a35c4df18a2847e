"""The contract suites run through the real proxy, with the end-to-end suite's fixtures."""

from tests.e2e.conftest import make_edge, origin  # noqa: F401  (fixtures, found by name)
