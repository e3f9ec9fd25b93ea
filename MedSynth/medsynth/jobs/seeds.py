"""Seeds per item: every image's randomness derives from (run seed, item keys) alone.

So a resumed, reordered or distributed run draws exactly what an uninterrupted local run draws:
no generator is shared between items.
"""

from __future__ import annotations

import hashlib

import numpy as np

SEED_MAX = 2**31 - 1


def item_seed(seed: int, *keys) -> int:
    """A seed in [0, 2**31 - 1) for the item named by ``keys`` (case, variant, view, ...) under ``seed``.

    Keys are hashed by value (strings, ints), so "case 3, view 7" gets the same seed on any
    machine, in any order, in any process.
    """
    digest = hashlib.sha256(repr((int(seed),) + tuple(str(key) for key in keys)).encode()).digest()
    return int.from_bytes(digest[:8], "little") % SEED_MAX


def item_rng(seed: int, *keys) -> np.random.Generator:
    """A generator of the item's own stream (see ``item_seed``)."""
    return np.random.default_rng(item_seed(seed, *keys))
