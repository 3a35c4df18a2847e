"""The ids edgesim draws for requests and invocations."""

from __future__ import annotations

import os
import uuid

import pytest

from edgesim.ids import random_uuid
from edgesim.origins.forwarding import new_request_id


def test_a_random_uuid_is_a_canonical_version_4_uuid() -> None:
    drawn = {random_uuid() for _ in range(200)}
    assert len(drawn) == 200
    for text in drawn:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_process_draws_other_ids() -> None:
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        drawn = [new_request_id() for _ in range(3)] + [random_uuid() for _ in range(3)]
        os.write(write_end, " ".join(drawn).encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    with os.fdopen(read_end, "rb") as pipe:
        theirs = set(pipe.read().decode().split())
    ours = {new_request_id() for _ in range(3)} | {random_uuid() for _ in range(3)}
    assert len(theirs) == 6 and not theirs & ours
