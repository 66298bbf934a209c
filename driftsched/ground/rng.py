"""Seeded randomness: one ``SeedSequence`` per run, one named ``Generator`` per stream.

Streams are derived from the seed *and the stream name*, so adding a new stream never shifts
the numbers another stream draws (the order in which streams are requested does not matter).
Nothing in driftsched draws from global random state.
"""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, name: str) -> np.random.Generator:
    """Return the generator for stream ``name`` of the run seeded with ``seed``.

    The same (seed, name) always yields a generator producing the same numbers.
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    key = zlib.crc32(name.encode("utf-8"))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, key])))


def streams(seed: int, *names: str) -> dict[str, np.random.Generator]:
    """Return ``{name: stream(seed, name)}`` for each name."""
    return {name: stream(seed, name) for name in names}
