"""Counter-based random numbers that depend only on *which tau* is drawn for (DESIGN §5).

Each entry of each input file owns one Philox-4×64 counter block: four 64-bit words, keyed by
(seed, stage, dataset, file). Chunk boundaries, executors, worker counts and the order in which
chunks finish therefore cannot change a single decision: entry ``i`` of a file always gets the
same four words.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["entry_key", "entry_uniforms", "entry_words"]

_WORDS_PER_ENTRY = 4
_TO_UNIT = 2.0**-53


def entry_key(seed: int, stage: str, dataset: str, file_id: str) -> np.ndarray:
    """The 128-bit Philox key of one (seed, stage, dataset, file) stream."""
    digest = hashlib.blake2b(f"{int(seed)}\x00{stage}\x00{dataset}\x00{file_id}".encode(), digest_size=16).digest()
    return np.frombuffer(digest, dtype="<u8").copy()


def entry_words(seed: int, stage: str, dataset: str, file_id: str, start: int, stop: int) -> np.ndarray:
    """``(stop - start, 4)`` uint64 words for entries ``start … stop-1`` of a file."""
    start, stop = int(start), int(stop)
    if stop < start or start < 0:
        raise ValueError(f"bad entry range [{start}, {stop})")
    bit_generator = np.random.Philox(key=entry_key(seed, stage, dataset, file_id))
    bit_generator.advance(start)  # one counter step = one entry = four 64-bit words
    return bit_generator.random_raw((stop - start) * _WORDS_PER_ENTRY).reshape(-1, _WORDS_PER_ENTRY)


def entry_uniforms(seed: int, stage: str, dataset: str, file_id: str, start: int, stop: int) -> np.ndarray:
    """``(stop - start, 4)`` doubles in [0, 1), 53 random bits each."""
    return (entry_words(seed, stage, dataset, file_id, start, stop) >> np.uint64(11)).astype(np.float64) * _TO_UNIT
