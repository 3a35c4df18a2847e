"""Random ids that must be unique but need not be secret: CloudFront's request ids, Lambda's.

Every request draws one or more, so they come from a seeded generator, at a fraction of the
cost of a ``getrandom()`` call each; it is reseeded in a forked child, so two edge processes
never draw the same ids. What a hostile function must not guess (the invocation ids that prove a
reply is the worker's own) is read from the kernel (``os.urandom``) instead.
"""

from __future__ import annotations

import os
import random

__all__ = ["random_bits", "random_uuid"]

_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)

random_bits = _ids.getrandbits

# The version (4) and variant (RFC 9562) bits of a random UUID, set over 128 random ones.
_UUID_KEEP = 0xFFFFFFFF_FFFF_0FFF_3FFF_FFFFFFFFFFFF
_UUID_SET = 0x00000000_0000_4000_8000_000000000000


def random_uuid() -> str:
    """A random (version 4) UUID in its canonical form, as Lambda's request ids are written."""
    # str(uuid.UUID(...)) spells the same string at three times the cost.
    digits = "%032x" % (random_bits(128) & _UUID_KEEP | _UUID_SET)
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
